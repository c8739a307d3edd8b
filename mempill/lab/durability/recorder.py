"""Record the file operations of a short real workload with strace (`crash-states`).

`record` runs the lab's victim writer (`mempill.lab.durability.writer`) under
`strace -f -y -xx -s 1048576` into an empty root folder (the store, its folder, its
journal and WAL are created during the recording) and `parse` turns the trace into
`images.Op`s on inodes plus the position of every `ack` line the writer wrote (the
`write(1, "ack ...")` calls, interleaved with the file operations). Only paths under the
root count. SQLite's `-shm` file is left out entirely: it is a memory map of the WAL
index (its writes do not go through write(2)), and a recovering SQLite rebuilds it from
the WAL, so its content is no durability concern. An operation on a store file the
parser cannot model exactly (write(2) without an offset, writev, fallocate, a shared
writable mmap, links) stops the experiment rather than being skipped silently.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from mempill.lab.durability.check import Ack
from mempill.lab.durability.harness import HarnessError
from mempill.lab.durability.images import ROOT, Change, Op

MISSING = "strace is missing (apt-get install -y strace)"
STORE = "agents"  # the store's folder under the recording root
STRING_LIMIT = 1 << 20  # -s: longer than any write SQLite makes (a page, a WAL frame)
SYSCALLS = (
    "openat", "?open", "?creat", "close", "write", "pwrite64", "writev", "pwritev",
    "?pwritev2", "ftruncate", "truncate", "fsync", "fdatasync", "sync", "syncfs",
    "sync_file_range", "fallocate", "mkdirat", "?mkdir", "renameat", "?renameat2", "?rename",
    "unlinkat", "?unlink", "?rmdir", "linkat", "?link", "symlinkat", "?symlink", "dup",
    "?dup2", "dup3", "mmap",
)  # fmt: skip
UNSUPPORTED = {"writev", "pwritev", "pwritev2", "fallocate", "sync_file_range"}
LINE = re.compile(r"^(?:(\d+) +)?(\w+)\((.*)\) += (-?\d+|\?)(?:<([^>]*)>)?")
FD = re.compile(r"^(-?\d+|AT_FDCWD)(?:<([^>]*)>)?")
HEX = re.compile(rb"\\x([0-9a-f]{2})")


@dataclass(frozen=True, slots=True)
class Recording:
    """A recorded workload: its operations and (position, ack) pairs, where position is
    the number of operations recorded before the ack line was written."""

    ops: tuple[Op, ...]
    acks: tuple[tuple[int, Ack], ...]
    sync: str
    dirsync: bool
    claims: int
    seconds: float = 0.0

    def acked(self, count: int) -> list[Ack]:
        return [ack for _, ack in self.acks[:count]]


def unavailable() -> str | None:
    """Why no recording can be made here (None: strace is installed)."""
    return None if shutil.which("strace") else MISSING


def unescape(text: str) -> bytes:
    """The bytes of strace's `-xx` text (every byte as \\xNN; anything else as is)."""
    return HEX.sub(lambda m: bytes([int(m.group(1), 16)]), text.encode("latin-1"))


def _string(arg: str) -> bytes:
    if arg.endswith("..."):
        raise HarnessError("strace cut a string short (raise its -s)")
    if not (arg.startswith('"') and arg.endswith('"')):
        raise HarnessError(f"expected a string argument, got {arg[:40]!r}")
    return unescape(arg[1:-1])


class Parser:
    """Turns trace lines into operations, following names, inodes and descriptors."""

    def __init__(self, root: str) -> None:
        self.root = root
        self.names: dict[str, int] = {"": ROOT}  # relative path -> inode (as the process sees)
        self.dirs = {ROOT}
        self.fds: dict[int, int] = {}
        self.ignored: set[int] = set()  # descriptors of -shm files
        self.ops: list[Op] = []
        self.acks: list[tuple[int, Ack]] = []
        self._next = ROOT + 1
        self._unfinished: dict[str, str] = {}

    def relative(self, path: bytes, base: str | None = None) -> str | None:
        """`path` relative to the root, or None outside it."""
        text = os.fsdecode(path)
        if not os.path.isabs(text):
            if base is None:
                raise HarnessError(f"a relative path without its folder: {text!r}")
            text = os.path.join(base, text)
        text = os.path.normpath(text)
        if text == self.root:
            return ""
        return text[len(self.root) + 1 :] if text.startswith(self.root + "/") else None

    def at(self, dirfd: str, path: str) -> str | None:
        match = FD.match(dirfd)
        base = os.fsdecode(unescape(match.group(2))) if match and match.group(2) else None
        return self.relative(_string(path), base)

    def feed(self, line: str) -> None:
        line = line.rstrip("\n")
        pid = line.split(" ", 1)[0]
        if line.endswith(" <unfinished ...>"):
            self._unfinished[pid] = line[: -len(" <unfinished ...>")]
            return
        resumed = re.match(r"^(\d+) +<\.\.\. \w+ resumed>(.*)$", line)
        if resumed:
            line = self._unfinished.pop(resumed.group(1), "") + resumed.group(2)
        match = LINE.match(line)
        if match is None or match.group(4) == "?" or int(match.group(4)) < 0:
            return  # signals, exits, failed calls
        name, args, result = match.group(2), match.group(3).split(", "), int(match.group(4))
        handler = getattr(self, f"on_{name}", None)
        if handler is not None:
            handler(args, result)
        elif name in UNSUPPORTED and self._tracked(args[0]) is not None:
            raise HarnessError(f"{name} on a store file cannot be modelled")

    # ---------------------------------------------------------------- descriptors

    def _tracked(self, arg: str) -> int | None:
        """The inode behind a descriptor argument (None: not a store file, or -shm)."""
        match = FD.match(arg)
        if match is None or match.group(1) == "AT_FDCWD":
            return None
        fd = int(match.group(1))
        if fd in self.fds:
            return self.fds[fd]
        path = unescape(match.group(2) or "")
        rel = self.relative(path) if path.startswith(b"/") else None
        if fd in self.ignored or rel is None or rel.endswith("-shm"):
            return None
        raise HarnessError(f"descriptor {fd} on {rel!r} was opened out of sight")

    def _new(self, kind: str, rel: str) -> None:
        parent, _, name = rel.rpartition("/")
        if parent not in self.names:
            raise HarnessError(f"{rel!r} created in a folder never seen")
        inode, self._next = self._next, self._next + 1
        if kind == "mkdir":
            self.dirs.add(inode)
        self.names[rel] = inode
        self.ops.append(Op(kind, inode, rel, changes=((self.names[parent], name, inode),)))

    def _open(self, rel: str | None, flags: str, fd: int) -> None:
        if rel is None:
            return
        if rel.endswith("-shm"):
            self.ignored.add(fd)
            return
        if rel not in self.names:
            if "O_CREAT" not in flags:
                raise HarnessError(f"{rel!r} opened but never created during the recording")
            self._new("create", rel)
        elif "O_TRUNC" in flags and self.names[rel] not in self.dirs:
            self.ops.append(Op("truncate", self.names[rel], rel, size=0))
        self.fds[fd] = self.names[rel]

    def on_openat(self, args: list[str], result: int) -> None:
        self._open(self.at(args[0], args[1]), args[2], result)

    def on_open(self, args: list[str], result: int) -> None:
        self._open(self.relative(_string(args[0])), args[1], result)

    def on_creat(self, args: list[str], result: int) -> None:
        self._open(self.relative(_string(args[0])), "O_CREAT|O_TRUNC", result)

    def on_close(self, args: list[str], result: int) -> None:
        match = FD.match(args[0])
        if match and match.group(1) != "AT_FDCWD":
            self.fds.pop(int(match.group(1)), None)
            self.ignored.discard(int(match.group(1)))

    def on_dup(self, args: list[str], result: int) -> None:
        inode = self._tracked(args[0])
        if inode is not None:
            self.fds[result] = inode
        else:
            self.fds.pop(result, None)

    on_dup2 = on_dup3 = on_dup

    def on_mmap(self, args: list[str], result: int) -> None:
        shared_write = "MAP_SHARED" in args[3] and "PROT_WRITE" in args[2]
        if shared_write and self._tracked(args[4]) is not None:
            raise HarnessError("a shared writable mmap of a store file cannot be modelled")

    # ---------------------------------------------------------------- data

    def _path_of(self, inode: int) -> str:
        return next((p for p, i in self.names.items() if i == inode), f"inode {inode}")

    def on_pwrite64(self, args: list[str], result: int) -> None:
        inode = self._tracked(args[0])
        if inode is not None:
            data = _string(args[1])[:result]
            self.ops.append(Op("write", inode, self._path_of(inode), int(args[3]), data))

    def on_write(self, args: list[str], result: int) -> None:
        if FD.match(args[0]) and args[0].split("<")[0] == "1":
            for line in _string(args[1])[:result].decode("ascii", "replace").splitlines():
                parts = line.split()
                if len(parts) == 3 and parts[0] == "ack":
                    self.acks.append((len(self.ops), (parts[1], int(parts[2]))))
        elif self._tracked(args[0]) is not None:
            raise HarnessError("write(2) on a store file (no offset) cannot be modelled")

    def on_ftruncate(self, args: list[str], result: int) -> None:
        inode = self._tracked(args[0])
        if inode is not None:
            self.ops.append(Op("truncate", inode, self._path_of(inode), size=int(args[1])))

    def on_truncate(self, args: list[str], result: int) -> None:
        rel = self.relative(_string(args[0]))
        if rel is not None and not rel.endswith("-shm"):
            self.ops.append(Op("truncate", self.names[rel], rel, size=int(args[1])))

    def on_fsync(self, args: list[str], result: int) -> None:
        inode = self._tracked(args[0])
        if inode is not None:
            kind = "dirsync" if inode in self.dirs else "fsync"
            self.ops.append(Op(kind, inode, self._path_of(inode) or "."))

    on_fdatasync = on_fsync

    def on_sync(self, args: list[str], result: int) -> None:
        self.ops.append(Op("syncfs", ROOT, "."))

    on_syncfs = on_sync

    # ---------------------------------------------------------------- entries

    def on_mkdirat(self, args: list[str], result: int) -> None:
        rel = self.at(args[0], args[1])
        if rel is not None:
            self._new("mkdir", rel)

    def on_mkdir(self, args: list[str], result: int) -> None:
        self.on_mkdirat(["AT_FDCWD", *args], result)

    def _remove(self, rel: str | None, kind: str) -> None:
        if rel is None or rel.endswith("-shm"):
            return
        parent, _, name = rel.rpartition("/")
        inode = self.names.pop(rel)
        self.ops.append(Op(kind, inode, rel, changes=((self.names[parent], name, None),)))

    def on_unlinkat(self, args: list[str], result: int) -> None:
        kind = "rmdir" if "AT_REMOVEDIR" in args[2] else "unlink"
        self._remove(self.at(args[0], args[1]), kind)

    def on_unlink(self, args: list[str], result: int) -> None:
        self._remove(self.relative(_string(args[0])), "unlink")

    def on_rmdir(self, args: list[str], result: int) -> None:
        self._remove(self.relative(_string(args[0])), "rmdir")

    def _rename(self, old: str | None, new: str | None) -> None:
        if old is None and new is None:
            return
        if old is None or new is None or old.endswith("-shm") or new.endswith("-shm"):
            raise HarnessError(f"a rename across the root or of -shm: {old!r} -> {new!r}")
        inode = self.names[old]
        for path in [p for p in self.names if p == old or p.startswith(old + "/")]:
            self.names[new + path[len(old) :]] = self.names.pop(path)
        (old_parent, _, old_name), (new_parent, _, new_name) = (
            old.rpartition("/"),
            new.rpartition("/"),
        )
        changes: tuple[Change, ...] = (
            (self.names[old_parent], old_name, None),
            (self.names[new_parent], new_name, inode),
        )
        self.ops.append(Op("rename", inode, f"{old} -> {new}", changes=changes))

    def on_renameat(self, args: list[str], result: int) -> None:
        if len(args) > 4 and "RENAME_EXCHANGE" in args[4]:
            raise HarnessError("RENAME_EXCHANGE cannot be modelled")
        self._rename(self.at(args[0], args[1]), self.at(args[2], args[3]))

    on_renameat2 = on_renameat

    def on_rename(self, args: list[str], result: int) -> None:
        self._rename(self.relative(_string(args[0])), self.relative(_string(args[1])))

    def _link(self, path: str | None) -> None:
        if path is not None:
            raise HarnessError(f"a link in the store ({path!r}) cannot be modelled")

    def on_linkat(self, args: list[str], result: int) -> None:
        self._link(self.at(args[2], args[3]))

    def on_link(self, args: list[str], result: int) -> None:
        self._link(self.relative(_string(args[1])))

    def on_symlinkat(self, args: list[str], result: int) -> None:
        self._link(self.at(args[1], args[2]))

    def on_symlink(self, args: list[str], result: int) -> None:
        self._link(self.relative(_string(args[1])))


def parse(lines: list[str], root: str) -> tuple[list[Op], list[tuple[int, Ack]]]:
    """The operations under `root` (an absolute, resolved path) and the ack positions."""
    parser = Parser(os.path.normpath(root))
    for line in lines:
        parser.feed(line)
    return parser.ops, parser.acks


def record(workdir: Path, sync: str, claims: int, seed: int, *, dirsync: bool = True) -> Recording:
    """Run the writer under strace into `workdir/root/agents` and parse what it did."""
    strace = shutil.which("strace")
    if strace is None:
        raise HarnessError(MISSING)
    root = Path(os.path.realpath(workdir)) / "root"
    root.mkdir(mode=0o700)
    trace = workdir / "trace.txt"
    writer = [
        sys.executable, "-m", "mempill.lab.durability.writer", "--backend", "sqlite",
        "--target", str(root / STORE), "--sync", sync, "--seed", str(seed),
        "--limit", str(claims), *(() if dirsync else ("--no-dirsync",)),
    ]  # fmt: skip
    command = [
        strace, "-f", "-qq", "-y", "-xx", "-s", str(STRING_LIMIT), "-e", "signal=none",
        "-e", "trace=" + ",".join(SYSCALLS), "-o", str(trace), *writer,
    ]  # fmt: skip
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, timeout=600, check=False, cwd=workdir)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        tail = done.stderr.decode(errors="replace")[-2000:]
        raise HarnessError(f"the writer under strace exited {done.returncode}:\n{tail}")
    with open(trace, encoding="latin-1") as handle:
        ops, acks = parse(handle.readlines(), str(root))
    lines = done.stdout.decode(errors="replace").splitlines()
    printed = [line.split()[1:3] for line in lines if line.startswith("ack ")]
    if printed != [[ref, str(seq)] for _, (ref, seq) in acks] or len(acks) != claims:
        raise HarnessError(
            f"the trace holds {len(acks)} acks, the writer printed {len(printed)}; "
            f"expected {claims}"
        )
    return Recording(tuple(ops), tuple(acks), sync, dirsync, claims, round(seconds, 3))
