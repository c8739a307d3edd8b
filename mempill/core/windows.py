"""Indexes over one line's claim views that answer the `Line` questions without a scan.

Live views are kept in two lists sorted by window start and by window end, so the
candidates at an instant (a stabbing query) and the claims overlapping a new window are
found from the shorter side of a bisection: at "now" on a long succession line that side
holds the one or two newest claims. Counters answer the write rules' yes/no questions.
Updated per changed view (`add` / `discard`).
"""

from __future__ import annotations

import sys
from bisect import bisect_left, bisect_right, insort
from collections.abc import Sequence
from datetime import UTC, datetime

from mempill.core.enums import Cardinality, Provenance
from mempill.core.view import PENDING_INGEST, ClaimView, overlaps

_FIRST = datetime.min.replace(tzinfo=UTC)
_LAST = datetime.max.replace(tzinfo=UTC)
_TOP = sys.maxsize
_HIGH = "\uffff"
Key = tuple[datetime, int, str]  # (window end point or sentinel, stream_seq, claim_ref)


def _start(v: ClaimView) -> Key:
    return (v.window_from or _FIRST, v.row.stream_seq, v.ref)


def _end(v: ClaimView) -> Key:
    return (v.window_until or _LAST, v.row.stream_seq, v.ref)


def _bump(counts: dict[str, int], key: str, by: int) -> None:
    left = counts.get(key, 0) + by
    if left:
        counts[key] = left
    else:
        del counts[key]  # it reached zero, so it was there


class LiveIndex:
    """Live and pending views of a line with window and value indexes."""

    def __init__(self) -> None:
        self.live: dict[str, ClaimView] = {}
        self.pending: dict[str, ClaimView] = {}
        self.starts: list[Key] = []
        self.ends: list[Key] = []
        self.not_set = 0
        self.authoritative: dict[str, int] = {}
        self.by_value: dict[str, tuple[tuple[int, str], ...]] = {}  # live (seq, ref) per value
        self.recall_times: list[datetime] = []

    def add(self, v: ClaimView, first_time: bool) -> None:
        """Index a view (a claim's first view when `first_time`)."""
        if first_time and v.row.provenance is Provenance.RECALL_RE_ENTRY:
            self.recall_times.append(v.row.tx_time)  # claims arrive in stream order
        if v.ingest in PENDING_INGEST and not v.invalidated:
            self.pending[v.ref] = v
        if not v.live:
            return
        self.live[v.ref] = v
        insort(self.starts, _start(v))
        insort(self.ends, _end(v))
        self.not_set += v.row.cardinality is not Cardinality.SET_VALUED
        self.by_value[v.value] = (*self.by_value.get(v.value, ()), (v.row.stream_seq, v.ref))
        if not v.inferred:
            _bump(self.authoritative, v.value, 1)

    def discard(self, v: ClaimView) -> None:
        """Remove a view that `add` indexed (before indexing its replacement)."""
        self.pending.pop(v.ref, None)
        if self.live.pop(v.ref, None) is None:
            return
        del self.starts[bisect_left(self.starts, _start(v))]
        del self.ends[bisect_left(self.ends, _end(v))]
        self.not_set -= v.row.cardinality is not Cardinality.SET_VALUED
        same = tuple(k for k in self.by_value[v.value] if k[1] != v.ref)
        if same:
            self.by_value[v.value] = same
        else:
            del self.by_value[v.value]
        if not v.inferred:
            _bump(self.authoritative, v.value, -1)

    # ---- the Line questions

    def _narrowest(self, first: int, last: int) -> list[Key]:
        """starts[:first] or ends[last:], whichever is shorter (both are supersets)."""
        return self.starts[:first] if first <= len(self.ends) - last else self.ends[last:]

    def _ordered(self, keys: list[Key]) -> list[ClaimView]:
        return sorted((self.live[k[2]] for k in keys), key=lambda v: v.row.stream_seq)

    def containing(self, instant: datetime) -> Sequence[ClaimView]:
        first = bisect_right(self.starts, (instant, _TOP, _HIGH))  # start <= instant
        last = bisect_left(self.ends, (instant, -1, ""))  # end >= instant
        found = self._ordered(self._narrowest(first, last))
        return tuple(v for v in found if v.contains(instant))

    def overlapping(self, start: datetime | None, end: datetime | None) -> Sequence[ClaimView]:
        first = bisect_right(self.starts, (end or _LAST, _TOP, _HIGH))
        last = bisect_left(self.ends, (start or _FIRST, -1, ""))
        found = self._ordered(self._narrowest(first, last))
        return tuple(v for v in found if overlaps(start, end, v.window_from, v.window_until))

    def pending_containing(self, instant: datetime) -> Sequence[ClaimView]:
        found = (v for v in self.pending.values() if v.contains(instant))
        return tuple(sorted(found, key=lambda v: v.row.stream_seq))

    def any_ended_by(self, instant: datetime) -> bool:
        """Some live window ends at or before `instant` (the earliest end decides)."""
        if not self.ends:
            return False
        end = self.live[self.ends[0][2]].window_until
        return end is not None and end <= instant

    def any_starting_after(self, instant: datetime) -> bool:
        """Some live window starts after `instant` (the latest start decides)."""
        if not self.starts:
            return False
        start = self.live[self.starts[-1][2]].window_from
        return start is not None and start > instant

    def set_valued(self) -> bool:
        return bool(self.live) and self.not_set == 0

    def has_live_authoritative(self, value: str | None = None) -> bool:
        return bool(self.authoritative) if value is None else value in self.authoritative

    def latest_live_with_value(self, value: str) -> ClaimView | None:
        same = self.by_value.get(value)
        return None if not same else self.live[max(same)[1]]

    def recall_rows_since(self, since: datetime) -> int:
        return len(self.recall_times) - bisect_right(self.recall_times, since)
