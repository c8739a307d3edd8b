"""The backing directory of the power-cut file system, reached only through directory fds.

Every path the FUSE layer is handed (`/pgdata/base/5/16384`) is walked one component at a
time from a descriptor of the backing root, each step `openat(..., O_NOFOLLOW)`; the last
component is then used relative to its parent's descriptor without following a symlink.
A symlink (or `..`) planted anywhere in the backing tree therefore cannot lead the file
system's reads, writes, chmods or chowns outside it: the operation fails (ELOOP, ENOTDIR
or EACCES) and nothing outside the backing directory is touched.
"""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Iterator
from contextlib import contextmanager

NOFOLLOW = os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


def _error(code: int, name: str = "") -> OSError:
    return OSError(code, os.strerror(code), name)


def _directory(parent: int, name: str, flags: int = os.O_PATH) -> int:
    """Open directory `name` in `parent` without following it (ELOOP for a symlink; an
    O_PATH descriptor, enough to walk on, unless `flags` asks for more)."""
    try:
        return os.open(name, flags | NOFOLLOW, dir_fd=parent)
    except NotADirectoryError:
        if stat.S_ISLNK(os.stat(name, dir_fd=parent, follow_symlinks=False).st_mode):
            raise _error(errno.ELOOP, name) from None
        raise


class Backing:
    """Path operations on one directory tree that never leave it."""

    def __init__(self, root: str) -> None:
        self.root = os.path.abspath(root)
        self.fd = os.open(self.root, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)

    def close(self) -> None:
        os.close(self.fd)

    @staticmethod
    def parts(path: str) -> list[str]:
        """The components of a mount-relative path; `.` and `..` are refused (EACCES)."""
        parts = [p for p in path.split("/") if p]
        if any(p in (".", "..") for p in parts):
            raise _error(errno.EACCES, path)
        return parts

    @contextmanager
    def parent(self, path: str) -> Iterator[tuple[int, str]]:
        """(descriptor of the parent directory, last component) of `path`; the root is
        (root descriptor, ".")."""
        parts = self.parts(path)
        if not parts:
            yield self.fd, "."
            return
        opened: list[int] = []
        try:
            current = self.fd
            for name in parts[:-1]:
                current = _directory(current, name)
                opened.append(current)
            yield current, parts[-1]
        finally:
            for fd in opened:
                os.close(fd)

    # ---------------------------------------------------------------- files

    def open(self, path: str, flags: int, mode: int = 0o600) -> int:
        """open(2) of a regular file; a symlink as the last component is ELOOP."""
        with self.parent(path) as (parent, name):
            return os.open(name, flags | os.O_NOFOLLOW | os.O_CLOEXEC, mode, dir_fd=parent)

    def lstat(self, path: str) -> os.stat_result:
        with self.parent(path) as (parent, name):
            return os.stat(name, dir_fd=parent, follow_symlinks=False)

    def listdir(self, path: str) -> list[str]:
        with self.parent(path) as (parent, name):
            fd = _directory(parent, name, os.O_RDONLY)
        try:
            return os.listdir(fd)
        finally:
            os.close(fd)

    def readlink(self, path: str) -> str:
        with self.parent(path) as (parent, name):
            return os.readlink(name, dir_fd=parent)

    def statvfs(self) -> os.statvfs_result:
        return os.statvfs(self.fd)

    # ---------------------------------------------------------------- the namespace

    def mkdir(self, path: str, mode: int) -> None:
        with self.parent(path) as (parent, name):
            os.mkdir(name, mode, dir_fd=parent)

    def mknod(self, path: str, mode: int, dev: int) -> None:
        with self.parent(path) as (parent, name):
            os.mknod(name, mode, dev, dir_fd=parent)

    def symlink(self, path: str, target: str) -> None:
        """Create the link `path` -> `target` (the target is stored, never followed here)."""
        with self.parent(path) as (parent, name):
            os.symlink(target, name, dir_fd=parent)

    def rmdir(self, path: str) -> None:
        with self.parent(path) as (parent, name):
            os.rmdir(name, dir_fd=parent)

    def unlink(self, path: str) -> None:
        with self.parent(path) as (parent, name):
            os.unlink(name, dir_fd=parent)

    def rename(self, old: str, new: str) -> None:
        with self.parent(old) as (old_parent, old_name), self.parent(new) as (new_parent, name):
            os.rename(old_name, name, src_dir_fd=old_parent, dst_dir_fd=new_parent)

    # ---------------------------------------------------------------- metadata

    def chmod(self, path: str, mode: int) -> None:
        """chmod without following a symlink (Linux cannot chmod a link: EOPNOTSUPP)."""
        with self.parent(path) as (parent, name):
            try:
                os.chmod(name, mode, dir_fd=parent, follow_symlinks=False)
            except (ValueError, NotImplementedError):  # how CPython reports it for a link
                raise _error(errno.EOPNOTSUPP, path) from None

    def chown(self, path: str, uid: int, gid: int) -> None:
        with self.parent(path) as (parent, name):
            os.chown(name, uid, gid, dir_fd=parent, follow_symlinks=False)

    def utime(self, path: str, times: tuple[int, int] | None) -> None:
        with self.parent(path) as (parent, name):
            if times is None:
                os.utime(name, dir_fd=parent, follow_symlinks=False)
            else:
                os.utime(name, ns=times, dir_fd=parent, follow_symlinks=False)
