"""The MCP server, started as a subprocess and driven by the SDK's stdio client.

Each session runs `python -m mempill.mcp` (or the `mempill mcp` console script) with a
stepping clock and seeded ids from the environment, so results are reproducible.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp import Client
from mcp.client.stdio import StdioServerParameters
from pghelpers import postgres_selected

from mempill import SeededIds

CLOCK = "2026-01-01T00:00:00Z"
TOOLS = {
    "search",
    "list_subjects",
    "list_predicates",
    "snapshot",
    "timeline",
    "changes",
    "remember",
    "recall",
    "history",
    "end_fact",
    "ingest_claim",
    "query_memory",
    "query_subject",
    "audit",
    "reconcile",
}
WRITE_TOOLS = {"remember", "ingest_claim", "end_fact"}
MEMPILL = Path(sys.executable).with_name("mempill")


class Tools:
    """A connected client: `await tools.call(name, **args)` returns (is_error, payload)."""

    def __init__(self, client: Client) -> None:
        self.client = client

    async def call(self, name: str, **arguments: Any) -> tuple[bool, Any]:
        result = await self.client.call_tool(name, arguments)
        if result.is_error:
            text = " ".join(getattr(block, "text", "") for block in result.content)
            return True, text
        return False, result.structured_content

    async def ok(self, name: str, **arguments: Any) -> dict[str, Any]:
        failed, payload = await self.call(name, **arguments)
        assert not failed, payload
        assert isinstance(payload, dict)
        return payload

    async def error(self, name: str, **arguments: Any) -> str:
        failed, payload = await self.call(name, **arguments)
        assert failed, payload
        assert isinstance(payload, str)
        assert "Traceback" not in payload
        return payload


def server_env(seed: int, **extra: str) -> dict[str, str]:
    env = {
        "MEMPILL_AGENT_ID": "assistant",
        "MEMPILL_CLOCK_START": CLOCK,
        "MEMPILL_ID_SEED": str(seed),
    }
    env.update(extra)
    return env


def session(
    env: dict[str, str],
    cwd: Path,
    body: Callable[[Tools], Awaitable[None]],
    args: tuple[str, ...] = (),
) -> None:
    """Start the server (with command-line `args`), run `body` against it, shut it down."""
    params = StdioServerParameters(
        command=sys.executable, args=["-m", "mempill.mcp", *args], env=env, cwd=str(cwd)
    )

    async def main() -> None:
        async with Client(params, read_timeout_seconds=60) as client:
            await body(Tools(client))

    anyio.run(main)


@pytest.mark.sqlite_only
def test_tools_are_listed_with_schemas_an_agent_can_act_on(tmp_path: Path) -> None:
    async def body(tools: Tools) -> None:
        listed = {t.name: t for t in (await tools.client.list_tools()).tools}
        assert set(listed) == TOOLS
        for tool in listed.values():
            assert tool.description and len(tool.description) > 40, tool.name
            properties = tool.input_schema["properties"]
            for name, schema in properties.items():
                assert schema.get("description"), f"{tool.name}.{name} has no description"
            assert tool.annotations is not None
            assert tool.annotations.read_only_hint is (tool.name not in WRITE_TOOLS)
        assert set(listed["remember"].input_schema["required"]) == {"subject", "predicate", "value"}
        cardinality = listed["ingest_claim"].input_schema["properties"]["cardinality"]
        assert cardinality["enum"] == ["Functional", "SetValued", "Unknown"]

    session(server_env(1), tmp_path, body)


@pytest.mark.sqlite_only
def test_remember_recall_and_a_contradiction_surfaced_as_contested(tmp_path: Path) -> None:
    async def body(tools: Tools) -> None:
        first = await tools.ok("remember", subject="user", predicate="city", value="Paris")
        assert first["claim_ref"] == SeededIds(5)()  # ids come from MEMPILL_ID_SEED
        assert first["disposition"] == "CommittedCheap" and first["committed"] is True
        recall = await tools.ok("recall", subject="user", predicate="city")
        assert recall["value"] == "Paris"
        assert [v["value"] for v in recall["values"]] == ["Paris"]

        second = await tools.ok("remember", subject="user", predicate="city", value="Lyon")
        assert second["disposition"] == "Contested"
        assert second["contested_with"] == [first["claim_ref"]]
        assert "contradicts" in second["status_reason"]
        recall = await tools.ok("recall", subject="user", predicate="city")
        assert recall["status"] == "Contested"
        assert recall["value"] is None
        assert sorted(v["value"] for v in recall["values"]) == ["Lyon", "Paris"]
        assert recall["status_reason"].startswith("Contested: 2 different values")

        full = await tools.ok("query_memory", subject="user", predicate="city")
        assert full["status"] == "Contested" and len(full["alternatives"]) == 2
        report = await tools.ok("reconcile")
        assert report["contested"] == [["user", "city"]] and report["escalations"] == 0

        ended = await tools.ok("end_fact", subject="user", predicate="city", value="Lyon")
        assert ended["receipts"][0]["disposition"] == "Superseded"
        assert ended["belief"]["value"] == "Paris"
        history = await tools.ok("history", subject="user", predicate="city")
        assert [(e["value"], e["status"]) for e in history["entries"]] == [
            ("Paris", "Current"),
            ("Lyon", "Ended"),
        ]
        audit = await tools.ok("audit", limit=2)
        assert [e["stream_seq"] for e in audit["entries"]] == [1, 2]
        assert audit["next_cursor"] == 2

    session(server_env(5), tmp_path, body)


@pytest.mark.sqlite_only
def test_ingest_claim_takes_provenance_strings_and_dicts(tmp_path: Path) -> None:
    async def body(tools: Tools) -> None:
        user = await tools.ok(
            "ingest_claim",
            subject="user",
            predicate="languages",
            value="fr",
            provenance={"type": "External", "kind": "UserAsserted"},
            cardinality="SetValued",
            valid_from="2020",
        )
        assert user["disposition"] == "CommittedCheap"
        member = await tools.ok(
            "ingest_claim",
            subject="user",
            predicate="languages",
            value="en",
            provenance="external:externalfirsthand",
            cardinality="SetValued",
        )
        assert member["reason"] == "set_member"
        guess = await tools.ok(
            "ingest_claim",
            subject="user",
            predicate="mood",
            value="happy",
            provenance="ModelDerived",
        )
        assert guess["disposition"] == "CommittedInferred"
        assert "inference" in guess["status_reason"]
        assert guess["belief"]["markers"] == ["LowDerivationAnchor", "Inferred"]
        low = await tools.ok(
            "ingest_claim", subject="user", predicate="age", value=41, value_confidence=0.1
        )
        assert low["disposition"] == "PendingLowConfidence"
        assert "threshold" in low["status_reason"]
        facts = await tools.ok("query_subject", subject="user")
        assert [f["predicate"] for f in facts["facts"]] == ["age", "languages", "mood"]
        languages = facts["facts"][1]
        assert sorted(m["value"] for m in languages["members"]) == ["en", "fr"]

    session(server_env(6), tmp_path, body)


@pytest.mark.sqlite_only
def test_bad_arguments_are_tool_errors_naming_the_argument(tmp_path: Path) -> None:
    async def body(tools: Tools) -> None:
        message = await tools.error("recall", subject="user")
        assert "missing required argument 'predicate'" in message
        message = await tools.error("recall", subject="user", predicate="city", subjekt="x")
        assert "unknown argument(s) 'subjekt'" in message
        message = await tools.error(
            "remember", subject="u", predicate="p", value=1, confidence=2, cardinality="Many"
        )
        assert "invalid argument 'confidence'" in message
        assert "invalid argument 'cardinality'" in message
        message = await tools.error("recall", subject="u", predicate="p", as_of="yesterday")
        assert message.endswith(
            "as_of: 'yesterday' is not a date; use YYYY, YYYY-MM, YYYY-MM-DD or RFC 3339"
        )
        message = await tools.error(
            "remember", subject="u", predicate="p", value=1, valid_from="soon"
        )
        assert "valid_from: 'soon' is not a date" in message
        message = await tools.error(
            "ingest_claim", subject="u", predicate="p", value=1, provenance="Rumour"
        )
        assert "provenance: 'Rumour' is not one of" in message
        message = await tools.error("audit", claim_ref="not-a-uuid")
        assert "claim_ref: 'not-a-uuid' is not a UUID" in message
        message = await tools.error("end_fact", subject="nobody", predicate="p")
        assert "no current belief to end" in message
        message = await tools.error("forget", subject="u")
        assert "unknown tool 'forget'" in message
        # A parseable but invalid claim is recorded as Rejected, with a reason, not an error.
        rejected = await tools.ok("remember", subject="", predicate="p", value=1)
        assert rejected["disposition"] == "Rejected" and rejected["reason"] == "empty_key"
        assert "must not be empty" in rejected["status_reason"]

    session(server_env(7), tmp_path, body)


@pytest.mark.sqlite_only
def test_a_file_backed_server_restarts_with_its_memory(tmp_path: Path) -> None:
    db = str(tmp_path / "memory.db")
    refs: list[str] = []

    async def before(tools: Tools) -> None:
        receipt = await tools.ok(
            "remember",
            subject="user",
            predicate="employer",
            value={"name": "ACME"},
            valid_from="2021-03",
        )
        refs.append(receipt["claim_ref"])

    async def after(tools: Tools) -> None:
        recall = await tools.ok("recall", subject="user", predicate="employer")
        assert recall["status"] == "Resolved"
        assert recall["value"] == {"name": "ACME"}
        assert recall["values"][0]["claim_ref"] == refs[0]
        assert recall["values"][0]["valid_from"] == "2021-03"
        again = await tools.ok(
            "remember", subject="user", predicate="employer", value={"name": "ACME"}
        )
        assert again["reason"] == "corroboration"
        audit = await tools.ok("audit")
        assert [e["stream_seq"] for e in audit["entries"]] == [1, 2]

    session(server_env(8, MEMPILL_DB_PATH=db), tmp_path, before)
    session(server_env(9, MEMPILL_DB_PATH=db), tmp_path, after)


@pytest.mark.sqlite_only
def test_read_only_mode_leaves_out_the_write_tools(tmp_path: Path) -> None:
    db = str(tmp_path / "memory.db")

    async def write(tools: Tools) -> None:
        await tools.ok("remember", subject="user", predicate="city", value="Oslo")

    async def read(tools: Tools) -> None:
        listed = {t.name for t in (await tools.client.list_tools()).tools}
        assert listed == TOOLS - WRITE_TOOLS
        message = await tools.error("remember", subject="user", predicate="city", value="Rome")
        assert "remember is not available: this mempill server is read-only" in message
        assert (await tools.ok("recall", subject="user", predicate="city"))["value"] == "Oslo"

    session(server_env(10, MEMPILL_DB_PATH=db), tmp_path, write)
    session(server_env(11, MEMPILL_DB_PATH=db, MEMPILL_READ_ONLY="1"), tmp_path, read)


def start_failure(args: list[str], env: dict[str, str], cwd: Path) -> str:
    """Run a server that must refuse to start; return its one-line stderr."""
    base = {k: v for k, v in os.environ.items() if not k.startswith("MEMPILL_")}
    done = subprocess.run(
        args,
        env=base | env,
        cwd=cwd,
        input="",
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2, done
    assert done.stdout == ""
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    return lines[0]


@pytest.mark.sqlite_only
def test_start_up_errors_are_one_clear_line(tmp_path: Path) -> None:
    module = [sys.executable, "-m", "mempill.mcp"]
    line = start_failure([str(MEMPILL), "mcp"], {}, tmp_path)
    assert line.startswith("mempill mcp: error: MEMPILL_AGENT_ID is not set")
    line = start_failure(module, {"MEMPILL_AGENT_ID": "../etc"}, tmp_path)
    assert "agent_id: '../etc' is invalid" in line
    line = start_failure(module, {"MEMPILL_AGENT_ID": "a", "MEMPILL_READ_ONLY": "maybe"}, tmp_path)
    assert "MEMPILL_READ_ONLY='maybe'" in line
    line = start_failure(
        module,
        {"MEMPILL_AGENT_ID": "a", "MEMPILL_DB_PATH": "x.db", "MEMPILL_PG_DSN": "dbname=x"},
        tmp_path,
    )
    assert "not both" in line
    db = tmp_path / "owned.db"
    owner = subprocess.run(
        [str(MEMPILL), "--db", str(db), "--agent", "alice", "remember", "a", "b", "1"],
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert owner.returncode == 0, owner.stderr
    line = start_failure(module, {"MEMPILL_AGENT_ID": "bob", "MEMPILL_DB_PATH": str(db)}, tmp_path)
    assert "belongs to agent 'alice', not 'bob'" in line


@pytest.mark.postgres_only
@pytest.mark.skipif(not postgres_selected(), reason="MEMPILL_TEST_BACKENDS excludes postgres")
def test_the_server_on_postgres(tmp_path: Path, postgres_server: str) -> None:
    from mempill.lab.servers import fresh_schema

    async def body(tools: Tools) -> None:
        await tools.ok("remember", subject="user", predicate="city", value="Paris")
        contested = await tools.ok("remember", subject="user", predicate="city", value="Lyon")
        assert contested["disposition"] == "Contested"
        recall = await tools.ok("recall", subject="user", predicate="city")
        assert recall["status"] == "Contested"
        assert json.dumps(sorted(v["value"] for v in recall["values"])) == '["Lyon", "Paris"]'

    with fresh_schema(postgres_server, prefix="mcp") as dsn:
        session(server_env(12, MEMPILL_PG_DSN=dsn), tmp_path, body)
