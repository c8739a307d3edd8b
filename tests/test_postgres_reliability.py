"""PostgreSQL reliability: killed backends and lost COMMITs never lose or duplicate a write."""

from __future__ import annotations

import logging
import random
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import psycopg
import pytest
from pghelpers import POSTGRES_ONLY, START, fetch, request, with_params
from pgproxy import Cut, commit_cutter

import mempill
from mempill import ConflictError, Disposition, RetryPolicy, SeededIds, SteppingClock
from mempill.lab.servers import fresh_schema
from mempill.openers import open_postgres

pytestmark = POSTGRES_ONLY

AGENT = "agent-r"
WRITES = 500
PATIENT = RetryPolicy(attempts=60, base_seconds=0.002, cap_seconds=0.05)


@pytest.fixture
def dsn(postgres_server: str) -> Iterator[str]:
    with fresh_schema(postgres_server) as schema_dsn:
        yield schema_dsn


def retries(caplog: pytest.LogCaptureFixture) -> int:
    return sum("transient storage error" in r.getMessage() for r in caplog.records)


def ledger_rows(dsn: str, agent: str = AGENT) -> list[tuple[Any, ...]]:
    return fetch(
        dsn,
        "SELECT stream_seq, request_ref, claim_ref FROM ledger WHERE agent_id = %s "
        "ORDER BY stream_seq",
        (agent,),
    )


class Killer:
    """Terminates the backends serving writes (one application_name) at random moments.

    Idle pooled connections and the pool's own connection setup are left alone: a
    failed connection attempt makes psycopg_pool back off for seconds, which would
    only slow the test down; killing idle connections is tested on its own below.
    """

    def __init__(self, dsn: str, application_name: str, seed: int) -> None:
        self.dsn, self.name = dsn, application_name
        self.random = random.Random(seed)
        self.stop = threading.Event()
        self.killed = 0
        self.thread = threading.Thread(target=self.run)

    def run(self) -> None:
        with psycopg.connect(self.dsn, autocommit=True) as conn:
            while not self.stop.wait(self.random.uniform(0.002, 0.04)):
                rows = conn.execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE application_name = %s AND pid <> pg_backend_pid() "
                    "AND state IN ('active', 'idle in transaction') "
                    "AND query NOT IN ('', 'SET TIME ZONE ''UTC''')",
                    (self.name,),
                ).fetchall()
                self.killed += sum(1 for (done,) in rows if done)

    def __enter__(self) -> Killer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join()


def test_killing_the_backend_at_random_points_loses_and_duplicates_nothing(
    dsn: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="mempill")
    name = f"mempill-kill-{uuid.uuid4().hex[:8]}"
    engine = open_postgres(
        with_params(dsn, application_name=name),
        pool_max_size=2,
        retry=PATIENT,
        clock=SteppingClock(START, timedelta(milliseconds=1)),
        ids=SeededIds("kill"),
    )
    acked: dict[str, int] = {}
    failed: list[int] = []
    with engine, Killer(dsn, name, seed=7) as killer:
        for i in range(WRITES):
            try:
                receipt = engine.ingest(request(AGENT, f"s{i}", i))
            except ConflictError:  # retries exhausted: not acknowledged
                failed.append(i)
                continue
            assert receipt.disposition is Disposition.COMMITTED_CHEAP
            acked[receipt.claim_ref] = i
    rows = ledger_rows(dsn)
    print(f"killed {killer.killed} backends, {retries(caplog)} retries, {len(acked)} acked")
    assert killer.killed >= 10, "the killer must actually have hit the writers"
    assert retries(caplog) >= 1
    assert [seq for seq, _, _ in rows] == list(range(1, len(rows) + 1))  # gap-free, unique
    requests = [ref for _, ref, _ in rows]
    assert len(set(requests)) == len(requests)  # nothing written twice
    assert set(acked) <= set(requests)  # every acknowledged write is there
    assert len(rows) - len(acked) <= len(failed)  # the rest are unacknowledged attempts
    stored = dict(fetch(dsn, "SELECT claim_ref, value FROM claims WHERE agent_id = %s", (AGENT,)))
    assert {ref: stored[ref] for ref in acked} == {ref: str(i) for ref, i in acked.items()}
    assert len(failed) <= WRITES // 50, failed


def test_idle_connections_killed_in_the_pool_are_replaced_by_the_check(
    dsn: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="mempill")
    name = f"mempill-idle-{uuid.uuid4().hex[:8]}"
    with named_engine(dsn, name, pool=2) as engine:
        for i in range(5):
            assert terminate(dsn, name) == 2
            gone(dsn, name)  # the backends have exited: their FATAL and EOF are on the sockets
            engine.ingest(request(AGENT, f"s{i}", i))
    assert retries(caplog) == 0  # the pool's check caught every dead connection first
    assert [seq for seq, _, _ in ledger_rows(dsn)] == [1, 2, 3, 4, 5]


def test_a_connection_killed_just_before_checkout_costs_one_retry_not_an_error(
    dsn: str, caplog: pytest.LogCaptureFixture
) -> None:
    """The check asks the server nothing (no round trip): a backend killed in the instant
    before checkout passes it, fails its first statement, and the whole transaction is
    retried on a fresh connection; the caller sees a normal receipt."""
    caplog.set_level(logging.INFO, logger="mempill")
    name = f"mempill-race-{uuid.uuid4().hex[:8]}"
    with named_engine(dsn, name, pool=1) as engine:
        for i in range(5):
            terminate(dsn, name)
            receipt = engine.ingest(request(AGENT, f"s{i}", i))
            assert receipt.disposition is Disposition.COMMITTED_CHEAP
    assert retries(caplog) <= 5
    assert [seq for seq, _, _ in ledger_rows(dsn)] == [1, 2, 3, 4, 5]


def named_engine(dsn: str, application_name: str, pool: int) -> mempill.Engine:
    return open_postgres(
        with_params(dsn, application_name=application_name),
        pool_min_size=pool,
        pool_max_size=pool,
    )


def terminate(dsn: str, application_name: str) -> int:
    """Terminate every backend of `application_name`; how many were."""
    killed = fetch(
        dsn,
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = %s",
        (application_name,),
    )
    assert all(done for (done,) in killed)
    return len(killed)


def gone(dsn: str, application_name: str) -> None:
    """Wait until no backend of `application_name` is left."""
    deadline = time.monotonic() + 30
    query = "SELECT count(*) FROM pg_stat_activity WHERE application_name = %s"
    while fetch(dsn, query, (application_name,))[0][0]:
        assert time.monotonic() < deadline, "terminated backends did not exit"
        time.sleep(0.005)


Write = Callable[[mempill.Engine, Callable[[], None]], Any]


def ingest_one(engine: mempill.Engine, arm: Callable[[], None]) -> Any:
    arm()
    return engine.ingest(request(AGENT, "alice", "Paris", predicate="city"))


def ingest_three(engine: mempill.Engine, arm: Callable[[], None]) -> Any:
    arm()
    return engine.ingest_many([request(AGENT, "bob", n, predicate="age") for n in (1, 2, 3)])


def end_a_claim(engine: mempill.Engine, arm: Callable[[], None]) -> Any:
    primary = engine.query_memory(AGENT, "carol", "city").primary
    assert primary is not None
    arm()  # after the read: the COMMIT to cut is the write's
    return engine.end(AGENT, primary.claim_ref, "2026-01-01")


LOST_COMMITS = [
    pytest.param(write, cut, id=f"{write.__name__}-{cut}")
    for write in (ingest_one, ingest_three, end_a_claim)
    for cut in ("before", "after")
]


@pytest.mark.parametrize(("write", "cut"), LOST_COMMITS)
def test_a_connection_lost_at_commit_is_retried_exactly_once(
    dsn: str, caplog: pytest.LogCaptureFixture, cut: Cut, write: Write
) -> None:
    caplog.set_level(logging.INFO, logger="mempill")
    with commit_cutter(dsn) as proxy:
        engine = open_postgres(
            proxy.dsn(),
            clock=SteppingClock(START),
            ids=SeededIds(1),
            retry=RetryPolicy(attempts=5, base_seconds=0.001, cap_seconds=0.01),
        )
        with engine:
            engine.ingest(request(AGENT, "carol", "Rome", predicate="city"))
            head = len(ledger_rows(dsn))
            result = write(engine, lambda: proxy.arm(cut))
            assert proxy.cuts == 1
            assert retries(caplog) == 1
            discarded = [r for r in caplog.records if "discarding closed" in r.getMessage()]
            assert discarded, "the pool must drop the broken connection"
            rows = ledger_rows(dsn)
            digest = engine.ledger_digest(AGENT)
    # The same calls on an undisturbed store: the same ledger (and, when the lost COMMIT
    # had committed, the very same result and digest: the retry found and returned it).
    with fresh_schema(dsn) as clean_dsn:
        with open_postgres(clean_dsn, clock=SteppingClock(START), ids=SeededIds(1)) as clean:
            clean.ingest(request(AGENT, "carol", "Rome", predicate="city"))
            expected = write(clean, lambda: None)
            expected_digest = clean.ledger_digest(AGENT)
        expected_rows = ledger_rows(clean_dsn)
    assert len(rows) > head
    assert rows == expected_rows  # seq, request and claim refs: nothing lost, nothing twice
    if cut == "after":
        assert result == expected
        assert digest == expected_digest
    else:  # the first attempt rolled back; the rerun drew fresh entry ids
        assert _shape(result) == _shape(expected)


def _shape(result: Any) -> Any:
    """A result without the ids a retry may draw afresh."""
    items = result if isinstance(result, tuple) else (result,)
    return [(type(r).__name__, getattr(r, "disposition", None)) for r in items]


def test_the_check_sees_a_hangup_on_any_descriptor_number() -> None:
    """The pool's check looks at the socket with poll: select cannot watch a descriptor
    numbered 1,024 or more, which a busy process reaches."""
    import os
    import resource
    import socket

    from mempill.stores.postgres import _readable

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < 2_100:
        pytest.skip(f"the hard limit of open files is {hard}")
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, 2_100), hard))
    ours, theirs = socket.socketpair()
    high = os.dup2(ours.fileno(), 2_048)
    try:
        assert not _readable(high)  # idle: nothing to read
        theirs.close()  # the peer hangs up, as a terminated backend does
        assert _readable(high)
    finally:
        os.close(high)
        ours.close()
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def test_a_session_reset_by_a_pooler_costs_a_retry_not_an_error(
    dsn: str, caplog: pytest.LogCaptureFixture
) -> None:
    """A pooler in transaction mode (or `DISCARD ALL`) drops the statements a connection
    prepared: the statement fails with 26000, the connection is closed (the pool opens a
    fresh one, which prepares them again) and the call is retried."""
    caplog.set_level(logging.INFO, logger="mempill")
    with named_engine(dsn, f"mempill-reset-{uuid.uuid4().hex[:8]}", pool=1) as engine:
        engine.ingest(request(AGENT, "s0", 0))
        for i in (1, 2):
            with engine.store.pool.connection() as conn:  # type: ignore[attr-defined]
                conn.execute("DEALLOCATE ALL")
            receipt = engine.ingest(request(AGENT, f"s{i}", i))
            assert receipt.disposition is Disposition.COMMITTED_CHEAP
        with engine.store.pool.connection() as conn:  # type: ignore[attr-defined]
            conn.execute("DEALLOCATE ALL")
        assert engine.query_memory(AGENT, "s2", "p").value == 2
    assert retries(caplog) == 2  # the two writes
    reads = [r for r in caplog.records if "retried after a transient" in r.getMessage()]
    assert len(reads) == 1 and "prepared statement is missing" in reads[0].getMessage()
    assert [seq for seq, _, _ in ledger_rows(dsn)] == [1, 2, 3]
