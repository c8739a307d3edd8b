"""The `mempill` console script, run in a subprocess like a person or a shell script would.

Every run gets the same stepping clock and its own id seed from the environment
(`MEMPILL_CLOCK_START`, `MEMPILL_ID_SEED`), so outputs are reproducible.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from pghelpers import postgres_selected

import mempill
from mempill import SeededIds
from mempill.streams import Session, read_stream

CLOCK = "2026-01-01T00:00:00Z"
MEMPILL = Path(sys.executable).with_name("mempill")


@dataclass
class Result:
    code: int
    out: str
    err: str

    def json(self) -> Any:
        return json.loads(self.out)


@dataclass
class Cli:
    """Runs `python -m mempill.cli` in `cwd`; each run uses the next id seed."""

    cwd: Path
    env: dict[str, str] = field(default_factory=dict)
    seed: int = 100

    def __call__(self, *args: str, **env: str) -> Result:
        return self.run([sys.executable, "-m", "mempill.cli"], args, env)

    def run(self, command: list[str], args: tuple[str, ...], env: dict[str, str]) -> Result:
        self.seed += 1
        base = {k: v for k, v in os.environ.items() if not k.startswith("MEMPILL_")}
        base |= {"MEMPILL_CLOCK_START": CLOCK, "MEMPILL_ID_SEED": str(self.seed)}
        done = subprocess.run(
            [*command, *args],
            cwd=self.cwd,
            env=base | self.env | env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert "Traceback" not in done.stderr, done.stderr
        return Result(done.returncode, done.stdout, done.stderr)

    def ok(self, *args: str, **env: str) -> Result:
        result = self(*args, **env)
        assert result.code == 0, result
        return result

    def fails(self, code: int, *args: str, **env: str) -> str:
        """Run a command that must fail; return its one-line message."""
        result = self(*args, **env)
        assert result.code == code, result
        lines = result.err.strip().splitlines()
        assert len(lines) == 1, result.err
        return lines[0]


@pytest.fixture
def cli(tmp_path: Path) -> Cli:
    return Cli(tmp_path, {"MEMPILL_DB_PATH": str(tmp_path / "memory.db")})


@pytest.mark.sqlite_only
def test_a_shell_session_remember_recall_end_history(cli: Cli) -> None:
    first = cli.ok("--agent", "me", "remember", "user", "city", "Paris", "--json").json()
    assert first["disposition"] == "CommittedCheap"
    assert first["claim_ref"] == SeededIds(cli.seed)()
    text = cli.ok("recall", "user", "city").out  # the file's bound agent is the default
    assert text.splitlines()[0] == 'user city: TimingUncertain = "Paris"'
    contested = cli.ok("remember", "user", "city", "Lyon")
    assert contested.out.startswith("Contested  ")
    assert "contested with: " + first["claim_ref"] in contested.out
    recall = cli.ok("recall", "user", "city", "--json").json()
    assert recall["status"] == "Contested"
    assert sorted(a["value"] for a in recall["alternatives"]) == ["Lyon", "Paris"]
    assert recall["status_reason"].startswith("Contested: 2 different values")
    ended = cli.ok("end", "user", "city", "--value", "Lyon", "--json").json()
    assert ended["receipts"][0]["disposition"] == "Superseded"
    assert cli.ok("recall", "user", "city", "--json").json()["primary"]["value"] == "Paris"
    history = cli.ok("history", "user", "city").out.splitlines()
    assert history[0] == "user city"
    assert history[1].split()[:3] == ["STATUS", "VALUE", "VALID"]
    assert [line.split()[:2] for line in history[2:]] == [
        ["Current", '"Paris"'],
        ["Ended", '"Lyon"'],
    ]


@pytest.mark.sqlite_only
def test_values_are_json_unless_they_are_not(cli: Cli) -> None:
    cli.ok("--agent", "me", "remember", "user", "age", "41")
    cli.ok("remember", "user", "tags", '["a", "b"]', "--cardinality", "SetValued")
    cli.ok("remember", "user", "zip", "02134", "--string")
    cli.ok("remember", "user", "name", "Ada Lovelace", "--from", "2020-03", "--confidence", "0.9")
    facts = cli.ok("subject", "user", "--json").json()["facts"]
    values = {f["predicate"]: f["primary"]["value"] for f in facts}
    assert values == {"age": 41, "name": "Ada Lovelace", "tags": ["a", "b"], "zip": "02134"}
    assert [f["predicate"] for f in facts] == ["age", "name", "tags", "zip"]
    name = next(f for f in facts if f["predicate"] == "name")
    assert name["primary"]["valid_from_display"] == "2020-03"
    table = cli.ok("subject", "user").out.splitlines()
    assert table[0] == "user" and table[1].split() == ["PREDICATE", "STATUS", "VALUE", "NOTE"]


@pytest.mark.sqlite_only
def test_flags_go_before_or_after_the_command_and_env_supplies_defaults(
    cli: Cli, tmp_path: Path
) -> None:
    other = str(tmp_path / "other.db")
    cli.ok("remember", "--db", other, "--agent", "me", "x", "y", "1")
    cli.ok("--db", other, "--agent", "me", "remember", "x", "y", "1")
    audit = cli.ok("--db", other, "audit", "--json").json()
    assert [e["rationale"]["reason"] for e in audit["entries"]] == [
        "first_authoritative",
        "corroboration",
    ]
    cli.ok("remember", "x", "y", "2", MEMPILL_AGENT_ID="me")  # MEMPILL_DB_PATH from the fixture
    assert cli.ok("recall", "x", "y", "--json").json()["primary"]["value"] == 2


@pytest.mark.sqlite_only
def test_errors_are_one_line_and_non_zero(cli: Cli, tmp_path: Path) -> None:
    """Exit 2: refused before the store is touched; 1: refused by the store's rules."""
    assert cli.fails(2, "recall", "a", "b", MEMPILL_DB_PATH="") == (
        "mempill: error: no store: pass --db PATH or --pg DSN "
        "(or set MEMPILL_DB_PATH / MEMPILL_PG_DSN)"
    )
    missing = tmp_path / "missing.db"
    line = cli.fails(2, "--db", str(missing), "--agent", "me", "recall", "a", "b")
    assert line == f"mempill: error: database file {str(missing)!r} does not exist"
    assert not missing.exists()
    (tmp_path / "agents").mkdir()
    assert cli.fails(2, "--db", str(tmp_path / "agents"), "recall", "a", "b") == (
        "mempill: error: --agent is required (or set MEMPILL_AGENT_ID)"
    )
    cli.ok("--agent", "me", "remember", "a", "b", "1")
    line = cli.fails(2, "recall", "a", "b", "--as-of", "last week")
    assert line.startswith("mempill: error: as_of: 'last week' is not a date")
    line = cli.fails(2, "--agent", "..", "recall", "a", "b")
    assert "agent_id: '..' is invalid" in line
    line = cli.fails(2, "recall", "a")
    assert line == (
        "mempill recall: error: the following arguments are required: predicate "
        "(see mempill recall --help)"
    )
    line = cli.fails(1, "--agent", "intruder", "remember", "a", "b", "2")
    assert line.startswith("mempill: error: Rejected: this store belongs to another agent")
    line = cli.fails(1, "end", "nothing", "here")
    assert line == "mempill: error: no current belief to end on ('nothing', 'here')"
    line = cli.fails(2, "--db", "x.db", "--pg", "dbname=x", "recall", "a", "b")
    assert "not both" in line


@pytest.mark.sqlite_only
def test_the_installed_entry_point_runs(cli: Cli) -> None:
    result = cli.run([str(MEMPILL)], ("--version",), {})
    assert result.code == 0 and result.out.strip() == f"mempill {mempill.__version__}"


def _seed_store(cli: Cli) -> None:
    cli.ok("--agent", "me", "remember", "user", "city", "Paris", "--from", "2020")
    cli.ok("remember", "user", "city", "Lyon")
    cli.ok("remember", "user", "score", "1.0")
    cli.ok("end", "user", "city", "--value", "Lyon", "--at", "2026-01-01T00:00:00Z")


@pytest.mark.sqlite_only
def test_export_writes_the_same_rows_as_csv_jsonl_and_parquet(cli: Cli, tmp_path: Path) -> None:
    pd = pytest.importorskip("pandas")
    pytest.importorskip("pyarrow")
    _seed_store(cli)
    for what, rows in (("ledger", 4), ("claims", 3)):
        frames = []
        for fmt in ("csv", "jsonl", "parquet"):
            out = tmp_path / f"{what}.{fmt}"
            done = cli.ok("export", what, "--out", str(out)).out
            assert done.strip() == f"exported {rows} {what} rows to {out} ({fmt})"
            if fmt == "csv":
                frame = pd.read_csv(out, dtype=str, keep_default_na=False)
            elif fmt == "jsonl":
                frame = pd.read_json(out, lines=True, dtype=False)
            else:
                frame = pd.read_parquet(out)
            frame = frame.astype(object)
            frames.append(frame.where(frame.notna(), "").map(str))
        for frame in frames[1:]:
            pd.testing.assert_frame_equal(frames[0], frame, check_dtype=False)
    claims = [json.loads(line) for line in cli.ok("export", "claims").out.splitlines()]
    assert [c["value"] for c in claims] == ['"Paris"', '"Lyon"', "1.0"]  # canonical text
    ledger = cli.ok("export", "ledger", "--format", "csv").out.splitlines()
    assert ledger[0].startswith("agent_id,stream_seq,entry_id,claim_ref,event_kind,disposition")
    line = cli.fails(2, "export", "ledger", "--format", "parquet")
    assert line == "mempill: error: Parquet is binary: give --out FILE.parquet"


@pytest.mark.sqlite_only
def test_doctor_reports_and_checks_a_sqlite_store(cli: Cli, tmp_path: Path) -> None:
    _seed_store(cli)
    report = cli.ok("doctor", "--json").json()
    assert report["ok"] is True and report["backend"] == "sqlite"
    (database,) = report["databases"]
    assert database["bound_agent"] == "me" and database["schema_version"] == 2
    assert database["pragmas"]["journal_mode"] == "wal"
    assert database["pragmas"]["synchronous"] == "FULL"
    assert database["pragmas"]["foreign_keys"] == 1
    assert database["counts"]["claims"] == 3 and database["counts"]["ledger"] == 4
    assert {c["check"] for c in database["checks"]} == {
        "stream_seq gap-free",
        "tx time ordered",
        "claims in ledger",
        "integrity_check",
        "foreign_key_check",
    }
    assert cli.ok("doctor").out.splitlines()[-1] == "all checks passed"
    # Break the append-only ledger behind mempill's back: doctor must notice the gap.
    with sqlite3.connect(tmp_path / "memory.db") as conn:
        conn.execute("DELETE FROM ledger WHERE stream_seq = 2")
    broken = cli("doctor", "--json")
    assert broken.code == 1
    checks = {c["check"]: c for c in broken.json()["databases"][0]["checks"]}
    assert checks["stream_seq gap-free"] == {
        "check": "stream_seq gap-free",
        "ok": False,
        "detail": "me: 3 entries, seq 1..4",
    }
    assert checks["claims in ledger"]["ok"] is False


@pytest.mark.sqlite_only
def test_a_directory_store_keeps_one_file_per_agent(cli: Cli, tmp_path: Path) -> None:
    agents = tmp_path / "agents"
    agents.mkdir()
    cli.ok("--db", str(agents), "--agent", "alice", "remember", "sky", "color", "blue")
    cli.ok("--db", str(agents), "--agent", "bob", "remember", "sky", "color", "grey")
    assert sorted(p.name for p in agents.iterdir() if p.suffix == ".db") == ["alice.db", "bob.db"]
    recall = cli.ok("--db", str(agents), "--agent", "bob", "recall", "sky", "color", "--json")
    assert recall.json()["primary"]["value"] == "grey"
    report = cli.ok("--db", str(agents), "doctor", "--json").json()
    assert [d["agents"] for d in report["databases"]] == [["alice"], ["bob"]]
    exported = cli.ok("--db", str(agents), "export", "claims").out.splitlines()
    assert [json.loads(line)["agent_id"] for line in exported] == ["alice", "bob"]


STREAM = [
    {"stream": "mempill-stream/1", "name": "cli-import", "agent_id": "me", "ids": {"seed": 3}},
    {
        "op": "ingest",
        "as": "paris",
        "request": {"subject": "u", "predicate": "city", "value": "Paris"},
    },
    {"op": "ingest", "request": {"subject": "u", "predicate": "city", "value": "Lyon"}},
    {"op": "end", "claim_ref": "$paris", "at": "2026-06"},
    {"op": "ingest", "request": {"subject": "u", "predicate": "age", "value": 41}},
    {"op": "query_memory", "subject": "u", "predicate": "city"},
    {"op": "end", "claim_ref": "$paris", "at": "not a date"},
]


@pytest.mark.sqlite_only
def test_import_replays_a_claim_stream_like_the_lab(cli: Cli, tmp_path: Path) -> None:
    path = tmp_path / "stream.jsonl"
    path.write_text("".join(json.dumps(item) + "\n" for item in STREAM), encoding="utf-8")
    summary = cli.ok("import", str(path), "--json").json()
    assert summary["operations"] == 6
    assert summary["dispositions"] == {"CommittedCheap": 2, "Contested": 1}
    assert summary["errors"] == {"ValidationError": 1}
    stream = read_stream(path)  # the same stream on the lab's in-memory engine
    header = stream.header
    clock = header.make_clock()
    with mempill.open_default_in_memory(clock=clock, ids=header.make_ids()) as engine:
        session = Session(engine, header, clock, None)
        for op in stream.ops:
            session.apply(op)
        assert summary["digests"] == session.digests()
    recall = cli.ok("recall", "u", "city", "--json").json()
    assert recall["status"] == "Contested"  # Paris is ended only from 2026-06 on
    later = cli.ok("recall", "u", "city", "--valid-at", "2026-07", "--json").json()
    assert later["primary"]["value"] == "Lyon"
    line = cli.fails(2, "import", str(path))
    assert "already holds agent 'me'" in line and "--append" in line
    appended = cli.ok("import", str(path), "--append", "--json").json()
    assert appended["operations"] == 6
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"stream": "mempill-stream/1", "name": "x"}\n{"op": "fly"}\n', encoding="utf-8")
    line = cli.fails(2, "import", str(bad))
    assert line.startswith(f"mempill: error: {bad}:2: expected an operation")


@pytest.mark.postgres_only
@pytest.mark.skipif(not postgres_selected(), reason="MEMPILL_TEST_BACKENDS excludes postgres")
def test_the_cli_on_postgres(cli: Cli, postgres_server: str) -> None:
    from mempill.lab.servers import fresh_schema

    with fresh_schema(postgres_server, prefix="cli") as dsn:
        env = {"MEMPILL_DB_PATH": "", "MEMPILL_PG_DSN": dsn}
        cli.ok("--agent", "me", "remember", "user", "city", "Paris", **env)
        cli.ok("--agent", "you", "remember", "user", "city", "Oslo", **env)
        recall = cli.ok("--agent", "me", "recall", "user", "city", "--json", **env).json()
        assert recall["primary"]["value"] == "Paris"
        report = cli.ok("doctor", "--json", **env).json()
        assert report["backend"] == "postgres" and report["ok"] is True
        (database,) = report["databases"]
        assert database["server_version"] and database["schema_version"] >= 1
        assert database["agents"] == ["me", "you"]
        assert database["counts"]["ledger"] == 2
        exported = cli.ok("export", "ledger", **env).out.splitlines()
        assert [json.loads(line)["agent_id"] for line in exported] == ["me", "you"]
