"""Canonical JSON text (value identity, reference §2) and the checks that guard it.

Canonical text: keys sorted, no insignificant whitespace, non-ASCII kept, integers as
integers, floats as Python ``repr``. Both backends store and return exactly this text.
"""

from __future__ import annotations

import json
import math
from json import encoder as _json
from typing import Any

from mempill.errors import ValidationError

JSONValue = None | bool | int | float | str | list["JSONValue"] | dict[str, "JSONValue"]

#: The standard library's own encoder (its C accelerator when present), made once with the
#: settings `json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
#: allow_nan=False, check_circular=False)` uses; `JSONEncoder.encode` builds it per call.
#: No circularity check: `inspect_value` has already bounded the depth of every value.
_MAKE: Any = getattr(_json, "c_make_encoder", None)
_ENCODE: Any = (
    None
    if _MAKE is None
    else _MAKE(None, None, _json.encode_basestring, None, ":", ",", True, False, False)
)


def canonical_json(value: Any) -> str:
    """Encode an already-checked JSON value canonically."""
    if _ENCODE is None:  # no C accelerator: the pure-Python encoder
        return json.dumps(
            value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
        )
    return "".join(_ENCODE(value, 0))


def fits(text: str, max_bytes: int) -> bool:
    """`text` takes at most `max_bytes` in UTF-8 (at most 4 bytes a character: only long
    text is encoded to measure it)."""
    return len(text) * 4 <= max_bytes or len(text.encode("utf-8")) <= max_bytes


def is_clean_text(text: str) -> bool:
    """True when `text` has no U+0000 and no lone surrogate (PostgreSQL stores neither)."""
    if "\x00" in text:
        return False
    if text.isascii():  # constant time: ASCII text has no surrogate
        return True
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def inspect_value(value: Any, max_depth: int) -> str | None:
    """Walk a value iteratively; return a rejection reason or None when it is storable.

    Raises ValidationError for something that is not JSON at all (a set, bytes, a
    non-string key): such a request does not parse. Containers nest to `max_depth`;
    the walk stops below that depth, so a 100,000-deep list costs nothing extra.
    """
    stack: list[tuple[Any, int]] = [(value, 0)]
    reason: str | None = None
    while stack:
        item, depth = stack.pop()
        if item is None or isinstance(item, bool):
            continue
        if isinstance(item, int):
            continue
        if isinstance(item, float):
            if not math.isfinite(item):
                reason = reason or "non_finite_number"
            continue
        if isinstance(item, str):
            if not is_clean_text(item):
                reason = reason or "invalid_text"
            continue
        if isinstance(item, (list, tuple)):
            if depth + 1 > max_depth:
                return "value_too_deep"
            stack.extend((child, depth + 1) for child in item)
            continue
        if isinstance(item, dict):
            if depth + 1 > max_depth:
                return "value_too_deep"
            for key, child in item.items():
                if not isinstance(key, str):
                    raise ValidationError(
                        f"value: object keys must be strings, got {type(key).__name__}"
                    )
                if not is_clean_text(key):
                    reason = reason or "invalid_text"
                stack.append((child, depth + 1))
            continue
        raise ValidationError(f"value: {type(item).__name__} is not a JSON value")
    return reason


def loads(text: str) -> Any:
    """Decode stored canonical text back into the value it encodes."""
    return json.loads(text)


def safe_json(value: Any, depth: int = 0) -> Any:
    """A JSON-storable echo of arbitrary input, for the rationale of a rejected request."""
    if depth > 8:
        return "…"
    if value is None or isinstance(value, (bool, int)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else repr(value)
    if isinstance(value, str):
        clean = (
            value
            if is_clean_text(value)
            else value.encode("utf-8", "backslashreplace").decode("utf-8").replace("\x00", "\\x00")
        )
        return clean if len(clean) <= 1024 else clean[:1024] + "…"
    if isinstance(value, (list, tuple)):
        return [safe_json(v, depth + 1) for v in list(value)[:16]]
    if isinstance(value, dict):
        return {
            str(safe_json(str(k))): safe_json(v, depth + 1) for k, v in list(value.items())[:16]
        }
    return repr(value)[:256]
