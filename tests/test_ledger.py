"""What the ledger records: the rationale of every kind of entry, the outbox request the oracle
gets, and the storable echo of a rejected request — written out by hand from the reference
(§4 "What each ledger entry's rationale holds", §6), entry by entry."""

from __future__ import annotations

import math
from datetime import timedelta
from typing import Any

from conftest import Backend, RecordingOracle
from support import AGENT, ledger, put

from mempill import Disposition, EngineConfig, EventKind, LedgerEntry, Verdict
from mempill.core.canonical import safe_json

D = Disposition
E = EventKind


def rationale(entries: list[LedgerEntry], kind: EventKind) -> list[dict[str, Any]]:
    return [e.rationale for e in entries if e.event_kind is kind]


def test_commits_rejections_and_echoes(backend: Backend) -> None:
    engine = backend.open()
    first = put(engine, "Berlin")
    rival = put(engine, "Paris")
    bad = put(engine, float("nan"))
    echo = put(engine, "Berlin", provenance="RecallReEntry", derived_from=[first.claim_ref])
    entries = ledger(engine)
    assert [e.rationale for e in entries[:2]] == [
        {"route": "E2", "reason": "first_authoritative"},
        {"route": "E6", "reason": "conflict", "contested_with": [first.claim_ref]},
    ]
    assert [(e.request_ref, e.claim_ref) for e in entries[:2]] == [
        (first.claim_ref, first.claim_ref),
        (rival.claim_ref, rival.claim_ref),
    ]
    rejected = entries[2]
    assert (rejected.event_kind, rejected.claim_ref, rejected.request_ref) == (
        E.CLAIM_REJECTED,
        None,
        bad.claim_ref,
    )
    assert rejected.rationale == {
        "route": "V",
        "reason": "non_finite_number",
        "request_ref": bad.claim_ref,
        "request": {
            "agent_id": AGENT,
            "subject": "user",
            "predicate": "city",
            "provenance": "External/UserAsserted",
            "cardinality": "Functional",
            "criticality": "Medium",
            "value_confidence": 1.0,
            "valid_time_confidence": None,
            "derived_from": [],
            "value": "nan",
        },
    }
    recall = entries[3]
    assert (recall.event_kind, recall.claim_ref) == (E.RECALL_RE_ENTRY_DETECTED, first.claim_ref)
    assert echo.claim_ref == first.claim_ref
    assert recall.rationale == {
        "route": "R1",
        "reason": "recall_echo",
        "request_ref": recall.request_ref,
    }
    assert recall.request_ref not in (None, first.claim_ref)


def test_an_oversized_value_is_left_out_of_the_echo(backend: Backend) -> None:
    engine = backend.open(config=EngineConfig(max_value_bytes=16))
    receipt = put(engine, "x" * 40)
    (entry,) = ledger(engine)
    assert entry.rationale["reason"] == "value_too_large"
    assert "value" not in entry.rationale["request"]
    assert entry.rationale["request_ref"] == receipt.claim_ref


def test_the_echo_of_a_request_is_storable_and_bounded() -> None:
    assert safe_json("a\x00b") == "a\\x00b"
    assert safe_json("\ud800x") == "\\ud800x"
    assert safe_json("y" * 1024) == "y" * 1024
    assert safe_json("y" * 1025) == "y" * 1024 + "…"
    assert safe_json(list(range(20))) == list(range(16))
    assert safe_json({str(i): i for i in range(20)}) == {str(i): i for i in range(16)}
    assert safe_json({1: "key"}) == {"1": "key"}
    assert safe_json([math.inf, -math.inf, 1.5, True, None]) == ["inf", "-inf", 1.5, True, None]
    nested: Any = "leaf"
    for _ in range(12):
        nested = [nested]
    echoed = safe_json(nested)
    for _ in range(9):
        echoed = echoed[0]
    assert echoed == "…"  # levels below the eighth become an ellipsis
    assert safe_json(b"raw") == repr(b"raw")
    assert safe_json(object()).startswith("<object object")
    assert len(safe_json(type("Long", (), {"__repr__": lambda self: "r" * 500})())) == 256


def test_validity_assertions_and_their_rejections(backend: Backend) -> None:
    engine = backend.open()
    claim = put(engine, "Berlin", valid_from="2020")
    end = engine.end(AGENT, claim.claim_ref, "2024-09")
    early = engine.end(AGENT, claim.claim_ref, "2019")
    reopen = engine.reopen(AGENT, claim.claim_ref)
    invalid = engine.invalidate(AGENT, claim.claim_ref)
    entries = ledger(engine)[1:]
    assert [(e.event_kind, e.disposition) for e in entries] == [
        (E.VALIDITY_ASSERTED, D.SUPERSEDED),
        (E.CLAIM_REJECTED, D.REJECTED),
        (E.VALIDITY_ASSERTED, D.REINSTATED),
        (E.VALIDITY_ASSERTED, D.INVALIDATED),
    ]
    assert [e.rationale for e in entries] == [
        {
            "route": "Bound",
            "reason": "bound",
            "assertion_ref": end.assertion_ref,
            "bound_at": "2024-09-01T00:00:00.000000Z",
        },
        {
            "route": "Bound",
            "reason": "bound_before_start",
            "target": claim.claim_ref,
            "request_ref": entries[1].request_ref,
        },
        {"route": "Reopen", "reason": "reopened", "assertion_ref": reopen.assertion_ref},
        {"route": "Invalidate", "reason": "invalidated", "assertion_ref": invalid.assertion_ref},
    ]
    assert early.disposition is D.REJECTED and entries[1].claim_ref is None
    assert all(e.request_ref is not None for e in entries)
    assert len({e.request_ref for e in entries}) == 4  # one call, one request ref


def test_the_oracle_loop_entries_and_the_request_it_sends(
    backend: Backend, oracle: RecordingOracle
) -> None:
    engine = backend.open(oracle=oracle, config=EngineConfig(default_adjudication_ttl_seconds=60))
    incumbent = put(engine, "Berlin", valid_from="2020")
    challenger = put(engine, "Paris", valid_from="2024")
    handle = challenger.handle_id
    assert handle is not None
    entries = ledger(engine)
    committed, requested = entries[1], entries[2]
    assert committed.rationale == {
        "route": "E5",
        "reason": "oracle",
        "contested_with": [incumbent.claim_ref],
        "handle_id": handle,
    }
    assert (requested.event_kind, requested.claim_ref, requested.request_ref) == (
        E.ADJUDICATION_REQUESTED,
        challenger.claim_ref,
        None,
    )
    assert requested.rationale == {
        "route": "E5",
        "reason": "oracle",
        "handle_id": handle,
        "incumbents": [incumbent.claim_ref],
    }
    (sent,) = oracle.requests
    assert (sent.handle_id, sent.agent_id, sent.subject, sent.predicate) == (
        handle,
        AGENT,
        "user",
        "city",
    )
    payload = sent.payload
    assert set(payload) == {"line", "challenger", "incumbents", "rule", "queued_at", "expires_at"}
    assert payload["line"] == {"agent_id": AGENT, "subject": "user", "predicate": "city"}
    assert (payload["challenger"]["claim_ref"], payload["challenger"]["value"]) == (
        challenger.claim_ref,
        "Paris",
    )
    assert [(c["claim_ref"], c["value"]) for c in payload["incumbents"]] == [
        (incumbent.claim_ref, "Berlin")
    ]
    assert payload["rule"] == "E5"
    assert payload["queued_at"] == requested.recorded_at.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    assert payload["expires_at"] == "2026-01-01T00:01:01.000000Z"  # queued 00:00:01, ttl 60 s
    outcome = engine.submit_adjudication(handle, Verdict.AFFIRM, "External:ExternalFirstHand")
    bound, resolved = ledger(engine)[3:5]
    assert bound.rationale == {
        "route": "oracle",
        "reason": "bound",
        "assertion_ref": bound.rationale["assertion_ref"],
        "bound_at": "2024-01-01T00:00:00.000000Z",
        "handle_id": handle,
    }
    assert (bound.claim_ref, bound.request_ref) == (incumbent.claim_ref, None)
    assert resolved.rationale == {
        "route": "oracle",
        "reason": "oracle_affirm",
        "handle_id": handle,
        "verdict": "Affirm",
        "evidence": "External/ExternalFirstHand",
        "side": "challenger",
        "superseded": [incumbent.claim_ref],
    }
    assert outcome.superseded == (incumbent.claim_ref,) and resolved.request_ref is not None


def test_unknown_verdicts_and_expiry(backend: Backend, oracle: RecordingOracle) -> None:
    engine = backend.open(oracle=oracle, config=EngineConfig(default_adjudication_ttl_seconds=60))
    incumbent = put(engine, "Berlin", valid_from="2020")
    first = put(engine, "Paris", valid_from="2024")
    second = put(engine, "Rome", valid_from="2024", subject="bob")
    third = put(engine, "Oslo", valid_from="2025", subject="bob")
    assert first.handle_id and third.handle_id and second.disposition is D.COMMITTED_CHEAP
    engine.submit_adjudication(first.handle_id, "Unknown")
    unknown = rationale(ledger(engine), E.ADJUDICATION_RESOLVED)
    base = {"route": "oracle", "reason": "oracle_unknown", "handle_id": first.handle_id}
    base |= {"verdict": "Unknown", "evidence": "External/UserAsserted"}
    assert unknown == [
        {**base, "side": "incumbent"},
        {**base, "side": "challenger", "superseded": []},
    ]
    resolved = [e for e in ledger(engine) if e.event_kind is E.ADJUDICATION_RESOLVED]
    assert [e.claim_ref for e in resolved] == [incumbent.claim_ref, first.claim_ref]
    assert resolved[0].request_ref is None and resolved[1].request_ref is not None
    backend.clock.advance(timedelta(minutes=5))
    assert engine.sweep_expired() == 1
    (expired,) = [e for e in ledger(engine) if e.event_kind is E.ADJUDICATION_EXPIRED]
    assert (expired.claim_ref, expired.disposition, expired.request_ref) == (
        third.claim_ref,
        D.CONTESTED,
        None,
    )
    assert expired.rationale == {
        "route": "oracle",
        "reason": "expired",
        "handle_id": third.handle_id,
    }


def test_the_cascade_entries(backend: Backend) -> None:
    engine = backend.open()
    root = put(engine, "Berlin", subject="root")
    child = put(engine, "c", subject="c", provenance="ModelDerived", derived_from=[root.claim_ref])
    grand = put(engine, "g", subject="g", provenance="ModelDerived", derived_from=[child.claim_ref])
    engine.invalidate(AGENT, root.claim_ref)
    flags = [e for e in ledger(engine) if e.event_kind is E.DEPENDENT_FLAGGED_PENDING_REVIEW]
    assert [(e.claim_ref, e.disposition, e.request_ref) for e in flags] == [
        (child.claim_ref, D.PENDING_REVIEW, None),
        (grand.claim_ref, D.PENDING_REVIEW, None),
    ]
    assert [e.rationale for e in flags] == [
        {
            "route": "cascade",
            "reason": "parent_invalidated",
            "root": root.claim_ref,
            "parent": root.claim_ref,
        },
        {
            "route": "cascade",
            "reason": "parent_invalidated",
            "root": root.claim_ref,
            "parent": child.claim_ref,
        },
    ]


def test_validity_receipts_for_rejections_and_no_ops(backend: Backend) -> None:
    """Every branch of end / reopen / invalidate, receipt by receipt."""
    engine = backend.open()
    live = put(engine, "Berlin", valid_from="2020").claim_ref
    held = put(engine, "Rome", subject="held", value_confidence=0.1).claim_ref  # not live
    receipts = {
        "model_end": engine.end(AGENT, live, "2024", provenance="ModelDerived"),
        "model_reopen": engine.reopen(AGENT, live, provenance="RecallReEntry"),
        "model_invalidate": engine.invalidate(AGENT, live, provenance="ModelDerived"),
        "end_not_live": engine.end(AGENT, held, "2024"),
        "reopen_not_live": engine.reopen(AGENT, held),
        "nothing_bound": engine.reopen(AGENT, live),
        "end": engine.end(AGENT, live, "2024"),
        "already_bound": engine.end(AGENT, live, "2024"),
        "invalidate": engine.invalidate(AGENT, held),
        "already_invalidated": engine.invalidate(AGENT, held),
    }
    summary = {
        name: (r.disposition, r.reason, r.no_op, r.assertion_ref is not None)
        for name, r in receipts.items()
    }
    assert summary == {
        "model_end": (D.REJECTED, "bound_requires_external", False, False),
        "model_reopen": (D.REJECTED, "bound_requires_external", False, False),
        "model_invalidate": (D.REJECTED, "bound_requires_external", False, False),
        "end_not_live": (D.REJECTED, "claim_not_live", False, False),
        "reopen_not_live": (D.REJECTED, "claim_not_live", False, False),
        "nothing_bound": (D.REINSTATED, "nothing_bound", True, False),
        "end": (D.SUPERSEDED, "bound", False, True),
        "already_bound": (D.SUPERSEDED, "already_bound", True, False),
        "invalidate": (D.INVALIDATED, "invalidated", False, True),
        "already_invalidated": (D.INVALIDATED, "already_invalidated", True, False),
    }
    assert {r.claim_ref for r in receipts.values()} == {live, held}
    bound = receipts["end"].effective_at
    assert bound is not None and receipts["already_bound"].effective_at == bound
    assert receipts["nothing_bound"].effective_at is None
    rejected = [e for e in ledger(engine) if e.event_kind is E.CLAIM_REJECTED]
    assert [e.rationale["route"] for e in rejected] == [
        "Bound",
        "Reopen",
        "Invalidate",
        "Bound",
        "Reopen",
    ]
    assert [e.rationale["target"] for e in rejected] == [live, live, live, held, held]
    assert all(e.subject == "user" or e.subject == "held" for e in rejected)


def test_an_affirm_outcome_and_the_rows_it_writes(
    backend: Backend, oracle: RecordingOracle
) -> None:
    engine = backend.open(oracle=oracle)
    ended = put(engine, "Oslo", valid_from="2019", valid_until="2019-06")  # conflicts with nothing
    incumbent = put(engine, "Berlin", valid_from="2020")
    challenger = put(engine, "Paris", valid_from="2024")
    handle = challenger.handle_id
    assert handle is not None
    outcome = engine.submit_adjudication(handle, "Affirm", "External:ExternalFirstHand")
    assert (outcome.handle_id, outcome.agent_id, outcome.verdict, outcome.claim_ref) == (
        handle,
        AGENT,
        Verdict.AFFIRM,
        challenger.claim_ref,
    )
    assert (outcome.disposition, outcome.superseded) == (D.COMMITTED_CHEAP, (incumbent.claim_ref,))
    with engine.store.read(AGENT) as reader:
        (bound,) = reader.all_assertions()
        edges = reader.all_edges()
    assert (bound.claim_ref, bound.kind.value, bound.confidence, bound.handle_id) == (
        incumbent.claim_ref,
        "Bound",
        1.0,
        handle,
    )
    assert bound.provenance.value == "External/ExternalFirstHand"
    assert [(e.kind.value, e.from_ref, e.to_ref) for e in edges] == [
        ("Supersedes", challenger.claim_ref, incumbent.claim_ref)
    ]
    assert ended.claim_ref not in outcome.superseded


def test_an_affirm_skips_incumbents_that_no_longer_conflict_and_bounds_the_rest(
    backend: Backend, oracle: RecordingOracle
) -> None:
    engine = backend.open(oracle=oracle)
    first = put(engine, "Berlin")  # untrusted: conflicts with everything
    second = put(engine, "Rome")
    challenger = put(engine, "Paris")
    assert challenger.contested_with == (first.claim_ref,) or challenger.handle_id is not None
    engine.invalidate(AGENT, first.claim_ref)  # the first incumbent is gone before the verdict
    assert challenger.handle_id is not None
    pending = [p for p in engine.list_pending(AGENT) if p.handle_id == challenger.handle_id]
    assert pending[0].incumbent_refs == (first.claim_ref, second.claim_ref)
    outcome = engine.submit_adjudication(challenger.handle_id, "Affirm")
    assert outcome.superseded == (second.claim_ref,)


def test_an_affirm_leaves_an_incumbent_already_ending_by_then(
    backend: Backend, oracle: RecordingOracle
) -> None:
    """An untrusted challenger bounds at now; an incumbent already bound at now stays as it is."""
    engine = backend.open(oracle=oracle)  # the clock steps 1 s per call
    incumbent = put(engine, "Berlin", valid_from="2020")  # 00:00:00
    challenger = put(engine, "Paris")  # 00:00:01, untrusted: queued
    engine.end(
        AGENT, incumbent.claim_ref, "2026-01-01T00:00:03Z"
    )  # 00:00:02, bound at the verdict's now
    assert challenger.handle_id is not None
    outcome = engine.submit_adjudication(challenger.handle_id, "Affirm")  # 00:00:03
    assert outcome.superseded == ()
    with engine.store.read(AGENT) as reader:
        assert len(reader.all_assertions()) == 1  # only the end: no second bound


def test_the_entries_of_an_unknown_verdict_name_their_line(
    backend: Backend, oracle: RecordingOracle
) -> None:
    engine = backend.open(oracle=oracle)
    put(engine, "Berlin", valid_from="2020")
    challenger = put(engine, "Paris", valid_from="2024")
    assert challenger.handle_id is not None
    engine.submit_adjudication(challenger.handle_id, "Unknown")
    resolved = [e for e in ledger(engine) if e.event_kind is E.ADJUDICATION_RESOLVED]
    assert [(e.subject, e.predicate) for e in resolved] == [("user", "city"), ("user", "city")]
