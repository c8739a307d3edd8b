"""Edge cases the rules name only in passing: each pins one comparison or branch that a
plausible slip would get wrong (see docs/testing.md, mutation testing)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta, tzinfo
from pathlib import Path

import pytest
from conftest import START, Backend, RecordingOracle
from support import AGENT, ledger, put

import mempill
from mempill import (
    BeliefStatus,
    ConflictError,
    Disposition,
    Engine,
    EngineConfig,
    EventKind,
    HistoryStatus,
    Marker,
    NotFoundError,
    ValidationError,
)
from mempill.core.dates import utc

D = Disposition
E = EventKind


def test_an_affirm_skips_an_incumbent_the_challenger_no_longer_overlaps(
    backend: Backend, oracle: RecordingOracle
) -> None:
    engine = backend.open(oracle=oracle)
    incumbent = put(engine, "Berlin", valid_from="2025")
    challenger = put(engine, "Paris", valid_from="2024")
    assert challenger.handle_id is not None and challenger.contested_with == (incumbent.claim_ref,)
    engine.end(AGENT, challenger.claim_ref, "2025")  # now [2024, 2025): no overlap with 2025 on
    outcome = engine.submit_adjudication(challenger.handle_id, "Affirm")
    assert outcome.superseded == ()
    with engine.store.read(AGENT) as reader:
        assert [a.claim_ref for a in reader.all_assertions()] == [challenger.claim_ref]


def test_the_outbox_without_an_oracle_and_across_agents(
    backend: Backend, oracle: RecordingOracle
) -> None:
    engine = backend.open(oracle=oracle)
    oracle.fail = True
    for agent in ("a1", "a2"):
        put(engine, "Berlin", agent_id=agent)
        assert put(engine, "Paris", agent_id=agent).oracle_notified is False
    no_oracle = Engine(engine.store, clock=backend.clock, ids=backend.ids)
    assert no_oracle.notify_pending() == 0  # nobody to tell
    assert engine.oracle_loop.notify("a1", "00000000-0000-4000-8000-000000000000") is False
    oracle.fail = False
    assert engine.notify_pending() == 2  # one per agent, counted together
    assert [r.agent_id for r in oracle.requests] == ["a1", "a2"]
    assert engine.notify_pending() == 0
    (first,) = engine.list_pending("a1")
    engine.submit_adjudication(first.handle_id, "Deny")
    assert engine.oracle_loop.notify("a1", first.handle_id) is False  # resolved: not asked again


def test_reconcile_reports_each_agent_its_own_line(backend: Backend) -> None:
    engine = backend.open()
    put(engine, "Berlin", agent_id="a1")
    put(engine, "Paris", agent_id="a1")
    put(engine, "Rome", agent_id="a2")
    statuses = {a: [x.status for x in engine.reconcile(a).lines] for a in ("a1", "a2")}
    assert statuses == {"a1": [BeliefStatus.CONTESTED], "a2": [BeliefStatus.TIMING_UNCERTAIN]}


def test_reconcile_on_a_single_file_store_escalates_for_its_owner(tmp_path: Path) -> None:
    oracle = RecordingOracle()
    engine = mempill.open_default(tmp_path / "one.db", oracle=oracle)
    try:
        put(engine, "Berlin", valid_from="2020")
        queued = put(engine, "Paris", valid_from="2024")
        assert queued.handle_id is not None
        engine.submit_adjudication(queued.handle_id, "Unknown")
        report = engine.reconcile(AGENT)
        assert report.escalations == 1 and report.lines[0].escalated
    finally:
        engine.close()


def test_assertion_rows_carry_the_stream_seq_of_their_entry(engine: Engine) -> None:
    claim = put(engine, "Berlin", valid_from="2020")
    engine.end(AGENT, claim.claim_ref, "2024")
    engine.reopen(AGENT, claim.claim_ref)
    engine.invalidate(AGENT, claim.claim_ref)
    seqs = [e.stream_seq for e in ledger(engine) if e.event_kind is E.VALIDITY_ASSERTED]
    with engine.store.read(AGENT) as reader:
        assert [a.stream_seq for a in reader.all_assertions()] == seqs == [2, 3, 4]


def test_an_affirm_spares_the_winner_but_flags_its_siblings(
    backend: Backend, oracle: RecordingOracle
) -> None:
    """The incumbent's first dependent is the winning challenger itself: it is skipped, and
    the dependents written after it are flagged all the same."""
    engine = backend.open(oracle=oracle)
    root = put(engine, "Berlin", valid_from="2020")
    winner = put(
        engine, "Paris", valid_from="2024", provenance="ModelDerived", derived_from=[root.claim_ref]
    )
    sibling = put(
        engine, "x", subject="other", provenance="ModelDerived", derived_from=[root.claim_ref]
    )
    assert winner.handle_id is not None
    engine.submit_adjudication(winner.handle_id, "Affirm")
    flagged = [
        e.claim_ref for e in ledger(engine) if e.event_kind is E.DEPENDENT_FLAGGED_PENDING_REVIEW
    ]
    assert flagged == [sibling.claim_ref]


@pytest.mark.parametrize("confidence", [0.0, 0.5, 1.0])
def test_any_confidence_in_the_unit_interval_is_accepted(engine: Engine, confidence: float) -> None:
    claim = put(engine, "Berlin", valid_from="2020")
    assert (
        engine.end(AGENT, claim.claim_ref, "2024", confidence=confidence).disposition
        is D.SUPERSEDED
    )
    with engine.store.read(AGENT) as reader:
        assert [a.confidence for a in reader.all_assertions()] == [confidence]


def test_conflict_and_not_found_messages_name_what_is_in_the_way(engine: Engine) -> None:
    claim = put(engine, "Berlin", valid_from="2020")
    engine.end(AGENT, claim.claim_ref, "2024")
    with pytest.raises(
        ConflictError, match=r"already bound at 2024-01-01T00:00:00\.000000Z; reopen"
    ):
        engine.end(AGENT, claim.claim_ref, "2025")
    with pytest.raises(NotFoundError, match=r"no current belief to end on \('nobody', 'city'\)"):
        engine.end_fact(AGENT, "nobody", "city", "2025")
    put(engine, "Rome", subject="bob")
    put(engine, "Oslo", subject="bob")
    with pytest.raises(ConflictError, match=r"\('bob', 'city'\) believes 2 values"):
        engine.end_fact(AGENT, "bob", "city", "2025")


def test_refs_may_be_uuid_objects(engine: Engine) -> None:
    parent = put(engine, "Berlin")
    as_uuid = uuid.UUID(parent.claim_ref)
    child = put(engine, "x", subject="c", provenance="ModelDerived", derived_from=[as_uuid])
    assert child.disposition is D.COMMITTED_INFERRED
    assert engine.invalidate(AGENT, as_uuid).claim_ref == parent.claim_ref  # type: ignore[arg-type]
    own = uuid.UUID("00000000-0000-4000-8000-00000000beef")
    assert put(engine, "y", subject="d", claim_ref=own).claim_ref == str(own)


def test_a_window_with_only_an_end_has_no_start_granularity(engine: Engine) -> None:
    window = mempill.ValidTime(valid_until=datetime(2030, 1, 1, tzinfo=UTC))
    receipt = engine.ingest(
        mempill.IngestRequest(
            agent_id=AGENT, subject="u", predicate="p", value=1, valid_time=window
        )
    )
    with engine.store.read(AGENT) as reader:
        row = reader.claim(receipt.claim_ref)
    assert row is not None and (row.valid_from, row.valid_from_granularity) == (None, None)
    assert row.valid_until_granularity is not None


def test_held_back_claims_are_listed_only_where_their_window_holds(engine: Engine) -> None:
    put(engine, "Paris", valid_from="2020", valid_until="2021", value_confidence=0.1)
    inside = engine.query_memory(AGENT, "user", "city", valid_at="2020-06")
    outside = engine.query_memory(AGENT, "user", "city", valid_at="2022")
    assert [s.value for s in inside.pending] == ["Paris"] and outside.pending == ()


def test_no_belief_at_the_exact_end_of_one_window_before_the_next(engine: Engine) -> None:
    put(engine, "Berlin", valid_from="2020", valid_until="2021")
    put(engine, "Munich", valid_from="2022")
    at_end = engine.query_memory(AGENT, "user", "city", valid_at="2021")
    assert (at_end.status, at_end.reason) == (BeliefStatus.NO_BELIEF, "window_gap")


def test_the_burst_window_excludes_an_echo_exactly_its_length_ago(backend: Backend) -> None:
    backend.clock._step = timedelta(0)
    engine = backend.open(
        config=EngineConfig(quarantine_burst_threshold=2, burst_window_seconds=60)
    )
    origin = put(engine, "Berlin")
    recall = {"provenance": "RecallReEntry", "derived_from": [origin.claim_ref]}
    first = put(engine, "Berlin", **recall)  # an echo, at START + 1 µs (a stopped clock)
    assert first.disposition is D.COMMITTED_CHEAP
    backend.clock.advance(timedelta(seconds=60, microseconds=1))  # the echo is exactly 60 s ago
    assert put(engine, "Berlin", **recall).disposition is D.COMMITTED_CHEAP
    backend.clock.advance(timedelta(seconds=30))
    assert put(engine, "Berlin", **recall).disposition is D.QUARANTINED  # 30 s after the last


class Vague(tzinfo):
    """A time zone that cannot say its offset."""

    def utcoffset(self, moment: datetime | None) -> None:
        return None


def test_a_time_zone_without_an_offset_is_refused() -> None:
    with pytest.raises(ValidationError, match="has no time zone"):
        utc(datetime(2020, 1, 1, tzinfo=Vague()), "at")


def test_an_older_claim_of_the_same_value_does_not_clear_a_review(engine: Engine) -> None:
    same = put(engine, "x", subject="s")  # authoritative, written first
    root = put(engine, "Berlin", subject="root")
    child = put(engine, "x", subject="s", derived_from=[root.claim_ref])  # corroborates `same`
    assert child.reason == "corroboration"
    engine.invalidate(AGENT, root.claim_ref)  # the child is flagged for review
    belief = engine.query_memory(AGENT, "s", "city")
    assert belief.primary is not None
    assert belief.primary.claim_refs == (same.claim_ref, child.claim_ref)
    assert Marker.PENDING_REVIEW in belief.markers  # `same` is older than the flag
    put(engine, "x", subject="s")  # a later one clears it
    assert Marker.PENDING_REVIEW not in engine.query_memory(AGENT, "s", "city").markers


def test_history_of_a_claim_ended_at_its_own_start_at_that_instant(engine: Engine) -> None:
    start = START + timedelta(seconds=5)
    claim = put(engine, "Berlin", valid_from=start.isoformat())
    engine.end(AGENT, claim.claim_ref, start)
    (entry,) = engine.query_history(AGENT, "user", "city", as_of=start)
    assert entry.status is HistoryStatus.ENDED


def test_an_affirm_goes_on_past_an_incumbent_already_ending(
    backend: Backend, oracle: RecordingOracle
) -> None:
    engine = backend.open(oracle=oracle)  # the clock steps 1 s per call
    first = put(engine, "Berlin", valid_from="2020")  # 00:00:00
    second = put(engine, "Rome", valid_from="2020", subject="user")  # 00:00:01, contested
    challenger = put(engine, "Paris")  # 00:00:02, untrusted: both are its incumbents
    assert challenger.handle_id is not None
    assert set(challenger.contested_with) == {first.claim_ref, second.claim_ref}
    engine.end(AGENT, first.claim_ref, "2026-01-01T00:00:04Z")  # 00:00:03: by the verdict
    outcome = engine.submit_adjudication(challenger.handle_id, "Affirm")  # 00:00:04
    assert outcome.superseded == (second.claim_ref,)


def test_a_queued_claim_repeated_keeps_its_handle_and_notification(
    backend: Backend, oracle: RecordingOracle
) -> None:
    engine = backend.open(oracle=oracle)
    put(engine, "Berlin", valid_from="2020")
    ref = "00000000-0000-4000-8000-0000000000c1"
    first = put(engine, "Paris", valid_from="2024", claim_ref=ref)
    again = put(engine, "Paris", valid_from="2024", claim_ref=ref)  # the same request again
    assert first.oracle_notified is True and again == first
    assert len(oracle.requests) == 1  # told once
    put(engine, "Oslo", valid_from="2020", subject="bob")
    oracle.fail = True
    ref2 = "00000000-0000-4000-8000-0000000000c2"
    failed = put(engine, "Rome", valid_from="2024", subject="bob", claim_ref=ref2)
    assert failed.oracle_notified is False
    oracle.fail = False
    retried = put(engine, "Rome", valid_from="2024", subject="bob", claim_ref=ref2)
    assert retried.oracle_notified is True and retried.handle_id == failed.handle_id


def test_no_belief_at_the_start_of_a_claim_ended_there(engine: Engine) -> None:
    claim = put(engine, "Berlin", valid_from="2020")
    engine.end(AGENT, claim.claim_ref, "2020")
    belief = engine.query_memory(AGENT, "user", "city", valid_at="2020")
    assert (belief.status, belief.reason) == (BeliefStatus.NO_BELIEF, "window_ended")


@pytest.mark.parametrize(
    ("window", "confidence"),
    [
        ({}, 0.0),
        ({"start": None, "end": None}, 0.0),
        ({"end": "2030"}, 1.0),
        ({"start": "2020"}, 1.0),
    ],
)
def test_an_omitted_window_confidence_is_one_only_with_a_window(
    engine: Engine, window: dict[str, str | None], confidence: float
) -> None:
    receipt = engine.ingest(
        {"agent_id": AGENT, "subject": "s", "predicate": "p", "value": 1, "valid_time": window}
    )
    with engine.store.read(AGENT) as reader:
        row = reader.claim(receipt.claim_ref)
    assert row is not None and row.valid_time_confidence == confidence


def test_a_parent_without_depth_does_not_hide_the_next_one(engine: Engine) -> None:
    free = put(engine, "x", subject="a", provenance="ModelDerived")  # no External ancestor
    anchored = put(engine, "Berlin", subject="b")
    child = put(
        engine,
        "y",
        subject="c",
        provenance="ModelDerived",
        derived_from=[free.claim_ref, anchored.claim_ref],
    )
    with engine.store.read(AGENT) as reader:
        row = reader.claim(child.claim_ref)
    assert row is not None and (row.derivation_depth, row.external_anchor) == (
        1,
        anchored.claim_ref,
    )


def test_a_set_counts_the_corroborations_of_its_primary_member(engine: Engine) -> None:
    for value in ("fr", "fr", "en"):
        put(engine, value, predicate="languages", cardinality="SetValued")
    belief = engine.query_memory(AGENT, "user", "languages")
    assert belief.primary is not None and belief.primary.value == "en"  # the latest claim's group
    assert belief.corroboration_count == 0 and [s.corroboration_count for s in belief.members] == [
        1,
        0,
    ]


def test_an_echo_does_not_hide_what_happens_to_a_claim_after_it(engine: Engine) -> None:
    claim = put(engine, "Berlin", valid_from="2020")
    put(engine, "Berlin", provenance="RecallReEntry", derived_from=[claim.claim_ref])  # R1: an echo
    engine.end(AGENT, claim.claim_ref, "2024")
    (entry,) = engine.query_history(AGENT, "user", "city")
    assert entry.state is Disposition.SUPERSEDED and entry.status is HistoryStatus.ENDED


def test_a_corroboration_before_the_flag_does_not_clear_the_review(engine: Engine) -> None:
    root = put(engine, "Berlin", subject="root")
    child = put(engine, "x", subject="s", derived_from=[root.claim_ref])
    before = put(engine, "x", subject="s")  # after the child, but before its flag
    engine.invalidate(AGENT, root.claim_ref)
    belief = engine.query_memory(AGENT, "s", "city")
    assert belief.primary is not None and belief.primary.claim_refs == (
        child.claim_ref,
        before.claim_ref,
    )
    assert Marker.PENDING_REVIEW in belief.markers


def test_an_untrusted_window_holds_beyond_its_end(engine: Engine) -> None:
    put(engine, "Berlin", valid_until="2021", valid_time_confidence=0.5)
    later = engine.query_memory(AGENT, "user", "city", valid_at="2025")
    assert later.value == "Berlin"
    assert later.primary is not None and later.primary.valid_until_display is None


def test_a_bound_at_the_window_end_keeps_the_window_display(engine: Engine) -> None:
    claim = put(engine, "Berlin", valid_from="2020", valid_until="2024")
    engine.end(AGENT, claim.claim_ref, "2024-01-01")  # the same instant, written as a day
    (entry,) = engine.query_history(AGENT, "user", "city")
    assert entry.valid_until_display == "2024"
    engine.reopen(AGENT, claim.claim_ref)
    engine.end(AGENT, claim.claim_ref, "2023-06")  # earlier: the bound's own display
    (entry,) = engine.query_history(AGENT, "user", "city")
    assert entry.valid_until_display == "2023-06"


def test_a_flagged_claim_ended_later_is_no_longer_under_review(engine: Engine) -> None:
    root = put(engine, "Berlin", subject="root")
    child = put(engine, "x", subject="s", derived_from=[root.claim_ref])
    engine.invalidate(AGENT, root.claim_ref)
    assert Marker.PENDING_REVIEW in engine.query_memory(AGENT, "s", "city").markers
    engine.end(AGENT, child.claim_ref, "2090")  # its state is now Superseded (in the future)
    belief = engine.query_memory(AGENT, "s", "city")
    assert belief.value == "x" and Marker.PENDING_REVIEW not in belief.markers
