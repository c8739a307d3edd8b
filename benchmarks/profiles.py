"""Where this engine's time goes: cProfile of its hot paths, without the fsync.

Three scenarios on a store with synchronous=OFF (so the profile shows the engine, not
the disk): single-claim `ingest`, one `ingest_many` call, and warm `query_memory` on
the longest line of the run. The top functions by own time go into the report.
"""

from __future__ import annotations

import cProfile
import pstats
from collections.abc import Callable
from pathlib import Path
from typing import Any

from benchmarks.context import Bench
from benchmarks.drivers import OursDriver
from benchmarks.streams import fresh, line_query, succession

TOP = 15


def profile(work: Callable[[], object], calls: int) -> dict[str, Any]:
    """Total time of `work` (`calls` engine calls) under cProfile and its `TOP` functions."""
    profiler = cProfile.Profile()
    profiler.enable()
    work()
    profiler.disable()
    stats = pstats.Stats(profiler)
    rows = []
    for (filename, line, name), (_, count, own, total, _) in stats.stats.items():  # type: ignore[attr-defined]
        where = _short(filename)
        rows.append(
            {"function": f"{where}:{line}({name})", "calls": count, "own_s": own, "cum_s": total}
        )
    rows.sort(key=lambda r: r["own_s"], reverse=True)
    spent = float(stats.total_tt)  # type: ignore[attr-defined]
    return {"total_s": spent, "calls": calls, "per_call_s": spent / calls, "top": rows[:TOP]}


def _short(filename: str) -> str:
    for marker in ("/mempill/", "/benchmarks/", "/lib/python"):
        if marker in filename:
            return filename[filename.index(marker) + 1 :]
    return filename


def run(bench: Bench) -> dict[str, Any]:
    sizes = bench.sizes
    driver = OursDriver(synchronous="OFF")
    directory: Path = bench.scratch("profile")
    handle = driver.open(directory, "prof")
    length = max(sizes.line_lengths)
    results: dict[str, Any] = {}
    try:
        bench.progress.say("profiles: ingest, ingest_many, query on the longest line")
        driver.ingest(handle, [fresh("prof", "warmup", 0)])  # creates the database first
        singles = [fresh("prof", "single", i) for i in range(sizes.durable_claims)]
        results["ingest"] = profile(lambda: driver.ingest(handle, singles), len(singles))
        batch = [fresh("prof", "many", i) for i in range(sizes.batch_size)]
        results["ingest_many"] = profile(lambda: driver.ingest_batch(handle, batch), len(batch))
        driver.fill(handle, (succession("prof", 0, i) for i in range(length)))
        queries = [line_query("prof", 0, length)] * sizes.flat_queries
        driver.query(handle, queries[:1])  # warm the line cache
        results["query_long_line"] = profile(lambda: driver.query(handle, queries), len(queries))
        results["scenarios"] = {
            "ingest": f"{len(singles)} single-claim ingest calls",
            "ingest_many": f"one ingest_many call of {len(batch)} claims",
            "query_long_line": f"{len(queries)} warm queries of a {length:,}-claim line",
        }
    finally:
        driver.close_all()
    return results
