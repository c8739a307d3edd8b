"""The issue's targets, judged from a results dict: reported, never asserted.

Each target is a ratio measured within one run (both sides interleaved round by round
where they are timed), except the conformance replay's µs per operation and the one-claim
query's milliseconds. PostgreSQL is measured (`concurrency.postgres_vs_raw`) but is not
one of these targets: the report shows it under a heading of its own. The PostgreSQL
section of issue 14 (`benchmarks.pgperf`) has targets of its own, `judge_postgres`, one set
per server, shown with that section.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

from benchmarks.reference import VERSION
from benchmarks.timing import ratio


@dataclass(frozen=True, slots=True)
class Target:
    """One target: the measured value, the bound, and whether it was met (None: not measured).

    `floor` is the same measure taken by the floor of this engine's work, where the run has
    one (the SQL floor: this engine's own statements with no engine; for durable ingest the
    script floor, which adds the least Python that makes their parameters; for group commit
    the script floor group committed alike, `groupfloor`; for the corpus replay the same
    sqlite3 calls on fresh stores, `replayfloor`); `reachable` says
    whether the floor itself meets the bound — False: no engine issuing these statements can.
    """

    key: str
    what: str
    value: float | None
    bound: str
    met: bool | None
    floor: float | None = None
    reachable: bool | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _get(data: Any, *path: Any) -> Any:
    for step in path:
        if data is None:
            return None
        try:
            data = data[step]
        except (KeyError, IndexError, TypeError):
            return None
    return data


def _num(value: Any) -> float:
    return float(value) if isinstance(value, (int, float)) else math.nan


#: A target with no floor measured for it.
NO_FLOOR = math.nan
Spec = tuple[str, str, float, str, float, float]  # key, what, value, op, bound, floor


def _meets(value: float, op: str, bound: float) -> bool:
    return value >= bound if op == "≥" else value <= bound if op == "≤" else value < bound


def _target(
    key: str, what: str, value: float, op: str, bound: float, floor: float = math.nan
) -> Target:
    floor_value, reachable = (
        (floor, _meets(floor, op, bound)) if math.isfinite(floor) else (None, None)
    )
    if not math.isfinite(value):
        return Target(key, what, None, f"{op} {bound:g}", None, floor_value, reachable)
    return Target(
        key, what, value, f"{op} {bound:g}", _meets(value, op, bound), floor_value, reachable
    )


def point(results: dict[str, Any], axis: str, engine: str, index: int) -> dict[str, Any] | None:
    found = _get(results, "flat", axis, "engines", engine, index)
    return found if isinstance(found, dict) else None


def flat_ratio(results: dict[str, Any], axis: str, engine: str, *field: str) -> float:
    """Value at the largest size of an axis over the value at the smallest."""
    first, last = point(results, axis, engine, 0), point(results, axis, engine, -1)
    return ratio(_num(_get(last, *field)), _num(_get(first, *field)))


def concurrency_point(
    results: dict[str, Any], config: str, agents: int, writers: int
) -> dict[str, Any] | None:
    """The concurrency grid's point of `config` with that many agents and writers."""
    for found in _get(results, "concurrency", "configs", config) or []:
        if isinstance(found, dict) and (found.get("agents"), found.get("writers")) == (
            agents,
            writers,
        ):
            return found
    return None


def reference_build_rss(results: dict[str, Any]) -> float:
    """The reference runner's peak RSS (KiB) after building the flat section's largest store,
    when that store holds as many claims as the memory section built (NaN otherwise)."""
    last = point(results, "store", "reference", -1)
    claims = _get(results, "memory", "claims")
    if last is None or claims is None or _get(last, "size") != claims:
        return math.nan
    return _num(_get(last, "builder", "builder_peak_rss_kib"))


def judge(results: dict[str, Any]) -> list[Target]:
    """Every target of the issue, judged on `results` (sizes are the run's own)."""
    sizes = results.get("sizes", {})
    big, small = max(sizes.get("store_sizes", [0])), min(sizes.get("store_sizes", [0]))
    long, short = max(sizes.get("line_lengths", [0])), min(sizes.get("line_lengths", [0]))
    batch = int(sizes.get("batch_size", 0))
    writers, agents = max(sizes.get("threads", [0])), sizes.get("wide_agents", 0)
    cold_big = _num(_get(point(results, "store", "ours", -1), "query_cold", "median_s"))
    built = int(sizes.get("memory_claims", 0))
    reference = results.get("reference") or VERSION

    def scaling(layout: int) -> float:
        return _num(_get(concurrency_point(results, "sqlite", layout, writers), "over_one_writer"))

    def group_floor(layout: int) -> float:  # benchmarks/groupfloor.py
        return _num(_get(results, "concurrency", "group_floor", str(layout), "over_one_writer"))

    specs: list[Spec] = [
        ("durable", "durable single ingest ÷ raw one-row commits (SQLite WAL+FULL, same disk)",
         _num(_get(results, "durable", "ours_over_raw")), "≥", 0.8,
         _num(_get(results, "durable", "script_over_raw"))),
        ("engine_ingest", "engine-only single ingest (in memory) ÷ raw in-memory one-row commits",
         _num(_get(results, "engine", "ours_over_raw")), "≥", 0.1,
         _num(_get(results, "engine", "floor_over_raw"))),
        ("batch", f"ingest_many of {batch:,} claims per call ÷ raw {batch:,}-row transactions "
         "(durable, same disk)",
         _num(_get(results, "batching", "ours_over_raw")), "≥", 0.1,
         _num(_get(results, "batching", "floor_over_raw"))),
        ("group_commit_one_agent", f"{writers} threads into one agent ÷ 1 thread (durable)",
         scaling(1), "≥", 3, group_floor(1)),
        ("group_commit_agents", f"{writers} threads into {agents} agents of one store ÷ 1 thread "
         "(durable)",
         scaling(agents), "≥", 3, group_floor(agents)),
        ("replay_us_per_op", "conformance corpus replay on sqlite-mem, µs per operation",
         _num(_get(results, "replay", "us_per_op")), "≤", 100,
         _num(_get(results, "replay", "floor", "us_per_op"))),
        ("store_ingest", f"ingest rate at {big:,} stored claims ÷ at {small:,} (durable)",
         _num(_get(point(results, "store", "ours", -1), "ingest_over_smallest")), "≥", 0.8,
         NO_FLOOR),
        ("line_query", f"query latency, {long:,}-claim line ÷ {short:,}-claim line (repeated)",
         flat_ratio(results, "line", "ours", "query_warm", "median_s"), "≤", 3, NO_FLOOR),
        ("one_claim_query_ms",
         f"query of a one-claim line in a {big:,}-claim store, ms (first read of the line)",
         cold_big * 1000, "<", 1, NO_FLOOR),
        ("build_rss", f"peak RSS building a {built:,}-claim store ÷ the {reference} wheel's",
         ratio(_num(_get(results, "memory", "ours_build", "peak_kib")),
               reference_build_rss(results)), "≤", 2, NO_FLOOR),
    ]  # fmt: skip
    return [_target(*spec) for spec in specs]


def _worst(found: dict[str, Any], *operations: str) -> float:
    """The most round trips of the named operations (NaN when one is missing)."""
    counts = [_num(_get(found, "round_trips", op, "round_trips")) for op in operations]
    return max(counts) if counts and all(math.isfinite(c) for c in counts) else math.nan


def judge_postgres(results: dict[str, Any]) -> list[Target]:
    """Issue 14's PostgreSQL targets, for each server of `results["postgres"]` (pg15, pg18)."""
    sizes = results.get("sizes", {})
    targets = []
    for label, found in (_get(results, "postgres", "servers") or {}).items():
        writers = _get(found, "writers", "writers") or sizes.get("pg_writers", 0)
        scale = found.get("scale") or {}
        early, late, stored = (
            f"{n:,}" if isinstance(n, int) else "?"
            for n in (
                _get(scale, "early", "stored_before"),
                _get(scale, "late", "stored_before"),
                scale.get("stored"),
            )
        )
        specs: list[Spec] = [
            ("round_trips_ingest", "round trips per ingest (new line; cached line), the more",
             _worst(found, "ingest_new_line", "ingest_cached_line"), "≤", 3, NO_FLOOR),
            ("round_trips_query", "round trips per query_memory (cached line; line or agent "
             "another engine wrote), the most",
             _worst(found, "query_cached_line", "query_unread_line", "query_unread_agent"),
             "≤", 1, NO_FLOOR),
            ("writers_over_raw", f"{writers} writer threads into {writers} agents ÷ raw one-row "
             f"INSERTs from {writers} connections",
             _num(_get(found, "writers", "agents_over_raw")), "≥", 0.5,
             _num(_get(found, "writers", "floor_over_raw"))),
            ("one_agent_writers", f"{writers} writer threads into one agent ÷ 1 thread",
             _num(_get(found, "writers", "one_agent_over_one_writer")), "≥", 1, NO_FLOOR),
            ("scale_ingest", f"ingest_many rate at {late} stored claims ÷ at {early}",
             _num(scale.get("late_over_early")), "≥", 0.8, NO_FLOOR),
            ("scale_query_p99_ms", f"one-line query p99 in a {stored}-claim store, ms "
             "(first read)",
             _num(_get(scale, "query_first", "p99_s")) * 1000, "≤", 2, NO_FLOOR),
        ]  # fmt: skip
        for key, what, value, op, bound, floor in specs:
            targets.append(_target(f"{label}_{key}", f"{label}: {what}", value, op, bound, floor))
    return targets
