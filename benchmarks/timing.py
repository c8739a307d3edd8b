"""Small statistics and progress helpers shared by the measurements."""

from __future__ import annotations

import math
import statistics
import sys
import threading
import time
import traceback
from collections.abc import Callable, Sequence
from typing import TextIO, TypeVar

T = TypeVar("T")


def median(values: Sequence[float]) -> float:
    """The median, or NaN for no values (JSON-safe through `finite`)."""
    return statistics.median(values) if values else math.nan


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0..100) by linear interpolation; NaN for no values."""
    if not values:
        return math.nan
    ordered = sorted(values)
    position = (len(ordered) - 1) * q / 100
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def ratio(numerator: float, denominator: float) -> float:
    """numerator / denominator, NaN when either is missing or the denominator is 0."""
    if not (math.isfinite(numerator) and math.isfinite(denominator)) or denominator == 0:
        return math.nan
    return numerator / denominator


def finite(value: float) -> float | None:
    """None for NaN/inf (JSON has no NaN), else the value."""
    return value if math.isfinite(value) else None


def failure(error: BaseException, limit: int = 2000) -> str:
    """The tail of an error's traceback, for the results."""
    return "".join(traceback.format_exception(error))[-limit:]


def optional(make: Callable[[], T]) -> tuple[T | None, str]:
    """`make()`, or None and why: a floor is a measurement of its own, and the section's
    other rates are measured without it when it cannot be made."""
    try:
        return make(), ""
    except Exception as e:
        return None, failure(e)


class Progress:
    """Progress lines on stderr: `[mm:ss] section: message`, throttled for loops."""

    def __init__(self, stream: TextIO | None = None, quiet: bool = False) -> None:
        self.stream = stream or sys.stderr
        self.quiet = quiet
        self.started = time.monotonic()
        self._last = 0.0

    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def say(self, message: str) -> None:
        if self.quiet:
            return
        minutes, seconds = divmod(int(self.elapsed()), 60)
        self.stream.write(f"[{minutes:02d}:{seconds:02d}] {message}\n")
        self.stream.flush()

    def every(self, message: str, seconds: float = 5.0) -> None:
        """Like `say`, at most once per `seconds` (for long loops)."""
        now = time.monotonic()
        if now - self._last >= seconds:
            self._last = now
            self.say(message)


def in_threads(workers: Sequence[Callable[[], None]]) -> float:
    """Run each worker in its own thread, released together; wall seconds of the whole."""
    barrier = threading.Barrier(len(workers))
    starts: list[float] = []
    ends: list[float] = []
    errors: list[BaseException] = []

    def body(work: Callable[[], None]) -> None:
        try:
            barrier.wait()
            starts.append(time.perf_counter())
            work()
            ends.append(time.perf_counter())
        except BaseException as e:  # re-raised in the caller
            errors.append(e)

    threads = [threading.Thread(target=body, args=(w,)) for w in workers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]
    return max(ends) - min(starts)
