"""The shared, bounded cache of committed line states of one engine (see `core/linestate.py`)."""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from datetime import datetime

from mempill.core.config import EngineConfig
from mempill.core.linestate import LineState
from mempill.core.model import LineRows

Key = tuple[str, str, str]  # agent, subject, predicate
Fetch = Callable[[int], LineRows]


class LineCache:
    """The shared, LRU-bounded cache of committed line states of one engine."""

    def __init__(self, config: EngineConfig, max_claims: int = 50_000) -> None:
        self._config = config
        self._max_claims = max_claims
        self._lines: OrderedDict[Key, LineState] = OrderedDict()
        self._lock = threading.Lock()
        self._total = 0  # claims counted for the cached states (each state's `accounted`)

    def refreshed(self, key: Key, version: int, fetch: Fetch) -> LineState:
        """The line at `version` or later: rows after the cached version are fetched once."""
        with self._lock:
            state = self._lines.get(key)
            if state is None:
                state = self._lines[key] = LineState(self._config)
            self._lines.move_to_end(key)
        with state.lock:
            if state.version < version and not state.dirty:
                state.apply(fetch(state.version))
        self._account(key, state)
        return state

    @contextmanager
    def reading(self, state: LineState) -> Iterator[LineState | None]:
        """Hold a shared state still while the fold reads it; None while a write has it."""
        with state.lock:
            yield None if state.dirty else state

    def mark_dirty(self, state: LineState) -> None:
        with state.lock:
            state.dirty = True

    def rows(self, state: LineState, as_of: datetime) -> LineRows | None:
        """The state's rows up to `as_of`; None while a write has it."""
        with state.lock:
            return None if state.dirty else state.rows(as_of)

    def publish(self, key: Key, state: LineState) -> None:
        """A state written in place by a committed transaction is readable again."""
        with state.lock:
            state.dirty = False
        with self._lock:
            current = self._lines.get(key)
            if current is not None and current is not state:
                if current.version >= state.version:
                    return
                self._total -= current.accounted
                current.accounted = 0
            self._lines[key] = state
            self._lines.move_to_end(key)
        self._account(key, state)

    def forget(self, keys: Iterable[Key]) -> None:
        with self._lock:
            for key in keys:
                dropped = self._lines.pop(key, None)
                if dropped is not None:
                    self._total -= dropped.accounted
                    dropped.accounted = 0

    def stats(self) -> tuple[int, int]:
        """(lines cached, claims held) — for tests and diagnostics."""
        with self._lock:
            return len(self._lines), self._total

    def _account(self, key: Key, state: LineState) -> None:
        """Count a cached state's claims; drop least recently used lines beyond the budget."""
        with self._lock:
            if self._lines.get(key) is not state:
                return
            self._total += state.size - state.accounted
            state.accounted = state.size
            while self._total > self._max_claims and len(self._lines) > 1:
                _, dropped = self._lines.popitem(last=False)
                self._total -= dropped.accounted
                dropped.accounted = 0
