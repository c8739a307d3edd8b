"""Injectable id factories producing UUID strings."""

from __future__ import annotations

import os
import random
import threading
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


class SeededIds:
    """A reproducible sequence of version-4 UUIDs from a seed. Thread-safe."""

    def __init__(self, seed: int | str = 0) -> None:
        self._random = random.Random(seed)
        self._lock = threading.Lock()

    def __call__(self) -> str:
        with self._lock:
            bits = self._random.getrandbits(128)
        return str(uuid.UUID(int=bits, version=4))
