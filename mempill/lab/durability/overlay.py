"""The in-memory overlay of one file on the power-cut file system (`powerfs`).

A `FileState` holds the durable backing file's descriptor plus what was written through
the mount but not yet fsynced: dirty 4 KiB blocks, a logical size, and how much of the
backing file a reader still sees (a pending truncate hides the rest). `sync()` makes it
durable; dropping the object (a cut) loses it, as a power cut loses the page cache.

Beside the blocks it keeps the unsynced *operations* in order (`pending`: each write with
its offset and bytes, each truncate with its length), so a crash model can persist some of
them and drop others (`models`). A failed fsync (`fail_sync`, the `fsync-error` model)
turns the dirty blocks into *ghost* blocks, as Linux marks dirty pages clean after a
writeback error: readers still see them, but no later fsync writes them, and a cut loses
them.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

BLOCK = 4096

#: One unsynced operation: (offset, bytes) for a write, (length, None) for a truncate.
Operation = tuple[int, bytes | None]


@dataclass(eq=False)
class FileState:
    """One regular file's durable backing fd plus its unsynced overlay.

    `visible` is how much of the backing file a reader still sees (a pending truncate
    hides the rest); `size` is the logical size; `dirty` maps block numbers to contents;
    `ghost` holds blocks a failed fsync left cached but never to be written.
    """

    fd: int
    size: int
    visible: int
    dirty: dict[int, bytearray] = field(default_factory=dict)
    ghost: dict[int, bytearray] = field(default_factory=dict)
    pending: list[Operation] = field(default_factory=list)
    opens: int = 0

    @property
    def clean(self) -> bool:
        return (
            not self.dirty
            and not self.ghost
            and self.visible == self.size == os.fstat(self.fd).st_size
        )

    def block(self, index: int) -> bytearray:
        """The current contents of one block, made dirty (loaded from a ghost block or
        the backing file if needed)."""
        found = self.dirty.get(index)
        if found is None:
            found = self.ghost.pop(index, None)
            if found is None:
                start = index * BLOCK
                keep = max(0, min(BLOCK, self.visible - start))
                found = bytearray(BLOCK)
                if keep:
                    found[:keep] = os.pread(self.fd, keep, start).ljust(keep, b"\0")
            self.dirty[index] = found
        return found

    def read(self, size: int, offset: int) -> bytes:
        """What a reader sees: dirty or ghost blocks, else the visible backing bytes,
        else zeros."""
        end = min(offset + size, self.size)
        parts = []
        position = offset
        while position < end:
            index, within = divmod(position, BLOCK)
            take = min(BLOCK - within, end - position)
            cached = self.dirty.get(index)
            if cached is None:
                cached = self.ghost.get(index)
            if cached is not None:
                parts.append(bytes(cached[within : within + take]))
            else:
                keep = max(0, min(take, self.visible - position))
                data = os.pread(self.fd, keep, position) if keep else b""
                parts.append(data.ljust(take, b"\0"))
            position += take
        return b"".join(parts)

    def write(self, data: bytes, offset: int) -> None:
        """Patch the dirty blocks (whole aligned blocks without reading the backing file)."""
        self.pending.append((offset, bytes(data)))
        position, view = offset, memoryview(data)
        while view:
            index, within = divmod(position, BLOCK)
            take = min(BLOCK - within, len(view))
            if within == 0 and take == BLOCK:
                self.dirty[index] = bytearray(view[:BLOCK])
                self.ghost.pop(index, None)
            else:
                self.block(index)[within : within + take] = view[:take]
            position += take
            view = view[take:]
        self.size = max(self.size, offset + len(data))

    def truncate(self, length: int) -> None:
        """Change the logical size; shrinking also hides the backing bytes beyond it."""
        self.pending.append((length, None))
        if length < self.size:
            last = (length + BLOCK - 1) // BLOCK
            within = length % BLOCK
            for blocks in (self.dirty, self.ghost):
                for index in [i for i in blocks if i >= last]:
                    del blocks[index]
                if within and (length // BLOCK) in blocks:
                    blocks[length // BLOCK][within:] = bytes(BLOCK - within)
            self.visible = min(self.visible, length)
        self.size = length

    def sync(self) -> int:
        """Make the overlay durable (write it to the backing file); returns bytes written.
        Ghost blocks are not written: the file keeps its size, with zeros (a hole) there."""
        written = 0
        if os.fstat(self.fd).st_size > self.visible:
            os.ftruncate(self.fd, self.visible)
        for index in sorted(self.dirty):
            start = index * BLOCK
            chunk = bytes(self.dirty[index][: max(0, min(BLOCK, self.size - start))])
            if chunk:
                os.pwrite(self.fd, chunk, start)
                written += len(chunk)
        os.ftruncate(self.fd, self.size)
        self.dirty.clear()
        self.pending.clear()
        self.visible = self.size
        return written

    def fail_sync(self) -> int:
        """A failed fsync: the dirty blocks stay readable but are never written (they become
        ghost blocks) and the unsynced operations are forgotten; returns the bytes lost."""
        lost = len(self.dirty) * BLOCK
        self.ghost.update(self.dirty)
        self.dirty.clear()
        self.pending.clear()
        return lost

    def drop(self) -> None:
        """A cut: every unsynced byte is lost."""
        self.dirty.clear()
        self.ghost.clear()
        self.pending.clear()

    def pending_bytes(self) -> int:
        return (len(self.dirty) + len(self.ghost)) * BLOCK
