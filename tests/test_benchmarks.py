"""Smoke tests of the benchmark harness (`python -m benchmarks`) at tiny sizes.

They check that every measurement runs and writes well-formed results, never how fast
anything is: CI machines differ, and the targets are judged by people from the report.
"""

from __future__ import annotations

import json
import math
import sqlite3
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from benchmarks import (
    concurrency,
    groupfloor,
    instructions,
    machine,
    replaycost,
    replayfloor,
    report,
    scriptfloor,
    sqlfloor,
    tables,
)
from benchmarks.context import Bench
from benchmarks.drivers import OursDriver
from benchmarks.durable import per_round, rotated
from benchmarks.reference import ReferenceDriver
from benchmarks.runner import SECTIONS, run
from benchmarks.sizes import TINY
from benchmarks.streams import fresh, line_query, succession, to_reference
from benchmarks.targets import judge
from benchmarks.timing import Progress, in_threads, median, percentile
from mempill.core.canonical import canonical_json
from mempill.core.search import INDEX_BLOCK, claim_terms, indexed_below
from mempill.stores.sql import CLAIM_COLUMNS
from mempill.stores.sqlite import connections
from mempill.streams import StreamError, read_stream

TARGET_KEYS = [
    "durable",
    "engine_ingest",
    "batch",
    "group_commit_one_agent",
    "group_commit_agents",
    "replay_us_per_op",
    "store_ingest",
    "line_query",
    "one_claim_query_ms",
    "build_rss",
]


def positive(value: Any) -> bool:
    return isinstance(value, (int, float)) and math.isfinite(value) and value > 0


@pytest.fixture(scope="module")
def tiny(
    tmp_path_factory: pytest.TempPathFactory, postgres_server: str
) -> tuple[Path, dict[str, Any]]:
    out = tmp_path_factory.mktemp("bench")
    results = run(TINY, out, reference=False, pg_dsn=postgres_server, progress=Progress(quiet=True))
    return out, results


def test_every_section_runs_and_the_files_match(tiny: tuple[Path, dict[str, Any]]) -> None:
    out, results = tiny
    assert results["errors"] == {}
    assert set(SECTIONS) <= set(results)
    assert json.loads((out / "results.json").read_text()) == results
    assert not (out / "work").exists(), "scratch stores are removed after the run"
    text = (out / "report.md").read_text()
    for heading in (
        "## Machine",
        "## Targets",
        "## Summary",
        "## Engine-only ingest and the SQL floor",
        "## Concurrency",
        "The group-commit floor",
        "## PostgreSQL",
        "## Conformance replay",
        "query plans",
        "Profile: ",
    ):
        assert heading in text
    # PostgreSQL is reported under its own heading, never among the targets
    targets = text.split("## Targets")[1].split("## Summary")[0]
    assert "PostgreSQL" not in targets
    assert "reference" in results["unavailable"]


def test_machine_description(tiny: tuple[Path, dict[str, Any]]) -> None:
    machine = tiny[1]["machine"]
    assert machine["sqlite"] and machine["python"] and machine["cpu"]["logical_cores"] >= 1
    assert len(machine["load_average_at_start"]) == 3
    assert machine["postgres"]["server_version"]


def test_durable_and_batching_rates_are_positive(tiny: tuple[Path, dict[str, Any]]) -> None:
    results = tiny[1]
    durable = results["durable"]
    assert len(durable["rounds"]) == TINY.durable_rounds
    assert positive(durable["rate"]["raw"]) and positive(durable["rate"]["ours"])
    assert positive(durable["ours_over_raw"])
    assert all({"raw", "script", "ours"} <= set(r) for r in durable["rounds"])
    assert positive(durable["script_over_raw"]) and positive(durable["ours_over_script"])
    batching = results["batching"]
    batch = batching["engines"]["ours"]
    assert positive(batch["rate"]) and batch["native_batch"]
    assert batch["dispositions"] == {"CommittedCheap": TINY.batch_size * TINY.batch_rounds}
    # raw batch inserts are interleaved with the engine: one of each per round
    assert len(batching["rounds"]) == TINY.batch_rounds
    assert all({"raw", "floor", "ours", "ours_nosync"} <= set(r) for r in batching["rounds"])
    assert positive(batching["raw"]["rate"]) and positive(batching["ours_over_raw"])
    assert positive(batching["floor"]["rate"]) and positive(batching["floor_over_raw"])
    assert positive(batching["ours_over_floor"])


def test_engine_only_ingest_and_the_sql_floor(tiny: tuple[Path, dict[str, Any]]) -> None:
    engine = tiny[1]["engine"]
    assert "floor_error" not in engine and "script_error" not in engine
    assert len(engine["rounds"]) == TINY.engine_rounds
    assert all(set(r) == {"raw", "ours", "floor", "script"} for r in engine["rounds"])
    for name in ("raw", "ours", "floor", "script"):
        assert positive(engine["rate"][name]) and positive(engine["us_per_claim"][name])
    keys = ("ours_over_raw", "floor_over_raw", "ours_over_floor")
    for key in (*keys, "script_over_raw", "ours_over_script"):
        assert positive(engine[key])
    assert engine["dispositions"] == {"CommittedCheap": TINY.engine_rounds * TINY.engine_claims}
    statements = engine["floor_statements"]
    inserts = [s for s in statements if s["sql"].upper().startswith("INSERT")]
    assert inserts and all(set(s["keys"]) <= sqlfloor.KEY_COLUMNS for s in inserts)
    assert {"claim_ref", "stream_seq"} <= {k for s in inserts for k in s["keys"]}
    assert engine["floor_disposition"] == "CommittedCheap"


def test_flat_cost_points_cover_every_size(tiny: tuple[Path, dict[str, Any]]) -> None:
    flat = tiny[1]["flat"]
    for axis, key, sizes in (
        ("store", "size", TINY.store_sizes),
        ("line", "length", TINY.line_lengths),
    ):
        for engine in ("ours", "ours_nosync"):
            points = flat[axis]["engines"][engine]
            assert [p[key] for p in points] == list(sizes)
            for p in points:
                assert (
                    positive(p["ingest_rate"]) and len(p["ingest_round_rates"]) == TINY.flat_rounds
                )
                assert positive(p["query_cold"]["median_s"]) and positive(p["query_warm"]["p95_s"])
                assert set(p["dispositions"]) == {"CommittedCheap"}
                assert set(p["query_cold"]["statuses"]) == set(p["query_warm"]["statuses"])
    # the store sizes' ingests are interleaved round by round: each size's rate over the
    # smallest's is the median of the per-round ratios (the smallest's is 1)
    for engine in ("ours", "ours_nosync"):
        points = flat["store"]["engines"][engine]
        assert [p["claims_in_copy"] for p in points] == list(TINY.store_sizes)
        assert points[0]["ingest_over_smallest"] == 1.0
        for p in points:
            smallest = points[0]["ingest_round_rates"]
            per_round = [r / s for r, s in zip(p["ingest_round_rates"], smallest, strict=True)]
            assert p["ingest_over_smallest"] == pytest.approx(statistics.median(per_round))
    # long lines resolve at the queried instant; filler claims carry no valid time (reference §5.5)
    assert set(flat["line"]["engines"]["ours"][-1]["query_warm"]["statuses"]) == {"Resolved"}
    assert set(flat["store"]["engines"]["ours"][-1]["query_cold"]["statuses"]) == {
        "TimingUncertain"
    }


def test_concurrency_grid_and_postgres_ratio(tiny: tuple[Path, dict[str, Any]]) -> None:
    concurrency = tiny[1]["concurrency"]
    assert set(concurrency["configs"]) == {"sqlite", "sqlite-agent-lock", "postgres"}
    for points in concurrency["configs"].values():
        assert {(p["agents"], p["writers"]) for p in points} == {
            (a, w) for a in (1, TINY.wide_agents) for w in TINY.threads
        }
        assert all(positive(p["rate"]) and positive(p["over_one_writer"]) for p in points)
        assert all(len(p["round_rates"]) == TINY.concurrency_rounds for p in points)
        assert all(p["over_one_writer"] == 1 for p in points if p["writers"] == 1)
    assert positive(concurrency["postgres_vs_raw"]["ours_over_raw"])
    floor = concurrency["group_floor"]  # the group-commit floor, beside the sqlite grid
    assert set(floor) == {"1", str(TINY.wide_agents)} and "group_floor_error" not in concurrency
    assert all(positive(p["over_one_writer"]) for p in floor.values())
    assert all(len(p["round_rates"]) == TINY.concurrency_rounds for p in floor.values())


def test_conformance_replay_cost(tiny: tuple[Path, dict[str, Any]]) -> None:
    replay = tiny[1]["replay"]
    assert replay["backend"] == "sqlite-mem"
    assert "data/scenarios" in replay["folders"]
    assert replay["streams"] == len(replaycost.corpus()) and replay["operations"] > 0
    assert len(replay["rounds"]) == TINY.replay_rounds
    # the verdicts are reported (whether they pass is the conformance tests' business)
    assert sum(replay["cells"].values()) == replay["streams"] and replay["cells"].get("pass")
    assert positive(replay["us_per_op"]) and positive(replay["engine_us_per_op"])
    assert replay["engine_us_per_op"] <= replay["us_per_op"]
    floor = replay["floor"]  # the same sqlite3 calls alone, rounds interleaved
    assert len(floor["rounds"]) == TINY.replay_rounds
    assert floor["statements"] > replay["operations"] and floor["stores"] > 0
    assert positive(floor["us_per_op"]) and 0 < floor["stores_us_per_op"] < floor["us_per_op"]


def test_targets_profiles_memory_and_plans(tiny: tuple[Path, dict[str, Any]]) -> None:
    results = tiny[1]
    targets = results["targets"]
    assert [t["key"] for t in targets] == TARGET_KEYS
    # everything is measured at TINY but the RSS ratio, which needs the reference wheel
    for t in targets:
        if t["key"] == "build_rss":
            assert t["value"] is None and t["met"] is None
        else:
            assert t["value"] is not None and isinstance(t["met"], bool), t
    assert {"ingest", "ingest_many", "query_long_line"} <= set(results["profiles"])
    assert (
        results["memory"]["ours_build"]["peak_kib"]
        >= results["memory"]["ours_build"]["baseline_kib"]
    )
    assert results["memory"]["ours_query"]["statuses"] == {"TimingUncertain": TINY.memory_queries}
    hot = {p["key"]: p for p in results["plans"]}
    for key in ("line_version", "line_claims", "line_entries", "line_assertions", "claim"):
        assert not hot[key]["full_scan"] and not hot[key]["agent_wide"], hot[key]["plan"]


def test_tables_render_every_row(tiny: tuple[Path, dict[str, Any]]) -> None:
    results = tiny[1]
    rows = tables.summary(results)
    assert all(len(r) == len(report.SUMMARY) for r in rows)
    lines = report.console(results).splitlines()
    # title, blank, the targets' header and rule, one row per target with its verdict and
    # its floor last (all are measured at TINY), blank, the summary's header and rule, rows
    targets = results["targets"]
    assert lines[2].split() == " ".join(report.TARGETS).split()
    verdicts = {None: "not measured", True: "met", False: "NOT MET"}
    shown = lines[4 : 4 + len(targets)]
    for row, t in zip(shown, targets, strict=True):
        floor = "—" if t["floor"] is None else f"{t['floor']:,.3f}"
        floor += " (out of reach)" if t["floor"] is not None and not t["reachable"] else ""
        assert row.startswith(t["what"]) and row.rstrip().endswith(floor), row
        assert f" {verdicts[t['met']]} " in row, row
    floors = {t["key"]: t["floor"] for t in targets}
    assert all(floors[k] is not None for k in ("durable", "engine_ingest", "batch")), floors
    summary = lines[5 + len(targets) :][: 2 + len(rows)]
    assert lines[4 + len(targets)] == "" and summary[0].startswith(report.SUMMARY[0])
    assert [line[: len(r[0])] for line, r in zip(summary[2:], rows, strict=True)] == [
        r[0] for r in rows
    ]


def test_reference_runner_protocol_over_the_compat_layer(tmp_path: Path) -> None:
    """The runner that drives the wheel, pointed at this project's wheel-shaped layer."""
    driver = ReferenceDriver(Path(sys.executable), module="mempill.compat")
    try:
        handle = driver.open(tmp_path / "ref", "lines")
        done = driver.ingest(handle, [succession("lines", 0, i) for i in range(5)])
        assert done.count == 5 and done.dispositions == {"CommittedCheap": 5}
        assert positive(done.rate)
        answer = driver.query(handle, [line_query("lines", 0, 5)] * 3)
        assert len(answer.latencies) == 3 and answer.statuses == {"Resolved": 3}
        driver.close(handle)
        assert driver.peak_rss_kib() > 0
    finally:
        driver.close_all()


def test_claims_convert_to_the_wheel_shape() -> None:
    plain = to_reference(fresh("a-1", "s", 3))
    assert plain["valid_time"] is None
    assert plain["confidence"] == {"value_confidence": 1.0, "valid_time_confidence": 0.0}
    dated = to_reference(succession("a-1", 2, 7))
    assert dated["subject"] == "timeline2" and dated["value"] == {"text": "fact number 7", "n": 7}
    assert (
        dated["valid_time"]["valid_time_confidence"] == dated["confidence"]["valid_time_confidence"]
    )
    assert dated["valid_time"]["start"] < dated["valid_time"]["end"]


def test_statistics_helpers() -> None:
    assert median([3.0, 1.0, 2.0]) == 2.0
    assert math.isnan(median([]))
    assert percentile([1.0, 2.0, 3.0, 4.0, 5.0], 95) == pytest.approx(4.8)
    assert TINY.lines_for(5) > TINY.lines_for(20) >= 1


def _results(**sections: Any) -> dict[str, Any]:
    """A results dict as `run` writes it, with only the values `judge` reads."""
    sizes = {
        "store_sizes": [100, 5_000],
        "line_lengths": [10, 1_000],
        "batch_size": 1_000,
        "threads": [1, 4, 16],
        "wide_agents": 16,
        "memory_claims": 5_000,
    }

    def grid(one: float, wide: float) -> list[dict[str, Any]]:
        return [
            {"agents": a, "writers": w, "over_one_writer": 1.0 if w == 1 else scale}
            for a, scale in ((1, one), (16, wide))
            for w in (1, 4, 16)
        ]

    def flat(ingest: tuple[float, float], warm: tuple[float, float], cold: float) -> Any:
        return {
            "store": {
                "engines": {
                    "ours": [
                        {"ingest_rate": ingest[0], "ingest_over_smallest": 1.0,
                         "query_cold": {"median_s": 0.0001}},
                        {"ingest_rate": ingest[1], "ingest_over_smallest": ingest[1] / ingest[0],
                         "query_cold": {"median_s": cold}},
                    ],
                    "reference": [{"size": 100}, {"size": 5_000, "builder": {
                        "builder_peak_rss_kib": 40_000}}],
                }
            },
            "line": {
                "engines": {
                    "ours": [
                        {"query_warm": {"median_s": warm[0]}},
                        {"query_warm": {"median_s": warm[1]}},
                    ]
                }
            },
        }  # fmt: skip

    results: dict[str, Any] = {
        "sizes": sizes,
        "reference": "0.4.0",
        "durable": {"ours_over_raw": 0.8},
        "engine": {"ours_over_raw": 0.05},
        "batching": {"ours_over_raw": 0.25},
        "concurrency": {
            "configs": {"sqlite": grid(3.5, 2.0), "sqlite-agent-lock": grid(9.0, 9.0)},
            "postgres_vs_raw": {"ours_over_raw": 0.1},
        },
        "replay": {"us_per_op": 100.0, "floor": {"us_per_op": 120.0}},
        "flat": flat((1000.0, 900.0), (0.0001, 0.0004), 0.001),
        "memory": {"claims": 5_000, "ours_build": {"peak_kib": 79_000}},
    }
    results.update(sections)
    return results


def verdicts(results: dict[str, Any]) -> dict[str, tuple[float | None, bool | None]]:
    return {t.key: (t.value, t.met) for t in judge(results)}


def rounded(verdict: tuple[float | None, bool | None]) -> tuple[float | None, bool | None]:
    value, met = verdict
    return (None if value is None else round(value, 9), met)


def test_judge_reads_every_target_from_its_section() -> None:
    found = verdicts(_results())
    assert list(found) == TARGET_KEYS
    assert found["durable"] == (0.8, True)  # ≥ includes the bound
    assert found["engine_ingest"] == (0.05, False)
    assert found["batch"] == (0.25, True)
    # group commit: the `sqlite` configuration (open_directory's default), most writers
    assert found["group_commit_one_agent"] == (3.5, True)
    assert found["group_commit_agents"] == (2.0, False)
    assert found["replay_us_per_op"] == (100.0, True)  # ≤ includes the bound
    assert rounded(found["store_ingest"]) == (0.9, True)
    assert rounded(found["line_query"]) == (4.0, False)
    assert found["one_claim_query_ms"] == (1.0, False)  # < excludes it
    assert rounded(found["build_rss"]) == (1.975, True)


def test_judge_texts_name_the_run_sizes_and_leave_postgres_out() -> None:
    targets = judge(_results())
    texts = {t.key: t.what for t in targets}
    assert texts["group_commit_one_agent"].startswith("16 threads into one agent")
    assert texts["group_commit_agents"].startswith("16 threads into 16 agents")
    assert "1,000 claims" in texts["batch"] and "5,000-claim" in texts["build_rss"]
    assert not any("PostgreSQL" in t.what or "postgres" in t.key for t in targets)
    assert [t.bound for t in targets] == [
        "≥ 0.8", "≥ 0.1", "≥ 0.1", "≥ 3", "≥ 3", "≤ 100", "≥ 0.8", "≤ 3", "< 1", "≤ 2",
    ]  # fmt: skip


def test_judge_reports_what_was_not_measured() -> None:
    empty = verdicts({"sizes": {}})
    assert list(empty) == TARGET_KEYS
    assert all(v == (None, None) for v in empty.values())
    # a section that failed or was skipped (--only) leaves only its own targets unmeasured
    partial = verdicts(_results(engine=None, replay={"us_per_op": None}))
    assert partial["engine_ingest"] == partial["replay_us_per_op"] == (None, None)
    assert partial["durable"] == (0.8, True)
    # --no-reference: no reference store, so no RSS ratio
    flat = _results()["flat"]
    del flat["store"]["engines"]["reference"]
    assert verdicts(_results(flat=flat))["build_rss"] == (None, None)
    # a reference store of another size than the memory section's is not "the same"
    assert verdicts(_results(memory={"claims": 200, "ours_build": {"peak_kib": 1}}))[
        "build_rss"
    ] == (None, None)


def test_judge_group_commit_needs_the_sqlite_grid() -> None:
    concurrency = {"configs": {"sqlite-agent-lock": _results()["concurrency"]["configs"]["sqlite"]}}
    found = verdicts(_results(concurrency=concurrency))
    assert found["group_commit_one_agent"] == found["group_commit_agents"] == (None, None)


def test_round_helpers() -> None:
    assert rotated([1, 2, 3], 0) == [1, 2, 3] and rotated([1, 2, 3], 4) == [2, 3, 1]
    rounds = [{"a": 2.0, "b": 1.0}, {"a": 3.0, "b": 3.0}, {"a": 9.0}]
    assert per_round(rounds, "a", "b") == 1.5  # rounds without b are left out
    assert per_round(rounds, "a", "c") is None


def test_sql_floor_finds_key_columns_by_name() -> None:
    sql = 'INSERT INTO ledger (agent_id, "stream_seq", entry_id, note) VALUES (?, ?, ?, ?)'
    assert sqlfloor.insert_keys(sql) == {1: "stream_seq", 2: "entry_id"}
    assert sqlfloor.insert_keys("insert or ignore into t (claim_ref) values (?)") == {
        0: "claim_ref"
    }
    assert sqlfloor.insert_keys("SELECT claim_ref FROM claims WHERE claim_ref = ?") == {}


def test_sql_floor_captures_and_replays_an_ingest() -> None:
    captured = sqlfloor.capture()
    assert captured.disposition == "CommittedCheap" and captured.connections == 1
    assert captured.settings.get("isolation_level", "") is None
    assert any("foreign_keys" in pragma for pragma in captured.setup)
    sql = [c.sql.split()[0].upper() for c in captured.calls]
    assert sql[0] == "BEGIN" and sql[-1] == "COMMIT" and "INSERT" in sql
    # a block of the word index: its ingests, one of which writes the block's terms
    assert captured.ingests == INDEX_BLOCK == sql.count("BEGIN") == sql.count("COMMIT")
    assert sum("INTO terms" in c.sql for c in captured.calls) == 1
    floor = sqlfloor.Floor(captured)
    try:
        assert positive(floor.rate(30)) and positive(floor.rate(20))
        claims, refs = floor.conn.execute(
            "SELECT count(*), count(DISTINCT claim_ref) FROM claims"
        ).fetchone()
        entries = floor.conn.execute("SELECT count(*) FROM ledger").fetchone()[0]
        assert claims == refs == 2 * captured.ingests and entries >= claims
        assert floor.conn.execute("PRAGMA foreign_key_check").fetchall() == []
    finally:
        floor.close()


def test_sql_floor_follows_a_changed_statement_list() -> None:
    """Statements the engine does not issue today (multi-row INSERT, executemany, named
    parameters, a lookup by a key) replay too: only key columns change, by name, wherever
    their values appear (so the ledger row still refers to its claim)."""
    values = "(" + ", ".join("?" * 19) + ")"
    claim = f"INSERT INTO claims ({CLAIM_COLUMNS}) VALUES {values}"
    lookup = "SELECT count(*) FROM claims WHERE agent_id = ? AND claim_ref = ?"
    names = "agent_id, stream_seq, entry_id, claim_ref, event_kind, disposition, rationale"
    entry = f"INSERT INTO ledger ({names}, recorded_at) VALUES (:{names.replace(', ', ', :')}, :at)"
    named = {
        "agent_id": "a", "stream_seq": 7, "entry_id": "e-1", "claim_ref": "c-1",
        "event_kind": "ClaimCommitted", "disposition": "CommittedCheap", "rationale": "{}",
        "at": "2026-01-01T00:00:00.000000Z",
    }  # fmt: skip
    calls = [
        sqlfloor.Call(0, "BEGIN IMMEDIATE", ((),)),
        sqlfloor.Call(1, lookup, (("a", "c-1"),)),
        sqlfloor.Call(1, f"{claim}, {values}", (claim_row("c-1", 7) + claim_row("c-2", 8),)),
        sqlfloor.Call(2, claim, (claim_row("c-3", 9), claim_row("c-4", 10)), many=True),
        sqlfloor.Call(2, entry, (named,)),
        sqlfloor.Call(0, "COMMIT", ((),)),
    ]
    captured = sqlfloor.Capture(calls, {"isolation_level": None}, ["PRAGMA foreign_keys = ON"], "x")
    floor = sqlfloor.Floor(captured)
    try:
        assert positive(floor.rate(5))
        seqs = [r[0] for r in floor.conn.execute("SELECT stream_seq FROM claims ORDER BY 1")]
        assert len(seqs) == len(set(seqs)) == 20
        refs = {r[0] for r in floor.conn.execute("SELECT claim_ref FROM claims")}
        assert {"c-1~1", "c-4~5"} <= refs and "c-1" not in refs
        assert floor.fresh.bind(calls, 3)[1] == ("a", "c-1~3")  # the lookup follows its key
        ledger = floor.conn.execute("SELECT stream_seq, entry_id, claim_ref FROM ledger").fetchall()
        assert len(ledger) == 5 and (7 + 2 * 4, "e-1~2", "c-1~2") in ledger  # span 4
        assert floor.conn.execute("PRAGMA foreign_key_check").fetchall() == []
    finally:
        floor.close()


def claim_row(ref: str, seq: int) -> tuple[Any, ...]:
    return (
        "a", ref, "s", "p", "1", "Functional", "External/UserAsserted", 1.0, 0.0, "Medium",
        None, None, None, None, "2026-01-01T00:00:00.000000Z", seq, "[]", 0, None,
    )  # fmt: skip


def test_corpus_is_every_stream_under_data() -> None:
    """Every stream of the stream folders, and nothing else: the recorded runs' metadata
    (`data/contention/recordings.jsonl`, `data/durability/runs.jsonl`) is JSON lines too."""
    paths = replaycost.corpus()
    streams = {
        p
        for name in replaycost.STREAM_FOLDERS
        for p in (replaycost.DATA / name).glob("*.jsonl")
        if not p.name.endswith(".expected.jsonl")
    }
    assert set(paths) == streams and len(paths) == len(streams) >= 98
    assert {"scenarios", "regressions"} == {p.parent.name for p in paths}
    for other in set(replaycost.DATA.glob("*/*.jsonl")) - streams:
        if not other.name.endswith(".expected.jsonl"):
            with pytest.raises(StreamError):  # what is left out is not a stream
                read_stream(other)


def test_script_floor_writes_what_the_engine_writes() -> None:
    """The script floor's rows equal an engine ingest's but for ids and times, and it
    fills every per-claim parameter (ref, entry, seq, value, terms) from the claim."""
    captured = sqlfloor.capture()
    script = scriptfloor.Script(captured)
    try:  # a block and a bit: the index holds the claims below the second block
        claims = [fresh("floor", "script", i) for i in range(INDEX_BLOCK + 3)]
        receipts = [script.ingest(claim) for claim in claims]
        conn = script.floor.conn
        rows = conn.execute(
            "SELECT c.claim_ref, c.subject, c.value, c.stream_seq, l.stream_seq, "
            "l.entry_id, l.claim_ref, l.request_ref, l.rationale, l.disposition "
            "FROM claims c JOIN ledger l USING (agent_id, claim_ref) ORDER BY c.stream_seq"
        ).fetchall()
        assert [r[0] for r in rows] == [r.claim_ref for r in receipts]
        assert [r[1] for r in rows] == [c["subject"] for c in claims]
        assert [r[2] for r in rows] == [canonical_json(c["value"]) for c in claims]
        assert [(r[3], r[4]) for r in rows] == [(i + 1, i + 1) for i in range(len(claims))]
        assert all(r[5] != r[0] and r[6] == r[7] == r[0] for r in rows)
        engine_entry = next(c for c in captured.calls if "INTO ledger" in c.sql).rows[0]
        assert {(r[8], r[9]) for r in rows} == {(engine_entry[6], engine_entry[5])}
        terms = conn.execute(
            "SELECT claim_ref, group_concat(term, ' ') FROM "
            "(SELECT claim_ref, term FROM terms ORDER BY term) GROUP BY claim_ref"
        ).fetchall()
        assert sorted(terms) == sorted(
            (r[0], " ".join(sorted(claim_terms(r[1], "note", r[2]))))
            for r in rows
            if r[3] < indexed_below(len(claims), INDEX_BLOCK)
        )
        assert positive(script.rate([fresh("floor", "rate", i) for i in range(20)]))
    finally:
        script.close()


def test_sql_floor_of_a_batch_replays_every_row_with_fresh_keys(tmp_path: Path) -> None:
    """The floor of `ingest_many` writes, per replay, as many claims, entries and claims'
    word-index rows as the engine's calls (whole blocks of the index), on a durable file,
    with no key repeated."""
    captured = sqlfloor.capture(batch=40)  # 4 calls: 160 claims, whole blocks of the index
    assert captured.ingests == 4 and [c.many for c in captured.calls].count(True) == 2 * 4
    floor = sqlfloor.Floor(captured, tmp_path / "floor.db")
    try:
        assert floor.conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert positive(floor.rate(1)) and positive(floor.rate(1))
        claims, refs, subjects = floor.conn.execute(
            "SELECT count(*), count(DISTINCT claim_ref), count(DISTINCT subject) FROM claims"
        ).fetchone()
        assert claims == refs == subjects == 2 * 160
        terms = floor.conn.execute("SELECT count(DISTINCT claim_ref) FROM terms").fetchone()[0]
        assert terms == 2 * 160  # as many claims' terms as claims, over whole blocks
        assert floor.conn.execute("PRAGMA foreign_key_check").fetchall() == []
    finally:
        floor.close()


def test_judge_sets_each_floor_beside_its_target() -> None:
    """A target measured with a floor carries the floor's value of the same measure, and
    whether the floor itself meets the bound (False: out of reach of these statements)."""
    results = _results(
        durable={"ours_over_raw": 0.5, "script_over_raw": 0.78},
        engine={"ours_over_raw": 0.02, "floor_over_raw": 0.1},
        batching={"ours_over_raw": 0.02},
        replay={"us_per_op": 300.0},
    )
    found = {t.key: (t.floor, t.reachable) for t in judge(results)}
    assert found["durable"] == (0.78, False)
    assert found["engine_ingest"] == (0.1, True)  # ≥ includes the bound
    assert found["batch"] == (None, None)  # not measured
    assert found["replay_us_per_op"] == (None, None)
    assert found["store_ingest"] == (None, None)  # no floor for this one
    assert {t.key: (t.floor, t.reachable) for t in judge(_results())}["replay_us_per_op"] == (
        120.0,
        False,  # ≤ 100: a floor of 120 µs per operation is out of reach
    )
    with_group = _results(
        concurrency={
            **_results()["concurrency"],
            "group_floor": {"1": {"over_one_writer": 3.2}, "16": {"over_one_writer": 1.4}},
        }
    )
    found = {t.key: (t.floor, t.reachable) for t in judge(with_group)}
    assert found["group_commit_one_agent"] == (3.2, True)
    assert found["group_commit_agents"] == (1.4, False)


def test_replay_floor_makes_the_replays_own_calls_and_checks_them() -> None:
    """The floor of a corpus replay records every store the replay opened and every call
    it made, replays them on fresh stores (`check`), and refuses a floor whose statements
    failed, changed rows or returned rows otherwise than the engine's did."""
    loaded = replaycost.loaded_corpus()[:6]

    def replay() -> int:
        return int(replaycost.replay_round(loaded)["operations"])

    operations = replay()  # warm, as the section does: the template exists already
    captured = replayfloor.capture(replay)
    assert captured.operations == operations > 0
    # a store per engine (a stream that reopens its store makes more than one), and the
    # template the stores are copied from, made afresh inside the capture
    assert captured.stores >= len(loaded) and len(captured.setup) == 1
    kinds = [s.kind for s in captured.steps]
    assert kinds.count("backup") == kinds.count("close") == captured.stores
    assert {s.conn for s in captured.steps if s.kind == "backup"} == captured.setup
    assert captured.statements >= operations
    floor = replayfloor.Floor(captured)
    try:
        floor.check()
        timed = floor.run()
        assert 0 < timed["stores_seconds"] < timed["seconds"]
        calls = [s for s in floor.timed if s.kind == "call"]

        def differs(step: replayfloor.Step, **changed: Any) -> None:
            """`check` refuses the capture with `changed`, and accepts it once restored."""
            saved = {name: getattr(step, name) for name in changed}
            for name, value in changed.items():
                setattr(step, name, value)
            with pytest.raises(RuntimeError, match="differs from the engine's run"):
                floor.check()
            for name, value in saved.items():
                setattr(step, name, value)
            floor.check()

        read = next(s for s in calls if s.exhausted and len(s.fetched) > 1)
        differs(read, fetched=[*read.fetched[:-1], ("not", "what", "the", "engine", "read")])
        differs(read, fetched=read.fetched[:-1])  # it read to the end: one row more is there
        differs(read, fetched=[*read.fetched, ("a", "row", "too", "many")])
        empty = next(s for s in calls if s.exhausted and not s.fetched and not s.many)
        differs(empty, sql="SELECT 1", rows=((),))  # a row where the engine's read had none
        written = next(s for s in calls if s.rowcount > 0)
        differs(written, rowcount=written.rowcount + 1)
        differs(next(s for s in calls if s.sql.startswith("INSERT")), error="IntegrityError")
    finally:
        floor.close()


def test_replay_floor_refuses_calls_it_would_not_replay() -> None:
    """A connection method the recorder does not record fails the capture (the floor would
    otherwise leave its work out), and the engine's own template comes back after it."""
    before, real = list(connections._template), sqlite3.connect

    def commits() -> int:
        conn = sqlite3.connect(":memory:", isolation_level=None)
        conn.execute("CREATE TABLE t (x)")
        conn.commit()
        return 1

    with pytest.raises(RuntimeError, match=r"Connection\.commit is not recorded"):
        replayfloor.capture(commits)
    with pytest.raises(RuntimeError, match="executescript is not recorded"):
        replayfloor.capture(lambda: sqlite3.connect(":memory:").executescript("SELECT 1") and 1)
    assert connections._template == before and sqlite3.connect is real


def test_group_floor_commits_every_callers_claim_once_in_groups(tmp_path: Path) -> None:
    """Many threads into one agent and into several: every claim stored once, stream_seq
    without gaps per agent, each caller's receipt naming its own claim, word-index rows
    for every completed block, fewer COMMITs than claims (groups formed)."""
    captured = sqlfloor.capture()
    for agents in (1, 3):
        ids = [f"g{agents}-{a:02d}" for a in range(agents)]
        floor = groupfloor.GroupFloor(captured, tmp_path / f"g{agents}", ids)
        statements: list[str] = []
        for script in floor.scripts.values():
            script.floor.conn.set_trace_callback(statements.append)
        batches = [concurrency.writer_claims(f"g{agents}-", w, 8, agents, 40) for w in range(8)]
        receipts: dict[str, str] = {}

        def writer(
            batch: list[dict[str, Any]],
            floor: groupfloor.GroupFloor = floor,
            receipts: dict[str, str] = receipts,
        ) -> Callable[[], None]:
            def work() -> None:
                for claim in batch:
                    receipts[claim["subject"]] = floor.ingest(claim).claim_ref

            return work

        # hold every leader inside its transaction until all 8 writers queue: groups form
        gate = floor.store_lock = threading.Lock()
        gate.acquire()
        opened = threading.Thread(target=lambda g=gate, f=floor: _open_when_queued(g, f, 8))
        try:
            opened.start()
            assert positive(in_threads([writer(b) for b in batches]))
            opened.join(30)
            assert floor.stored() == len(receipts) == 8 * 40
            commits = sum(s.lstrip().upper().startswith("COMMIT") for s in statements)
            assert agents <= commits < 8 * 40
            for script in floor.scripts.values():
                conn = script.floor.conn
                seqs = [r[0] for r in conn.execute("SELECT stream_seq FROM ledger ORDER BY 1")]
                assert seqs == list(range(1, len(seqs) + 1))
                pairs = conn.execute("SELECT subject, claim_ref FROM claims").fetchall()
                assert all(receipts[subject] == ref for subject, ref in pairs)
                indexed = conn.execute("SELECT count(DISTINCT claim_ref) FROM terms").fetchone()
                assert indexed[0] == indexed_below(len(seqs), INDEX_BLOCK) - 1
            # one writer: groups of one
            assert positive(concurrency.aggregate_rate(floor, f"g{agents}-", 1, agents, 10))
        finally:
            floor.close()


def _open_when_queued(gate: threading.Lock, floor: groupfloor.GroupFloor, callers: int) -> None:
    """Release `gate` once `callers` calls lead or wait in the floor's queues."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        waiting = sum(floor.groups.waiting(agent) for agent in floor.scripts)
        if waiting + len(floor.scripts) >= callers:  # each agent's leader, and its waiters
            break
        time.sleep(0.001)
    gate.release()


ANNOTATED = """--------------------------------------------------------------------------------
2,570,055,987 (100.0%)  PROGRAM TOTALS
--------------------------------------------------------------------------------
  396,147,891 (15.41%)  /build/Modules/_sqlite/cursor.c:_pysqlite_query_execute [/lib/_sqlite3.so]
   40,145,365 ( 1.56%)  /build/Modules/_sqlite/cursor.c:pysqlite_cursor_iternext [/lib/_sqlite3.so]
    9,000,000 ( 0.35%)  /build/Modules/_sqlite/cursor.c:_pysqlite_query_execute'2 [/lib/x.so]
"""


def test_instruction_counts_are_read_off_callgrind_annotate() -> None:
    """The program total and the inclusive counts of the sqlite3 driver's entry points,
    whatever the padding of the percentage (a recursive copy's line is not counted)."""
    assert instructions._total(ANNOTATED) == 2_570_055_987
    assert instructions._inside(ANNOTATED, instructions.SQLITE_FUNCTIONS) == 436_293_256
    with pytest.raises(RuntimeError):
        instructions._total("no totals here")


@pytest.mark.skipif(instructions.available() is not None, reason="valgrind is not installed")
def test_instructions_per_claim_under_callgrind(tmp_path: Path) -> None:
    row = instructions.measure("ingest", 5, tmp_path, warmup=3)
    assert row["workload"] == "ingest" and row["unit"] == "claim" and row["units"] == 5
    assert row["instructions"] > row["in_sqlite3_calls"] > 0
    assert 0 < row["sqlite3_share"] < 1
    assert "ingest" in instructions.table([row])


def test_measured_engines_use_the_products_time_ordered_ids(tmp_path: Path) -> None:
    """The benchmarks measure the id factory users get (UUIDv7, as the floors' scripts
    use), not seeded version-4 ids whose random refs cost pages as a store grows: the
    drivers of the durable, ingest_many, flat, memory and profile sections, and the
    concurrency grid."""
    bench = Bench(TINY, tmp_path / "work", tmp_path / "cache", Progress())
    refs: dict[str, list[str]] = {}
    for name, driver, folder in (
        ("durable", bench.ours, tmp_path / "durable"),
        ("nosync", bench.ours_nosync, tmp_path / "nosync"),
        ("memory", OursDriver(), None),
    ):
        handle = driver.open(folder, "ids")
        engine = driver.engines[handle]
        refs[name] = [engine.ingest(fresh("ids", name, i)).claim_ref for i in range(5)]
        driver.close(handle)
    with concurrency.open_config(bench, "sqlite", 1) as engine:
        refs["concurrency"] = [engine.ingest(fresh("ids", "grid", i)).claim_ref for i in range(5)]
    for name, made in refs.items():
        assert all(ref[14] == "7" for ref in made), (name, made)
        assert made == sorted(made), name


def test_the_run_names_the_tree_it_measured(tmp_path: Path) -> None:
    """The machine description's revision says `-dirty` when tracked files differ from
    HEAD (a run of uncommitted code), not when only untracked files exist."""
    repo = tmp_path / "repo"
    repo.mkdir()

    def git(*args: str) -> str:
        done = subprocess.run(
            ["git", "-C", str(repo), *args], capture_output=True, text=True, check=True
        )
        return done.stdout.strip()

    git("init", "-q")
    (repo / "a.txt").write_text("one\n")
    git("add", "a.txt")
    git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "-m", "one")
    head = git("rev-parse", "--short", "HEAD")
    assert machine.describe(tmp_path, None, repo)["git_commit"] == head
    (repo / "new.txt").write_text("untracked\n")
    assert machine.describe(tmp_path, None, repo)["git_commit"] == head
    (repo / "a.txt").write_text("two\n")
    assert machine.describe(tmp_path, None, repo)["git_commit"] == f"{head}-dirty"
    assert machine.describe(tmp_path, None, tmp_path / "nowhere")["git_commit"] == "unknown"
