"""`mempill.compat`: the published 0.4 wheel's dict API, shapes and behaviour (reference §10-11).

The WHEEL_* literals were produced by the 0.4.0 wheel itself (/tmp/ref probes, Nov 2026)
and are kept here because CI has no wheel: every key the wheel returned must be present
with a value of the same JSON type. Behaviour follows reference §11 where the wheel was wrong.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from importlib.util import find_spec
from pathlib import Path
from typing import Any

import pytest
from conftest import Backend

import mempill
from mempill import (
    ConfigError,
    ConflictError,
    EngineConfig,
    NotFoundError,
    SeededIds,
    SteppingClock,
    ValidationError,
    compat,
)
from mempill.compat import CompatEngine, WheelOracle
from mempill.compat import api as compat_api

A = "agent-1"
UA = {"type": "External", "kind": "UserAsserted"}
CONF = {"value_confidence": 1.0, "valid_time_confidence": 1.0}
REF = "7bf4d52c-2241-4f42-bd87-12feb7d18703"
TX = "2026-11-26T14:20:12.358790911Z"

# ---------------------------------------------------------------- the wheel's shapes

WHEEL_RECEIPT = {"claim_ref": REF, "disposition": "Contested", "contested_with": [REF]}
WHEEL_WINDOW = {"start": "2020-01-01T00:00:00Z", "end": None, "valid_time_confidence": 0.9}
WHEEL_SLOT = {
    "claim_ref": REF,
    "fact": {"subject": "user", "predicate": "job", "value": "x"},
    "provenance": UA,
    "valid_time": {**WHEEL_WINDOW, "start_granularity": "year"},
    "transaction_time": TX,
    "confidence": {"value_confidence": 1.0, "valid_time_confidence": 0.9},
    "currency_signal": {"last_refreshed_at": TX, "state": "Fresh", "corroboration_count": 0},
    "criticality": "Medium",
    "valid_from_display": "2020",
}
WHEEL_BELIEF = {
    "status": "Resolved",
    "primary": WHEEL_SLOT,
    "alternatives": [],
    "currency": "Fresh",
    "criticality": "Medium",
    "staleness": {"is_stale": False, "reason": None},
    "markers": [],
}
WHEEL_NO_BELIEF = {
    **WHEEL_BELIEF,
    "status": "NoBelief",
    "primary": None,
    "currency": "Decayed",
    "criticality": "Low",
    "staleness": {"is_stale": True, "reason": "no live claim"},
}
WHEEL_HISTORY_ENTRY = {
    "claim_ref": REF,
    "value": "Berlin",
    "valid_from": "2020-01-01T00:00:00Z",
    "valid_until": "2025-01-01T00:00:00Z",
    "valid_from_granularity": "day",
    "valid_until_granularity": "day",
    "status": "Ended",
    "provenance": "External/UserAsserted",
    "value_confidence": 1.0,
    "valid_from_display": "2020-01-01",
    "valid_until_display": "2025-01-01",
}
WHEEL_SUBJECT_ROW = {
    "predicate": "city",
    "value": "Munich",
    "status": "Resolved",
    "valid_from_display": "2025-01-01",
    "valid_until_display": None,
    "provenance": "External/UserAsserted",
    "claim_ref": REF,
    "conf": 1.0,
}
WHEEL_LEDGER_ENTRY = {
    "entry_id": REF,
    "agent_id": "a1",
    "claim_ref": REF,
    "event_kind": "ClaimCommitted",
    "disposition": "CommittedCheap",
    "rationale": {"route": "cheap_path"},
    "recorded_at": TX,
}
WHEEL_BOUND = {
    "claim_ref": REF,
    "assertion_ref": REF,
    "kind": {"Bound": {"bound_at": "2022-01-01T00:00:00Z", "bound_at_granularity": "month"}},
    "effective_at": "2022-01-01T00:00:00Z",
    "disposition": "Superseded",
    "no_op": False,
}
WHEEL_REOPEN = {
    **WHEEL_BOUND,
    "kind": {"Reopen": {"reopen_at": TX}},
    "effective_at": TX,
    "disposition": "Reinstated",
}
WHEEL_RESOLVE = {"status": "single", "claim_ref": REF, "live_count": None}
WHEEL_RECONCILE = {"outcomes": [[REF, "QueuedForAdjudication"]], "oracle_escalations": 1}
WHEEL_CLAIM: dict[str, Any] = {
    "claim_ref": REF,
    "agent_id": "a1",
    "fact": {"subject": "user", "predicate": "city", "value": "Paris"},
    "cardinality": "Functional",
    "provenance": UA,
    "external_anchor": {"nearest_external_anchor": None, "derivation_depth": 0},
    "transaction_time": TX,
    "valid_time": {"start": None, "end": None, "valid_time_confidence": 0.0},
    "confidence": {"value_confidence": 1.0, "valid_time_confidence": 0.0},
    "criticality": "Medium",
    "derived_from": [],
    "metadata": None,
    "snapshot_schema_version": None,
}
WHEEL_ORACLE_REQUEST = {
    "subject_line": {"agent_id": "a1", "subject": "user", "predicate": "city"},
    # the wheel sent the incumbent as a belief slot (with currency_signal); compat sends
    # the claim shape, like the challenger: the outbox row does not hold a currency.
    "incumbent": {k: v for k, v in WHEEL_CLAIM.items() if k != "currency_signal"},
    "challenger": WHEEL_CLAIM,
    "criticality": "Medium",
    "reason": "ExternalContradiction",
}
WHEEL_PENDING = {
    "handle_id": REF,
    "agent_id": "a1",
    "subject": "user",
    "predicate": "city",
    "incumbent_value": "Berlin",
    "challenger_value": "Paris",
    "queued_at": "2026-11-26T14:20:12.362721131+00:00",
    "expires_at": None,
    "status": "pending",
    "request_payload": WHEEL_ORACLE_REQUEST,
}
WHEEL_SUBMIT = {"handle_id": REF, "disposition": "CommittedCheap", "claim_ref": REF}


def assert_shape(ours: Any, wheel: Any, path: str = "$") -> None:
    """Every key of the wheel's answer is in ours, with a value of the same JSON type."""
    if wheel is None:
        return
    if isinstance(wheel, dict):
        assert isinstance(ours, dict), f"{path}: {ours!r} is not a dict"
        assert not set(wheel) - set(ours), f"{path}: missing {set(wheel) - set(ours)}"
        for key, value in wheel.items():
            assert_shape(ours[key], value, f"{path}.{key}")
    elif isinstance(wheel, list):
        assert isinstance(ours, list), f"{path}: {ours!r} is not a list"
        if wheel and ours:
            assert_shape(ours[0], wheel[0], f"{path}[0]")
    elif isinstance(wheel, bool):
        assert isinstance(ours, bool), f"{path}: {ours!r} is not a bool"
    elif isinstance(wheel, (int, float)):
        assert isinstance(ours, (int, float)) and not isinstance(ours, bool), f"{path}: {ours!r}"
    else:
        assert isinstance(ours, type(wheel)), f"{path}: {ours!r} is not a {type(wheel).__name__}"


# ---------------------------------------------------------------- helpers


def claim(
    value: Any, subject: str = "user", predicate: str = "city", **over: Any
) -> dict[str, Any]:
    """A full wheel ingest request (every key the wheel required)."""
    body = {
        "agent_id": A,
        "subject": subject,
        "predicate": predicate,
        "value": value,
        "provenance": UA,
        "cardinality": "Functional",
        "valid_time": None,
        "confidence": {"value_confidence": 1.0, "valid_time_confidence": 0.0},
        "criticality": "Medium",
        "derived_from": [],
    }
    return body | over


def window(
    start: str | None = None, end: str | None = None, vtc: float = 1.0, **g: str
) -> dict[str, Any]:
    return {"start": start, "end": end, "valid_time_confidence": vtc, **g}


def memory(
    e: CompatEngine, subject: str = "user", predicate: str = "city", **q: Any
) -> dict[str, Any]:
    belief: dict[str, Any] = e.query_memory(
        {"agent_id": A, "subject": subject, "predicate": predicate, **q}
    )["belief"]
    return belief


def history(
    e: CompatEngine, subject: str = "user", predicate: str = "city"
) -> list[tuple[Any, str]]:
    found = e.query_history({"agent_id": A, "subject": subject, "predicate": predicate})
    return [(x["value"], x["status"]) for x in found["entries"]]


def audit(e: CompatEngine, **q: Any) -> list[dict[str, Any]]:
    entries: list[dict[str, Any]] = e.query_audit({"agent_id": A, "limit": 1000, **q})["entries"]
    return entries


def assertion(e: CompatEngine, ref: str, kind: str, **over: Any) -> dict[str, Any]:
    """An assert_validity request; `value=` for a Bound, `key=None` drops a key."""
    shape = {"type": kind} | ({"value": over.pop("value")} if "value" in over else {})
    body = {"agent_id": A, "target": ref, "assertion": shape, "provenance": UA, "confidence": CONF}
    return e.assert_validity({k: v for k, v in (body | over).items() if v is not None})


def bound(
    e: CompatEngine, ref: str, at: str, granularity: str | None = None, **over: Any
) -> dict[str, Any]:
    value = {"at": at} | ({"at_granularity": granularity} if granularity else {})
    return assertion(e, ref, "Bound", value=value, **over)


def reopen(e: CompatEngine, ref: str) -> dict[str, Any]:
    return assertion(e, ref, "Reopen")


def submit(e: CompatEngine, handle: str, verdict: str = "Affirm", **over: Any) -> dict[str, Any]:
    body = {"handle_id": handle, "verdict": verdict, "evidence_provenance": UA}
    return e.submit_adjudication({k: v for k, v in (body | over).items() if v is not None})


class WheelStyleOracle:
    """An oracle in the wheel's convention: (agent_id, request dict) -> its own handle."""

    def __init__(self, answer: Any = "oracle-{n}") -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.answer = answer
        self.fail = False

    def request_adjudication(self, agent_id: str, request: dict[str, Any]) -> Any:
        if self.fail:
            raise RuntimeError("oracle is down")
        self.calls.append((agent_id, request))
        return (
            self.answer.format(n=len(self.calls)) if isinstance(self.answer, str) else self.answer
        )


@pytest.fixture
def ce(backend: Backend) -> CompatEngine:
    """A compat engine over the current backend, without an oracle."""
    if backend.is_postgres and find_spec("mempill.stores.postgres") is None:
        pytest.skip("mempill.stores.postgres is not there yet")
    return compat.wrap(backend.open())


@pytest.fixture
def with_oracle(backend: Backend) -> tuple[CompatEngine, WheelStyleOracle]:
    if backend.is_postgres and find_spec("mempill.stores.postgres") is None:
        pytest.skip("mempill.stores.postgres is not there yet")
    oracle = WheelStyleOracle()
    engine = backend.open(
        oracle=WheelOracle(oracle), config=EngineConfig(default_adjudication_ttl_seconds=60)
    )
    return compat.wrap(engine), oracle


# ---------------------------------------------------------------- writes


def test_ingest_receipts_have_the_wheel_shape(ce: CompatEngine) -> None:
    first = ce.ingest_claim(claim("Berlin"))
    second = ce.ingest_claim(claim("Paris"))
    assert_shape(second, WHEEL_RECEIPT)
    assert (first["disposition"], first["contested_with"]) == ("CommittedCheap", [])
    assert (second["disposition"], second["contested_with"]) == ("Contested", [first["claim_ref"]])
    assert second["reason"] == "conflict" and "handle_id" not in second
    keyed = claim("Rome", "other", claim_ref=REF)  # the wheel ignored claim_ref; it is honoured
    assert ce.ingest_claim(keyed)["claim_ref"] == REF
    assert ce.ingest_claim(keyed) == ce.ingest_claim(keyed)  # a retry returns the stored receipt
    assert (
        len(ce.query_history({"agent_id": A, "subject": "other", "predicate": "city"})["entries"])
        == 1
    )


def test_restating_corroborates_instead_of_contesting(ce: CompatEngine) -> None:
    """reference §11: the wheel reported two equal Berlin claims as Contested."""
    first = ce.ingest_claim(claim("Berlin"))
    again = ce.ingest_claim(claim("Berlin"))
    assert (again["disposition"], again["reason"]) == ("CommittedCheap", "corroboration")
    belief = memory(ce)
    assert belief["status"] == "TimingUncertain" and "Contested" not in belief["markers"]
    assert belief["primary"]["currency_signal"]["corroboration_count"] == 1
    assert belief["primary"]["claim_refs"] == [first["claim_ref"], again["claim_ref"]]


def test_every_ingest_route_reports_its_disposition(ce: CompatEngine) -> None:
    base = ce.ingest_claim(claim("Berlin"))
    echo = ce.ingest_claim(
        claim("Berlin", provenance={"type": "RecallReEntry"}, derived_from=[base["claim_ref"]])
    )
    assert (echo["disposition"], echo["claim_ref"]) == ("CommittedCheap", base["claim_ref"])
    unknown = ce.ingest_claim(
        claim("x", "s", provenance={"type": "RecallReEntry"}, derived_from=[REF])
    )
    assert (unknown["disposition"], unknown["reason"]) == ("Rejected", "unknown_recall_ref")
    model = ce.ingest_claim(claim("Rome", "m", provenance={"type": "ModelDerived"}))
    assert model["disposition"] == "CommittedInferred"
    low = ce.ingest_claim(
        claim("x", "low", confidence={"value_confidence": 0.1, "valid_time_confidence": 0.0})
    )
    assert low["disposition"] == "PendingLowConfidence"
    backwards = window("2021-01-01T00:00:00Z", "2020-01-01T00:00:00Z")
    assert ce.ingest_claim(claim("x", "q", valid_time=backwards))["disposition"] == "Quarantined"
    assert ce.ingest_claim(claim("x", "", confidence=CONF))["reason"] == "empty_key"
    assert ce.ingest_claim(claim(float("nan"), "n"))["reason"] == "non_finite_number"
    orphan = claim("x", "o", provenance={"type": "ModelDerived"}, derived_from=[REF])
    assert ce.ingest_claim(orphan)["reason"] == "unknown_parent"  # the wheel: StorageError


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"provenance": None}, "provenance"),
        ({"provenance": {"type": "External"}}, "provenance"),
        ({"cardinality": "Many"}, "cardinality"),
        ({"criticality": "Urgent"}, "criticality"),
        ({"confidence": 1.0}, "confidence"),
        ({"confidence": {"value_confidence": 1.0}}, "valid_time_confidence"),
        ({"valid_time": {"start": "2020-01-01"}}, "valid_time_confidence"),
        ({"valid_time": window("March 2020")}, "valid_time.start"),
        ({"valid_tiem": window("2020")}, "valid_tiem"),
        ({"agent_id": "../x"}, "agent_id"),
        ({"derived_from": "not-a-list"}, "derived_from"),
        ({"value": {1, 2}}, "value"),
    ],
)
def test_malformed_requests_raise_and_write_nothing(
    ce: CompatEngine, change: dict[str, Any], message: str
) -> None:
    with pytest.raises(ValidationError, match=message):
        ce.ingest_claim({k: v for k, v in (claim("x") | change).items() if v is not None})
    assert audit(ce) == []


@pytest.mark.parametrize(
    "missing", ["provenance", "cardinality", "confidence", "criticality", "derived_from"]
)
def test_keys_the_wheel_required_are_required(ce: CompatEngine, missing: str) -> None:
    with pytest.raises(ValidationError, match=f"missing required field.*{missing}"):
        ce.ingest_claim({k: v for k, v in claim("x").items() if k != missing})
    with pytest.raises(ValidationError, match="expected a dict"):
        ce.ingest_claim([claim("x")])
    assert audit(ce) == []


def test_values_are_parsed_leniently(ce: CompatEngine) -> None:
    lenient = claim(
        "x",
        provenance="external:userasserted",
        cardinality="setvalued",
        criticality="high",
        valid_time=window("2020-03", vtc=0.9),
    )
    assert ce.ingest_claim(lenient)["disposition"] == "CommittedCheap"
    slot = memory(ce)["primary"]
    assert (slot["criticality"], slot["cardinality"], slot["valid_from_display"]) == (
        "High",
        "SetValued",
        "2020-03",
    )
    assert slot["valid_time"] == {
        "start": "2020-03-01T00:00:00Z",
        "end": None,
        "valid_time_confidence": 0.9,
        "start_granularity": "month",
    }


def test_the_window_copy_of_valid_time_confidence_wins(ce: CompatEngine) -> None:
    """As in the wheel: confidence says 0.1, the window says 0.9 → 0.9 (trusted)."""
    ce.ingest_claim(
        claim(
            "x",
            valid_time=window("2020-01-01T00:00:00Z", vtc=0.9),
            confidence={"value_confidence": 1.0, "valid_time_confidence": 0.1},
        )
    )
    slot = memory(ce)["primary"]
    assert slot["confidence"]["valid_time_confidence"] == 0.9
    assert slot["effective_window"]["valid_from"] == "2020-01-01T00:00:00Z"


# ---------------------------------------------------------------- reads


def test_query_memory_has_the_wheel_shape(ce: CompatEngine) -> None:
    ce.ingest_claim(
        claim(
            "x",
            predicate="job",
            valid_time=window("2020-01-01T00:00:00Z", vtc=0.9, start_granularity="year"),
        )
    )
    belief = memory(ce, predicate="job")
    assert_shape(belief, WHEEL_BELIEF)
    assert belief["primary"]["valid_time"] == {**WHEEL_WINDOW, "start_granularity": "year"}
    assert (
        belief["primary"]["valid_from_display"] == "2020"
        and "valid_until_display" not in belief["primary"]
    )
    assert_shape(memory(ce, predicate="nothing"), WHEEL_NO_BELIEF)
    empty = memory(ce, predicate="nothing")
    assert (empty["currency"], empty["staleness"]) == (
        "Decayed",
        {"is_stale": True, "reason": "no_claims"},
    )


def test_contested_belief_lists_every_side_and_picks_none(ce: CompatEngine) -> None:
    ce.ingest_claim(claim("Alice", "acme", "ceo"))
    ce.ingest_claim(claim("Bob", "acme", "ceo"))
    belief = memory(ce, "acme", "ceo")
    assert (belief["status"], belief["primary"], belief["markers"]) == (
        "Contested",
        None,
        ["Contested"],
    )
    assert [s["fact"]["value"] for s in belief["alternatives"]] == ["Alice", "Bob"]
    (row,) = ce.query_subject({"agent_id": A, "subject": "acme"})
    assert (row["status"], row["value"], row["claim_ref"]) == ("Contested", None, None)
    assert [c["value"] for c in row["candidates"]] == ["Alice", "Bob"]


def test_set_valued_members_resolve(ce: CompatEngine) -> None:
    """reference §11: the wheel contested two SetValued members."""
    for lang in ("en", "de"):
        assert (
            ce.ingest_claim(claim(lang, "s", "lang", cardinality="SetValued"))["disposition"]
            == "CommittedCheap"
        )
    belief = memory(ce, "s", "lang")
    assert (belief["status"], belief["alternatives"]) == ("Resolved", [])
    assert [m["fact"]["value"] for m in belief["members"]] == ["en", "de"]
    assert ce.resolve_live_claim_for_line(A, "s", "lang")["status"] == "ambiguous"


def test_bitemporal_reads(ce: CompatEngine, backend: Backend) -> None:
    ce.ingest_claim(
        claim("Berlin", valid_time=window("2020-01-01T00:00:00Z", "2025-01-01T00:00:00Z"))
    )
    ce.ingest_claim(claim("Munich", valid_time=window("2025-01-01T00:00:00Z")))
    assert memory(ce, valid_at="2022-06-01T00:00:00Z")["primary"]["fact"]["value"] == "Berlin"
    assert memory(ce, valid_at="2022")["primary"]["fact"]["value"] == "Berlin"
    assert memory(ce)["primary"]["fact"]["value"] == "Munich"
    before = memory(ce, as_of_tx_time="2025-12-31T00:00:00Z")
    assert (before["status"], before["reason"], before["as_of_tx_time"]) == (
        "NoBelief",
        "no_claims",
        "2025-12-31T00:00:00.000000Z",
    )
    with pytest.raises(ValidationError, match="as_of_tx_time"):
        memory(ce, as_of_tx_time="yesterday")
    with pytest.raises(ValidationError, match="unknown field"):
        memory(ce, as_of="2020")


def test_query_subject_rows(ce: CompatEngine) -> None:
    ce.ingest_claim(claim({"x": [1, 2]}, "multi", "b"))
    ce.ingest_claim(claim(3, "multi", "a", criticality="High"))
    backwards = window("2021-01-01T00:00:00Z", "2020-01-01T00:00:00Z")
    ce.ingest_claim(claim("x", "multi", "c", valid_time=backwards))
    ce.ingest_claim(claim("Munich", "multi", "city", valid_time=window("2025-01-01T00:00:00Z")))
    rows = ce.query_subject({"agent_id": A, "subject": "multi"})
    assert_shape(rows[3], WHEEL_SUBJECT_ROW)
    assert [(r["predicate"], r["value"], r["status"]) for r in rows] == [
        ("a", "3", "TimingUncertain"),
        ("b", '{"x":[1,2]}', "TimingUncertain"),
        ("c", None, "NoBelief"),
        ("city", "Munich", "Resolved"),
    ]
    assert rows[3]["valid_from_display"] == "2025-01-01" and rows[3]["valid_until_display"] is None
    assert rows[0]["candidates"][0]["value"] == 3 and rows[2]["provenance"] == "none"
    assert ce.query_subject({"agent_id": A, "subject": "nobody"}) == []


def test_history_has_the_wheel_shape_and_the_spec_statuses(ce: CompatEngine) -> None:
    ce.ingest_claim(
        claim(
            "Berlin",
            valid_time=window(
                "2020-01-01T00:00:00Z",
                "2025-01-01T00:00:00Z",
                start_granularity="day",
                end_granularity="day",
            ),
        )
    )
    munich = ce.ingest_claim(claim("Munich", valid_time=window("2025-01-01T00:00:00Z")))
    found = ce.query_history({"agent_id": A, "subject": "user", "predicate": "city"})
    assert_shape(found["entries"][0], WHEEL_HISTORY_ENTRY)
    assert WHEEL_HISTORY_ENTRY.items() <= (found["entries"][0] | {"claim_ref": REF}).items()
    assert history(ce) == [("Berlin", "Ended"), ("Munich", "Current")]
    bound(
        ce, munich["claim_ref"], "2026-02-01T00:00:00Z", "month"
    )  # a future bound (reference §11)
    entry = ce.query_history({"agent_id": A, "subject": "user", "predicate": "city"})["entries"][1]
    assert (entry["status"], entry["state"], entry["valid_until"]) == (
        "Current",
        "Superseded",
        "2026-02-01T00:00:00Z",
    )
    assert (entry["valid_until_granularity"], entry["valid_until_display"]) == ("month", "2026-02")
    assert entry["valid_time"]["end"] is None  # the stored window is unchanged
    backdated = {
        "agent_id": A,
        "subject": "user",
        "predicate": "city",
        "as_of_tx_time": "2026-01-01T00:00:00Z",
    }
    assert [e["value"] for e in ce.query_history(backdated)["entries"]] == ["Berlin"]


def test_audit_is_chronological_and_filters_before_its_limit(
    ce: CompatEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = ce.ingest_claim(claim("Berlin", "a"))["claim_ref"]
    for n in range(5):
        ce.ingest_claim(claim(n, "b"))
    bound(ce, target, "2026-06-01T00:00:00Z")
    page = ce.query_audit({"agent_id": A, "claim_ref": target, "limit": 1})
    assert_shape(page["entries"], [WHEEL_LEDGER_ENTRY])
    assert [e["event_kind"] for e in page["entries"]] == ["ClaimCommitted"]  # the wheel: []
    rest = ce.query_audit(
        {"agent_id": A, "claim_ref": target, "limit": 5, "after_seq": page["next_cursor"]}
    )
    assert [e["disposition"] for e in rest["entries"]] == ["Superseded"] and rest[
        "next_cursor"
    ] is None
    seqs = [e["stream_seq"] for e in audit(ce)]
    assert seqs == sorted(seqs) == list(range(1, 8))
    since = audit(ce)[3]["recorded_at"]
    assert [e["stream_seq"] for e in audit(ce, from_tx_time=since)] == [4, 5, 6, 7]
    monkeypatch.setattr(compat_api, "AUDIT_SEEK_PAGE", 2)  # seek across several pages
    assert [e["stream_seq"] for e in audit(ce, from_tx_time=since, limit=2)] == [4, 5]
    assert [e["stream_seq"] for e in audit(ce, claim_ref=target, from_tx_time=since)] == [7]
    assert audit(ce, from_tx_time="2999") == []
    with pytest.raises(ValidationError, match="limit"):
        ce.query_audit({"agent_id": A})
    with pytest.raises(ValidationError, match="claim_ref"):
        ce.query_audit({"agent_id": A, "limit": 1, "claim_ref": "zz"})


# ---------------------------------------------------------------- validity assertions


def test_assert_validity_bound_reopen_invalidate(ce: CompatEngine) -> None:
    ref = ce.ingest_claim(
        claim("x", "u", "job", valid_time=window("2020-01-01T00:00:00Z", vtc=0.9))
    )["claim_ref"]
    done = bound(ce, ref, "2022-01-01T00:00:00Z", "month")
    assert_shape(done, WHEEL_BOUND)
    assert (done["disposition"], done["no_op"], done["effective_at"]) == (
        "Superseded",
        False,
        "2022-01-01T00:00:00Z",
    )
    assert done["kind"] == {
        "Bound": {"bound_at": "2022-01-01T00:00:00Z", "bound_at_granularity": "month"}
    }
    again = bound(ce, ref, "2022-01", "month")
    assert (again["no_op"], again["effective_at"]) == (True, "2022-01-01T00:00:00Z")
    assert again["assertion_ref"] == done["assertion_ref"]  # the bound in force, as in the wheel
    with pytest.raises(ConflictError, match="reopen"):
        bound(ce, ref, "2023-01-01T00:00:00Z")
    undone = reopen(ce, ref)
    assert_shape(undone, WHEEL_REOPEN)
    assert (undone["disposition"], undone["kind"]["Reopen"]["reopen_at"]) == (
        "Reinstated",
        undone["effective_at"],
    )
    assert reopen(ce, ref)["no_op"] is True
    gone = assertion(ce, ref, "Invalidate")
    assert gone["disposition"] == "Invalidated"
    assert memory(ce, "u", "job")["status"] == "NoBelief" and history(ce, "u", "job") == [
        ("x", "Invalidated")
    ]


def test_assert_validity_refusals(ce: CompatEngine) -> None:
    ref = ce.ingest_claim(claim("x", valid_time=window("2025-01-01T00:00:00Z")))["claim_ref"]
    early = bound(ce, ref, "2024-01-01")
    assert (early["disposition"], early["reason"]) == (
        "Rejected",
        "bound_before_start",
    )  # wheel: raised
    model = bound(ce, ref, "2026-01-01", provenance={"type": "ModelDerived"})
    assert (model["disposition"], model["reason"]) == ("Rejected", "bound_requires_external")
    with pytest.raises(NotFoundError):
        bound(ce, REF, "2026-01-01")
    with pytest.raises(ValidationError, match="at_granularity"):
        bound(ce, ref, "2026-03-15T10:00:00Z", "month")
    with pytest.raises(ValidationError, match=r"assertion\.type"):
        assertion(ce, ref, "Shorten")
    with pytest.raises(ValidationError, match="confidence"):
        assertion(ce, ref, "Reopen", confidence=None)
    assert memory(ce)["primary"]["claim_ref"] == ref


def test_resolve_live_claim_for_line(ce: CompatEngine) -> None:
    assert ce.resolve_live_claim_for_line(A, "user", "city") == {
        "status": "empty",
        "claim_ref": None,
        "live_count": None,
        "claim_refs": [],
    }
    ref = ce.ingest_claim(claim("Berlin"))["claim_ref"]
    single = ce.resolve_live_claim_for_line(A, "user", "city")
    assert_shape(single, WHEEL_RESOLVE)
    assert (single["status"], single["claim_ref"]) == ("single", ref)
    ce.ingest_claim(claim("Berlin"))  # a corroboration: two live claims hold the belief
    twice = ce.resolve_live_claim_for_line(A, "user", "city")
    assert (twice["status"], twice["claim_ref"], twice["live_count"]) == ("ambiguous", None, 2)


# ---------------------------------------------------------------- the oracle loop


def contest(e: CompatEngine, subject: str = "user") -> tuple[str, dict[str, Any]]:
    incumbent = e.ingest_claim(claim("Berlin", subject))["claim_ref"]
    challenger = e.ingest_claim(claim("Paris", subject))
    assert challenger["disposition"] == "QueuedForAdjudication"
    return incumbent, challenger


def test_the_oracle_gets_the_wheel_request_and_its_handle_is_an_alias(
    with_oracle: tuple[CompatEngine, WheelStyleOracle],
) -> None:
    ce, oracle = with_oracle
    incumbent, challenger = contest(ce)
    assert (challenger["contested_with"], challenger["oracle_notified"]) == ([incumbent], True)
    ((agent, request),) = oracle.calls
    assert agent == A
    assert_shape(request, WHEEL_ORACLE_REQUEST)
    assert (
        request["incumbent"]["fact"]["value"] == "Berlin"
        and request["challenger"]["fact"]["value"] == "Paris"
    )
    assert request["handle_id"] == challenger["handle_id"]
    (pending,) = ce.list_pending_adjudications()
    assert_shape(pending, WHEEL_PENDING)
    assert (pending["handle_id"], pending["oracle_handle_id"]) == (
        challenger["handle_id"],
        "oracle-1",
    )
    assert (pending["incumbent_value"], pending["challenger_value"]) == ("Berlin", "Paris")
    assert (
        ce.list_pending_adjudications(A) == [pending]
        and ce.list_pending_adjudications("other") == []
    )
    outcome = submit(ce, "oracle-1")
    assert_shape(outcome, WHEEL_SUBMIT)
    assert outcome == {
        "handle_id": "oracle-1",
        "disposition": "CommittedCheap",
        "claim_ref": challenger["claim_ref"],
        "verdict": "Affirm",
        "superseded": [incumbent],
    }
    assert history(ce) == [("Berlin", "Superseded"), ("Paris", "Current")]
    with pytest.raises(NotFoundError):
        submit(ce, challenger["handle_id"], "Deny")


def test_deny_and_unknown_by_engine_handle(
    with_oracle: tuple[CompatEngine, WheelStyleOracle],
) -> None:
    ce, _ = with_oracle
    _, first = contest(ce, "a")
    _, second = contest(ce, "b")
    denied = submit(ce, first["handle_id"], "deny")
    assert denied["disposition"] == "Superseded" and history(ce, "a") == [
        ("Berlin", "Current"),
        ("Paris", "Denied"),
    ]
    unknown = submit(ce, second["handle_id"], "Unknown")
    assert unknown["disposition"] == "Contested" and memory(ce, "b")["status"] == "Contested"
    with pytest.raises(NotFoundError):
        submit(ce, REF)
    with pytest.raises(ValidationError, match="evidence_provenance"):
        submit(ce, REF, evidence_provenance=None)
    with pytest.raises(ValidationError, match="verdict"):
        submit(ce, REF, "Maybe")


def test_a_failing_oracle_never_orphans_the_claim(
    with_oracle: tuple[CompatEngine, WheelStyleOracle],
) -> None:
    """The wheel raised ConfigError from ingest_claim and kept no pending row."""
    ce, oracle = with_oracle
    oracle.fail = True
    _, challenger = contest(ce)
    assert challenger["oracle_notified"] is False
    (pending,) = ce.list_pending_adjudications()
    assert (pending["notified"], pending["oracle_handle_id"]) == (False, None)
    oracle.fail = False
    assert ce.notify_pending() == 1 and len(oracle.calls) == 1
    assert ce.list_pending_adjudications()[0]["oracle_handle_id"] == "oracle-1"


def test_handles_the_oracle_returns_twice_are_refused() -> None:
    oracle = WheelStyleOracle(answer="same")
    ce = compat.open_oracle_in_memory(
        oracle, clock=SteppingClock(datetime(2026, 1, 1, tzinfo=UTC)), ids=SeededIds(3)
    )
    contest(ce, "a")
    contest(ce, "b")
    with pytest.raises(NotFoundError, match="several"):
        submit(ce, "same")
    assert [p["oracle_handle_id"] for p in ce.list_pending_adjudications()] == [None, None]
    silent = compat.open_oracle_in_memory(WheelStyleOracle(answer=None))
    assert (
        silent.list_pending_adjudications() == [] and contest(silent)[1]["oracle_notified"] is True
    )
    with pytest.raises(ConfigError, match="request_adjudication"):
        compat.open_oracle_in_memory(object())


def test_sweep_expires_adjudications(
    with_oracle: tuple[CompatEngine, WheelStyleOracle], backend: Backend
) -> None:
    ce, _ = with_oracle
    _, challenger = contest(ce)
    assert ce.list_pending_adjudications()[0]["expires_at"] is not None
    assert ce.sweep_expired_adjudications() == 0
    backend.clock.advance(timedelta(minutes=5))
    assert ce.sweep_expired_adjudications() == 1
    assert ce.list_pending_adjudications() == [] and memory(ce)["status"] == "Contested"
    assert audit(ce, claim_ref=challenger["claim_ref"])[-1]["event_kind"] == "AdjudicationExpired"


def test_reconcile_without_an_oracle_only_reports(ce: CompatEngine) -> None:
    ce.ingest_claim(claim("Alice", "acme", "ceo"))
    ce.ingest_claim(claim("Bob", "acme", "ceo"))
    ce.ingest_claim(claim("Berlin"))
    quiet = ce.reconcile({"agent_id": A, "subject_lines": []})
    assert quiet["oracle_escalations"] == 0
    assert [(line["subject"], line["status"]) for line in quiet["lines"]] == [
        ("acme", "Contested"),
        ("user", "TimingUncertain"),
    ]
    assert [state for _, state in quiet["outcomes"]] == [
        "CommittedCheap",
        "Contested",
        "CommittedCheap",
    ]
    with pytest.raises(ValidationError, match="subject_lines"):
        ce.reconcile({"agent_id": A, "subject_lines": ["user"]})
    with pytest.raises(ValidationError, match="subject_lines"):
        ce.reconcile({"agent_id": A})


def test_reconcile_escalates_a_contested_line(
    with_oracle: tuple[CompatEngine, WheelStyleOracle],
) -> None:
    ce, oracle = with_oracle
    _, challenger = contest(ce)
    submit(ce, challenger["handle_id"], "Unknown")
    found = ce.reconcile({"agent_id": A, "subject_lines": [["user", "city"]]})
    assert_shape(found, WHEEL_RECONCILE)
    assert found["oracle_escalations"] == 1 and len(oracle.calls) == 2
    assert "QueuedForAdjudication" in [state for _, state in found["outcomes"]]
    assert found["lines"][0]["escalated"] is True and found["notified"] == [
        found["lines"][0]["handle_id"]
    ]
    assert (
        ce.reconcile({"agent_id": A, "subject_lines": [("user", "city")]})["oracle_escalations"]
        == 0
    )


# ---------------------------------------------------------------- the wheel's ergonomic flows


def gran(text: str) -> str:
    """The wheel's `date_granularity_of` for the forms its ergonomic layer accepts."""
    return {4: "year", 7: "month", 10: "day"}.get(len(text), "instant")


def rfc(text: str) -> str:
    """The wheel's `_to_rfc3339`: partial dates snap to the start of their period."""
    if "T" in text:
        return text
    year, month, day = [*text.split("-"), "01", "01"][:3]
    return f"{year}-{month}-{day}T00:00:00Z"


def remember(
    e: CompatEngine,
    subject: str,
    predicate: str,
    value: Any,
    valid_from: str | None = None,
    valid_until: str | None = None,
) -> dict[str, Any]:
    """A port of the wheel's `remember`: the dict it built, sent to `ingest_claim`."""
    vtc = 1.0 if valid_from or valid_until else 0.0
    vt: dict[str, Any] = {"valid_time_confidence": vtc}
    if valid_from:
        vt |= {"start": rfc(valid_from), "start_granularity": gran(valid_from)}
    if valid_until:
        vt |= {"end": rfc(valid_until), "end_granularity": gran(valid_until)}
    return e.ingest_claim(
        claim(
            value,
            subject,
            predicate,
            valid_time=vt,
            confidence={"value_confidence": 1.0, "valid_time_confidence": vtc},
        )
    )


def recall(e: CompatEngine, subject: str, predicate: str) -> tuple[Any, str, list[Any]]:
    """A port of the wheel's `recall`: (value, status, contested candidates)."""
    belief = memory(e, subject, predicate)
    contested = belief["status"] == "Contested"
    value = belief["primary"]["fact"]["value"] if belief["primary"] and not contested else None
    return (
        value,
        belief["status"],
        [a["fact"]["value"] for a in belief["alternatives"]] if contested else [],
    )


def end_fact(e: CompatEngine, subject: str, predicate: str, at: str) -> dict[str, Any]:
    """A port of the wheel's `end_fact`: resolve the single live claim, then bound it."""
    found = e.resolve_live_claim_for_line(A, subject, predicate)
    if found["status"] == "empty":
        raise NotFoundError("nothing to end_fact")
    if found["status"] == "ambiguous":
        raise ValidationError(f"Ambiguous close: {found['live_count']} live claims")
    return bound(e, found["claim_ref"], rfc(at), gran(at))


def test_the_wheel_quickstart(ce: CompatEngine) -> None:
    remember(ce, "user", "city", "Berlin", valid_from="2020-01-01", valid_until="2025-01-01")
    remember(ce, "user", "city", "Munich", valid_from="2025-01-01")
    assert recall(ce, "user", "city") == ("Munich", "Resolved", [])
    remember(ce, "acme", "ceo", "Alice")
    remember(ce, "acme", "ceo", "Bob")
    value, status, candidates = recall(ce, "acme", "ceo")
    assert (value, status, sorted(candidates)) == (None, "Contested", ["Alice", "Bob"])


def test_ending_a_fact_through_the_dict_api(ce: CompatEngine) -> None:
    remember(ce, "user", "job", "engineer", valid_from="2021")
    ended = end_fact(ce, "user", "job", "2024-09")
    assert (ended["disposition"], ended["effective_at"], ended["no_op"]) == (
        "Superseded",
        "2024-09-01T00:00:00Z",
        False,
    )
    assert recall(ce, "user", "job")[1] == "NoBelief"
    with pytest.raises(NotFoundError):
        end_fact(ce, "user", "job", "2024-10")
    assert remember(ce, "user", "job", "manager", valid_from="2024-09")["reason"] == "succession"
    entries = ce.query_history({"agent_id": A, "subject": "user", "predicate": "job"})["entries"]
    assert [
        (e["value"], e["status"], e.get("valid_from_display"), e.get("valid_until_display"))
        for e in entries
    ] == [
        ("engineer", "Ended", "2021", "2024-09"),
        ("manager", "Current", "2024-09", None),
    ]
    assert recall(ce, "user", "job") == ("manager", "Resolved", [])
    remember(ce, "user", "job", "manager", valid_from="2024-09")  # a restatement corroborates…
    with pytest.raises(ValidationError, match="2 live claims"):  # …so the close is ambiguous
        end_fact(ce, "user", "job", "2025")


# ---------------------------------------------------------------- openers


def clocked() -> dict[str, Any]:
    return {"clock": SteppingClock(datetime(2026, 1, 1, tzinfo=UTC)), "ids": SeededIds(7)}


def scenario(e: CompatEngine) -> list[Any]:
    """A short stream touching every read; its answers must not depend on the backend."""
    remember(e, "user", "city", "Berlin", valid_from="2020", valid_until="2025-01")
    remember(e, "user", "city", "Munich", valid_from="2025-01")
    remember(e, "acme", "ceo", "Alice")
    remember(e, "acme", "ceo", "Bob")
    end_fact(e, "user", "city", "2026-06")
    return [
        memory(e),
        memory(e, "acme", "ceo"),
        e.query_subject({"agent_id": A, "subject": "user"}),
        e.query_history({"agent_id": A, "subject": "user", "predicate": "city"}),
        audit(e),
        e.reconcile({"agent_id": A, "subject_lines": []}),
    ]


def test_in_memory_and_file_stores_answer_the_same(tmp_path: Path) -> None:
    with (
        compat.open_in_memory(**clocked()) as mem,
        compat.open_for_agent(tmp_path, A, **clocked()) as disk,
    ):
        assert scenario(mem) == scenario(disk)


def test_open_for_agent_binds_its_file_to_the_agent(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    (tmp_path / f"agent_{A}.db").write_bytes(b"")  # a 0.4 database: left alone, with a warning
    with caplog.at_level(logging.WARNING, logger="mempill.compat"):
        e = compat.open_for_agent(tmp_path, A, **clocked())
    assert "not read or migrated" in caplog.text
    with e:
        assert e.ingest_claim(claim("Berlin"))["disposition"] == "CommittedCheap"
        other = e.ingest_claim(claim("Paris", agent_id="agent-2"))
        assert (other["disposition"], other["reason"]) == ("Rejected", "write_authority")
    assert sorted(p.name for p in tmp_path.glob("*.db")) == [f"{A}.db", f"agent_{A}.db"]
    with compat.open_for_agent(tmp_path, A) as again:
        assert recall(again, "user", "city")[0] == "Berlin"
    with pytest.raises(ValidationError, match="agent_id"):
        compat.open_for_agent(tmp_path / "sub", "../escape")
    assert not (tmp_path / "sub").exists() and not (tmp_path / "escape.db").exists()


def test_open_oracle_for_agent(tmp_path: Path) -> None:
    oracle = WheelStyleOracle()
    with compat.open_oracle_for_agent(tmp_path, A, oracle, **clocked()) as e:
        _, challenger = contest(e)
        assert oracle.calls[0][1]["handle_id"] == challenger["handle_id"]
    with compat.open_oracle_for_agent(tmp_path, A, WheelStyleOracle()) as reopened:
        (pending,) = reopened.list_pending_adjudications()  # the outbox is durable, aliases are not
        assert (pending["handle_id"], pending["oracle_handle_id"]) == (
            challenger["handle_id"],
            None,
        )
        done = submit(reopened, pending["handle_id"])
        assert done["disposition"] == "CommittedCheap"


def test_open_postgres(request: pytest.FixtureRequest) -> None:
    if find_spec("mempill.stores.postgres") is None:
        pytest.skip("mempill.stores.postgres is not there yet")
    from mempill.lab.servers import fresh_schema

    oracle = WheelStyleOracle()
    server = request.getfixturevalue("postgres_server")
    with fresh_schema(server) as dsn, compat.open_postgres(dsn, oracle=oracle, **clocked()) as e:
        _, challenger = contest(e)
        assert [p["handle_id"] for p in e.list_pending_adjudications()] == [challenger["handle_id"]]
        assert submit(e, "oracle-1", "Deny")["disposition"] == "Superseded"


def test_a_file_bound_to_another_agent_is_refused(tmp_path: Path) -> None:
    with mempill.open_default(tmp_path / f"{A}.db") as typed:
        typed.ingest(claim("x", agent_id="agent-2") | {"confidence": CONF})  # binds the file
    with pytest.raises(ConfigError, match="another agent"):
        compat.open_for_agent(tmp_path, A)


def test_date_granularity_of() -> None:
    got = [
        compat.date_granularity_of(t)
        for t in ("2024", "2024-09", "2024-09-15", "2024-09-15T10:00:00Z")
    ]
    assert got == ["year", "month", "day", "instant"]
    assert compat.date_granularity_of("March 2020") is None
