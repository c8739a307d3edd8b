"""(6) Memory: peak resident set size for building and for querying a large store.

Each measurement runs in a fresh process, so its peak (VmHWM) is its own:
`python -m benchmarks.memory build DIR CLAIMS` fills a durable store through
`ingest_many` (chunks of 1,000); `python -m benchmarks.memory query DIR CLAIMS QUERIES`
opens it and queries that many random one-claim lines. Each prints one JSON object.
For the reference, the querying process is a fresh runner on the store the flat-cost
benchmark built, and the building peak is that of the runner that built it (recorded
with the cached snapshot).
"""

from __future__ import annotations

import json
import random
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from benchmarks.context import Bench
from benchmarks.drivers import OursDriver
from benchmarks.reference import ReferenceDriver
from benchmarks.streams import filler_query, fillers

AGENT = "store"


def peak_kib() -> int:
    """This process's peak RSS in KiB: VmHWM on Linux (`ru_maxrss` survives fork + exec,
    so a child would report its parent's size), else `ru_maxrss`."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)


def build(directory: Path, claims: int) -> dict[str, Any]:
    driver = OursDriver()
    baseline = peak_kib()
    handle = driver.open(directory, AGENT)
    started = time.perf_counter()
    driver.fill(handle, fillers(AGENT, 0, claims))
    seconds = time.perf_counter() - started
    driver.close(handle)
    return {"claims": claims, "seconds": seconds, "baseline_kib": baseline, "peak_kib": peak_kib()}


def query(directory: Path, claims: int, queries: int) -> dict[str, Any]:
    driver = OursDriver()
    baseline = peak_kib()
    handle = driver.open(directory, AGENT)
    picked = random.Random(0).sample(range(claims), min(queries, claims))
    done = driver.query(handle, [filler_query(AGENT, i) for i in picked])
    driver.close(handle)
    return {
        "queries": len(done.latencies),
        "baseline_kib": baseline,
        "peak_kib": peak_kib(),
        "statuses": done.statuses,
    }


def _probe(*args: str) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.memory", *args],
        capture_output=True,
        text=True,
        check=False,
        cwd=Path(__file__).resolve().parents[1],
    )
    if done.returncode != 0:
        raise RuntimeError(f"memory probe {args[0]} failed: {done.stderr.strip()[-500:]}")
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def run(bench: Bench, reference_store: tuple[Path, int] | None) -> dict[str, Any]:
    """Ours: a build and a query process; reference: a query process on `reference_store`
    (its directory and how many filler claims it holds)."""
    sizes = bench.sizes
    directory = bench.scratch("memory-ours")
    bench.progress.say(f"memory: building a {sizes.memory_claims:,}-claim store (ours)")
    results: dict[str, Any] = {"claims": sizes.memory_claims}
    results["ours_build"] = _probe("build", str(directory), str(sizes.memory_claims))
    bench.progress.say("memory: querying it from a fresh process (ours)")
    results["ours_query"] = _probe(
        "query", str(directory), str(sizes.memory_claims), str(sizes.memory_queries)
    )
    if bench.reference is not None and reference_store is not None:
        results["reference_query"] = _reference_query(bench, *reference_store)
    return results


def _reference_query(bench: Bench, directory: Path, claims: int) -> dict[str, Any]:
    assert bench.reference is not None
    bench.progress.say(f"memory: querying the reference's {claims:,}-filler store")
    driver = ReferenceDriver(bench.reference.python)
    try:
        baseline = driver.peak_rss_kib()
        handle = driver.open(directory, AGENT)
        picked = random.Random(0).sample(range(claims), min(bench.sizes.memory_queries, claims))
        done = driver.query(handle, [filler_query(AGENT, i) for i in picked])
        return {
            "claims": claims,
            "queries": len(done.latencies),
            "baseline_kib": baseline,
            "peak_kib": driver.peak_rss_kib(),
            "statuses": done.statuses,
        }
    finally:
        driver.close_all()


def main(argv: list[str]) -> None:
    usage = "usage: python -m benchmarks.memory build DIR CLAIMS | query DIR CLAIMS QUERIES"
    if len(argv) < 3 or argv[0] not in ("build", "query"):
        raise SystemExit(usage)
    directory, claims = Path(argv[1]), int(argv[2])
    if argv[0] == "build":
        result = build(directory, claims)
    else:
        if len(argv) < 4:
            raise SystemExit(usage)
        result = query(directory, claims, int(argv[3]))
    print(json.dumps(result))


if __name__ == "__main__":
    main(sys.argv[1:])
