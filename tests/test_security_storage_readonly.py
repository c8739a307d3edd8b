"""Issue 22, finding 2: read-only means read-only, on both backends.

SQLite opens databases with a `mode=ro` URI, runs no migration and no PRAGMA that writes,
reads a 0444 file and a plain (rollback-journal) file whose schema is current, and refuses
one that needs migrating. PostgreSQL checks the schema version in a read-only transaction
(no DDL, no migration lock) and reads with a role that has SELECT alone. On both, every
write call raises ValidationError before touching storage; reconcile only reports.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import textwrap
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from conftest import RecordingOracle
from support import AGENT, request

import mempill
from mempill import Engine, SeededIds, StorageError, ValidationError

START = datetime(2026, 1, 1, tzinfo=UTC)
WRITES = "ingest", "ingest_many", "end", "reopen", "invalidate", "end_fact"


def write_calls(engine: Engine, ref: str) -> dict[str, Callable[[], Any]]:
    """Every public call that writes, by name."""
    return {
        "ingest": lambda: engine.ingest(request("Lyon")),
        "ingest_many": lambda: engine.ingest_many([request("Lyon")]),
        "remember": lambda: engine.remember(AGENT, "user", "city", "Lyon"),
        "end": lambda: engine.end(AGENT, ref, "2030"),
        "reopen": lambda: engine.reopen(AGENT, ref),
        "invalidate": lambda: engine.invalidate(AGENT, ref),
        "end_fact": lambda: engine.end_fact(AGENT, "user", "city", "2030"),
        "submit_adjudication": lambda: engine.submit_adjudication(ref, "Affirm"),
        "sweep_expired": engine.sweep_expired,
        "notify_pending": engine.notify_pending,
    }


def check_refuses_writes(engine: Engine, ref: str) -> None:
    for name, call in write_calls(engine, ref).items():
        what = "ingest" if name in ("remember", "ingest_many") else name
        with pytest.raises(ValidationError, match=f"^{what}: this engine is read-only"):
            call()
    with pytest.raises(ValidationError, match="read-only"), engine.store.write(AGENT):
        pass
    report = engine.reconcile(AGENT)  # reads, reports, never escalates
    assert report.escalations == 0 and report.lines[0].status.value == "Contested"


def seeded(open_engine: Callable[..., Engine]) -> str:
    """A contested line with a pending adjudication; the first claim's ref."""
    with open_engine(oracle=RecordingOracle(), ids=SeededIds(5)) as engine:
        first = engine.ingest(request("Paris"))
        engine.ingest(request("Rome"))
        return first.claim_ref


def fingerprint(folder: Path) -> dict[str, str]:
    """Name -> sha256 of every file in a folder (what a read-only open may not change)."""
    return {
        p.name: hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.iterdir())
        if p.is_file() and not p.name.endswith(("-wal", "-shm"))
    }


# ---------------------------------------------------------------- SQLite


def test_sqlite_read_only_reads_and_refuses_every_write(tmp_path: Path) -> None:
    path = tmp_path / "memory.db"
    ref = seeded(lambda **kw: mempill.open_default(path, **kw))
    before = fingerprint(tmp_path)
    with mempill.open_default(path, read_only=True, oracle=RecordingOracle()) as engine:
        assert engine.store.read_only
        assert engine.query_memory(AGENT, "user", "city").status.value == "Contested"
        assert len(engine.list_pending(AGENT)) == 1
        entries = engine.query_audit(AGENT).entries
        check_refuses_writes(engine, ref)
        assert engine.query_audit(AGENT).entries == entries
    assert fingerprint(tmp_path) == before


def test_sqlite_read_only_changes_no_journal_mode_and_runs_no_migration(tmp_path: Path) -> None:
    """A store left with a rollback journal (copied, vacuumed into, or set by hand): the
    writable open made it WAL; the read-only one leaves it exactly as it is."""
    path = tmp_path / "plain.db"
    seeded(lambda **kw: mempill.open_default(path, **kw))
    with sqlite3.connect(path) as conn:
        conn.execute("PRAGMA journal_mode = DELETE")
    conn.close()
    before = fingerprint(tmp_path)
    with mempill.open_default(path, read_only=True) as engine:
        assert engine.recall(AGENT, "user", "city").status.value == "Contested"
        conn = engine.store.connection_for(AGENT)  # type: ignore[attr-defined]
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "delete"
        assert conn.execute("PRAGMA query_only").fetchone()[0] == 1
    assert fingerprint(tmp_path) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["plain.db"]  # no -wal, no -shm


def test_sqlite_read_only_refuses_a_store_that_needs_migrating(tmp_path: Path) -> None:
    empty = tmp_path / "empty.db"
    with sqlite3.connect(empty) as conn:
        conn.execute("PRAGMA user_version = 7")  # a SQLite file with no table yet
    conn.close()
    with pytest.raises(StorageError, match=r"needs schema migration.*without read_only"):
        mempill.open_default(empty, read_only=True)
    assert sqlite3.connect(empty).execute("SELECT count(*) FROM sqlite_master").fetchone() == (0,)
    newer = tmp_path / "newer.db"
    seeded(lambda **kw: mempill.open_default(newer, **kw))
    with sqlite3.connect(newer) as conn:
        conn.execute("INSERT INTO schema_migrations VALUES (99, '0099_future.sql', 'x')")
    conn.close()
    with pytest.raises(StorageError, match="newer than this mempill knows"):
        mempill.open_default(newer, read_only=True)
    with pytest.raises(StorageError, match="does not exist"):
        mempill.open_default(tmp_path / "missing.db", read_only=True)
    with pytest.raises(StorageError, match="does not exist"):
        mempill.open_directory(tmp_path / "no-folder", read_only=True)
    with pytest.raises(mempill.ConfigError, match="read-only SQLite store needs a path"):
        mempill.stores.sqlite.SQLiteStore(read_only=True)
    assert not (tmp_path / "missing.db").exists() and not (tmp_path / "no-folder").exists()


def test_sqlite_read_only_folder_creates_no_agent_file(tmp_path: Path) -> None:
    folder = tmp_path / "agents"
    ref = seeded(lambda **kw: mempill.open_directory(folder, **kw))
    before = fingerprint(folder)
    with mempill.open_directory(folder, read_only=True) as engine:
        assert engine.query_memory("ghost", "user", "city").status.value == "NoBelief"
        assert engine.query_memory(AGENT, "user", "city").status.value == "Contested"
        with pytest.raises(ValidationError, match="read-only"):
            engine.remember("ghost", "user", "city", "Oslo")
        check_refuses_writes(engine, ref)
    assert fingerprint(folder) == before and not (folder / "ghost.db").exists()


READ_AS_ANOTHER_USER = textwrap.dedent(
    """
    import sys
    sys.path.insert(0, sys.argv[1])
    import mempill
    with mempill.open_default(sys.argv[2], read_only=True) as engine:
        print(engine.recall("agent-1", "user", "city").status.value)
    """
)


def test_sqlite_read_only_opens_a_0444_file(tmp_path: Path) -> None:
    """Mode 0444 in a folder the reader may write (SQLite keeps its -shm beside a WAL
    database). Root ignores file modes, so as root the read also runs as `nobody`."""
    folder = tmp_path / "shared"
    folder.mkdir()
    path = folder / "memory.db"
    seeded(lambda **kw: mempill.open_default(path, **kw))
    path.chmod(0o444)
    before = fingerprint(folder)
    with mempill.open_default(path, read_only=True) as engine:
        assert engine.recall(AGENT, "user", "city").status.value == "Contested"
    assert fingerprint(folder) == before
    if os.geteuid() != 0:
        return
    shared = Path(tempfile.mkdtemp(prefix="mempill-ro-"))  # /tmp: nobody can reach it
    try:
        shared.chmod(0o777)
        copy = shared / "memory.db"
        shutil.copy(path, copy)
        copy.chmod(0o444)
        as_nobody(copy)
    finally:
        shutil.rmtree(shared)


def as_nobody(path: Path) -> None:
    """Read `path` read-only as the user nobody, who may not write it."""
    before = fingerprint(path.parent)
    root = str(Path(mempill.__file__).resolve().parents[1])
    for python in (sys.executable, "/usr/bin/python3"):
        try:
            done = subprocess.run(
                [python, "-c", READ_AS_ANOTHER_USER, root, str(path)],
                user=65534,
                group=65534,
                capture_output=True,
                text=True,
                timeout=60,
                check=False,
            )
        except PermissionError:
            continue  # this interpreter is not readable by nobody
        if "Fatal Python error" in done.stderr or "No module named 'mempill'" in done.stderr:
            continue  # nobody cannot reach this interpreter's files or the checkout
        assert done.returncode == 0, done.stderr
        assert done.stdout.strip() == "Contested"
        assert fingerprint(path.parent) == before
        return
    pytest.skip("no Python interpreter (and checkout) the user nobody may use")


# ---------------------------------------------------------------- PostgreSQL


@pytest.fixture
def pg_schema(postgres_server: str) -> Iterator[tuple[str, str, list[str]]]:
    """(owner DSN scoped to a fresh schema, the schema, roles to drop afterwards)."""
    import psycopg
    from psycopg import sql
    from psycopg.conninfo import conninfo_to_dict

    from mempill.lab.servers import fresh_schema

    made: list[str] = []
    with fresh_schema(postgres_server, prefix="ro") as dsn:
        schema = conninfo_to_dict(dsn)["options"].split("=", 1)[1]
        yield dsn, schema, made
    with psycopg.connect(postgres_server, autocommit=True) as conn:
        for role in made:
            conn.execute(sql.SQL("DROP OWNED BY {}").format(sql.Identifier(role)))
            conn.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(role)))


def select_only_role(dsn: str, schema: str, made: list[str], agent: str | None) -> str:
    """A role made by `grant_script(read_only=True)`: SELECT alone; its DSN."""
    import psycopg
    from pghelpers import with_params

    from mempill.stores.pgaccess import grant_script

    role = f"reader_{uuid.uuid4().hex[:8]}"
    made.append(role)
    script = grant_script(schema, role, agent, create=True, password=None, read_only=True)
    with psycopg.connect(dsn, autocommit=True) as conn:
        for statement in script:
            conn.execute(statement)
        grants = conn.execute(
            "SELECT DISTINCT privilege_type FROM information_schema.role_table_grants "
            "WHERE grantee = %s",
            (role,),
        ).fetchall()
    assert {g[0] for g in grants} == {"SELECT"}
    return str(with_params(dsn, user=role))


@pytest.mark.postgres_only
def test_postgres_read_only_reads_and_refuses_every_write(
    pg_schema: tuple[str, str, list[str]],
) -> None:
    dsn, _, _ = pg_schema
    ref = seeded(lambda **kw: mempill.open_postgres(dsn, pool_min_size=0, **kw))
    with mempill.open_postgres(dsn, read_only=True, oracle=RecordingOracle()) as engine:
        assert engine.store.read_only and "read-only" in repr(engine.store)
        assert engine.query_memory(AGENT, "user", "city").status.value == "Contested"
        check_refuses_writes(engine, ref)
        with engine.store.pool.connection() as conn:  # type: ignore[attr-defined]
            assert conn.execute("SHOW default_transaction_read_only").fetchone() == ("on",)
            with pytest.raises(Exception, match="read-only transaction"):
                conn.execute("CREATE TABLE nope (x int)")


@pytest.mark.postgres_only
def test_postgres_read_only_with_a_select_only_role(pg_schema: tuple[str, str, list[str]]) -> None:
    dsn, schema, made = pg_schema
    seeded(lambda **kw: mempill.open_postgres(dsn, pool_min_size=0, **kw))
    for agent in (AGENT, None):  # an agent role, and a service role
        reader = select_only_role(dsn, schema, made, agent)
        with mempill.open_postgres(reader, read_only=True, pool_min_size=0) as engine:
            assert engine.recall(AGENT, "user", "city").status.value == "Contested"
            assert len(engine.query_audit(AGENT).entries) == 3  # two claims, one queued
        writer = mempill.open_postgres(reader, pool_min_size=0)  # not read-only
        with writer, pytest.raises(mempill.PermissionDeniedError):
            writer.remember(AGENT, "user", "city", "Oslo")  # the server refuses it
    with mempill.open_postgres(dsn, pool_min_size=0) as owner:
        assert len(owner.query_audit(AGENT).entries) == 3


@pytest.mark.postgres_only
def test_postgres_read_only_runs_no_ddl_and_takes_no_migration_lock(
    pg_schema: tuple[str, str, list[str]],
) -> None:
    import psycopg

    from mempill.stores.pgschema import MIGRATION_KEY

    dsn, _, _ = pg_schema
    with pytest.raises(StorageError, match=r"needs migration\(s\) 1, 2, 3.*without read_only"):
        mempill.open_postgres(dsn, read_only=True, pool_min_size=0)
    with psycopg.connect(dsn, autocommit=True) as conn:
        assert conn.execute("SELECT to_regclass('schema_migrations')").fetchone() == (None,)
    mempill.open_postgres(dsn, pool_min_size=0).close()  # migrated by its owner
    with psycopg.connect(dsn, autocommit=True) as holder:
        holder.execute(f"SELECT pg_advisory_lock({MIGRATION_KEY})")  # a migration running
        with mempill.open_postgres(dsn, read_only=True, connect_timeout=2) as engine:
            assert engine.recall(AGENT, "user", "city").status.value == "NoBelief"
