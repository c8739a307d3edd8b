"""Helpers of the PostgreSQL-specific tests: the mark, conninfo tweaks, workers.

The worker functions run in spawned processes (multiprocessing "spawn": no fork of a
process with pool threads), so they live in an importable module, not a test file.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict, make_conninfo

import mempill
from mempill.openers import open_postgres
from mempill.stores.postgres import PoolSettings, PostgresStore

START = datetime(2026, 1, 1, tzinfo=UTC)


def postgres_selected() -> bool:
    """False when MEMPILL_TEST_BACKENDS leaves PostgreSQL out (other test modules use it)."""
    chosen = os.environ.get("MEMPILL_TEST_BACKENDS", "")
    return not chosen or "postgres" in {n.strip() for n in chosen.split(",")}


#: The conftest skips these when MEMPILL_TEST_BACKENDS leaves PostgreSQL out.
POSTGRES_ONLY = [pytest.mark.postgres_only]


def with_params(dsn: str, **params: Any) -> str:
    """The conninfo with libpq parameters added or replaced (e.g. application_name)."""
    merged = {**conninfo_to_dict(dsn), **params}
    return make_conninfo("", **merged)


def fetch(dsn: str, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
    """Run one query on a fresh connection (outside the store under test)."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        return conn.execute(sql, params).fetchall()


#: Sessions of this database waiting (not yet granted) for one agent's write lock: the
#: advisory key `hashtextextended(agent, 0)` shows as its high and low 32-bit halves.
LOCK_WAITERS = (
    "SELECT count(*) FROM pg_locks l, (SELECT hashtextextended(%s, 0) AS k) h "
    "WHERE l.locktype = 'advisory' AND NOT l.granted AND l.objsubid = 1 "
    "AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database()) "
    "AND l.classid::bigint = (h.k >> 32) & 4294967295 AND l.objid::bigint = h.k & 4294967295"
)


def lock_waiters(dsn: str, agent: str) -> int:
    """How many sessions are blocked on `agent`'s advisory write lock right now."""
    ((count,),) = fetch(dsn, LOCK_WAITERS, (agent,))
    return int(count)


def wait_until(condition: Callable[[], bool], what: str, timeout: float = 30.0) -> None:
    """Poll `condition` until it holds (a state to reach, not a delay that orders events);
    fail with `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g}s waiting for {what}")
        time.sleep(0.001)


def request(agent: str, subject: str, value: Any, predicate: str = "p") -> dict[str, Any]:
    return {"agent_id": agent, "subject": subject, "predicate": predicate, "value": value}


def write_claims(
    engine: mempill.Engine, writer: str, agents: Sequence[str], per_agent: int
) -> list[tuple[str, str]]:
    """`per_agent` claims for each agent, interleaved; returns (agent, claim_ref) acked."""
    acked = []
    for i in range(per_agent):
        for agent in agents:
            receipt = engine.ingest(request(agent, f"{writer}-{i}", i))
            assert receipt.disposition is mempill.Disposition.COMMITTED_CHEAP, receipt
            acked.append((agent, receipt.claim_ref))
    return acked


def write_with_threads(
    engine: mempill.Engine, name: str, threads: int, agents: Sequence[str], per_agent: int
) -> list[tuple[str, str]]:
    """Run `write_claims` on `threads` threads at once; any failure is re-raised."""
    results: list[list[tuple[str, str]]] = [[] for _ in range(threads)]
    errors: list[BaseException] = []
    barrier = threading.Barrier(threads)

    def run(k: int) -> None:
        try:
            barrier.wait(timeout=60)
            results[k] = write_claims(engine, f"{name}t{k}", agents, per_agent)
        except BaseException as e:
            errors.append(e)

    workers = [threading.Thread(target=run, args=(k,)) for k in range(threads)]
    for t in workers:
        t.start()
    for t in workers:
        t.join()
    if errors:
        raise errors[0]
    return [item for chunk in results for item in chunk]


# ---------------------------------------------------------------- spawned workers


def open_at_barrier(dsn: str, barrier: Any, results: Any) -> None:
    """Open a store on `dsn` when every process is ready; report what it migrated."""
    barrier.wait(timeout=120)
    store = PostgresStore(dsn, PoolSettings(min_size=0, max_size=1))
    try:
        results.put(store.applied_migrations)
    finally:
        store.close()


def write_process(
    dsn: str, name: str, threads: int, agents: Sequence[str], per_agent: int, results: Any
) -> None:
    """One OS process of the concurrency test: its own engine, `threads` writers."""
    clock = mempill.SteppingClock(START, timedelta(milliseconds=1))
    engine = open_postgres(
        dsn,
        pool_max_size=threads,
        clock=clock,
        ids=mempill.SeededIds(f"process-{name}"),
        record_write_stats=True,
    )
    try:
        results.put(write_with_threads(engine, name, threads, agents, per_agent))
    finally:
        engine.close()
