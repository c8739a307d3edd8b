"""(3) Batching: `ingest_many` of `batch_size` claims per call, in claims per second.

Each call is one transaction (one fsync) on a durable SQLite store; claims go to new
lines. The reference has no batch call, so its number is the same claims through
`ingest_claim` one by one: the ratio is what a caller gains by switching.
"""

from __future__ import annotations

from typing import Any

from benchmarks.context import Bench
from benchmarks.drivers import Driver
from benchmarks.streams import fresh
from benchmarks.timing import finite, median


def run(bench: Bench) -> dict[str, Any]:
    sizes = bench.sizes
    engines: list[tuple[str, Driver, int]] = [
        ("ours", bench.ours, sizes.batch_rounds),
        ("ours_nosync", bench.ours_nosync, sizes.batch_rounds),
    ]
    if bench.reference is not None:
        engines.append(("reference", bench.reference, sizes.reference_batch_rounds))
    results: dict[str, Any] = {"batch_size": sizes.batch_size, "engines": {}}
    for label, driver, rounds in engines:
        handle = driver.open(bench.scratch(f"batch-{label}"), "batch")
        rates: list[float] = []
        dispositions: dict[str, int] = {}
        try:
            for number in range(rounds):
                bench.progress.say(f"batching: {label} call {number + 1}/{rounds}")
                first = number * sizes.batch_size
                claims = [fresh("batch", "b", first + i) for i in range(sizes.batch_size)]
                done = driver.ingest_batch(handle, claims)
                rates.append(done.rate)
                for key, count in done.dispositions.items():
                    dispositions[key] = dispositions.get(key, 0) + count
        finally:
            driver.close(handle)
        results["engines"][label] = {
            "rate": finite(median(rates)),
            "round_rates": rates,
            "native_batch": driver.batch_native,
            "dispositions": dispositions,
        }
    return results
