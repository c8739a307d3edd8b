"""reference §5: the fold and the four queries."""

from __future__ import annotations

from datetime import timedelta

import pytest
from conftest import Backend
from support import AGENT, ledger, put

from mempill import (
    BeliefStatus,
    Currency,
    Engine,
    EngineConfig,
    Marker,
    SeededIds,
    SteppingClock,
    ValidationError,
)


def test_as_of_sees_what_was_known_then(engine: Engine, backend: Backend) -> None:
    put(engine, "Berlin")
    known_then = ledger(engine)[-1].recorded_at
    backend.clock.advance(timedelta(days=1))
    put(engine, "Paris")
    assert engine.query_memory(AGENT, "user", "city", as_of=known_then).value == "Berlin"
    assert engine.query_memory(AGENT, "user", "city").is_contested
    history = engine.query_history(AGENT, "user", "city", as_of=known_then)
    assert [e.value for e in history] == ["Berlin"]


def test_valid_at_and_as_of_compose(engine: Engine) -> None:
    put(engine, "Bonn", valid_from="2010", valid_until="2015")
    stamp = ledger(engine)[-1].recorded_at
    put(engine, "Berlin", valid_from="2015")
    assert engine.query_memory(AGENT, "user", "city", valid_at="2012").value == "Bonn"
    assert engine.query_memory(AGENT, "user", "city", valid_at="2020").value == "Berlin"
    old = engine.query_memory(AGENT, "user", "city", as_of=stamp, valid_at="2020")
    assert (old.status, old.reason) == (BeliefStatus.NO_BELIEF, "window_ended")


def test_no_belief_reasons(engine: Engine) -> None:
    assert engine.query_memory(AGENT, "user", "city").reason == "no_claims"
    put(engine, "Bonn", valid_from="2010", valid_until="2012")
    put(engine, "Berlin", valid_from="2014", valid_until="2016")
    assert engine.query_memory(AGENT, "user", "city", valid_at="2013").reason == "window_gap"
    assert engine.query_memory(AGENT, "user", "city", valid_at="2009").reason == "not_yet_valid"
    assert engine.query_memory(AGENT, "user", "city", valid_at="2020").reason == "window_ended"


def test_resolved_needs_some_valid_time(engine: Engine) -> None:
    put(engine, "Berlin")
    assert engine.query_memory(AGENT, "user", "city").status is BeliefStatus.TIMING_UNCERTAIN
    put(engine, "Berlin", valid_from="2020", valid_time_confidence=0.2)  # untrusted, but has time
    belief = engine.query_memory(AGENT, "user", "city")
    assert belief.status is BeliefStatus.RESOLVED and belief.corroboration_count == 1


def test_currency_ages_and_corroboration_doubles_thresholds(backend: Backend) -> None:
    engine = backend.open(config=EngineConfig(corroboration_count_for_currency_boost=2))
    put(engine, "Berlin")
    backend.clock.advance(timedelta(days=31))
    assert engine.query_memory(AGENT, "user", "city").currency is Currency.AGING_UNCONFIRMED
    backend.clock.advance(timedelta(days=60))
    belief = engine.query_memory(AGENT, "user", "city")
    assert belief.currency is Currency.DECAYED
    put(engine, "Tokyo", "user", "trip")
    put(engine, "Tokyo", "user", "trip")
    put(engine, "Tokyo", "user", "trip")  # two corroborations: thresholds 60 and 180 days
    backend.clock.advance(timedelta(days=45))
    assert engine.query_memory(AGENT, "user", "trip").currency is Currency.FRESH
    backend.clock.advance(timedelta(days=100))
    assert engine.query_memory(AGENT, "user", "trip").currency is Currency.AGING_UNCONFIRMED


def test_aged_set_member_marker(engine: Engine, backend: Backend) -> None:
    put(engine, "en", "user", "speaks", cardinality="SetValued")
    backend.clock.advance(timedelta(days=40))
    put(engine, "de", "user", "speaks", cardinality="SetValued")
    belief = engine.query_memory(AGENT, "user", "speaks")
    assert Marker.AGED_SET_MEMBER in belief.markers
    assert {m.value: m.currency for m in belief.members} == {
        "en": Currency.AGING_UNCONFIRMED,
        "de": Currency.FRESH,
    }


def test_a_functional_claim_makes_the_line_functional(engine: Engine) -> None:
    put(engine, "en", "user", "speaks", cardinality="SetValued")
    put(engine, "de", "user", "speaks", cardinality="SetValued")
    receipt = put(engine, "fr", "user", "speaks")  # Functional: the line is no longer a set
    assert receipt.disposition.value == "Contested"
    assert engine.query_memory(AGENT, "user", "speaks").is_contested


def test_query_subject_sorted_by_predicate(engine: Engine) -> None:
    for predicate in ("zeta", "Alpha", "beta", "é"):
        put(engine, predicate, "user", predicate)
    put(engine, "other", "someone", "x")
    rows = engine.query_subject(AGENT, "user")
    assert [p.predicate for p in rows] == ["Alpha", "beta", "zeta", "é"]
    put(engine, "Zeta2", "user", "zeta")
    contested = engine.query_subject(AGENT, "user")[2]
    assert contested.is_contested and len(contested.alternatives) == 2


def test_audit_is_chronological_filters_then_limits(engine: Engine) -> None:
    first = put(engine, "Berlin")
    for i in range(5):
        put(engine, f"x{i}", "noise", f"p{i}")
    engine.end(AGENT, first.claim_ref, "2030")
    page = engine.query_audit(AGENT, claim_ref=first.claim_ref, limit=1)
    assert [e.stream_seq for e in page.entries] == [1] and page.next_cursor == 1
    page = engine.query_audit(AGENT, claim_ref=first.claim_ref, after_seq=page.next_cursor, limit=1)
    assert [e.stream_seq for e in page.entries] == [7] and page.next_cursor is None
    with pytest.raises(ValidationError):
        engine.query_audit(AGENT, limit=0)
    everything = engine.query_audit(AGENT, limit=100)
    assert [e.stream_seq for e in everything.entries] == list(range(1, 8))


def test_history_order_and_statuses(engine: Engine) -> None:
    put(engine, "Paris", valid_from="2021")
    put(engine, "Bonn", valid_from="2010", valid_until="2015")
    put(engine, "Berlin", valid_from="2015", valid_until="2021")
    put(engine, "Rome", value_confidence=0.1)
    assert [(e.value, e.status.value) for e in engine.query_history(AGENT, "user", "city")] == [
        ("Bonn", "Ended"),
        ("Berlin", "Ended"),
        ("Paris", "Current"),
        ("Rome", "Pending"),
    ]


def test_projection_slots_carry_display_windows(engine: Engine) -> None:
    put(engine, "Acme", "user", "employer", valid_from="2020-03", valid_until="2024")
    belief = engine.query_memory(AGENT, "user", "employer", valid_at="2021")
    assert belief.primary is not None
    assert (belief.primary.valid_from_display, belief.primary.valid_until_display) == (
        "2020-03",
        "2024",
    )
    as_dict = belief.to_dict()
    assert as_dict["primary"]["valid_from"] == "2020-03-01T00:00:00.000000Z"
    assert "<table>" in belief._repr_html_()


def test_same_stream_same_digest(backend: Backend) -> None:
    """Two runs of one stream with a fixed clock and seeded ids: byte-identical ledgers."""
    start = backend.clock()

    def run(agent: str, seed: int = 9) -> str:
        engine = backend.open(clock=SteppingClock(start, timedelta(seconds=3)), ids=SeededIds(seed))
        first = put(engine, "Berlin", agent_id=agent, valid_from="2020")
        put(engine, "Paris", agent_id=agent)
        put(engine, "x", "s", "p", agent_id=agent, value_confidence=0.1)
        engine.end(agent, first.claim_ref, "2024")
        engine.ingest_many(
            [{"agent_id": agent, "subject": "s", "predicate": "q", "value": [1, 2.5]}]
        )
        return engine.ledger_digest(agent)

    digest = run("one")
    assert run("two") == digest
    assert run("three", seed=10) != digest
