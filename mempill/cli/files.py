"""Files the command line writes (`export --out`): private, whole, never through a link.

An export holds an agent's memory, so it is created readable by its owner only (0600)
in a folder made 0700 when missing. It is written to a new temporary file beside its
destination (created with O_EXCL and O_NOFOLLOW) and renamed over it once complete: a
reader never sees half a file, an interrupted export leaves the old file as it was, and
a symbolic link planted at the destination is refused rather than followed.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import IO

from mempill.errors import StorageError
from mempill.stores.sqlite.files import make_folder


def write_private(path: str, fill: Callable[[IO[bytes]], object]) -> None:
    """Write `path` as a new 0600 file through `fill`: a temporary file, then a rename."""
    destination = Path(path)
    if destination.is_symlink():
        raise StorageError(
            f"{path!r} is a symbolic link: refusing to write through it (remove it or "
            "choose another --out)"
        )
    if destination.is_dir():
        raise StorageError(f"{path!r} is a directory; give a file name")
    make_folder(destination.parent)  # missing folders 0700, as the SQLite store makes them
    # mkstemp opens with O_CREAT | O_EXCL | O_NOFOLLOW and mode 0600, whatever the umask.
    fd, temporary = tempfile.mkstemp(prefix=".mempill-", suffix=".tmp", dir=destination.parent)
    try:
        with os.fdopen(fd, "wb") as out:
            fill(out)
            out.flush()
            os.fsync(out.fileno())
        os.replace(temporary, destination)  # replaces a file (or a link) at path, never its target
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        raise
