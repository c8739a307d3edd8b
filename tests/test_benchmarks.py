"""Smoke tests of the benchmark harness (`python -m benchmarks`) at tiny sizes.

They check that every measurement runs and writes well-formed results, never how fast
anything is: CI machines differ, and the targets are judged by people from the report.
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path
from typing import Any

import pytest

from benchmarks import report, tables
from benchmarks.reference import ReferenceDriver
from benchmarks.runner import SECTIONS, run
from benchmarks.sizes import TINY
from benchmarks.streams import fresh, line_query, succession, to_reference
from benchmarks.timing import Progress, median, percentile


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
    for heading in ("## Machine", "## Targets", "## Summary", "## Concurrency", "query plans"):
        assert heading in text
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
    batch = results["batching"]["engines"]["ours"]
    assert positive(batch["rate"]) and batch["native_batch"]
    assert batch["dispositions"] == {"CommittedCheap": TINY.batch_size * TINY.batch_rounds}


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
                assert positive(p["ingest_rate"])
                assert positive(p["query_cold"]["median_s"]) and positive(p["query_warm"]["p95_s"])
                assert set(p["dispositions"]) == {"CommittedCheap"}
                assert set(p["query_cold"]["statuses"]) == set(p["query_warm"]["statuses"])
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
        assert all(positive(p["rate"]) for p in points)
    assert positive(concurrency["postgres_vs_raw"]["ours_over_raw"])


def test_targets_profiles_memory_and_plans(tiny: tuple[Path, dict[str, Any]]) -> None:
    results = tiny[1]
    targets = results["targets"]
    assert len(targets) == 7
    assert all(t["value"] is not None and isinstance(t["met"], bool) for t in targets)
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
    # title, blank, the targets' header and rule, one row per target ending in its verdict
    # (all are measured at TINY), blank, the summary's header and rule, one row per row
    targets = results["targets"]
    assert lines[2].split() == list(report.TARGETS)
    expected = [(t["what"], "met" if t["met"] else "NOT MET") for t in targets]
    shown = lines[4 : 4 + len(targets)]
    assert [
        (row[: len(w)], row[len(row) - len(v) :])
        for row, (w, v) in zip(shown, expected, strict=True)
    ] == expected
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
