"""The trial harness: configurations, results, the writer process and its acknowledgements.

Kinds: `process-kill` SIGKILLs the victim (the writer for SQLite, the whole server for
PostgreSQL) with the page cache intact; every other kind runs the store on the `powerfs`
mount and cuts it: stop every victim (SIGSTOP, wait for state T), apply the kind's crash
model to the unsynced state (`models`: `power-loss` drops it all, `reorder`, `torn-write`,
`lost-dirent`, `fsync-error` as documented there), then SIGKILL. The cut is atomic with
respect to acknowledgements: once the writer is stopped it can promise nothing more, and
everything it promised before is either in the durable image or lost.

A configuration's `variant` names a deliberately broken store or writer used as a positive
control: `no-dirsync` (the SQLite store never fsyncs a directory) and `ack-on-error` (the
writer acknowledges a claim whose ingest failed, as an engine that ignores a failed fsync
would).

A configuration with `threads` > 1 runs the multi-threaded writer (`writer --threads`):
N threads on one Engine into `agents` agents, opened by `opener` (`directory`:
`open_directory`; `file`: `open_default`, one agent); see `mempill.lab.durability.threaded`.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from mempill.lab.durability import check as checks
from mempill.lab.durability import procs

BACKENDS = {"sqlite": ("FULL", "NORMAL", "OFF"), "postgres": ("on", "off")}
SAFE = {"sqlite": "FULL", "postgres": "on"}
KINDS = ("process-kill", "power-loss", "reorder", "torn-write", "lost-dirent", "fsync-error")
MOUNTED_KINDS = KINDS[1:]  # the kinds that need the powerfs mount (FUSE)
VARIANTS = {"": (), "no-dirsync": ("--no-dirsync",), "ack-on-error": ("--ack-on-error",)}
FIRST_ACK_TIMEOUT = 120.0
KILL_WINDOW = (0.05, 1.0)  # seconds after the first acknowledgement
OPENERS = ("directory", "file")  # open_directory, open_default (one agent only)


class HarnessError(RuntimeError):
    """The experiment itself failed (not the store under test)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Configuration:
    backend: str
    kind: str
    sync: str
    role: str = "measured"  # or "control": a mode that must lose something
    variant: str = ""  # a broken store or writer (a control): see VARIANTS
    threads: int = 1  # > 1: the multi-threaded writer
    agents: int = 1  # agents the threads write into (thread i into agent i mod agents)
    opener: str = "directory"  # multi-threaded only: open_directory or open_default ("file")

    @property
    def safe(self) -> bool:
        return SAFE[self.backend] == self.sync and not self.variant

    @property
    def mounted(self) -> bool:
        return self.kind in MOUNTED_KINDS

    @property
    def threaded(self) -> bool:
        return self.threads > 1

    @property
    def name(self) -> str:
        """`sqlite power-loss FULL`, or with threads `sqlite power-loss FULL 16x1 directory`."""
        name = f"{self.backend} {self.kind} {self.sync}"
        name += f" {self.variant}" if self.variant else ""
        return f"{name} {self.threads}x{self.agents} {self.opener}" if self.threaded else name


@dataclass(frozen=True, slots=True, kw_only=True)
class TrialResult:
    configuration: Configuration
    trial: int
    seed: int
    kill_after_s: float
    result: checks.CheckResult
    discarded_bytes: int
    seconds: float
    write_errors: int = 0  # ingest calls that failed (the fsync-error model)
    cut: str = ""  # what the crash model did, as compact JSON


class AckReader:
    """Drains the writer's stdout continuously (a full pipe would stall the writer and
    fake a '0 lost') and keeps every acknowledgement in arrival order.

    `ack <claim_ref> <stream_seq>` (the single writer) or, from the multi-threaded writer,
    `ack <claim_ref> <stream_seq> <agent> <disposition>`; the latter also go to `receipts`.
    """

    def __init__(self, stream: IO[bytes]) -> None:
        self.errors = 0  # `error <claim_ref>` lines: ingest calls that raised
        self.acked: list[checks.Ack] = []
        self.receipts: list[checks.AgentAck] = []
        self.first = threading.Event()
        self._stream = stream
        self._thread = threading.Thread(target=self._drain, daemon=True)
        self._thread.start()

    def _drain(self) -> None:
        for line in self._stream:
            parts = line.split()
            if parts[:1] == [b"error"]:
                self.errors += 1
            if len(parts) in (3, 5) and parts[0] == b"ack":
                ref, seq = parts[1].decode("ascii"), int(parts[2])
                if len(parts) == 5:
                    agent, disposition = parts[3].decode("ascii"), parts[4].decode("ascii")
                    self.receipts.append((agent, ref, seq, disposition))
                self.acked.append((ref, seq))
                self.first.set()
        self.first.set()  # EOF: the writer ended

    def finish(self, timeout: float = 30.0) -> list[checks.Ack]:
        self._thread.join(timeout)
        if self._thread.is_alive():
            raise HarnessError("the writer's pipe did not reach EOF after it was killed")
        self._stream.close()
        return self.acked


class Writer:
    """The victim writer process and the reader of its acknowledgements."""

    def __init__(
        self,
        root: Path,
        backend: str,
        target: str,
        sync: str,
        seed: int,
        extra: tuple[str, ...] = (),
    ) -> None:
        """`extra`: more writer options (`--threads N --agents M --opener O`)."""
        self.log_path = root / "writer.log"
        with open(self.log_path, "wb") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "mempill.lab.durability.writer", "--backend", backend,
                 "--target", target, "--sync", sync, "--seed", str(seed), *extra],
                stdout=subprocess.PIPE,
                stderr=log,
            )  # fmt: skip
        assert self.process.stdout is not None
        self.acks = AckReader(self.process.stdout)

    def wait_first_ack(self) -> None:
        if not self.acks.first.wait(FIRST_ACK_TIMEOUT) or not self.acks.acked:
            self.kill()
            tail = self.log_path.read_text(errors="replace")[-2000:]
            raise HarnessError(f"the writer acknowledged nothing; its log ends:\n{tail}")

    @property
    def pid(self) -> int:
        return self.process.pid

    def kill(self) -> list[checks.Ack]:
        """SIGKILL (a no-op if already dead), reap, and return every acknowledgement."""
        if self.process.returncode is None:
            procs.kill_and_reap([self.pid])
            self.process.returncode = -9
        return self.acks.finish()


@contextmanager
def trial_directory() -> Iterator[Path]:
    """A fresh directory for one trial, removed afterwards."""
    root = Path(tempfile.mkdtemp(prefix="mp-dur-"))
    os.chmod(root, 0o711)  # noqa: S103 - the PostgreSQL user traverses it; nobody lists it
    try:
        yield root
    finally:
        shutil.rmtree(root, ignore_errors=True)
