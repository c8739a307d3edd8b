"""Parsing loose input (typed objects, dicts, strings) into the typed requests.

Anything that does not parse raises ValidationError naming the field; domain checks
that leave a request parseable (empty keys, NaN, out-of-range confidences…) are rule V
of `decide.py` and produce a Rejected receipt instead.
"""

from __future__ import annotations

import functools
import math
import re
import reprlib
import sys
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import fields
from datetime import datetime
from enum import StrEnum
from typing import Any, TypeVar

from mempill.core.canonical import is_clean_text
from mempill.core.dates import parse_lenient, utc
from mempill.core.enums import Cardinality, Criticality, Granularity, Provenance
from mempill.core.limits import (
    MAX_AGENT_ID_CHARS,
    MAX_HANDLE_CHARS,
    MAX_INT_DIGITS,
    MAX_KEY_CHARS,
    MAX_PARENTS,
    MAX_RECONCILE_LINES,
    MAX_REF_CHARS,
    MAX_SEQ,
    MAX_VALUE_DEPTH,
)
from mempill.core.model import IngestRequest, ValidTime
from mempill.errors import ValidationError

AGENT_ID = re.compile(rf"[A-Za-z0-9_.-]{{1,{MAX_AGENT_ID_CHARS}}}")
E = TypeVar("E", bound=StrEnum)
_SCALARS = (str, float, bool, type(None))

_SHOW = reprlib.Repr()
_SHOW.maxlevel, _SHOW.maxstring, _SHOW.maxother = 3, 60, 60


def show(value: Any) -> str:
    """A short, recursion-safe repr of caller input for error messages (never raises: an
    integer too long to write, or a repr that fails, is described instead)."""
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > 256:
        return f"an integer of {value.bit_length()} bits"
    try:
        return _SHOW.repr(value)
    except Exception:
        return f"a {type(value).__name__}"


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
    """A derived_from entry: UUIDs are normalised; other short strings can only be unknown
    parents (rule V rejects them), but text longer than any claim ref (`MAX_REF_CHARS`) or
    text no backend can store (U+0000, a lone surrogate) does not parse."""
    if isinstance(value, uuid.UUID):
        return str(value)
    if not isinstance(value, str):
        raise ValidationError(f"derived_from: {show(value)} is not a string")
    if len(value) > MAX_REF_CHARS:
        raise ValidationError(
            f"derived_from: an entry of {len(value):,} characters is not a claim ref "
            f"(a UUID; entries are limited to {MAX_REF_CHARS} characters)"
        )
    try:
        return str(uuid.UUID(value))
    except ValueError:
        return text(value, "derived_from")


def text(value: Any, what: str) -> str:
    """A string that both backends can store: no U+0000 and no lone surrogate."""
    if not isinstance(value, str):
        raise ValidationError(f"{what}: expected a string, got {type(value).__name__}")
    if not is_clean_text(value):
        raise ValidationError(f"{what}: {show(value)} contains U+0000 or a lone surrogate")
    return value


def key(value: Any, what: str) -> str:
    """A subject or predicate to read by (or to end): a key a stored claim could have, so
    clean, non-empty text of at most `MAX_KEY_CHARS` (rule V rejects any other on ingest)."""
    found = text(value, what)
    if not found:
        raise ValidationError(f"{what}: must not be empty")
    if len(found) > MAX_KEY_CHARS:
        raise ValidationError(
            f"{what}: {len(found)} characters; keys are limited to {MAX_KEY_CHARS}"
        )
    return found


def handle(value: Any, what: str = "handle_id") -> str:
    """An adjudication handle: clean text of 1 to `MAX_HANDLE_CHARS` characters."""
    found = text(value, what)
    if not 0 < len(found) <= MAX_HANDLE_CHARS:
        raise ValidationError(
            f"{what}: {len(found):,} characters; a handle has 1 to {MAX_HANDLE_CHARS}"
        )
    return found


def items(value: Any, what: str) -> Iterable[Any]:
    """A list (any iterable) of items; a string, bytes, a mapping or a dataclass is not."""
    if isinstance(value, (str, bytes, Mapping, IngestRequest)) or not isinstance(value, Iterable):
        raise ValidationError(f"{what}: expected a list, got {type(value).__name__}")
    return value


def whole(value: Any, least: int) -> bool:
    """An int (not a bool) of at least `least`."""
    return isinstance(value, int) and not isinstance(value, bool) and value >= least


def lines(value: Any, what: str = "lines") -> list[tuple[str, str]]:
    """`[(subject, predicate), …]`: at most `MAX_RECONCILE_LINES` pairs of keys."""
    found: list[tuple[str, str]] = []
    for pair in items(value, what):
        if len(found) == MAX_RECONCILE_LINES:  # checked before reading on: any iterable
            raise ValidationError(
                f"{what}: more than {MAX_RECONCILE_LINES:,} lines; name at most "
                f"{MAX_RECONCILE_LINES:,} a call (lines=None covers every line)"
            )
        if isinstance(pair, (str, bytes)) or not isinstance(pair, Sequence) or len(pair) != 2:
            raise ValidationError(f"{what}: {show(pair)} is not a (subject, predicate) pair")
        found.append((key(pair[0], f"{what}.subject"), key(pair[1], f"{what}.predicate")))
    return found


def count(value: Any, what: str, least: int) -> int:
    """An integer in [least, 2**63 - 1] (a stream_seq, a cursor, a page size)."""
    if isinstance(value, bool) or not isinstance(value, int) or not least <= value <= MAX_SEQ:
        raise ValidationError(
            f"{what}: expected an integer from {least} to 2**63 - 1, got {show(value)}"
        )
    return int(value)


def number(value: Any, what: str) -> float:
    """A number as a float; an integer too large for a float counts as an infinity (so a
    confidence given as one is out of range, like any other number outside [0, 1])."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValidationError(f"{what}: expected a number, got {type(value).__name__}")
    try:
        return float(value)
    except OverflowError:
        return math.inf if value > 0 else -math.inf


def json_value(value: Any, what: str = "value") -> Any:
    """Check that `value` is JSON that canonical text can hold, before any storage is
    touched: a non-JSON type (a set, bytes, a non-string key…) or an integer of more than
    4,300 digits raises ValidationError. Content rule V rejects (NaN, U+0000, nesting
    deeper than 64…) is left to rule V; the walk stops at that depth."""
    if isinstance(value, _SCALARS):
        return value
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, _SCALARS):
            continue
        if isinstance(item, int):
            if too_many_digits(item):
                raise ValidationError(
                    f"{what}: an integer of more than 4,300 digits cannot be stored as JSON"
                )
            continue
        if depth >= MAX_VALUE_DEPTH:
            continue
        if isinstance(item, (list, tuple)):
            stack.extend((child, depth + 1) for child in item)
        elif isinstance(item, dict):
            for name, child in item.items():
                if not isinstance(name, str):
                    raise ValidationError(
                        f"{what}: object keys must be strings, got {type(name).__name__}"
                    )
                stack.append((child, depth + 1))
        else:
            raise ValidationError(f"{what}: {type(item).__name__} is not a JSON value")
    return value


@functools.lru_cache(maxsize=4)
def _int_limit(digits: int) -> int:
    limit: int = 10**digits
    return limit


def too_many_digits(number: int) -> bool:
    """More than 4,300 digits (or the process's lower int-to-text limit): no JSON text."""
    limit = sys.get_int_max_str_digits()
    digits = MAX_INT_DIGITS if limit == 0 else min(limit, MAX_INT_DIGITS)
    # 2**(3.32 * digits) < 10**digits: a shorter integer needs no big comparison
    return number.bit_length() > 3.32 * digits and abs(number) >= _int_limit(digits)


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
    if len(derived) > MAX_PARENTS:
        raise ValidationError(
            f"derived_from: {len(derived):,} entries; a claim names at most {MAX_PARENTS} parents"
        )
    ref = raw.get("claim_ref")
    time_confidence = raw.get("valid_time_confidence")
    return IngestRequest(
        agent_id=agent_id(raw["agent_id"]),
        subject=raw["subject"],
        predicate=raw["predicate"],
        value=json_value(raw["value"]),
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
