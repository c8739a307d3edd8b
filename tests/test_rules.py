"""reference §4 rule by rule: V, Q1–Q2, R0–R2, M1–M2, E1–E6 and the validity assertions."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from conftest import Backend
from support import AGENT, entries_of, history_rows, kinds, ledger, put, request, values

from mempill import (
    BeliefStatus,
    ConflictError,
    Disposition,
    Engine,
    EngineConfig,
    EventKind,
    LedgerEntry,
    Marker,
    NotFoundError,
)

D = Disposition


def nested(depth: int) -> list[object]:
    """A value nested `depth` lists deep (64 is the limit)."""
    value: list[object] = []
    for _ in range(depth - 1):
        value = [value]
    return value


@pytest.mark.parametrize(
    ("fields", "reason"),
    [
        ({"subject": ""}, "empty_key"),
        ({"predicate": "p" * 1025}, "key_too_long"),
        ({"subject": "a\x00b"}, "invalid_text"),
        ({"value": {"k": "\ud800"}}, "invalid_text"),
        ({"value": [1.0, float("inf")]}, "non_finite_number"),
        ({"value": "x" * 70_000}, "value_too_large"),
        ({"value": nested(65)}, "value_too_deep"),
        ({"value_confidence": 1.5}, "confidence_out_of_range"),
        ({"valid_time_confidence": -0.1}, "confidence_out_of_range"),
        ({"value_confidence": float("nan")}, "confidence_out_of_range"),
        ({"derived_from": [str(uuid.uuid4())]}, "unknown_parent"),
    ],
)
def test_v_rejects_with_reason_and_no_claim_row(
    engine: Engine, fields: dict[str, object], reason: str
) -> None:
    put(engine, "Berlin")
    body = request(
        "Paris",
        **{
            k: v
            for k, v in fields.items()
            if k in ("value_confidence", "valid_time_confidence", "derived_from")
        },
    )
    body.update({k: v for k, v in fields.items() if k in ("subject", "predicate", "value")})
    receipt = engine.ingest(body)
    assert (receipt.disposition, receipt.reason) == (D.REJECTED, reason)
    assert ledger(engine)[-1].event_kind is EventKind.CLAIM_REJECTED
    assert history_rows(engine) == [("Berlin", "Current")]


def test_v_self_parent(engine: Engine) -> None:
    ref = str(uuid.uuid4())
    receipt = engine.ingest(
        request("x", claim_ref=ref, derived_from=[ref], provenance="ModelDerived")
    )
    assert (receipt.disposition, receipt.reason) == (D.REJECTED, "self_parent")


def test_v_depth_64_is_accepted(engine: Engine) -> None:
    value: object = 0
    for _ in range(64):
        value = [value]
    assert put(engine, value).disposition is D.COMMITTED_CHEAP


def test_q1_future_start_is_not_incoherent(engine: Engine) -> None:
    receipt = put(engine, "Mars", valid_from="2090-01-01")
    assert receipt.disposition is D.COMMITTED_CHEAP
    belief = engine.query_memory(AGENT, "user", "city")
    assert (belief.status, belief.reason) == (BeliefStatus.NO_BELIEF, "not_yet_valid")
    assert engine.query_memory(AGENT, "user", "city", valid_at="2091").value == "Mars"
    assert history_rows(engine) == [("Mars", "Pending")]


def test_q1_equal_bounds_quarantine_whatever_the_confidence(engine: Engine) -> None:
    receipt = put(engine, "x", valid_from="2020", valid_until="2020", valid_time_confidence=0.1)
    assert (receipt.disposition, receipt.reason) == (D.QUARANTINED, "incoherent_window")


def test_q2_recall_burst(backend: Backend) -> None:
    engine = backend.open(
        config=EngineConfig(quarantine_burst_threshold=3, burst_window_seconds=60)
    )
    origin = put(engine, "Berlin")
    recall = {"provenance": "RecallReEntry", "derived_from": [origin.claim_ref]}
    first = put(engine, "Berlin", **recall)
    second = put(engine, "Berlin", **recall)
    third = put(engine, "Berlin", **recall)
    assert [r.disposition for r in (first, second, third)] == [
        D.COMMITTED_CHEAP,
        D.COMMITTED_CHEAP,
        D.QUARANTINED,
    ]
    assert third.reason == "recall_burst"
    backend.clock.advance(timedelta(seconds=120))  # outside the window the burst is over
    assert put(engine, "Berlin", **recall).disposition is D.COMMITTED_CHEAP


def test_r0_unknown_recall_ref(engine: Engine) -> None:
    receipt = put(engine, "Berlin", provenance="RecallReEntry", derived_from=[str(uuid.uuid4())])
    assert (receipt.disposition, receipt.reason) == (D.REJECTED, "unknown_recall_ref")
    assert ledger(engine)[-1].rationale["route"] == "R0"


def test_r1_echo_writes_no_claim_and_does_not_corroborate(engine: Engine, backend: Backend) -> None:
    origin = put(engine, "Berlin")
    backend.clock.advance(timedelta(days=40))
    echo = put(engine, "Berlin", provenance="RecallReEntry", derived_from=[origin.claim_ref])
    assert (echo.disposition, echo.claim_ref) == (D.COMMITTED_CHEAP, origin.claim_ref)
    assert len(engine.query_history(AGENT, "user", "city")) == 1
    assert kinds(entries_of(engine, origin.claim_ref))[-1] == (
        EventKind.RECALL_RE_ENTRY_DETECTED,
        "CommittedCheap",
    )
    belief = engine.query_memory(AGENT, "user", "city")
    assert belief.corroboration_count == 0
    assert (
        belief.currency is not None and belief.currency.value == "AgingUnconfirmed"
    )  # not refreshed


def test_r2_mutated_recall_is_inferred_and_tainted(engine: Engine) -> None:
    origin = put(engine, "Berlin", "user", "home")
    receipt = put(
        engine, "Berlin-Mitte", provenance="RecallReEntry", derived_from=[origin.claim_ref]
    )
    assert (receipt.disposition, receipt.reason) == (D.COMMITTED_INFERRED, "recall_mutated")
    belief = engine.query_memory(AGENT, "user", "city")
    assert belief.value == "Berlin-Mitte"
    assert {Marker.RECALL_TAINTED, Marker.INFERRED} <= set(belief.markers)


def test_m1_unanchored_model_claim_never_contests(engine: Engine) -> None:
    put(engine, "Berlin")
    receipt = put(engine, "Paris", provenance="ModelDerived")
    assert (receipt.disposition, receipt.reason) == (D.COMMITTED_INFERRED, "unanchored")
    assert engine.query_memory(AGENT, "user", "city").value == "Berlin"


def test_m2_anchored_model_claim_is_handled_as_external(engine: Engine) -> None:
    evidence = put(engine, "moved to Paris", "user", "note")
    put(engine, "Berlin")
    receipt = put(engine, "Paris", provenance="ModelDerived", derived_from=[evidence.claim_ref])
    assert receipt.disposition is D.CONTESTED
    assert ledger(engine)[-1].rationale["route"] == "M2/E6"
    (row,) = [e for e in engine.query_history(AGENT, "user", "city") if e.value == "Paris"]
    assert row.status.value == "Contested"


def test_m2_depth_beyond_cap_is_unanchored(engine: Engine) -> None:
    ref = put(engine, "root", "x", "y").claim_ref
    for depth in range(3):  # depths 1, 2, 3
        ref = put(
            engine, f"d{depth}", "x", f"z{depth}", provenance="ModelDerived", derived_from=[ref]
        ).claim_ref
    put(engine, "Berlin")
    receipt = put(engine, "Paris", provenance="ModelDerived", derived_from=[ref])  # depth 4
    assert (receipt.disposition, receipt.reason) == (D.COMMITTED_INFERRED, "unanchored")
    belief = engine.query_memory(AGENT, "x", "z2")  # depth 3: at the currency cap
    assert Marker.LOW_DERIVATION_ANCHOR not in belief.markers
    deep = put(engine, "d4", "x", "z9", provenance="ModelDerived", derived_from=[ref])
    assert deep.disposition is D.COMMITTED_INFERRED
    assert Marker.LOW_DERIVATION_ANCHOR in engine.query_memory(AGENT, "x", "z9").markers


def test_e2_corroboration_raises_count_and_refreshes(engine: Engine, backend: Backend) -> None:
    put(engine, "Berlin")
    backend.clock.advance(timedelta(days=40))
    receipt = put(engine, "Berlin", provenance="External:ExternalFirstHand")
    assert (receipt.disposition, receipt.reason) == (D.COMMITTED_CHEAP, "corroboration")
    belief = engine.query_memory(AGENT, "user", "city")
    assert belief.corroboration_count == 1 and belief.currency is not None
    assert belief.currency.value == "Fresh"
    assert history_rows(engine) == [("Berlin", "Current"), ("Berlin", "Current")]


def test_e2_set_members_do_not_contest(engine: Engine) -> None:
    for language in ("en", "de", "fr"):
        receipt = put(engine, language, "user", "speaks", cardinality="SetValued")
        assert receipt.disposition is D.COMMITTED_CHEAP
    belief = engine.query_memory(AGENT, "user", "speaks")
    assert belief.status is BeliefStatus.RESOLVED
    assert sorted(m.value for m in belief.members) == ["de", "en", "fr"]
    assert belief.value == "fr"  # the latest member is the primary


def test_e3_succession_in_any_arrival_order(engine: Engine) -> None:
    windows = [("2015", "2018", "Bonn"), ("2021", None, "Paris"), ("2018", "2021", "Berlin")]
    for start, end, city in windows:
        receipt = put(engine, city, valid_from=start, valid_until=end)
        assert receipt.disposition is D.COMMITTED_CHEAP
    assert ledger(engine)[-1].rationale["route"] == "E3"
    for instant, city in (("2016", "Bonn"), ("2019-06", "Berlin"), ("2023", "Paris")):
        assert engine.query_memory(AGENT, "user", "city", valid_at=instant).value == city
    assert [v for v, _ in history_rows(engine)] == ["Bonn", "Berlin", "Paris"]


def test_e3_needs_trusted_windows(engine: Engine) -> None:
    put(engine, "Bonn", valid_from="2015", valid_until="2018")
    receipt = put(engine, "Berlin", valid_from="2019", valid_time_confidence=0.5)  # untrusted
    assert receipt.disposition is D.CONTESTED


def test_e4_needs_higher_confidence_against_critical_incumbents(engine: Engine) -> None:
    put(engine, "Alice", "acme", "ceo", criticality="Critical", value_confidence=0.8)
    assert (
        put(engine, "Bob", "acme", "ceo", value_confidence=0.79).disposition is D.PENDING_CONFLICT
    )
    assert put(engine, "Bob", "acme", "ceo", value_confidence=0.8).disposition is D.CONTESTED


def test_end_rules(engine: Engine) -> None:
    receipt = put(engine, "Berlin", valid_from="2020-01-01")
    ref = receipt.claim_ref
    before = engine.end(AGENT, ref, "2019")
    assert (before.disposition, before.reason) == (D.REJECTED, "bound_before_start")
    assert ledger(engine)[-1].claim_ref is None  # the claim's own state is untouched
    model = engine.end(AGENT, ref, "2024", provenance="ModelDerived")
    assert (model.disposition, model.reason) == (D.REJECTED, "bound_requires_external")
    assert engine.end(AGENT, ref, "2024").no_op is False
    assert engine.end(AGENT, ref, "2024").no_op is True  # identical bound
    with pytest.raises(ConflictError):
        engine.end(AGENT, ref, "2025")
    engine.reopen(AGENT, ref)
    assert engine.end(AGENT, ref, "2025").disposition is D.SUPERSEDED
    with pytest.raises(NotFoundError):
        engine.end(AGENT, str(uuid.uuid4()), "2025")


def test_future_bound_keeps_claim_visible_before_it(engine: Engine) -> None:
    receipt = put(engine, "Berlin", valid_from="2020")
    engine.end(AGENT, receipt.claim_ref, "2090")
    assert engine.query_memory(AGENT, "user", "city").value == "Berlin"
    assert (
        engine.query_memory(AGENT, "user", "city", valid_at="2091").status is BeliefStatus.NO_BELIEF
    )


def test_ending_one_side_clears_contested(engine: Engine) -> None:
    put(engine, "Berlin")
    paris = put(engine, "Paris")
    engine.end(AGENT, paris.claim_ref, "2025-06-01")
    assert engine.query_memory(AGENT, "user", "city").value == "Berlin"
    assert engine.query_memory(AGENT, "user", "city", valid_at="2025-01-01").is_contested


def test_end_fact_bounds_the_whole_belief(backend: Backend) -> None:
    engine = backend.open(record_write_stats=True)
    put(engine, "Berlin")
    put(engine, "Berlin")
    result = engine.end_fact(AGENT, "user", "city", "2025-09")
    assert len(result.receipts) == 2 and result.value == "Berlin"
    assert engine.query_memory(AGENT, "user", "city").status is BeliefStatus.NO_BELIEF
    with pytest.raises(NotFoundError):
        engine.end_fact(AGENT, "user", "city", "2025-10")
    assert {e.valid_until_display for e in engine.query_history(AGENT, "user", "city")} == {
        "2025-09"
    }
    bounds = [e for e in ledger(engine) if e.event_kind is EventKind.VALIDITY_ASSERTED]
    assert len({e.recorded_at for e in bounds}) == 1  # one call: one tx time, one transaction
    (stat,) = engine.write_stats(AGENT)[-1:]
    assert (stat.first_seq, stat.last_seq) == (bounds[0].stream_seq, bounds[1].stream_seq)


def test_end_fact_is_all_or_nothing(engine: Engine) -> None:
    first = put(engine, "Berlin")
    put(engine, "Berlin")
    engine.end(AGENT, first.claim_ref, "2090")  # a different future bound on one of them
    with pytest.raises(ConflictError):
        engine.end_fact(AGENT, "user", "city", "2025")
    bounds = [e for e in ledger(engine) if e.event_kind is EventKind.VALIDITY_ASSERTED]
    assert len(bounds) == 1  # the other claim was not bound either
    assert history_rows(engine) == [("Berlin", "Current"), ("Berlin", "Current")]


def test_bound_before_an_untrusted_start_is_rejected(engine: Engine) -> None:
    receipt = put(engine, "Berlin", valid_from="2020", valid_time_confidence=0.5)
    result = engine.end(AGENT, receipt.claim_ref, "2019")
    assert (result.disposition, result.reason) == (D.REJECTED, "bound_before_start")


def test_end_fact_refuses_to_guess(engine: Engine) -> None:
    put(engine, "Berlin")
    put(engine, "Paris")
    with pytest.raises(ConflictError):
        engine.end_fact(AGENT, "user", "city", "2025")
    engine.end_fact(AGENT, "user", "city", "2025", value="Paris")
    assert engine.query_memory(AGENT, "user", "city").value == "Berlin"


def test_cascade_is_transitive_and_skips_dead_claims(engine: Engine) -> None:
    root = put(engine, "r", "s", "root")
    mid = put(engine, "m", "s", "mid", provenance="ModelDerived", derived_from=[root.claim_ref])
    leaf = put(engine, "l", "s", "leaf", provenance="ModelDerived", derived_from=[mid.claim_ref])
    dead = put(engine, "d", "s", "dead", provenance="ModelDerived", derived_from=[root.claim_ref])
    engine.invalidate(AGENT, dead.claim_ref)
    engine.invalidate(AGENT, root.claim_ref)
    for claim in (mid, leaf):
        assert kinds(entries_of(engine, claim.claim_ref))[-1] == (
            EventKind.DEPENDENT_FLAGGED_PENDING_REVIEW,
            "PendingReview",
        )
    assert kinds(entries_of(engine, dead.claim_ref))[-1] == (
        EventKind.VALIDITY_ASSERTED,
        "Invalidated",
    )
    assert Marker.PENDING_REVIEW in engine.query_memory(AGENT, "s", "leaf").markers


def test_ingest_many_equals_one_by_one(backend: Backend) -> None:
    from mempill import SeededIds, SteppingClock

    def stream(agent: str) -> list[dict[str, object]]:
        return [
            request("Berlin", agent_id=agent),
            request("Berlin", agent_id=agent),
            request("Paris", agent_id=agent),
            request("", subject="", agent_id=agent),
            request("x", value_confidence=0.1, agent_id=agent),
            request("en", "user", "speaks", cardinality="SetValued", agent_id=agent),
            request("de", "user", "speaks", cardinality="SetValued", agent_id=agent),
        ]

    start = backend.clock()
    singles_engine = backend.open(ids=SeededIds(7), clock=SteppingClock(start, timedelta(0)))
    singles = [singles_engine.ingest(r) for r in stream("one")]
    batch_engine = backend.open(ids=SeededIds(7), clock=SteppingClock(start, timedelta(0)))
    batch = batch_engine.ingest_many(stream("two"))
    assert batch == tuple(singles)
    one, two = ledger(singles_engine, "one"), ledger(batch_engine, "two")

    def shape(e: LedgerEntry) -> tuple[object, ...]:
        return (e.stream_seq, e.entry_id, e.claim_ref, e.disposition, e.rationale.get("route"))

    assert [shape(e) for e in one] == [shape(e) for e in two]


def test_ingest_many_is_one_transaction_with_one_stats_row(backend: Backend) -> None:
    engine = backend.open(record_write_stats=True)
    receipts = engine.ingest_many([request(f"v{i}", predicate=f"p{i}") for i in range(20)])
    assert len(receipts) == 20
    (stat,) = engine.write_stats(AGENT)
    assert (stat.first_seq, stat.last_seq) == (1, 20)


def test_tx_time_strictly_increases_under_a_stopped_clock(backend: Backend) -> None:
    from mempill import SteppingClock

    stopped = SteppingClock(backend.clock(), timedelta(0))
    engine = backend.open(clock=stopped)
    for value in ("a", "b", "c"):
        put(engine, value, predicate=value)
    times = [e.recorded_at for e in ledger(engine)]
    assert times[1] - times[0] == timedelta(microseconds=1) and times[2] > times[1]
    assert values(engine, predicate="c") == ["c"]  # reads see writes stamped after `now`


def test_idempotent_claim_ref(engine: Engine) -> None:
    ref = str(uuid.uuid4())
    first = engine.ingest(request("Berlin", claim_ref=ref))
    again = engine.ingest(request("Berlin", claim_ref=ref))
    assert first == again and len(ledger(engine)) == 1
