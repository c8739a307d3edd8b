"""Argument checks shared by the command line and the MCP server, run before any storage.

Each check raises `ValidationError` naming the argument the caller typed (`subject`,
`--after`, `after_seq`…), so both front ends answer a hostile value with a documented
error instead of letting it reach a database driver: text with U+0000 or an unpaired
surrogate (neither backend can store it), keys no claim can have, and integers outside
the signed 64-bit range of a ledger cursor.

Writes are left to the engine on purpose: reference rule V records an invalid claim as
`Rejected` with a reason in the ledger, and the front ends must give the same outcome as
the Python API. Reads and cursors have no such receipt, so they are refused here.
"""

from __future__ import annotations

import json
from typing import Any

from mempill.core import parse
from mempill.core.canonical import is_clean_text
from mempill.core.limits import MAX_INT_DIGITS, MAX_SEQ
from mempill.core.parse import show
from mempill.errors import ValidationError

#: The most entries one `mempill audit` page returns (`export ledger` has no limit).
MAX_CLI_LIMIT = 1_000_000
#: The most entries one MCP `audit` call returns (a page an agent can read).
MAX_MCP_LIMIT = 1000
#: What an argument that is not valid text is told.
UNCLEAN = "contains U+0000 or an unpaired surrogate; text must be valid Unicode without NUL"


def text(value: str, what: str) -> str:
    """Any text argument: no U+0000, no unpaired surrogate."""
    if not is_clean_text(value):
        raise ValidationError(f"{what}: {show(value)} {UNCLEAN}")
    return value


def key(value: str, what: str) -> str:
    """A subject or predicate to read: text that a stored claim could have as its key (the
    engine's own rule, checked before the store is opened; unclean text is named as the
    other arguments' is)."""
    return parse.key(text(value, what), what)


def optional_text(value: str | None, what: str) -> str | None:
    return None if value is None else text(value, what)


def integer(value: int, what: str, least: int, most: int) -> int:
    """An integer argument within [least, most] (bool is not an integer here)."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValidationError(f"{what}: expected an integer, got {type(value).__name__}")
    if not least <= value <= most:
        shown = str(value) if abs(value) < 10**30 else f"{'-' if value < 0 else ''}a huge number"
        raise ValidationError(f"{what}: {shown} is out of range; use {least}..{most}")
    return value


def cursor(value: int, what: str) -> int:
    """A ledger cursor: a `stream_seq` to start after (0 = from the first entry)."""
    return integer(value, what, 0, MAX_SEQ)


def json_value(raw: str, what: str) -> tuple[bool, Any]:
    """(True, value) when `raw` is a JSON document, (False, None) when it is plain text.

    `NaN` and `Infinity` are not JSON, so they stay text. A JSON integer of more digits
    than Python converts, or nesting deeper than the parser follows, is a ValidationError
    (not silently text: it is JSON, and not a value mempill can take from a command line).
    """
    try:
        return True, json.loads(raw, parse_constant=_not_json)
    except _NotJson:
        return False, None
    except RecursionError:
        raise ValidationError(f"{what}: the JSON nests too deeply") from None
    except ValueError as e:
        if "int_max_str_digits" in str(e) or "Exceeds the limit" in str(e):
            raise ValidationError(
                f"{what}: a JSON integer of more than {MAX_INT_DIGITS} digits; pass it as a "
                "string (--string)"
            ) from None
        return False, None


class _NotJson(ValueError):
    pass


def _not_json(name: str) -> Any:
    raise _NotJson(name)
