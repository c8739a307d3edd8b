"""Read-only means read-only at the command line (issue 22): the reads (`recall`, `subject`,
`history`, `audit`, `export`, `doctor`) open the store read-only, so they change no byte of
a SQLite file, not even its journal mode, work on a 0444 file, never migrate or rewrite a
file of the folder that is not an agent store, and on PostgreSQL run with a role that may
only SELECT (`mempill pg grant-agent --read-only`) and run no DDL. Warnings from opening a
store (a remote server without certificate checks) are one line on stderr.
"""

from __future__ import annotations

import hashlib
import sqlite3
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from pghelpers import fetch, postgres_selected, with_params
from test_cli import Cli

READS = (
    ("recall", "user", "city"),
    ("subject", "user"),
    ("history", "user", "city"),
    ("audit",),
    ("export", "ledger"),
    ("doctor",),
)


def sqlite_state(path: Path) -> tuple[str, int, str]:
    """(sha256 of the bytes, objects in sqlite_master, journal mode) of a database file,
    read from a private copy so that looking changes nothing."""
    data = path.read_bytes()
    copy = path.with_name(f".copy-{uuid.uuid4().hex}")
    copy.write_bytes(data)
    try:
        conn = sqlite3.connect(copy)
        try:
            objects = int(conn.execute("SELECT count(*) FROM sqlite_master").fetchone()[0])
            mode = str(conn.execute("PRAGMA journal_mode").fetchone()[0])
        finally:
            conn.close()
    finally:
        copy.unlink()
    return hashlib.sha256(data).hexdigest(), objects, mode


def plain_database(path: Path, tables: bool) -> Path:
    """Another program's SQLite file (rollback journal), with a table or empty."""
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA user_version = 7")  # writes the header: an empty database
    if tables:
        conn.execute("CREATE TABLE notes (body TEXT)")
        conn.execute("INSERT INTO notes VALUES ('my secret note')")
        conn.commit()
    conn.close()
    return path


@pytest.fixture
def cli(tmp_path: Path) -> Cli:
    return Cli(tmp_path)


@pytest.mark.sqlite_only
def test_reads_change_no_byte_of_a_sqlite_file(cli: Cli, tmp_path: Path) -> None:
    store = tmp_path / "memory.db"
    cli.ok("--db", str(store), "--agent", "me", "remember", "user", "city", "Paris")
    before = sqlite_state(store)
    assert before[2] == "wal"
    store.chmod(0o444)
    for args in READS:
        cli.ok("--db", str(store), *args)
    assert sqlite_state(store) == before
    # Another program's database, and an empty one: refused, and left exactly as they were.
    for name, tables, why in (
        ("plain.db", True, "is not a mempill store (a SQLite database of another program)"),
        ("empty.db", False, "needs schema migration(s) 1"),
    ):
        plain = plain_database(tmp_path / name, tables)
        before = sqlite_state(plain)
        assert before[1:] == ((1, "delete") if tables else (0, "delete"))
        for args in READS:
            line = cli.fails(3, "--db", str(plain), "--agent", "me", *args)
            assert why in line, line
        assert sqlite_state(plain) == before
        assert sorted(p.name for p in tmp_path.glob(f"{name}*")) == [name]  # no -wal, -shm


@pytest.mark.sqlite_only
def test_doctor_and_exports_change_no_file_of_the_folder(cli: Cli, tmp_path: Path) -> None:
    """Files that are not agent stores are skipped and never opened for writing."""
    agents = tmp_path / "agents"
    cli.ok("--db", f"{agents}/", "--agent", "alice", "remember", "sky", "color", "blue")
    plain_database(agents / "notes.db", tables=True)
    plain_database(agents / "empty.db", tables=False)
    (agents / "junk.db").write_bytes(b"not a database" * 100)
    (agents / "alice copy.db").write_bytes((agents / "alice.db").read_bytes())
    (agents / "zero.db").touch()
    others = ("notes.db", "empty.db", "junk.db", "alice copy.db", "zero.db")
    before = {name: (agents / name).read_bytes() for name in ("alice.db", *others)}
    states = {name: sqlite_state(agents / name) for name in ("notes.db", "empty.db")}
    listing = sorted(p.name for p in agents.iterdir())
    report = cli("--db", str(agents), "doctor", "--json")
    assert report.code in (0, 1), report  # an empty file counts as an agent not yet written
    found = {Path(d["path"]).name: d for d in report.json()["databases"]}
    assert found["alice.db"]["ok"] is True and found["alice.db"]["agents"] == ["alice"]
    ignored = {Path(f["path"]).name for f in report.json()["ignored_files"]}
    assert {"notes.db", "junk.db", "alice copy.db"} <= ignored
    cli("--db", str(agents), "doctor")
    exported = cli("--db", str(agents), "export", "claims")
    assert exported.code in (0, 3), exported
    assert {name: (agents / name).read_bytes() for name in before} == before
    assert {name: sqlite_state(agents / name) for name in states} == states
    # Nothing new beside them (a WAL store's own -wal and -shm files may appear).
    assert sorted(p.name for p in agents.iterdir() if "db-" not in p.name) == listing


# ---------------------------------------------------------------- PostgreSQL


@pytest.fixture
def schema_dsn(postgres_server: str) -> Iterator[str]:
    if not postgres_selected():
        pytest.skip("MEMPILL_TEST_BACKENDS excludes postgres")
    from mempill.lab.servers import fresh_schema

    with fresh_schema(postgres_server, prefix="ro") as dsn:
        yield dsn


@pytest.mark.postgres_only
def test_reads_run_no_ddl_and_need_only_select(cli: Cli, schema_dsn: str) -> None:
    env = {"MEMPILL_PG_DSN": schema_dsn}
    # An empty schema stays empty: a read runs no migration.
    line = cli.fails(3, "--agent", "me", "recall", "user", "city", **env)
    assert "needs migration(s)" in line and "read-only" in line
    tables = "SELECT count(*) FROM pg_tables WHERE schemaname = current_schema()"
    assert fetch(schema_dsn, tables) == [(0,)]
    cli.ok("--agent", "me", "remember", "user", "city", "Paris", **env)
    role = f"ro_{uuid.uuid4().hex[:12]}"
    try:
        shown = cli.ok(
            "pg", "grant-agent", "me", "--role", role, "--read-only", "--print-sql", **env
        )
        assert "INSERT" not in shown.out.replace("INSERT INTO", "") and "UPDATE" not in shown.out
        done = cli.ok("pg", "grant-agent", "me", "--role", role, "--read-only", **env)
        assert f"role '{role}' may read agent 'me'" in done.out
        privileges = fetch(
            schema_dsn,
            "SELECT has_table_privilege(%s, 'claims', 'SELECT'), "
            "has_table_privilege(%s, 'claims', 'INSERT'), "
            "has_table_privilege(%s, 'pending_adjudications', 'UPDATE')",
            (role, role, role),
        )
        assert privileges == [(True, False, False)]
        reader = {"MEMPILL_PG_DSN": with_params(schema_dsn, user=role)}
        for args in READS:
            cli.ok("--agent", "me", *args, **reader)
        recall = cli.ok("--agent", "me", "recall", "user", "city", "--json", **reader).json()
        assert recall["primary"]["value"] == "Paris"
        # Its writes are refused by PostgreSQL itself; a role that may write is not made
        # read-only by a second grant (revoke first).
        line = cli.fails(3, "--agent", "me", "remember", "user", "city", "Lyon", **reader)
        assert "permission denied" in line
        cli.ok("pg", "revoke-agent", "me", "--role", role, **env)
        cli.ok("pg", "grant-agent", "me", "--role", role, **env)
        line = cli.fails(2, "pg", "grant-agent", "me", "--role", role, "--read-only", **env)
        assert f"role '{role}' may already write (INSERT)" in line
        line = cli.fails(2, "pg", "revoke-agent", "me", "--role", role, "--read-only", **env)
        assert "--read-only is for grant-agent and grant-service" in line
        cli.ok("pg", "revoke-agent", "me", "--role", role, **env)
    finally:
        drop_role(schema_dsn, role)


def drop_role(dsn: str, role: str) -> None:
    """Roles belong to the whole server: drop the test's own, with its privileges."""
    import psycopg
    from psycopg import sql

    with psycopg.connect(dsn, autocommit=True) as conn:
        if conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (role,)).fetchone():
            conn.execute(sql.SQL("DROP OWNED BY {}").format(sql.Identifier(role)))
            conn.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(role)))


@pytest.mark.postgres_only
def test_a_warning_from_opening_the_store_is_one_line(cli: Cli, schema_dsn: str) -> None:
    """0.0.0.0 is not a loopback address, so mempill warns that the connection is not
    verified (where the test server listens on TCP, 0.0.0.0 reaches it)."""
    from psycopg.conninfo import conninfo_to_dict

    port = str(conninfo_to_dict(schema_dsn).get("port") or 5432)
    remote = with_params(schema_dsn, host="0.0.0.0", port=port, connect_timeout="3")
    done = cli("--agent", "me", "audit", MEMPILL_PG_DSN=remote)
    assert done.code in (0, 3), done
    lines = done.err.splitlines()
    assert lines[0].startswith("mempill: warning: PostgreSQL host 0.0.0.0 is reached with ")
    assert "not verify-full" in lines[0]
    assert len(lines) == (1 if done.code == 0 else 2), done.err
    assert all(line.startswith(("mempill: warning: ", "mempill: error: ")) for line in lines)
