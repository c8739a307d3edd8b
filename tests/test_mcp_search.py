"""The MCP tools search, list_subjects and list_predicates, and remember's
similar_predicates, with the SDK's stdio client.

The acceptance test of issue 18 (item 4): a real client finds by `search` a memory it
cannot reach by `recall`, and `remember` points it at the predicate already in use.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from pghelpers import postgres_selected
from test_mcp import WRITE_TOOLS, Tools, server_env, session

FINDING = {"search", "list_subjects", "list_predicates"}


async def _people(tools: Tools) -> str:
    """A few subjects and predicates; returns a snapshot token taken before the last write."""
    await tools.ok(
        "remember", subject="user", predicate="home_city", value="Paris", valid_from="2019"
    )
    await tools.ok("end_fact", subject="user", predicate="home_city", value="Paris", at="2024")
    await tools.ok(
        "remember", subject="user", predicate="home_city", value="Lyon", valid_from="2024"
    )
    await tools.ok(
        "remember", subject="user", predicate="employer", value="ACME", valid_from="2021"
    )
    await tools.ok("end_fact", subject="user", predicate="employer", at="2025")
    await tools.ok("remember", subject="user.sister", predicate="name", value="Zoë")
    await tools.ok("remember", subject="user.sister", predicate="homeCity", value="Zürich")
    token = (await tools.ok("snapshot"))["token"]
    await tools.ok("remember", subject="project:apollo", predicate="status", value="active")
    assert isinstance(token, str)
    return token


def _lines(result: dict[str, object]) -> list[tuple[str, str]]:
    hits = result["hits"]
    assert isinstance(hits, list)
    return [(h["subject"], h["predicate"]) for h in hits]


@pytest.mark.sqlite_only
def test_search_finds_what_recall_cannot_reach(tmp_path: Path) -> None:
    """The acceptance test: recall user/city knows nothing, search 'city' finds Lyon."""

    async def body(tools: Tools) -> None:
        instructions = tools.client.instructions or ""
        assert "Before you conclude that you know nothing" in instructions
        assert "call search" in instructions and "similar_predicates" in instructions
        first = await tools.ok("remember", subject="user", predicate="home_city", value="Lyon")
        assert first["disposition"] == "CommittedCheap" and first["committed"] is True
        assert first["similar_predicates"] == []
        recall = await tools.ok("recall", subject="user", predicate="city")
        assert recall["status"] == "NoBelief" and recall["value"] is None

        found = await tools.ok("search", text="city")
        assert found["words"] == ["city"]
        [hit] = found["hits"]
        assert (hit["subject"], hit["predicate"]) == ("user", "home_city")
        assert hit["score"] == 2 and hit["matched"] == ["city"]
        belief = hit["belief"]
        assert belief["status"] in ("Resolved", "TimingUncertain")
        assert belief["value"] == "Lyon"
        assert [v["claim_ref"] for v in belief["values"]] == [first["claim_ref"]]
        assert set(belief) == set(recall)  # the form recall answers in

        second = await tools.ok("remember", subject="user", predicate="city", value="Lyon")
        assert second["similar_predicates"] == ["home_city"]
        assert second["disposition"] == "CommittedCheap" and second["committed"] is True
        assert second["belief"]["value"] == "Lyon"
        again = await tools.ok("remember", subject="user", predicate="home_city", value="Lyon")
        assert again["similar_predicates"] == ["city"]
        other = await tools.ok("remember", subject="user", predicate="age", value=41)
        assert other["similar_predicates"] == []
        guess = await tools.ok(
            "ingest_claim",
            subject="user",
            predicate="birth_city",
            value="Nice",
            provenance="ModelDerived",
        )
        assert guess["similar_predicates"] == ["city", "home_city"]
        rejected = await tools.ok("remember", subject="", predicate="city", value=1)
        assert rejected["disposition"] == "Rejected" and rejected["similar_predicates"] == []

    session(server_env(40), tmp_path, body)


@pytest.mark.sqlite_only
def test_the_finding_tools_are_read_tools_an_agent_can_act_on(tmp_path: Path) -> None:
    async def body(tools: Tools) -> None:
        listed = {t.name: t for t in (await tools.client.list_tools()).tools}
        assert set(listed) >= FINDING
        for name in FINDING:
            tool = listed[name]
            assert tool.description and len(tool.description) > 120, name
            assert tool.annotations is not None and tool.annotations.read_only_hint is True
            for arg, schema in tool.input_schema["properties"].items():
                assert schema.get("description"), f"{name}.{arg} has no description"
        assert listed["search"].input_schema["required"] == ["text"]
        assert "before concluding that you know nothing" in (listed["search"].description or "")
        assert "semantic" not in listed["search"].input_schema["properties"]
        assert "similar_predicates" in (listed["remember"].description or "")

    session(server_env(41), tmp_path, body)


@pytest.mark.sqlite_only
def test_search_words_prefixes_times_and_history(tmp_path: Path) -> None:
    async def body(tools: Tools) -> None:
        token = await _people(tools)
        found = await tools.ok("search", text="home city")
        assert _lines(found) == [("user", "home_city"), ("user.sister", "homeCity")]
        assert [h["score"] for h in found["hits"]] == [4, 4]
        assert [h["belief"]["value"] for h in found["hits"]] == ["Lyon", "Zürich"]
        assert found["hits"][0]["matched"] == ["home", "city"]
        # accents and case are folded; a word also matches the words it begins
        assert _lines(await tools.ok("search", text="ZURICH")) == [("user.sister", "homeCity")]
        assert _lines(await tools.ok("search", text="zoe")) == [("user.sister", "name")]
        prefixed = await tools.ok("search", text="apol")
        assert _lines(prefixed) == [("project:apollo", "status")]
        assert prefixed["hits"][0]["score"] == 1
        # ordered by score, then subject and predicate; limit keeps the best
        mixed = await tools.ok("search", text="user city")
        assert _lines(mixed)[:2] == [("user", "home_city"), ("user.sister", "homeCity")]
        assert _lines(await tools.ok("search", text="home city", limit=1)) == [
            ("user", "home_city")
        ]
        # what was believed: Paris held in 2020; the token predates project:apollo
        assert _lines(await tools.ok("search", text="paris")) == []
        then = await tools.ok("search", text="paris", valid_at="2020")
        assert _lines(then) == [("user", "home_city")]
        assert then["hits"][0]["belief"]["value"] == "Paris"
        assert _lines(await tools.ok("search", text="apollo", as_of=token)) == []
        # an ended value is found only with include_history
        assert _lines(await tools.ok("search", text="acme")) == []
        history = await tools.ok("search", text="acme", include_history=True)
        assert _lines(history) == [("user", "employer")]
        assert history["hits"][0]["matched"] == ["acme"]
        assert (await tools.ok("search", text="nothing here"))["hits"] == []

    session(server_env(42), tmp_path, body)


@pytest.mark.sqlite_only
def test_list_subjects_and_predicates(tmp_path: Path) -> None:
    async def body(tools: Tools) -> None:
        await _people(tools)
        every = await tools.ok("list_subjects")
        assert every["subjects"] == [
            {"subject": "project:apollo", "lines": 1, "believed": 1},
            {"subject": "user", "lines": 2, "believed": 1},
            {"subject": "user.sister", "lines": 2, "believed": 2},
        ]
        assert every["next_cursor"] is None
        page = await tools.ok("list_subjects", limit=2)
        assert [s["subject"] for s in page["subjects"]] == ["project:apollo", "user"]
        assert page["next_cursor"] == "user"
        rest = await tools.ok("list_subjects", limit=2, after=page["next_cursor"])
        assert [s["subject"] for s in rest["subjects"]] == ["user.sister"]
        assert rest["next_cursor"] is None
        users = await tools.ok("list_subjects", prefix="user")
        assert [s["subject"] for s in users["subjects"]] == ["user", "user.sister"]
        assert (await tools.ok("list_subjects", prefix="nobody"))["subjects"] == []

        mine = await tools.ok("list_predicates", subject="user")
        assert mine == {
            "subject": "user",
            "predicates": [
                {"predicate": "employer", "lines": 1, "believed": 0},
                {"predicate": "home_city", "lines": 1, "believed": 1},
            ],
        }
        every_predicate = await tools.ok("list_predicates")
        assert every_predicate["subject"] is None
        assert [p["predicate"] for p in every_predicate["predicates"]] == [
            "employer",
            "homeCity",
            "home_city",
            "name",
            "status",
        ]
        assert (await tools.ok("list_predicates", subject="nobody"))["predicates"] == []

    session(server_env(43), tmp_path, body)


@pytest.mark.sqlite_only
def test_hostile_finding_arguments_are_tool_errors(tmp_path: Path) -> None:
    async def body(tools: Tools) -> None:
        await tools.ok("remember", subject="user", predicate="home_city", value="Lyon")
        huge = "city " * 200_000
        message = await tools.error("search", text=huge)
        assert "invalid argument 'text'" in message and len(message) < 1000
        assert "missing required argument 'text'" in await tools.error("search")
        assert "invalid argument 'text'" in await tools.error("search", text="")
        assert "invalid argument 'text'" in await tools.error("search", text=["city"])
        assert "text" in await tools.error("search", text=10**5000)
        message = await tools.error("search", text="ci\x00ty")
        assert "text:" in message and "U+0000" in message
        message = await tools.error("search", text="city", limit=0)
        assert "invalid argument 'limit'" in message
        assert "invalid argument 'limit'" in await tools.error("search", text="city", limit=101)
        assert "invalid argument 'limit'" in await tools.error("search", text="x", limit="many")
        message = await tools.error("search", text="city", include_history=[1])
        assert "invalid argument 'include_history'" in message
        message = await tools.error("search", text="city", as_of="yesterday")
        assert "as_of: 'yesterday' is not a date" in message
        message = await tools.error("search", text="city", valid_at="x" * 1_000_000)
        assert "valid_at:" in message and len(message) < 1000
        assert "unknown argument(s) 'semantic'" in await tools.error(
            "search", text="city", semantic=True
        )
        message = await tools.error("list_subjects", prefix="u" * 1025)
        assert "invalid argument 'prefix'" in message
        message = await tools.error("list_subjects", limit=1001, after=7)
        assert "invalid argument 'limit'" in message and "invalid argument 'after'" in message
        message = await tools.error("list_subjects", prefix="u\x00")
        assert "prefix:" in message and "U+0000" in message
        message = await tools.error("list_predicates", subject="")
        assert "subject:" in message
        message = await tools.error("list_predicates", subject="s" * 1025)
        assert "subject:" in message
        message = await tools.error("list_predicates", subject={"a": 1})
        assert "invalid argument 'subject'" in message
        # the server is still answering
        assert len((await tools.ok("search", text="city"))["hits"]) == 1

    session(server_env(44), tmp_path, body)


@pytest.mark.sqlite_only
def test_read_only_mode_serves_the_finding_tools(tmp_path: Path) -> None:
    db = str(tmp_path / "memory.db")

    async def write(tools: Tools) -> None:
        await _people(tools)

    async def read(tools: Tools) -> None:
        listed = {t.name for t in (await tools.client.list_tools()).tools}
        assert listed >= FINDING and not listed & WRITE_TOOLS
        found = await tools.ok("search", text="city")
        assert _lines(found) == [("user", "home_city"), ("user.sister", "homeCity")]
        subjects = await tools.ok("list_subjects")
        assert [s["subject"] for s in subjects["subjects"]] == [
            "project:apollo",
            "user",
            "user.sister",
        ]
        predicates = await tools.ok("list_predicates", subject="user.sister")
        assert [p["predicate"] for p in predicates["predicates"]] == ["homeCity", "name"]

    session(server_env(45, MEMPILL_DB_PATH=db), tmp_path, write)
    session(server_env(46, MEMPILL_DB_PATH=db, MEMPILL_READ_ONLY="1"), tmp_path, read)


@pytest.mark.postgres_only
@pytest.mark.skipif(not postgres_selected(), reason="MEMPILL_TEST_BACKENDS excludes postgres")
def test_the_finding_tools_on_postgres(tmp_path: Path, postgres_server: str) -> None:
    from mempill.lab.servers import fresh_schema

    async def body(tools: Tools) -> None:
        await _people(tools)
        assert (await tools.ok("recall", subject="user", predicate="city"))["status"] == "NoBelief"
        found = await tools.ok("search", text="home city")
        assert _lines(found) == [("user", "home_city"), ("user.sister", "homeCity")]
        assert [h["belief"]["value"] for h in found["hits"]] == ["Lyon", "Zürich"]
        history = await tools.ok("search", text="acme", include_history=True)
        assert _lines(history) == [("user", "employer")]
        subjects = await tools.ok("list_subjects", limit=2)
        assert subjects["next_cursor"] == "user"
        predicates = await tools.ok("list_predicates", subject="user")
        assert [p["predicate"] for p in predicates["predicates"]] == ["employer", "home_city"]
        city = await tools.ok("remember", subject="user", predicate="city", value="Lyon")
        assert city["similar_predicates"] == ["home_city"]

    with fresh_schema(postgres_server, prefix="mcpsearch") as dsn:
        session(server_env(47, MEMPILL_PG_DSN=dsn), tmp_path, body)
