"""(2) Flat cost: ingest rate and query latency against store size and line length.

Store axis: one agent's store is filled with one-claim lines up to each size; at each
checkpoint, per round, the engine is reopened (so this engine's line cache is empty),
`flat_queries` filler lines are queried once (`cold`: the first read of the line) and
again (`warm`), and the store is copied as it is. Then each round ingests `flat_ingests`
claims on new lines, one per call, into the copy of every size in turn (who goes first
rotates): the disk drifts over a run, and measuring the sizes one after another would
put that drift into their ratio (`ingest_over_smallest`: the median of the per-round
ratios to the smallest size).

Line axis: a store holds `lines_for(L)` lines of L succession claims each; per round
the engine is reopened, each line is queried once (`cold`) and `flat_queries` times
(`warm`), all before the measured ingests, which then append to the lines round-robin
(no line grows by more than 10%).

Engines: this one durable (`ours`), this one with synchronous=OFF (`ours_nosync`, lab
only: the engine's own cost without the fsync) and the reference.
"""

from __future__ import annotations

import os
import random
import shutil
import uuid
from pathlib import Path
from typing import Any

from benchmarks.context import Bench
from benchmarks.drivers import Driver, Queried
from benchmarks.durable import rotated
from benchmarks.growth import GrowingStore
from benchmarks.streams import filler_query, fillers, fresh, line_query, succession
from benchmarks.timing import finite, median, percentile, ratio


def engines(bench: Bench) -> list[tuple[str, Driver]]:
    found: list[tuple[str, Driver]] = [("ours", bench.ours), ("ours_nosync", bench.ours_nosync)]
    if bench.reference is not None:
        found.append(("reference", bench.reference))
    return found


def run(bench: Bench) -> dict[str, Any]:
    return {"store": store_axis(bench), "line": line_axis(bench)}


def latency_summary(rounds: list[Queried]) -> dict[str, Any]:
    """Median of the per-round medians, pooled p95 (seconds), and the round medians."""
    medians = [median(r.latencies) for r in rounds if r.latencies]
    pooled = [x for r in rounds for x in r.latencies]
    statuses: dict[str, int] = {}
    for r in rounds:
        for status, count in r.statuses.items():
            statuses[status] = statuses.get(status, 0) + count
    return {
        "median_s": finite(median(medians)),
        "p95_s": finite(percentile(pooled, 95)),
        "round_medians_s": medians,
        "samples": len(pooled),
        "statuses": statuses,
    }


def store_axis(bench: Bench) -> dict[str, Any]:
    results: dict[str, Any] = {"sizes": list(bench.sizes.store_sizes), "engines": {}}
    for label, driver in engines(bench):
        directory = bench.scratch(f"store-{label}")
        store = GrowingStore(bench, driver, directory, "store", "store", label)
        points: list[dict[str, Any]] = []
        copies: list[Path] = []
        try:
            try:
                for size in bench.sizes.store_sizes:
                    bench.progress.say(f"flat cost, store size {size:,}: {label}")
                    store.reach(size, lambda a, b: fillers("store", a, b))
                    copy = bench.work / f"store-{label}-at-{size}"
                    points.append(_store_point(bench, driver, store, size, copy))
                    copies.append(copy)
            finally:
                store.close()
            bench.progress.say(f"flat cost, ingests at every store size in turn: {label}")
            _interleaved_ingests(bench, driver, copies, points)
        finally:
            for copy in copies:
                shutil.rmtree(copy, ignore_errors=True)
        results["engines"][label] = points
    return results


def _store_point(
    bench: Bench, driver: Driver, store: GrowingStore, size: int, copy: Path
) -> dict[str, Any]:
    """The queries at `size`, then a copy of the store holding exactly `size` claims, then
    this engine's claim_ref ingests (into the growing store, not the copy)."""
    sizes = bench.sizes
    rng = random.Random(size)
    cold: list[Queried] = []
    warm: list[Queried] = []
    for _ in range(sizes.flat_rounds):
        store.reopen()
        picked = rng.sample(range(store.filled), min(sizes.flat_queries, store.filled))
        queries = [filler_query("store", i) for i in picked]
        cold.append(driver.query(store.handle, queries))
        warm.append(driver.query(store.handle, queries))
    store.copy_to(copy)
    in_copy = store.total
    with_ref = _with_claim_ref(bench, driver, store, size)
    extra = 1 if driver.name == "ours" else 0  # the claim_ref ingests went into the store
    store.measured(size, sizes.flat_rounds * sizes.flat_ingests * extra)
    point = {
        "size": size,
        "filled": store.filled,
        "claims_in_copy": in_copy,  # the measured ingests' store (`_interleaved_ingests`)
        "built_in_s": round(store.build_seconds, 3),
        "restored_from_cache": store.restored,
        "ingest_rate_with_claim_ref": with_ref,
        "query_cold": latency_summary(cold),
        "query_warm": latency_summary(warm),
        "builder": store.last_meta,
    }
    return point


def _interleaved_ingests(
    bench: Bench, driver: Driver, copies: list[Path], points: list[dict[str, Any]]
) -> None:
    """Each round ingests `flat_ingests` claims on new lines into a copy of the store at
    every size in turn, the first size rotating round by round, so the disk's drift over a
    run moves every size alike: the sizes' rates are compared within each round. The
    copies are synced to disk and each opened and written once (untimed) beforehand."""
    sizes = bench.sizes
    os.sync()  # the copies' pages on disk now, not in the first measured checkpoint
    handles = [driver.open(copy, "store") for copy in copies]
    rates: list[list[float]] = [[] for _ in copies]
    dispositions: list[dict[str, int]] = [{} for _ in copies]
    try:
        for at, handle in enumerate(handles):  # untimed: each store opened and written once
            driver.ingest(handle, [fresh("store", f"warm{at}-", 0)])
        for number in range(sizes.flat_rounds):
            for at in rotated(list(range(len(copies))), number):
                first = (at * sizes.flat_rounds + number) * sizes.flat_ingests
                claims = [fresh("store", "new", first + i) for i in range(sizes.flat_ingests)]
                done = driver.ingest(handles[at], claims)
                rates[at].append(done.rate)
                dispositions[at] = _merge(dispositions[at], done.dispositions)
    finally:
        for handle in handles:
            driver.close(handle)
    for point, found, counts in zip(points, rates, dispositions, strict=True):
        point["ingest_rate"] = finite(median(found))
        point["ingest_round_rates"] = found
        point["ingest_over_smallest"] = finite(
            median([ratio(r, s) for r, s in zip(found, rates[0], strict=True)])
        )
        point["dispositions"] = counts


def _with_claim_ref(bench: Bench, driver: Driver, store: GrowingStore, size: int) -> float | None:
    """This engine only: ingests that carry their own claim_ref (an idempotency key), which
    makes the engine look the ref up first. None for the reference (no such field)."""
    if driver.name != "ours":
        return None
    sizes = bench.sizes
    rng = random.Random(f"refs-{size}")
    rates = []
    for number in range(sizes.flat_rounds):
        claims = []
        for i in range(sizes.flat_ingests):
            ref = str(uuid.UUID(int=rng.getrandbits(128), version=4))
            claims.append({**fresh("store", f"ref{size}-{number}-", i), "claim_ref": ref})
        rates.append(driver.ingest(store.handle, claims).rate)
    return finite(median(rates))


def line_axis(bench: Bench) -> dict[str, Any]:
    results: dict[str, Any] = {"lengths": list(bench.sizes.line_lengths), "engines": {}}
    for label, driver in engines(bench):
        points = []
        for length in bench.sizes.line_lengths:
            bench.progress.say(f"flat cost, line length {length:,}: {label}")
            points.append(_line_point(bench, driver, label, length))
        results["engines"][label] = points
    return results


def _line_point(bench: Bench, driver: Driver, label: str, length: int) -> dict[str, Any]:
    sizes = bench.sizes
    lines = sizes.lines_for(length)
    agent = "lines"
    directory = bench.scratch(f"line-{label}-{length}")
    store = GrowingStore(bench, driver, directory, agent, f"line{lines}", label)
    try:
        store.reach(
            lines * length,
            lambda a, b: (succession(agent, i // length, i % length) for i in range(a, b)),
        )
        queried = [
            line_query(agent, line, length) for line in range(min(lines, sizes.flat_queries))
        ]
        cold: list[Queried] = []
        warm: list[Queried] = []
        for _ in range(sizes.flat_rounds):
            store.reopen()
            cold.append(driver.query(store.handle, queried))
            cycle = [queried[i % len(queried)] for i in range(sizes.flat_queries)]
            warm.append(driver.query(store.handle, cycle))
        rates, dispositions = _append_rounds(bench, driver, store, lines, length)
    finally:
        store.close()
    return {
        "length": length,
        "lines": lines,
        "built_in_s": round(store.build_seconds, 3),
        "restored_from_cache": store.restored,
        "ingest_rate": finite(median(rates)),
        "ingest_round_rates": rates,
        "dispositions": dispositions,
        "query_cold": latency_summary(cold),
        "query_warm": latency_summary(warm),
    }


def _append_rounds(
    bench: Bench, driver: Driver, store: GrowingStore, lines: int, length: int
) -> tuple[list[float], dict[str, int]]:
    """Measured ingests appending succession claims to the long lines, round-robin."""
    sizes = bench.sizes
    rates: list[float] = []
    dispositions: dict[str, int] = {}
    sent = 0
    for _ in range(sizes.flat_rounds):
        claims = []
        for _ in range(sizes.flat_ingests):
            line, extra = sent % lines, sent // lines
            claims.append(succession(store.agent, line, length + extra))
            sent += 1
        done = driver.ingest(store.handle, claims)
        rates.append(done.rate)
        dispositions = _merge(dispositions, done.dispositions)
    return rates, dispositions


def _merge(a: dict[str, int], b: dict[str, int]) -> dict[str, int]:
    merged = dict(a)
    for key, count in b.items():
        merged[key] = merged.get(key, 0) + count
    return merged
