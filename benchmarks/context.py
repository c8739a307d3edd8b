"""What every measurement gets: sizes, scratch space, the drivers, progress output."""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from pathlib import Path

from benchmarks.drivers import Driver, OursDriver
from benchmarks.reference import ReferenceDriver
from benchmarks.sizes import Sizes
from benchmarks.timing import Progress


@dataclass
class Bench:
    """One benchmark run's shared state.

    `work` is scratch space on the disk being measured (stores and raw-SQLite files live
    there side by side); `cache` keeps reference stores that are slow to build.
    """

    sizes: Sizes
    work: Path
    cache: Path
    progress: Progress
    ours: OursDriver = field(default_factory=OursDriver)
    ours_nosync: OursDriver = field(default_factory=lambda: OursDriver(synchronous="OFF"))
    reference: ReferenceDriver | None = None
    reference_error: str | None = None
    pg_dsn: str | None = None
    pg_error: str | None = None

    def drivers(self) -> list[Driver]:
        """This engine (durable), then the reference when it is available."""
        found: list[Driver] = [self.ours]
        if self.reference is not None:
            found.append(self.reference)
        return found

    def scratch(self, name: str) -> Path:
        """A fresh, empty directory under `work`."""
        path = self.work / name
        if path.exists():
            shutil.rmtree(path)
        path.mkdir(parents=True)
        return path

    def close(self) -> None:
        self.ours.close_all()
        self.ours_nosync.close_all()
        if self.reference is not None:
            self.reference.close_all()
