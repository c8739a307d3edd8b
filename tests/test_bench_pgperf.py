"""The PostgreSQL section of the benchmarks (`benchmarks.pgperf`, issue 14) at tiny sizes.

One real server (the suite's `postgres_server`). The checks are structural: every
measurement ran and is positive and finite, round trips are counted; never whether a
target is met (the engine's round trips are being changed, and machines differ).
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest

from benchmarks import pgperf, report
from benchmarks.context import Bench
from benchmarks.runner import SECTIONS, clean
from benchmarks.sizes import TINY
from benchmarks.targets import judge_postgres
from benchmarks.timing import Progress

TARGET_KEYS = [
    "round_trips_ingest",
    "round_trips_query",
    "writers_over_raw",
    "one_agent_writers",
    "scale_ingest",
    "scale_query_p99_ms",
]


def positive(value: Any) -> bool:
    return isinstance(value, (int, float)) and math.isfinite(value) and value > 0


@pytest.fixture(scope="module")
def measured(
    tmp_path_factory: pytest.TempPathFactory, postgres_server: str
) -> tuple[str, dict[str, Any]]:
    root = tmp_path_factory.mktemp("pgperf")
    bench = Bench(TINY, root / "work", root / "cache", Progress(quiet=True))
    bench.pg_dsn = postgres_server
    description = pgperf.describe(postgres_server)
    label = f"pg{description['major']}"
    return label, {"server": description, **pgperf.measure(bench, label, postgres_server)}


def test_the_section_is_registered() -> None:
    assert "postgres" in SECTIONS


def test_round_trips_of_every_operation(measured: tuple[str, dict[str, Any]]) -> None:
    trips = measured[1]["round_trips"]
    assert list(trips) == list(pgperf.OPERATIONS)
    for name, op in trips.items():
        assert op["what"] == pgperf.OPERATIONS[name]
        assert len(op["each"]) == pgperf.TRACE_REPEATS
        assert all(isinstance(n, int) and n >= 1 for n in op["each"])
        assert op["round_trips"] == max(op["each"]) >= 1
        assert op["statements"] >= op["round_trips"]
        assert op["outcome"]
    assert trips["ingest_cached_line"]["outcome"] == "CommittedCheap"  # a clean succession
    # ten claims in one call are at least as many statements as one claim
    assert trips["ingest_many_10"]["statements"] >= trips["ingest_new_line"]["statements"]


def test_single_thread_latency_and_cpu(measured: tuple[str, dict[str, Any]]) -> None:
    latency = measured[1]["latency"]
    for kind in ("ingest", "query_cached"):
        found = latency[kind]
        assert found["calls"] == TINY.pg_latency_ingests
        for key in ("median_s", "p99_s", "cpu_s_per_call", "rate"):
            assert positive(found[key]), (kind, key)
        assert found["p99_s"] >= found["median_s"]


def test_writers_against_raw_inserts_and_one_writer(measured: tuple[str, dict[str, Any]]) -> None:
    writers = measured[1]["writers"]
    assert writers["writers"] == TINY.pg_writers
    assert len(writers["rounds"]) == TINY.pg_rounds
    for found in writers["rounds"]:
        assert set(found) == {"raw", "floor", "agents", "one_agent", "one_writer"}
        assert all(positive(v) for v in found.values())
    for key in ("raw_rate", "floor_rate", "agents_rate", "one_agent_rate", "one_writer_rate"):
        assert positive(writers[key])
    for key in ("agents_over_raw", "floor_over_raw", "agents_over_floor"):
        assert positive(writers[key])
    assert positive(writers["one_agent_over_one_writer"])


def test_store_at_scale(measured: tuple[str, dict[str, Any]]) -> None:
    scale = measured[1]["scale"]
    per_call = TINY.scale_claims // TINY.scale_agents
    assert scale["claims_per_call"] == per_call and scale["agents"] == TINY.scale_agents
    assert scale["build"]["claims"] == TINY.scale_claims and positive(scale["build"]["rate"])
    probes = 2 * TINY.scale_probe_calls * per_call
    assert scale["stored"] == TINY.scale_claims + probes == scale["claims_table_rows"]
    early, late = scale["early"], scale["late"]
    assert 0 < early["stored_before"] < late["stored_before"] < scale["stored"]
    for probe in (early, late):
        assert probe["calls"] == TINY.scale_probe_calls
        assert positive(probe["rate"]) and positive(probe["throughput"])
        assert positive(probe["median_call_s"]) and positive(probe["p99_call_s"])
    assert positive(scale["late_over_early"])
    for kind in ("query_first", "query_repeated"):
        found = scale[kind]
        assert found["queries"] == TINY.scale_queries
        assert sum(found["statuses"].values()) == TINY.scale_queries
        assert positive(found["p50_s"]) and positive(found["p99_s"])
    names = {r["name"] for r in scale["relations"]}
    assert {"claims", "ledger"} <= names
    assert all(r["total_bytes"] >= r["index_bytes"] >= 0 for r in scale["relations"])
    per_claim = scale["bytes_per_claim"]
    assert positive(per_claim["total"]) and positive(per_claim["indexes"])
    assert math.isclose(per_claim["total"], per_claim["tables"] + per_claim["indexes"])


def test_targets_and_report(measured: tuple[str, dict[str, Any]], tmp_path: Path) -> None:
    label, found = measured
    results = clean({"sizes": TINY.to_dict(), "postgres": {"servers": {label: found}}})
    json.dumps(results, allow_nan=False)
    targets = judge_postgres(results)
    assert [t.key for t in targets] == [f"{label}_{key}" for key in TARGET_KEYS]
    assert all(t.what.startswith(f"{label}: ") for t in targets)
    assert all(positive(t.value) and t.met is not None for t in targets)
    text = "\n".join(report._pgperf(results))
    assert "## PostgreSQL round trips, writers and scale (issue 14)" in text
    assert f"{label} trips / statements" in text and "claims" in text
    assert len(report.postgres_targets(results)) == len(TARGET_KEYS)


def test_servers_label_by_major_version(tmp_path: Path, postgres_server: str) -> None:
    bench = Bench(TINY, tmp_path / "work", tmp_path / "cache", Progress(quiet=True))
    assert pgperf.servers(bench) == ({}, {"PostgreSQL": "no PostgreSQL server"})
    bench.pg_dsn = postgres_server
    found, skipped = pgperf.servers(bench)
    given = [label for label, (_, d) in found.items() if d["source"] == "given"]
    assert given == [f"pg{pgperf.describe(postgres_server)['major']}"]
    assert next(iter(found)) == given[0]  # the run's own server first
    assert all(label == f"pg{d['major']}" for label, (_, d) in found.items())
    if "pg15" not in found:
        assert "pg15" in skipped
