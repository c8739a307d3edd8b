"""Rows of the summary tables, built from a results dict (shared by console and markdown)."""

from __future__ import annotations

import math
from typing import Any

from benchmarks.targets import _get, _num, point, reference_build_rss
from benchmarks.timing import ratio

Row = list[str]
DASH = "—"


def rate(value: Any) -> str:
    number = _num(value)
    return DASH if math.isnan(number) else f"{number:,.0f}"


def ms(seconds: Any) -> str:
    number = _num(seconds)
    return DASH if math.isnan(number) else f"{number * 1000:.3f}"


def times(value: float) -> str:
    return DASH if math.isnan(value) else f"{value:.2f}"


def mib(kib: Any) -> str:
    number = _num(kib)
    return DASH if math.isnan(number) else f"{number / 1024:,.0f}"


def _trio(label: str, ours: Any, ref: Any, fmt: Any) -> Row:
    return [label, fmt(ours), fmt(ref), times(ratio(_num(ours), _num(ref)))]


def _one(label: str, value: Any, fmt: Any) -> Row:
    """A row measured for this engine only."""
    return [label, fmt(value), DASH, DASH]


def us(value: Any) -> str:
    number = _num(value)
    return DASH if math.isnan(number) else f"{number:,.1f}"


def summary(results: dict[str, Any]) -> list[Row]:
    """measurement | ours | reference | ours ÷ reference."""
    return [
        *_durable_rows(results),
        *_engine_rows(results),
        *_store_rows(results),
        *_line_rows(results),
        *_batch_rows(results),
        *_replay_rows(results),
        *_memory_rows(results),
    ]


def _engine_rows(results: dict[str, Any]) -> list[Row]:
    engine = results.get("engine") or {}
    statements = len(engine.get("floor_statements") or [])
    ingests = engine.get("floor_ingests") or 1
    per = "per ingest" if ingests == 1 else f"per {ingests} ingests"
    return [
        _one("raw in-memory one-row commits/s", _get(engine, "rate", "raw"), rate),
        _one("engine-only ingest (in memory), claims/s", _get(engine, "rate", "ours"), rate),
        _one("  same, µs per claim", _get(engine, "us_per_claim", "ours"), us),
        _one(f"SQL floor ({statements} sqlite3 calls {per}), µs per claim",
             _get(engine, "us_per_claim", "floor"), us),
        _one("engine-only ÷ raw in memory", engine.get("ours_over_raw"), _ratio),
        _one("SQL floor ÷ raw in memory", engine.get("floor_over_raw"), _ratio),
        _one("engine-only ÷ SQL floor", engine.get("ours_over_floor"), _ratio),
        _one("script floor (the calls + the least Python per claim), µs per claim",
             _get(engine, "us_per_claim", "script"), us),
        _one("script floor ÷ raw in memory", engine.get("script_over_raw"), _ratio),
        _one("engine-only ÷ script floor", engine.get("ours_over_script"), _ratio),
    ]  # fmt: skip


def _batch_rows(results: dict[str, Any]) -> list[Row]:
    batching = results.get("batching") or {}
    engines = batching.get("engines") or {}
    size = batching.get("batch_size") or 0
    return [
        _one(f"raw {size:,}-row transactions, rows/s (WAL+FULL)",
             _get(batching, "raw", "rate"), rate),
        _trio(f"ingest_many({size:,}), claims/s (reference: loop)",
              _get(engines, "ours", "rate"), _get(engines, "reference", "rate"), rate),
        _one(f"ingest_many({size:,}), synchronous=OFF", _get(engines, "ours_nosync", "rate"),
             rate),
        _one(f"ingest_many({size:,}) ÷ raw", batching.get("ours_over_raw"), _ratio),
        _one(f"SQL floor of ingest_many({size:,}), claims/s (durable)",
             _get(batching, "floor", "rate"), rate),
        _one("SQL floor ÷ raw (batches)", batching.get("floor_over_raw"), _ratio),
        _one(f"ingest_many({size:,}) ÷ its SQL floor", batching.get("ours_over_floor"), _ratio),
    ]  # fmt: skip


def _replay_rows(results: dict[str, Any]) -> list[Row]:
    replay = results.get("replay") or {}
    return [
        _one(f"conformance replay ({replay.get('operations', 0):,} ops), µs per operation",
             replay.get("us_per_op"), us),
        _one("  engine calls only, µs per operation", replay.get("engine_us_per_op"), us),
    ]  # fmt: skip


def _ratio(value: Any) -> str:
    return times(_num(value))


def _durable_rows(results: dict[str, Any]) -> list[Row]:
    durable = results.get("durable") or {}
    return [
        ["raw one-row commits/s (SQLite WAL+FULL)", rate(_get(durable, "rate", "raw")), DASH,
         DASH],
        _trio("durable ingest, claims/s (1 per txn)", _get(durable, "rate", "ours"),
              _get(durable, "rate", "reference"), rate),
        ["durable ingest ÷ raw", times(_num(durable.get("ours_over_raw"))),
         times(_num(durable.get("reference_over_raw"))), DASH],
        _one("script floor, durable (the calls + the least Python), claims/s",
             _get(durable, "rate", "script"), rate),
        _one("script floor ÷ raw (durable)", durable.get("script_over_raw"), _ratio),
        _one("durable ingest ÷ script floor", durable.get("ours_over_script"), _ratio),
    ]  # fmt: skip


def _store_rows(results: dict[str, Any]) -> list[Row]:
    rows = []
    for index, size in enumerate(_get(results, "flat", "store", "sizes") or []):
        ours, ref = (
            point(results, "store", "ours", index),
            point(results, "store", "reference", index),
        )
        nosync = point(results, "store", "ours_nosync", index)
        rows.append(
            _trio(
                f"ingest at {size:,} stored, claims/s",
                _get(ours, "ingest_rate"),
                _get(ref, "ingest_rate"),
                rate,
            )
        )
        rows.append(_trio("  same, synchronous=OFF", _get(nosync, "ingest_rate"), None, rate))
        rows.append(
            _trio(
                "  same, each claim with its own claim_ref",
                _get(ours, "ingest_rate_with_claim_ref"),
                None,
                rate,
            )
        )
        for kind, name in (("query_cold", "first read"), ("query_warm", "repeated")):
            rows.append(
                _trio(
                    f"query 1-claim line at {size:,} stored, {name}, ms",
                    _get(ours, kind, "median_s"),
                    _get(ref, kind, "median_s"),
                    ms,
                )
            )
    return rows


def _line_rows(results: dict[str, Any]) -> list[Row]:
    rows = []
    for index, length in enumerate(_get(results, "flat", "line", "lengths") or []):
        ours, ref = (
            point(results, "line", "ours", index),
            point(results, "line", "reference", index),
        )
        nosync = point(results, "line", "ours_nosync", index)
        for kind, name in (("query_cold", "first read"), ("query_warm", "repeated")):
            rows.append(
                _trio(
                    f"query {length:,}-claim line, {name}, ms",
                    _get(ours, kind, "median_s"),
                    _get(ref, kind, "median_s"),
                    ms,
                )
            )
        rows.append(
            _trio(
                f"ingest onto {length:,}-claim line, claims/s",
                _get(ours, "ingest_rate"),
                _get(ref, "ingest_rate"),
                rate,
            )
        )
        rows.append(_trio("  same, synchronous=OFF", _get(nosync, "ingest_rate"), None, rate))
    return rows


def _memory_rows(results: dict[str, Any]) -> list[Row]:
    memory = results.get("memory") or {}
    claims = memory.get("claims", 0)
    return [
        _trio(
            f"peak RSS building a {claims:,}-claim store, MiB",
            _get(memory, "ours_build", "peak_kib"),
            reference_build_rss(results),
            mib,
        ),
        _trio(
            "peak RSS querying it from a fresh process, MiB",
            _get(memory, "ours_query", "peak_kib"),
            _get(memory, "reference_query", "peak_kib"),
            mib,
        ),
    ]


def concurrency(results: dict[str, Any]) -> list[Row]:
    """config | agents | rate at each writer count | most writers ÷ one writer."""
    rows = []
    for config, points in (_get(results, "concurrency", "configs") or {}).items():
        for agents in sorted({p["agents"] for p in points}):
            layout = sorted(
                (p for p in points if p["agents"] == agents), key=lambda p: p["writers"]
            )
            cells = [rate(p["rate"]) for p in layout]
            scaling = times(_num(layout[-1].get("over_one_writer"))) if layout else DASH
            rows.append([config, str(agents), *cells, scaling])
    return rows


def targets(results: dict[str, Any]) -> list[Row]:
    rows = []
    for t in results.get("targets", []):
        value = t["value"]
        shown = DASH if value is None else f"{value:,.3f}" if abs(value) < 100 else f"{value:,.0f}"
        met = "not measured" if t["met"] is None else "met" if t["met"] else "NOT MET"
        floor = t.get("floor")
        if floor is None:
            beside = DASH
        else:
            beside = f"{floor:,.3f}" + ("" if t.get("reachable") else " (out of reach)")
        rows.append([t["what"], shown, t["bound"], met, beside])
    return rows
