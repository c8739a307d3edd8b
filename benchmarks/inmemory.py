"""Engine-only single ingest, in memory, against raw SQLite, the SQL floor and the script floor.

No disk: `mempill.open_default_in_memory()` (product defaults: system clock, time-ordered ids),
one claim per `ingest` call, on new lines. Per round, in rotating order: the raw rate
of one-row `BEGIN IMMEDIATE; INSERT; COMMIT` transactions on an in-memory database (the
same row as the durable benchmark's), this engine, and the SQL floor (`sqlfloor`: the
engine's own statements for one ingest, replayed with fresh keys on a fresh in-memory
database with the engine's schema), and the script floor (`scriptfloor`: those statements
with their parameters made per claim by the least Python that can make them — ids, time,
canonical JSON, word-index terms, a receipt — and no rule). Ratios are taken per round,
then the median over rounds, so a change in the machine's speed during the run affects
both sides alike.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from typing import Any

import mempill
from benchmarks.context import Bench
from benchmarks.durable import RawSQLite, median_rates, per_round, rotated
from benchmarks.scriptfloor import Script
from benchmarks.sqlfloor import Capture, Floor, capture
from benchmarks.streams import fresh
from benchmarks.timing import failure

AGENT = "engine"
WARMUP = 50


def _floor(bench: Bench, results: dict[str, Any]) -> tuple[Floor, Capture] | None:
    """The SQL floor of this engine's current statements; None (and why) if it fails."""
    try:
        captured = capture()
        floor = Floor(captured)
        floor.rate(WARMUP)  # proves the replay works before anything is timed
    except Exception as e:  # the floor is a measurement of its own: the rest still runs
        results["floor_error"] = failure(e)
        bench.progress.say(f"SQL floor unavailable: {e}")
        return None
    results["floor_statements"] = captured.describe()
    results["floor_ingests"] = captured.ingests
    results["floor_disposition"] = captured.disposition
    return floor, captured


def _script(bench: Bench, results: dict[str, Any], captured: Capture) -> Script | None:
    """The script floor of the captured statements; None (and why) if it fails."""
    try:
        script = Script(captured)
        script.rate([fresh(AGENT, "script-warmup", i) for i in range(WARMUP)])
    except Exception as e:  # a measurement of its own, like the SQL floor
        results["script_error"] = failure(e)
        bench.progress.say(f"script floor unavailable: {e}")
        return None
    return script


def run(bench: Bench) -> dict[str, Any]:
    sizes = bench.sizes
    count = sizes.engine_claims
    results: dict[str, Any] = {"claims_per_round": count}
    raw = RawSQLite(None)
    engine = mempill.open_default_in_memory()
    found = _floor(bench, results)
    floor = None if found is None else found[0]
    script = None if found is None else _script(bench, results, found[1])
    dispositions: Counter[str] = Counter()
    sent = 0

    def ours() -> float:
        nonlocal sent
        claims = [fresh(AGENT, "m", sent + i) for i in range(count)]
        sent += count
        ingest = engine.ingest
        started = time.perf_counter()
        for claim in claims:
            dispositions[ingest(claim).disposition.value] += 1
        return count / (time.perf_counter() - started)

    measures: dict[str, Callable[[], float]] = {"raw": lambda: raw.rate(count), "ours": ours}
    if floor is not None:
        measures["floor"] = lambda: floor.rate(count)
    scripted = 0

    def script_rate() -> float:
        nonlocal scripted
        assert script is not None
        claims = [fresh(AGENT, "s", scripted + i) for i in range(count)]
        scripted += count  # each claim on a new line, as the engine's
        return script.rate(claims)

    if script is not None:
        measures["script"] = script_rate
    rounds: list[dict[str, float]] = []
    try:
        for claim in (fresh(AGENT, "warmup", i) for i in range(WARMUP)):
            engine.ingest(claim)  # the agent's database is created by the first one
        raw.rate(WARMUP)
        for number in range(sizes.engine_rounds):
            bench.progress.say(f"engine-only ingest: round {number + 1}/{sizes.engine_rounds}")
            rounds.append({name: measures[name]() for name in rotated(list(measures), number)})
    finally:
        raw.close()
        engine.close()
        if floor is not None:
            floor.close()
        if script is not None:
            script.close()
    rates = median_rates(rounds)
    results.update(
        {
            "rounds": rounds,
            "rate": rates,
            "us_per_claim": {k: None if v is None else 1e6 / v for k, v in rates.items()},
            "dispositions": dict(dispositions),
            "ours_over_raw": per_round(rounds, "ours", "raw"),
            "floor_over_raw": per_round(rounds, "floor", "raw"),
            "ours_over_floor": per_round(rounds, "ours", "floor"),
            "script_over_raw": per_round(rounds, "script", "raw"),
            "ours_over_script": per_round(rounds, "ours", "script"),
        }
    )
    return results
