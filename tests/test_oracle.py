"""reference §6: the oracle outbox, verdicts, expiry, notification retries and reconcile."""

from __future__ import annotations

from datetime import timedelta

import pytest
from conftest import Backend, RecordingOracle
from support import AGENT, entries_of, history_rows, kinds, put

from mempill import (
    BeliefStatus,
    Disposition,
    Engine,
    EngineConfig,
    EventKind,
    Marker,
    NotFoundError,
    PendingStatus,
    Verdict,
)

D = Disposition
E = EventKind


def contest(backend: Backend, oracle: RecordingOracle, **config: object):  # type: ignore[no-untyped-def]
    engine = backend.open(oracle=oracle, config=EngineConfig(**config))  # type: ignore[arg-type]
    incumbent = put(engine, "Berlin", valid_from="2020-01-01")
    challenger = put(engine, "Paris", valid_from="2024-01-01", valid_time_confidence=0.5)
    assert challenger.disposition is D.QUEUED_FOR_ADJUDICATION and challenger.handle_id
    return engine, incumbent, challenger


def test_affirm_bounds_incumbent_and_links_supersedes(
    backend: Backend, oracle: RecordingOracle
) -> None:
    engine, incumbent, challenger = contest(backend, oracle)
    assert challenger.handle_id is not None
    outcome = engine.submit_adjudication(challenger.handle_id, Verdict.AFFIRM)
    assert (outcome.disposition, outcome.superseded) == (D.COMMITTED_CHEAP, (incumbent.claim_ref,))
    assert kinds(entries_of(engine, incumbent.claim_ref))[-1] == (E.VALIDITY_ASSERTED, "Superseded")
    assert kinds(entries_of(engine, challenger.claim_ref))[-1] == (
        E.ADJUDICATION_RESOLVED,
        "CommittedCheap",
    )
    belief = engine.query_memory(AGENT, "user", "city")
    assert belief.value == "Paris" and belief.status is BeliefStatus.RESOLVED
    assert history_rows(engine) == [("Berlin", "Superseded"), ("Paris", "Current")]
    # the challenger's window is untrusted (0.5), so the incumbent is bound at "now"
    (berlin, _) = engine.query_history(AGENT, "user", "city")
    assert berlin.valid_until is not None and berlin.valid_until.year == 2026
    with pytest.raises(NotFoundError):  # already resolved
        engine.submit_adjudication(challenger.handle_id, Verdict.DENY)
    assert engine.list_pending(AGENT) == ()
    (row,) = engine.list_pending(AGENT, status=None)
    assert row.status is PendingStatus.RESOLVED


def test_affirm_bounds_at_the_challengers_trusted_start(
    backend: Backend, oracle: RecordingOracle
) -> None:
    engine = backend.open(oracle=oracle)
    put(engine, "Berlin", valid_from="2020-01-01")
    challenger = put(engine, "Paris", valid_from="2023-01-01", valid_until="2025-01-01")
    assert challenger.disposition is D.QUEUED_FOR_ADJUDICATION and challenger.handle_id
    engine.submit_adjudication(challenger.handle_id, "affirm")
    assert engine.query_memory(AGENT, "user", "city", valid_at="2022").value == "Berlin"
    assert engine.query_memory(AGENT, "user", "city", valid_at="2024").value == "Paris"
    berlin = engine.query_history(AGENT, "user", "city").entries[0]
    assert berlin.valid_until_display == "2023-01-01"


def test_affirm_cascades_to_dependents(backend: Backend, oracle: RecordingOracle) -> None:
    engine, incumbent, challenger = contest(backend, oracle)
    child = put(
        engine,
        "DE",
        "user",
        "country",
        provenance="ModelDerived",
        derived_from=[incumbent.claim_ref],
    )
    assert challenger.handle_id is not None
    engine.submit_adjudication(challenger.handle_id, Verdict.AFFIRM)
    assert kinds(entries_of(engine, child.claim_ref))[-1] == (
        E.DEPENDENT_FLAGGED_PENDING_REVIEW,
        "PendingReview",
    )


def test_affirm_spares_a_challenger_derived_from_the_incumbent(
    backend: Backend, oracle: RecordingOracle
) -> None:
    engine = backend.open(oracle=oracle)
    incumbent = put(engine, "Berlin")
    note = put(engine, "moved", "user", "note")
    challenger = put(
        engine,
        "Paris",
        provenance="ModelDerived",
        derived_from=[note.claim_ref, incumbent.claim_ref],
    )
    assert challenger.disposition is D.QUEUED_FOR_ADJUDICATION and challenger.handle_id
    engine.submit_adjudication(challenger.handle_id, Verdict.AFFIRM)
    assert E.DEPENDENT_FLAGGED_PENDING_REVIEW not in {
        e.event_kind for e in entries_of(engine, challenger.claim_ref)
    }
    belief = engine.query_memory(AGENT, "user", "city")
    assert belief.value == "Paris" and Marker.PENDING_REVIEW not in belief.markers


def test_sweep_reads_the_clock_once(backend: Backend, oracle: RecordingOracle) -> None:
    engine = backend.open(oracle=oracle, config=EngineConfig(default_adjudication_ttl_seconds=60))
    for agent in ("ada", "bea"):
        put(engine, 1, agent_id=agent)
        put(engine, 2, agent_id=agent)
    backend.clock.advance(timedelta(minutes=5))
    assert engine.sweep_expired() == 2
    stamps = {
        e.recorded_at
        for agent in ("ada", "bea")
        for e in engine.query_audit(agent).entries
        if e.event_kind is E.ADJUDICATION_EXPIRED
    }
    assert len(stamps) == 1


def test_deny_removes_the_challenger_for_good(backend: Backend, oracle: RecordingOracle) -> None:
    engine, _, challenger = contest(backend, oracle)
    assert challenger.handle_id is not None
    outcome = engine.submit_adjudication(challenger.handle_id, Verdict.DENY)
    assert outcome.disposition is D.SUPERSEDED
    assert engine.query_memory(AGENT, "user", "city").value == "Berlin"
    assert engine.query_memory(AGENT, "user", "city", valid_at="2025").value == "Berlin"
    assert history_rows(engine) == [("Berlin", "Current"), ("Paris", "Denied")]
    reopened = engine.reopen(AGENT, challenger.claim_ref)
    assert (reopened.disposition, reopened.reason) == (D.REJECTED, "claim_not_live")


def test_unknown_leaves_the_line_contested(backend: Backend, oracle: RecordingOracle) -> None:
    engine, incumbent, challenger = contest(backend, oracle)
    assert challenger.handle_id is not None
    outcome = engine.submit_adjudication(challenger.handle_id, Verdict.UNKNOWN)
    assert outcome.disposition is D.CONTESTED
    for claim in (incumbent, challenger):
        assert kinds(entries_of(engine, claim.claim_ref))[-1] == (
            E.ADJUDICATION_RESOLVED,
            "Contested",
        )
    assert engine.query_memory(AGENT, "user", "city").is_contested
    # reconcile does not re-queue a line whose contest the oracle could not settle? It does:
    report = engine.reconcile(AGENT)
    assert report.escalations == 1 and len(oracle.requests) == 2


def test_expiry_by_sweep(backend: Backend, oracle: RecordingOracle) -> None:
    engine, _, challenger = contest(backend, oracle, default_adjudication_ttl_seconds=3600)
    assert engine.sweep_expired() == 0
    backend.clock.advance(timedelta(hours=2))
    assert engine.sweep_expired() == 1
    assert kinds(entries_of(engine, challenger.claim_ref))[-1] == (
        E.ADJUDICATION_EXPIRED,
        "Contested",
    )
    assert engine.query_memory(AGENT, "user", "city").is_contested
    assert challenger.handle_id is not None
    with pytest.raises(NotFoundError):
        engine.submit_adjudication(challenger.handle_id, Verdict.AFFIRM)
    assert engine.sweep_expired() == 0


def test_expiry_by_a_late_submit(backend: Backend, oracle: RecordingOracle) -> None:
    engine, _, challenger = contest(backend, oracle, default_adjudication_ttl_seconds=60)
    backend.clock.advance(timedelta(minutes=5))
    assert challenger.handle_id is not None
    with pytest.raises(NotFoundError, match="expired"):
        engine.submit_adjudication(challenger.handle_id, Verdict.AFFIRM)
    assert kinds(entries_of(engine, challenger.claim_ref))[-1] == (
        E.ADJUDICATION_EXPIRED,
        "Contested",
    )
    (row,) = engine.list_pending(AGENT, status=PendingStatus.EXPIRED)
    assert row.handle_id == challenger.handle_id


def test_oracle_failure_never_orphans_a_claim(backend: Backend, oracle: RecordingOracle) -> None:
    oracle.fail = True
    engine = backend.open(oracle=oracle)
    put(engine, "Berlin")
    receipt = put(engine, "Paris")
    assert receipt.disposition is D.QUEUED_FOR_ADJUDICATION and receipt.oracle_notified is False
    (row,) = engine.list_pending(AGENT)
    assert not row.notified and row.challenger_ref == receipt.claim_ref
    assert engine.notify_pending() == 0  # still failing
    oracle.fail = False
    assert engine.notify_pending() == 1
    assert [r.handle_id for r in oracle.requests] == [receipt.handle_id]
    assert engine.list_pending(AGENT)[0].notified
    assert engine.notify_pending() == 0


def test_unknown_handle(backend: Backend, oracle: RecordingOracle) -> None:
    engine = backend.open(oracle=oracle)
    put(engine, "Berlin")
    with pytest.raises(NotFoundError):
        engine.submit_adjudication("00000000-0000-4000-8000-000000000000", Verdict.AFFIRM)


def test_reconcile_without_oracle_only_reports(backend: Backend) -> None:
    engine = backend.open()
    put(engine, "Berlin")
    put(engine, "Paris")
    put(engine, "en", "user", "speaks")
    report = engine.reconcile(AGENT)
    assert [(line.predicate, line.status, line.escalated) for line in report.lines] == [
        ("city", BeliefStatus.CONTESTED, False),
        ("speaks", BeliefStatus.TIMING_UNCERTAIN, False),
    ]
    assert report.escalations == 0 and engine.list_pending(AGENT) == ()


def test_reconcile_queues_contested_lines_without_pending(
    backend: Backend, oracle: RecordingOracle
) -> None:
    engine, _, challenger = contest(backend, oracle, default_adjudication_ttl_seconds=60)
    assert engine.reconcile(AGENT).escalations == 0  # a pending adjudication exists
    backend.clock.advance(timedelta(minutes=5))
    assert engine.sweep_expired() == 1
    report = engine.reconcile(AGENT)
    assert report.escalations == 1 and report.lines[0].handle_id is not None
    assert report.notified == (report.lines[0].handle_id,)
    assert engine.reconcile(AGENT, [("user", "city")]).escalations == 0  # queued again now
    (row,) = engine.list_pending(AGENT)
    assert row.challenger_ref == challenger.claim_ref
    assert kinds(entries_of(engine, row.challenger_ref))[-1] == (
        E.ADJUDICATION_REQUESTED,
        "QueuedForAdjudication",
    )
    assert len(engine.query_history(AGENT, "user", "city")) == 2  # reconcile never bounds
    assert engine.query_memory(AGENT, "user", "city").is_contested


def test_reconcile_reports_every_field_and_escalates_the_latest_challenger(
    backend: Backend, oracle: RecordingOracle
) -> None:
    engine = backend.open(oracle=oracle)
    berlin = put(engine, "Berlin")
    oracle_less = Engine(engine.store, clock=backend.clock, ids=backend.ids)  # no oracle
    put(engine, "en", "user", "speaks")
    engine.ingest(
        {
            "agent_id": AGENT,
            "subject": "user",
            "predicate": "city",
            "value": "Paris",
            "claim_ref": None,
        }
    )  # queued: the oracle has it
    (first,) = engine.list_pending(AGENT)
    engine.submit_adjudication(first.handle_id, "Unknown")  # contested, nothing pending now
    rome = put(engine, "Rome", "bob", "city")
    oslo = put(engine, "Oslo", "bob", "city")
    engine.submit_adjudication(str(oslo.handle_id), "Unknown")
    report_only = oracle_less.reconcile(AGENT, [("bob", "city")])
    assert (report_only.agent_id, report_only.escalations, report_only.notified) == (AGENT, 0, ())
    assert [
        (x.subject, x.predicate, x.status, x.escalated, x.handle_id) for x in report_only.lines
    ] == [("bob", "city", BeliefStatus.CONTESTED, False, None)]
    report = engine.reconcile(AGENT, [("bob", "city"), ("user", "speaks")])
    assert report.agent_id == AGENT and report.escalations == 1
    (bob, speaks) = report.lines
    assert (bob.subject, bob.predicate, bob.status, bob.escalated) == (
        "bob",
        "city",
        BeliefStatus.CONTESTED,
        True,
    )
    assert (
        speaks.subject,
        speaks.predicate,
        speaks.status,
        speaks.escalated,
        speaks.handle_id,
    ) == (
        "user",
        "speaks",
        BeliefStatus.TIMING_UNCERTAIN,
        False,
        None,
    )
    pending = [p for p in engine.list_pending(AGENT) if p.handle_id == bob.handle_id]
    assert len(pending) == 1
    assert (pending[0].challenger_ref, pending[0].incumbent_refs) == (
        oslo.claim_ref,
        (rome.claim_ref,),
    )
    assert pending[0].request["rule"] == "reconcile"
    assert report.notified == (bob.handle_id,) and oracle.requests[-1].handle_id == bob.handle_id
    assert oracle.requests[-1].subject == "bob" and oracle.requests[-1].agent_id == AGENT
    everything = engine.reconcile(AGENT)  # every line of the agent, sorted
    assert [(x.subject, x.predicate) for x in everything.lines] == [
        ("bob", "city"),
        ("user", "city"),
        ("user", "speaks"),
    ]
    assert everything.escalations == 1  # user/city; bob/city waits for its adjudication
    assert berlin.disposition is Disposition.COMMITTED_CHEAP


def test_a_no_op_oracle_is_no_oracle(backend: Backend) -> None:
    from mempill import NoOpOracle

    engine = backend.open(oracle=NoOpOracle())
    assert engine.oracle is None
    put(engine, "Berlin")
    assert put(engine, "Paris").disposition is Disposition.CONTESTED
    assert engine.notify_pending() == 0 and engine.list_pending() == ()
