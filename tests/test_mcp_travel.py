"""The MCP tools snapshot, timeline, changes and erase, with the SDK's stdio client.

`erase` is listed only when the server is started with `--allow-erase` or
`MEMPILL_ALLOW_ERASE=1`, never in read-only mode, and runs only with `confirm: true`.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from pghelpers import postgres_selected
from test_mcp import Tools, server_env, session, start_failure

TRAVEL = {"snapshot", "timeline", "changes"}


async def _moved_city(tools: Tools) -> str:
    """Paris from 2019; a snapshot; then Lyon from 2024 and Paris ended there; the token."""
    await tools.ok("remember", subject="user", predicate="city", value="Paris", valid_from="2019")
    token = (await tools.ok("snapshot"))["token"]
    await tools.ok("remember", subject="user", predicate="city", value="Lyon", valid_from="2024")
    await tools.ok("end_fact", subject="user", predicate="city", value="Paris", at="2024")
    await tools.ok("remember", subject="user", predicate="age", value=41)
    assert isinstance(token, str)
    return token


@pytest.mark.sqlite_only
def test_the_travel_tools_are_read_tools_and_erase_is_absent_by_default(tmp_path: Path) -> None:
    async def body(tools: Tools) -> None:
        assert "erase" not in (tools.client.instructions or "")
        listed = {t.name: t for t in (await tools.client.list_tools()).tools}
        assert set(listed) >= TRAVEL and "erase" not in listed
        for name in TRAVEL:
            tool = listed[name]
            assert tool.description and len(tool.description) > 80, name
            assert tool.annotations is not None and tool.annotations.read_only_hint is True
            for arg, schema in tool.input_schema["properties"].items():
                assert schema.get("description"), f"{name}.{arg} has no description"
        assert "across valid time" in (listed["timeline"].description or "")
        assert (
            "snapshot token" in listed["recall"].input_schema["properties"]["as_of"]["description"]
        )
        await tools.ok("remember", subject="user", predicate="city", value="Oslo")
        message = await tools.error("erase", subject="user", reason="asked", confirm=True)
        assert "erase is not available" in message and "--allow-erase" in message
        recall = await tools.ok("recall", subject="user", predicate="city")
        assert recall["value"] == "Oslo"

    session(server_env(30), tmp_path, body)


@pytest.mark.sqlite_only
def test_timeline_snapshot_and_changes(tmp_path: Path) -> None:
    async def body(tools: Tools) -> None:
        token = await _moved_city(tools)
        assert token.startswith("snapshot:1@")
        timeline = await tools.ok("timeline", subject="user", predicate="city")
        assert [
            (s["valid_from"], s["valid_until"], s["status"], s["value"])
            for s in timeline["segments"]
        ] == [
            (None, "2019-01-01T00:00:00.000000Z", "NoBelief", None),
            ("2019-01-01T00:00:00.000000Z", "2024-01-01T00:00:00.000000Z", "Resolved", "Paris"),
            ("2024-01-01T00:00:00.000000Z", None, "Resolved", "Lyon"),
        ]
        assert timeline["segments"][1]["values"][0]["valid_from"] == "2019"
        ranged = await tools.ok(
            "timeline", subject="user", predicate="city", valid_from="2020", valid_until="2021"
        )
        assert [s["value"] for s in ranged["segments"]] == ["Paris"]
        then = await tools.ok("timeline", subject="user", predicate="city", as_of=token)
        assert [s["value"] for s in then["segments"]] == [None, "Paris"]
        # the token round-trips through the as_of of the other reads
        recall = await tools.ok("recall", subject="user", predicate="city", as_of=token)
        assert recall["value"] == "Paris"
        history = await tools.ok("history", subject="user", predicate="city", as_of=token)
        assert [e["value"] for e in history["entries"]] == ["Paris"]
        facts = await tools.ok("query_subject", subject="user", as_of=token)
        assert [f["predicate"] for f in facts["facts"]] == ["city"]

        changes = await tools.ok("changes", after=token)
        assert (changes["from_seq"], changes["until_seq"], changes["next_cursor"]) == (1, 4, None)
        city, age = changes["changes"]
        assert (city["subject"], city["predicate"]) == ("user", "city")
        assert [(e["disposition"], e["reason"]) for e in city["entries"]] == [
            ("Contested", "conflict"),
            ("Superseded", "bound"),
        ]
        assert city["before"]["value"] == "Paris" and city["after"]["value"] == "Lyon"
        assert age["before"]["status"] == "NoBelief" and age["after"]["value"] == 41
        page = await tools.ok("changes", limit=1)
        assert [c["predicate"] for c in page["changes"]] == ["city"]
        assert page["next_cursor"] == 1
        rest = await tools.ok("changes", limit=1, cursor=page["next_cursor"])
        assert [c["predicate"] for c in rest["changes"]] == ["age"]
        assert rest["next_cursor"] is None
        only = await tools.ok("changes", subject="user", predicate="age", since="2020")
        assert [c["predicate"] for c in only["changes"]] == ["age"]
        upto = await tools.ok("changes", until=token)
        assert [len(c["entries"]) for c in upto["changes"]] == [1]
        snap = await tools.ok("snapshot")
        assert snap["stream_seq"] == 4 and snap["token"].startswith("snapshot:4@")

    session(server_env(31), tmp_path, body)


@pytest.mark.sqlite_only
def test_bad_travel_arguments_are_tool_errors(tmp_path: Path) -> None:
    async def body(tools: Tools) -> None:
        token = await _moved_city(tools)
        message = await tools.error("timeline", subject="user")
        assert "missing required argument 'predicate'" in message
        message = await tools.error(
            "timeline", subject="user", predicate="city", valid_from="2025", valid_until="2020"
        )
        assert message.endswith("valid_from: must be before valid_until")
        message = await tools.error("timeline", subject="user", predicate="city", valid_from="x")
        assert "valid_from: 'x' is not a date" in message
        message = await tools.error("timeline", subject="u\x00", predicate="city")
        assert "subject:" in message and "U+0000" in message
        message = await tools.error("timeline", subject="user", predicate="p" * 1025)
        assert "predicate:" in message
        message = await tools.error("recall", subject="user", predicate="city", as_of="snapshot:x")
        assert "as_of: not a snapshot token" in message
        forged = token.rsplit("#", 1)[0] + "#000000000000"
        message = await tools.error("history", subject="user", predicate="city", as_of=forged)
        assert "as_of: that snapshot is of another agent" in message
        message = await tools.error("changes", after="2026-01-01")
        assert "after: expected a Snapshot or a snapshot token" in message
        message = await tools.error("changes", after=token, since="2020")
        assert "give either since or after, not both" in message
        message = await tools.error("changes", predicate="city")
        assert "predicate: give the subject too" in message
        message = await tools.error("changes", cursor=-1, limit=1001)
        assert "invalid argument 'cursor'" in message and "invalid argument 'limit'" in message
        message = await tools.error("changes", since="s" * 1_000_000)
        assert "since:" in message and len(message) < 1000
        message = await tools.error("snapshot", at="now")
        assert "unknown argument(s) 'at'" in message

    session(server_env(32), tmp_path, body)


@pytest.mark.sqlite_only
def test_read_only_mode_serves_the_travel_tools(tmp_path: Path) -> None:
    db = str(tmp_path / "memory.db")
    tokens: list[str] = []

    async def write(tools: Tools) -> None:
        tokens.append(await _moved_city(tools))

    async def read(tools: Tools) -> None:
        listed = {t.name for t in (await tools.client.list_tools()).tools}
        assert listed >= TRAVEL and "erase" not in listed and "remember" not in listed
        assert (await tools.ok("snapshot"))["stream_seq"] == 4
        timeline = await tools.ok("timeline", subject="user", predicate="city", as_of=tokens[0])
        assert [s["value"] for s in timeline["segments"]] == [None, "Paris"]
        changes = await tools.ok("changes", after=tokens[0])
        assert [c["predicate"] for c in changes["changes"]] == ["city", "age"]

    session(server_env(33, MEMPILL_DB_PATH=db), tmp_path, write)
    session(server_env(34, MEMPILL_DB_PATH=db, MEMPILL_READ_ONLY="1"), tmp_path, read)
    module = [sys.executable, "-m", "mempill.mcp"]
    env = server_env(35, MEMPILL_DB_PATH=db, MEMPILL_READ_ONLY="1")
    line = start_failure([*module, "--allow-erase"], env, tmp_path)
    assert "--allow-erase / MEMPILL_ALLOW_ERASE and read-only mode contradict" in line
    line = start_failure(module, env | {"MEMPILL_ALLOW_ERASE": "perhaps"}, tmp_path)
    assert "MEMPILL_ALLOW_ERASE='perhaps'" in line


@pytest.mark.sqlite_only
def test_erase_is_listed_only_with_the_opt_in_and_needs_confirm(tmp_path: Path) -> None:
    """Runs last: it needs `Engine.erase` (mempill/engine/erasure.py)."""
    db = str(tmp_path / "memory.db")

    async def body(tools: Tools) -> None:
        assert "only when the user explicitly asks" in (tools.client.instructions or "")
        listed = {t.name: t for t in (await tools.client.list_tools()).tools}
        erase = listed["erase"]
        assert erase.annotations is not None
        assert erase.annotations.destructive_hint is True
        assert erase.annotations.read_only_hint is False
        assert set(erase.input_schema["required"]) == {"subject", "reason", "confirm"}
        assert "cannot be undone" in (erase.description or "")
        await _moved_city(tools)
        message = await tools.error("erase", subject="user", predicate="city", confirm=True)
        assert "missing required argument 'reason'" in message
        message = await tools.error(
            "erase", subject="user", predicate="city", reason="asked", confirm=False
        )
        assert "needs confirm: true; nothing was erased" in message
        message = await tools.error(
            "erase", subject="user", predicate="city", reason="r" * 1025, confirm=True
        )
        assert "invalid argument 'reason'" in message
        assert (await tools.ok("recall", subject="user", predicate="city"))["value"] == "Lyon"
        erased = await tools.ok(
            "erase", subject="user", predicate="city", reason="the user asked", confirm=True
        )
        assert erased["lines"] == [["user", "city"]] and erased["claims"] == 2
        assert erased["status_reason"].startswith("Erased 1 fact(s)")
        recall = await tools.ok("recall", subject="user", predicate="city")
        assert recall["status"] == "NoBelief"
        history = await tools.ok("history", subject="user", predicate="city")
        assert history["entries"] == []
        assert (await tools.ok("recall", subject="user", predicate="age"))["value"] == 41
        again = await tools.ok("erase", subject="user", reason="everything", confirm=True)
        assert again["lines"] == [["user", "age"]]

    session(server_env(36, MEMPILL_DB_PATH=db), tmp_path, body, ("--allow-erase",))

    async def by_env(tools: Tools) -> None:
        listed = {t.name for t in (await tools.client.list_tools()).tools}
        assert "erase" in listed
        nothing = await tools.ok("erase", subject="nobody", reason="tidy", confirm=True)
        assert nothing["lines"] == [] and "nothing was erased" in nothing["status_reason"]

    session(server_env(37, MEMPILL_DB_PATH=db, MEMPILL_ALLOW_ERASE="1"), tmp_path, by_env)


@pytest.mark.postgres_only
@pytest.mark.skipif(not postgres_selected(), reason="MEMPILL_TEST_BACKENDS excludes postgres")
def test_the_travel_tools_on_postgres(tmp_path: Path, postgres_server: str) -> None:
    from mempill.lab.servers import fresh_schema

    async def body(tools: Tools) -> None:
        token = await _moved_city(tools)
        timeline = await tools.ok("timeline", subject="user", predicate="city")
        assert [s["value"] for s in timeline["segments"]] == [None, "Paris", "Lyon"]
        recall = await tools.ok("recall", subject="user", predicate="city", as_of=token)
        assert recall["value"] == "Paris"
        changes = await tools.ok("changes", after=token)
        assert [c["predicate"] for c in changes["changes"]] == ["city", "age"]
        assert changes["changes"][0]["after"]["value"] == "Lyon"

    with fresh_schema(postgres_server, prefix="mcptravel") as dsn:
        session(server_env(38, MEMPILL_PG_DSN=dsn), tmp_path, body)
