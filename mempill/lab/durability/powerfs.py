"""A pass-through FUSE file system that models a power cut: unsynced writes live in memory.

`VolatileFS` mirrors a backing directory. File contents written through the mount stay
in an in-memory overlay (4 KiB blocks plus the unsynced operations in order) until the
file is fsynced or fdatasynced; only then do they reach the backing file. Creates,
renames, unlinks and metadata changes reach the backing directory at once; under the
`lost-dirent` model they stay undoable until their directory is fsynced. A *cut* applies
the mount's crash model (`models`: power-loss, reorder, torn-write, lost-dirent,
fsync-error) to what is pending and makes every later operation fail with EIO: the
backing directory is then exactly the image that crash would have left on disk.

Least privilege: the mount has no `allow_other` (only its user's processes can use it);
run as root, the server mounts for USER and serves as USER (`fusedev`); every backing path
is opened relative to a descriptor of the backing root without following symlinks
(`backing`), so a link planted in the backing tree cannot redirect a write outside it.

Run as `python -m mempill.lab.durability.powerfs BACKING MOUNTPOINT [USER] [--model M
--seed S --sector B]`; it prints `ready` when mounted and reads commands on stdin: `cut`
(answers with a JSON line of what was discarded and what the model did), `stats`, and
`fail-fsync N PART TIMES` (the N-th fsync from now of a file whose path contains PART —
`-`: any file — fails with EIO and loses its dirty data, and the TIMES - 1 after it).
EOF on stdin unmounts. `mempill.lab.durability.mount.PowerMount`
drives it.
"""

from __future__ import annotations

import argparse
import errno
import json
import os
import random
import subprocess
import sys
import threading
from collections.abc import Callable
from typing import Any

from mempill.lab.durability import fusedev
from mempill.lab.durability.backing import Backing
from mempill.lab.durability.models import MODELS, SECTORS, STASH, Namespace, settle
from mempill.lab.durability.overlay import FileState

STATVFS_FIELDS = ("f_bavail", "f_bfree", "f_blocks", "f_bsize", "f_favail", "f_ffree", "f_files",
                  "f_frsize", "f_namemax")  # fmt: skip
STAT_FIELDS = (
    "st_mode", "st_ino", "st_dev", "st_nlink", "st_uid", "st_gid", "st_size",
    "st_atime_ns", "st_mtime_ns", "st_ctime_ns", "st_blocks", "st_blksize",
)  # fmt: skip


def _error(code: int) -> OSError:
    return OSError(code, os.strerror(code))


class VolatileFS:
    """The FUSE operations (mfusepy calls them by name; no `lock` attribute on purpose:
    mfusepy would register it as the FUSE lock operation and break fcntl locks)."""

    use_ns = True

    def __init__(
        self,
        root: str,
        on_mount: Callable[[], None] | None = None,
        *,
        model: str = "power-loss",
        seed: int = 0,
        sector: int = SECTORS[0],
    ) -> None:
        if model not in MODELS or sector not in SECTORS:
            raise ValueError(f"model must be one of {MODELS} and sector one of {SECTORS}")
        self.backing = Backing(os.path.realpath(root))
        self.on_mount = on_mount
        self.model, self.sector, self._rng = model, sector, random.Random(seed)
        self.names = Namespace(self.backing) if model == "lost-dirent" else None
        self._mutex = threading.Lock()
        self._states: dict[str, FileState] = {}
        self._handles: dict[int, FileState] = {}
        self._next_fh = 1
        self.frozen = False
        self._fail_in = 0  # > 0: the fsync that brings it to 0 fails (fsync-error)
        self._fail_where = ""  # only fsyncs of paths containing this count
        self._fail_more = 0  # after the failing fsync, this many more in a row fail
        self.counters = {
            "fsyncs": 0, "dir_fsyncs": 0, "synced_bytes": 0, "writes": 0, "fsync_errors": 0,
            "fsync_error_lost_bytes": 0,
        }  # fmt: skip

    # ---------------------------------------------------------------- plumbing

    def _check(self, path: str | None = None) -> None:
        if self.frozen:
            raise _error(errno.EIO)
        if path is not None and (path == STASH or path.startswith(STASH + "/")):
            raise _error(errno.ENOENT)  # the lost-dirent model's bookkeeping is not there

    def _state(self, path: str, fd: int | None = None) -> FileState:
        """The open state of `path`; `fd`: a descriptor just opened on it (by `create`)."""
        state = self._states.get(path)
        if state is None:
            fd = self.backing.open(path, os.O_RDWR) if fd is None else fd
            size = os.fstat(fd).st_size
            state = self._states[path] = FileState(fd=fd, size=size, visible=size)
        elif fd is not None:
            os.close(fd)
        return state

    def _forget(self, state: FileState) -> None:
        """Close a file nobody has open, unless its overlay must wait for an fsync or a cut."""
        if state.opens:
            return
        keys = [k for k, s in self._states.items() if s is state]
        if keys and not state.clean:
            return
        for key in keys:
            del self._states[key]
        os.close(state.fd)

    @staticmethod
    def _discard(state: FileState | None) -> None:
        """A file that left the namespace: close it unless a handle still uses it."""
        if state is not None and state.opens == 0:
            os.close(state.fd)

    def _exists(self, path: str) -> bool:
        try:
            self.backing.lstat(path)
        except FileNotFoundError:
            return False
        return True

    def _owned(self, path: str) -> None:
        """Give a new entry to the calling process's user (PostgreSQL must open it later)."""
        from mfusepy import fuse_get_context

        uid, gid, _ = fuse_get_context()
        self.backing.chown(path, uid, gid)

    def init(self, path: str) -> None:
        if self.on_mount is not None:
            self.on_mount()

    # ---------------------------------------------------------------- metadata

    def getattr(self, path: str | None, fh: int | None = None) -> dict[str, Any]:
        """The backing file's attributes with the logical (overlay) size."""
        with self._mutex:
            self._check(path)
            state = self._handles.get(fh) if fh is not None else None
            if state is None and path is not None:
                state = self._states.get(path)
            if state is not None and fh is not None:
                result = os.fstat(state.fd)
            elif path is not None:
                result = self.backing.lstat(path)
            else:
                raise _error(errno.ENOENT)
            attrs = {name: getattr(result, name) for name in STAT_FIELDS}
            if state is not None:
                attrs["st_size"] = state.size
            return attrs

    def readdir(self, path: str, fh: int) -> list[str]:
        with self._mutex:
            self._check(path)
            names = self.backing.listdir(path)
            if path == "/":
                names = [n for n in names if "/" + n != STASH]
            return [".", "..", *names]

    def readlink(self, path: str) -> str:
        return self.backing.readlink(path)

    def statfs(self, path: str) -> dict[str, int]:
        found = self.backing.statvfs()
        return {name: getattr(found, name) for name in STATVFS_FIELDS}

    def mkdir(self, path: str, mode: int) -> None:
        with self._mutex:
            self._check()
            self.backing.mkdir(path, mode)
            self._owned(path)
            if self.names is not None:
                self.names.created("mkdir", path)

    def mknod(self, path: str, mode: int, dev: int) -> None:
        with self._mutex:
            self._check()
            self.backing.mknod(path, mode, dev)
            self._owned(path)
            if self.names is not None:
                self.names.created("create", path)

    def symlink(self, target: str, source: str) -> None:
        with self._mutex:
            self._check()
            self.backing.symlink(target, source)
            self._owned(target)
            if self.names is not None:
                self.names.created("create", target)

    def link(self, target: str, source: str) -> None:
        raise _error(errno.EPERM)  # hard links would alias overlays; nothing we test uses them

    def rmdir(self, path: str) -> None:
        with self._mutex:
            self._check(path)
            if self.names is not None:
                self.names.remove("rmdir", path)
            else:
                self.backing.rmdir(path)

    def unlink(self, path: str) -> None:
        with self._mutex:
            self._check(path)
            if self.names is not None:
                self.names.remove("unlink", path)
            else:
                self.backing.unlink(path)
            self._discard(self._states.pop(path, None))

    def rename(self, old: str, new: str) -> None:
        with self._mutex:
            self._check(old)
            self._check(new)
            if self.names is not None:
                self.names.rename(old, new)
            else:
                self.backing.rename(old, new)
            self._discard(self._states.pop(new, None))
            for key in [k for k in self._states if k == old or k.startswith(old + "/")]:
                self._states[new + key[len(old) :]] = self._states.pop(key)

    def chmod(self, path: str, mode: int) -> None:
        with self._mutex:
            self._check()
            self.backing.chmod(path, mode)

    def chown(self, path: str, uid: int, gid: int) -> None:
        with self._mutex:
            self._check()
            self.backing.chown(path, uid, gid)

    def utimens(self, path: str, times: tuple[int, int] | None = None) -> None:
        with self._mutex:
            self._check()
            self.backing.utime(path, times)

    # ---------------------------------------------------------------- file data

    def _open_handle(self, path: str, flags: int) -> int:
        state = self._state(path)
        if flags & os.O_TRUNC:
            state.truncate(0)
        state.opens += 1
        fh = self._next_fh
        self._next_fh += 1
        self._handles[fh] = state
        return fh

    def open(self, path: str, flags: int) -> int:
        with self._mutex:
            self._check()
            return self._open_handle(path, flags)

    def create(self, path: str, mode: int, flags: int = 0) -> int:
        with self._mutex:
            self._check()
            # keep the creating descriptor: a file created 0400 cannot be reopened O_RDWR
            # by a server that is not root
            new = self.names is not None and not self._exists(path)
            fd = self.backing.open(path, os.O_CREAT | os.O_RDWR, mode)
            self._owned(path)
            if new and self.names is not None:
                self.names.created("create", path)
            self._state(path, fd)
            return self._open_handle(path, flags)

    def read(self, path: str | None, size: int, offset: int, fh: int) -> bytes:
        with self._mutex:
            self._check()
            return self._handles[fh].read(size, offset)

    def write(self, path: str | None, data: bytes, offset: int, fh: int) -> int:
        with self._mutex:
            self._check()
            self._handles[fh].write(data, offset)
            self.counters["writes"] += 1
            return len(data)

    def truncate(self, path: str | None, length: int, fh: int | None = None) -> None:
        with self._mutex:
            self._check()
            state = self._handles.get(fh) if fh is not None else None
            if state is None:
                if path is None:
                    raise _error(errno.EBADF)
                state = self._state(path)
            state.truncate(length)
            self._forget(state)

    def fallocate(self, path: str | None, mode: int, offset: int, size: int, fh: int) -> None:
        """Plain preallocation only (extends with zeros, unsynced like a write)."""
        if mode != 0:
            raise _error(errno.EOPNOTSUPP)
        with self._mutex:
            self._check()
            state = self._handles[fh]
            if offset + size > state.size:
                state.truncate(offset + size)

    def fsync(self, path: str | None, datasync: int, fh: int) -> None:
        with self._mutex:
            self._check()
            self.counters["fsyncs"] += 1
            state = self._handles[fh]
            if self._fail_in > 0 and self._fail_where in (path or ""):
                self._fail_in -= 1
                if self._fail_in == 0:  # Linux: EIO once, and the dirty pages marked clean
                    if self._fail_more > 0:
                        self._fail_in, self._fail_more = 1, self._fail_more - 1
                    self.counters["fsync_errors"] += 1
                    self.counters["fsync_error_lost_bytes"] += state.fail_sync()
                    raise _error(errno.EIO)
            self.counters["synced_bytes"] += state.sync()

    def fsyncdir(self, path: str | None, datasync: int, fh: int) -> None:
        with self._mutex:
            self._check()
            self.counters["dir_fsyncs"] += 1
            if self.names is not None and path is not None:
                self.names.synced(path)

    def fail_fsync(self, nth: int, where: str = "", times: int = 1) -> dict[str, Any]:
        """Arm the `fsync-error` model: the `nth` fsync from now of a file whose path
        contains `where` (any file when empty) fails, and the `times - 1` such fsyncs
        after it."""
        with self._mutex:
            self._fail_in, self._fail_where = max(1, nth), where
            self._fail_more = max(0, times - 1)
            return {"armed": self._fail_in, "where": where, "times": times}

    def flush(self, path: str | None, fh: int) -> None:
        self._check()

    def release(self, path: str | None, fh: int) -> None:
        with self._mutex:
            state = self._handles.pop(fh, None)
            if state is not None and not self.frozen:
                state.opens -= 1
                self._forget(state)

    # ---------------------------------------------------------------- the cut

    def cut(self) -> dict[str, Any]:
        """Apply the crash model to what is pending and refuse all later operations."""
        with self._mutex:
            if self.frozen:
                return {"model": self.model, "already_cut": True, **self.counters}
            self.frozen = True
            states = {id(s): s for s in [*self._states.values(), *self._handles.values()]}
            discarded = sum(s.pending_bytes() for s in states.values())
            files = sum(1 for s in states.values() if s.pending or s.ghost or s.dirty)
            tally = settle(states.values(), self.model, self._rng, self.sector)
            if self.names is not None:
                self.names.cut(tally)
            return {
                "model": self.model,
                "sector": self.sector if self.model == "torn-write" else None,
                "discarded_bytes": discarded,
                "files_with_unsynced_data": files,
                **tally.as_dict(),
                **self.counters,
            }

    def stats(self) -> dict[str, int]:
        with self._mutex:
            return dict(self.counters)


def _control(fs: VolatileFS, mountpoint: str) -> None:
    """Serve `cut`, `stats` and `fail-fsync N` commands from stdin; unmount on EOF."""
    for line in sys.stdin:
        command, *rest = line.split() or [""]
        answer: dict[str, Any]
        if command == "cut":
            answer = fs.cut()
        elif command == "stats":
            answer = fs.stats()
        elif command == "fail-fsync" and len(rest) == 3 and rest[0].isdigit() and rest[2].isdigit():
            answer = fs.fail_fsync(int(rest[0]), "" if rest[1] == "-" else rest[1], int(rest[2]))
        else:
            answer = {"error": f"unknown command {line.strip()!r}"}
        print(json.dumps(answer), flush=True)
    fs.cut()
    subprocess.run(["fusermount3", "-u", "-z", mountpoint], check=False)


def serve(
    backing: str,
    mountpoint: str,
    user: str | None = None,
    *,
    model: str = "power-loss",
    seed: int = 0,
    sector: int = SECTORS[0],
) -> None:
    """Mount `backing` at `mountpoint` for `user` (default: this process's user) and serve
    it (foreground, multithreaded) until unmounted; as root, serve as `user`."""
    os.environ.setdefault("FUSE_LIBRARY_NAME", "fuse3")
    from mfusepy import FUSE

    backing, mountpoint = os.path.abspath(backing), os.path.abspath(mountpoint)  # libfuse: cd /

    def mounted() -> None:
        print("ready", flush=True)
        threading.Thread(target=_control, args=(fs, mountpoint), daemon=True).start()

    uid, gid = fusedev.identity(user)
    fs = VolatileFS(backing, on_mount=mounted, model=model, seed=seed, sector=sector)
    target = mountpoint
    if os.geteuid() == 0:
        target = f"/dev/fd/{fusedev.mount(backing, mountpoint, uid, gid)}"
        fusedev.drop_to(uid, gid)
    elif uid != os.geteuid():
        raise SystemExit(f"powerfs: only root can serve a mount for another user ({user})")
    FUSE(fs, target, foreground=True, default_permissions=True)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m mempill.lab.durability.powerfs")
    parser.add_argument("backing")
    parser.add_argument("mountpoint")
    parser.add_argument("user", nargs="?", default=None)
    parser.add_argument("--model", choices=MODELS, default="power-loss")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--sector", type=int, choices=SECTORS, default=SECTORS[0])
    args = parser.parse_args(argv)
    serve(
        args.backing, args.mountpoint, args.user,
        model=args.model, seed=args.seed, sector=args.sector,
    )  # fmt: skip


if __name__ == "__main__":
    main()
