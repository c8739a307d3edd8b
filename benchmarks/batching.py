"""(3) Batching: `ingest_many` of `batch_size` claims per call, against raw batch inserts.

Each call is one transaction (one fsync) on a durable store (`open_directory`,
synchronous=FULL); claims go to new lines. Per round, in rotating order on the same
disk: raw SQLite inserting `batch_size` rows in one transaction (one `executemany`, WAL,
synchronous=FULL), this engine durable, this engine with synchronous=OFF (lab only) and,
in the first `reference_batch_rounds` rounds, the reference. The reference has no batch
call, so its number is the same claims through `ingest_claim` one by one: the ratio is
what a caller gains by switching. Beside them, the SQL floor (`sqlfloor`): the sqlite3
calls of one `ingest_many` of `batch_size` claims on new lines, captured from an in-memory
engine and replayed with fresh keys (parameters made beforehand) on a durable file with
the engine's schema — what any engine issuing those statements could reach. Ratios to raw
are per round, then the median.
"""

from __future__ import annotations

from typing import Any

from benchmarks.context import Bench
from benchmarks.drivers import Driver
from benchmarks.durable import RawSQLite, per_round, rotated
from benchmarks.sqlfloor import Floor, capture
from benchmarks.streams import fresh
from benchmarks.timing import finite, median, optional

RAW = "raw"
FLOOR = "floor"


def run(bench: Bench) -> dict[str, Any]:
    sizes = bench.sizes
    engines: list[tuple[str, Driver, int]] = [
        ("ours", bench.ours, sizes.batch_rounds),
        ("ours_nosync", bench.ours_nosync, sizes.batch_rounds),
    ]
    if bench.reference is not None:
        engines.append(("reference", bench.reference, sizes.reference_batch_rounds))
    path = bench.scratch("batch-floor") / "floor.db"
    floor, floor_error = optional(lambda: Floor(capture(batch=sizes.batch_size), path))
    raw = RawSQLite(bench.scratch("batch-raw") / "raw.db")
    handles = {label: d.open(bench.scratch(f"batch-{label}"), "batch") for label, d, _ in engines}
    dispositions: dict[str, dict[str, int]] = {label: {} for label, _, _ in engines}
    rounds: list[dict[str, float]] = []
    try:
        for number in range(sizes.batch_rounds):
            bench.progress.say(f"batching: round {number + 1}/{sizes.batch_rounds}")
            first = number * sizes.batch_size
            claims = [fresh("batch", "b", first + i) for i in range(sizes.batch_size)]
            floors = [FLOOR] if floor is not None else []
            playing = [RAW, *floors, *(label for label, _, n in engines if number < n)]
            drivers = {label: driver for label, driver, _ in engines}
            measured: dict[str, float] = {}
            for label in rotated(playing, number):
                if label == RAW:
                    measured[RAW] = raw.batch_rate(sizes.batch_size)
                    continue
                if label == FLOOR and floor is not None:  # one replay: one call's claims
                    measured[FLOOR] = floor.rate(1) * sizes.batch_size
                    continue
                done = drivers[label].ingest_batch(handles[label], claims)
                measured[label] = done.rate
                for key, count in done.dispositions.items():
                    dispositions[label][key] = dispositions[label].get(key, 0) + count
            rounds.append(measured)
    finally:
        raw.close()
        if floor is not None:
            floor.close()
        for label, driver, _ in engines:
            driver.close(handles[label])
    results: dict[str, Any] = {"batch_size": sizes.batch_size, "rounds": rounds, "engines": {}}
    for label, driver, _ in engines:
        rates = [r[label] for r in rounds if label in r]
        results["engines"][label] = {
            "rate": finite(median(rates)),
            "round_rates": rates,
            "native_batch": driver.batch_native,
            "dispositions": dispositions[label],
        }
    raw_rates = [r[RAW] for r in rounds]
    results[RAW] = {"rate": finite(median(raw_rates)), "round_rates": raw_rates}
    floor_rates = [r[FLOOR] for r in rounds if FLOOR in r]
    results[FLOOR] = {"rate": finite(median(floor_rates)), "round_rates": floor_rates}
    results["floor_over_raw"] = per_round(rounds, FLOOR, RAW)
    results["ours_over_floor"] = per_round(rounds, "ours", FLOOR)
    if floor_error:
        results["floor_error"] = floor_error
    results["ours_over_raw"] = per_round(rounds, "ours", RAW)
    results["ours_nosync_over_raw"] = per_round(rounds, "ours_nosync", RAW)
    return results
