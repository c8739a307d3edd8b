"""The results, field by field: a projection and a history entry carry exactly what the
reference says (§5), and the value checks walk every item of a value (§2)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from conftest import START, Backend
from support import AGENT, put

from mempill import (
    BeliefStatus,
    Cardinality,
    Criticality,
    Currency,
    Disposition,
    Engine,
    HistoryStatus,
    Marker,
    Provenance,
)
from mempill.core.canonical import canonical_json, inspect_value


def test_a_resolved_projection_field_by_field(engine: Engine) -> None:
    first = put(engine, "Berlin", valid_from="2020-03", valid_until="2024", criticality="High")
    again = put(engine, "Berlin", valid_from="2020-03", valid_until="2024", value_confidence=0.8)
    belief = engine.query_memory(AGENT, "user", "city", valid_at="2021")
    assert (belief.agent_id, belief.subject, belief.predicate) == (AGENT, "user", "city")
    assert belief.as_of is None and belief.valid_at == datetime(2021, 1, 1, tzinfo=UTC)
    assert (belief.status, belief.reason, belief.markers) == (BeliefStatus.RESOLVED, None, ())
    assert belief.alternatives == () and belief.members == () and belief.inferred == ()
    assert belief.pending == ()
    assert (belief.currency, belief.criticality, belief.corroboration_count) == (
        Currency.FRESH,
        Criticality.HIGH,  # the highest among the believed claims
        1,
    )
    slot = belief.primary
    assert slot is not None and belief.candidates == (slot,)
    assert (slot.claim_ref, slot.value, slot.claim_refs) == (
        again.claim_ref,
        "Berlin",
        (first.claim_ref, again.claim_ref),
    )
    assert (slot.provenance, slot.cardinality, slot.criticality) == (
        Provenance.USER_ASSERTED,
        Cardinality.FUNCTIONAL,
        Criticality.MEDIUM,  # the latest claim's own
    )
    assert (slot.value_confidence, slot.valid_time_confidence) == (0.8, 1.0)  # a window: 1.0
    assert (slot.valid_from, slot.valid_until) == (
        datetime(2020, 3, 1, tzinfo=UTC),
        datetime(2024, 1, 1, tzinfo=UTC),
    )
    assert (slot.valid_from_display, slot.valid_until_display) == ("2020-03", "2024")
    assert slot.tx_time == slot.last_refreshed_at == START.replace(second=1)
    assert (slot.currency, slot.corroboration_count) == (Currency.FRESH, 1)


def test_a_contested_projection_and_an_as_of(engine: Engine) -> None:
    paris = put(engine, "Paris")
    rome = put(engine, "Rome", value_confidence=0.9)
    put(engine, "Rome")
    belief = engine.query_memory(AGENT, "user", "city")
    assert (
        belief.status is BeliefStatus.CONTESTED and belief.primary is None and belief.value is None
    )
    assert belief.is_contested
    assert [s.value for s in belief.alternatives] == ["Paris", "Rome"]  # first appearance order
    assert [s.corroboration_count for s in belief.alternatives] == [0, 1]
    assert belief.corroboration_count == 1  # the largest group's
    assert belief.candidates == belief.alternatives and belief.members == ()
    before = engine.query_memory(AGENT, "user", "city", as_of=START)
    assert before.as_of == START and before.valid_at == START
    assert (before.status, before.value) == (BeliefStatus.TIMING_UNCERTAIN, "Paris")
    assert rome.contested_with == (paris.claim_ref,)


def test_a_set_projection_lists_its_members(engine: Engine) -> None:
    for value in ("fr", "en", "fr"):
        put(engine, value, predicate="languages", cardinality="SetValued")
    belief = engine.query_memory(AGENT, "user", "languages")
    assert belief.status is BeliefStatus.TIMING_UNCERTAIN or belief.status is BeliefStatus.RESOLVED
    assert [s.value for s in belief.members] == ["fr", "en"]
    assert belief.primary is not None and belief.primary.value == "fr"  # the latest claim's group
    assert belief.candidates == belief.members and belief.alternatives == ()
    assert belief.corroboration_count == 1


def test_pending_and_inferred_slots(engine: Engine) -> None:
    put(engine, "Paris", value_confidence=0.1)
    low = engine.query_memory(AGENT, "user", "city")
    assert (low.status, low.reason) == (BeliefStatus.NO_BELIEF, "no_claims")
    assert [s.value for s in low.pending] == ["Paris"] and low.currency is None
    assert low.criticality is None and low.corroboration_count == 0
    put(engine, "Berlin")
    model = put(engine, "Oslo", provenance="ModelDerived")
    assert model.disposition is Disposition.COMMITTED_INFERRED
    belief = engine.query_memory(AGENT, "user", "city")
    assert belief.value == "Berlin" and [s.value for s in belief.inferred] == ["Oslo"]
    assert [s.value for s in belief.pending] == ["Paris"] and belief.markers == ()
    put(engine, "Rome", subject="bob", provenance="ModelDerived")
    only = engine.query_memory(AGENT, "bob", "city")
    assert only.value == "Rome" and Marker.INFERRED in only.markers and only.inferred == ()


def test_history_entries_field_by_field(engine: Engine) -> None:
    first = put(engine, "Berlin", valid_from="2020-03-15", criticality="Low", value_confidence=0.9)
    engine.end(AGENT, first.claim_ref, "2022-07")
    second = put(engine, "Munich", valid_from="2022-07", provenance="External:ExternalFirstHand")
    history = engine.query_history(AGENT, "user", "city")
    assert (history.agent_id, history.subject, history.predicate, history.as_of) == (
        AGENT,
        "user",
        "city",
        None,
    )
    assert len(history) == 2 and [e.claim_ref for e in history] == [
        first.claim_ref,
        second.claim_ref,
    ]
    ended, current = history.entries
    assert history.current() == (current,)
    assert (ended.value, ended.provenance, ended.value_confidence, ended.criticality) == (
        "Berlin",
        Provenance.USER_ASSERTED,
        0.9,
        Criticality.LOW,
    )
    assert (ended.valid_from, ended.valid_until) == (
        datetime(2020, 3, 15, tzinfo=UTC),
        datetime(2022, 7, 1, tzinfo=UTC),
    )
    assert (ended.valid_from_display, ended.valid_until_display) == ("2020-03-15", "2022-07")
    assert (ended.ingest_disposition, ended.state, ended.status) == (
        Disposition.COMMITTED_CHEAP,
        Disposition.SUPERSEDED,
        HistoryStatus.ENDED,
    )
    assert (ended.tx_time, ended.stream_seq) == (START, 1)
    assert (current.provenance, current.status, current.stream_seq) == (
        Provenance.EXTERNAL_FIRST_HAND,
        HistoryStatus.CURRENT,
        3,
    )
    assert current.valid_until is None and current.valid_until_display is None
    past = engine.query_history(AGENT, "user", "city", as_of=START)
    assert past.as_of == START and [e.status for e in past] == [HistoryStatus.CURRENT]


def test_results_as_plain_data(backend: Backend) -> None:
    engine = backend.open()
    receipt = put(engine, "Paris", valid_from="2020")
    as_dict = receipt.to_dict()
    assert as_dict["disposition"] == "CommittedCheap" and as_dict["contested_with"] == []
    belief = engine.query_memory(AGENT, "user", "city").to_dict()
    assert belief["primary"]["valid_from"] == "2020-01-01T00:00:00.000000Z"
    assert belief["markers"] == [] and belief["status"] == "Resolved"
    assert "<table>" in engine.query_memory(AGENT, "user", "city")._repr_html_()


# ---------------------------------------------------------------- value checks


def nest(depth: int, container: str) -> Any:
    value: Any = 0
    for _ in range(depth):
        value = [value] if container == "list" else {"k": value}
    return value


@pytest.mark.parametrize("container", ["list", "dict"])
def test_nesting_is_allowed_to_64_levels(container: str) -> None:
    assert inspect_value(nest(64, container), 64) is None
    assert inspect_value(nest(65, container), 64) == "value_too_deep"
    assert inspect_value(nest(3, container), 3) is None
    assert inspect_value(nest(4, container), 3) == "value_too_deep"


@pytest.mark.parametrize("good", [None, True, False, 0, 1.5, "ok", [], {}])
def test_every_item_of_a_value_is_checked_whatever_comes_first(good: Any) -> None:
    """A bad item is found whichever good items sit beside it (the walk never stops early)."""
    assert inspect_value(["\x00", good], 64) == "invalid_text"
    assert inspect_value([good, "\x00"], 64) == "invalid_text"
    assert inspect_value([float("nan"), good], 64) == "non_finite_number"
    assert inspect_value({"a": good, "b": float("inf")}, 64) == "non_finite_number"
    assert inspect_value({"\ud800": good}, 64) == "invalid_text"
    assert inspect_value([good, good], 64) is None


def test_the_first_problem_found_is_reported_and_not_json_raises() -> None:
    assert inspect_value([float("nan"), "\x00"], 64) in ("invalid_text", "non_finite_number")
    assert inspect_value(("tuple", 1), 64) is None
    with pytest.raises(ValueError, match="object keys must be strings"):
        inspect_value({1: "x"}, 64)
    with pytest.raises(ValueError, match="set is not a JSON value"):
        inspect_value([{1}], 64)


def test_canonical_identity() -> None:
    assert canonical_json({"b": 2, "a": 1}) == canonical_json({"a": 1, "b": 2}) == '{"a":1,"b":2}'
    assert canonical_json(1) != canonical_json(1.0)
    assert canonical_json("é") == '"é"' and canonical_json([0.1, True, None]) == "[0.1,true,null]"
