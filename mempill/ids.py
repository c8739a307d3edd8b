"""Injectable id factories producing UUID strings."""

from __future__ import annotations

import random
import threading
import uuid
from typing import Protocol


class IdFactory(Protocol):
    def __call__(self) -> str:
        """Return a fresh UUID string (lower-case, hyphenated)."""
        ...


def random_ids() -> str:
    """UUID4 from the operating system's randomness."""
    return str(uuid.uuid4())


class SeededIds:
    """A reproducible sequence of version-4 UUIDs from a seed. Thread-safe."""

    def __init__(self, seed: int | str = 0) -> None:
        self._random = random.Random(seed)
        self._lock = threading.Lock()

    def __call__(self) -> str:
        with self._lock:
            bits = self._random.getrandbits(128)
        return str(uuid.UUID(int=bits, version=4))
