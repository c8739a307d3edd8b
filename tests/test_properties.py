"""Property tests: history agrees with recall, and malformed input never gets stored."""

from __future__ import annotations

import itertools
import math
import os
from pathlib import Path
from typing import Any

import hypothesis.strategies as st
import pytest
from conftest import Backend
from hypothesis import HealthCheck, given, settings
from support import ledger, put

from mempill import Disposition, Engine, HistoryStatus, ValidationError, ValidTime
from mempill.core import parse
from mempill.core.canonical import canonical_json, loads
from mempill.core.decide import effective_time_confidence

PROFILE = settings(
    max_examples=int(os.environ.get("MEMPILL_PROPERTY_EXAMPLES", "40")),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
_agents = itertools.count()

YEARS = st.sampled_from([None, "2010", "2012", "2014", "2016", "2018"])
PROVENANCES = st.sampled_from(
    ["External:UserAsserted", "External:ExternalFirstHand", "ModelDerived", "RecallReEntry"]
)
INGEST = st.fixed_dictionaries(
    {
        "value": st.sampled_from(["a", "b", "c", 1, 1.0]),
        "predicate": st.sampled_from(["p", "q"]),
        "provenance": PROVENANCES,
        "cardinality": st.sampled_from(["Functional", "SetValued", "Unknown"]),
        "criticality": st.sampled_from(["Low", "Medium", "High", "Critical"]),
        "value_confidence": st.sampled_from([0.1, 0.5, 0.9, 1.0]),
        "valid_time_confidence": st.sampled_from([0.0, 0.5, 0.7, 1.0]),
        "valid_from": YEARS,
        "valid_until": YEARS,
        "parent": st.integers(0, 8) | st.none(),
    }
)
OPERATION = st.one_of(
    st.tuples(st.just("ingest"), INGEST),
    st.tuples(st.just("end"), st.tuples(st.integers(0, 8), YEARS.filter(bool))),
    st.tuples(st.just("invalidate"), st.integers(0, 8)),
    st.tuples(st.just("reopen"), st.integers(0, 8)),
)


def apply(engine: Engine, agent: str, op: tuple[str, Any], refs: list[str]) -> None:
    kind, args = op
    if kind == "ingest":
        fields = dict(args)
        parent = fields.pop("parent")
        if parent is not None and refs:
            fields["derived_from"] = [refs[parent % len(refs)]]
        receipt = put(
            engine, fields.pop("value"), "s", fields.pop("predicate"), agent_id=agent, **fields
        )
        if receipt.disposition is not Disposition.REJECTED:
            refs.append(receipt.claim_ref)
        return
    if not refs:
        return
    index = args[0] if kind == "end" else args
    ref = refs[index % len(refs)]
    if kind == "end":
        try:
            engine.end(agent, ref, args[1])
        except Exception as e:  # a different active bound is a ConflictError
            assert type(e).__name__ == "ConflictError"
    elif kind == "invalidate":
        engine.invalidate(agent, ref)
    else:
        engine.reopen(agent, ref)


def believed_values(engine: Engine, agent: str, predicate: str, as_of: Any) -> list[str]:
    belief = engine.query_memory(agent, "s", predicate, as_of=as_of)
    slots = [belief.primary] if belief.primary else []
    return sorted(
        {canonical_json(s.value) for s in (*slots, *belief.members, *belief.alternatives)}
    )


def history_values(engine: Engine, agent: str, predicate: str, as_of: Any) -> list[str]:
    history = engine.query_history(agent, "s", predicate, as_of=as_of)
    live = (HistoryStatus.CURRENT, HistoryStatus.CONTESTED)
    return sorted({canonical_json(e.value) for e in history if e.status in live})


@PROFILE
@given(operations=st.lists(OPERATION, min_size=1, max_size=25))
def test_history_current_equals_memory(backend: Backend, operations: list[tuple[str, Any]]) -> None:
    engine = backend.open()
    agent = f"prop-{next(_agents)}"
    refs: list[str] = []
    instants: list[Any] = [None]
    for op in operations:
        apply(engine, agent, op, refs)
        entries = engine.query_audit(agent, after_seq=0, limit=10_000).entries
        if entries:
            instants.append(entries[-1].recorded_at)
    for predicate, as_of in itertools.product(("p", "q"), instants):
        assert history_values(engine, agent, predicate, as_of) == believed_values(
            engine, agent, predicate, as_of
        ), (predicate, as_of)


# ---------------------------------------------------------------- malformed input

TEXT = st.text(max_size=8) | st.sampled_from(["", "\x00", "a\x00b", "\ud800", "x" * 1100])
NUMBER = st.sampled_from([math.nan, math.inf, -math.inf, -0.5, 1.5, 0.5, 1e308, 2])
JSON_ISH = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | TEXT,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(TEXT, inner, max_size=3),
    max_leaves=8,
)
WEIRD = st.sampled_from([b"bytes", {1, 2}, object(), 3 + 4j, {1: "non-string key"}])


def deep(depth: int) -> Any:
    value: Any = "leaf"
    for _ in range(depth):
        value = [value]
    return value


MALFORMED_FIELD = st.sampled_from(
    ["agent_id", "subject", "predicate", "value", "provenance", "cardinality", "criticality",
     "value_confidence", "valid_time_confidence", "valid_time", "derived_from", "missing", "extra"]
)  # fmt: skip
BAD_VALUES = st.one_of(
    TEXT, NUMBER, JSON_ISH, WEIRD, st.just(deep(70)), st.just(deep(10_000)),
    st.just("z" * 70_000), st.just({"k": [math.nan]}),
    st.sampled_from(["../x", "a/b", ".hidden", "", "x" * 200, "ok-agent", None, 7]),
    st.sampled_from([["not-a-uuid"], ["00000000-0000-4000-8000-000000000000"], "str", [1]]),
    st.sampled_from([{"start": "yesterday"}, {"start": "2020-13"}, {"start": 5}, "2020"]),
    st.sampled_from(["External:Nope", "nobody", {"type": "External"}, {"type": 1}]),
)  # fmt: skip


LEGAL_WHEN_WELL_FORMED = {
    "agent_id", "value", "valid_time", "valid_time_confidence", "value_confidence", "cardinality",
    "criticality", "provenance", "subject", "predicate", "derived_from",
}  # fmt: skip


@PROFILE
@given(field=MALFORMED_FIELD, bad=BAD_VALUES)
def test_malformed_requests_raise_or_reject(backend: Backend, field: str, bad: Any) -> None:
    """Bad input raises or is Rejected and changes nothing; input that is accepted after all is
    stored exactly as parsed (normalised). Either way nothing lands outside the store."""
    engine = backend.open()
    agent = f"bad-{next(_agents)}"
    put(engine, "Berlin", agent_id=agent)
    before = belief_of(engine, agent)
    claims_before = len(engine.query_history(agent, "user", "city"))
    body: dict[str, Any] = {
        "agent_id": agent,
        "subject": "user",
        "predicate": "city",
        "value": "Paris",
    }
    if field == "missing":
        body.pop("value")
    elif field == "extra":
        body["surprise"] = bad
    else:
        body[field] = bad
    root = backend.tmp_path
    files_before = set(_all_files(root.parent))
    try:
        receipt = engine.ingest(body)
    except ValidationError:
        receipt = None
    created = set(_all_files(root.parent)) - files_before
    assert all(Path(p).is_relative_to(root) for p in created), created  # on every branch
    if receipt is not None and receipt.disposition is not Disposition.REJECTED:
        assert field in LEGAL_WHEN_WELL_FORMED  # it parsed and was acceptable
        stored_as_parsed(engine, body, receipt.claim_ref)
        return
    if receipt is not None:
        assert receipt.reason
    assert len(engine.query_history(agent, "user", "city")) == claims_before
    assert belief_of(engine, agent) == before
    assert all(e.claim_ref is None for e in ledger(engine, agent)[1:])


def stored_as_parsed(engine: Engine, body: dict[str, Any], claim_ref: str) -> None:
    """The stored row is the parsed request, normalised: canonical value text, enum members,
    UTC instants at µs, the effective valid-time confidence; and reads return the value."""
    request = parse.ingest_request(body)
    with engine.store.read(request.agent_id) as reader:
        row = reader.claim(claim_ref)
    if row is None:  # a recall echo (R1) writes no row; its receipt names the matched claim
        assert request.provenance.value == "RecallReEntry"
        return
    window = request.valid_time or ValidTime()
    assert (row.subject, row.predicate) == (request.subject, request.predicate)
    assert row.value == canonical_json(request.value)
    assert loads(row.value) == request.value
    assert (row.provenance, row.cardinality, row.criticality) == (
        request.provenance,
        request.cardinality,
        request.criticality,
    )
    assert row.value_confidence == request.value_confidence
    assert row.valid_time_confidence == effective_time_confidence(request)
    assert (row.valid_from, row.valid_until) == (window.valid_from, window.valid_until)
    assert row.derived_from == request.derived_from
    history = engine.query_history(request.agent_id, request.subject, request.predicate)
    (entry,) = [e for e in history if e.claim_ref == claim_ref]
    assert canonical_json(entry.value) == row.value


#: Inputs that must never be accepted, whatever else the request holds: (field, value, the
#: ValidationError it raises or the reason it is Rejected with).
MUST_REJECT: list[tuple[str, Any, str]] = [
    ("value_confidence", True, "ValidationError"),
    ("value_confidence", False, "ValidationError"),
    ("valid_time_confidence", True, "ValidationError"),
    ("value_confidence", "0.5", "ValidationError"),
    ("value_confidence", 1.5, "confidence_out_of_range"),
    ("value_confidence", -0.0001, "confidence_out_of_range"),
    ("value_confidence", math.nan, "confidence_out_of_range"),
    ("valid_time_confidence", math.inf, "confidence_out_of_range"),
    ("provenance", "External:Nope", "ValidationError"),
    ("provenance", "External", "ValidationError"),
    ("provenance", {"type": "External", "kind": "Hearsay"}, "ValidationError"),
    ("provenance", 1, "ValidationError"),
    ("cardinality", "Many", "ValidationError"),
    ("criticality", "Severe", "ValidationError"),
    ("agent_id", "../x", "ValidationError"),
    ("agent_id", "a/b", "ValidationError"),
    ("agent_id", ".hidden", "ValidationError"),
    ("agent_id", "a" * 129, "ValidationError"),
    ("agent_id", "a b", "ValidationError"),
    ("agent_id", "ä", "ValidationError"),
    ("agent_id", "", "ValidationError"),
    ("subject", 5, "ValidationError"),
    ("subject", "", "empty_key"),
    ("predicate", "p" * 1025, "key_too_long"),
    ("subject", "a\x00", "invalid_text"),
    ("value", {1, 2}, "ValidationError"),
    ("value", b"bytes", "ValidationError"),
    ("value", {1: "x"}, "ValidationError"),
    ("value", [math.nan], "non_finite_number"),
    ("value", {"k": "\ud800"}, "invalid_text"),
    ("derived_from", "00000000-0000-4000-8000-000000000000", "ValidationError"),
    ("derived_from", [1], "ValidationError"),
    ("derived_from", ["00000000-0000-4000-8000-000000000000"], "unknown_parent"),
    ("valid_time", {"start": "2020-13"}, "ValidationError"),
    ("valid_time", {"start": "yesterday"}, "ValidationError"),
    ("valid_time", "2020", "ValidationError"),
    ("valid_time", {"start": 2020}, "ValidationError"),
]


@pytest.mark.parametrize(("field", "bad", "outcome"), MUST_REJECT, ids=lambda v: repr(v)[:30])
def test_inputs_that_must_be_refused(backend: Backend, field: str, bad: Any, outcome: str) -> None:
    engine = backend.open()
    body: dict[str, Any] = {"agent_id": "a1", "subject": "user", "predicate": "city", "value": 1}
    body[field] = bad
    if outcome == "ValidationError":
        with pytest.raises(ValidationError):
            engine.ingest(body)
        return
    receipt = engine.ingest(body)
    assert (receipt.disposition, receipt.reason) == (Disposition.REJECTED, outcome)


def belief_of(engine: Engine, agent: str) -> tuple[object, ...]:
    belief = engine.query_memory(agent, "user", "city", valid_at="2026-06-01")
    return belief.status, [(s.claim_ref, s.value) for s in belief.candidates], belief.markers


def _all_files(top: Path) -> list[str]:
    return [os.path.join(d, f) for d, _, files in os.walk(top) for f in files]


# ---------------------------------------------------------------- the line cache


VALID_INSTANTS = (None, "2009", "2011", "2012", "2013", "2015", "2016-06", "2018", "2030")


def uncached(engine: Engine, agent: str, predicate: str) -> list[dict[str, Any]]:
    """Projections and history folded by plain scans of a fresh full read (no cache, no index)."""
    from mempill.core.fold import Scan, history, project, views
    from mempill.core.parse import optional_moment

    now = engine.clock()
    with engine.store.read(agent) as reader:
        line = Scan(views(reader.line("s", predicate), engine.config))
    key = {"agent_id": agent, "subject": "s", "predicate": predicate, "as_of": None}
    found = [
        project(line, **key, valid_at=optional_moment(at, "at"), now=now, config=engine.config)
        for at in VALID_INSTANTS
    ]
    return [p.to_dict() for p in found] + [
        history(line, **key, now=now, config=engine.config).to_dict()
    ]


def cached(engine: Engine, agent: str, predicate: str) -> list[dict[str, Any]]:
    found = [engine.query_memory(agent, "s", predicate, valid_at=at) for at in VALID_INSTANTS]
    return [p.to_dict() for p in found] + [engine.query_history(agent, "s", predicate).to_dict()]


@PROFILE
@given(operations=st.lists(st.tuples(st.booleans(), OPERATION), min_size=1, max_size=20))
def test_line_cache_returns_exactly_the_fold(
    backend: Backend, operations: list[tuple[bool, tuple[str, Any]]]
) -> None:
    """The cached, indexed line answers exactly as plain scans of a fresh read, at many
    valid instants; two engines share one store (one's cache goes stale behind the other's
    writes)."""
    from datetime import timedelta

    from mempill import SteppingClock

    stopped = SteppingClock(backend.clock(), timedelta(0))
    first = backend.open(clock=stopped)
    second = first if backend.name == "sqlite-mem" else backend.open(clock=stopped)
    agent = f"cache-{next(_agents)}"
    refs: list[str] = []
    for use_second, op in operations:
        apply(second if use_second else first, agent, op, refs)
        for engine, predicate in itertools.product((first, second), ("p", "q")):
            assert cached(engine, agent, predicate) == uncached(engine, agent, predicate)
