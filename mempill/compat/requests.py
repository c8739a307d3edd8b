"""The published 0.4 wheel's request dicts parsed into engine arguments (the input half
of `compat`).

Policy: a key the wheel required is required here too, and a key that neither the wheel
nor this layer knows raises ValidationError (the wheel silently dropped it, so a typo
such as `valid_tiem` lost the window). Values parse as leniently as the typed API:
names case-insensitively, dates as `2020`, `2020-03`, `2020-03-15` or RFC 3339.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from mempill.core import parse
from mempill.core.dates import parse_lenient
from mempill.core.enums import AssertionKind, Granularity, Provenance, Verdict
from mempill.core.model import IngestRequest
from mempill.errors import ValidationError

INGEST_REQUIRED = (
    "agent_id",
    "subject",
    "predicate",
    "value",
    "provenance",
    "cardinality",
    "confidence",
    "criticality",
    "derived_from",
)
WINDOW_KEYS = ("start", "end", "start_granularity", "end_granularity")


def fields(
    request: Any, what: str, required: Sequence[str], optional: Sequence[str] = ()
) -> dict[str, Any]:
    """The request as a dict, after checking its keys; ValidationError names the culprits."""
    if not isinstance(request, Mapping):
        raise ValidationError(f"{what}: expected a dict, got {type(request).__name__}")
    body = dict(request)
    missing = [k for k in required if k not in body]
    if missing:
        raise ValidationError(f"{what}: missing required field(s) {', '.join(missing)}")
    unknown = sorted(str(k) for k in body if k not in required and k not in optional)
    if unknown:
        known = ", ".join((*required, *optional))
        raise ValidationError(f"{what}: unknown field(s) {', '.join(unknown)}; known: {known}")
    return body


def confidence_pair(value: Any, what: str) -> tuple[float, float]:
    """`{"value_confidence": x, "valid_time_confidence": y}` → (x, y)."""
    body = fields(value, what, ("value_confidence", "valid_time_confidence"))
    return (
        parse.number(body["value_confidence"], f"{what}.value_confidence"),
        parse.number(body["valid_time_confidence"], f"{what}.valid_time_confidence"),
    )


def ingest_request(request: Any) -> IngestRequest:
    """An `ingest_claim` dict → IngestRequest. The wheel carried valid_time_confidence
    twice; as in the wheel, the copy inside `valid_time` wins when there is a window."""
    body = fields(request, "ingest_claim", INGEST_REQUIRED, ("valid_time", "claim_ref"))
    value_confidence, time_confidence = confidence_pair(body["confidence"], "confidence")
    window = body.get("valid_time")
    if window is not None:
        window = fields(window, "valid_time", ("valid_time_confidence",), WINDOW_KEYS)
        time_confidence = parse.number(
            window.pop("valid_time_confidence"), "valid_time.valid_time_confidence"
        )
    typed = {
        "agent_id": body["agent_id"],
        "subject": body["subject"],
        "predicate": body["predicate"],
        "value": body["value"],
        "provenance": parse.provenance(body["provenance"]),
        "cardinality": body["cardinality"],
        "criticality": body["criticality"],
        "value_confidence": value_confidence,
        "valid_time": window or None,
        "valid_time_confidence": time_confidence,
        "derived_from": body["derived_from"],
        "claim_ref": body.get("claim_ref"),
    }
    return parse.ingest_request(typed)


def moment(value: Any, what: str) -> datetime | None:
    return parse.optional_moment(value, what)


@dataclass(frozen=True, slots=True, kw_only=True)
class LineQuery:
    """`query_memory` / `query_subject` / `query_history` arguments."""

    agent_id: str
    subject: str
    predicate: str | None = None
    as_of: datetime | None = None
    valid_at: datetime | None = None


def line_query(request: Any, what: str, *, predicate: bool, valid_at: bool = True) -> LineQuery:
    required = ("agent_id", "subject", "predicate") if predicate else ("agent_id", "subject")
    optional = ("as_of_tx_time", "valid_at") if valid_at else ("as_of_tx_time",)
    body = fields(request, what, required, optional)
    return LineQuery(
        agent_id=parse.agent_id(body["agent_id"]),
        subject=parse.key(body["subject"], "subject"),
        predicate=parse.key(body["predicate"], "predicate") if predicate else None,
        as_of=moment(body.get("as_of_tx_time"), "as_of_tx_time"),
        valid_at=moment(body.get("valid_at"), "valid_at"),
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class AuditQuery:
    agent_id: str
    claim_ref: str | None
    from_tx_time: datetime | None
    after_seq: int
    limit: int


def audit_query(request: Any) -> AuditQuery:
    """`query_audit`: `limit` is required (as in the wheel); `after_seq` is our cursor."""
    body = fields(
        request, "query_audit", ("agent_id", "limit"), ("claim_ref", "from_tx_time", "after_seq")
    )
    ref = body.get("claim_ref")
    return AuditQuery(
        agent_id=parse.agent_id(body["agent_id"]),
        claim_ref=None if ref is None else parse.claim_ref(ref),
        from_tx_time=moment(body.get("from_tx_time"), "from_tx_time"),
        after_seq=body.get("after_seq", 0),
        limit=body["limit"],
    )


def reconcile_lines(request: Any) -> tuple[str, list[tuple[str, str]] | None]:
    """(agent_id, lines); an empty `subject_lines` means every line, as in the wheel."""
    body = fields(request, "reconcile", ("agent_id", "subject_lines"))
    raw = body["subject_lines"]
    if isinstance(raw, (str, bytes)) or not isinstance(raw, Sequence):
        raise ValidationError("subject_lines: expected a list of [subject, predicate] pairs")
    lines = []
    for pair in raw:
        if (
            isinstance(pair, (str, bytes))
            or not isinstance(pair, Sequence)
            or len(pair) != 2
            or not all(isinstance(part, str) for part in pair)
        ):
            raise ValidationError(
                f"subject_lines: {parse.show(pair)} is not a [subject, predicate] pair"
            )
        lines.append((pair[0], pair[1]))
    return parse.agent_id(body["agent_id"]), lines or None


@dataclass(frozen=True, slots=True, kw_only=True)
class Assertion:
    """`assert_validity` arguments. `at` is what `Engine.end` parses: a lenient date text
    that carries the requested granularity, or an aware datetime (instant)."""

    agent_id: str
    target: str
    kind: AssertionKind
    at: str | datetime | None
    granularity: Granularity | None
    provenance: Provenance
    confidence: float


def assertion(request: Any) -> Assertion:
    """Bound / Reopen as in the wheel, plus Invalidate (reference §4)."""
    body = fields(
        request, "assert_validity", ("agent_id", "target", "assertion", "provenance", "confidence")
    )
    shape = body["assertion"]
    kind_name = shape.get("type") if isinstance(shape, Mapping) else None
    kind = parse.enum(AssertionKind, kind_name, "assertion.type")
    at: str | datetime | None = None
    granularity = None
    if kind is AssertionKind.BOUND:
        value = fields(shape, "assertion", ("type", "value"))["value"]
        value = fields(value, "assertion.value", ("at",), ("at_granularity",))
        at, granularity = bound_at(value["at"], value.get("at_granularity"))
    else:
        fields(shape, "assertion", ("type",))
    _, time_confidence = confidence_pair(body["confidence"], "confidence")
    return Assertion(
        agent_id=parse.agent_id(body["agent_id"]),
        target=parse.claim_ref(body["target"], "target"),
        kind=kind,
        at=at,
        granularity=granularity,
        provenance=parse.provenance(body["provenance"]),
        confidence=time_confidence,
    )


def bound_at(at: Any, granularity: Any) -> tuple[str | datetime, Granularity]:
    """The Bound instant with the caller's display granularity (`at_granularity`).

    `Engine.end` learns a granularity from how its date is written, so a year, month or
    day bound is passed as `2024`, `2024-09` or `2024-09-15`; that is exact only when
    `at` is the first instant of that period, and anything else is refused.
    """
    instant, written = parse_lenient(at, "assertion.value.at")
    if granularity is None:
        return (at if isinstance(at, str) else instant), written
    chosen = parse.enum(Granularity, granularity, "assertion.value.at_granularity")
    if chosen is Granularity.INSTANT:
        return instant, chosen
    text = {
        Granularity.YEAR: f"{instant.year:04d}",
        Granularity.MONTH: f"{instant.year:04d}-{instant.month:02d}",
        Granularity.DAY: f"{instant.year:04d}-{instant.month:02d}-{instant.day:02d}",
    }[chosen]
    if parse_lenient(text, "assertion.value.at")[0] != instant:
        raise ValidationError(
            f"assertion.value: at_granularity {chosen.value!r} needs `at` at the start of "
            f"its period (e.g. {text!r}), got {parse.show(at)}"
        )
    return text, chosen


@dataclass(frozen=True, slots=True, kw_only=True)
class Submission:
    handle_id: str
    verdict: Verdict
    evidence: Provenance


def submission(request: Any) -> Submission:
    body = fields(request, "submit_adjudication", ("handle_id", "verdict", "evidence_provenance"))
    handle = body["handle_id"]
    if not isinstance(handle, str) or not handle:
        raise ValidationError(f"handle_id: expected a non-empty string, got {parse.show(handle)}")
    return Submission(
        handle_id=handle,
        verdict=parse.enum(Verdict, body["verdict"], "verdict"),
        evidence=parse.provenance(body["evidence_provenance"], "evidence_provenance"),
    )
