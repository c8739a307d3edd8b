"""An incrementally maintained, exact cache of each line's rows and claim views.

Every row of a line carries the `stream_seq` of the ledger entry that wrote it, and rows
are only ever appended; so a cached line at version `v` plus the rows with seq > `v` is
exactly the line at the newer version. Only the views of claims that got new rows are
recomputed. Pure: the engine fetches rows and applies them.

A write transaction applies its own rows to the shared state in place, after marking it
dirty: while dirty, readers fold a fresh read of their own snapshot instead, so they never
see uncommitted rows; COMMIT clears the mark, a rollback drops the state from the cache.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from mempill.core.config import EngineConfig
from mempill.core.enums import EventKind
from mempill.core.model import AssertionRow, ClaimRow, LedgerEntry, LineRows
from mempill.core.view import ClaimView, view
from mempill.core.windows import LiveIndex

#: Estimated memory of one cached row beyond its text (objects, its view, index entries),
#: measured with tracemalloc on CPython 3.11 (tests/test_security_storage_cache.py checks
#: the estimate against a measurement). The cache budget `cache_bytes` counts these.
CLAIM_BYTES = 1500
ENTRY_BYTES = 450
ASSERTION_BYTES = 500
REF_BYTES = 90  # one claim ref (a 36-character str) in a list or dict
LINE_BYTES = 2200  # a line besides its rows: the state, its index, the cache's entry


def text_bytes(text: str) -> int:
    """Memory of a str's characters: 1 byte each for ASCII, at most 4 otherwise."""
    return len(text) if text.isascii() else 4 * len(text)


@dataclass
class LineState:
    """One line's rows (up to `version`) and the view of each of its claims."""

    config: EngineConfig
    version: int = 0
    claims: dict[str, ClaimRow] = field(default_factory=dict)
    entries: dict[str, list[LedgerEntry]] = field(default_factory=dict)
    assertions: dict[str, list[AssertionRow]] = field(default_factory=dict)
    echoes: list[LedgerEntry] = field(default_factory=list)
    by_ref: dict[str, ClaimView] = field(default_factory=dict)  # insertion order: stream order
    index: LiveIndex = field(default_factory=LiveIndex)
    dirty: bool = False  # holds rows of a transaction not yet committed
    accounted: int = 0  # claims the cache has counted for this state
    weight: int = LINE_BYTES  # estimated bytes held (rows, the line; the cache adds its key)
    accounted_bytes: int = 0  # bytes the cache has counted for this state
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def apply(self, rows: LineRows) -> None:
        """Append the rows newer than `version`, then refresh the views of touched claims.

        A `LineErased` entry among them means the line's older rows were scrubbed (another
        engine or process may have erased it, docs/erasure.md): the state starts over from
        the newest such entry, keeping only what came after it."""
        for entry in rows.entries:
            if entry.event_kind is EventKind.LINE_ERASED and entry.stream_seq > self.version:
                rows = self._restart(rows)
                break
        touched: set[str] = set()
        newest = self.version
        weight = self.weight
        for claim in rows.claims:
            if claim.stream_seq > self.version:
                self.claims[claim.claim_ref] = claim
                touched.add(claim.claim_ref)
                weight += claim_bytes(claim)
        for entry in rows.entries:
            if entry.stream_seq <= self.version:
                continue
            newest = max(newest, entry.stream_seq)
            if entry.event_kind is EventKind.RECALL_RE_ENTRY_DETECTED:
                self.echoes.append(entry)
            if entry.claim_ref is not None:
                self.entries.setdefault(entry.claim_ref, []).append(entry)
                touched.add(entry.claim_ref)
                weight += ENTRY_BYTES + REF_BYTES * len(entry.rationale.get("contested_with", ()))
        for assertion in rows.assertions:
            if assertion.stream_seq > self.version:
                self.assertions.setdefault(assertion.claim_ref, []).append(assertion)
                touched.add(assertion.claim_ref)
                weight += ASSERTION_BYTES
        self.version = newest
        self.weight = weight
        if len(touched) == 1:
            ordered: list[str] | set[str] = touched & self.claims.keys()
        else:
            ordered = sorted(touched & self.claims.keys(), key=lambda r: self.claims[r].stream_seq)
        for ref in ordered:
            old = self.by_ref.get(ref)
            if old is not None:
                self.index.discard(old)
            new = view(
                self.claims[ref],
                self.entries.get(ref, ()),
                self.assertions.get(ref, ()),
                self.config,
            )
            self.by_ref[ref] = new
            self.index.add(new, first_time=old is None)

    def _restart(self, rows: LineRows) -> LineRows:
        """Forget every row held; the rows of `rows` from its last erasure on remain."""
        erased = max(e.stream_seq for e in rows.entries if e.event_kind is EventKind.LINE_ERASED)
        marker = next(e for e in rows.entries if e.stream_seq == erased)
        self.version = 0
        self.claims, self.entries, self.assertions = {}, {}, {}
        self.echoes, self.by_ref, self.index = [], {}, LiveIndex()
        self.weight = LINE_BYTES + text_bytes(marker.subject or "")
        self.weight += text_bytes(marker.predicate or "")
        return LineRows(
            claims=tuple(c for c in rows.claims if c.stream_seq > erased),
            entries=tuple(e for e in rows.entries if e.stream_seq >= erased),
            assertions=tuple(a for a in rows.assertions if a.stream_seq > erased),
        )

    # ---- the `Line` questions (see `line.py`), answered from the index

    def views(self) -> Sequence[ClaimView]:
        return tuple(self.by_ref.values())

    def has_live(self) -> bool:
        return bool(self.index.live)

    def containing(self, instant: datetime) -> Sequence[ClaimView]:
        return self.index.containing(instant)

    def overlapping(self, start: datetime | None, end: datetime | None) -> Sequence[ClaimView]:
        return self.index.overlapping(start, end)

    def pending_containing(self, instant: datetime) -> Sequence[ClaimView]:
        return self.index.pending_containing(instant)

    def any_ended_by(self, instant: datetime) -> bool:
        return self.index.any_ended_by(instant)

    def any_starting_after(self, instant: datetime) -> bool:
        return self.index.any_starting_after(instant)

    def set_valued(self) -> bool:
        return self.index.set_valued()

    def has_live_authoritative(self, value: str | None = None) -> bool:
        return self.index.has_live_authoritative(value)

    def latest_live_with_value(self, value: str) -> ClaimView | None:
        return self.index.latest_live_with_value(value)

    def recall_rows_since(self, since: datetime) -> int:
        return self.index.recall_rows_since(since)

    def rows(self, as_of: datetime | None = None) -> LineRows:
        """The stored rows, optionally only those with tx time <= `as_of`."""
        claims = tuple(c for c in self.claims.values() if as_of is None or c.tx_time <= as_of)
        entries = sorted(
            (e for group in self.entries.values() for e in group), key=lambda e: e.stream_seq
        )
        assertions = sorted(
            (a for group in self.assertions.values() for a in group), key=lambda a: a.stream_seq
        )
        return LineRows(
            claims=claims,
            entries=tuple(e for e in entries if as_of is None or e.recorded_at <= as_of),
            assertions=tuple(a for a in assertions if as_of is None or a.tx_time <= as_of),
        )

    @property
    def size(self) -> int:
        return len(self.claims)


def claim_bytes(claim: ClaimRow) -> int:
    """Estimated memory of one cached claim: its row, texts, view and index entries (the
    `text_bytes` of its three texts, inline: this runs for every claim a write caches)."""
    value, subject, predicate = claim.value, claim.subject, claim.predicate
    keys = len(subject) + len(predicate)
    return (
        CLAIM_BYTES
        + (len(value) if value.isascii() else 4 * len(value))
        + (keys if subject.isascii() and predicate.isascii() else 4 * keys)
        + REF_BYTES * len(claim.derived_from)
    )
