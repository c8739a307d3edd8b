"""The crash models of the power-cut file system: what of the unsynced state a cut keeps.

Every model starts from the durable image (what fsync made durable) and decides the fate
of what was still pending when the power went; all are seeded and reproducible:

* `power-loss` — every unsynced write is lost; creates, renames and unlinks are durable
  at once (the lab's first model).
* `reorder` — each unsynced write (and truncate) of each file is independently persisted
  or dropped: a later write can survive an earlier one (LazyFS's torn sequences).
* `torn-write` — each unsynced write is cut at sector boundaries (512 B or 4 KiB, by file
  offset); each sector is persisted, dropped, or filled with garbage (SQLite's crash VFS).
* `lost-dirent` — data as in `power-loss`, but a create, mkdir, rename, unlink or rmdir is
  durable only once its directory (both, for a rename) is fsynced after it; the others are
  undone at the cut, newest first (a folder that is not durable takes its contents along).
* `fsync-error` — data as in `power-loss`; before the cut one fsync fails with EIO and, as
  on Linux, its dirty pages are marked clean: readers still see them, no later fsync writes
  them, the cut loses them (`FileState.fail_sync`).
"""

from __future__ import annotations

import os
import posixpath
import random
import shutil
import stat
from collections.abc import Iterable
from dataclasses import dataclass, field

from mempill.lab.durability.backing import Backing
from mempill.lab.durability.overlay import FileState

MODELS = ("power-loss", "reorder", "torn-write", "lost-dirent", "fsync-error")
SECTORS = (512, 4096)
STASH = "/.powerfs-stash"  # where removed entries wait until their removal is durable


def _persist(fd: int, offset: int, data: bytes | None) -> None:
    if data is None:
        os.ftruncate(fd, offset)
    else:
        os.pwrite(fd, data, offset)


@dataclass
class Tally:
    """What a cut did with the pending state (reported as the cut's JSON answer)."""

    persisted: int = 0
    dropped: int = 0
    garbage: int = 0
    undone: int = 0

    def as_dict(self) -> dict[str, int]:
        return {
            "persisted_ops": self.persisted,
            "dropped_ops": self.dropped,
            "garbage_sectors": self.garbage,
            "undone_dirents": self.undone,
        }


def reorder(state: FileState, rng: random.Random, tally: Tally) -> None:
    """Persist each pending operation of one file with probability 1/2, in order."""
    for offset, data in state.pending:
        if rng.random() < 0.5:
            _persist(state.fd, offset, data)
            tally.persisted += 1
        else:
            tally.dropped += 1


def sectors(offset: int, length: int, sector: int) -> list[tuple[int, int]]:
    """(start, end) pieces of a write at `offset` of `length` bytes, cut at multiples of
    `sector` (file offsets)."""
    pieces = []
    start, end = offset, offset + length
    while start < end:
        stop = min(end, (start // sector + 1) * sector)
        pieces.append((start, stop))
        start = stop
    return pieces


def torn(state: FileState, rng: random.Random, sector: int, tally: Tally) -> None:
    """Each pending write's sectors persisted, dropped or filled with garbage (1/3 each);
    a pending truncate persisted with probability 1/2."""
    for offset, data in state.pending:
        if data is None:
            if rng.random() < 0.5:
                _persist(state.fd, offset, None)
                tally.persisted += 1
            else:
                tally.dropped += 1
            continue
        for start, stop in sectors(offset, len(data), sector):
            fate = rng.randrange(3)
            if fate == 0:
                os.pwrite(state.fd, data[start - offset : stop - offset], start)
                tally.persisted += 1
            elif fate == 1:
                tally.dropped += 1
            else:
                os.pwrite(state.fd, rng.randbytes(stop - start), start)
                tally.garbage += 1


def settle(states: Iterable[FileState], model: str, rng: random.Random, sector: int) -> Tally:
    """Write to the backing files what the model keeps of each file's pending operations;
    then every overlay is dropped (the page cache is gone)."""
    tally = Tally()
    for state in states:
        if model == "reorder":
            reorder(state, rng, tally)
        elif model == "torn-write":
            torn(state, rng, sector, tally)
        else:
            tally.dropped += len(state.pending)
        state.drop()
    return tally


@dataclass
class Dirent:
    """One namespace operation the `lost-dirent` model keeps undoable until it is durable:
    `waiting` holds the directories whose fsync it still needs."""

    kind: str  # create | mkdir | unlink | rmdir | rename
    path: str
    new: str | None = None  # rename: the new name
    stash: str | None = None  # unlink / rename over an entry: where the old entry waits
    waiting: set[str] = field(default_factory=set)


class Namespace:
    """The undo log of the `lost-dirent` model over one backing directory."""

    def __init__(self, backing: Backing) -> None:
        self.backing = backing
        self.log: list[Dirent] = []
        self._stashed = 0

    def _stash_name(self) -> str:
        if self._stashed == 0:
            self.backing.mkdir(STASH, 0o700)
        self._stashed += 1
        return f"{STASH}/{self._stashed}"

    def created(self, kind: str, path: str) -> None:
        """A create, mknod, symlink (kind "create") or mkdir that just happened."""
        self.log.append(Dirent(kind, path, waiting={posixpath.dirname(path)}))

    def remove(self, kind: str, path: str) -> None:
        """Unlink (a file) or rmdir (an empty folder) `path`, keeping it until durable."""
        if kind == "rmdir":
            self.backing.rmdir(path)
            stash = None
        else:
            stash = self._stash_name()
            self.backing.rename(path, stash)
        self.log.append(Dirent(kind, path, stash=stash, waiting={posixpath.dirname(path)}))

    def rename(self, old: str, new: str) -> None:
        """Rename `old` to `new`; an entry it replaces is kept until the rename is durable."""
        stash = None
        try:
            self.backing.lstat(new)
        except FileNotFoundError:
            pass
        else:
            if not self._is_dir(new):
                stash = self._stash_name()
                self.backing.rename(new, stash)
        self.backing.rename(old, new)
        waiting = {posixpath.dirname(old), posixpath.dirname(new)}
        self.log.append(Dirent("rename", old, new=new, stash=stash, waiting=waiting))

    def _is_dir(self, path: str) -> bool:
        return stat.S_ISDIR(self.backing.lstat(path).st_mode)

    def synced(self, directory: str) -> None:
        """An fsync of `directory` made the operations on its entries durable."""
        for op in self.log:
            op.waiting.discard(directory)

    def _undo(self, op: Dirent) -> None:
        backing = self.backing
        if op.kind == "create":
            backing.unlink(op.path)
        elif op.kind == "mkdir":
            with backing.parent(op.path) as (fd, name):
                shutil.rmtree(name, dir_fd=fd)
        elif op.kind == "rmdir":
            backing.mkdir(op.path, 0o700)
        elif op.kind == "unlink":
            assert op.stash is not None
            backing.rename(op.stash, op.path)
        else:
            assert op.new is not None
            backing.rename(op.new, op.path)
            if op.stash is not None:
                backing.rename(op.stash, op.new)

    def cut(self, tally: Tally) -> None:
        """Undo, newest first, every operation not yet durable (an entry a later operation
        already moved away is skipped); then forget the kept entries."""
        for op in reversed(self.log):
            if not op.waiting:
                continue
            try:
                self._undo(op)
                tally.undone += 1
            except (FileNotFoundError, FileExistsError, NotADirectoryError, IsADirectoryError):
                continue
        self.log.clear()
        if self._stashed:
            with self.backing.parent(STASH) as (fd, name):
                shutil.rmtree(name, dir_fd=fd)
