"""Drive the power-loss file system (`mempill.lab.durability.powerfs`) from the harness.

`PowerMount(backing, mountpoint, user)` starts the FUSE server in its own process and
waits until the mount is live; `cut()` discards every unsynced write and freezes the mount;
`unmount()` (also on `with` exit) unmounts it and ends the server. The mount serves one
user, the one whose processes write through it (the harness's own by default; PostgreSQL's
server user in the PostgreSQL trials): no other user, root included, can open it, and the
backing directory is that user's, mode 0700.
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import shutil
import subprocess
import sys
from pathlib import Path
from stat import S_ISUID
from types import TracebackType
from typing import Any

from mempill.lab.durability import fusedev, procs

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
    ) -> None:
        """`user`: the system user whose processes use the mount (default: this one's)."""
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
