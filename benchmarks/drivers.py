"""One interface over both engines, so every measurement is written once.

`OursDriver` runs this engine in-process; `reference.ReferenceDriver` forwards the same
calls to the published wheel in its own process. Both time only the engine calls
(`time.perf_counter` around them), so the numbers compare engine cost, not plumbing.
"""

from __future__ import annotations

import itertools
import time
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Protocol

import mempill
from benchmarks.streams import Claim
from mempill.engine import Engine
from mempill.stores.sqlite import SQLiteStore

FILL_CHUNK = 1000
CLOCK_START = datetime(2026, 1, 1, tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class Ingested:
    """Wall time of a run of ingest calls and the dispositions they got."""

    seconds: float
    count: int
    dispositions: dict[str, int] = field(default_factory=dict)

    @property
    def rate(self) -> float:
        return self.count / self.seconds if self.seconds > 0 else float("inf")


@dataclass(frozen=True, slots=True)
class Queried:
    """Latency of each query_memory call (seconds) and the statuses returned."""

    latencies: tuple[float, ...]
    statuses: dict[str, int] = field(default_factory=dict)


class Driver(Protocol):
    """What a benchmark needs from an engine."""

    name: str
    #: False when `ingest_batch` is a loop of single ingests (the wheel has no batch call).
    batch_native: bool

    def open(self, directory: Path | None, agent: str) -> int: ...

    def close(self, handle: int) -> None: ...

    def ingest(self, handle: int, claims: Sequence[Claim]) -> Ingested: ...

    def ingest_batch(self, handle: int, claims: Sequence[Claim]) -> Ingested: ...

    def fill(self, handle: int, claims: Iterable[Claim]) -> int: ...

    def query(self, handle: int, queries: Sequence[dict[str, Any]]) -> Queried: ...


class OursDriver:
    """This engine, in-process: a SQLite directory store (or in-memory) with the product's
    id factory (time-ordered UUIDv7, as the floors' scripts use) and a stepping clock.

    `synchronous` is SQLite's; "FULL" is the product setting, "OFF" (lab-only) removes
    the fsync so a measurement shows the engine's own cost. The ids are the product's
    default on purpose: seeded version-4 ids put each claim's refs at a random place of
    every index keyed by them, which costs pages as the store grows (docs/benchmarks.md,
    sixth pass) — a configuration users do not get unless they ask for it.
    """

    name = "ours"
    batch_native = True

    def __init__(self, synchronous: str = "FULL") -> None:
        self.synchronous = synchronous
        self.clock = mempill.SteppingClock(CLOCK_START, timedelta(milliseconds=1))
        self.engines: dict[int, Engine] = {}
        self._handles = itertools.count(1)

    def open(self, directory: Path | None, agent: str) -> int:
        """The product openers (`open_directory`, `open_default_in_memory`); the lab's own
        store only for a `synchronous` other than FULL."""
        clock = self.clock  # ids: the product's default (no `ids=`)
        if directory is None:
            engine = mempill.open_default_in_memory(clock=clock)
        elif self.synchronous == "FULL":
            engine = mempill.open_directory(directory, clock=clock)
        else:
            store = SQLiteStore(directory=directory, lab_synchronous=self.synchronous)
            engine = Engine(store, clock=clock)
        handle = next(self._handles)
        self.engines[handle] = engine
        return handle

    def close(self, handle: int) -> None:
        engine = self.engines.pop(handle, None)
        if engine is not None:
            engine.close()

    def ingest(self, handle: int, claims: Sequence[Claim]) -> Ingested:
        engine = self.engines[handle]
        counts: Counter[str] = Counter()
        started = time.perf_counter()
        for claim in claims:
            counts[engine.ingest(claim).disposition.value] += 1
        return Ingested(time.perf_counter() - started, len(claims), dict(counts))

    def ingest_batch(self, handle: int, claims: Sequence[Claim]) -> Ingested:
        engine = self.engines[handle]
        started = time.perf_counter()
        receipts = engine.ingest_many(claims)
        seconds = time.perf_counter() - started
        counts = Counter(r.disposition.value for r in receipts)
        return Ingested(seconds, len(claims), dict(counts))

    def fill(self, handle: int, claims: Iterable[Claim]) -> int:
        """Untimed bulk load through `ingest_many` (same decisions as one by one)."""
        engine = self.engines[handle]
        done = 0
        for chunk in _chunks(claims, FILL_CHUNK):
            engine.ingest_many(chunk)
            done += len(chunk)
        return done

    def query(self, handle: int, queries: Sequence[dict[str, Any]]) -> Queried:
        engine = self.engines[handle]
        latencies = []
        counts: Counter[str] = Counter()
        for q in queries:
            agent = q["agent_id"]
            started = time.perf_counter()
            belief = engine.query_memory(agent, q["subject"], q["predicate"], None, q["valid_at"])
            latencies.append(time.perf_counter() - started)
            counts[belief.status.value] += 1
        return Queried(tuple(latencies), dict(counts))

    def close_all(self) -> None:
        for handle in list(self.engines):
            self.close(handle)


def _chunks(items: Iterable[Claim], size: int) -> Iterable[list[Claim]]:
    iterator = iter(items)
    while chunk := list(itertools.islice(iterator, size)):
        yield chunk
