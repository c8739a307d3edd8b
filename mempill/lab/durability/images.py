"""Crash images of a recorded workload under a persistence model (`crash-states`).

A recording is a list of `Op`s on inodes (the root folder is inode 0): data operations
(`write`, `truncate`), barriers (`fsync` of a file, `dirsync` of a folder, `syncfs` of
everything) and directory-entry operations (`create`, `mkdir`, `rename`, `unlink`,
`rmdir`), each entry operation carrying its `changes`: (folder inode, name, inode or None
for a removed entry). `Replay` follows the operations under one model (the models are
defined in `mempill.lab.durability.states` and docs/crash-states.md) and yields the
`CrashPoint`s worth checking: the durable state at that point plus the pending `Unit`s,
each of which a crash may persist (1), drop (0) or, for torn writes, fill with garbage (2).
`image` turns a point and one choice per unit into the files and folders a recovery sees.
"""

from __future__ import annotations

import hashlib
import math
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from mempill.lab.durability.models import sectors

ROOT = 0  # the inode of the recording's root folder, present (and empty) before it starts
MODELS = ("reorder", "torn-write", "lost-dirent")
DATA = frozenset({"write", "truncate"})
ENTRY = frozenset({"create", "mkdir", "rename", "unlink", "rmdir"})
KINDS = DATA | ENTRY | {"fsync", "dirsync", "syncfs"}
DROP, PERSIST, GARBAGE = 0, 1, 2

Change = tuple[int, str, int | None]  # (folder inode, name, inode; None: entry removed)
Vector = tuple[int, ...]  # one choice per unit of a crash point
Image = dict[str, bytes | None]  # relative path -> file content (None: a folder)


@dataclass(frozen=True, slots=True)
class Op:
    """One recorded file-system operation (`path` only describes it)."""

    kind: str
    inode: int
    path: str
    offset: int = 0
    data: bytes = b""
    size: int = 0
    changes: tuple[Change, ...] = ()

    def describe(self) -> str:
        if self.kind == "write":
            return f"write {len(self.data)} bytes at {self.offset} to {self.path}"
        if self.kind == "truncate":
            return f"truncate {self.path} to {self.size}"
        return f"{self.kind} {self.path}"


@dataclass(frozen=True, slots=True)
class Unit:
    """A pending piece a crash decides on: a data operation (reorder), a sector-aligned
    chunk [start, end) of a write's data (torn-write), or an entry operation's changes in
    one folder (lost-dirent)."""

    op: int  # index into the operations
    arity: int  # 2: drop or persist; 3: drop, persist or garbage
    start: int = 0
    end: int = 0
    folder: int = -1  # lost-dirent: the folder whose entries this unit changes


@dataclass(frozen=True, slots=True)
class CrashPoint:
    """The crash just before operation `index` (0-based; `index == len(ops)`: after the
    last): the durable files and entries, the pending units and the acks written so far."""

    index: int
    acked: int
    files: dict[int, bytes]
    entries: dict[tuple[int, str], int]
    units: tuple[Unit, ...]

    @property
    def size(self) -> int:
        """How many crash states this point has (every combination of its units)."""
        return math.prod(u.arity for u in self.units)


def pending_only(op: Op, model: str) -> bool:
    """True when `op` makes nothing durable under `model` (it only adds pending units, or
    it syncs a folder whose entries are durable anyway): every crash state just before it
    is also a crash state just after it."""
    if model == "lost-dirent":
        return op.kind in DATA or op.kind in ENTRY
    return op.kind in DATA or op.kind == "dirsync"


def _splice(buf: bytearray, offset: int, data: bytes) -> None:
    if offset > len(buf):
        buf.extend(bytes(offset - len(buf)))
    buf[offset : offset + len(data)] = data


def _resize(buf: bytearray, size: int) -> None:
    if size < len(buf):
        del buf[size:]
    else:
        buf.extend(bytes(size - len(buf)))


def _apply_data(buf: bytearray, op: Op) -> None:
    if op.kind == "write":
        _splice(buf, op.offset, op.data)
    else:
        _resize(buf, op.size)


def _apply_changes(entries: dict[tuple[int, str], int], op: Op, folder: int | None) -> None:
    """Apply an entry operation's changes (only those in `folder`, unless None)."""
    for parent, name, inode in op.changes:
        if folder is not None and parent != folder:
            continue
        if inode is None:
            entries.pop((parent, name), None)
        else:
            entries[(parent, name)] = inode


def _walk(entries: dict[tuple[int, str], int], dirs: set[int]) -> list[tuple[str, int]]:
    """(relative path, inode) of everything reachable from the root, parents first."""
    children: dict[int, list[tuple[str, int]]] = {}
    for (parent, name), inode in entries.items():
        children.setdefault(parent, []).append((name, inode))
    found: list[tuple[str, int]] = []
    stack = [("", ROOT)]
    while stack:
        prefix, folder = stack.pop()
        for name, inode in sorted(children.get(folder, ())):
            path = f"{prefix}{name}"
            found.append((path, inode))
            if inode in dirs:
                stack.append((f"{path}/", inode))
    return sorted(found)


class Replay:
    """The operations of one recording followed under one model."""

    def __init__(self, ops: Sequence[Op], model: str, sector: int = 512) -> None:
        if model not in MODELS:
            raise ValueError(f"unknown model {model!r}")
        self.ops = list(ops)
        self.model = model
        self.sector = sector
        self.dirs = {ROOT} | {op.inode for op in ops if op.kind == "mkdir"}

    def points(self, ack_positions: Sequence[int]) -> list[CrashPoint]:
        """The maximal crash points: just before each operation that makes something
        durable (or, outside lost-dirent, changes an entry), where acks were written since
        the previous operation, and after the last operation. A crash just before a
        pending-only operation has the same states as just after it, with no more acks."""
        acks = sorted(ack_positions)
        files: dict[int, bytes] = {}
        entries: dict[tuple[int, str], int] = {}
        pending: dict[int, list[int]] = {}  # file inode -> pending data ops
        pending_dirs: dict[int, list[int]] = {}  # folder inode -> pending entry ops
        found: list[CrashPoint] = []
        count = 0
        for index in range(len(self.ops) + 1):
            while count < len(acks) and acks[count] <= index:
                count += 1
            at_ack = count and acks[count - 1] == index
            last = index == len(self.ops)
            if last or at_ack or not pending_only(self.ops[index], self.model):
                found.append(self._point(index, count, files, entries, pending, pending_dirs))
            if not last:
                self._apply(index, files, entries, pending, pending_dirs)
        return found

    def _apply(
        self,
        index: int,
        files: dict[int, bytes],
        entries: dict[tuple[int, str], int],
        pending: dict[int, list[int]],
        pending_dirs: dict[int, list[int]],
    ) -> None:
        op = self.ops[index]
        if op.kind in DATA:
            pending.setdefault(op.inode, []).append(index)
        elif op.kind in ENTRY:
            if op.kind in ("create", "mkdir"):
                files.setdefault(op.inode, b"")
            if self.model == "lost-dirent":
                for folder in dict.fromkeys(parent for parent, _, _ in op.changes):
                    pending_dirs.setdefault(folder, []).append(index)
            else:
                _apply_changes(entries, op, None)
        elif op.kind == "fsync":
            self._flush(op.inode, files, pending)
        elif op.kind == "dirsync":
            for i in pending_dirs.pop(op.inode, []):
                _apply_changes(entries, self.ops[i], op.inode)
        elif op.kind == "syncfs":
            for inode in list(pending):
                self._flush(inode, files, pending)
            for folder, indices in sorted(pending_dirs.items()):
                for i in indices:
                    _apply_changes(entries, self.ops[i], folder)
            pending_dirs.clear()
        else:
            raise ValueError(f"unknown operation {op.kind!r}")

    def _flush(self, inode: int, files: dict[int, bytes], pending: dict[int, list[int]]) -> None:
        buf = bytearray(files.get(inode, b""))
        for i in pending.pop(inode, []):
            _apply_data(buf, self.ops[i])
        files[inode] = bytes(buf)

    def _point(
        self,
        index: int,
        acked: int,
        files: dict[int, bytes],
        entries: dict[tuple[int, str], int],
        pending: dict[int, list[int]],
        pending_dirs: dict[int, list[int]],
    ) -> CrashPoint:
        units: list[Unit] = []
        if self.model == "lost-dirent":  # pending data is always lost; entries vary
            for folder, indices in pending_dirs.items():
                units.extend(Unit(i, 2, folder=folder) for i in indices)
        else:  # entries are durable; pending data of reachable files varies
            for _, inode in _walk(entries, self.dirs):
                for i in pending.get(inode, ()):
                    units.extend(self._data_units(i))
        units.sort(key=lambda u: (u.op, u.start, u.folder))
        return CrashPoint(index, acked, dict(files), dict(entries), tuple(units))

    def _data_units(self, index: int) -> list[Unit]:
        op = self.ops[index]
        if self.model == "reorder" or op.kind == "truncate":
            return [Unit(index, 2, 0, len(op.data))]
        pieces = sectors(op.offset, len(op.data), self.sector)
        return [Unit(index, 3, a - op.offset, b - op.offset) for a, b in pieces]

    def image(self, point: CrashPoint, vector: Vector, garbage: Callable[[int], bytes]) -> Image:
        """The files and folders a recovery sees after crashing at `point` with one choice
        per unit; `garbage(n)` gives the n bytes a torn sector holds."""
        if len(vector) != len(point.units):
            raise ValueError("one choice per unit")
        files = {inode: bytearray(data) for inode, data in point.files.items()}
        entries = dict(point.entries)
        for unit, choice in zip(point.units, vector, strict=True):
            if choice == DROP:
                continue
            op = self.ops[unit.op]
            if op.kind in ENTRY:
                _apply_changes(entries, op, unit.folder)
                continue
            buf = files.setdefault(op.inode, bytearray())
            if op.kind == "truncate":
                _resize(buf, op.size)
                continue
            data = op.data[unit.start : unit.end]
            _splice(buf, op.offset + unit.start, garbage(len(data)) if choice == GARBAGE else data)
        return {
            path: None if inode in self.dirs else bytes(files.get(inode, b""))
            for path, inode in _walk(entries, self.dirs)
        }


def digest(image: Image) -> str:
    """A fingerprint of an image: equal images recover alike."""
    h = hashlib.sha256()
    for path, data in sorted(image.items()):
        h.update(path.encode("utf-8", "surrogateescape") + b"\0")
        h.update(b"d" if data is None else b"f%d:" % len(data) + data)
    return h.hexdigest()


def write_image(image: Image, root: Path) -> None:
    """Materialize an image under `root` (folders 0700, files 0600, as the store makes)."""
    for path, data in sorted(image.items()):
        target = root / path
        if data is None:
            target.mkdir(mode=0o700, exist_ok=True)
            continue
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with open(fd, "wb") as handle:
            handle.write(data)
