"""The MCP server as an attacker meets it (issue 22, the MCP side), with a real client.

A read-only server (`MEMPILL_READ_ONLY=1`, `--read-only`) opens its store read-only: it
changes no byte of a SQLite file (a 0444 one works), refuses a file it would have to
migrate without touching it, and serves from a PostgreSQL role that may only SELECT.
Under 200 hostile queries its memory stays within the bound docs/cli-and-mcp.md states.
A password in its settings never reaches stderr or the client; `--pg` with one, and a
remote server without certificate checks, are one warning line each on stderr.
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path
from typing import Any

import pytest
from pghelpers import postgres_selected, with_params
from test_cli import Cli
from test_mcp import TOOLS, WRITE_TOOLS, Tools, server_env, session
from test_mcp_hardening import RawClient, call, failed_session
from test_security_surface import SECRET, password_forms
from test_security_surface_ro import drop_role, plain_database, sqlite_state

#: The bound docs/cli-and-mcp.md states: a read-only server's RSS grows by at most this
#: much over 200 hostile queries (measured on this machine: about 10 MiB; before issue 22,
#: 215 MiB).
RSS_GROWTH_BOUND_MIB = 32
HOSTILE_QUERIES = 200


@pytest.fixture
def cli(tmp_path: Path) -> Cli:
    return Cli(tmp_path)


# ---------------------------------------------------------------- read-only on SQLite


@pytest.mark.sqlite_only
def test_a_read_only_server_changes_no_byte_of_its_file(cli: Cli, tmp_path: Path) -> None:
    db = tmp_path / "memory.db"
    cli.ok("--db", str(db), "--agent", "assistant", "remember", "user", "city", "Paris")
    before = sqlite_state(db)
    db.chmod(0o444)

    async def body(tools: Tools) -> None:
        listed = {t.name for t in (await tools.client.list_tools()).tools}
        assert listed == TOOLS - WRITE_TOOLS
        assert (await tools.ok("recall", subject="user", predicate="city"))["value"] == "Paris"
        await tools.ok("history", subject="user", predicate="city")
        await tools.ok("query_subject", subject="user")
        await tools.ok("audit")
        report = await tools.ok("reconcile")
        assert report["contested"] == []

    for switch in ({"MEMPILL_READ_ONLY": "1"}, {"MEMPILL_READ_ONLY": "true"}):
        session(server_env(40, MEMPILL_DB_PATH=str(db), **switch), tmp_path, body)
    assert sqlite_state(db) == before


@pytest.mark.sqlite_only
def test_a_read_only_server_leaves_a_file_it_cannot_serve_as_it_was(tmp_path: Path) -> None:
    """Before issue 22, read-only mode migrated such a file (24 objects) and set WAL."""
    for name, tables, reason in (
        ("plain.db", True, "is not a mempill store (a SQLite database of another program)"),
        ("empty.db", False, "needs schema migration(s) 1"),
    ):
        plain = plain_database(tmp_path / name, tables)
        before = sqlite_state(plain)
        env = server_env(41, MEMPILL_DB_PATH=str(plain), MEMPILL_READ_ONLY="1")
        instructions, *errors = failed_read_only_session(env, tmp_path)
        assert reason in instructions.splitlines()[0], instructions
        assert all(reason in error for error in errors), errors
        assert sqlite_state(plain) == before
        assert sorted(p.name for p in tmp_path.glob(f"{name}*")) == [name]
    # Read-only without a database would serve an always empty memory: refused.
    env = server_env(42, MEMPILL_READ_ONLY="1")
    instructions, *_ = failed_read_only_session(env, tmp_path)
    assert "read-only needs a store (--db / MEMPILL_DB_PATH or --pg" in instructions


def failed_read_only_session(env: dict[str, str], cwd: Path) -> list[str]:
    """A read-only server that could not start: its instructions and two tool errors."""
    found: list[str] = []

    async def body(tools: Tools) -> None:
        found.append(tools.client.instructions or "")
        listed = {t.name for t in (await tools.client.list_tools()).tools}
        assert listed == TOOLS - WRITE_TOOLS
        found.append(await tools.error("recall", subject="user", predicate="city"))
        found.append(await tools.error("audit"))

    session(env, cwd, body)
    return found


# ---------------------------------------------------------------- read-only on PostgreSQL


@pytest.mark.postgres_only
@pytest.mark.skipif(not postgres_selected(), reason="MEMPILL_TEST_BACKENDS excludes postgres")
def test_a_select_only_role_serves_a_read_only_server(
    cli: Cli, tmp_path: Path, postgres_server: str
) -> None:
    from mempill.lab.servers import fresh_schema

    role = f"mcpro_{uuid.uuid4().hex[:12]}"
    with fresh_schema(postgres_server, prefix="mcpro") as dsn:
        env = {"MEMPILL_PG_DSN": dsn}
        try:
            cli.ok("--agent", "assistant", "remember", "user", "city", "Paris", **env)
            cli.ok("pg", "grant-agent", "assistant", "--role", role, "--read-only", **env)
            reader = with_params(dsn, user=role)

            async def body(tools: Tools) -> None:
                recall = await tools.ok("recall", subject="user", predicate="city")
                assert recall["value"] == "Paris"
                assert len((await tools.ok("audit"))["entries"]) == 1
                await tools.ok("reconcile", lines=[["user", "city"]])

            for args in ([], ["--read-only"]):
                server = server_env(43, MEMPILL_PG_DSN=reader)
                if not args:
                    server["MEMPILL_READ_ONLY"] = "1"
                session(server, tmp_path, body, tuple(args))
        finally:
            drop_role(dsn, role)


# ---------------------------------------------------------------- secrets and warnings


def test_an_unparseable_conninfo_never_reaches_the_client_or_stderr(tmp_path: Path) -> None:
    broken = f"host=db user=me password=my {SECRET}"
    env = server_env(44, MEMPILL_PG_DSN=broken)
    instructions, *errors = failed_session(env, tmp_path)
    assert "libpq cannot parse the conninfo (not shown" in instructions
    assert SECRET not in instructions + "".join(errors)
    client = RawClient(server_env(44), tmp_path, ("--pg", broken))
    code, stderr = client.close()
    assert code == 2 and SECRET not in stderr
    assert [line.split(": ")[1] for line in stderr.splitlines()] == ["warning", "error"], stderr


@pytest.mark.postgres_only
@pytest.mark.skipif(not postgres_selected(), reason="MEMPILL_TEST_BACKENDS excludes postgres")
def test_a_password_stays_out_of_the_server_output(tmp_path: Path, postgres_server: str) -> None:
    from mempill.lab.servers import fresh_schema

    with fresh_schema(postgres_server, prefix="mcpsec") as dsn:
        for seed, form in enumerate(password_forms(dsn)[:3], start=50):
            for env, args in (
                (server_env(seed, MEMPILL_PG_DSN=form), ()),
                (server_env(seed + 10), ("--pg", form)),
            ):
                client = RawClient(env, tmp_path, args)
                reply = client.ask(
                    call(1, "remember", '{"subject": "u", "predicate": "p", "value": 1}')
                )
                assert reply["result"]["isError"] is False, reply
                assert SECRET not in str(reply)
                code, stderr = client.close()
                assert code == 0 and SECRET not in stderr
                expected = ["mempill mcp: warning: --pg carries a password"] if args else []
                assert [line[:45] for line in stderr.splitlines()] == expected, stderr


@pytest.mark.postgres_only
@pytest.mark.skipif(not postgres_selected(), reason="MEMPILL_TEST_BACKENDS excludes postgres")
def test_an_unverified_remote_server_is_one_warning_line(
    tmp_path: Path, postgres_server: str
) -> None:
    from psycopg.conninfo import conninfo_to_dict

    port = str(conninfo_to_dict(postgres_server).get("port") or 5432)
    remote = with_params(postgres_server, host="0.0.0.0", port=port, connect_timeout="3")
    client = RawClient(server_env(46, MEMPILL_PG_DSN=remote), tmp_path)
    code, stderr = client.close()
    lines = stderr.splitlines()
    assert lines[0].startswith("mempill mcp: warning: PostgreSQL host 0.0.0.0 is reached with ")
    assert all(
        line.startswith(("mempill mcp: warning: ", "mempill mcp: error: ")) for line in lines
    )
    assert len(lines) == (1 if code == 0 else 2), stderr


# ---------------------------------------------------------------- bounded memory


def rss_mib(pid: int) -> float:
    with open(f"/proc/{pid}/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise AssertionError(f"no VmRSS for {pid}")


def server_pid() -> int:
    """The MCP server this process started (its child running mempill.mcp)."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", encoding="utf-8", errors="replace") as f:
                parent = int(f.read().rsplit(")", 1)[1].split()[1])
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                command = f.read()
        except (OSError, ValueError, IndexError):
            continue
        if parent == os.getpid() and b"mempill.mcp" in command:
            found.append(int(entry))
    assert len(found) == 1, found
    return found[0]


def hostile(number: int) -> tuple[str, dict[str, Any]]:
    """The `number`th hostile query: 1 MiB keys and dates, absent keys of the largest
    size, big reconcile lists, deep and huge values the transport must answer."""
    megabyte = "x" * (1 << 20)
    key = f"{number:06d}" + "k" * 1018  # 1024 characters, never stored
    deep: Any = []
    for _ in range(250):
        deep = [deep]
    return [
        ("recall", {"subject": megabyte, "predicate": "city"}),
        ("recall", {"subject": key, "predicate": key}),
        ("query_subject", {"subject": key}),
        ("history", {"subject": key, "predicate": "city"}),
        ("reconcile", {"lines": [[f"{j:04d}{key[4:]}", key] for j in range(500)]}),
        ("recall", {"subject": deep, "predicate": "city"}),
        ("audit", {"after_seq": 10**5000}),
        ("recall", {"subject": "user", "predicate": "city", "as_of": megabyte}),
        ("query_memory", {"subject": key, "predicate": megabyte}),
        ("audit", {"claim_ref": megabyte}),
    ][number % 10]


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres_only)])
def read_only_store(request: pytest.FixtureRequest, cli: Cli, tmp_path: Path) -> Any:
    """The environment of a read-only server over a store holding one fact."""
    if request.param == "sqlite":
        db = str(tmp_path / "memory.db")
        cli.ok("--db", db, "--agent", "assistant", "remember", "user", "city", "Paris")
        yield {"MEMPILL_DB_PATH": db}
        return
    if not postgres_selected():
        pytest.skip("MEMPILL_TEST_BACKENDS excludes postgres")
    from mempill.lab.servers import fresh_schema

    with fresh_schema(request.getfixturevalue("postgres_server"), prefix="rss") as dsn:
        env = {"MEMPILL_PG_DSN": dsn}
        cli.ok("--agent", "assistant", "remember", "user", "city", "Paris", **env)
        yield env


def test_a_read_only_server_keeps_its_memory_bounded_under_hostile_queries(
    tmp_path: Path, read_only_store: dict[str, str]
) -> None:
    measured: dict[str, float] = {}

    async def body(tools: Tools) -> None:
        pid = server_pid()
        for _ in range(5):  # warm up: imports, first connections, caches of a normal read
            await tools.ok("recall", subject="user", predicate="city")
        measured["before"] = rss_mib(pid)
        answered = 0
        for number in range(HOSTILE_QUERIES):
            name, arguments = hostile(number)
            await tools.call(name, **arguments)  # a result or a tool error: never silence
            answered += 1
        measured["after"] = rss_mib(pid)
        assert answered == HOSTILE_QUERIES
        huge = "a JSON integer of more than 4300 digits (send it as a string)"
        assert huge in await tools.error("audit", after_seq=10**5000)
        assert huge in await tools.error("reconcile", lines=[["user", 10**5000]])
        recall = await tools.ok("recall", subject="user", predicate="city")
        assert recall["value"] == "Paris"

    env = server_env(47, MEMPILL_READ_ONLY="1", **read_only_store)
    session(env, tmp_path, body)
    growth = measured["after"] - measured["before"]
    print(f"RSS {measured['before']:.1f} -> {measured['after']:.1f} MiB (+{growth:.1f})")
    assert growth <= RSS_GROWTH_BOUND_MIB, measured
