"""PostgreSQL concurrency: per-agent serialization, cross-agent parallelism, no lost write."""

from __future__ import annotations

import itertools
import multiprocessing
import threading
from collections.abc import Iterator, Sequence
from datetime import datetime, timedelta

import pytest
from pghelpers import (
    POSTGRES_ONLY,
    START,
    fetch,
    request,
    write_process,
    write_with_threads,
)

from mempill import SeededIds, SteppingClock, WriteStat
from mempill.lab.servers import fresh_schema
from mempill.openers import open_postgres

pytestmark = [*POSTGRES_ONLY, pytest.mark.slow]

AGENTS = ("agent-a", "agent-b", "agent-c", "agent-d")
PER_AGENT = 100  # claims per writer and agent


@pytest.fixture
def dsn(postgres_server: str) -> Iterator[str]:
    with fresh_schema(postgres_server) as schema_dsn:
        yield schema_dsn


def assert_complete(dsn: str, acked: Sequence[tuple[str, str]], per_agent: int) -> None:
    """Each agent's ledger is exactly 1..per_agent, and every acknowledged claim is stored."""
    for agent in AGENTS:
        seqs = [r[0] for r in fetch(dsn, "SELECT stream_seq FROM ledger WHERE agent_id = %s "
                                    "ORDER BY stream_seq", (agent,))]  # fmt: skip
        assert seqs == list(range(1, per_agent + 1)), agent
    stored = set(fetch(dsn, "SELECT agent_id, claim_ref FROM claims"))
    assert len(acked) == len(set(acked)) == len(stored)
    assert set(acked) == stored


def test_sixteen_threads_four_agents(dsn: str) -> None:
    clock = SteppingClock(START, timedelta(milliseconds=1))
    with open_postgres(dsn, pool_max_size=16, clock=clock, ids=SeededIds("threads")) as engine:
        acked = write_with_threads(engine, "w", 16, AGENTS, PER_AGENT)
        stats = [s for agent in AGENTS for s in engine.write_stats(agent)]
    assert len(acked) == 16 * 4 * PER_AGENT == 6_400
    assert_complete(dsn, acked, 16 * PER_AGENT)
    assert len(stats) == 6_400 and {s.backend for s in stats} == {"postgres"}


def test_four_processes_four_threads_each(dsn: str) -> None:
    context = multiprocessing.get_context("spawn")
    results = context.Queue()
    workers = [
        context.Process(target=write_process, args=(dsn, f"p{k}", 4, AGENTS, PER_AGENT, results))
        for k in range(4)
    ]
    for p in workers:
        p.start()
    acked = [item for _ in workers for item in results.get(timeout=300)]
    for p in workers:
        p.join(timeout=60)
    assert [p.exitcode for p in workers] == [0, 0, 0, 0]
    assert len(acked) == 4 * 4 * 4 * PER_AGENT == 6_400
    assert_complete(dsn, acked, 16 * PER_AGENT)
    pids = {r[0] for r in fetch(dsn, "SELECT DISTINCT pid FROM write_stats")}
    assert pids == {p.pid for p in workers}


def interval(stat: WriteStat) -> tuple[datetime, datetime]:
    """A transaction's span: from holding the lock to just before COMMIT."""
    return stat.recorded_at - timedelta(microseconds=stat.txn_us), stat.recorded_at


def overlaps(a: WriteStat, b: WriteStat) -> bool:
    (a0, a1), (b0, b1) = interval(a), interval(b)
    return a0 < b1 and b0 < a1


def test_write_stats_show_agents_in_parallel_and_one_agent_in_series(dsn: str) -> None:
    agents = AGENTS[:2]
    batches, batch_size, writers_per_agent = 4, 40, 2
    with open_postgres(dsn, pool_max_size=8) as engine:

        def write(agent: str, writer: int) -> None:
            for b in range(batches):
                engine.ingest_many(
                    request(agent, f"w{writer}-b{b}-{i}", i) for i in range(batch_size)
                )

        threads = [
            threading.Thread(target=write, args=(agent, w))
            for agent in agents
            for w in range(writers_per_agent)
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        stats = {agent: engine.write_stats(agent) for agent in agents}
    for agent, rows in stats.items():
        assert len(rows) == batches * writers_per_agent
        spans = sorted((s.first_seq or 0, s.last_seq or 0) for s in rows)
        assert spans == [(k * batch_size + 1, (k + 1) * batch_size) for k in range(len(rows))]
        same = [(a, b) for a, b in itertools.combinations(rows, 2) if overlaps(a, b)]
        assert same == [], f"{agent}: transactions of one agent overlapped"
        assert any(s.lock_wait_us > 0 for s in rows), "its two writers never contended"
    across = [(a, b) for a in stats[agents[0]] for b in stats[agents[1]] if overlaps(a, b)]
    assert across, "no write of one agent overlapped a write of the other"
