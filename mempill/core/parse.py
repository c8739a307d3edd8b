"""Parsing loose input (typed objects, dicts, strings) into the typed requests.

Anything that does not parse raises ValidationError naming the field; domain checks
that leave a request parseable (empty keys, NaN, out-of-range confidences…) are rule V
of `decide.py` and produce a Rejected receipt instead.
"""

from __future__ import annotations

import re
import reprlib
import uuid
from collections.abc import Mapping
from dataclasses import fields
from datetime import datetime
from enum import StrEnum
from typing import Any, TypeVar

from mempill.core.dates import parse_lenient, utc
from mempill.core.enums import Cardinality, Criticality, Granularity, Provenance
from mempill.core.model import IngestRequest, ValidTime
from mempill.errors import ValidationError

AGENT_ID = re.compile(r"[A-Za-z0-9_.-]{1,128}")
E = TypeVar("E", bound=StrEnum)

_SHOW = reprlib.Repr()
_SHOW.maxlevel, _SHOW.maxstring, _SHOW.maxother = 3, 60, 60


def show(value: Any) -> str:
    """A short, recursion-safe repr of caller input for error messages."""
    return _SHOW.repr(value)


_PROVENANCE_ALIASES = {
    "external:userasserted": Provenance.USER_ASSERTED,
    "external/userasserted": Provenance.USER_ASSERTED,
    "userasserted": Provenance.USER_ASSERTED,
    "external:externalfirsthand": Provenance.EXTERNAL_FIRST_HAND,
    "external/externalfirsthand": Provenance.EXTERNAL_FIRST_HAND,
    "externalfirsthand": Provenance.EXTERNAL_FIRST_HAND,
    "recallreentry": Provenance.RECALL_RE_ENTRY,
    "modelderived": Provenance.MODEL_DERIVED,
}


def agent_id(value: Any) -> str:
    """1–128 characters of [A-Za-z0-9_.-], not starting with '.' (it names a file)."""
    if not isinstance(value, str) or not AGENT_ID.fullmatch(value) or value.startswith("."):
        raise ValidationError(
            f"agent_id: {show(value)} is invalid; use 1-128 characters of [A-Za-z0-9_.-], "
            "not starting with '.'"
        )
    return value


def enum(kind: type[E], value: Any, what: str) -> E:
    """An enum member by value or name, case-insensitively."""
    if isinstance(value, kind):
        return value
    if isinstance(value, str):
        folded = value.strip().casefold()
        for member in kind:
            if folded in (member.value.casefold(), member.name.casefold()):
                return member
    names = ", ".join(m.value for m in kind)
    raise ValidationError(f"{what}: {show(value)} is not one of {names}")


def provenance(value: Any, what: str = "provenance") -> Provenance:
    """`External:UserAsserted`, `External/UserAsserted`, `{"type": "External", "kind": …}`…"""
    if isinstance(value, Provenance):
        return value
    if isinstance(value, Mapping):
        kind = value.get("type")
        sub = value.get("kind")
        if not isinstance(kind, str) or (sub is not None and not isinstance(sub, str)):
            raise ValidationError(f"{what}: {show(value)} is not a provenance")
        value = f"{kind}:{sub}" if sub else kind
    if isinstance(value, str):
        found = _PROVENANCE_ALIASES.get(value.strip().casefold().replace(" ", ""))
        if found is not None:
            return found
    raise ValidationError(
        f"{what}: {show(value)} is not one of External:UserAsserted, External:ExternalFirstHand, "
        "RecallReEntry, ModelDerived"
    )


def claim_ref(value: Any, what: str = "claim_ref") -> str:
    """A UUID string, normalised to lower-case hyphenated form."""
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, str):
        try:
            return str(uuid.UUID(value))
        except ValueError:
            pass
    raise ValidationError(f"{what}: {show(value)} is not a UUID")


def parent_ref(value: Any) -> str:
    """A derived_from entry: UUIDs are normalised; other strings can only be unknown parents."""
    if isinstance(value, uuid.UUID):
        return str(value)
    if not isinstance(value, str):
        raise ValidationError(f"derived_from: {show(value)} is not a string")
    try:
        return str(uuid.UUID(value))
    except ValueError:
        return value


def number(value: Any, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValidationError(f"{what}: expected a number, got {type(value).__name__}")
    return float(value)


def moment(value: Any, what: str) -> datetime:
    """An aware datetime, a date or a lenient date string (for as_of, valid_at, bounds)."""
    return parse_lenient(value, what)[0]


def optional_moment(value: Any, what: str) -> datetime | None:
    return None if value is None else moment(value, what)


def valid_time(value: Any) -> ValidTime | None:
    """A ValidTime, or a mapping with start/end (or valid_from/valid_until) and granularities."""
    if value is None or isinstance(value, ValidTime):
        if isinstance(value, ValidTime):
            return _checked_window(value)
        return None
    if not isinstance(value, Mapping):
        raise ValidationError(f"valid_time: expected a mapping, got {type(value).__name__}")
    start = value.get("valid_from", value.get("start"))
    end = value.get("valid_until", value.get("end"))
    start_at, start_gran = _endpoint(start, "valid_time.start")
    end_at, end_gran = _endpoint(end, "valid_time.end")
    for key, name in (("start_granularity", "from"), ("end_granularity", "until")):
        given = value.get(key, value.get(f"{name}_granularity"))
        if given is not None:
            parsed = enum(Granularity, given, f"valid_time.{key}")
            if name == "from":
                start_gran = parsed if start_at is not None else None
            else:
                end_gran = parsed if end_at is not None else None
    return ValidTime(
        valid_from=start_at,
        valid_until=end_at,
        from_granularity=start_gran,
        until_granularity=end_gran,
    )


def _endpoint(value: Any, what: str) -> tuple[datetime | None, Granularity | None]:
    if value is None:
        return None, None
    return parse_lenient(value, what)


def _checked_window(window: ValidTime) -> ValidTime:
    start = None if window.valid_from is None else utc(window.valid_from, "valid_time.valid_from")
    end = None if window.valid_until is None else utc(window.valid_until, "valid_time.valid_until")
    return ValidTime(
        valid_from=start,
        valid_until=end,
        from_granularity=None
        if start is None
        else enum(Granularity, window.from_granularity or Granularity.INSTANT, "from_granularity"),
        until_granularity=None
        if end is None
        else enum(
            Granularity, window.until_granularity or Granularity.INSTANT, "until_granularity"
        ),
    )


_REQUIRED = ("agent_id", "subject", "predicate", "value")
_FIELDS = {f.name for f in fields(IngestRequest)}


def ingest_request(value: Any) -> IngestRequest:
    """An IngestRequest from itself or a mapping; ValidationError when it does not parse."""
    if isinstance(value, IngestRequest):
        raw: dict[str, Any] = {f: getattr(value, f) for f in _FIELDS}
    elif isinstance(value, Mapping):
        raw = dict(value)
        confidence = raw.pop("confidence", None)
        if isinstance(confidence, Mapping):
            raw.setdefault("value_confidence", confidence.get("value_confidence", 1.0))
            raw.setdefault("valid_time_confidence", confidence.get("valid_time_confidence"))
        elif confidence is not None:
            raw.setdefault("value_confidence", confidence)
        window = raw.get("valid_time")
        if isinstance(window, Mapping) and "valid_time_confidence" in window:
            raw.setdefault("valid_time_confidence", window["valid_time_confidence"])
        missing = [k for k in _REQUIRED if k not in raw]
        if missing:
            raise ValidationError(f"request: missing required field(s) {', '.join(missing)}")
        unknown = sorted(set(raw) - _FIELDS)
        if unknown:
            raise ValidationError(f"request: unknown field(s) {', '.join(unknown)}")
    else:
        raise ValidationError(
            f"request: expected an IngestRequest or a mapping, got {type(value).__name__}"
        )
    for key in ("subject", "predicate"):
        if not isinstance(raw[key], str):
            raise ValidationError(f"{key}: expected a string, got {type(raw[key]).__name__}")
    derived = raw.get("derived_from") or ()
    if isinstance(derived, (str, bytes)) or not isinstance(derived, (list, tuple)):
        raise ValidationError("derived_from: expected a list of claim refs")
    ref = raw.get("claim_ref")
    time_confidence = raw.get("valid_time_confidence")
    return IngestRequest(
        agent_id=agent_id(raw["agent_id"]),
        subject=raw["subject"],
        predicate=raw["predicate"],
        value=raw["value"],
        provenance=provenance(raw.get("provenance", Provenance.USER_ASSERTED)),
        cardinality=enum(
            Cardinality, raw.get("cardinality", Cardinality.FUNCTIONAL), "cardinality"
        ),
        value_confidence=number(raw.get("value_confidence", 1.0), "value_confidence"),
        valid_time=valid_time(raw.get("valid_time")),
        valid_time_confidence=None
        if time_confidence is None
        else number(time_confidence, "valid_time_confidence"),
        criticality=enum(Criticality, raw.get("criticality", Criticality.MEDIUM), "criticality"),
        derived_from=tuple(dict.fromkeys(parent_ref(p) for p in derived)),
        claim_ref=None if ref is None else claim_ref(ref),
    )
