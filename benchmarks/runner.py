"""Runs every measurement, judges the targets, writes results.json and report.md."""

from __future__ import annotations

import json
import math
import os
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from benchmarks import (
    batching,
    concurrency,
    durable,
    flat,
    inmemory,
    machine,
    memory,
    pgperf,
    plans,
    profiles,
    replaycost,
    rls,
    search,
)
from benchmarks.context import Bench
from benchmarks.reference import ReferenceDriver, ReferenceUnavailable, ensure_venv
from benchmarks.report import console, markdown
from benchmarks.sizes import Sizes
from benchmarks.targets import judge
from benchmarks.timing import Progress, failure

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_OUT = ROOT / "build" / "bench"
PG_ENV = "MEMPILL_BENCH_PG_DSN"
SECTIONS = (
    "durable",
    "engine",
    "flat",
    "batching",
    "concurrency",
    "replay",
    "profiles",
    "memory",
    "plans",
    "rls",
    "search",
    "postgres",
)


def clean(value: Any) -> Any:
    """JSON-safe: non-finite floats become None, tuples become lists."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k): clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [clean(v) for v in value]
    return value


def resolve_postgres(dsn: str | None, wanted: bool) -> tuple[str | None, str | None]:
    """(dsn, None) for a reachable server, else (None, why). The embedded one is the fallback."""
    if not wanted:
        return None, "disabled (--no-postgres)"
    try:
        import psycopg

        from mempill.lab.servers import postgres_dsn

        found = dsn or os.environ.get(PG_ENV) or postgres_dsn()
        with psycopg.connect(found, connect_timeout=10) as conn:
            conn.execute("SELECT 1")
        return found, None
    except Exception as e:  # any failure only means PostgreSQL is not measured
        return None, f"no PostgreSQL server: {type(e).__name__}: {e}"


def start_reference(bench: Bench, out: Path) -> None:
    try:
        python = ensure_venv(out / "refvenv", log=bench.progress.say)
        bench.reference = ReferenceDriver(python)
        bench.progress.say(f"reference: mempill {bench.reference.version} ({python})")
    except (ReferenceUnavailable, OSError) as e:
        bench.reference_error = str(e)
        bench.progress.say(f"reference unavailable: {e}")


def sections(bench: Bench, results: dict[str, Any]) -> dict[str, Callable[[], Any]]:
    def reference_store() -> tuple[Path, int] | None:
        points = (((results.get("flat") or {}).get("store") or {}).get("engines") or {}).get(
            "reference"
        )
        return (bench.work / "store-reference", int(points[-1]["filled"])) if points else None

    def plan() -> Any:
        database = bench.work / "store-ours" / "store.db"
        if not database.exists():
            raise FileNotFoundError(
                f"plans explain the flat section's store; {database} is missing"
            )
        results["plans_database"] = f"the flat-cost store ({database.name}, largest size)"
        return plans.explain(database)

    return {
        "durable": lambda: durable.run(bench),
        "engine": lambda: inmemory.run(bench),
        "flat": lambda: flat.run(bench),
        "batching": lambda: batching.run(bench),
        "concurrency": lambda: concurrency.run(bench),
        "replay": lambda: replaycost.run(bench),
        "profiles": lambda: profiles.run(bench),
        "memory": lambda: memory.run(bench, reference_store()),
        "plans": plan,
        "rls": lambda: rls.run(bench),
        "search": lambda: search.run(bench),
        "postgres": lambda: pgperf.run(bench),
    }


def notes(bench: Bench, results: dict[str, Any]) -> list[str]:
    sizes = bench.sizes
    found = [
        f"Profile `{sizes.name}`: store sizes {list(sizes.store_sizes)}, line lengths "
        f"{list(sizes.line_lengths)}, {sizes.flat_rounds} rounds"
        + ("" if sizes.name == "full" else " (not the issue's full sizes)."),
        "`synchronous=OFF` rows use a lab-only store setting to show the engine's own cost "
        "without the fsync; the product always runs synchronous=FULL.",
        "First read = the first query of a line after the engine was opened (this engine's "
        "line cache is empty); repeated = the same lines again.",
    ]
    if bench.reference is not None:
        found.append(
            "The reference has no batch call: its ingest_many number is `ingest_claim` in a "
            "loop (one transaction each). Its stores are cached in build/bench/cache after "
            "the first build (its ingest slows as the store grows)."
        )
    return found


def run(
    sizes: Sizes,
    out: Path = DEFAULT_OUT,
    *,
    reference: bool = True,
    postgres: bool = True,
    pg_dsn: str | None = None,
    only: tuple[str, ...] = SECTIONS,
    keep: bool = False,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Measure, write `out/results.json` and `out/report.md`, return the results."""
    started = time.monotonic()
    out = out.resolve()  # the reference runner works in a directory of its own
    bench = Bench(sizes, out / "work", out / "cache", progress or Progress())
    shutil.rmtree(bench.work, ignore_errors=True)
    bench.work.mkdir(parents=True)
    bench.pg_dsn, bench.pg_error = resolve_postgres(pg_dsn, postgres)
    results: dict[str, Any] = {"profile": sizes.name, "sizes": sizes.to_dict(), "errors": {}}
    results["machine"] = machine.describe(bench.work, bench.pg_dsn, ROOT)
    if reference:
        start_reference(bench, out)
    else:
        bench.reference_error = "disabled (--no-reference)"
    try:
        measure(bench, results, only)
    finally:
        bench.close()
        if not keep:
            shutil.rmtree(bench.work, ignore_errors=True)
    return finish(bench, results, out, time.monotonic() - started)


def measure(bench: Bench, results: dict[str, Any], only: tuple[str, ...]) -> None:
    """Run the chosen sections in order; a failing one is recorded and the rest still run."""
    for name, work in sections(bench, results).items():
        if name not in only:
            continue
        bench.progress.say(f"== {name}")
        try:
            results[name] = work()
        except Exception as e:  # recorded; the run continues and exits non-zero
            results["errors"][name] = failure(e, 4000)
            bench.progress.say(f"{name} FAILED: {e}")


def finish(bench: Bench, results: dict[str, Any], out: Path, seconds: float) -> dict[str, Any]:
    results["machine"]["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
    results["seconds"] = seconds
    results["reference"] = None if bench.reference is None else bench.reference.version
    results["unavailable"] = {
        k: v for k, v in (("reference", bench.reference_error), ("PostgreSQL", bench.pg_error)) if v
    }
    results["notes"] = notes(bench, results)
    results["targets"] = [t.to_dict() for t in judge(results)]
    results = clean(results)
    (out / "results.json").write_text(json.dumps(results, indent=1, allow_nan=False) + "\n")
    (out / "report.md").write_text(markdown(results) + "\n")
    return results


def print_summary(results: dict[str, Any], out: Path) -> None:
    print(console(results))
    print(f"\nwrote {out / 'results.json'} and {out / 'report.md'}")
