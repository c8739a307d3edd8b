"""Every threshold the reference names, tested on both sides of its boundary.

Each test puts one claim exactly at the boundary and one a hair inside it (a µs of time, a
1e-9 of confidence), so an off-by-one in a comparison (`<` for `<=`) fails here, whatever
the recorded corpus says.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from conftest import START, Backend, RecordingOracle
from support import AGENT, entries_of, history_rows, kinds, put

from mempill import (
    BeliefStatus,
    ConflictError,
    Currency,
    Disposition,
    Engine,
    EngineConfig,
    EventKind,
    Verdict,
)

D = Disposition
E = EventKind
US = timedelta(microseconds=1)


# ---------------------------------------------------------------- E1: low confidence 0.3


@pytest.mark.parametrize(
    ("confidence", "expected"),
    [
        (0.3, D.COMMITTED_CHEAP),
        (0.3 - 1e-9, D.PENDING_LOW_CONFIDENCE),
        (0.0, D.PENDING_LOW_CONFIDENCE),
    ],
)
def test_e1_threshold_is_exclusive(
    engine: Engine, confidence: float, expected: Disposition
) -> None:
    assert put(engine, "Paris", value_confidence=confidence).disposition is expected


def test_e1_threshold_follows_the_config(backend: Backend) -> None:
    engine = backend.open(config=EngineConfig(low_confidence_threshold=0.5))
    assert put(engine, "Paris", value_confidence=0.49).disposition is D.PENDING_LOW_CONFIDENCE
    assert put(engine, "Rome", subject="bob", value_confidence=0.5).disposition is D.COMMITTED_CHEAP


# ---------------------------------------------------------------- trusted window 0.7


@pytest.mark.parametrize(("confidence", "trusted"), [(0.7, True), (0.7 - 1e-9, False)])
def test_trust_threshold_is_inclusive(engine: Engine, confidence: float, trusted: bool) -> None:
    """A window at exactly 0.7 is trusted: the second window succeeds the first (E3)."""
    put(engine, "Berlin", valid_from="2020", valid_until="2022")
    later = put(engine, "Munich", valid_from="2022", valid_time_confidence=confidence)
    if trusted:
        assert (later.disposition, later.reason) == (D.COMMITTED_CHEAP, "succession")
        assert engine.query_memory(AGENT, "user", "city", valid_at="2021").value == "Berlin"
    else:  # an untrusted window holds at every instant, so it conflicts
        assert later.disposition is D.CONTESTED
        assert engine.query_memory(AGENT, "user", "city", valid_at="2021").is_contested


def test_windows_are_half_open(engine: Engine) -> None:
    put(engine, "Berlin", valid_from="2020-01-01", valid_until="2022-01-01")
    end = datetime(2022, 1, 1, tzinfo=UTC)
    assert engine.query_memory(AGENT, "user", "city", valid_at=end - US).value == "Berlin"
    at_end = engine.query_memory(AGENT, "user", "city", valid_at=end)
    assert (at_end.status, at_end.reason) == (BeliefStatus.NO_BELIEF, "window_ended")
    start = datetime(2020, 1, 1, tzinfo=UTC)
    assert engine.query_memory(AGENT, "user", "city", valid_at=start).value == "Berlin"
    before = engine.query_memory(AGENT, "user", "city", valid_at=start - US)
    assert (before.status, before.reason) == (BeliefStatus.NO_BELIEF, "not_yet_valid")


def test_touching_windows_do_not_overlap_but_one_microsecond_more_does(engine: Engine) -> None:
    put(engine, "Berlin", valid_from="2020-01-01T00:00:00Z", valid_until="2022-01-01T00:00:00Z")
    touching = put(engine, "Munich", valid_from="2022-01-01T00:00:00Z")
    assert touching.reason == "succession"
    put(engine, "Oslo", subject="bob", valid_from="2020-01-01", valid_until="2022-01-01")
    overlapping = put(engine, "Rome", subject="bob", valid_from="2021-12-31T23:59:59.999999Z")
    assert overlapping.disposition is D.CONTESTED


# ---------------------------------------------------------------- currency 30 / 90 days


def _currency(engine: Engine, tx: datetime, age: timedelta) -> Currency | None:
    return engine.query_memory(AGENT, "user", "city", as_of=tx + age).currency


def test_currency_ages_at_exactly_30_and_90_days(engine: Engine) -> None:
    put(engine, "Paris")
    tx = START  # the first call's tx time
    assert _currency(engine, tx, timedelta(days=30) - US) is Currency.FRESH
    assert _currency(engine, tx, timedelta(days=30)) is Currency.AGING_UNCONFIRMED
    assert _currency(engine, tx, timedelta(days=90) - US) is Currency.AGING_UNCONFIRMED
    assert _currency(engine, tx, timedelta(days=90)) is Currency.DECAYED


def test_two_corroborations_double_the_thresholds_and_one_does_not(engine: Engine) -> None:
    put(engine, "Paris")
    put(engine, "Paris")  # one corroboration: no boost yet
    last = engine.query_history(AGENT, "user", "city").entries[-1].tx_time
    assert _currency(engine, last, timedelta(days=30)) is Currency.AGING_UNCONFIRMED
    put(engine, "Paris")  # two corroborations: 60 and 180 days
    last = engine.query_history(AGENT, "user", "city").entries[-1].tx_time
    belief = engine.query_memory(AGENT, "user", "city", as_of=last)
    assert belief.corroboration_count == 2
    assert _currency(engine, last, timedelta(days=60) - US) is Currency.FRESH
    assert _currency(engine, last, timedelta(days=60)) is Currency.AGING_UNCONFIRMED
    assert _currency(engine, last, timedelta(days=180) - US) is Currency.AGING_UNCONFIRMED
    assert _currency(engine, last, timedelta(days=180)) is Currency.DECAYED


def test_currency_thresholds_follow_the_config(backend: Backend) -> None:
    engine = backend.open(
        config=EngineConfig(aging_unconfirmed_threshold_days=1, decayed_threshold_days=2)
    )
    put(engine, "Paris")
    assert _currency(engine, START, timedelta(days=1) - US) is Currency.FRESH
    assert _currency(engine, START, timedelta(days=1)) is Currency.AGING_UNCONFIRMED
    assert _currency(engine, START, timedelta(days=2)) is Currency.DECAYED


# ---------------------------------------------------------------- end at the start


def test_end_exactly_at_the_start_is_allowed_a_microsecond_before_is_not(engine: Engine) -> None:
    start = datetime(2020, 1, 1, tzinfo=UTC)
    first = put(engine, "Berlin", valid_from="2020-01-01T00:00:00Z")
    early = engine.end(AGENT, first.claim_ref, start - US)
    assert (early.disposition, early.reason) == (D.REJECTED, "bound_before_start")
    at_start = engine.end(AGENT, first.claim_ref, start)
    assert (at_start.disposition, at_start.reason) == (D.SUPERSEDED, "bound")
    gone = engine.query_memory(AGENT, "user", "city", valid_at=start)
    assert gone.status is BeliefStatus.NO_BELIEF  # [start, start) holds at no instant


def test_the_same_bound_again_is_a_no_op_a_different_one_a_conflict(engine: Engine) -> None:
    first = put(engine, "Berlin", valid_from="2020")
    engine.end(AGENT, first.claim_ref, "2024")
    again = engine.end(AGENT, first.claim_ref, "2024")
    assert again.no_op and again.reason == "already_bound"
    with pytest.raises(ConflictError):
        engine.end(AGENT, first.claim_ref, datetime(2024, 1, 1, tzinfo=UTC) + US)


def test_a_bound_earlier_than_the_window_end_narrows_it_a_later_one_does_not(
    engine: Engine,
) -> None:
    first = put(engine, "Berlin", valid_from="2020", valid_until="2022")
    engine.end(AGENT, first.claim_ref, "2023")
    assert (
        engine.query_memory(AGENT, "user", "city", valid_at="2022").status is BeliefStatus.NO_BELIEF
    )
    (entry,) = engine.query_history(AGENT, "user", "city").entries
    assert entry.valid_until == datetime(2022, 1, 1, tzinfo=UTC)


# ---------------------------------------------------------------- adjudication expiry


def test_expiry_happens_exactly_at_expires_at(backend: Backend, oracle: RecordingOracle) -> None:
    engine = backend.open(oracle=oracle, config=EngineConfig(default_adjudication_ttl_seconds=60))
    backend.clock._step = timedelta(0)  # a stopped clock: every call reads the same instant
    put(engine, "Berlin", valid_from="2020")
    challenger = put(engine, "Paris", valid_from="2024", valid_time_confidence=0.5)
    (pending,) = engine.list_pending(AGENT)
    assert pending.expires_at is not None
    assert pending.expires_at - pending.queued_at == timedelta(seconds=60)
    backend.clock.advance(pending.expires_at - START - US)  # the clock still reads START
    assert engine.sweep_expired() == 0
    backend.clock.advance(US)
    assert engine.sweep_expired() == 1
    assert kinds(entries_of(engine, challenger.claim_ref))[-1] == (
        E.ADJUDICATION_EXPIRED,
        "Contested",
    )


# ---------------------------------------------------------------- Affirm with equal starts


def test_affirm_with_an_equal_start_bounds_at_now(
    backend: Backend, oracle: RecordingOracle
) -> None:
    engine = backend.open(oracle=oracle)
    incumbent = put(engine, "Berlin", valid_from="2020")
    challenger = put(engine, "Paris", valid_from="2020")  # trusted, same start: not later
    assert challenger.handle_id is not None
    engine.submit_adjudication(challenger.handle_id, Verdict.AFFIRM)
    (ended,) = [e for e in engine.query_history(AGENT, "user", "city") if e.value == "Berlin"]
    assert ended.claim_ref == incumbent.claim_ref
    assert ended.valid_until is not None and ended.valid_until > datetime(2025, 1, 1, tzinfo=UTC)


def test_affirm_with_a_later_start_bounds_at_that_start(
    backend: Backend, oracle: RecordingOracle
) -> None:
    engine = backend.open(oracle=oracle)
    put(engine, "Berlin", valid_from="2020")
    challenger = put(engine, "Paris", valid_from="2020-01-01T00:00:00.000001Z")
    assert challenger.handle_id is not None
    engine.submit_adjudication(challenger.handle_id, Verdict.AFFIRM)
    (ended,) = [e for e in engine.query_history(AGENT, "user", "city") if e.value == "Berlin"]
    assert ended.valid_until == datetime(2020, 1, 1, tzinfo=UTC) + US


# ---------------------------------------------------------------- derivation depth and anchor


def _claim(engine: Engine, ref: str):  # type: ignore[no-untyped-def]
    with engine.store.read(AGENT) as reader:
        return reader.claim(ref)


def test_depth_is_one_more_than_the_shallowest_parent_and_anchors_there(engine: Engine) -> None:
    root = put(engine, "Berlin", subject="a")
    child = put(engine, "x", subject="b", provenance="ModelDerived", derived_from=[root.claim_ref])
    other = put(engine, "Munich", subject="c")
    both = put(
        engine,
        "y",
        subject="d",
        provenance="ModelDerived",
        derived_from=[child.claim_ref, other.claim_ref],
    )
    row = _claim(engine, both.claim_ref)
    assert (row.derivation_depth, row.external_anchor) == (1, other.claim_ref)
    deeper = _claim(engine, child.claim_ref)
    assert (deeper.derivation_depth, deeper.external_anchor) == (1, root.claim_ref)
    grand = put(engine, "z", subject="e", provenance="ModelDerived", derived_from=[both.claim_ref])
    assert (
        _claim(engine, grand.claim_ref).derivation_depth,
        _claim(engine, grand.claim_ref).external_anchor,
    ) == (
        2,
        other.claim_ref,
    )


@pytest.mark.parametrize("order", [(0, 1), (1, 0)])
def test_equally_deep_parents_anchor_at_the_first_named(
    engine: Engine, order: tuple[int, int]
) -> None:
    parents = [
        put(engine, "Berlin", subject="a").claim_ref,
        put(engine, "Rome", subject="b").claim_ref,
    ]
    named = [parents[i] for i in order]
    child = put(engine, "x", subject="c", provenance="ModelDerived", derived_from=named)
    assert _claim(engine, child.claim_ref).external_anchor == named[0]


def test_no_external_ancestor_means_no_depth(engine: Engine) -> None:
    free = put(engine, "x", subject="a", provenance="ModelDerived")
    child = put(engine, "y", subject="b", provenance="ModelDerived", derived_from=[free.claim_ref])
    row = _claim(engine, child.claim_ref)
    assert (row.derivation_depth, row.external_anchor) == (None, None)


@pytest.mark.parametrize(("cap", "disposition"), [(1, D.COMMITTED_INFERRED), (2, D.CONTESTED)])
def test_depth_cap_for_overturning_is_inclusive(
    backend: Backend, cap: int, disposition: Disposition
) -> None:
    """A depth-2 model claim may challenge (M2) when the cap is 2, not when it is 1."""
    engine = backend.open(config=EngineConfig(derivation_depth_cap_for_overturning=cap))
    root = put(engine, "Berlin", subject="src")
    mid = put(engine, "m", subject="mid", provenance="ModelDerived", derived_from=[root.claim_ref])
    put(engine, "Paris")
    deep = put(engine, "Rome", provenance="ModelDerived", derived_from=[mid.claim_ref])
    assert _claim(engine, deep.claim_ref).derivation_depth == 2
    assert deep.disposition is disposition


# ---------------------------------------------------------------- cascade order


def test_the_cascade_flags_dependents_breadth_first_in_the_order_they_were_written(
    engine: Engine,
) -> None:
    root = put(engine, "Berlin", subject="root")
    a = put(engine, "a", subject="a", provenance="ModelDerived", derived_from=[root.claim_ref])
    b = put(engine, "b", subject="b", provenance="ModelDerived", derived_from=[root.claim_ref])
    aa = put(engine, "aa", subject="aa", provenance="ModelDerived", derived_from=[a.claim_ref])
    engine.invalidate(AGENT, root.claim_ref)
    flagged = [
        e.claim_ref
        for e in engine.query_audit(AGENT, limit=100).entries
        if e.event_kind is E.DEPENDENT_FLAGGED_PENDING_REVIEW
    ]
    assert flagged == [a.claim_ref, b.claim_ref, aa.claim_ref]


# ---------------------------------------------------------------- history order


def test_history_orders_by_effective_start_then_tx_time(engine: Engine) -> None:
    later_written = put(engine, "B", valid_from="2020", valid_until="2021")
    put(engine, "A", valid_from="2019", valid_until="2020")
    put(engine, "C", value_confidence=1.0)  # no window: ordered by its tx time (2026)
    same_start = put(engine, "D", valid_from="2020", valid_until="2021", subject="user")
    assert later_written.disposition is D.COMMITTED_CHEAP
    assert [e.value for e in engine.query_history(AGENT, "user", "city")] == ["A", "B", "D", "C"]
    assert same_start.disposition is D.CONTESTED  # same window, another value


def test_history_at_equal_start_and_tx_time_falls_back_to_stream_order(backend: Backend) -> None:
    backend.clock._step = timedelta(0)
    engine = backend.open()
    engine.ingest_many(
        [
            {
                "agent_id": AGENT,
                "subject": "s",
                "predicate": "p",
                "value": v,
                "cardinality": "SetValued",
            }
            for v in ("z", "y", "x")
        ]
    )
    assert [e.value for e in engine.query_history(AGENT, "s", "p")] == ["z", "y", "x"]
    assert history_rows(engine, "s", "p") == [("z", "Current"), ("y", "Current"), ("x", "Current")]
