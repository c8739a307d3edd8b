"""What the command line and the MCP server print: text a terminal cannot be driven by.

Subjects, values, file names and error messages come from whoever wrote to the store or
typed the command, so a raw control character in them could move the cursor, recolour or
retitle the terminal, or hide the lines before it (ESC, CSI, a carriage return…). Every
text line printed goes through `visible`, which shows each C0 and C1 control, DEL, the
Unicode line and paragraph separators and the bidirectional overrides as a Python-style
escape (`\\x1b`, `\\u202e`); `--json` output stays JSON, with the same characters as
`\\u` escapes (the parsed values are unchanged). `--json` is the exact form of the data.
Python warnings (a PostgreSQL server reached without certificate checks…) are one line.
"""

from __future__ import annotations

import json
import re
import sys
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, TextIO

#: C0 controls, DEL, C1 controls, U+2028/U+2029, and the bidi embeddings, overrides and
#: isolates (Trojan Source): none of them belongs in a terminal line.
_BEYOND_C0 = r"\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069"
_ANY = re.compile(rf"[\x00-\x1f{_BEYOND_C0}]")
#: What `json.dumps(ensure_ascii=False)` leaves raw (it escapes C0 itself).
_RAW_IN_JSON = re.compile(f"[{_BEYOND_C0}]")
_SHORT = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _escape(match: re.Match[str]) -> str:
    char = match.group()
    if char in _SHORT:
        return _SHORT[char]
    code = ord(char)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def visible(text: str) -> str:
    """`text` on one line, every control character shown as an escape."""
    return _ANY.sub(_escape, text)


def lines(text: str) -> str:
    """Several lines of output, each made `visible` (the line breaks stay)."""
    return "\n".join(visible(line) for line in text.split("\n"))


def json_text(data: Any, indent: int | None = None) -> str:
    """JSON (non-ASCII text kept readable) with no raw control character in it."""
    dumped = json.dumps(data, ensure_ascii=False, indent=indent)
    # Outside strings JSON has only ASCII punctuation and spaces, so these are in strings.
    return _RAW_IN_JSON.sub(lambda m: f"\\u{ord(m.group()):04x}", dumped)


def first_line(message: str, fallback: str) -> str:
    """The first line of a message, made `visible` (error lines are one line)."""
    stripped = message.strip()
    return visible(stripped.splitlines()[0]) if stripped else fallback


def warn(prog: str, message: str, stream: TextIO | None = None) -> None:
    """`PROG: warning: MESSAGE` on one line of stderr."""
    print(f"{prog}: warning: {first_line(message, 'warning')}", file=stream or sys.stderr)


@contextmanager
def one_line_warnings(prog: str, stream: TextIO | None = None) -> Iterator[None]:
    """Python warnings raised inside print as `PROG: warning: MESSAGE` (once per place, as
    Python's own filters decide), not as a file name, line number and source line."""

    def show(
        message: Warning | str,
        category: type[Warning],
        filename: str,
        lineno: int,
        file: TextIO | None = None,
        line: str | None = None,
    ) -> None:
        warn(prog, str(message) or category.__name__, stream)

    with warnings.catch_warnings():  # restores showwarning and the filters on the way out
        warnings.showwarning = show
        yield
