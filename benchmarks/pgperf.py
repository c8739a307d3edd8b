"""PostgreSQL II (issue 14): round trips per operation, latency, writers and a store at scale.

Every server at hand is measured, labelled by major version (`pg15`, `pg18`): the one the
run was given (`--pg-dsn`, `$MEMPILL_BENCH_PG_DSN`, `$MEMPILL_TEST_PG_DSN`, e.g. the system
PostgreSQL 15) and the embedded PostgreSQL 18 the project's helper starts
(`mempill.lab.servers.embedded_dsn`); a second server of the same major version is left
out. Each measurement runs in a fresh schema (`fresh_schema`), dropped afterwards.

1. Round trips and statements of one operation, counted from libpq's own protocol trace
   (`mempill.lab.pgtrace`) on an engine whose pool holds one connection: deterministic,
   so they are taken after a warm-up pass (psycopg prepares a statement on its fifth run)
   and the largest of `TRACE_REPEATS` repeats is reported.
2. Single-thread `ingest` latency (one claim per call, each on a new line of one agent):
   median and p99, and the client's CPU per ingest (`time.process_time` over the run ÷
   ingests); `query_memory` of the same lines afterwards the same way.
3. `pg_writers` threads into as many agents through one engine ÷ raw one-row autocommit
   INSERTs from as many connections (`concurrency.raw_pg_rate`), beside the SQL floor: the
   statements of an ingest sent alone from as many connections (`benchmarks.pgfloor`), and
4. the same writers into one agent ÷ one writer into that agent (the same number of
   claims): per round, in rotating order, the median of per-round ratios.
5. A store at scale (`benchmarks.pgscale`).
"""

from __future__ import annotations

import math
import time
from collections import Counter
from collections.abc import Callable
from contextlib import ExitStack
from functools import partial
from typing import Any

from benchmarks import pgscale
from benchmarks.concurrency import aggregate_rate, raw_pg_rate
from benchmarks.context import Bench
from benchmarks.durable import rotated
from benchmarks.pgfloor import floor_rate, template
from benchmarks.pgscale import open_engine, schema_engine
from benchmarks.streams import fresh, succession
from benchmarks.targets import _get, judge_postgres
from benchmarks.timing import finite, median, percentile, ratio
from mempill.engine import Engine

#: Traced runs of each operation after the warm-up pass (their round trips should agree).
TRACE_REPEATS = 3
#: Untraced runs of each operation first: psycopg prepares a statement on its fifth run.
TRACE_WARMUP = 6
#: The operations whose round trips are counted, in report order.
OPERATIONS = {
    "ingest_new_line": "ingest, a claim on a new line of a known agent",
    "ingest_cached_line": "ingest, a second claim on a line this engine wrote (succession)",
    "ingest_new_agent": "ingest, the first claim of an agent",
    "query_cached_line": "query_memory of a line this engine wrote",
    "query_unread_line": "query_memory of a line another engine wrote (agent known here)",
    "query_unread_agent": "query_memory of a line of an agent only another engine wrote",
    "ingest_many_10": "ingest_many of 10 claims on new lines of a known agent",
}
SETTINGS = ("fsync", "synchronous_commit", "wal_sync_method", "shared_buffers")


def describe(dsn: str) -> dict[str, Any]:
    """Version and durability settings of a server."""
    import psycopg

    with psycopg.connect(dsn, connect_timeout=10) as conn:
        found: dict[str, Any] = {"major": conn.info.server_version // 10000}
        for name in ("server_version", *SETTINGS):
            row = conn.execute(f"SHOW {name}").fetchone()
            found[name] = None if row is None else str(row[0])
    return found


def servers(bench: Bench) -> tuple[dict[str, tuple[str, dict[str, Any]]], dict[str, str]]:
    """({label: (dsn, description)}, {what: why not measured}): the run's server first,
    then the embedded PostgreSQL 18 unless a server of its major version is already in."""
    found: dict[str, tuple[str, dict[str, Any]]] = {}
    skipped: dict[str, str] = {}
    if bench.pg_dsn is None:
        return found, {"PostgreSQL": bench.pg_error or "no PostgreSQL server"}
    candidates: list[tuple[str, Callable[[], str]]] = [("given", lambda: str(bench.pg_dsn))]

    def embedded() -> str:
        from mempill.lab.servers import embedded_dsn

        return embedded_dsn()

    candidates.append(("embedded", embedded))
    for source, dsn_of in candidates:
        try:
            dsn = dsn_of()
            description = {"source": source, **describe(dsn)}
        except Exception as e:  # a missing server is reported, not fatal
            skipped[source] = f"{type(e).__name__}: {e}"
            continue
        label = f"pg{description['major']}"
        if label in found:
            if found[label][0] != dsn:
                first = found[label][1]["source"]
                skipped[f"{label} ({source})"] = f"{label} is measured on the {first} server"
            continue
        found[label] = (dsn, description)
    if "given" not in skipped and "pg15" not in found:
        skipped["pg15"] = "no PostgreSQL 15 given (--pg-dsn / $MEMPILL_BENCH_PG_DSN)"
    return found, skipped


def outcome(result: object) -> str:
    """What a call gave: a receipt's disposition, a projection's status, or the
    dispositions of an ingest_many (`CommittedCheap×10`)."""
    if isinstance(result, tuple):
        found = Counter(outcome(r) for r in result)
        return ", ".join(f"{name}×{n}" for name, n in sorted(found.items()))
    for attribute in ("disposition", "status"):
        value = getattr(result, attribute, None)
        if value is not None:
            return str(getattr(value, "value", value))
    return type(result).__name__


def traced_counts(engine: Engine, operation: Callable[[], object]) -> tuple[int, int, str]:
    """(round trips, statements, outcome) of one call on a one-connection engine."""
    from mempill.lab.pgtrace import traced_store

    with traced_store(engine) as trace:
        result = operation()
    return trace.round_trips, trace.statements(), outcome(result)


def trip_operations(ours: Engine, number: int) -> dict[str, Callable[[], object]]:
    """One fresh instance of every counted operation (`number` keeps the keys new).

    Only `ours` writes agent `trips`; another engine writes `shared` (known to `ours`
    from a first ingest) and `elsewhere-…` before each run. The cached line is a
    succession line whose first claim `ours` wrote untraced: the traced claim takes the
    next trusted window (it closes the first cleanly, rule E3)."""
    agent, run = "trips", f"r{number}-"
    return {
        "ingest_new_line": lambda: ours.ingest(fresh(agent, f"{run}new", 0)),
        "ingest_cached_line": lambda: ours.ingest(succession(agent, number, 1)),
        "ingest_new_agent": lambda: ours.ingest(fresh(f"trips-{run}", "first", 0)),
        "query_cached_line": lambda: ours.query_memory(agent, f"{run}new0", "note"),
        "query_unread_line": lambda: ours.query_memory("shared", f"{run}other0", "note"),
        "query_unread_agent": lambda: ours.query_memory(f"elsewhere-{run}", "far0", "note"),
        "ingest_many_10": lambda: ours.ingest_many(
            [fresh(agent, f"{run}many", j) for j in range(10)]
        ),
    }


def round_trips(dsn: str) -> dict[str, Any]:
    """Round trips and statements of every operation in `OPERATIONS` (see the docstring)."""
    with ExitStack() as stack:
        schema, ours = stack.enter_context(schema_engine(dsn, 1))
        other = open_engine(schema, 1)
        stack.callback(other.close)
        ours.ingest(fresh("trips", "warmup", 0))
        ours.ingest(fresh("shared", "warmup", 0))
        counts: dict[str, list[tuple[int, int, str]]] = {name: [] for name in OPERATIONS}
        for number in range(TRACE_WARMUP + TRACE_REPEATS):
            run = f"r{number}-"
            ours.ingest(succession("trips", number, 0))  # the cached line's first claim
            other.ingest(fresh("shared", f"{run}other", 0))  # written elsewhere, read below
            other.ingest(fresh(f"elsewhere-{run}", "far", 0))
            for name, operation in trip_operations(ours, number).items():
                if number < TRACE_WARMUP:
                    operation()
                else:
                    counts[name].append(traced_counts(ours, operation))
    return {
        name: {
            "what": OPERATIONS[name],
            "round_trips": max(trips for trips, _, _ in runs),
            "statements": max(statements for _, statements, _ in runs),
            "each": [trips for trips, _, _ in runs],
            "outcome": runs[-1][2],
        }
        for name, runs in counts.items()
    }


def timed_calls(calls: list[Callable[[], object]]) -> dict[str, Any]:
    """Median and p99 seconds of each call, and client CPU seconds per call."""
    latencies = []
    cpu = time.process_time()
    for call in calls:
        started = time.perf_counter()
        call()
        latencies.append(time.perf_counter() - started)
    cpu = time.process_time() - cpu
    return {
        "calls": len(calls),
        "median_s": finite(median(latencies)),
        "p99_s": finite(percentile(latencies, 99)),
        "cpu_s_per_call": finite(cpu / len(calls)) if calls else None,
        "rate": finite(ratio(len(calls), sum(latencies))),
    }


def latency(engine: Engine, count: int) -> dict[str, Any]:
    """Single-thread ingest of `count` new lines of one agent, then a query of each."""
    engine.ingest(fresh("latency", "warmup", 0))
    claims = [fresh("latency", "line", j) for j in range(count)]
    ingest = timed_calls([partial(engine.ingest, c) for c in claims])
    query = timed_calls(
        [partial(engine.query_memory, c["agent_id"], c["subject"], "note") for c in claims]
    )
    return {"ingest": ingest, "query_cached": query}


def writers(bench: Bench, schema: str, engine: Engine) -> dict[str, Any]:
    """(3) and (4): per round, in rotating order, raw INSERTs from `pg_writers` connections,
    `pg_writers` threads into as many agents, into one agent, and one thread into it."""
    import psycopg

    sizes = bench.sizes
    count, threads = sizes.pg_writer_claims, sizes.pg_writers
    with ExitStack() as stack:
        conns = [
            stack.enter_context(psycopg.connect(schema, autocommit=True)) for _ in range(threads)
        ]
        conns[0].execute(
            "CREATE TABLE raw_insert (id bigserial PRIMARY KEY, agent_id text, payload text)"
        )
        for a in range(threads):  # create each agent before timing
            engine.ingest(fresh(f"w-{a:02d}", "warmup", 0))
        engine.ingest(fresh("one-00", "warmup", 0))
        rows = template(engine, "one-00")
        measures: dict[str, Callable[[], float]] = {
            "raw": lambda: raw_pg_rate(conns, count),
            "floor": lambda: floor_rate(conns, rows, count),
            "agents": lambda: aggregate_rate(engine, "w-", threads, threads, count),
            "one_agent": lambda: aggregate_rate(engine, "one-", threads, 1, count),
            "one_writer": lambda: aggregate_rate(engine, "one-", 1, 1, threads * count),
        }
        rounds = []
        for number in range(sizes.pg_rounds):
            bench.progress.say(f"postgres: writers, round {number + 1}/{sizes.pg_rounds}")
            rounds.append({k: measures[k]() for k in rotated(list(measures), number)})
    found: dict[str, Any] = {"writers": threads, "claims_per_writer": count, "rounds": rounds}
    for key in measures:
        found[f"{key}_rate"] = finite(median([r[key] for r in rounds]))
    found["agents_over_raw"] = finite(median([ratio(r["agents"], r["raw"]) for r in rounds]))
    found["floor_over_raw"] = finite(median([ratio(r["floor"], r["raw"]) for r in rounds]))
    found["agents_over_floor"] = finite(median([ratio(r["agents"], r["floor"]) for r in rounds]))
    found["one_agent_over_one_writer"] = finite(
        median([ratio(r["one_agent"], r["one_writer"]) for r in rounds])
    )
    return found


def measure(bench: Bench, label: str, dsn: str) -> dict[str, Any]:
    """Every measurement of one server."""
    say = bench.progress.say
    say(f"postgres {label}: round trips")
    found: dict[str, Any] = {"round_trips": round_trips(dsn)}
    with schema_engine(dsn, bench.sizes.pg_writers + 2) as (schema, engine):
        say(f"postgres {label}: single-thread latency")
        found["latency"] = latency(engine, bench.sizes.pg_latency_ingests)
        found["writers"] = writers(bench, schema, engine)
    found["scale"] = pgscale.run(bench, label, dsn)
    return found


def run(bench: Bench) -> dict[str, Any]:
    found, skipped = servers(bench)
    result: dict[str, Any] = {"servers": {}, "skipped": skipped}
    for label, (dsn, description) in found.items():
        bench.progress.say(f"postgres {label}: PostgreSQL {description['server_version']}")
        result["servers"][label] = {"server": description, **measure(bench, label, dsn)}
    result["targets"] = [t.to_dict() for t in judge_postgres({"postgres": result})]
    return result


# ------------------------------------------------------------------ report rows


def _cell(value: Any, spec: str, scale: float = 1.0) -> str:
    if not isinstance(value, (int, float)) or not math.isfinite(value):
        return "—"
    return format(value * scale, spec)


def trip_rows(results: dict[str, Any]) -> tuple[list[str], list[list[str]]]:
    """operation | what it gave | round trips and statements on each server."""
    found = _get(results, "postgres", "servers") or {}
    labels = list(found)
    header = ["operation", "outcome", *[f"{label} trips / statements" for label in labels]]
    rows = []
    for name, what in OPERATIONS.items():
        ops = [_get(found, label, "round_trips", name) or {} for label in labels]
        outcomes = sorted({str(op.get("outcome", "—")) for op in ops}) or ["—"]
        cells = [f"{op.get('round_trips', '—')} / {op.get('statements', '—')}" for op in ops]
        rows.append([what, "; ".join(outcomes), *cells])
    return header, rows


def server_rows(results: dict[str, Any]) -> tuple[list[str], list[list[str]]]:
    """measurement | value on each server (latency, writers, scale)."""
    found = _get(results, "postgres", "servers") or {}
    labels = list(found)
    specs: list[tuple[str, tuple[str, ...], str, float]] = [
        ("ingest, median ms", ("latency", "ingest", "median_s"), ".3f", 1000),
        ("ingest, p99 ms", ("latency", "ingest", "p99_s"), ".3f", 1000),
        ("ingest, client CPU µs per claim", ("latency", "ingest", "cpu_s_per_call"), ",.0f", 1e6),
        ("query_memory (line cached), median ms", ("latency", "query_cached", "median_s"),
         ".3f", 1000),
        ("query_memory (line cached), p99 ms", ("latency", "query_cached", "p99_s"), ".3f", 1000),
        ("raw one-row INSERTs, rows/s", ("writers", "raw_rate"), ",.0f", 1),
        ("writers into as many agents, claims/s", ("writers", "agents_rate"), ",.0f", 1),
        ("  ÷ raw INSERTs", ("writers", "agents_over_raw"), ".2f", 1),
        ("SQL floor (an ingest's statements alone), claims/s", ("writers", "floor_rate"),
         ",.0f", 1),
        ("  floor ÷ raw INSERTs", ("writers", "floor_over_raw"), ".2f", 1),
        ("  writers ÷ floor", ("writers", "agents_over_floor"), ".2f", 1),
        ("writers into one agent, claims/s", ("writers", "one_agent_rate"), ",.0f", 1),
        ("one writer into one agent, claims/s", ("writers", "one_writer_rate"), ",.0f", 1),
        ("  writers ÷ one writer (one agent)", ("writers", "one_agent_over_one_writer"),
         ".2f", 1),
        ("scale: stored claims", ("scale", "stored"), ",d", 1),
        ("scale: build, claims/s", ("scale", "build", "rate"), ",.0f", 1),
        ("scale: ingest_many at the first size, claims/s", ("scale", "early", "rate"),
         ",.0f", 1),
        ("scale: ingest_many at the full size, claims/s", ("scale", "late", "rate"), ",.0f", 1),
        ("  full ÷ first", ("scale", "late_over_early"), ".2f", 1),
        ("scale: query, first read, p50 ms", ("scale", "query_first", "p50_s"), ".3f", 1000),
        ("scale: query, first read, p99 ms", ("scale", "query_first", "p99_s"), ".3f", 1000),
        ("scale: query, repeated, p50 ms", ("scale", "query_repeated", "p50_s"), ".3f", 1000),
        ("scale: query, repeated, p99 ms", ("scale", "query_repeated", "p99_s"), ".3f", 1000),
        ("scale: bytes per claim, all tables", ("scale", "bytes_per_claim", "total"), ",.0f", 1),
        ("  of it tables (heap + TOAST)", ("scale", "bytes_per_claim", "tables"), ",.0f", 1),
        ("  of it indexes", ("scale", "bytes_per_claim", "indexes"), ",.0f", 1),
    ]  # fmt: skip
    rows = [
        [what, *[_cell(_get(found[label], *path), spec, scale) for label in labels]]
        for what, path, spec, scale in specs
    ]
    return ["measurement", *labels], rows


def relation_rows(results: dict[str, Any]) -> tuple[list[str], list[list[str]]]:
    """server | relation | bytes per claim: total, heap, indexes."""
    rows = []
    for label, found in (_get(results, "postgres", "servers") or {}).items():
        for relation in _get(found, "scale", "relations") or []:
            rows.append(
                [
                    label,
                    relation["name"],
                    _cell(relation["total_per_claim"], ",.1f"),
                    _cell(relation["heap_per_claim"], ",.1f"),
                    _cell(relation["indexes_per_claim"], ",.1f"),
                ]
            )
    header = ["server", "relation", "total B/claim", "heap B/claim", "indexes B/claim"]
    return header, rows
