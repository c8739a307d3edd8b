"""The issue's targets, judged from a results dict: reported, never asserted."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

from benchmarks.timing import ratio


@dataclass(frozen=True, slots=True)
class Target:
    """One target: the measured value, the bound, and whether it was met (None: not measured)."""

    key: str
    what: str
    value: float | None
    bound: str
    met: bool | None

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


def _target(key: str, what: str, value: float, op: str, bound: float) -> Target:
    if not math.isfinite(value):
        return Target(key, what, None, f"{op} {bound:g}", None)
    met = value >= bound if op == "≥" else value <= bound if op == "≤" else value < bound
    return Target(key, what, value, f"{op} {bound:g}", met)


def point(results: dict[str, Any], axis: str, engine: str, index: int) -> dict[str, Any] | None:
    found = _get(results, "flat", axis, "engines", engine, index)
    return found if isinstance(found, dict) else None


def flat_ratio(results: dict[str, Any], axis: str, engine: str, *field: str) -> float:
    """Value at the largest size of an axis over the value at the smallest."""
    first, last = point(results, axis, engine, 0), point(results, axis, engine, -1)
    return ratio(_num(_get(last, *field)), _num(_get(first, *field)))


def judge(results: dict[str, Any]) -> list[Target]:
    """Every target of the issue, judged on `results` (sizes are the run's own)."""
    sizes = results.get("sizes", {})
    big, small = max(sizes.get("store_sizes", [0])), min(sizes.get("store_sizes", [0]))
    long, short = max(sizes.get("line_lengths", [0])), min(sizes.get("line_lengths", [0]))
    writers, agents = sizes.get("raw_pg_connections", 0), sizes.get("wide_agents", 0)
    cold_big = _num(_get(point(results, "store", "ours", -1), "query_cold", "median_s"))
    specs = [
        ("durable", "durable ingest ÷ raw one-row commit rate (SQLite, WAL+FULL)",
         _num(_get(results, "durable", "ours_over_raw")), "≥", 0.8),
        ("store_ingest", f"ingest rate at {big:,} stored claims ÷ at {small:,} (durable)",
         flat_ratio(results, "store", "ours", "ingest_rate"), "≥", 0.8),
        ("store_ingest_nosync",
         f"ingest rate at {big:,} ÷ at {small:,} (synchronous=OFF: engine cost only)",
         flat_ratio(results, "store", "ours_nosync", "ingest_rate"), "≥", 0.8),
        ("line_query", f"query latency, {long:,}-claim line ÷ {short:,}-claim line (repeated)",
         flat_ratio(results, "line", "ours", "query_warm", "median_s"), "≤", 3),
        ("one_claim_query_ms",
         f"query of a one-claim line in a {big:,}-claim store, ms (first read of the line)",
         cold_big * 1000, "<", 1),
        ("batch", "ingest_many of 1,000 claims per call, claims/s (SQLite, durable)",
         _num(_get(results, "batching", "engines", "ours", "rate")), "≥", 30_000),
        ("postgres", f"PostgreSQL, {writers} writers into {agents} agents ÷ raw autocommit "
         f"INSERT, {writers} connections",
         _num(_get(results, "concurrency", "postgres_vs_raw", "ours_over_raw")), "≥", 0.5),
    ]  # fmt: skip
    return [_target(*spec) for spec in specs]
