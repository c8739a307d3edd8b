"""Each of the twelve dispositions, reached through the public API, with its rows and belief."""

from __future__ import annotations

import pytest
from conftest import Backend, RecordingOracle
from support import AGENT, entries_of, history_rows, kinds, ledger, put, request

from mempill import (
    BeliefStatus,
    Criticality,
    Disposition,
    Engine,
    EventKind,
    HistoryStatus,
    Marker,
    Provenance,
    ValidationError,
)

D = Disposition
E = EventKind


def test_committed_cheap(engine: Engine) -> None:
    receipt = put(engine, "Berlin")
    assert receipt.disposition is D.COMMITTED_CHEAP
    assert kinds(ledger(engine)) == [(E.CLAIM_COMMITTED, "CommittedCheap")]
    assert ledger(engine)[0].rationale["route"] == "E2"
    assert history_rows(engine) == [("Berlin", "Current")]
    belief = engine.query_memory(AGENT, "user", "city")
    assert belief.status is BeliefStatus.TIMING_UNCERTAIN  # no valid time at all
    assert belief.value == "Berlin" and belief.primary is not None
    assert belief.primary.claim_ref == receipt.claim_ref


def test_committed_inferred(engine: Engine) -> None:
    receipt = put(engine, "Paris", provenance="ModelDerived")
    assert (receipt.disposition, receipt.reason) == (D.COMMITTED_INFERRED, "unanchored")
    assert ledger(engine)[0].rationale["route"] == "M1"
    belief = engine.query_memory(AGENT, "user", "city")
    assert belief.value == "Paris" and Marker.INFERRED in belief.markers
    put(engine, "Berlin")  # an authoritative claim outranks the inferred tier
    belief = engine.query_memory(AGENT, "user", "city")
    assert belief.value == "Berlin" and [s.value for s in belief.inferred] == ["Paris"]
    assert Marker.INFERRED not in belief.markers
    assert history_rows(engine) == [("Paris", "Inferred"), ("Berlin", "Current")]


def test_queued_for_adjudication(backend: Backend, oracle: RecordingOracle) -> None:
    engine = backend.open(oracle=oracle)
    first = put(engine, "Berlin")
    receipt = put(engine, "Paris")
    assert receipt.disposition is D.QUEUED_FOR_ADJUDICATION
    assert receipt.contested_with == (first.claim_ref,) and receipt.handle_id
    assert receipt.oracle_notified is True
    assert [r.handle_id for r in oracle.requests] == [receipt.handle_id]
    assert oracle.requests[0].payload["challenger"]["value"] == "Paris"
    assert kinds(entries_of(engine, receipt.claim_ref)) == [
        (E.CLAIM_COMMITTED, "QueuedForAdjudication"),
        (E.ADJUDICATION_REQUESTED, "QueuedForAdjudication"),
    ]
    (pending,) = engine.list_pending(AGENT)
    assert (pending.handle_id, pending.challenger_ref) == (receipt.handle_id, receipt.claim_ref)
    assert pending.incumbent_refs == (first.claim_ref,) and pending.notified
    belief = engine.query_memory(AGENT, "user", "city")
    assert belief.status is BeliefStatus.CONTESTED
    assert Marker.QUEUED_FOR_ADJUDICATION in belief.markers


def test_contested(engine: Engine) -> None:
    first = put(engine, "Berlin")
    receipt = put(engine, "Paris")
    assert (receipt.disposition, receipt.contested_with) == (D.CONTESTED, (first.claim_ref,))
    assert ledger(engine)[-1].rationale == {
        "route": "E6",
        "reason": "conflict",
        "contested_with": [first.claim_ref],
    }
    belief = engine.query_memory(AGENT, "user", "city")
    assert belief.status is BeliefStatus.CONTESTED and belief.primary is None
    assert sorted(s.value for s in belief.alternatives) == ["Berlin", "Paris"]
    assert history_rows(engine) == [("Berlin", "Contested"), ("Paris", "Contested")]


def test_pending_conflict(engine: Engine) -> None:
    put(engine, "Alice", "acme", "ceo", criticality="High", value_confidence=0.9)
    receipt = put(engine, "Bob", "acme", "ceo", value_confidence=0.6)
    assert (receipt.disposition, receipt.reason) == (D.PENDING_CONFLICT, "criticality_floor")
    belief = engine.query_memory(AGENT, "acme", "ceo")
    assert belief.value == "Alice" and belief.status is BeliefStatus.TIMING_UNCERTAIN
    assert Marker.PENDING_CONFLICT in belief.markers
    assert [s.value for s in belief.pending] == ["Bob"]
    assert history_rows(engine, "acme", "ceo") == [("Alice", "Current"), ("Bob", "Pending")]
    # a corroborated challenger with enough confidence goes through E5/E6
    again = put(engine, "Bob", "acme", "ceo", value_confidence=0.95)
    assert again.disposition is D.CONTESTED
    alice = engine.query_history(AGENT, "acme", "ceo").entries[0]
    engine.end(AGENT, alice.claim_ref, "2025-06-01")
    belief = engine.query_memory(AGENT, "acme", "ceo")
    assert belief.value == "Bob"  # the held-back value won: no PendingConflict marker any more
    assert Marker.PENDING_CONFLICT not in belief.markers and [s.value for s in belief.pending] == [
        "Bob"
    ]


def test_pending_review(engine: Engine) -> None:
    parent = put(engine, "Berlin")
    child = put(
        engine,
        "Germany",
        "user",
        "country",
        provenance="ModelDerived",
        derived_from=[parent.claim_ref],
    )
    assert child.disposition is D.COMMITTED_INFERRED
    engine.end(AGENT, parent.claim_ref, "2025-06-01")
    assert kinds(entries_of(engine, child.claim_ref))[-1] == (
        E.DEPENDENT_FLAGGED_PENDING_REVIEW,
        "PendingReview",
    )
    belief = engine.query_memory(AGENT, "user", "country")
    assert belief.value == "Germany" and Marker.PENDING_REVIEW in belief.markers
    (entry,) = engine.query_history(AGENT, "user", "country")
    assert entry.state is D.PENDING_REVIEW and entry.status is HistoryStatus.CURRENT
    put(engine, "Germany", "user", "country")  # authoritative corroboration clears the flag
    assert Marker.PENDING_REVIEW not in engine.query_memory(AGENT, "user", "country").markers


def test_pending_low_confidence(engine: Engine) -> None:
    receipt = put(engine, "Rome", value_confidence=0.1)
    assert (receipt.disposition, receipt.reason) == (D.PENDING_LOW_CONFIDENCE, "low_confidence")
    belief = engine.query_memory(AGENT, "user", "city")
    assert belief.status is BeliefStatus.NO_BELIEF and belief.reason == "no_claims"
    assert [s.value for s in belief.pending] == ["Rome"]
    assert history_rows(engine) == [("Rome", "Pending")]


def test_quarantined(engine: Engine) -> None:
    receipt = put(engine, "Oslo", valid_from="2024-01-01", valid_until="2023-01-01")
    assert (receipt.disposition, receipt.reason) == (D.QUARANTINED, "incoherent_window")
    assert engine.query_memory(AGENT, "user", "city").status is BeliefStatus.NO_BELIEF
    assert history_rows(engine) == [("Oslo", "Quarantined")]


def test_superseded(engine: Engine) -> None:
    receipt = put(engine, "Berlin", valid_from="2020-01-01")
    ended = engine.end(AGENT, receipt.claim_ref, "2024-01-01")
    assert (ended.disposition, ended.reason, ended.no_op) == (D.SUPERSEDED, "bound", False)
    assert kinds(entries_of(engine, receipt.claim_ref))[-1] == (E.VALIDITY_ASSERTED, "Superseded")
    assert engine.query_memory(AGENT, "user", "city").reason == "window_ended"
    assert engine.query_memory(AGENT, "user", "city", valid_at="2022").value == "Berlin"
    assert history_rows(engine) == [("Berlin", "Ended")]
    (entry,) = engine.query_history(AGENT, "user", "city")
    assert entry.valid_until_display == "2024-01-01"


def test_invalidated(engine: Engine) -> None:
    receipt = put(engine, "Berlin", valid_from="2020-01-01")
    result = engine.invalidate(AGENT, receipt.claim_ref)
    assert (result.disposition, result.reason) == (D.INVALIDATED, "invalidated")
    for instant in ("2019", "2021", "2030"):
        belief = engine.query_memory(AGENT, "user", "city", valid_at=instant)
        assert belief.status is BeliefStatus.NO_BELIEF
    assert history_rows(engine) == [("Berlin", "Invalidated")]
    assert engine.invalidate(AGENT, receipt.claim_ref).no_op


def test_reinstated(engine: Engine) -> None:
    receipt = put(engine, "Berlin", valid_from="2020-01-01")
    engine.end(AGENT, receipt.claim_ref, "2024-01-01")
    reopened = engine.reopen(AGENT, receipt.claim_ref)
    assert (reopened.disposition, reopened.no_op) == (D.REINSTATED, False)
    assert kinds(entries_of(engine, receipt.claim_ref))[-1] == (E.VALIDITY_ASSERTED, "Reinstated")
    belief = engine.query_memory(AGENT, "user", "city")
    assert belief.value == "Berlin" and belief.status is BeliefStatus.RESOLVED
    assert engine.reopen(AGENT, receipt.claim_ref).no_op  # nothing bound any more


def test_rejected(engine: Engine) -> None:
    put(engine, "Berlin")
    receipt = engine.ingest(request("x", subject=""))
    assert (receipt.disposition, receipt.reason) == (D.REJECTED, "empty_key")
    last = ledger(engine)[-1]
    assert (last.event_kind, last.claim_ref) == (E.CLAIM_REJECTED, None)
    assert last.rationale["request_ref"] == receipt.claim_ref
    assert last.rationale["route"] == "V" and last.rationale["request"]["value"] == "x"
    assert (last.subject, last.predicate) == (None, None)  # on no line
    with pytest.raises(ValidationError, match="subject: must not be empty"):
        engine.query_history(AGENT, "", "city")  # no claim has an empty key: not a read
    assert engine.query_memory(AGENT, "user", "city").value == "Berlin"


def test_every_disposition_is_reached(backend: Backend, oracle: RecordingOracle) -> None:
    """One stream through the public API that produces all twelve dispositions."""
    engine = backend.open(oracle=oracle)
    seen: set[Disposition] = set()
    parent = put(engine, "Berlin")
    seen.add(parent.disposition)
    seen.add(put(engine, "Paris").disposition)  # queued (oracle configured)
    outcome = engine.submit_adjudication(str(oracle.requests[0].handle_id), "Unknown")
    seen.add(outcome.disposition)  # Contested
    child = put(
        engine,
        "DE",
        "user",
        "country",
        provenance=Provenance.MODEL_DERIVED,
        derived_from=[parent.claim_ref],
    )
    seen.add(child.disposition)
    put(engine, "Alice", "acme", "ceo", criticality=Criticality.CRITICAL, value_confidence=0.9)
    seen.add(put(engine, "Bob", "acme", "ceo", value_confidence=0.5).disposition)
    seen.add(put(engine, "x", "a", "b", value_confidence=0.0).disposition)
    seen.add(put(engine, "x", "a", "c", valid_from="2020", valid_until="2019").disposition)
    seen.add(engine.end(AGENT, parent.claim_ref, "2030").disposition)
    seen.add(engine.reopen(AGENT, parent.claim_ref).disposition)
    seen.add(engine.invalidate(AGENT, parent.claim_ref).disposition)
    seen.add(engine.ingest(request(float("nan"))).disposition)
    flagged = {e.disposition for e in ledger(engine)}
    assert seen | flagged == set(Disposition)
