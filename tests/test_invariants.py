"""reference §1 invariants that need the database's help to show: append-only storage."""

from __future__ import annotations

import sqlite3
from datetime import timedelta

import pytest
from conftest import Backend, RecordingOracle
from support import AGENT, put

from mempill import Engine, EngineConfig, Verdict
from mempill.stores.sqlite import SQLiteStore

APPEND_ONLY = ("claims", "ledger", "assertions", "edges")


def forbid_rewrites(backend: Backend, engine: Engine) -> None:
    """Triggers that abort any UPDATE or DELETE of the append-only tables (and any DELETE
    of the outbox, whose status column is the one thing a write may change)."""
    if backend.is_postgres:
        import psycopg

        assert backend.dsn is not None
        with psycopg.connect(backend.dsn, autocommit=True) as conn:
            conn.execute(
                "CREATE FUNCTION forbid() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
                "RAISE EXCEPTION 'append-only: % on %', TG_OP, TG_TABLE_NAME; END $$"
            )
            for table in APPEND_ONLY:
                conn.execute(
                    f"CREATE TRIGGER forbid_{table} BEFORE UPDATE OR DELETE ON {table} "
                    "FOR EACH ROW EXECUTE FUNCTION forbid()"
                )
            conn.execute(
                "CREATE TRIGGER forbid_outbox BEFORE DELETE ON pending_adjudications "
                "FOR EACH ROW EXECUTE FUNCTION forbid()"
            )
        return
    assert isinstance(engine.store, SQLiteStore)
    conn = engine.store.connection_for(AGENT)
    assert conn is not None
    for table in (*APPEND_ONLY, "pending_adjudications"):
        for op in ("UPDATE", "DELETE") if table in APPEND_ONLY else ("DELETE",):
            conn.execute(
                f"CREATE TRIGGER forbid_{op.lower()}_{table} BEFORE {op} ON {table} "
                f"BEGIN SELECT RAISE(ABORT, 'append-only: {op} on {table}'); END"
            )


def test_every_write_only_appends(backend: Backend, oracle: RecordingOracle) -> None:
    engine = backend.open(oracle=oracle, config=EngineConfig(default_adjudication_ttl_seconds=60))
    parent = put(engine, "Berlin", valid_from="2020")
    forbid_rewrites(backend, engine)
    child = put(
        engine, "DE", "user", "country", provenance="ModelDerived", derived_from=[parent.claim_ref]
    )
    for value in ("Paris", "Rome", "Oslo"):
        put(engine, value, valid_from="2021")
    handles = [r.handle_id for r in oracle.requests]
    engine.submit_adjudication(str(handles[0]), Verdict.AFFIRM)
    engine.submit_adjudication(str(handles[1]), Verdict.DENY)
    backend.clock.advance(timedelta(minutes=5))
    assert engine.sweep_expired() == 1  # Oslo's adjudication expired: a status update
    # Paris was affirmed, Rome denied, Oslo's question expired: user/city is Contested
    # (Paris vs Oslo) with no adjudication pending, so reconcile queues exactly one (an
    # insert: the guard must let it through); user/country is TimingUncertain.
    report = engine.reconcile(AGENT)
    assert report.escalations == 1 and len(oracle.requests) == 4
    assert [(line.predicate, line.status.value, line.escalated) for line in report.lines] == [
        ("city", "Contested", True),
        ("country", "TimingUncertain", False),
    ]
    engine.notify_pending()
    engine.end(AGENT, child.claim_ref, "2030")
    engine.reopen(AGENT, child.claim_ref)
    engine.invalidate(AGENT, parent.claim_ref)
    engine.end_fact(AGENT, "user", "country", "2031")
    engine.ingest_many(
        [{"agent_id": AGENT, "subject": "s", "predicate": f"p{i}", "value": i} for i in range(5)]
    )
    history = engine.query_history(AGENT, "user", "city")
    assert [e.status.value for e in history][:1] == ["Invalidated"]
    assert engine.list_pending(AGENT, status=None)  # statuses changed in place, rows kept
    assert_triggers_fire(backend, engine)


def assert_triggers_fire(backend: Backend, engine: Engine) -> None:
    """The guard is real: a rewrite of a ledger row is refused."""
    if backend.is_postgres:
        import psycopg

        assert backend.dsn is not None
        with (
            psycopg.connect(backend.dsn, autocommit=True) as conn,
            pytest.raises(psycopg.errors.RaiseException, match="append-only"),
        ):
            conn.execute("UPDATE ledger SET disposition = disposition")
        return
    assert isinstance(engine.store, SQLiteStore)
    conn = engine.store.connection_for(AGENT)
    assert conn is not None
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        conn.execute("UPDATE ledger SET disposition = disposition")
