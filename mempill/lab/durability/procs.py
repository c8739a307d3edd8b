"""Process control for the durability lab: find, freeze, kill and reap process trees.

PID 1 on these machines reaps orphans lazily, so a SIGKILLed postmaster's children would
linger as zombies and block the restart on `postmaster.pid`. The harness therefore makes
itself a child subreaper and `waitpid`s every process it killed.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import os
import signal
import time
from collections.abc import Iterable

PR_SET_CHILD_SUBREAPER = 36


def become_subreaper() -> None:
    """Orphaned descendants of this process are re-parented to it, not to PID 1."""
    libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
    if libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
        code = ctypes.get_errno()
        raise OSError(code, f"prctl(PR_SET_CHILD_SUBREAPER): {os.strerror(code)}")


def _stat_fields(pid: int) -> list[str] | None:
    """Fields of /proc/PID/stat after the command name (state first), or None if gone."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as handle:
            text = handle.read()
    except (FileNotFoundError, ProcessLookupError):
        return None
    return text[text.rfind(")") + 2 :].split()


def state(pid: int) -> str | None:
    """The process state letter (R, S, D, T, Z, ...), or None when the process is gone."""
    fields = _stat_fields(pid)
    return None if fields is None else fields[0]


def stopped(pid: int) -> bool:
    """Every thread of the process is stopped (T), or the process is gone or a zombie.

    The state of /proc/PID/stat is the main thread's only: a writer's other threads may
    still be running (finishing a file-system request) when its main thread shows T.
    """
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except (FileNotFoundError, ProcessLookupError):
        return True
    for task in tasks:
        try:
            with open(f"/proc/{pid}/task/{task}/stat", encoding="ascii", errors="replace") as f:
                text = f.read()
        except (FileNotFoundError, ProcessLookupError):
            continue  # the thread ended
        if text[text.rfind(")") + 2 :].split()[0] not in ("T", "t", "Z", "X"):
            return False
    return True


def descendants(root: int) -> list[int]:
    """Every live descendant of `root` (not `root` itself), parents before children."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            fields = _stat_fields(int(entry))
            if fields is not None:
                children.setdefault(int(fields[1]), []).append(int(entry))
    found: list[int] = []
    queue = [root]
    while queue:
        kids = children.get(queue.pop(0), [])
        found.extend(kids)
        queue.extend(kids)
    return found


def _signal(pid: int, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signum)


def freeze(pids: Iterable[int], timeout: float = 10.0) -> list[int]:
    """SIGSTOP each process and wait until it is really stopped (every thread in state T)
    or dead.

    A process blocked in a file-system request stops only when the request returns, so
    the caller must keep serving requests (the FUSE server does) while this waits.
    """
    chosen = list(pids)
    for pid in chosen:
        _signal(pid, signal.SIGSTOP)
    deadline = time.monotonic() + timeout
    while True:
        running = [p for p in chosen if not stopped(p)]
        if not running:
            return chosen
        if time.monotonic() > deadline:
            raise TimeoutError(f"processes {running} did not stop within {timeout} s")
        time.sleep(0.002)


def freeze_tree(root: int, timeout: float = 10.0) -> list[int]:
    """Stop `root`, then its descendants until no new ones appear; returns all of them."""
    stopped = freeze([root], timeout)
    while True:
        fresh = [p for p in descendants(root) if p not in stopped]
        if not fresh:
            return stopped
        stopped += freeze(fresh, timeout)


def kill_and_reap(pids: Iterable[int], timeout: float = 30.0) -> None:
    """SIGKILL every process, then wait for each one (as its parent or subreaper)."""
    chosen = list(pids)
    for pid in chosen:
        _signal(pid, signal.SIGKILL)
    deadline = time.monotonic() + timeout
    pending = set(chosen)
    while pending:
        for pid in list(pending):
            try:
                done, _ = os.waitpid(pid, os.WNOHANG)
            except ChildProcessError:  # not (yet) our child: gone, or awaiting re-parenting
                done = pid if state(pid) is None else 0
            if done:
                pending.discard(pid)
        if pending and time.monotonic() > deadline:
            raise TimeoutError(f"processes {sorted(pending)} were not reaped within {timeout} s")
        if pending:
            time.sleep(0.005)
