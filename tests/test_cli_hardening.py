"""The command line answers every input with a result or a documented error (issue 12).

Subprocess runs, as a person or a script would: missing directories are created for a new
store, reads as an agent that does not own a single file say so, `committed` means a row
was stored, and hostile arguments (cursors beyond 64 bits, undecodable bytes, huge JSON)
get a one-line error and the documented exit status, never "internal error".
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from pghelpers import postgres_selected
from test_cli import Cli

UNCLEAN = "contains U+0000 or an unpaired surrogate"
MAX_SEQ = 2**63 - 1


@pytest.fixture
def cli(tmp_path: Path) -> Cli:
    return Cli(tmp_path, {"MEMPILL_DB_PATH": str(tmp_path / "memory.db")})


def no_bug(cli: Cli, code: int, *args: str, **env: str) -> str:
    """Run a command that must fail with `code` and one line that is not a bug report."""
    line = cli.fails(code, *args, **env)
    assert "internal error" not in line
    return line


@pytest.mark.sqlite_only
def test_a_new_store_gets_its_missing_directories(cli: Cli, tmp_path: Path) -> None:
    """As `open_default` / `open_directory` do; read commands still create nothing."""
    deep = tmp_path / "new" / "deeper" / "memory.db"
    cli.ok("--db", str(deep), "--agent", "me", "remember", "user", "city", "Paris")
    assert deep.is_file()
    recall = cli.ok("--db", str(deep), "recall", "user", "city", "--json").json()
    assert recall["primary"]["value"] == "Paris"
    # A path ending in "/" names a directory store (one file per agent), made if missing.
    agents = tmp_path / "fresh" / "agents"
    cli.ok("--db", f"{agents}/", "--agent", "alice", "remember", "sky", "color", "blue")
    assert sorted(p.name for p in agents.iterdir()) == ["alice.db"]
    # Reads never create a store, nor its directories.
    missing = tmp_path / "absent" / "memory.db"
    line = no_bug(cli, 2, "--db", str(missing), "--agent", "me", "recall", "a", "b")
    assert line == f"mempill: error: database file {str(missing)!r} does not exist"
    line = no_bug(cli, 2, "--db", f"{tmp_path}/nothing/", "--agent", "me", "audit")
    assert "database directory" in line and "does not exist" in line
    assert not (tmp_path / "absent").exists() and not (tmp_path / "nothing").exists()
    # A directory that cannot be made is a storage error (exit 3) naming the path.
    (tmp_path / "plain.txt").write_text("not a directory", encoding="utf-8")
    bad = tmp_path / "plain.txt" / "memory.db"
    line = no_bug(cli, 3, "--db", str(bad), "--agent", "me", "remember", "a", "b", "1")
    assert "plain.txt" in line


@pytest.mark.sqlite_only
def test_reads_as_an_agent_that_does_not_own_the_file_say_so(cli: Cli, tmp_path: Path) -> None:
    cli.ok("--agent", "me", "remember", "user", "city", "Paris")
    claim = cli.ok("audit", "--json").json()["entries"][0]["claim_ref"]
    expected = (
        f"mempill: error: {tmp_path / 'memory.db'} belongs to agent 'me', not 'you': it holds "
        "no memory of 'you' and refuses its writes; use --agent me or use another database file"
    )
    for command in (
        ("recall", "user", "city"),
        ("subject", "user"),
        ("history", "user", "city"),
        ("audit",),
        ("audit", "--claim", claim),
        ("end", "user", "city"),
        ("export", "ledger"),
    ):
        assert no_bug(cli, 2, "--agent", "you", *command) == expected, command
        assert no_bug(cli, 2, *command, MEMPILL_AGENT_ID="you") == expected, command
    # A write is answered by the engine: a Rejected receipt (write_authority), exit 1.
    rejected = cli("--agent", "you", "remember", "user", "city", "Rome", "--json")
    assert rejected.code == 1
    assert rejected.json()["reason"] == "write_authority" and rejected.json()["committed"] is False
    # The owner, named or by default, still reads its memory; nothing was changed.
    for agent in (("--agent", "me"), ()):
        recall = cli.ok(*agent, "recall", "user", "city", "--json").json()
        assert recall["primary"]["value"] == "Paris"
    assert len(cli.ok("audit", "--json").json()["entries"]) == 1


@pytest.mark.sqlite_only
def test_committed_means_this_call_stored_a_row(cli: Cli) -> None:
    """A Contested claim is stored (committed true) though it is not the sole belief."""
    first = cli.ok("--agent", "me", "remember", "user", "city", "Paris", "--json").json()
    assert first["disposition"] == "CommittedCheap" and first["committed"] is True
    contested = cli.ok("remember", "user", "city", "Lyon", "--json").json()
    assert contested["disposition"] == "Contested" and contested["committed"] is True
    assert contested["status_reason"].startswith("Stored, but it contradicts")
    rejected = cli("remember", "", "city", "Rome", "--json")
    assert rejected.code == 1 and rejected.json()["committed"] is False
    ended = cli.ok("end", "user", "city", "--value", "Lyon", "--at", "2026-06", "--json").json()
    assert [r["committed"] for r in ended["receipts"]] == [True]
    again = cli("end", "user", "city", "--ref", contested["claim_ref"], "--at", "2026-06", "--json")
    assert again.code == 0 and [r["no_op"] for r in again.json()["receipts"]] == [True]
    assert [r["committed"] for r in again.json()["receipts"]] == [False]


@pytest.mark.sqlite_only
def test_cursors_and_limits_outside_the_ledgers_range_are_bad_usage(cli: Cli) -> None:
    cli.ok("--agent", "me", "remember", "a", "b", "1")
    after = "mempill audit: error: argument --after: expected an integer from 0 to "
    for value in (str(MAX_SEQ + 1), str(2**64), "-1", "1e3", "x", "9" * 5000):
        assert no_bug(cli, 2, "audit", "--after", value).startswith(after + str(MAX_SEQ)), value
    limit = "mempill audit: error: argument --limit: expected an integer from 1 to 1000000"
    for value in ("0", str(MAX_SEQ), str(2**63), "-5", "9" * 5000):
        assert no_bug(cli, 2, "audit", "--limit", value).startswith(limit), value
    page = cli.ok("audit", "--after", str(MAX_SEQ), "--limit", "1000000", "--json").json()
    assert page["entries"] == [] and page["next_cursor"] is None
    assert len(cli.ok("audit", "--after", "0", "--json").json()["entries"]) == 1
    line = no_bug(cli, 2, "audit", "--claim", "not-a-uuid")
    assert line == "mempill: error: --claim: 'not-a-uuid' is not a UUID"


@pytest.mark.sqlite_only
def test_undecodable_bytes_in_arguments_are_refused_or_rejected(cli: Cli) -> None:
    """argv bytes that are not UTF-8 arrive as lone surrogates (U+DC80..U+DCFF)."""
    cli.ok("--agent", "me", "remember", "user", "city", "Paris")
    for args in (
        ("recall", "user\udcff", "city"),
        ("recall", "user", "city\udcff"),
        ("subject", "\udcff"),
        ("history", "user", "\udcff"),
        ("end", "user\udcff", "city"),
        ("recall", "user", "city", "--as-of", "2024\udcff"),
        ("remember", "user", "city", "Rome", "--from", "2024\udcff"),
    ):
        line = no_bug(cli, 2, *args)
        assert UNCLEAN in line and "\\udcff" in line, args
    # A write is judged by the engine (rule V): a Rejected receipt in the ledger, exit 1.
    for args in (("user\udcff", "city", "Rome"), ("user", "city", "Ro\udcffme")):
        rejected = cli("remember", *args, "--json")
        assert rejected.code == 1, rejected
        assert rejected.json()["reason"] == "invalid_text"
        assert rejected.json()["committed"] is False
    assert cli.ok("recall", "user", "city", "--json").json()["primary"]["value"] == "Paris"


@pytest.mark.sqlite_only
def test_json_values_a_command_line_cannot_carry_are_refused(cli: Cli) -> None:
    cli.ok("--agent", "me", "remember", "a", "b", "1")
    line = no_bug(cli, 2, "remember", "user", "n", "1" + "0" * 5000)
    assert line == (
        "mempill: error: value: a JSON integer of more than 4300 digits; pass it as a string "
        "(--string)"
    )
    line = no_bug(cli, 2, "end", "a", "b", "--value", "[" * 100_000)
    assert line == "mempill: error: --value: the JSON nests too deeply"
    big = cli.ok("remember", "user", "n", "1" + "0" * 5000, "--string", "--json").json()
    assert big["committed"] is True
    # NaN and Infinity are not JSON: they are text, like any other non-JSON word.
    cli.ok("remember", "user", "word", "NaN")
    assert cli.ok("recall", "user", "word", "--json").json()["primary"]["value"] == "NaN"
    # A NUL inside a JSON string value is a value like any other (canonical JSON escapes it).
    stored = cli("remember", "user", "nul", '"a\\u0000b"', "--json")
    assert stored.code in (0, 1) and "internal error" not in stored.err


@pytest.mark.sqlite_only
def test_paths_with_odd_characters(cli: Cli, tmp_path: Path) -> None:
    odd = tmp_path / "my memory (1) – ü'$x.db"
    cli.ok("--db", str(odd), "--agent", "me", "remember", "a", "b", "1")
    assert odd.is_file()
    report = cli.ok("--db", str(odd), "doctor")
    assert str(odd) in report.out
    out = tmp_path / "exports" / "ledger \udcff.csv"
    done = cli.ok("--db", str(odd), "export", "ledger", "--out", str(out))
    assert done.out.strip().endswith("ledger \\udcff.csv (csv)")  # printable, not a crash
    assert os.path.exists(os.fsencode(out))
    # A file name that is not UTF-8 text: created and used, or refused with a usage error.
    undecodable = cli(
        "--db", str(tmp_path / "\udcff.db"), "--agent", "me", "remember", "a", "b", "1"
    )
    assert undecodable.code in (0, 2) and "internal error" not in undecodable.err
    # A file that is not a store is a storage error (exit 3).
    junk = tmp_path / "junk.db"
    junk.write_bytes(b"this is not a database at all" * 100)
    line = no_bug(cli, 3, "--db", str(junk), "recall", "a", "b", "--agent", "me")
    assert "junk.db" in line
    # An import file that is not a stream, or not UTF-8, is bad usage (exit 2).
    binary = tmp_path / "stream.jsonl"
    binary.write_bytes(b"\xff\xfe\x00garbage\n")
    assert "not UTF-8 text" in no_bug(cli, 2, "import", str(binary))
    huge = tmp_path / "huge.jsonl"
    huge.write_text(
        json.dumps({"stream": "mempill-stream/1"})[:-1] + ', "x": ' + "1" * 5000 + "}\n"
    )
    assert str(huge) in no_bug(cli, 2, "import", str(huge))
    assert "cannot read" in no_bug(cli, 2, "import", str(tmp_path / "absent.jsonl"))


@pytest.mark.postgres_only
@pytest.mark.skipif(not postgres_selected(), reason="MEMPILL_TEST_BACKENDS excludes postgres")
def test_hostile_reads_on_postgres_are_refused_before_the_driver(
    cli: Cli, postgres_server: str
) -> None:
    from mempill.lab.servers import fresh_schema

    with fresh_schema(postgres_server, prefix="clih") as dsn:
        env = {"MEMPILL_DB_PATH": "", "MEMPILL_PG_DSN": dsn}
        cli.ok("--agent", "me", "remember", "user", "city", "Paris", **env)
        line = no_bug(cli, 2, "--agent", "me", "recall", "user\udcff", "city", **env)
        assert UNCLEAN in line
        line = no_bug(cli, 2, "--agent", "me", "audit", "--after", str(2**63), **env)
        assert "expected an integer" in line
        long_key = "\u4e2d" * 1025
        line = no_bug(cli, 2, "--agent", "me", "recall", long_key, "city", **env)
        assert "keys are limited to 1024" in line
        page = cli.ok("--agent", "me", "audit", "--after", str(MAX_SEQ), "--json", **env).json()
        assert page["entries"] == []
        recall = cli.ok("--agent", "me", "recall", "user", "city", "--json", **env).json()
        assert recall["primary"]["value"] == "Paris"


@pytest.mark.sqlite_only
def test_doctor_names_the_files_store_wide_calls_skip(cli: Cli, tmp_path: Path) -> None:
    """A copy named `alice copy.db` and another program's database sit in the folder: the
    store-wide calls skip them, and `doctor` lists each with its reason, still passing."""
    agents = tmp_path / "agents"
    cli.ok("--db", f"{agents}/", "--agent", "alice", "remember", "sky", "color", "blue")
    (agents / "alice copy.db").write_bytes((agents / "alice.db").read_bytes())
    (agents / "notes.db").write_bytes(b"not a database" * 100)
    report = cli.ok("--db", str(agents), "doctor", "--json").json()
    assert report["ok"] is True
    assert [d["agents"] for d in report["databases"]] == [["alice"]]
    reasons = {Path(f["path"]).name: f["reason"] for f in report["ignored_files"]}
    assert reasons["alice copy.db"] == "its name is not an agent id"
    assert "not a SQLite database" in reasons["notes.db"]
    assert sorted(reasons) == ["alice copy.db", "notes.db"]
    text = cli.ok("--db", str(agents), "doctor").out
    assert "ignored 2 file(s) that are not agent stores:" in text
    assert "alice copy.db" in text and "its name is not an agent id" in text
    # A clean folder (and a single-file store) reports no ignored files.
    (agents / "alice copy.db").unlink()
    (agents / "notes.db").unlink()
    assert cli.ok("--db", str(agents), "doctor", "--json").json()["ignored_files"] == []
    assert "ignored" not in cli.ok("--db", str(agents), "doctor").out
    cli.ok("--agent", "me", "remember", "a", "b", "1")
    assert cli.ok("doctor", "--json").json()["ignored_files"] == []
