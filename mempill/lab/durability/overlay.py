"""The in-memory overlay of one file on the power-cut file system (`powerfs`).

A `FileState` holds the durable backing file's descriptor plus what was written through
the mount but not yet fsynced: dirty 4 KiB blocks, a logical size, and how much of the
backing file a reader still sees (a pending truncate hides the rest). `sync()` makes it
durable; dropping the object (a cut) loses it, as a power cut loses the page cache.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

BLOCK = 4096


@dataclass(eq=False)
class FileState:
    """One regular file's durable backing fd plus its unsynced overlay.

    `visible` is how much of the backing file a reader still sees (a pending truncate
    hides the rest); `size` is the logical size; `dirty` maps block numbers to contents.
    """

    fd: int
    size: int
    visible: int
    dirty: dict[int, bytearray] = field(default_factory=dict)
    opens: int = 0

    @property
    def clean(self) -> bool:
        return not self.dirty and self.visible == self.size == os.fstat(self.fd).st_size

    def block(self, index: int) -> bytearray:
        """The current contents of one block, made dirty (loaded from backing if needed)."""
        found = self.dirty.get(index)
        if found is None:
            start = index * BLOCK
            keep = max(0, min(BLOCK, self.visible - start))
            found = bytearray(BLOCK)
            if keep:
                found[:keep] = os.pread(self.fd, keep, start).ljust(keep, b"\0")
            self.dirty[index] = found
        return found

    def read(self, size: int, offset: int) -> bytes:
        """What a reader sees: dirty blocks, else the visible backing bytes, else zeros."""
        end = min(offset + size, self.size)
        parts = []
        position = offset
        while position < end:
            index, within = divmod(position, BLOCK)
            take = min(BLOCK - within, end - position)
            dirty = self.dirty.get(index)
            if dirty is not None:
                parts.append(bytes(dirty[within : within + take]))
            else:
                keep = max(0, min(take, self.visible - position))
                data = os.pread(self.fd, keep, position) if keep else b""
                parts.append(data.ljust(take, b"\0"))
            position += take
        return b"".join(parts)

    def write(self, data: bytes, offset: int) -> None:
        """Patch the dirty blocks (whole aligned blocks without reading the backing file)."""
        position, view = offset, memoryview(data)
        while view:
            index, within = divmod(position, BLOCK)
            take = min(BLOCK - within, len(view))
            if within == 0 and take == BLOCK:
                self.dirty[index] = bytearray(view[:BLOCK])
            else:
                self.block(index)[within : within + take] = view[:take]
            position += take
            view = view[take:]
        self.size = max(self.size, offset + len(data))

    def truncate(self, length: int) -> None:
        """Change the logical size; shrinking also hides the backing bytes beyond it."""
        if length < self.size:
            last = (length + BLOCK - 1) // BLOCK
            for index in [i for i in self.dirty if i >= last]:
                del self.dirty[index]
            within = length % BLOCK
            if within and (length // BLOCK) in self.dirty:
                self.dirty[length // BLOCK][within:] = bytes(BLOCK - within)
            self.visible = min(self.visible, length)
        self.size = length

    def sync(self) -> int:
        """Make the overlay durable (write it to the backing file); returns bytes written."""
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
        self.visible = self.size
        return written

    def pending_bytes(self) -> int:
        return len(self.dirty) * BLOCK
