"""The shared, bounded cache of committed line states of one engine (see `core/linestate.py`).

It holds only lines that have rows: a read of an absent line (any key a caller makes up)
folds an empty state that is never stored, so no read pattern grows it. It is bounded
twice, least recently used lines going first: by claims (`cache_claims`) and by the
estimated bytes of the rows and keys held (`cache_bytes`), so long values or keys, or
lines of many ledger entries, cannot make it outgrow its memory budget.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager

from mempill.core.config import EngineConfig
from mempill.core.linestate import LineState, text_bytes
from mempill.core.model import LineRows
from mempill.core.travel import Cut

Key = tuple[str, str, str]  # agent, subject, predicate
Fetch = Callable[[int], LineRows]
#: The default `cache_bytes`: the estimated memory the cached lines may hold.
DEFAULT_CACHE_BYTES = 256 * 1024 * 1024


class LineCache:
    """The shared, LRU-bounded cache of committed line states of one engine."""

    def __init__(
        self,
        config: EngineConfig,
        max_claims: int = 50_000,
        max_bytes: int = DEFAULT_CACHE_BYTES,
    ) -> None:
        self._config = config
        self._max_claims = max_claims
        self._max_bytes = max_bytes
        self._lines: OrderedDict[Key, LineState] = OrderedDict()
        self._lock = threading.Lock()
        self._total = 0  # claims counted for the cached states (each state's `accounted`)
        self._bytes = 0  # estimated bytes of the cached states (each one's `accounted_bytes`)

    def refreshed(self, key: Key, version: int, fetch: Fetch) -> LineState:
        """The line at `version` or later: rows after the cached version are fetched once.
        An absent line (version 0) gets a fresh empty state that is not cached."""
        with self._lock:
            state = self._lines.get(key)
            if state is None:
                state = LineState(self._config)
                state.weight += text_bytes(key[1]) + text_bytes(key[2])
                if version == 0:
                    return state  # a write that adds rows to it publishes it after COMMIT
                self._lines[key] = state
            self._lines.move_to_end(key)
        with state.lock:
            if state.version < version and not state.dirty:
                state.apply(fetch(state.version))
        self._account(key, state)
        return state

    def version(self, key: Key) -> int:
        """The version a read can bring the cached line up from (0: not cached, or a write
        holds it and the read folds its own rows)."""
        with self._lock:
            state = self._lines.get(key)
        if state is None:
            return 0
        with state.lock:
            return 0 if state.dirty else state.version

    @contextmanager
    def reading(self, state: LineState) -> Iterator[LineState | None]:
        """Hold a shared state still while the fold reads it; None while a write has it."""
        with state.lock:
            yield None if state.dirty else state

    def mark_dirty(self, state: LineState) -> None:
        with state.lock:
            state.dirty = True

    def rows(self, state: LineState, cut: Cut) -> LineRows | None:
        """The state's rows up to `cut`; None while a write has it."""
        with state.lock:
            return None if state.dirty else cut.rows(state.rows())

    def publish(self, key: Key, state: LineState) -> None:
        """A state written in place by a committed transaction is readable again."""
        with state.lock:
            state.dirty = False
        with self._lock:
            current = self._lines.get(key)
            if current is not None and current is not state:
                if current.version >= state.version:
                    return
                self._drop(current)
            if state.version == 0:
                return  # nothing was written to it (all rejected): an absent line again
            self._lines[key] = state
            self._lines.move_to_end(key)
        self._account(key, state)

    def forget(self, keys: Iterable[Key]) -> None:
        with self._lock:
            for key in keys:
                dropped = self._lines.pop(key, None)
                if dropped is not None:
                    self._drop(dropped)

    def stats(self) -> tuple[int, int]:
        """(lines cached, claims held) — for tests and diagnostics."""
        with self._lock:
            return len(self._lines), self._total

    def held_bytes(self) -> int:
        """The estimated bytes of the cached lines (at most `max_bytes` but for one line)."""
        with self._lock:
            return self._bytes

    def _drop(self, state: LineState) -> None:
        """Give back what a state no longer cached was counted for (the lock is held)."""
        self._total -= state.accounted
        self._bytes -= state.accounted_bytes
        state.accounted = state.accounted_bytes = 0

    def _account(self, key: Key, state: LineState) -> None:
        """Count a cached state's claims and bytes; drop least recently used lines beyond
        either budget (the line just asked for stays, even alone over budget)."""
        with self._lock:
            if self._lines.get(key) is not state:
                return
            self._total += state.size - state.accounted
            self._bytes += state.weight - state.accounted_bytes
            state.accounted, state.accounted_bytes = state.size, state.weight
            while (self._total > self._max_claims or self._bytes > self._max_bytes) and len(
                self._lines
            ) > 1:
                self._drop(self._lines.popitem(last=False)[1])
