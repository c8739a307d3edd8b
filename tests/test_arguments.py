"""Arguments that do not parse raise ValidationError naming the argument (reference §2, §7), on
every public method; the typed request objects (IngestRequest, ValidTime) are checked and
normalised like dicts."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from conftest import Backend
from support import AGENT, put, request

from mempill import (
    Disposition,
    Engine,
    Granularity,
    IngestRequest,
    Provenance,
    ValidationError,
    ValidTime,
)

REF = "00000000-0000-4000-8000-000000000001"
NAIVE = datetime(2020, 1, 1)


def ingest_with(**fields: Any) -> Callable[[Engine], Any]:
    return lambda engine: engine.ingest(request("Paris", **fields))


CASES: list[tuple[str, Callable[[Engine], Any]]] = [
    ("agent_id", lambda e: e.query_memory("../x", "s", "p")),
    ("agent_id", ingest_with(agent_id="a/b")),
    ("subject", ingest_with(subject=3)),
    ("predicate", ingest_with(predicate=None)),
    ("provenance", ingest_with(provenance="Gossip")),
    ("provenance", ingest_with(provenance={"type": 3})),
    ("cardinality", ingest_with(cardinality="Many")),
    ("criticality", ingest_with(criticality="Severe")),
    ("value_confidence", ingest_with(value_confidence="high")),
    ("valid_time_confidence", ingest_with(valid_time_confidence=True)),
    ("valid_time", ingest_with(valid_time="2020")),
    ("valid_time.start", ingest_with(valid_from="yesterday")),
    ("valid_time.end", ingest_with(valid_until="2020-13")),
    (
        "valid_time.start_granularity",
        ingest_with(valid_time={"start": "2020", "start_granularity": "week"}),
    ),
    (
        "valid_time.end_granularity",
        ingest_with(valid_time={"end": "2020", "end_granularity": "hour"}),
    ),
    ("derived_from", ingest_with(derived_from="not-a-list")),
    ("derived_from", ingest_with(derived_from=[7])),
    ("claim_ref", ingest_with(claim_ref="not-a-uuid")),
    ("request", lambda e: e.ingest(["not", "a", "request"])),
    (
        "request: missing required field(s) value",
        lambda e: e.ingest({"agent_id": AGENT, "subject": "s", "predicate": "p"}),
    ),
    ("request: unknown field(s) colour", ingest_with(colour="red")),
    (
        "value",
        lambda e: e.ingest({"agent_id": AGENT, "subject": "s", "predicate": "p", "value": {1}}),
    ),
    ("ingest_many", lambda e: e.ingest_many([request("a"), request("b", agent_id="other")])),
    ("at", lambda e: e.end(AGENT, REF, "soon")),
    ("granularity", lambda e: e.end(AGENT, REF, "2020", granularity="week")),
    ("provenance", lambda e: e.end(AGENT, REF, "2020", provenance="Gossip")),
    ("confidence", lambda e: e.end(AGENT, REF, "2020", confidence=2.0)),
    ("confidence", lambda e: e.end(AGENT, REF, "2020", confidence="sure")),
    ("claim_ref", lambda e: e.end(AGENT, "nope", "2020")),
    ("claim_ref", lambda e: e.reopen(AGENT, 5)),
    ("provenance", lambda e: e.reopen(AGENT, REF, provenance=None)),
    ("claim_ref", lambda e: e.invalidate(AGENT, "")),
    ("provenance", lambda e: e.invalidate(AGENT, REF, provenance="x")),
    ("subject", lambda e: e.end_fact(AGENT, 1, "p", "2020")),
    ("predicate", lambda e: e.end_fact(AGENT, "s", [], "2020")),
    ("at", lambda e: e.end_fact(AGENT, "s", "p", "later")),
    ("provenance", lambda e: e.end_fact(AGENT, "s", "p", "2020", provenance="x")),
    ("confidence", lambda e: e.end_fact(AGENT, "s", "p", "2020", confidence=-1)),
    ("subject", lambda e: e.query_memory(AGENT, None, "p")),
    ("predicate", lambda e: e.query_memory(AGENT, "s", 1.5)),
    ("as_of", lambda e: e.query_memory(AGENT, "s", "p", as_of="yesterday")),
    ("valid_at", lambda e: e.query_memory(AGENT, "s", "p", valid_at=NAIVE)),
    ("as_of", lambda e: e.query_subject(AGENT, "s", as_of=12)),
    ("valid_at", lambda e: e.query_subject(AGENT, "s", valid_at="nope")),
    ("subject", lambda e: e.query_subject(AGENT, b"s")),
    ("as_of", lambda e: e.query_history(AGENT, "s", "p", as_of="nope")),
    ("subject", lambda e: e.query_history(AGENT, 0, "p")),
    ("predicate", lambda e: e.query_history(AGENT, "s", 0)),
    ("after_seq", lambda e: e.query_audit(AGENT, after_seq=-1)),
    ("after_seq", lambda e: e.query_audit(AGENT, after_seq=True)),
    ("limit", lambda e: e.query_audit(AGENT, limit=0)),
    ("limit", lambda e: e.query_audit(AGENT, limit=2.5)),
    ("claim_ref", lambda e: e.query_audit(AGENT, claim_ref="x")),
    ("verdict", lambda e: e.submit_adjudication(REF, "Maybe")),
    ("evidence_provenance", lambda e: e.submit_adjudication(REF, "Affirm", "x")),
    ("agent_id", lambda e: e.submit_adjudication(REF, "Affirm", agent_id=".x")),
    ("agent_id", lambda e: e.reconcile("a b")),
    ("agent_id", lambda e: e.list_pending(".hidden")),
    ("agent_id", lambda e: e.notify_pending("x/y")),
    ("agent_id", lambda e: e.ledger_digest("")),
    ("agent_id", lambda e: e.content_digest("a" * 129)),
    ("agent_id", lambda e: e.write_stats("../../etc")),
]


@pytest.mark.parametrize(("named", "call"), CASES, ids=[f"{i}-{c[0]}" for i, c in enumerate(CASES)])
def test_a_bad_argument_raises_validation_error_naming_it(
    engine: Engine, named: str, call: Callable[[Engine], Any]
) -> None:
    with pytest.raises(ValidationError) as raised:
        call(engine)
    assert str(raised.value).startswith(named) or f"{named}:" in str(raised.value), raised.value
    assert engine.query_audit(AGENT).entries == ()  # nothing was written


def test_agent_ids_are_checked_before_anything_else(engine: Engine) -> None:
    with pytest.raises(ValidationError, match=r"agent_id: '\.\./x' is invalid; use 1-128"):
        engine.ingest(request("Paris", agent_id="../x"))


# ---------------------------------------------------------------- the typed requests


def test_typed_requests_and_windows_are_normalised(engine: Engine) -> None:
    paris = timezone(timedelta(hours=2))
    window = ValidTime(valid_from=datetime(2020, 1, 1, 2, tzinfo=paris))
    receipt = engine.ingest(
        IngestRequest(
            agent_id=AGENT, subject="user", predicate="city", value="Paris", valid_time=window
        )
    )
    assert receipt.disposition is Disposition.COMMITTED_CHEAP
    with engine.store.read(AGENT) as reader:
        row = reader.claim(receipt.claim_ref)
    assert row is not None
    assert row.valid_from == datetime(2020, 1, 1, tzinfo=UTC)  # converted to UTC
    assert row.valid_from_granularity is Granularity.INSTANT  # the default for a datetime
    assert row.valid_until is None and row.valid_until_granularity is None
    assert row.valid_time_confidence == 1.0  # a window was given
    assert row.provenance is Provenance.USER_ASSERTED


def test_typed_windows_keep_their_granularity_and_refuse_naive_datetimes(engine: Engine) -> None:
    window = ValidTime(
        valid_from=datetime(2020, 3, 1, tzinfo=UTC),
        valid_until=datetime(2021, 1, 1, tzinfo=UTC),
        from_granularity=Granularity.MONTH,
        until_granularity="year",  # type: ignore[arg-type]
    )
    typed = IngestRequest(agent_id=AGENT, subject="u", predicate="p", value=1, valid_time=window)
    receipt = engine.ingest(typed)
    (entry,) = engine.query_history(AGENT, "u", "p")
    assert (entry.valid_from_display, entry.valid_until_display) == ("2020-03", "2021")
    assert receipt.disposition is Disposition.COMMITTED_CHEAP
    for bad, named in (
        (ValidTime(valid_from=NAIVE), "valid_time.valid_from"),
        (ValidTime(valid_until=NAIVE), "valid_time.valid_until"),
        (
            ValidTime(valid_from=datetime(2020, 1, 1, tzinfo=UTC), from_granularity="week"),
            "from_granularity",
        ),  # type: ignore[arg-type]
        (
            ValidTime(valid_until=datetime(2020, 1, 1, tzinfo=UTC), until_granularity="eon"),
            "until_granularity",
        ),  # type: ignore[arg-type]
    ):
        with pytest.raises(ValidationError, match=rf"^{named}: "):
            engine.ingest(
                IngestRequest(agent_id=AGENT, subject="u", predicate="q", value=1, valid_time=bad)
            )


def test_a_typed_request_goes_the_same_way_as_its_dict(backend: Backend) -> None:
    first, second = backend.open(), backend.open()
    as_dict = {"agent_id": "t1", "subject": "s", "predicate": "p", "value": [1, {"b": 2, "a": 1}]}
    typed = IngestRequest(agent_id="t2", subject="s", predicate="p", value=[1, {"a": 1, "b": 2}])
    a, b = first.ingest(as_dict), second.ingest(typed)
    assert (a.disposition, a.reason) == (b.disposition, b.reason)
    assert first.query_memory("t1", "s", "p").value == second.query_memory("t2", "s", "p").value


def test_the_confidence_dict_form_and_window_confidence(engine: Engine) -> None:
    receipt = put(
        engine,
        "Paris",
        confidence={"value_confidence": 0.9, "valid_time_confidence": 0.4},
        valid_time={"start": "2020"},
    )
    with engine.store.read(AGENT) as reader:
        row = reader.claim(receipt.claim_ref)
    assert row is not None and (row.value_confidence, row.valid_time_confidence) == (0.9, 0.4)
    plain = put(engine, "Rome", subject="b", confidence=0.8)
    with engine.store.read(AGENT) as reader:
        other = reader.claim(plain.claim_ref)
    assert other is not None and (other.value_confidence, other.valid_time_confidence) == (0.8, 0.0)
    inside = put(
        engine, "Oslo", subject="c", valid_time={"start": "2020", "valid_time_confidence": 0.5}
    )
    with engine.store.read(AGENT) as reader:
        third = reader.claim(inside.claim_ref)
    assert third is not None and third.valid_time_confidence == 0.5
