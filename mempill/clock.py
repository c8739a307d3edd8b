"""Injectable clocks: the engine reads one exactly once per public call."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from typing import Protocol


class Clock(Protocol):
    def __call__(self) -> datetime:
        """Return the current instant as an aware UTC datetime."""
        ...


def system_clock() -> datetime:
    """Wall-clock time in UTC at microsecond precision."""
    return datetime.now(UTC)


class SteppingClock:
    """Deterministic clock: returns `start`, then `start + step`, `start + 2*step`, …

    With `step=timedelta(0)` it is a fixed clock. Thread-safe.
    """

    def __init__(self, start: datetime, step: timedelta = timedelta(seconds=1)) -> None:
        if start.tzinfo is None:
            raise ValueError("SteppingClock needs an aware datetime")
        self._next = start.astimezone(UTC)
        self._step = step
        self._lock = threading.Lock()

    def __call__(self) -> datetime:
        with self._lock:
            value = self._next
            self._next = value + self._step
            return value

    def advance(self, delta: timedelta) -> None:
        """Move the clock forward without reading it (for tests of ageing and expiry)."""
        with self._lock:
            self._next += delta
