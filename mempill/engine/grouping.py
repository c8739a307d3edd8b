"""Group commit's queue: calls made under one key (an agent) from many threads at once are
run in groups by one of their callers, and each waiting caller is woken once.

The first caller to find no leader leads: it takes every call queued at that moment and
runs them (`run`, one transaction and one COMMIT for them all). Then it releases the
waiting callers of its group — their calls are finished — and hands the lead to the first
caller that queued meanwhile, which wakes, takes every call queued by then, and so on. A
caller that finds a leader blocks on a lock of its own, held until the leader finishes its
call or hands it the lead: no broadcast wakes callers only to put them back to sleep, and a
lone caller allocates no lock at all. The `leading` flag never drops while a caller waits,
so no newcomer can become a second leader.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Generic, TypeVar


@dataclass(eq=False)
class Waiter:
    """What a queued call needs: set `finished` (and `error`, through `fail`) when it ran."""

    finished: bool = field(default=False, kw_only=True)
    error: BaseException | None = field(default=None, kw_only=True)
    #: held while the call waits for a leader to run it or to hand it the lead (`leads`)
    wake: threading.Lock | None = field(default=None, kw_only=True)
    leads: bool = field(default=False, kw_only=True)

    def fail(self, error: BaseException) -> None:
        self.error, self.finished = error, True


W = TypeVar("W", bound=Waiter)


@dataclass(eq=False)
class _Queue(Generic[W]):
    waiting: list[W] = field(default_factory=list)
    leading: bool = False
    mutex: threading.Lock = field(default_factory=threading.Lock)


class Groups(Generic[W]):
    """The queues of calls waiting to be run in groups, one per key."""

    def __init__(self) -> None:
        self._queues: dict[str, _Queue[W]] = {}
        self._lock = threading.Lock()

    def _queue(self, key: str) -> _Queue[W]:
        with self._lock:
            queue = self._queues.get(key)
            if queue is None:
                queue = self._queues[key] = _Queue()
            return queue

    def run(self, key: str, call: W, run: Callable[[list[W]], None]) -> None:
        """Return once `call` has run in a group, this caller's or another's.

        `run(calls)` must finish every call it is given (`finished`, or `fail`); if it
        raises, every call of the group it left unfinished fails with that error, every
        waiter of the group is still woken and the lead handed on, and the error
        propagates to this caller.
        """
        queue = self._queue(key)
        with queue.mutex:
            if queue.leading:
                call.wake = threading.Lock()
                call.wake.acquire()
            queue.waiting.append(call)
            queue.leading = True
        if call.wake is not None:  # wait until a leader has run the call or hands the lead
            try:
                call.wake.acquire()
            except BaseException:  # interrupted while waiting (KeyboardInterrupt…)
                self._withdraw(queue, call)
                raise
            if not call.leads:
                return
        calls: list[W] = []
        try:
            with queue.mutex:  # lead: take every call waiting now
                calls, queue.waiting = queue.waiting, []
            run(calls)
        except BaseException as e:
            for other in calls:
                if not other.finished:
                    other.fail(e)
            raise
        finally:
            following = self._hand_over(queue)
            for other in calls:
                if other.wake is not None and other is not call:
                    other.wake.release()
            if following is not None:
                following.release()

    @staticmethod
    def _hand_over(queue: _Queue[W]) -> threading.Lock | None:
        """Give the lead to the first caller waiting, or drop it: the lock that wakes it."""
        with queue.mutex:
            if not queue.waiting:
                queue.leading = False
                return None
            following = queue.waiting[0]
            following.leads = True
            return following.wake  # it found a leader, so it waits on one

    def _withdraw(self, queue: _Queue[W], call: W) -> None:
        """A waiting caller was interrupted: take its call out of the queue if no leader
        took it yet (a leader that did still runs it), and pass the lead on if it had just
        been handed the lead — so no caller is left waiting behind a leader that is gone."""
        with queue.mutex:
            if call in queue.waiting:
                queue.waiting.remove(call)
            if not call.leads:
                return
        following = self._hand_over(queue)
        if following is not None:
            following.release()

    def waiting(self, key: str) -> int:
        """How many calls wait under `key` for the next group (diagnostics)."""
        with self._lock:
            queue = self._queues.get(key)
        if queue is None:
            return 0
        with queue.mutex:
            return len(queue.waiting)
