"""`mempill snapshot|timeline|changes|erase`, run in a subprocess like tests/test_cli.py.

Snapshot tokens printed by one process are read back by the next through `--as-of` (every
read), `changes --after/--since/--until`; `erase` refuses without `--yes` before the store
is opened.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from pghelpers import postgres_selected
from test_cli import Cli

TOKEN_PREFIX = "snapshot:"


@pytest.fixture
def cli(tmp_path: Path) -> Cli:
    return Cli(tmp_path, {"MEMPILL_DB_PATH": str(tmp_path / "memory.db")})


def _moved_city(cli: Cli) -> str:
    """Paris from 2019; a snapshot; then Lyon from 2024 and Paris ended there; the token."""
    cli.ok("--agent", "me", "remember", "user", "city", "Paris", "--from", "2019")
    token = cli.ok("snapshot").out.strip()
    cli.ok("remember", "user", "city", "Lyon", "--from", "2024")
    cli.ok("end", "user", "city", "--value", "Paris", "--at", "2024")
    cli.ok("remember", "user", "age", "41")
    return token


def _digest(path: Path) -> dict[str, str]:
    return {
        p.name: hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(path.parent.iterdir())
        if p.name.startswith(path.name)
    }


@pytest.mark.sqlite_only
def test_snapshot_prints_a_token_and_its_json(cli: Cli) -> None:
    token = _moved_city(cli)
    assert token.startswith(TOKEN_PREFIX) and token.count("\n") == 0
    assert token.startswith("snapshot:1@")
    now = cli.ok("snapshot", "--json").json()
    assert now["agent_id"] == "me" and now["stream_seq"] == 4
    assert now["token"].startswith("snapshot:4@")
    assert cli.ok("snapshot").out.strip() == now["token"]  # reads change nothing


@pytest.mark.sqlite_only
def test_timeline_shows_the_belief_across_valid_time(cli: Cli) -> None:
    _moved_city(cli)
    lines = cli.ok("timeline", "user", "city").out.splitlines()
    assert lines[0] == "user city"
    assert lines[1].split() == ["VALID", "FROM", "VALID", "UNTIL", "STATUS", "VALUE"]
    assert [row.split() for row in lines[2:]] == [
        ["…", "2019-01-01", "NoBelief", "-"],
        ["2019-01-01", "2024-01-01", "Resolved", '"Paris"'],
        ["2024-01-01", "…", "Resolved", '"Lyon"'],
    ]
    data = cli.ok("timeline", "user", "city", "--from", "2020", "--until", "2025", "--json").json()
    assert data["valid_from"] == "2020-01-01T00:00:00.000000Z"
    assert [(s["valid_from"], s["valid_until"], s["value"]) for s in data["segments"]] == [
        ("2020-01-01T00:00:00.000000Z", "2024-01-01T00:00:00.000000Z", "Paris"),
        ("2024-01-01T00:00:00.000000Z", "2025-01-01T00:00:00.000000Z", "Lyon"),
    ]
    assert data["segments"][0]["candidates"][0]["valid_from_display"] == "2019"
    empty = cli.ok("timeline", "nobody", "city").out.splitlines()
    assert [row.split() for row in empty[2:]] == [["…", "…", "NoBelief", "-"]]
    line = cli.fails(2, "timeline", "user", "city", "--from", "2025", "--until", "2020")
    assert line == "mempill: error: valid_from: must be before valid_until"
    line = cli.fails(2, "timeline", "user", "city", "--from", "soon")
    assert line.startswith("mempill: error: valid_from: 'soon' is not a date")
    line = cli.fails(2, "timeline", "user", "x" * 1025)
    assert line.startswith("mempill: error: predicate: ")


@pytest.mark.sqlite_only
def test_a_snapshot_token_round_trips_through_as_of(cli: Cli) -> None:
    token = _moved_city(cli)
    then = cli.ok("recall", "user", "city", "--as-of", token, "--json").json()
    assert then["status"] == "Resolved" and then["primary"]["value"] == "Paris"
    assert cli.ok("recall", "user", "city", "--json").json()["primary"]["value"] == "Lyon"
    history = cli.ok("history", "user", "city", "--as-of", token, "--json").json()
    assert [(e["value"], e["status"]) for e in history["entries"]] == [("Paris", "Current")]
    facts = cli.ok("subject", "user", "--as-of", token, "--json").json()["facts"]
    assert [f["predicate"] for f in facts] == ["city"]  # age came after the snapshot
    segments = cli.ok("timeline", "user", "city", "--as-of", token, "--json").json()["segments"]
    assert [(s["valid_from"], s["valid_until"], s["value"]) for s in segments] == [
        (None, "2019-01-01T00:00:00.000000Z", None),
        ("2019-01-01T00:00:00.000000Z", None, "Paris"),
    ]
    text = cli.ok("timeline", "user", "city", "--as-of", token).out.splitlines()
    assert text[0].startswith("user city (as of 2026-01-01T")
    # Every CLI run restarts the stepping clock, so every write shares (nearly) one
    # tx time: only the token's stream position tells them apart.
    bad = token.replace("snapshot:1@", "snapshot:x@")
    line = cli.fails(2, "recall", "user", "city", "--as-of", bad)
    assert line == ("mempill: error: as_of: not a snapshot token (snapshot:<seq>@<tx time>#<tag>)")
    other_db = str(cli.cwd / "other.db")
    cli.ok("--db", other_db, "--agent", "you", "remember", "user", "city", "Oslo")
    other = cli.ok("--db", other_db, "--agent", "you", "snapshot").out.strip()
    line = cli.fails(2, "history", "user", "city", "--as-of", other)
    assert line == "mempill: error: as_of: that snapshot is of another agent"


@pytest.mark.sqlite_only
def test_changes_lists_each_fact_touched_with_its_belief_before_and_after(cli: Cli) -> None:
    token = _moved_city(cli)
    lines = cli.ok("changes").out.splitlines()
    assert lines[0] == "changes in stream_seq 1..4"
    assert lines[1].split() == [
        "SUBJECT",
        "PREDICATE",
        "ENTRIES",
        "DISPOSITIONS",
        "BELIEF",
        "BEFORE",
        "→",
        "AFTER",
    ]
    assert lines[2].split("  ")[0] == "user"
    assert " 3 " in lines[2] and "CommittedCheap, Contested, Superseded" in lines[2]
    assert lines[2].endswith('NoBelief → "Lyon"')
    assert lines[3].endswith("NoBelief → TimingUncertain 41")
    after = cli.ok("changes", "--after", token, "--json").json()
    assert after["from_seq"] == 1 and after["until_seq"] == 4 and after["next_cursor"] is None
    city, age = after["changes"]
    assert [e["disposition"] for e in city["entries"]] == ["Contested", "Superseded"]
    assert city["before"]["primary"]["value"] == "Paris"
    assert city["after"]["primary"]["value"] == "Lyon"
    assert age["before"]["status"] == "NoBelief" and age["after"]["primary"]["value"] == 41
    text = cli.ok("changes", "--after", token).out.splitlines()
    assert text[0] == "changes in stream_seq 2..4"
    assert text[2].endswith('"Paris" → "Lyon"')
    only = cli.ok("changes", "--subject", "user", "--predicate", "age", "--json").json()
    assert [(c["subject"], c["predicate"]) for c in only["changes"]] == [("user", "age")]
    upto = cli.ok("changes", "--until", token, "--json").json()
    assert [len(c["entries"]) for c in upto["changes"]] == [1]
    nothing = cli.ok("changes", "--since", "2027").out.splitlines()
    assert nothing == ["no changes after stream_seq 4"]
    line = cli.fails(2, "changes", "--after", "2026-01-01")
    assert line == "mempill: error: after: expected a Snapshot or a snapshot token"
    line = cli.fails(2, "changes", "--after", token, "--since", "2020")
    assert line == "mempill: error: after: give either since or after, not both"
    line = cli.fails(2, "changes", "--predicate", "city")
    assert line == "mempill: error: predicate: give the subject too"
    line = cli.fails(2, "changes", "--limit", "0")
    assert "argument --limit: expected an integer from 1 to 1000000" in line


@pytest.mark.sqlite_only
def test_changes_pages_with_cursor_and_all(cli: Cli) -> None:
    cli.ok("--agent", "me", "remember", "a", "p", "1")
    for subject in ("b", "c", "d", "e"):
        cli.ok("remember", subject, "p", "1")
    first = cli.ok("changes", "--limit", "2")
    assert [row.split()[0] for row in first.out.splitlines()[2:4]] == ["a", "b"]
    assert first.out.splitlines()[-1] == "(more: --cursor 2, or --all)"
    second = cli.ok("changes", "--limit", "2", "--cursor", "2", "--json").json()
    assert [c["subject"] for c in second["changes"]] == ["c", "d"]
    assert second["next_cursor"] == 4
    last = cli.ok("changes", "--limit", "2", "--cursor", "4", "--json").json()
    assert [c["subject"] for c in last["changes"]] == ["e"] and last["next_cursor"] is None
    every = cli.ok("changes", "--limit", "2", "--all", "--json").json()
    assert [c["subject"] for c in every["changes"]] == ["a", "b", "c", "d", "e"]
    assert every["next_cursor"] is None and every["from_seq"] == 0
    text = cli.ok("changes", "--limit", "2", "--all").out.splitlines()
    assert [row.split()[0] for row in text[2:]] == ["a", "b", "c", "d", "e"]
    assert "(more" not in text[-1]


@pytest.mark.sqlite_only
def test_stored_control_characters_stay_escaped_in_the_new_tables(cli: Cli) -> None:
    subject = "us\x1b[31mer"
    cli.ok("--agent", "me", "remember", subject, "ci\u202ety", "\x1b]0;pwned\x07", "--string")
    timeline = cli.ok("timeline", subject, "ci\u202ety")
    changes = cli.ok("changes")
    for out in (timeline.out, changes.out):
        assert "\x1b" not in out and "\u202e" not in out and "\x07" not in out
        assert "us\\x1b[31mer" in out
    assert timeline.out.splitlines()[0] == "us\\x1b[31mer ci\\u202ety"
    assert '"\\u001b]0;pwned\\u0007"' in timeline.out  # a value is shown as JSON
    data = cli.ok("changes", "--json").json()  # --json is the exact data
    assert data["changes"][0]["subject"] == subject


@pytest.mark.sqlite_only
def test_erase_without_yes_refuses_and_touches_nothing(cli: Cli, tmp_path: Path) -> None:
    _moved_city(cli)
    db = tmp_path / "memory.db"
    before = _digest(db)
    line = cli.fails(2, "erase", "user", "city", "--reason", "asked to forget")
    assert line == (
        "mempill: error: erase forgets every value stored about user city for good (it "
        "cannot be undone); nothing was erased: run it again with --yes to confirm"
    )
    line = cli.fails(2, "erase", "user", "--reason", "asked to forget")
    assert "every value stored about user for good" in line
    assert _digest(db) == before
    assert cli.ok("recall", "user", "city", "--json").json()["primary"]["value"] == "Lyon"
    missing = tmp_path / "missing.db"
    line = cli.fails(2, "--db", str(missing), "erase", "user", "--reason", "r")
    assert "run it again with --yes" in line and not missing.exists()
    line = cli.fails(
        2, "--db", str(missing), "--agent", "me", "erase", "u", "--reason", "r", "--yes"
    )
    assert line == f"mempill: error: database file {str(missing)!r} does not exist"
    assert not missing.exists()
    line = cli.fails(2, "erase", "user", "city", "--yes")
    assert "the following arguments are required: --reason" in line
    line = cli.fails(2, "--agent", "you", "erase", "user", "--reason", "r", "--yes")
    assert "belongs to agent 'me', not 'you'" in line
    assert _digest(db) == before


@pytest.mark.sqlite_only
def test_erase_with_yes_forgets_a_fact_and_says_what(cli: Cli) -> None:
    """Runs last: it needs `Engine.erase` (mempill/engine/erasure.py)."""
    _moved_city(cli)
    out = cli.ok("erase", "user", "city", "--reason", "the user asked", "--yes").out.splitlines()
    assert out[0] == "erased 1 fact(s):"
    assert out[1] == "  user city"
    assert out[2].startswith("claims scrubbed: 2; ledger entries scrubbed: ")
    assert out[3].startswith("recorded as LineErased at stream_seq 5 (")
    recall = cli.ok("recall", "user", "city", "--json").json()
    assert recall["status"] == "NoBelief"
    assert cli.ok("history", "user", "city", "--json").json()["entries"] == []
    age = cli.ok("recall", "user", "age", "--json").json()
    assert age["primary"]["value"] == 41  # the other fact of the subject stays
    dumped = cli.ok("export", "claims").out + cli.ok("export", "ledger").out
    assert "Paris" not in dumped and "Lyon" not in dumped
    receipt = cli.ok("erase", "user", "--reason", "everything", "--yes", "--json").json()
    assert receipt["lines"] == [["user", "age"]] and receipt["claims"] == 1
    again = cli.ok("erase", "user", "--reason", "everything", "--yes")
    assert again.out.strip() == "nothing stored about user: nothing was erased"


@pytest.mark.postgres_only
@pytest.mark.skipif(not postgres_selected(), reason="MEMPILL_TEST_BACKENDS excludes postgres")
def test_snapshot_timeline_and_changes_on_postgres(cli: Cli, postgres_server: str) -> None:
    from mempill.lab.servers import fresh_schema

    with fresh_schema(postgres_server, prefix="clitravel") as dsn:
        env = {"MEMPILL_DB_PATH": "", "MEMPILL_PG_DSN": dsn, "MEMPILL_AGENT_ID": "me"}
        cli.ok("remember", "user", "city", "Paris", "--from", "2019", **env)
        token = cli.ok("snapshot", **env).out.strip()
        cli.ok("remember", "user", "city", "Lyon", "--from", "2024", **env)
        cli.ok("end", "user", "city", "--value", "Paris", "--at", "2024", **env)
        cli.ok("--agent", "you", "remember", "user", "city", "Oslo", **env)
        segments = cli.ok("timeline", "user", "city", "--json", **env).json()["segments"]
        assert [s["value"] for s in segments] == [None, "Paris", "Lyon"]
        then = cli.ok("recall", "user", "city", "--as-of", token, "--json", **env).json()
        assert then["primary"]["value"] == "Paris"
        changes = cli.ok("changes", "--after", token, "--json", **env).json()["changes"]
        assert [len(c["entries"]) for c in changes] == [2]
        assert changes[0]["after"]["primary"]["value"] == "Lyon"
        line = cli.fails(2, "erase", "user", "--reason", "r", **env)
        assert "run it again with --yes" in line
        assert cli.ok("recall", "user", "city", "--json", **env).json()["status"] == "Resolved"
