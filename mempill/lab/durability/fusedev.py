"""Mount the power-cut file system for exactly one user, then serve it without root.

Run as root, `powerfs` opens `/dev/fuse` itself (it is root-only on the lab machines),
mounts it with mount(2) for the user whose processes will use the mount (`user_id=`,
`group_id=`, `default_permissions`, no `allow_other`: the kernel lets no other user in,
root included) and drops to that user before it serves a single request; libfuse takes the
open device as `/dev/fd/N`. Run as any other user, libfuse mounts through the setuid
`fusermount3` for that user alone. `mounted` reads the kernel's mount table, because a
`stat` of a mount that belongs to another user fails even for root.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import pwd
import stat
from pathlib import Path

FUSE_DEVICE = "/dev/fuse"
MS_NOSUID, MS_NODEV = 2, 4


def identity(user: str | None) -> tuple[int, int]:
    """(uid, gid) of `user`, or of this process when None."""
    if user is None:
        return os.geteuid(), os.getegid()
    entry = pwd.getpwnam(user)
    return entry.pw_uid, entry.pw_gid


def mount(backing: str, mountpoint: str, uid: int, gid: int) -> int:
    """As root: mount a FUSE file system at `mountpoint` for uid/gid only; returns the
    open `/dev/fuse` descriptor the daemon must serve (as `/dev/fd/N`)."""
    fd = os.open(FUSE_DEVICE, os.O_RDWR)
    os.set_inheritable(fd, True)
    root_type = stat.S_IFMT(os.stat(backing).st_mode)
    options = f"fd={fd},rootmode={root_type:o},user_id={uid},group_id={gid},default_permissions"
    libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
    flags = MS_NOSUID | MS_NODEV
    if libc.mount(b"powerfs", mountpoint.encode(), b"fuse.powerfs", flags, options.encode()):
        code = ctypes.get_errno()
        os.close(fd)
        raise OSError(code, f"mount {mountpoint}: {os.strerror(code)}")
    return fd


def drop_to(uid: int, gid: int) -> None:
    """Become uid/gid for good (no supplementary groups); a no-op for root itself."""
    if uid == 0:
        return
    os.setgroups([])
    os.setgid(gid)
    os.setuid(uid)


def mounted(path: Path | str) -> bool:
    """Whether `path` is a mount point now, from /proc/self/mounts (no stat of it)."""
    target = os.path.abspath(path)
    with open("/proc/self/mounts", encoding="utf-8", errors="replace") as table:
        for line in table:
            fields = line.split()
            if len(fields) > 1 and _unescape(fields[1]) == target:
                return True
    return False


def _unescape(field: str) -> str:
    """Undo the octal escapes (`\\040` for a space) of the mount table."""
    for code in ("\\040", "\\011", "\\012", "\\134"):
        field = field.replace(code, chr(int(code[1:], 8)))
    return field
