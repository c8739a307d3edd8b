"""What the fold and the write rules ask of a line, and the plain-scan answer.

`Line` is the question set; `Scan` answers it by scanning a tuple of claim views and is
the reference. `lines.LineState` answers the same questions from incremental indexes, so
long lines cost little per read and write; a property test holds the two equal.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Protocol

from mempill.core.enums import Cardinality, Provenance
from mempill.core.view import PENDING_INGEST, ClaimView, overlaps


class Line(Protocol):
    def views(self) -> Sequence[ClaimView]:
        """Every claim of the line, in stream order."""
        ...

    def has_live(self) -> bool: ...

    def containing(self, instant: datetime) -> Sequence[ClaimView]:
        """Live claims whose effective window contains `instant` (the candidates)."""
        ...

    def overlapping(self, start: datetime | None, end: datetime | None) -> Sequence[ClaimView]:
        """Live claims whose effective window overlaps `[start, end)` (None: unbounded)."""
        ...

    def pending_containing(self, instant: datetime) -> Sequence[ClaimView]:
        """PendingLowConfidence/PendingConflict claims, not invalidated, holding at `instant`."""
        ...

    def any_ended_by(self, instant: datetime) -> bool:
        """Some live claim's window ends at or before `instant`."""
        ...

    def any_starting_after(self, instant: datetime) -> bool:
        """Some live claim's window starts after `instant`."""
        ...

    def set_valued(self) -> bool:
        """Live claims exist and every one is SetValued."""
        ...

    def has_live_authoritative(self, value: str | None = None) -> bool:
        """A live authoritative claim exists (with canonical `value`, when given)."""
        ...

    def latest_live_with_value(self, value: str) -> ClaimView | None: ...

    def recall_rows_since(self, since: datetime) -> int:
        """Claim rows of provenance RecallReEntry with tx time after `since`."""
        ...


class Scan:
    """The reference `Line`: every question is a scan of the views."""

    def __init__(self, views: Sequence[ClaimView]) -> None:
        self._views = tuple(views)
        self._live = tuple(v for v in self._views if v.live)

    def views(self) -> Sequence[ClaimView]:
        return self._views

    def has_live(self) -> bool:
        return bool(self._live)

    def containing(self, instant: datetime) -> Sequence[ClaimView]:
        return tuple(v for v in self._live if v.contains(instant))

    def overlapping(self, start: datetime | None, end: datetime | None) -> Sequence[ClaimView]:
        return tuple(v for v in self._live if overlaps(start, end, v.window_from, v.window_until))

    def pending_containing(self, instant: datetime) -> Sequence[ClaimView]:
        return tuple(
            v
            for v in self._views
            if v.ingest in PENDING_INGEST and not v.invalidated and v.contains(instant)
        )

    def any_ended_by(self, instant: datetime) -> bool:
        return any(v.window_until is not None and v.window_until <= instant for v in self._live)

    def any_starting_after(self, instant: datetime) -> bool:
        return any(v.window_from is not None and v.window_from > instant for v in self._live)

    def set_valued(self) -> bool:
        return bool(self._live) and all(
            v.row.cardinality is Cardinality.SET_VALUED for v in self._live
        )

    def has_live_authoritative(self, value: str | None = None) -> bool:
        return any(not v.inferred and (value is None or v.value == value) for v in self._live)

    def latest_live_with_value(self, value: str) -> ClaimView | None:
        same = [v for v in self._live if v.value == value]
        return max(same, key=lambda v: v.row.stream_seq) if same else None

    def recall_rows_since(self, since: datetime) -> int:
        return sum(
            1
            for v in self._views
            if v.row.provenance is Provenance.RECALL_RE_ENTRY and v.row.tx_time > since
        )
