"""(5) A PostgreSQL store at scale: ingest rate as it grows, one-line queries, bytes per claim.

In a fresh schema (dropped at the end), `scale_threads` threads build `scale_claims` claims
over `scale_agents` agents through one engine, one `ingest_many` call of
`scale_claims / scale_agents` claims (each on its own line) per agent. Twice, after the
first `early_claims` and at the full size, one thread makes `scale_probe_calls` calls of
the same shape into NEW agents; a probe's rate is claims per call ÷ the median call's
seconds (robust to a stall of the shared machine), and `late_over_early` compares the two.
The two probes cannot be interleaved (the store's size is what changes), so that ratio
carries the machine's drift between them.

At the full size a fresh engine queries `scale_queries` distinct random existing lines
(first read: neither the line nor, nearly always, its agent was read by that engine),
then the same lines again (repeated). Sizes per claim: `pg_total_relation_size` (heap,
TOAST, free-space and visibility maps, indexes), `pg_relation_size` (the heap's main fork)
and `pg_indexes_size` of every table of the schema, each ÷ the stored claims.
"""

from __future__ import annotations

import random
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from typing import Any

import mempill
from benchmarks.context import Bench
from benchmarks.drivers import CLOCK_START
from benchmarks.streams import Claim, filler
from benchmarks.targets import _num
from benchmarks.timing import finite, in_threads, median, percentile, ratio
from mempill.engine import Engine

#: The first probe runs once this many claims are stored (or a tenth of the store, if less).
EARLY_CLAIMS = 1_000
SEED = 14
SIZES_SQL = """
SELECT c.relname, pg_total_relation_size(c.oid), pg_relation_size(c.oid),
       pg_indexes_size(c.oid)
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'p')
ORDER BY 2 DESC, 1
"""


def open_engine(dsn: str, pool: int) -> Engine:
    """The product opener with a stepping clock and its default (time-ordered) ids, `pool`
    connections."""
    from mempill.openers import open_postgres

    clock = mempill.SteppingClock(CLOCK_START)
    return open_postgres(dsn, pool_max_size=pool, pool_min_size=pool, clock=clock)


@contextmanager
def schema_engine(dsn: str, pool: int) -> Iterator[tuple[str, Engine]]:
    """(dsn of a fresh schema, an engine on it); both gone afterwards."""
    from mempill.lab.servers import fresh_schema

    with ExitStack() as stack:
        schema = stack.enter_context(fresh_schema(dsn, prefix="bench"))
        engine = open_engine(schema, pool)
        stack.callback(engine.close)
        yield schema, engine


def agent_claims(agent: str, per_call: int) -> list[Claim]:
    """One call's claims: `per_call` one-claim lines of `agent` (filler lines)."""
    return [filler(agent, j) for j in range(per_call)]


def agent_name(index: int) -> str:
    return f"s{index:06d}"


class Builder:
    """Builds the store in threads, counting claims and saying how far it got."""

    def __init__(self, bench: Bench, engine: Engine, label: str, per_call: int) -> None:
        self.bench, self.engine, self.label, self.per_call = bench, engine, label, per_call
        self.total = bench.sizes.scale_claims
        self.stored = 0
        self.seconds = 0.0
        self.built = 0
        self._lock = threading.Lock()

    def build(self, agents: Sequence[int]) -> None:
        """One `ingest_many` per agent, the agents dealt round-robin to the threads."""
        threads = max(1, min(self.bench.sizes.scale_threads, len(agents)))
        if not agents:
            return

        def worker(share: Sequence[int]) -> Callable[[], None]:
            def work() -> None:
                for index in share:
                    self.engine.ingest_many(agent_claims(agent_name(index), self.per_call))
                    with self._lock:
                        self.stored += self.per_call
                        self.built += self.per_call
                        self.bench.progress.every(
                            f"postgres {self.label}: scale build {self.stored:,}/"
                            f"{self.total:,} claims"
                        )

            return work

        self.seconds += in_threads([worker(agents[t::threads]) for t in range(threads)])

    def probe(self, name: str) -> dict[str, Any]:
        """`scale_probe_calls` single-thread calls of the same shape into new agents."""
        stored = self.stored
        latencies = []
        for call in range(self.bench.sizes.scale_probe_calls):
            claims = agent_claims(f"probe-{name}-{call:05d}", self.per_call)
            started = time.perf_counter()
            self.engine.ingest_many(claims)
            latencies.append(time.perf_counter() - started)
            self.stored += self.per_call
        return {
            "stored_before": stored,
            "calls": len(latencies),
            "claims_per_call": self.per_call,
            "median_call_s": finite(median(latencies)),
            "p99_call_s": finite(percentile(latencies, 99)),
            "rate": finite(ratio(self.per_call, median(latencies))),
            "throughput": finite(ratio(self.per_call * len(latencies), sum(latencies))),
        }


def queries(dsn: str, lines: Sequence[Claim]) -> dict[str, Any]:
    """query_memory of each line on a fresh engine: first read, then repeated."""
    engine = open_engine(dsn, 2)
    found: dict[str, Any] = {}
    try:
        for kind in ("query_first", "query_repeated"):
            latencies = []
            statuses: Counter[str] = Counter()
            for claim in lines:
                started = time.perf_counter()
                belief = engine.query_memory(
                    claim["agent_id"], claim["subject"], claim["predicate"]
                )
                latencies.append(time.perf_counter() - started)
                statuses[belief.status.value] += 1
            found[kind] = {
                "queries": len(latencies),
                "p50_s": finite(median(latencies)),
                "p99_s": finite(percentile(latencies, 99)),
                "statuses": dict(statuses),
            }
    finally:
        engine.close()
    return found


def relation_sizes(dsn: str, stored: int) -> dict[str, Any]:
    """Bytes of every table of the schema (and its indexes), in all and per stored claim."""
    import psycopg

    with psycopg.connect(dsn) as conn:
        rows = conn.execute(SIZES_SQL).fetchall()
        counted = conn.execute("SELECT count(*) FROM claims").fetchone()
    relations: list[dict[str, Any]] = []
    total = indexes = 0
    for name, size, heap, index_size in rows:
        total, indexes = total + int(size), indexes + int(index_size)
        relations.append(
            {
                "name": str(name),
                "total_bytes": int(size),
                "heap_bytes": int(heap),
                "index_bytes": int(index_size),
                "total_per_claim": finite(ratio(size, stored)),
                "heap_per_claim": finite(ratio(heap, stored)),
                "indexes_per_claim": finite(ratio(index_size, stored)),
            }
        )
    return {
        "claims_table_rows": None if counted is None else int(counted[0]),
        "relations": relations,
        "bytes_per_claim": {
            "total": finite(ratio(total, stored)),
            "tables": finite(ratio(total - indexes, stored)),
            "indexes": finite(ratio(indexes, stored)),
        },
    }


def run(bench: Bench, label: str, dsn: str) -> dict[str, Any]:
    """Build, probe twice, query, measure sizes; the schema is dropped afterwards."""
    sizes = bench.sizes
    per_call = max(1, sizes.scale_claims // sizes.scale_agents)
    agents = list(range(sizes.scale_agents))
    early = max(1, min(EARLY_CLAIMS, sizes.scale_claims // 10) // per_call)
    threads = sizes.scale_threads
    with ExitStack() as stack:
        schema, engine = stack.enter_context(schema_engine(dsn, threads + 2))
        builder = Builder(bench, engine, label, per_call)
        bench.progress.say(f"postgres {label}: scale build to {sizes.scale_claims:,} claims")
        builder.build(agents[:early])
        early_probe = builder.probe("early")
        builder.build(agents[early:])
        bench.progress.say(f"postgres {label}: scale built {builder.stored:,} claims")
        late_probe = builder.probe("late")
        every = range(len(agents) * per_call)
        picked = random.Random(SEED).sample(every, min(sizes.scale_queries, len(every)))
        lines = [filler(agent_name(i // per_call), i % per_call) for i in picked]
        bench.progress.say(f"postgres {label}: scale queries")
        found: dict[str, Any] = {
            "agents": len(agents),
            "claims_per_call": per_call,
            "threads": threads,
            "stored": builder.stored,
            "build": {
                "claims": builder.built,
                "seconds": builder.seconds,
                "rate": finite(ratio(builder.built, builder.seconds)),
            },
            "early": early_probe,
            "late": late_probe,
            "late_over_early": finite(ratio(_num(late_probe["rate"]), _num(early_probe["rate"]))),
            **queries(schema, lines),
            **relation_sizes(schema, builder.stored),
        }
    return found
