"""How big each measurement is: `full` (the issue's sizes), `quick` (< 3 minutes) and
`tiny` (the smoke test and notebooks in CI)."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True, slots=True, kw_only=True)
class Sizes:
    """Every size parameter of a benchmark run."""

    name: str
    #: (1) durable ingest vs the raw one-row transaction rate
    durable_rounds: int
    durable_claims: int
    #: engine-only ingest (in memory) against raw in-memory commits and the SQL floor
    engine_rounds: int
    engine_claims: int
    #: (2) flat cost: stored claims in the agent's store, claims on the queried line
    store_sizes: tuple[int, ...]
    line_lengths: tuple[int, ...]
    flat_rounds: int
    flat_ingests: int  # measured ingests per round
    flat_queries: int  # measured queries per round
    #: (3) batching
    batch_size: int
    batch_rounds: int
    reference_batch_rounds: int
    #: (4) concurrency
    threads: tuple[int, ...]
    wide_agents: int
    writer_claims: int
    concurrency_rounds: int
    raw_pg_connections: int
    #: the conformance corpus replayed on sqlite-mem
    replay_rounds: int
    #: (6) memory
    memory_claims: int
    memory_queries: int
    #: PostgreSQL II (issue 14, `benchmarks.pgperf`): single-thread ingests timed, writer
    #: threads (as many agents, and raw INSERT connections), claims per writer, rounds
    pg_latency_ingests: int
    pg_writers: int
    pg_writer_claims: int
    pg_rounds: int
    #: the store at scale (`benchmarks.pgscale`): claims over agents (one ingest_many call
    #: per agent), builder threads, probe calls at each size, lines queried at full size
    scale_claims: int
    scale_agents: int
    scale_threads: int
    scale_probe_calls: int
    scale_queries: int

    def lines_for(self, length: int) -> int:
        """How many long lines of `length` claims the line benchmark builds.

        The measured ingests are spread over them round-robin so that no line grows by
        more than 10% while it is measured.
        """
        total = self.flat_rounds * self.flat_ingests
        return max(1, math.ceil(10 * total / length))

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


FULL = Sizes(
    name="full",
    durable_rounds=7,
    durable_claims=300,
    engine_rounds=9,
    engine_claims=3_000,
    store_sizes=(100, 10_000, 100_000),
    line_lengths=(10, 1_000, 10_000),
    flat_rounds=5,
    flat_ingests=50,
    flat_queries=200,
    batch_size=1_000,
    batch_rounds=7,
    reference_batch_rounds=3,
    threads=(1, 4, 16),
    wide_agents=16,
    writer_claims=50,
    concurrency_rounds=3,
    raw_pg_connections=16,
    replay_rounds=5,
    memory_claims=100_000,
    memory_queries=1_000,
    pg_latency_ingests=2_000,
    pg_writers=16,
    pg_writer_claims=50,
    pg_rounds=5,
    scale_claims=1_000_000,
    scale_agents=100_000,
    scale_threads=4,
    scale_probe_calls=100,
    scale_queries=1_000,
)

QUICK = Sizes(
    name="quick",
    durable_rounds=5,
    durable_claims=100,
    engine_rounds=7,
    engine_claims=1_500,
    store_sizes=(100, 1_000, 5_000),
    line_lengths=(10, 100, 1_000),
    flat_rounds=3,
    flat_ingests=20,
    flat_queries=50,
    batch_size=1_000,
    batch_rounds=3,
    reference_batch_rounds=1,
    threads=(1, 4, 16),
    wide_agents=16,
    writer_claims=40,
    concurrency_rounds=3,
    raw_pg_connections=16,
    replay_rounds=3,
    memory_claims=5_000,
    memory_queries=200,
    pg_latency_ingests=500,
    pg_writers=16,
    pg_writer_claims=30,
    pg_rounds=3,
    scale_claims=20_000,
    scale_agents=2_000,
    scale_threads=4,
    scale_probe_calls=50,
    scale_queries=1_000,
)

TINY = Sizes(
    name="tiny",
    durable_rounds=2,
    durable_claims=5,
    engine_rounds=2,
    engine_claims=20,
    store_sizes=(10, 50),
    line_lengths=(5, 20),
    flat_rounds=2,
    flat_ingests=3,
    flat_queries=5,
    batch_size=50,
    batch_rounds=2,
    reference_batch_rounds=1,
    threads=(1, 2),
    wide_agents=2,
    writer_claims=3,
    concurrency_rounds=1,
    raw_pg_connections=2,
    replay_rounds=1,
    memory_claims=200,
    memory_queries=20,
    pg_latency_ingests=20,
    pg_writers=2,
    pg_writer_claims=3,
    pg_rounds=1,
    scale_claims=500,
    scale_agents=50,
    scale_threads=2,
    scale_probe_calls=5,
    scale_queries=20,
)

PROFILES = {s.name: s for s in (FULL, QUICK, TINY)}
