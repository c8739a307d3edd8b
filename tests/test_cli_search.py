"""`mempill search|subjects|predicates|reindex`, run in a subprocess like tests/test_cli.py.

The three reads open the store read-only (a 0444 file serves, no byte changes);
`reindex` is a write that changes no memory, so it needs no confirmation.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest
from pghelpers import postgres_selected
from test_cli import Cli

from mempill import open_default
from mempill.core.search import INDEX_BLOCK

HEADERS = ["SCORE", "SUBJECT", "PREDICATE", "STATUS", "VALUE"]


@pytest.fixture
def cli(tmp_path: Path) -> Cli:
    return Cli(tmp_path, {"MEMPILL_DB_PATH": str(tmp_path / "memory.db")})


def _people(cli: Cli, **env: str) -> str:
    """A few subjects and predicates; a snapshot token taken before the last write."""
    cli.ok("--agent", "me", "remember", "user", "home_city", "Paris", "--from", "2019", **env)
    cli.ok("end", "user", "home_city", "--value", "Paris", "--at", "2024", **env)
    cli.ok("remember", "user", "home_city", "Lyon", "--from", "2024", **env)
    cli.ok("remember", "user", "employer", "ACME", "--from", "2021", **env)
    cli.ok("end", "user", "employer", "--at", "2025", **env)
    cli.ok("remember", "user.sister", "name", "Zoë", **env)
    cli.ok("remember", "user.sister", "homeCity", "Zürich", **env)
    token = cli.ok("snapshot", **env).out.strip()
    cli.ok("remember", "project:apollo", "status", "active", **env)
    return token


def _rows(out: str) -> list[list[str]]:
    lines = out.splitlines()
    assert lines[0].split() == HEADERS
    return [row.split() for row in lines[1:]]


def _digest(path: Path) -> dict[str, str]:
    """The store's files but SQLite's -wal/-shm (a reader of a WAL file may make them)."""
    return {
        p.name: hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(path.parent.iterdir())
        if p.name.startswith(path.name) and not p.name.endswith(("-wal", "-shm"))
    }


@pytest.mark.sqlite_only
def test_search_finds_what_recall_cannot_reach(cli: Cli) -> None:
    _people(cli)
    recall = cli.ok("recall", "user", "city").out
    assert recall.splitlines()[0] == "user city: NoBelief"
    assert _rows(cli.ok("search", "city").out) == [
        ["2", "user", "home_city", "Resolved", '"Lyon"'],
        ["2", "user.sister", "homeCity", "TimingUncertain", '"Zürich"'],
    ]
    assert _rows(cli.ok("search", "HOME", "--limit", "1").out) == [
        ["2", "user", "home_city", "Resolved", '"Lyon"'],
    ]
    assert _rows(cli.ok("search", "apol").out) == [
        ["1", "project:apollo", "status", "TimingUncertain", '"active"'],
    ]
    data = cli.ok("search", "home city", "--json").json()
    assert data["agent_id"] == "me" and data["words"] == ["home", "city"]
    assert data["semantic"] is False
    first = data["hits"][0]
    assert (first["subject"], first["predicate"], first["score"]) == ("user", "home_city", 4)
    assert first["matched"] == ["home", "city"]
    assert first["belief"]["primary"]["value"] == "Lyon"
    assert first["belief"]["status_reason"] is None  # Resolved: nothing to explain
    nothing = cli.ok("search", "acme", "--history", "--json").json()["hits"][0]["belief"]
    assert nothing["status"] == "NoBelief" and nothing["status_reason"]


@pytest.mark.sqlite_only
def test_search_in_the_past_and_in_history(cli: Cli) -> None:
    token = _people(cli)
    assert cli.ok("search", "paris").out.strip() == "nothing matches: paris"
    assert _rows(cli.ok("search", "paris", "--valid-at", "2020").out) == [
        ["2", "user", "home_city", "Resolved", '"Paris"'],
    ]
    assert cli.ok("search", "apollo", "--as-of", token).out.strip() == "nothing matches: apollo"
    assert cli.ok("search", "acme").out.strip() == "nothing matches: acme"
    rows = _rows(cli.ok("search", "acme", "--history").out)
    assert [row[:3] for row in rows] == [["2", "user", "employer"]]
    hits = cli.ok("search", "acme", "--history", "--json").json()["hits"]
    assert [(h["subject"], h["predicate"], h["matched"]) for h in hits] == [
        ("user", "employer", ["acme"])
    ]


@pytest.mark.sqlite_only
def test_subjects_pages_and_predicates(cli: Cli) -> None:
    _people(cli)
    lines = cli.ok("subjects").out.splitlines()
    assert [line.split() for line in lines] == [
        ["SUBJECT", "FACTS", "BELIEVED"],
        ["project:apollo", "1", "1"],
        ["user", "2", "1"],
        ["user.sister", "2", "2"],
    ]
    page = cli.ok("subjects", "--limit", "2").out.splitlines()
    assert [line.split()[0] for line in page[1:3]] == ["project:apollo", "user"]
    assert page[3] == "(more: --after user, or --all)"
    rest = cli.ok("subjects", "--limit", "2", "--after", "user").out.splitlines()
    assert [line.split()[0] for line in rest[1:]] == ["user.sister"]
    every = cli.ok("subjects", "--limit", "1", "--all", "--json").json()
    assert [s["subject"] for s in every["subjects"]] == ["project:apollo", "user", "user.sister"]
    assert every["next_cursor"] is None
    users = cli.ok("subjects", "--prefix", "user.", "--json").json()
    assert users["subjects"] == [{"subject": "user.sister", "lines": 2, "believed": 2}]
    assert cli.ok("subjects", "--prefix", "nobody").out.strip() == "no subjects"

    lines = cli.ok("predicates", "user").out.splitlines()
    assert lines[0] == "user"
    assert [line.split() for line in lines[1:]] == [
        ["PREDICATE", "FACTS", "BELIEVED"],
        ["employer", "1", "0"],
        ["home_city", "1", "1"],
    ]
    every_predicate = cli.ok("predicates", "--json").json()
    assert every_predicate["subject"] is None
    assert [p["predicate"] for p in every_predicate["predicates"]] == [
        "employer",
        "homeCity",
        "home_city",
        "name",
        "status",
    ]
    assert cli.ok("predicates").out.splitlines()[0] == "every subject"
    assert cli.ok("predicates", "nobody").out.strip() == "nobody: no predicates"


@pytest.mark.sqlite_only
def test_the_reads_change_no_byte_of_the_store(cli: Cli, tmp_path: Path) -> None:
    _people(cli)
    db = tmp_path / "memory.db"
    before = _digest(db)
    os.chmod(db, 0o444)
    try:
        assert len(_rows(cli.ok("search", "city").out)) == 2
        assert len(cli.ok("subjects", "--json").json()["subjects"]) == 3
        assert len(cli.ok("predicates", "user", "--json").json()["predicates"]) == 2
    finally:
        os.chmod(db, 0o644)
    assert _digest(db) == before
    missing = tmp_path / "missing.db"
    for command in (("search", "city"), ("subjects",), ("predicates",), ("reindex",)):
        line = cli.fails(2, "--db", str(missing), "--agent", "me", *command)
        assert line == f"mempill: error: database file {str(missing)!r} does not exist"
    assert not missing.exists()


@pytest.mark.sqlite_only
def test_reindex_makes_a_store_written_without_the_index_searchable(
    cli: Cli, tmp_path: Path
) -> None:
    db = tmp_path / "memory.db"
    engine = open_default(db, text_index=False)
    try:
        engine.remember("me", "user", "home_city", "Lyon")
        engine.remember("me", "user", "employer", "ACME")
        for i in range(INDEX_BLOCK):  # past the head's block, which every search reads
            engine.remember("me", "zz", f"n{i}", i)
    finally:
        engine.close()
    assert cli.ok("search", "city").out.strip() == "nothing matches: city"
    assert cli.ok("subjects", "--json").json()["subjects"] == [
        {"subject": "user", "lines": 2, "believed": 2},
        {"subject": "zz", "lines": INDEX_BLOCK, "believed": INDEX_BLOCK},
    ]
    indexed = 2 + INDEX_BLOCK
    assert cli.ok("reindex").out.strip() == f"indexed {indexed} claim(s) of agent me"
    assert _rows(cli.ok("search", "city").out) == [
        ["2", "user", "home_city", "TimingUncertain", '"Lyon"'],
    ]
    assert cli.ok("reindex", "--json").json() == {"agent_id": "me", "claims": indexed}
    assert len(_rows(cli.ok("search", "city acme").out)) == 2


@pytest.mark.sqlite_only
def test_bad_arguments_and_other_agents_are_refused(cli: Cli) -> None:
    _people(cli)
    unclean = "contains U+0000 or an unpaired surrogate"
    line = cli.fails(2, "search", "ci\udcffty")
    assert line.startswith("mempill: error: text: ") and unclean in line
    line = cli.fails(2, "subjects", "--prefix", "u\udcff")
    assert line.startswith("mempill: error: --prefix: ") and unclean in line
    line = cli.fails(2, "subjects", "--after", "u\udcff")
    assert line.startswith("mempill: error: --after: ")
    line = cli.fails(2, "predicates", "x" * 1025)
    assert line.startswith("mempill: error: subject: ")
    line = cli.fails(2, "predicates", "")
    assert line.startswith("mempill: error: subject: ")
    line = cli.fails(2, "search", "city", "--limit", "0")
    assert "argument --limit: expected an integer from 1 to 1000000" in line
    line = cli.fails(2, "subjects", "--limit", "x")
    assert "argument --limit: expected an integer" in line
    line = cli.fails(2, "search", "city", "--as-of", "yesterday")
    assert line.startswith("mempill: error: as_of: 'yesterday' is not a date")
    line = cli.fails(2, "search")
    assert "the following arguments are required: text" in line
    for command in (("search", "city"), ("subjects",), ("predicates",), ("reindex",)):
        line = cli.fails(2, "--agent", "you", *command)
        assert "belongs to agent 'me', not 'you'" in line, command


@pytest.mark.sqlite_only
def test_stored_text_cannot_drive_the_terminal(cli: Cli) -> None:
    subject = "us\x1b[31mer"
    cli.ok("--agent", "me", "remember", subject, "ci\u202ety", "\x1b]0;pwned\x07", "--string")
    for args in (("search", "pwned"), ("subjects",), ("predicates",), ("predicates", subject)):
        out = cli.ok(*args).out
        assert "\x1b" not in out and "\u202e" not in out and "\x07" not in out, args
        assert "\\x1b" in out or "\\u202e" in out, args
    assert "us\\x1b[31mer" in cli.ok("search", "us").out
    data = cli.ok("search", "us", "--json").json()
    assert data["hits"][0]["subject"] == subject


@pytest.mark.postgres_only
@pytest.mark.skipif(not postgres_selected(), reason="MEMPILL_TEST_BACKENDS excludes postgres")
def test_search_subjects_predicates_and_reindex_on_postgres(cli: Cli, postgres_server: str) -> None:
    from mempill.lab.servers import fresh_schema

    with fresh_schema(postgres_server, prefix="clisearch") as dsn:
        env = {"MEMPILL_DB_PATH": "", "MEMPILL_PG_DSN": dsn, "MEMPILL_AGENT_ID": "me"}
        token = _people(cli, **env)
        cli.ok("--agent", "you", "remember", "user", "home_city", "Oslo", **env)
        assert _rows(cli.ok("search", "city", **env).out) == [
            ["2", "user", "home_city", "Resolved", '"Lyon"'],
            ["2", "user.sister", "homeCity", "TimingUncertain", '"Zürich"'],
        ]
        assert cli.ok("search", "apollo", "--as-of", token, **env).out.strip() == (
            "nothing matches: apollo"
        )
        subjects = cli.ok("subjects", "--json", **env).json()["subjects"]
        assert [s["subject"] for s in subjects] == ["project:apollo", "user", "user.sister"]
        predicates = cli.ok("predicates", "user", "--json", **env).json()["predicates"]
        assert [(p["predicate"], p["believed"]) for p in predicates] == [
            ("employer", 0),
            ("home_city", 1),
        ]
        assert cli.ok("reindex", "--json", **env).json() == {"agent_id": "me", "claims": 6}
        assert len(_rows(cli.ok("search", "oslo", "--agent", "you", **env).out)) == 1
