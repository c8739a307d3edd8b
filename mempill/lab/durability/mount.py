"""Drive the power-loss file system (`mempill.lab.durability.powerfs`) from the harness.

`PowerMount(backing, mountpoint, user)` starts the FUSE server in its own process and
waits until the mount is live; `cut()` discards every unsynced write and freezes the mount;
`unmount()` (also on `with` exit) unmounts it and ends the server. The cut applies the
mount's crash model (`model=`, see `mempill.lab.durability.models`); `fail_fsync(n)` arms
the `fsync-error` model's failing fsync. The mount serves one
user, the one whose processes write through it (the harness's own by default; PostgreSQL's
server user in the PostgreSQL trials): no other user, root included, can open it, and the
backing directory is that user's, mode 0700.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import select
import shutil
import subprocess
import sys
import time
from pathlib import Path
from stat import S_ISUID
from types import TracebackType
from typing import Any

from mempill.lab.durability import fusedev, procs
from mempill.lab.durability.harness import Configuration, HarnessError, Writer
from mempill.lab.durability.models import SECTORS

FUSE_DEVICE = fusedev.FUSE_DEVICE


def unavailable_reason() -> str | None:
    """Why power-loss experiments cannot run here, or None when they can."""
    if not os.path.exists(FUSE_DEVICE):
        return f"{FUSE_DEVICE} is missing (power-loss experiments need FUSE)"
    helper = shutil.which("fusermount3")
    if helper is None:
        return "fusermount3 is missing (apt-get install -y fuse3)"
    try:
        import mfusepy  # noqa: F401
    except (ImportError, OSError) as e:
        return f"the mfusepy FUSE binding is unusable: {e}"
    if os.geteuid() != 0 and not os.stat(helper).st_mode & S_ISUID:
        return "fusermount3 is not setuid root, so only root can mount FUSE file systems here"
    return None


class PowerMount:
    """A live `VolatileFS` mount of `backing` at `mountpoint`."""

    def __init__(
        self,
        backing: Path,
        mountpoint: Path,
        user: str | None = None,
        ready_timeout: float = 30.0,
        *,
        model: str = "power-loss",
        seed: int = 0,
        sector: int = 512,
    ) -> None:
        """`user`: the system user whose processes use the mount (default: this one's);
        `model`, `seed`, `sector`: the crash model a cut applies (`models`)."""
        self.backing, self.mountpoint = backing.resolve(), mountpoint.resolve()
        self.backing.mkdir(parents=True, exist_ok=True)
        self.mountpoint.mkdir(parents=True, exist_ok=True)
        uid, gid = fusedev.identity(user)
        os.chown(self.backing, uid, gid)
        os.chmod(self.backing, 0o700)
        env = dict(os.environ, FUSE_LIBRARY_NAME="fuse3")
        self._log = open(self.mountpoint.parent / "powerfs.log", "wb")  # noqa: SIM115
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "mempill.lab.durability.powerfs",
                str(self.backing),
                str(self.mountpoint),
                *([user] if user is not None else []),
                f"--model={model}",
                f"--seed={seed}",
                f"--sector={sector}",
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._log,
            env=env,
            text=True,
        )
        self._expect("ready", ready_timeout)
        self.cut_report: dict[str, Any] | None = None

    def _expect(self, word: str, timeout: float) -> None:
        assert self.process.stdout is not None
        readable, _, _ = select.select([self.process.stdout], [], [], timeout)
        line = self.process.stdout.readline().strip() if readable else "<timeout>"
        if line != word:
            self.unmount()
            raise RuntimeError(
                f"powerfs did not mount {self.mountpoint} (said {line!r}); see "
                f"{self.mountpoint.parent / 'powerfs.log'}"
            )

    def _ask(self, command: str) -> dict[str, Any]:
        assert self.process.stdin is not None and self.process.stdout is not None
        self.process.stdin.write(command + "\n")
        self.process.stdin.flush()
        answer: dict[str, Any] = json.loads(self.process.stdout.readline())
        return answer

    def cut(self) -> dict[str, Any]:
        """Power cut: drop every unsynced byte; later operations on the mount fail."""
        self.cut_report = self._ask("cut")
        return self.cut_report

    def stats(self) -> dict[str, Any]:
        return self._ask("stats")

    def fail_fsync(self, nth: int, where: str = "", times: int = 1) -> dict[str, Any]:
        """The `nth` fsync from now of a file whose path contains `where` (any file when
        empty) fails with EIO and loses its dirty data, and the `times - 1` after it."""
        return self._ask(f"fail-fsync {nth} {where or '-'} {times}")

    def unmount(self, timeout: float = 30.0) -> None:
        """Unmount (lazily, in case a killed process still held a file) and end the server."""
        if self.process.poll() is None and self.process.stdin is not None:
            with contextlib.suppress(BrokenPipeError):
                self.process.stdin.close()  # EOF: the server cuts and unmounts itself
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                procs.kill_and_reap([self.process.pid])
        if fusedev.mounted(self.mountpoint):
            subprocess.run(["fusermount3", "-u", "-z", str(self.mountpoint)], check=False)
        self.process.wait()
        if self.process.stdout is not None:
            self.process.stdout.close()
        self._log.close()

    def __enter__(self) -> PowerMount:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.unmount()


FSYNC_ERROR_AFTER = (1, 8)  # the failing fsync: the n-th after the first acknowledgement


def mount_options(kind: str, rng: random.Random) -> dict[str, Any]:
    """The powerfs crash model of a mounted trial kind, seeded by the trial (a torn
    write's sector size is drawn per trial)."""
    sector = rng.choice(SECTORS) if kind == "torn-write" else SECTORS[0]
    return {"model": kind, "seed": rng.randrange(2**31), "sector": sector}


def arm(
    mount: PowerMount,
    config: Configuration,
    writer: Writer,
    rng: random.Random,
    timeout: float = 30.0,
) -> None:
    """The `fsync-error` model: one of the next few fsyncs fails — of the write-ahead log
    (SQLite's `-wal`, PostgreSQL's `pg_wal/`) on a coin flip, else of any file (a
    checkpoint's, say); returns once it has failed, so the trial's cut always comes after
    the failure. A failure that never came is an error of the experiment.

    For the `ack-on-error` control, the model is armed again, on the log, with one more
    failure in a row each time, until a failure reaches an ingest (the writer's failed
    ingest calls) — a failed checkpoint fsync is retried by SQLite, and a group commit
    whose fsync failed reruns each call alone, so one failure never reaches the
    caller there, and a control that acknowledges failed ingests would have nothing to
    acknowledge."""
    if config.kind != "fsync-error":
        return
    control = config.variant == "ack-on-error"
    where = "wal" if control or rng.random() < 0.5 else ""
    failed = 0
    for attempt in range(1, 11):
        times = attempt if control else 1
        mount.fail_fsync(rng.randint(*FSYNC_ERROR_AFTER), where, times)
        failed += times
        deadline = time.monotonic() + timeout
        while mount.stats().get("fsync_errors", 0) < failed:
            if time.monotonic() > deadline:
                raise HarnessError(f"the armed fsync did not come within {timeout:.0f} s")
            time.sleep(0.005)
        if not control:
            return
        deadline = time.monotonic() + 1.0
        while writer.acks.errors == 0 and time.monotonic() < deadline:
            time.sleep(0.005)
        if writer.acks.errors:
            return
    raise HarnessError("ten failed fsyncs reached no ingest call")


def cut_detail(report: dict[str, Any]) -> str:
    """What the cut did (the model's decisions, failed fsyncs), as compact JSON."""
    keys = ("model", "sector", "persisted_ops", "dropped_ops", "garbage_sectors",
            "undone_dirents", "fsync_errors", "fsync_error_lost_bytes")  # fmt: skip
    return json.dumps({k: report[k] for k in keys if report.get(k) is not None}, sort_keys=True)
