"""Injectable id factories producing UUID strings."""

from __future__ import annotations

import os
import random
import threading
import time
import uuid
from typing import Protocol


class IdFactory(Protocol):
    def __call__(self) -> str:
        """Return a fresh UUID string (lower-case, hyphenated)."""
        ...


def random_ids() -> str:
    """UUID4 from the operating system's randomness (the text `str(uuid.uuid4())` gives,
    formatted directly: the engine draws two ids per claim)."""
    h = os.urandom(16).hex()
    return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-{_VARIANT[h[16]]}{h[17:20]}-{h[20:]}"


#: The RFC 4122 variant puts 0b10 in the top bits of the clock_seq byte.
_VARIANT = {c: "89ab"[int(c, 16) & 3] for c in "0123456789abcdef"}


def time_ordered_ids() -> str:
    """UUID version 7 (RFC 9562): the Unix time in milliseconds, then its sub-millisecond
    fraction in 12 bits (the RFC's "increased clock precision"), then 62 random bits. The
    engines' default: ids made later sort later (unless the system clock steps back), so a
    claim's rows are appended at the end of every index keyed by its ref (claims, ledger,
    word index) instead of at a random place — fewer pages written per commit (measured
    in docs/benchmarks.md). The ref tells when it was made, which the claim's tx_time says
    anyway."""
    ms, below = divmod(time.time_ns(), 1_000_000)
    t = f"{ms:012x}"
    h = os.urandom(8).hex()
    return f"{t[:8]}-{t[8:]}-7{below * 4096 // 1_000_000:03x}-{_VARIANT[h[0]]}{h[1:4]}-{h[4:]}"


class SeededIds:
    """A reproducible sequence of version-4 UUIDs from a seed. Thread-safe."""

    def __init__(self, seed: int | str = 0) -> None:
        self._random = random.Random(seed)
        self._lock = threading.Lock()

    def __call__(self) -> str:
        with self._lock:
            bits = self._random.getrandbits(128)
        return str(uuid.UUID(int=bits, version=4))
