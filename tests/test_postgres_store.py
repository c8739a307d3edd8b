"""PostgreSQL store: opening and closing, the pool, configuration, error translation."""

from __future__ import annotations

import math
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from pghelpers import POSTGRES_ONLY, fetch, lock_waiters, request, wait_until, with_params

import mempill
from mempill import (
    ConfigError,
    ConflictError,
    IntegrityError,
    RetryPolicy,
    StorageError,
    TransientStorageError,
)
from mempill.lab.servers import fresh_schema
from mempill.openers import open_postgres
from mempill.stores.postgres import PostgresStore

pytestmark = POSTGRES_ONLY

LEDGER_ROW = (
    "INSERT INTO ledger (agent_id, stream_seq, entry_id, event_kind, disposition, rationale, "
    "recorded_at) VALUES (%s, %s, 'e', 'ClaimRejected', 'Rejected', '{}', now())"
)
CLAIM_ROW = (
    "INSERT INTO claims (agent_id, claim_ref, subject, predicate, value, cardinality, provenance, "
    "value_confidence, valid_time_confidence, criticality, tx_time, stream_seq, derived_from) "
    "VALUES ('a', 'r', 's', 'p', '1', 'Functional', 'External/UserAsserted', 1, 0, 'Medium', "
    "now(), 1, '[]')"
)


@pytest.fixture
def dsn(postgres_server: str) -> Iterator[str]:
    with fresh_schema(postgres_server) as schema_dsn:
        yield schema_dsn


@pytest.fixture
def store(dsn: str) -> Iterator[PostgresStore]:
    engine = open_postgres(dsn, pool_max_size=4)
    assert isinstance(engine.store, PostgresStore)
    yield engine.store
    engine.close()


def silent_listener() -> socket.socket:
    """A TCP port that accepts connections and never says a word."""
    return socket.create_server(("127.0.0.1", 0), backlog=16)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


# ---------------------------------------------------------------- opening and closing


def test_explicit_open_and_close(dsn: str) -> None:
    engine = open_postgres(dsn)
    store = engine.store
    assert isinstance(store, PostgresStore)
    assert store.pool.get_stats()["pool_size"] == 1  # open: pool_min_size connections ready
    assert engine.ingest(request("a1", "s", 1)).disposition is mempill.Disposition.COMMITTED_CHEAP
    engine.close()
    assert store.pool.closed
    engine.close()  # idempotent
    with pytest.raises(StorageError, match="closed"):
        engine.query_memory("a1", "s", "p")


def test_context_manager_closes_the_pool(dsn: str) -> None:
    with open_postgres(dsn) as engine:
        engine.ingest(request("a1", "s", "x"))
        assert engine.query_memory("a1", "s", "p").value == "x"
        store = engine.store
        assert isinstance(store, PostgresStore)
    assert store.pool.closed


def test_pool_size_is_configurable_and_enforced(dsn: str) -> None:
    engine = open_postgres(dsn, pool_max_size=2, pool_min_size=2, pool_timeout=0.3)
    store = engine.store
    assert isinstance(store, PostgresStore)
    assert (store.pool.min_size, store.pool.max_size) == (2, 2)
    assert store.pool.get_stats()["pool_size"] == 2
    held = threading.Barrier(3)
    release = threading.Event()

    def hold(agent: str) -> None:
        with store.write(agent):
            held.wait(timeout=10)
            release.wait(timeout=10)

    holders = [threading.Thread(target=hold, args=(a,)) for a in ("a1", "a2")]
    for t in holders:
        t.start()
    try:
        held.wait(timeout=10)
        third = pytest.raises(TransientStorageError, match="no pooled connection")
        with third, store.write("a3"):
            pass
    finally:
        release.set()
        for t in holders:
            t.join()
    engine.close()


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"pool_max_size": 0}, "pool_max_size"),
        ({"pool_max_size": -3}, "pool_max_size"),
        ({"pool_max_size": 2.5}, "pool_max_size"),
        ({"pool_max_size": True}, "pool_max_size"),
        ({"pool_min_size": -1}, "pool_min_size"),
        ({"pool_min_size": 5, "pool_max_size": 2}, "must not exceed"),
        ({"connect_timeout": 0}, "connect_timeout"),
        ({"connect_timeout": math.nan}, "connect_timeout"),
        ({"pool_timeout": -1}, "pool_timeout"),
        ({"lab_synchronous_commit": "sometimes"}, "lab_synchronous_commit"),
    ],
)
def test_bad_settings_are_config_errors(options: dict[str, Any], message: str) -> None:
    # Validated before any connection: the address below is never contacted.
    with pytest.raises(ConfigError, match=message):
        open_postgres("host=127.0.0.1 port=1 dbname=none", **options)


def test_bad_conninfo_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="conninfo"):
        open_postgres("host=127.0.0.1 = nonsense")
    with pytest.raises(ConfigError, match="string"):
        open_postgres(42)  # type: ignore[arg-type]


def test_unreachable_server_is_a_clear_storage_error() -> None:
    port = free_port()
    with pytest.raises(StorageError, match=rf"cannot connect to host=127.0.0.1 port={port}") as e:
        open_postgres(f"host=127.0.0.1 port={port} dbname=x user=x password=secret")
    assert "secret" not in str(e.value)
    assert isinstance(e.value.__cause__, psycopg.OperationalError)


def test_connect_timeout_is_configurable() -> None:
    with silent_listener() as listener:
        port = listener.getsockname()[1]
        started = time.monotonic()
        with pytest.raises(StorageError, match="timeout"):
            open_postgres(f"host=127.0.0.1 port={port} dbname=x sslmode=disable", connect_timeout=2)
        waited = time.monotonic() - started
    # libpq waits whole seconds; the default (10 s) would not have returned this early.
    assert 1.5 <= waited < 8, waited


def test_sessions_are_utc_named_and_keep_the_server_durability(dsn: str) -> None:
    with open_postgres(dsn) as engine:
        store = engine.store
        assert isinstance(store, PostgresStore)
        with store.pool.connection() as conn:
            row = conn.execute(
                "SELECT current_setting('TimeZone'), current_setting('application_name'), "
                "current_setting('synchronous_commit')"
            ).fetchone()
    assert row == ("UTC", "mempill", "on")
    named = with_params(dsn, application_name="my-service")
    with open_postgres(named, lab_synchronous_commit="off") as engine:
        store = engine.store
        assert isinstance(store, PostgresStore)
        with store.pool.connection() as conn:
            row = conn.execute(
                "SELECT current_setting('application_name'), current_setting('synchronous_commit')"
            ).fetchone()
    assert row == ("my-service", "off")


# ---------------------------------------------------------------- the agent lock


def test_the_agent_lock_key_is_hashtextextended(store: PostgresStore, dsn: str) -> None:
    agent = "agent.lock-key_1"
    with store.write(agent) as txn:
        txn.cursor.execute("SELECT pg_backend_pid()")
        pid = txn.cursor.fetchone()[0]
        locks = fetch(
            dsn,
            "SELECT classid::bigint, objid::bigint, objsubid, mode, granted FROM pg_locks "
            "WHERE locktype = 'advisory' AND pid = %s",
            (pid,),
        )
    ((key,),) = fetch(dsn, "SELECT hashtextextended(%s, 0)", (agent,))
    unsigned = key & 0xFFFF_FFFF_FFFF_FFFF
    # A bigint advisory key shows as its high and low 32-bit halves with objsubid 1.
    assert locks == [(unsigned >> 32, unsigned & 0xFFFF_FFFF, 1, "ExclusiveLock", True)]
    released = "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND pid = %s"
    assert fetch(dsn, released, (pid,)) == [(0,)]


def test_lock_wait_is_measured_and_other_agents_do_not_wait(dsn: str) -> None:
    """The order is forced by events and pg_locks, not assumed from sleeps: the holder takes
    agent `busy`'s lock and keeps it until the waiter is seen queued on it in pg_locks.
    So the waiter asked before `queued` and held after `released` (both on the store's
    clock, perf_counter_ns): its recorded wait must cover that span, and cannot exceed
    its whole ingest (the hold lasts >= 0.2 s after `queued`, so a store that timed only
    part of the wait fails). Another agent's write during the hold does not wait at all."""
    busy, idle = "busy", "idle"
    with open_postgres(dsn, pool_max_size=3, record_write_stats=True) as engine:
        store = engine.store
        assert isinstance(store, PostgresStore)
        holding, release = threading.Event(), threading.Event()
        times: dict[str, int] = {}

        def hold() -> None:
            with store.write(busy):
                holding.set()
                assert release.wait(timeout=30), "never released"
                times["released"] = time.perf_counter_ns()  # the COMMIT (unlock) follows

        def wait_for_the_lock() -> None:
            times["asked"] = time.perf_counter_ns()
            engine.ingest(request(busy, "s", 1))  # blocks until the holder's COMMIT
            times["done"] = time.perf_counter_ns()

        holder = threading.Thread(target=hold)
        waiter = threading.Thread(target=wait_for_the_lock)
        holder.start()
        try:
            assert holding.wait(timeout=30), "the holder never took the lock"
            engine.ingest(request(idle, "s", 1))  # another agent, while `busy` is held
            waiter.start()
            wait_until(lambda: lock_waiters(dsn, busy) == 1, "the waiter to queue on the lock")
            times["queued"] = time.perf_counter_ns()
            time.sleep(0.2)  # not for ordering (pg_locks showed it): a hold worth measuring
            assert "done" not in times  # it is still waiting: the holder has not let go
        finally:
            release.set()
            holder.join(timeout=30)
            if waiter.ident is not None:  # started
                waiter.join(timeout=30)
        (idle_stat,) = engine.write_stats(idle)
        (busy_stat,) = engine.write_stats(busy)
    assert idle_stat.lock_wait_us == 0
    assert times["asked"] < times["queued"] < times["released"] < times["done"]
    covered_us = (times["released"] - times["queued"]) // 1000
    whole_ingest_us = (times["done"] - times["asked"]) // 1000
    assert 200_000 <= covered_us <= busy_stat.lock_wait_us <= whole_ingest_us
    assert (busy_stat.backend, busy_stat.first_seq, busy_stat.last_seq) == ("postgres", 1, 1)


# ---------------------------------------------------------------- error translation


def test_duplicate_ledger_key_is_transient(store: PostgresStore) -> None:
    raced = pytest.raises(TransientStorageError, match="another writer")
    with raced as e, store.write("a") as txn:
        txn.cursor.execute(LEDGER_ROW, ("a", 1))
        txn.cursor.execute(LEDGER_ROW, ("a", 1))
    assert isinstance(e.value.__cause__, psycopg.errors.UniqueViolation)
    with store.read("a") as reader:
        assert list(reader.ledger()) == []  # rolled back


def test_other_constraint_violations_are_integrity_errors(store: PostgresStore) -> None:
    with pytest.raises(IntegrityError) as e, store.write("a") as txn:
        txn.cursor.execute(CLAIM_ROW)
        txn.cursor.execute(CLAIM_ROW)
    assert not isinstance(e.value, TransientStorageError)
    assert isinstance(e.value.__cause__, psycopg.errors.UniqueViolation)


def test_other_errors_are_storage_errors(store: PostgresStore) -> None:
    with pytest.raises(StorageError, match="syntax") as e, store.read("a") as reader:
        reader.cursor.execute("SELEC 1")
    assert type(e.value) is StorageError
    assert isinstance(e.value.__cause__, psycopg.errors.SyntaxError)
    with store.write("a") as txn:  # the connection went back to the pool in a usable state
        txn.cursor.execute("SELECT 1")


def test_a_terminated_backend_is_transient(store: PostgresStore, dsn: str) -> None:
    with pytest.raises(TransientStorageError) as e, store.write("a") as txn:
        txn.cursor.execute("SELECT pg_backend_pid()")
        pid = txn.cursor.fetchone()[0]
        fetch(dsn, "SELECT pg_terminate_backend(%s)", (pid,))
        txn.cursor.execute("SELECT 1")
    assert isinstance(e.value.__cause__, psycopg.OperationalError)
    with store.write("a") as txn:  # the pool replaced the dead connection
        txn.cursor.execute("SELECT 1")


def test_a_lock_timeout_is_transient(store: PostgresStore) -> None:
    holding, done = threading.Event(), threading.Event()

    def hold() -> None:
        with store.write("a") as txn:
            txn.head()  # BEGIN and the lock are sent with the first statement
            holding.set()
            done.wait(timeout=10)

    holder = threading.Thread(target=hold)
    holder.start()
    holding.wait(timeout=10)
    try:
        timed_out = pytest.raises(TransientStorageError, match="lock not available")
        with timed_out, store.write("b") as txn:
            txn.cursor.execute("SET LOCAL lock_timeout = '50ms'")
            txn.cursor.execute("SELECT pg_advisory_xact_lock(hashtextextended('a', 0))")
    finally:
        done.set()
        holder.join()


def test_a_write_that_keeps_failing_becomes_a_conflict_error(dsn: str) -> None:
    retry = RetryPolicy(attempts=2, base_seconds=0.001, cap_seconds=0.001)
    with open_postgres(dsn, pool_max_size=1, pool_timeout=0.2, retry=retry) as engine:
        store = engine.store
        assert isinstance(store, PostgresStore)
        busy = store.write("other")  # holds the only connection
        with busy, pytest.raises(ConflictError, match="2 attempts"):
            engine.ingest(request("a1", "s", 1))
        assert engine.ingest(request("a1", "s", 1)).claim_ref  # and it recovers
