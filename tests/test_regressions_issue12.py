"""Issue 12 (hardening): each example class the issue lists, as a plain test where the
stream format of data/regressions/ cannot hold it (a file on disk, a Python set, an integer
JSON cannot carry, a configuration, a connection killed mid-read). The streams
`data/regressions/issue12-*.jsonl` cover the rest on every backend."""

from __future__ import annotations

import logging
import math
import re
import shutil
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from conftest import Backend, RecordingOracle

import mempill
from mempill import (
    ConfigError,
    Disposition,
    EngineConfig,
    NotFoundError,
    RetryPolicy,
    SeededIds,
    SteppingClock,
    StorageError,
    ValidationError,
)
from mempill.core.config import MAX_DAYS, MAX_SECONDS
from mempill.core.dates import END_OF_TIME
from mempill.stores.pgdialect import DIALECT
from mempill.stores.sql import SQL

CJK = "".join(chr(0x4E00 + (i * 7919) % 20_000) for i in range(1024))
DEEP: Any = []
for _ in range(70):
    DEEP = [DEEP]


def request(subject: str = "s", predicate: str = "p", value: Any = 1, **fields: Any) -> Any:
    return {"agent_id": fields.pop("agent_id", "a"), "subject": subject,
            "predicate": predicate, "value": value, **fields}  # fmt: skip


# ---------------------------------------------------------------- storage limits


def test_every_key_the_contract_allows_is_storable(backend: Backend) -> None:
    engine = backend.open()
    for subject, predicate in ((CJK, "p"), ("s", CJK), (CJK, CJK[::-1])):
        assert engine.ingest(request(subject, predicate)).disposition is Disposition.COMMITTED_CHEAP
        assert engine.query_memory("a", subject, predicate).value == 1
        assert [p.predicate for p in engine.query_subject("a", subject)]
    rejected = engine.ingest(request(CJK, CJK[::-1], math.nan))
    assert (rejected.disposition, rejected.reason) == (Disposition.REJECTED, "non_finite_number")
    assert engine.end_fact("a", CJK, "p", "2030").value == 1


def test_every_postgres_line_lookup_seeks_by_hash() -> None:
    """A query that finds rows by subject must use the hashed form (migration 0002): the
    line indexes hold hashes, not text. A new line query in stores/sql.py is caught here."""
    for key in SQL:
        text = DIALECT.sql(key)
        unhashed = "subject = %s" in text or "subject IN" in text or "predicate = %s" in text
        assert not unhashed, (key, text)


@pytest.mark.postgres_only
def test_postgres_line_queries_use_the_hash_indexes(postgres_server: str) -> None:
    """As the owner and as a runtime role under row-level security (where a condition
    seeks an index only if it applies no non-LEAKPROOF function to a column: migration 3
    stores the hashes as columns for this), every line query seeks its line index."""
    import json

    import psycopg

    from mempill.lab.servers import fresh_schema, service_role

    with fresh_schema(postgres_server) as dsn, service_role(dsn) as runtime:
        with mempill.open_postgres(dsn) as engine:
            engine.ingest_many(request(f"s{i % 40}", f"p{i % 5}", i) for i in range(400))
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute("ANALYZE")
        for who in (dsn, runtime):
            with psycopg.connect(who) as conn:
                # A 400-row store: make the planner show that the index seek is possible
                # (on a large store it is also the cheapest plan).
                for setting in ("enable_seqscan", "enable_hashjoin", "enable_mergejoin"):
                    conn.execute(f"SET LOCAL {setting} = off")
                conn.execute("SELECT set_config('mempill.agent_id', 'a', true)")
                for key, params in (
                    ("line_claims", ("a", "s1", "p1", 0)),
                    ("line_version", ("a", "s1", "p1")),
                    ("pending_line", ("a", "s1", "p1")),
                    ("predicates", ("a", "s1", END_OF_TIME, 99)),
                    ("line_versions", ("a", json.dumps(["s1", "s2"]))),
                ):
                    plan = "\n".join(
                        r[0] for r in conn.execute("EXPLAIN " + DIALECT.sql(key), params)
                    )
                    assert "Seq Scan" not in plan.replace("Seq Scan on mempill_roles", ""), plan
                    assert re.search(r"Scan (Backward )?(using|on) \w+_line\b", plan), (key, plan)
                    assert "subject_key = " in plan, (key, plan)


# ---------------------------------------------------------------- numeric edges


def test_integers_json_cannot_hold_do_not_parse_and_write_nothing(backend: Backend) -> None:
    engine = backend.open()
    engine.ingest(request())
    before = engine.content_digest("a")
    for value in (10**5000, -(10**4300), [{"k": 10**4300}], {"a": [1, 2, 10**9000]}):
        with pytest.raises(ValidationError, match="more than 4,300 digits"):
            engine.ingest(request(value=value))
        with pytest.raises(ValidationError, match="more than 4,300 digits"):
            engine.ingest_many([request(value=2), request(value=value)])
        with pytest.raises(ValidationError):
            engine.end_fact("a", "s", "p", "2030", value=value)
    assert engine.content_digest("a") == before
    longest = 10**4300 - 1
    assert engine.ingest(request(predicate="q", value=longest)).disposition.value == (
        "CommittedCheap"
    )
    assert engine.query_memory("a", "s", "q").value == longest


def test_a_confidence_too_large_for_a_float_is_out_of_range(backend: Backend) -> None:
    engine = backend.open()
    for field in ("value_confidence", "valid_time_confidence"):
        rejected = engine.ingest(request(**{field: 10**400}))
        assert (rejected.disposition, rejected.reason) == (
            Disposition.REJECTED,
            "confidence_out_of_range",
        )
    ref = engine.ingest(request()).claim_ref
    with pytest.raises(ValidationError, match="confidence"):
        engine.end("a", ref, "2030", confidence=10**400)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("default_adjudication_ttl_seconds", 1e12),
        ("default_adjudication_ttl_seconds", MAX_SECONDS + 1),
        ("aging_unconfirmed_threshold_days", 1e9),
        ("decayed_threshold_days", MAX_DAYS + 1),
        ("burst_window_seconds", 1e12),
        ("burst_window_seconds", 10**400),
        ("max_value_bytes", 2**40),
    ],
)
def test_config_refuses_what_would_overflow_later(field: str, value: Any) -> None:
    with pytest.raises(ConfigError, match=field):
        EngineConfig(**{field: value})


def test_a_century_is_the_longest_duration_and_nothing_overflows_with_it(
    backend: Backend, oracle: RecordingOracle
) -> None:
    config = EngineConfig(
        default_adjudication_ttl_seconds=MAX_SECONDS,
        aging_unconfirmed_threshold_days=MAX_DAYS,
        decayed_threshold_days=MAX_DAYS,
        burst_window_seconds=MAX_SECONDS,
    )
    backend.clock = SteppingClock(datetime(9990, 1, 1, tzinfo=UTC), timedelta(seconds=1))
    engine = backend.open(config=config, oracle=oracle)
    engine.ingest(request(value="Paris"))
    queued = engine.ingest(request(value="Lyon"))
    assert queued.disposition is Disposition.QUEUED_FOR_ADJUDICATION
    (pending,) = engine.list_pending("a")
    assert pending.expires_at == END_OF_TIME  # 9990 + a century saturates, never overflows
    for _ in range(3):
        engine.ingest(request(value="Paris", provenance="RecallReEntry"))
    assert engine.query_memory("a", "s", "p", valid_at="0001").status.value == "Contested"
    assert engine.sweep_expired() == 0


def test_a_century_window_from_a_clock_in_antiquity_saturates_at_year_one(
    backend: Backend,
) -> None:
    """The recall-burst window (rule Q2) reaching back before year 1 covers everything
    since the first instant; before, `tx_time - window` raised OverflowError."""
    config = EngineConfig(burst_window_seconds=MAX_SECONDS, quarantine_burst_threshold=3)
    backend.clock = SteppingClock(datetime(50, 1, 1, tzinfo=UTC), timedelta(seconds=1))
    engine = backend.open(config=config)
    origin = engine.ingest(request(value="Berlin"))
    recall = {"provenance": "RecallReEntry", "derived_from": [origin.claim_ref]}
    dispositions = [engine.ingest(request(value="Berlin", **recall)).disposition for _ in "abc"]
    assert dispositions == [
        Disposition.COMMITTED_CHEAP,
        Disposition.COMMITTED_CHEAP,
        Disposition.QUARANTINED,
    ]
    assert engine.query_memory("a", "s", "p").value == "Berlin"


# ---------------------------------------------------------------- reads validate like writes


@pytest.mark.parametrize("bad", ["x\x00", "\ud800", "a\udfffb"])
def test_reads_refuse_text_no_backend_can_store(backend: Backend, bad: str) -> None:
    engine = backend.open(oracle=RecordingOracle())
    engine.ingest(request(value="Paris"))
    before = engine.content_digest("a")
    calls = [
        lambda: engine.query_memory("a", bad, "p"),
        lambda: engine.query_memory("a", "s", bad),
        lambda: engine.query_subject("a", bad),
        lambda: engine.query_history("a", "s", bad),
        lambda: engine.end_fact("a", bad, "p", "2030"),
        lambda: engine.reconcile("a", [(bad, "p")]),
        lambda: engine.submit_adjudication(bad, "Affirm"),
        lambda: engine.submit_adjudication(bad, "Affirm", agent_id="a"),
        lambda: engine.ingest(request(derived_from=[bad])),
        lambda: engine.ingest(request(derived_from=[bad], provenance="RecallReEntry")),
        lambda: engine.query_memory(bad, "s", "p"),
        lambda: engine.list_pending(bad),
        lambda: engine.notify_pending(bad),
    ]
    for call in calls:
        with pytest.raises(ValidationError):
            call()
    assert engine.content_digest("a") == before  # nothing written anywhere
    assert engine.query_memory("a", "s", "p").value == "Paris"


# ---------------------------------------------------------------- a failed read


def test_a_failed_read_leaves_no_reader_inside_a_transaction(tmp_path: Path) -> None:
    engine = mempill.open_directory(tmp_path)
    engine.ingest(request(value="Paris"))
    failing = [
        lambda: engine.query_memory("a", "s", "p", as_of="not a date"),
        lambda: engine.query_history("a", "s", "p", as_of="2020-13"),
        lambda: engine.query_audit("a", limit=0),
    ]
    for call in failing:
        with pytest.raises(ValidationError):
            call()
        assert engine.query_memory("a", "s", "p").value == "Paris"
    # an error raised by the caller's own code inside a snapshot ends the snapshot too
    with pytest.raises(ZeroDivisionError), engine.store.read("a"):
        _ = 1 / 0
    assert engine.query_history("a", "s", "p").entries
    readers = engine.store._agents["a"].idle_readers  # type: ignore[attr-defined]
    assert readers and not any(c.in_transaction for c in readers)
    engine.close()


# ---------------------------------------------------------------- foreign files


def test_store_wide_calls_ignore_files_that_are_not_agent_stores(tmp_path: Path) -> None:
    oracle = RecordingOracle()
    config = EngineConfig(default_adjudication_ttl_seconds=60)
    clock = SteppingClock(datetime(2026, 1, 1, tzinfo=UTC), timedelta(seconds=1))
    engine = mempill.open_directory(tmp_path, oracle=oracle, config=config, clock=clock)
    engine.ingest(request(value="Paris", agent_id="alice"))
    engine.ingest(request(value="Lyon", agent_id="alice"))
    shutil.copy(tmp_path / "alice.db", tmp_path / "alice copy.db")
    (tmp_path / "junk.db").write_text("not a database")
    (tmp_path / ".hidden.db").write_bytes(b"")
    with sqlite3.connect(tmp_path / "notes.db") as other:
        other.execute("CREATE TABLE notes (body TEXT)")
    other.close()
    foreign = (tmp_path / "notes.db").read_bytes()

    assert [p.agent_id for p in engine.list_pending()] == ["alice"]
    assert engine.notify_pending() == 0
    clock.advance(timedelta(minutes=5))
    assert engine.sweep_expired() == 1
    assert engine.list_pending() == ()
    assert dict(engine.ignored_files()) == {
        str(tmp_path / ".hidden.db"): "its name is not an agent id",
        str(tmp_path / "alice copy.db"): "its name is not an agent id",
        str(tmp_path / "junk.db"): "not a SQLite database",
        str(tmp_path / "notes.db"): "a SQLite database of another program",
    }
    with pytest.raises(StorageError, match="not a mempill store"):
        engine.query_memory("notes", "s", "p")
    with pytest.raises(StorageError, match="not a mempill store"):
        engine.ingest(request(agent_id="junk"))
    assert (tmp_path / "notes.db").read_bytes() == foreign  # never migrated, never written
    assert engine.query_memory("alice", "s", "p").status.value == "Contested"
    engine.close()


def test_a_foreign_file_is_refused_by_open_default(tmp_path: Path) -> None:
    with sqlite3.connect(tmp_path / "notes.db") as other:
        other.execute("CREATE TABLE notes (body TEXT)")
    other.close()
    with pytest.raises(StorageError, match="not a mempill store"):
        mempill.open_default(tmp_path / "notes.db")
    with mempill.open_default(tmp_path / "empty.db") as engine:  # a new file is fine
        engine.ingest(request())


# ---------------------------------------------------------------- no read has a side effect


def test_reconcile_never_binds_a_single_file_store(tmp_path: Path) -> None:
    oracle = RecordingOracle()
    path = tmp_path / "memory.db"
    with mempill.open_default(path, oracle=oracle) as engine:
        report = engine.reconcile("someone-else")
        assert report.lines == () and report.escalations == 0
        engine.reconcile("someone-else", [("s", "p")])
        assert engine.store.bound_agent() is None  # type: ignore[attr-defined]
        assert engine.ingest(request(value="Paris", agent_id="owner")).disposition.value == (
            "CommittedCheap"
        )
        engine.ingest(request(value="Lyon", agent_id="owner"))
        handle = engine.list_pending("owner")[0].handle_id
        engine.submit_adjudication(handle, "Unknown")
        assert engine.reconcile("owner").escalations == 1  # the write path still works
        assert engine.reconcile("someone-else").escalations == 0


def test_reads_and_refused_calls_create_no_agent_file(tmp_path: Path) -> None:
    with mempill.open_directory(tmp_path, oracle=RecordingOracle()) as engine:
        engine.reconcile("ghost")
        engine.query_memory("ghost", "s", "p")
        engine.list_pending("ghost")
        engine.ledger_digest("ghost")
        with pytest.raises(ValidationError):
            engine.submit_adjudication("h\x00", "Affirm", agent_id="ghost")
    assert not (tmp_path / "ghost.db").exists()


# ---------------------------------------------------------------- end_fact's value


END_FACT_VALUES = [math.nan, -math.inf, {1, 2}, 10**5000, b"x", {"k": "\x00"}, [1j], DEEP]


@pytest.mark.parametrize("value", END_FACT_VALUES, ids=[str(i) for i in range(8)])
def test_end_fact_values_no_claim_could_hold_are_validation_errors(
    backend: Backend, value: Any
) -> None:
    engine = backend.open()
    engine.ingest(request(value="Paris"))
    with pytest.raises(ValidationError, match="value"):
        engine.end_fact("a", "s", "p", "2030", value=value)
    with pytest.raises(NotFoundError):
        engine.end_fact("a", "s", "p", "2030", value="Rome")
    assert engine.end_fact("a", "s", "p", "2030", value="Paris").value == "Paris"


# ---------------------------------------------------------------- item 5: reads are retried


@contextmanager
def killing_reads(engine: mempill.Engine, dsn: str, times: int) -> Iterator[list[int]]:
    """The first `times` read snapshots lose their connection after their BEGIN (a point
    query's one message: after checkout, before it is sent)."""
    import psycopg

    real = engine.store.read
    killed: list[int] = []

    @contextmanager
    def read(agent_id: str) -> Iterator[Any]:
        with real(agent_id) as session:
            if len(killed) < times:
                row = session.cursor.execute("SELECT pg_backend_pid()").fetchone()
                with psycopg.connect(dsn, autocommit=True) as admin:
                    admin.execute("SELECT pg_terminate_backend(%s)", (row[0],))
                killed.append(row[0])
            yield session

    store: Any = engine.store
    real_line, real_connection = store.read_line, store._connection

    @contextmanager
    def losing_connection() -> Iterator[Any]:
        with real_connection() as conn:  # checked out (and checked) by the pool
            if len(killed) < times:
                pid = conn.info.backend_pid
                with psycopg.connect(dsn, autocommit=True) as admin:
                    admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
                    gone = "SELECT count(*) FROM pg_stat_activity WHERE pid = %s"
                    while admin.execute(gone, (pid,)).fetchone()[0]:
                        time.sleep(0.005)
                killed.append(pid)
            yield conn

    def read_line(*args: Any) -> Any:
        """A point query's one-message read, on a connection lost after checkout."""
        store._connection = losing_connection
        try:
            return real_line(*args)
        finally:
            del store._connection

    store.read = read
    store.read_line = read_line
    try:
        yield killed
    finally:
        store.read, store.read_line = real, real_line


@pytest.mark.postgres_only
def test_postgres_reads_are_retried_after_a_connection_lost_mid_read(
    postgres_server: str, caplog: pytest.LogCaptureFixture
) -> None:
    from mempill.lab.servers import fresh_schema

    caplog.set_level(logging.INFO, logger="mempill")
    with (
        fresh_schema(postgres_server) as dsn,
        mempill.open_postgres(
            dsn, ids=SeededIds(1), retry=RetryPolicy(attempts=3, base_seconds=0.001)
        ) as engine,
    ):
        ref = engine.ingest(request(value="Paris")).claim_ref
        reads = {
            "query_memory": lambda: engine.query_memory("a", "s", "p").value,
            "query_history": lambda: len(engine.query_history("a", "s", "p").entries),
            "query_audit": lambda: len(engine.query_audit("a").entries),
            "ledger_digest": lambda: engine.ledger_digest("a"),
            "list_pending": lambda: engine.list_pending("a"),
        }
        expected = {name: read() for name, read in reads.items()}
        for name, read in reads.items():
            with killing_reads(engine, dsn, times=2) as killed:
                assert read() == expected[name], name
            assert len(killed) == 2, name
        assert sum(
            "retried after a transient failure" in r.getMessage() for r in caplog.records
        ) >= 2 * len(reads)
        with killing_reads(engine, dsn, times=3), pytest.raises(StorageError):
            engine.query_memory("a", "s", "p")  # the retries ran out: a documented error
        assert engine.query_memory("a", "s", "p").primary.claim_ref == ref  # type: ignore[union-attr]
