"""The documented list: which of the wheel's tests fail on purpose, and why.

docs/compat.md defines each deliberate difference as a list item starting `* **D<n>.`, and
lists the wheel's failing tests in a table: a row holds the test's node id in backticks
(`test_file.py::Class::test`), the differences it cites (`D1`, `D4, D9`) and `always`, or
`since YYYY-MM-DD` for a test whose outcome moves with the calendar (its claim's window has
ended by that day, and a read without `valid_at` is evaluated at now).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from pathlib import Path

DOC = Path(__file__).resolve().parents[2] / "docs" / "compat.md"
DEFINED = re.compile(r"^\* \*\*(D\d+)\.", re.M)
ROW = re.compile(r"^\| `(test_\w+\.py::[^`]+)` \| ([^|]+) \| (always|since \d{4}-\d{2}-\d{2}) \|$")
CITED = re.compile(r"\bD\d+\b")


@dataclass(frozen=True, slots=True)
class Expected:
    """A wheel test that fails because of documented differences."""

    nodeid: str  # relative to the suite's `tests/` folder
    differences: tuple[str, ...]
    since: date | None  # None: fails on every day

    def due(self, today: date) -> bool:
        """Whether the test is expected to fail on `today`."""
        return self.since is None or today >= self.since


class ListError(Exception):
    """The documented list is malformed (a row citing no difference, or an unknown one)."""


def differences(text: str) -> set[str]:
    """The ids of the deliberate differences the document defines."""
    return set(DEFINED.findall(text))


def documented(text: str) -> dict[str, Expected]:
    """The table's rows by node id; ListError when a row cites no defined difference."""
    defined = differences(text)
    rows: dict[str, Expected] = {}
    for line in text.splitlines():
        found = ROW.match(line)
        if found is None:
            continue
        nodeid, why, when = found.groups()
        cited = tuple(CITED.findall(why))
        unknown = [d for d in cited if d not in defined]
        if not cited or unknown:
            raise ListError(
                f"{nodeid}: cites {unknown or 'no difference'}; defined: {sorted(defined)}"
            )
        if nodeid in rows:
            raise ListError(f"{nodeid} is listed twice")
        since = None if when == "always" else date.fromisoformat(when.removeprefix("since "))
        rows[nodeid] = Expected(nodeid, cited, since)
    return rows


def load(path: Path = DOC) -> dict[str, Expected]:
    return documented(path.read_text(encoding="utf-8"))
