"""An incrementally maintained, exact cache of each line's rows and claim views.

Every row of a line carries the `stream_seq` of the ledger entry that wrote it, and rows
are only ever appended; so a cached line at version `v` plus the rows with seq > `v` is
exactly the line at the newer version. Only the views of claims that got new rows are
recomputed. Pure: the engine fetches rows and applies them.

The shared cache only ever holds committed rows. A write transaction works on a private
copy of each line it writes to (`LineState.copy` is cheap: per-claim lists are replaced,
never mutated), so readers never see uncommitted rows and a rollback leaves nothing behind.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime

from mempill.config import EngineConfig
from mempill.enums import EventKind
from mempill.fold import ClaimView, view
from mempill.model import AssertionRow, ClaimRow, LedgerEntry, LineRows

Key = tuple[str, str, str]  # agent, subject, predicate


@dataclass
class LineState:
    """One line's rows (up to `version`) and the view of each of its claims."""

    config: EngineConfig
    version: int = 0
    claims: dict[str, ClaimRow] = field(default_factory=dict)
    entries: dict[str, tuple[LedgerEntry, ...]] = field(default_factory=dict)
    assertions: dict[str, tuple[AssertionRow, ...]] = field(default_factory=dict)
    echoes: tuple[LedgerEntry, ...] = ()
    views: dict[str, ClaimView] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def apply(self, rows: LineRows, upto: int | None = None) -> None:
        """Append rows newer than `version` (and not beyond `upto`), then refresh views."""
        touched: set[str] = set()
        newest = self.version
        echoes = list(self.echoes)
        for claim in rows.claims:
            if self._fresh(claim.stream_seq, upto):
                self.claims[claim.claim_ref] = claim
                touched.add(claim.claim_ref)
        for entry in rows.entries:
            if not self._fresh(entry.stream_seq, upto):
                continue
            newest = max(newest, entry.stream_seq)
            if entry.event_kind is EventKind.RECALL_RE_ENTRY_DETECTED:
                echoes.append(entry)
            if entry.claim_ref is not None:
                self.entries[entry.claim_ref] = (*self.entries.get(entry.claim_ref, ()), entry)
                touched.add(entry.claim_ref)
        for assertion in rows.assertions:
            if self._fresh(assertion.stream_seq, upto):
                ref = assertion.claim_ref
                self.assertions[ref] = (*self.assertions.get(ref, ()), assertion)
                touched.add(ref)
        self.echoes = tuple(echoes)
        self.version = newest
        for ref in sorted(touched, key=lambda r: self.claims[r].stream_seq):
            self.views[ref] = view(
                self.claims[ref],
                self.entries.get(ref, ()),
                self.assertions.get(ref, ()),
                self.config,
            )

    def _fresh(self, seq: int, upto: int | None) -> bool:
        return seq > self.version and (upto is None or seq <= upto)

    def copy(self) -> LineState:
        """A private copy for a write transaction (containers copied, rows shared)."""
        return LineState(
            config=self.config,
            version=self.version,
            claims=dict(self.claims),
            entries=dict(self.entries),
            assertions=dict(self.assertions),
            echoes=self.echoes,
            views=dict(self.views),
        )

    def ordered_views(self) -> tuple[ClaimView, ...]:
        """Views in claim stream order (claims are inserted in that order)."""
        return tuple(self.views.values())

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


Fetch = Callable[[int], LineRows]


class LineCache:
    """The shared, LRU-bounded cache of committed line states of one engine."""

    def __init__(self, config: EngineConfig, max_claims: int = 200_000) -> None:
        self._config = config
        self._max_claims = max_claims
        self._lines: OrderedDict[Key, LineState] = OrderedDict()
        self._lock = threading.Lock()
        self._total = 0  # claims held, kept incrementally (approximate under races)

    def refreshed(self, key: Key, version: int, fetch: Fetch, upto: int | None = None) -> LineState:
        """The line at `version` or later: rows after the cached version are fetched once."""
        with self._lock:
            state = self._lines.get(key)
            if state is None:
                state = self._lines[key] = LineState(self._config)
            self._lines.move_to_end(key)
        grown = 0
        with state.lock:
            if state.version < version:
                before = state.size
                state.apply(fetch(state.version), upto=upto)
                grown = state.size - before
        if grown:
            self._grew(grown)
        return state

    def snapshot(self, state: LineState) -> tuple[ClaimView, ...]:
        with state.lock:
            return state.ordered_views()

    def rows(self, state: LineState, as_of: datetime) -> LineRows:
        with state.lock:
            return state.rows(as_of)

    def private_copy(self, state: LineState) -> LineState:
        with state.lock:
            return state.copy()

    def publish(self, key: Key, state: LineState) -> None:
        """Install a committed private state unless the cache already has a newer one."""
        with self._lock:
            current = self._lines.get(key)
            if current is not None and current.version >= state.version:
                return
            self._lines[key] = state
            self._lines.move_to_end(key)
        self._grew(state.size - (0 if current is None else current.size))

    def forget(self, keys: Iterable[Key]) -> None:
        with self._lock:
            for key in keys:
                dropped = self._lines.pop(key, None)
                self._total -= 0 if dropped is None else dropped.size

    def _grew(self, claims: int) -> None:
        """Account for added claims and drop least recently used lines beyond the budget."""
        with self._lock:
            self._total += claims
            while self._total > self._max_claims and len(self._lines) > 1:
                _, dropped = self._lines.popitem(last=False)
                self._total -= dropped.size
