"""The command line as an attacker or a careless user meets it (issue 22, the CLI side).

Subprocess runs, as tests/test_cli.py does: a password never reaches the output, whatever
its spelling, and `--pg` with one warns on one line; `import --agent` acts on that agent
only; terminal output escapes control characters while `--json` stays exact; CSV cells a
spreadsheet would run are neutralised; exports are private files, written whole, never
through a link. Read-only opening and `pg grant-* --read-only`: test_security_surface_ro.py.
"""

from __future__ import annotations

import csv
import json
import os
import pty
import select
import stat
import subprocess
import sys
import tty
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

import pytest
from pghelpers import postgres_selected
from test_cli import Cli

SECRET = "S3cret"
WARNING = (
    "mempill: warning: --pg carries a password, which other local users can read (ps, "
    "/proc); put the conninfo in MEMPILL_PG_DSN or the password in a PGPASSFILE (~/.pgpass) "
    "instead"
)
#: Characters no terminal line may carry raw (C0 but the line break, DEL, C1, U+2028/9, bidi).
RAW = [chr(c) for c in (*range(0x20), *range(0x7F, 0xA0), 0x2028, 0x2029, 0x202E, 0x2066)]
HOSTILE = "u\x1b]0;owned\x07\x1b[2J\rfake\nline\x9b31m\u202eevil\x7f"


def no_raw_controls(text: str) -> None:
    found = sorted({f"U+{ord(c):04X}" for c in text if c in RAW and c != "\n"})
    assert found == [], f"raw control characters reached the terminal: {found}"


@pytest.fixture
def cli(tmp_path: Path) -> Cli:
    return Cli(tmp_path, {"MEMPILL_DB_PATH": str(tmp_path / "memory.db")})


# ---------------------------------------------------------------- secrets


def password_forms(dsn: str) -> list[str]:
    """The test server's conninfo with a password spelled every way libpq takes one (the
    servers trust local connections, so the password is never checked)."""
    from psycopg.conninfo import conninfo_to_dict, make_conninfo

    params = {k: str(v) for k, v in conninfo_to_dict(dsn).items()}
    user = params.pop("user", "postgres")
    plain = make_conninfo("", user=user, **params)
    return [
        "postgresql://?" + urlencode({**params, "user": user, "password": SECRET}),
        f"postgresql://{quote(user)}:{SECRET}@/?" + urlencode(params),
        make_conninfo("", user=user, password=f"my {SECRET}", **params),
        f"{plain} password = {SECRET}",
        f"{plain} password='{SECRET}'",
    ]


@pytest.mark.postgres_only
@pytest.mark.skipif(not postgres_selected(), reason="MEMPILL_TEST_BACKENDS excludes postgres")
def test_a_password_never_reaches_the_output(cli: Cli, postgres_server: str) -> None:
    from mempill.lab.servers import fresh_schema

    with fresh_schema(postgres_server, prefix="sec") as dsn:
        env = {"MEMPILL_DB_PATH": ""}
        cli.ok("--pg", dsn, "--agent", "me", "remember", "user", "city", "Paris", **env)
        for form in password_forms(dsn):
            runs = [
                cli("--pg", form, "doctor", **env),
                cli("--pg", form, "doctor", "--json", **env),
                cli("--pg", form, "--agent", "me", "recall", "user", "city", **env),
                cli("--agent", "me", "history", "user", "city", MEMPILL_PG_DSN=form, **env),
            ]
            for done in runs:
                assert done.code == 0, (form, done)
                assert SECRET not in done.out + done.err, (form, done)
            assert runs[0].out.startswith("store: postgres ")
            # --pg with a password: one warning line; from the environment: none.
            for done in runs[:3]:
                assert done.err.splitlines() == [WARNING], done.err
            assert runs[3].err == ""
            assert runs[1].json()["ok"] is True
        # The role commands print the store they changed the same way.
        sql = cli("--pg", password_forms(dsn)[2], "pg", "grant-agent", "me", "--role", "r_me",
                  "--print-sql", **env)  # fmt: skip
        assert sql.code == 0 and SECRET not in sql.out + sql.err, sql


def test_a_conninfo_that_does_not_parse_is_not_echoed(cli: Cli) -> None:
    """libpq's parse error quotes the text after the broken pair, here part of a password."""
    expected = (
        "mempill: error: --pg / MEMPILL_PG_DSN: libpq cannot parse the conninfo (not shown: it "
        "may hold a password); use key=value pairs (quote a value with spaces: 'my secret') "
        "or a postgresql:// URI"
    )
    for broken in (f"host=db password=my {SECRET}", f"host=db password='{SECRET}"):
        for args, env in (
            (("--pg", broken, "--agent", "me", "recall", "u", "c"), {}),
            (("doctor",), {"MEMPILL_PG_DSN": broken}),
            (("pg", "grant-agent", "me", "--role", "r", "--print-sql"), {"MEMPILL_PG_DSN": broken}),
        ):
            done = cli(*args, MEMPILL_DB_PATH="", **env)
            assert done.code == 2 and done.out == "", done
            assert SECRET not in done.err
            assert done.err.splitlines()[-1] == expected, done.err


# ---------------------------------------------------------------- import --agent


STREAM_HEADER = {"stream": "mempill-stream/1", "name": "one-agent", "agent_id": "alice"}
OWN = {"op": "ingest", "request": {"subject": "u", "predicate": "city", "value": "Paris"}}


def write_stream(path: Path, *ops: dict[str, Any]) -> Path:
    lines = [STREAM_HEADER, OWN, *ops]
    path.write_text("".join(json.dumps(item) + "\n" for item in lines), encoding="utf-8")
    return path


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres_only)])
def store_env(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[dict[str, str]]:
    """The environment of a store on either backend: a folder of agent files, or a schema."""
    if request.param == "sqlite":
        yield {"MEMPILL_DB_PATH": f"{tmp_path}/agents/"}
        return
    if not postgres_selected():
        pytest.skip("MEMPILL_TEST_BACKENDS excludes postgres")
    from mempill.lab.servers import fresh_schema

    with fresh_schema(request.getfixturevalue("postgres_server"), prefix="imp") as dsn:
        yield {"MEMPILL_DB_PATH": "", "MEMPILL_PG_DSN": dsn}


def test_import_as_one_agent_never_touches_another(
    cli: Cli, tmp_path: Path, store_env: dict[str, str]
) -> None:
    cli.env = store_env
    cli.ok("--agent", "victim", "remember", "u", "city", "Home")
    foreign = {"subject": "u", "predicate": "city", "value": "Evil", "agent_id": "victim"}
    cases = [
        ({"op": "ingest", "request": foreign}, "(ingest) is for agent 'victim'"),
        ({"op": "ingest_many", "requests": [OWN["request"], foreign]}, "(ingest_many) is for"),
        (
            {
                "op": "end_fact",
                "agent_id": "victim",
                "subject": "u",
                "predicate": "city",
                "at": "2026-06",
            },
            "(end_fact) is for agent 'victim'",
        ),
        ({"op": "query_audit", "agent_id": "victim"}, "(query_audit) is for agent 'victim'"),
        ({"op": "sweep"}, "(sweep) acts on every agent of the store"),
    ]
    for op, why in cases:
        stream = write_stream(tmp_path / "stream.jsonl", op)
        for agent in (("--agent", "alice"), ()):
            env = {} if agent else {"MEMPILL_AGENT_ID": "alice"}
            line = cli.fails(2, *agent, "import", str(stream), **env)
            assert line.startswith(f"mempill: error: import as agent 'alice': operation 2 {why}")
            assert "nothing was imported" in line
    # Nothing was written: victim's belief and ledger are as they were, alice has none.
    assert (
        cli.ok("--agent", "victim", "recall", "u", "city", "--json").json()["primary"]["value"]
        == "Home"
    )
    assert len(cli.ok("--agent", "victim", "audit", "--json").json()["entries"]) == 1
    assert cli.ok("--agent", "alice", "audit", "--json").json()["entries"] == []
    # A stream of alice's own: operations that would reach every agent are scoped to her.
    clean = write_stream(tmp_path / "clean.jsonl", {"op": "list_pending"}, {"op": "notify"})
    summary = cli.ok("--agent", "alice", "import", str(clean), "--json").json()
    assert summary["operations"] == 3 and sorted(summary["digests"]) == ["alice"]
    assert (
        cli.ok("--agent", "alice", "recall", "u", "city", "--json").json()["primary"]["value"]
        == "Paris"
    )
    assert (
        cli.ok("--agent", "victim", "recall", "u", "city", "--json").json()["primary"]["value"]
        == "Home"
    )
    # Without an agent the stream is replayed as written, every agent it names (documented).
    stream = write_stream(tmp_path / "both.jsonl", {"op": "ingest", "request": foreign})
    summary = cli.ok("import", str(stream), "--append", "--json").json()
    assert sorted(summary["digests"]) == ["alice", "victim"]


# ---------------------------------------------------------------- terminal output


@pytest.mark.sqlite_only
def test_terminal_output_escapes_control_characters(cli: Cli, tmp_path: Path) -> None:
    value = json.dumps(HOSTILE)
    stored = cli.ok("--agent", "me", "remember", HOSTILE, HOSTILE, value)
    no_raw_controls(stored.out)
    cli.ok("--agent", "me", "remember", HOSTILE, HOSTILE, '"other\\u009b"')  # Contested
    texts = [
        cli.ok("recall", HOSTILE, HOSTILE).out,
        cli.ok("subject", HOSTILE).out,
        cli.ok("history", HOSTILE, HOSTILE).out,
        cli.ok("audit").out,
        cli.ok("recall", HOSTILE, "absent").out,
        cli.ok("end", HOSTILE, HOSTILE, "--value", value, "--at", "2026-06").out,
        cli.ok("doctor").out,
    ]
    for text in texts:
        no_raw_controls(text)
    assert "u\\x1b]0;owned\\x07\\x1b[2J\\rfake\\nline\\x9b31m\\u202eevil\\x7f" in texts[0]
    assert len(texts[1].splitlines()) == 3  # the heading, the table's header, one row
    # --json is the exact data, as JSON without a raw control character.
    for args in (("recall", HOSTILE, HOSTILE), ("history", HOSTILE, HOSTILE), ("audit",)):
        out = cli.ok(*args, "--json").out
        no_raw_controls(out)
        json.loads(out)
    history = cli.ok("history", HOSTILE, HOSTILE, "--json").json()
    assert history["subject"] == HOSTILE and HOSTILE in [e["value"] for e in history["entries"]]
    # Error lines and usage errors that quote what was typed.
    for code, args in (
        (2, ("recall", "a", "b", HOSTILE)),  # argparse: unrecognized arguments
        (2, ("recall", "a", "b", "--as-of", HOSTILE)),
        (2, ("--db", str(tmp_path / "x.db"), "--agent", HOSTILE, "recall", "a", "b")),
        (1, ("end", HOSTILE, "nothing")),  # nothing to end: the message names the line
    ):
        done = cli(*args)
        assert done.code == code, done
        no_raw_controls(done.err)
        assert len(done.err.splitlines()) == 1, done.err
    # A database file whose name holds an escape sequence: doctor shows it escaped.
    odd = tmp_path / "odd\x1b[31m.db"
    cli.ok("--db", str(odd), "--agent", "me", "remember", "a", "b", "1")
    report = cli.ok("--db", str(odd), "doctor").out
    no_raw_controls(report)
    assert "odd\\x1b[31m.db" in report


# ---------------------------------------------------------------- CSV and export files


FORMULAS = {
    '=HYPERLINK("http://evil.example","click")': True,
    "+1+1": True,
    "-2+3+cmd|' /C calc'!A0": True,
    "@SUM(A1:A2)": True,
    "\t=1+1": True,
    "\r=1+1": True,
    "-5": False,  # a plain number stays a number
    "+4.5e3": False,
    "plain": False,
    "a=b": False,
}


@pytest.mark.sqlite_only
def test_csv_cells_a_spreadsheet_would_run_are_neutralised(cli: Cli, tmp_path: Path) -> None:
    for number, subject in enumerate(FORMULAS):
        cli.ok("--agent", "me", "remember", subject, "p", str(number))
    cli.ok("--agent", "me", "remember", "numbers", "p", "-7")
    cli.ok("--agent", "me", "remember", "text", "p", "=1+1", "--string")
    for what in ("claims", "ledger"):
        out = tmp_path / f"{what}.csv"
        cli.ok("export", what, "--out", str(out))
        with out.open(encoding="utf-8", newline="") as f:
            rows = list(csv.DictReader(f))
        subjects = {row["subject"] for row in rows}
        for subject, neutralised in FORMULAS.items():
            assert ("'" + subject if neutralised else subject) in subjects, subject
        if what == "claims":
            values = {row["subject"]: row["value"] for row in rows}
            assert values["numbers"] == "-7"  # canonical JSON: a number, not a formula
            assert values["text"] == '"=1+1"'  # a JSON string starts with a quote
    # JSON lines carry the text exactly (no spreadsheet reads them).
    lines = cli.ok("export", "claims").out.splitlines()
    assert set(FORMULAS) <= {json.loads(line)["subject"] for line in lines}


@pytest.mark.sqlite_only
def test_csv_to_a_terminal_escapes_control_characters(cli: Cli, tmp_path: Path) -> None:
    cli.ok("--agent", "me", "remember", HOSTILE, "p", "1")
    to_file = tmp_path / "claims.csv"
    cli.ok("export", "claims", "--format", "csv", "--out", str(to_file))
    with to_file.open(encoding="utf-8", newline="") as f:  # a file carries the data exactly
        assert [row["subject"] for row in csv.DictReader(f)] == [HOSTILE]
    leader, follower = pty.openpty()
    tty.setraw(follower)  # the bytes as written: no CR added to line ends
    base = {k: v for k, v in os.environ.items() if not k.startswith("MEMPILL_")}
    process = subprocess.Popen(
        [sys.executable, "-m", "mempill.cli", "export", "claims", "--format", "csv"],
        env=base | cli.env,
        cwd=tmp_path,
        stdout=follower,
        stderr=subprocess.PIPE,
    )
    os.close(follower)
    chunks = []
    while True:
        ready, _, _ = select.select([leader], [], [], 60)
        assert ready, "no output from export"
        try:
            chunk = os.read(leader, 65536)
        except OSError:  # the other end closed (Linux: EIO)
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(leader)
    _, err = process.communicate(timeout=60)
    assert process.returncode == 0, err
    shown = b"".join(chunks).decode("utf-8").replace("\r\n", "\n")  # CSV's line ends
    no_raw_controls(shown)
    assert "u\\x1b]0;owned\\x07" in shown


@pytest.mark.sqlite_only
def test_exports_are_private_whole_files_never_written_through_a_link(
    cli: Cli, tmp_path: Path
) -> None:
    cli.ok("--agent", "me", "remember", "user", "city", "Paris")
    old_umask = os.umask(0o022)
    try:
        nested = tmp_path / "new" / "deeper" / "ledger.csv"
        cli.ok("export", "ledger", "--out", str(nested))
        assert stat.S_IMODE(nested.stat().st_mode) == 0o600
        for folder in (nested.parent, nested.parent.parent):
            assert stat.S_IMODE(folder.stat().st_mode) == 0o700, folder
        # An existing file is replaced by a new one (never rewritten in place): a hard
        # link to the old file keeps the old bytes, and the new file is 0600.
        out = tmp_path / "out" / "claims.jsonl"
        out.parent.mkdir()
        out.write_text("old\n", encoding="utf-8")
        out.chmod(0o644)
        (tmp_path / "out" / "hardlink").hardlink_to(out)
        before = out.stat().st_ino
        cli.ok("export", "claims", "--out", str(out))
        assert out.stat().st_ino != before and stat.S_IMODE(out.stat().st_mode) == 0o600
        assert json.loads(out.read_text(encoding="utf-8"))["value"] == '"Paris"'
        assert (tmp_path / "out" / "hardlink").read_text(encoding="utf-8") == "old\n"
        # A symbolic link at the destination is refused; its target is left alone.
        victim = tmp_path / "victim.txt"
        victim.write_text("precious\n", encoding="utf-8")
        link = tmp_path / "out" / "link.csv"
        link.symlink_to(victim)
        line = cli.fails(3, "export", "ledger", "--out", str(link))
        assert "is a symbolic link: refusing to write through it" in line
        assert link.is_symlink() and victim.read_text(encoding="utf-8") == "precious\n"
        dangling = tmp_path / "out" / "dangling.csv"
        dangling.symlink_to(tmp_path / "created-through-a-link.csv")
        cli.fails(3, "export", "ledger", "--out", str(dangling))
        assert not (tmp_path / "created-through-a-link.csv").exists()
        cli.fails(3, "export", "ledger", "--out", str(tmp_path / "out"))  # a directory
        pytest.importorskip("pyarrow")
        parquet = tmp_path / "out" / "ledger.parquet"
        cli.ok("export", "ledger", "--out", str(parquet))
        assert stat.S_IMODE(parquet.stat().st_mode) == 0o600
    finally:
        os.umask(old_umask)
    # No temporary file is left behind, whatever happened.
    names = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert names == ["claims.jsonl", "dangling.csv", "hardlink", "ledger.parquet", "link.csv"]
