"""Stores grown through checkpoints, with the reference's snapshots cached on disk.

The published wheel slows down as its store grows, so building its 100,000-claim store
takes a long time; each checkpoint of a reference store is therefore copied to
`build/bench/cache/` and restored on later runs. A cache entry is keyed by the wheel's
version, the stream version and the whole history of the store (each earlier checkpoint
and the number of claims measured there), so a restored store holds exactly the claims
a fresh build would. This engine's stores are always built afresh (it builds quickly).
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from benchmarks.context import Bench
from benchmarks.drivers import Driver
from benchmarks.reference import VERSION
from benchmarks.streams import STREAM_VERSION, Claim

FillFrom = Callable[[int, int], Iterator[Claim]]  # (first index, stop index) -> claims


class GrowingStore:
    """One agent's store on one driver, filled from a claim stream up to checkpoints."""

    def __init__(
        self,
        bench: Bench,
        driver: Driver,
        directory: Path,
        agent: str,
        kind: str,
        label: str | None = None,
    ) -> None:
        self.bench = bench
        self.label = label or driver.name
        self.driver = driver
        self.directory = directory
        self.agent = agent
        self.kind = kind
        self.handle = driver.open(directory, agent)
        self.total = 0  # claims stored (filled + measured)
        self.filled = 0  # claims taken from the fill stream
        self.history: list[str] = []
        self.build_seconds = 0.0
        self.restored = False
        self.last_meta: dict[str, Any] = {}

    @property
    def cached(self) -> bool:
        return self.driver.name == "reference"

    def key(self, size: int) -> str:
        past = "_".join(self.history) or "empty"
        return f"ref{VERSION}-s{STREAM_VERSION}-{self.kind}-{past}-to{size}"

    def reopen(self) -> None:
        """Close and open the engine again (empties this engine's line cache)."""
        self.driver.close(self.handle)
        self.handle = self.driver.open(self.directory, self.agent)

    def reach(self, size: int, stream: FillFrom) -> None:
        """Fill until `size` claims are stored (from the cache when possible)."""
        entry = self.bench.cache / self.key(size)
        self.restored = False
        if self.cached and (entry / "meta.json").exists():
            self._restore(entry)
        elif size > self.total:
            self._fill(size, stream)
            if self.cached:
                self._snapshot(entry)

    def measured(self, size: int, added: int) -> None:
        """Record that `added` measured claims went into the store at checkpoint `size`."""
        self.total += added
        self.history.append(f"{size}+{added}")

    def _fill(self, size: int, stream: FillFrom) -> None:
        count = size - self.total
        start, progress = time.perf_counter(), self.bench.progress
        done = 0
        for first in range(self.filled, self.filled + count, 1000):
            stop = min(first + 1000, self.filled + count)
            done += self.driver.fill(self.handle, stream(first, stop))
            progress.every(f"  building the {self.label} {self.kind} store: {done:,}/{count:,}")
        self.filled += count
        self.total = size
        self.build_seconds = time.perf_counter() - start

    def _snapshot(self, entry: Path) -> None:
        self.driver.close(self.handle)
        partial = entry.with_name(entry.name + ".partial")
        shutil.rmtree(partial, ignore_errors=True)
        shutil.copytree(self.directory, partial)
        meta = {"total": self.total, "filled": self.filled, "build_seconds": self.build_seconds}
        meta.update(self._rss())
        (partial / "meta.json").write_text(json.dumps(meta))
        self.last_meta = meta
        shutil.rmtree(entry, ignore_errors=True)
        partial.rename(entry)
        self.handle = self.driver.open(self.directory, self.agent)

    def _restore(self, entry: Path) -> None:
        self.driver.close(self.handle)
        meta = json.loads((entry / "meta.json").read_text())
        shutil.rmtree(self.directory)
        shutil.copytree(entry, self.directory, ignore=shutil.ignore_patterns("meta.json"))
        self.total, self.filled = int(meta["total"]), int(meta["filled"])
        self.build_seconds = float(meta["build_seconds"])
        self.restored = True
        self.last_meta = meta
        self.handle = self.driver.open(self.directory, self.agent)

    def copy_to(self, target: Path) -> Path:
        """A copy of the store as it is now, in `target` (the store is closed meanwhile)."""
        self.driver.close(self.handle)
        shutil.rmtree(target, ignore_errors=True)
        shutil.copytree(self.directory, target)
        self.handle = self.driver.open(self.directory, self.agent)
        return target

    def _rss(self) -> dict[str, Any]:
        peak = getattr(self.driver, "peak_rss_kib", None)
        return {} if peak is None else {"builder_peak_rss_kib": int(peak())}

    def close(self) -> None:
        self.driver.close(self.handle)
