"""The MCP server answers every call with a result or a documented error (issue 12).

Driven by the SDK's stdio client like tests/test_mcp.py, except where the SDK's client
cannot send what is tested (a lone surrogate escape): there a minimal JSON-RPC client
writes the lines itself. Covered: a new store gets its missing directories, a server that
cannot start says why to the client, a store owned by another agent is an error and not
an empty memory, `committed` means a row was stored, hostile arguments are tool errors.
"""

from __future__ import annotations

import json
import os
import select
import subprocess
import sys
from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp import Client
from mcp.client.stdio import StdioServerParameters
from pghelpers import postgres_selected
from test_mcp import MEMPILL, TOOLS, Tools, server_env, session

UNCLEAN = "contains U+0000 or an unpaired surrogate"
MAX_SEQ = 2**63 - 1


def failed_session(env: dict[str, str], cwd: Path, args: list[str] | None = None) -> list[str]:
    """Connect to a server that cannot start; return its instructions and tool errors."""
    params = StdioServerParameters(
        command=sys.executable, args=["-m", "mempill.mcp", *(args or [])], env=env, cwd=str(cwd)
    )
    found: list[str] = []

    async def main() -> None:
        async with Client(params, read_timeout_seconds=60) as client:
            found.append(client.instructions or "")
            listed = {t.name for t in (await client.list_tools()).tools}
            assert listed == TOOLS
            tools = Tools(client)
            found.append(await tools.error("recall", subject="user", predicate="city"))
            found.append(await tools.error("remember", subject="u", predicate="p", value=1))
            found.append(await tools.error("audit"))

    anyio.run(main)
    return found


@pytest.mark.sqlite_only
def test_a_new_store_gets_its_missing_directories(tmp_path: Path) -> None:
    deep = tmp_path / "new dir" / "dé'ep $(1)" / "memory.db"
    agents = tmp_path / "fresh" / "agents"

    async def body(tools: Tools) -> None:
        stored = await tools.ok("remember", subject="user", predicate="city", value="Oslo")
        assert stored["committed"] is True

    session(server_env(20, MEMPILL_DB_PATH=str(deep)), tmp_path, body)
    assert deep.is_file()
    session(server_env(21, MEMPILL_DB_PATH=f"{agents}/"), tmp_path, body)
    assert sorted(p.name for p in agents.iterdir()) == ["assistant.db"]


@pytest.mark.sqlite_only
def test_a_server_that_cannot_start_tells_the_client_why(tmp_path: Path) -> None:
    junk = tmp_path / "junk.db"
    junk.write_bytes(b"this is not a database at all" * 100)
    owned = tmp_path / "owned.db"
    done = subprocess.run(
        [str(MEMPILL), "--db", str(owned), "--agent", "alice", "remember", "a", "b", "1"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    (tmp_path / "plain.txt").write_text("a file, not a directory", encoding="utf-8")
    cases = [
        ({"MEMPILL_DB_PATH": str(junk)}, [], "junk.db"),
        ({"MEMPILL_DB_PATH": str(owned)}, [], "belongs to agent 'alice', not 'assistant'"),
        ({"MEMPILL_DB_PATH": str(tmp_path / "plain.txt" / "m.db")}, [], "plain.txt"),
        ({"MEMPILL_AGENT_ID": ""}, [], "MEMPILL_AGENT_ID is not set"),
        ({"MEMPILL_AGENT_ID": "../etc"}, [], "agent_id: '../etc' is invalid"),
        ({"MEMPILL_READ_ONLY": "maybe"}, [], "MEMPILL_READ_ONLY='maybe'"),
        ({}, ["--bogus"], "unrecognized arguments: --bogus"),
    ]
    for extra, args, reason in cases:
        env = server_env(22) | extra
        instructions, *errors = failed_session(env, tmp_path, args)
        assert instructions.startswith("mempill could not start: "), instructions
        assert reason in instructions.splitlines()[0], (reason, instructions)
        for error in errors:
            assert error.startswith("Error executing tool "), error
            assert "mempill could not start: " in error and reason in error, (reason, error)
            assert "restart the server" in error and "internal error" not in error


@pytest.mark.sqlite_only
def test_a_failed_start_still_exits_2_with_one_line_for_a_script(tmp_path: Path) -> None:
    base = {k: v for k, v in os.environ.items() if not k.startswith("MEMPILL_")}
    done = subprocess.run(
        [sys.executable, "-m", "mempill.mcp", "--read-only", "--db", str(tmp_path / "no.db")],
        env=base | {"MEMPILL_AGENT_ID": "a"},
        input="",
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.strip().splitlines() == [
        f"mempill mcp: error: read-only mode needs an existing database, and "
        f"{str(tmp_path / 'no.db')!r} does not exist (--db / MEMPILL_DB_PATH)"
    ]
    assert not (tmp_path / "no.db").exists()


@pytest.mark.sqlite_only
def test_a_store_taken_by_another_agent_is_an_error_not_an_empty_memory(tmp_path: Path) -> None:
    """The file is unbound when the server starts; another process binds it to alice."""
    db = tmp_path / "shared.db"

    async def body(tools: Tools) -> None:
        empty = await tools.ok("recall", subject="user", predicate="city")
        assert empty["status"] == "NoBelief"
        done = subprocess.run(
            [str(MEMPILL), "--db", str(db), "--agent", "alice", "remember", "user", "city", "X"],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        expected = f"{db} belongs to agent 'alice', not 'assistant'"
        for name, arguments in (
            ("recall", {"subject": "user", "predicate": "city"}),
            ("history", {"subject": "user", "predicate": "city"}),
            ("query_subject", {"subject": "user"}),
            ("audit", {}),
            ("reconcile", {}),
            ("remember", {"subject": "user", "predicate": "city", "value": "Y"}),
        ):
            message = await tools.error(name, **arguments)
            assert expected in message and "set MEMPILL_AGENT_ID=alice" in message, message

    session(server_env(23, MEMPILL_DB_PATH=str(db)), tmp_path, body)


@pytest.mark.sqlite_only
def test_committed_means_this_call_stored_a_row(tmp_path: Path) -> None:
    async def body(tools: Tools) -> None:
        paris = await tools.ok("remember", subject="user", predicate="city", value="Paris")
        assert paris["committed"] is True
        lyon = await tools.ok("remember", subject="user", predicate="city", value="Lyon")
        assert lyon["disposition"] == "Contested" and lyon["committed"] is True
        assert lyon["status_reason"].startswith("Stored, but it contradicts")
        echo = await tools.ok(
            "ingest_claim",
            subject="user",
            predicate="city",
            value="Paris",
            provenance="RecallReEntry",
            derived_from=[paris["claim_ref"]],
        )
        assert echo["reason"] == "recall_echo" and echo["disposition"] == "CommittedCheap"
        assert echo["committed"] is False and echo["claim_ref"] == paris["claim_ref"]
        rejected = await tools.ok("remember", subject="", predicate="city", value="Rome")
        assert rejected["disposition"] == "Rejected" and rejected["committed"] is False
        low = await tools.ok(
            "ingest_claim", subject="user", predicate="age", value=41, value_confidence=0.1
        )
        assert low["disposition"] == "PendingLowConfidence" and low["committed"] is True
        ended = await tools.ok(
            "end_fact", subject="user", predicate="city", value="Lyon", at="2026-06"
        )
        assert ended["committed"] is True and ended["receipts"][0]["committed"] is True
        again = await tools.ok(
            "end_fact", subject="user", predicate="city", claim_ref=lyon["claim_ref"], at="2026-06"
        )
        assert again["receipts"][0]["no_op"] is True
        assert again["committed"] is False and again["receipts"][0]["committed"] is False
        claims = {e["claim_ref"] for e in (await tools.ok("audit"))["entries"] if e["claim_ref"]}
        assert {paris["claim_ref"], lyon["claim_ref"], low["claim_ref"]} <= claims

    session(server_env(24), tmp_path, body)


@pytest.mark.sqlite_only
def test_hostile_arguments_are_tool_errors_and_the_server_stays_usable(tmp_path: Path) -> None:
    async def body(tools: Tools) -> None:
        await tools.ok("remember", subject="user", predicate="city", value="Paris")

        async def still_usable() -> None:
            recall = await tools.ok("recall", subject="user", predicate="city")
            assert recall["value"] == "Paris"

        for value in (MAX_SEQ + 1, 2**64, 10**40, -1):
            message = await tools.error("audit", after_seq=value)
            assert "invalid argument 'after_seq'" in message, message
            await still_usable()
        for value in (0, 1001, MAX_SEQ, 10**40):
            message = await tools.error("audit", limit=value)
            assert "invalid argument 'limit'" in message, message
        page = await tools.ok("audit", after_seq=MAX_SEQ, limit=1000)
        assert page["entries"] == [] and page["next_cursor"] is None
        nul = "user\x00"
        for name, arguments, argument in (
            ("recall", {"subject": nul, "predicate": "city"}, "subject"),
            ("recall", {"subject": "user", "predicate": "ci\x00ty"}, "predicate"),
            ("query_memory", {"subject": nul, "predicate": "city"}, "subject"),
            ("query_subject", {"subject": nul}, "subject"),
            ("history", {"subject": nul, "predicate": "city"}, "subject"),
            ("end_fact", {"subject": nul, "predicate": "city"}, "subject"),
            ("reconcile", {"lines": [["user", "ci\x00ty"]]}, "predicate"),
            ("audit", {"claim_ref": "\x00"}, "claim_ref"),
            ("recall", {"subject": "user", "predicate": "city", "as_of": "2024\x00"}, "as_of"),
            (
                "remember",
                {"subject": "u", "predicate": "p", "value": 1, "valid_from": "\x00"},
                "valid_from",
            ),
        ):
            message = await tools.error(name, **arguments)
            assert message.startswith(f"Error executing tool {name}: {argument}"), message
            assert "internal error" not in message
            await still_usable()
        message = await tools.error("recall", subject="k" * 1025, predicate="city")
        assert "subject: 1025 characters; keys are limited to 1024" in message
        message = await tools.error("recall", subject="", predicate="city")
        assert "subject: must not be empty" in message
        # Values the SDK's transport cannot parse are still answered (mempill.mcp.transport).
        message = await tools.error("remember", subject="u", predicate="n", value=10**5000)
        assert message == (
            "Error executing tool remember: value: a JSON integer of more than 4300 digits "
            "(send it as a string)"
        )
        deep: Any = []
        for _ in range(250):
            deep = [deep]
        message = await tools.error("remember", subject="u", predicate="n", value=deep)
        assert message.startswith("Error executing tool remember: the request is unreadable")
        await still_usable()
        # Writes are judged by the engine (rule V): Rejected, recorded, not an error.
        rejected = await tools.ok("remember", subject=nul, predicate="city", value="Rome")
        assert rejected["reason"] == "invalid_text" and rejected["committed"] is False
        await still_usable()

    session(server_env(25, MEMPILL_DB_PATH=str(tmp_path / "memory.db")), tmp_path, body)


class RawClient:
    """A minimal JSON-RPC client over the server's stdio: it sends lines as written."""

    def __init__(self, env: dict[str, str], cwd: Path, args: tuple[str, ...] = ()) -> None:
        base = {k: v for k, v in os.environ.items() if not k.startswith("MEMPILL_")}
        self.process = subprocess.Popen(
            [sys.executable, "-m", "mempill.mcp", *args],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=base | env,
            cwd=cwd,
            text=True,
        )
        hello = {
            "protocolVersion": "2025-06-18",
            "capabilities": {},
            "clientInfo": {"name": "t", "version": "1"},
        }
        reply = self.ask(
            json.dumps({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": hello})
        )
        assert "result" in reply, reply
        self.send('{"jsonrpc": "2.0", "method": "notifications/initialized"}')

    def send(self, line: str) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(line + "\n")
        self.process.stdin.flush()

    def ask(self, line: str) -> dict[str, Any]:
        self.send(line)
        assert self.process.stdout is not None
        ready, _, _ = select.select([self.process.stdout], [], [], 30)
        assert ready, f"no answer to {line[:200]}"
        answer: dict[str, Any] = json.loads(self.process.stdout.readline())
        return answer

    def close(self) -> tuple[int, str]:
        """Close stdin (the client leaves) and wait for the server to end."""
        stdout, stderr = self.process.communicate(timeout=30)
        assert stdout == ""
        return self.process.returncode, stderr


def call(ident: int, name: str, arguments: str) -> str:
    """A tools/call line with `arguments` as raw JSON text (escapes kept as written)."""
    return (
        f'{{"jsonrpc": "2.0", "id": {ident}, "method": "tools/call", '
        f'"params": {{"name": "{name}", "arguments": {arguments}}}}}'
    )


@pytest.mark.sqlite_only
def test_lone_surrogates_get_an_answer_naming_the_argument(tmp_path: Path) -> None:
    """The SDK's transport drops such a line (its client cannot even send one)."""
    client = RawClient(server_env(26, MEMPILL_DB_PATH=str(tmp_path / "m.db")), tmp_path)
    try:
        for ident, (name, arguments, argument) in enumerate(
            (
                ("recall", '{"subject": "user\\ud800", "predicate": "city"}', "subject"),
                ("remember", '{"subject": "u", "predicate": "p", "value": ["\\udfff"]}', "value"),
                (
                    "ingest_claim",
                    '{"subject": "u", "predicate": "p", "value": 1, "derived_from": ["\\udc00"]}',
                    "derived_from",
                ),
            ),
            start=1,
        ):
            reply = client.ask(call(ident, name, arguments))
            assert reply["id"] == ident and reply["result"]["isError"] is True, reply
            text = reply["result"]["content"][0]["text"]
            assert text.startswith(f"Error executing tool {name}: {argument}: {UNCLEAN}"), text
        # The server is still there and answers a valid call.
        ok = client.ask(
            call(9, "remember", '{"subject": "u", "predicate": "p", "value": "\\u00e9"}')
        )
        assert ok["result"]["isError"] is False and ok["result"]["structuredContent"]["committed"]
        # Not a tool call: a JSON-RPC error carrying the request's id.
        other = client.ask(
            '{"jsonrpc": "2.0", "id": 10, "method": "prompts/get", "params": {"name": "\\ud800"}}'
        )
        assert other["id"] == 10 and other["error"]["code"] == -32600
        # Not JSON at all: a parse error, id null (JSON-RPC 2.0).
        garbage = client.ask("{this is not json")
        assert garbage["id"] is None and garbage["error"]["code"] == -32700
        # JSON, but not JSON-RPC: an invalid request, with its id when it has one.
        bare = client.ask('{"id": 11, "method": "ping"}')
        assert bare["id"] == 11 and bare["error"]["code"] == -32600
        value = client.ask('"just a string"')
        assert value["id"] is None and value["error"]["code"] == -32600
        code, stderr = client.close()
        assert code == 0 and "Traceback" not in stderr
    finally:
        if client.process.poll() is None:  # a failed assertion: do not leave it running
            client.process.kill()
            client.process.communicate()


@pytest.mark.postgres_only
@pytest.mark.skipif(not postgres_selected(), reason="MEMPILL_TEST_BACKENDS excludes postgres")
def test_hostile_reads_on_postgres_are_refused_before_the_driver(
    tmp_path: Path, postgres_server: str
) -> None:
    from mempill.lab.servers import fresh_schema

    async def body(tools: Tools) -> None:
        await tools.ok("remember", subject="user", predicate="city", value="Paris")
        for arguments in (
            {"subject": "user\x00", "predicate": "city"},
            {"subject": "\u4e2d" * 1025, "predicate": "city"},
        ):
            message = await tools.error("recall", **arguments)
            assert message.startswith("Error executing tool recall: subject: "), message
        message = await tools.error("audit", after_seq=2**63)
        assert "invalid argument 'after_seq'" in message
        assert (await tools.ok("audit", after_seq=MAX_SEQ))["entries"] == []
        assert (await tools.ok("recall", subject="user", predicate="city"))["value"] == "Paris"

    with fresh_schema(postgres_server, prefix="mcph") as dsn:
        session(server_env(27, MEMPILL_PG_DSN=dsn), tmp_path, body)
