"""Group commit's queue (`mempill.engine.grouping`) on its own, with no store: who leads,
who waits, and that no caller is ever left waiting — when a leader fails, or when a
waiting caller is interrupted, even just as the lead is handed to it.

(tests/test_group_commit.py checks what the engine's groups write, on every backend.)
"""

from __future__ import annotations

import contextlib
import signal
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from mempill.engine.grouping import Groups, Waiter


@dataclass(eq=False)
class Call(Waiter):
    name: str = ""


class Stop(BaseException):
    pass


def wait_until(condition: Callable[[], bool]) -> None:
    deadline = time.monotonic() + 10
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.001)


class Recorder:
    """A `run` that records each group, holds the group of `hold` until `release` is set,
    and finishes every call (or raises `fail` for the group of that name)."""

    def __init__(self, hold: str = "", fail: str = "") -> None:
        self.groups: list[list[str]] = []
        self.hold, self.fail = hold, fail
        self.holding = threading.Event()
        self.release = threading.Event()

    def __call__(self, calls: list[Call]) -> None:
        names = [c.name for c in calls]
        self.groups.append(names)
        if self.hold in names:
            self.holding.set()
            assert self.release.wait(10)
        if self.fail in names:
            raise Stop(f"injected in {self.fail}")
        for call in calls:
            call.finished = True


def in_thread(groups: Groups[Call], call: Call, run: Recorder) -> threading.Thread:
    def body() -> None:
        with contextlib.suppress(Stop):  # the failing group's: the test reads call.error
            groups.run("k", call, run)

    thread = threading.Thread(target=body)
    thread.start()
    return thread


@pytest.fixture
def alarm() -> Iterator[Callable[[float, Callable[[], None]], None]]:
    """Call `action` in the main thread's signal handler after `seconds` (then it raises)."""
    previous = signal.getsignal(signal.SIGALRM)

    def arm(seconds: float, action: Callable[[], None]) -> None:
        def handler(signum: int, frame: Any) -> None:
            action()
            raise Stop("interrupted while waiting")

        signal.signal(signal.SIGALRM, handler)
        signal.setitimer(signal.ITIMER_REAL, seconds)

    yield arm
    signal.setitimer(signal.ITIMER_REAL, 0)
    signal.signal(signal.SIGALRM, previous)


def test_the_first_caller_leads_and_the_next_group_is_led_by_the_first_waiter() -> None:
    groups: Groups[Call] = Groups()
    run = Recorder(hold="a")
    first = in_thread(groups, Call(name="a"), run)
    assert run.holding.wait(10)
    others = []
    for number, name in enumerate(("b", "c", "d"), start=1):
        others.append(in_thread(groups, call := Call(name=name), run))
        wait_until(lambda n=number: groups.waiting("k") == n)
        assert call.wake is not None  # it found a leader: it waits on a lock of its own
    run.release.set()
    for thread in (first, *others):
        thread.join(10)
        assert not thread.is_alive()
    assert run.groups == [["a"], ["b", "c", "d"]]
    assert groups.waiting("k") == 0
    alone = Call(name="e")
    groups.run("k", alone, run)
    assert alone.finished and alone.wake is None  # a lone caller allocates no lock


def test_a_failing_leader_fails_its_group_and_hands_the_lead_on() -> None:
    groups: Groups[Call] = Groups()
    run = Recorder(hold="a", fail="b")
    first = in_thread(groups, Call(name="a"), run)
    assert run.holding.wait(10)
    b, c = Call(name="b"), Call(name="c")
    threads = [in_thread(groups, b, run)]
    wait_until(lambda: groups.waiting("k") == 1)
    threads.append(in_thread(groups, c, run))
    wait_until(lambda: groups.waiting("k") == 2)
    run.fail = "b"
    run.release.set()
    for thread in (first, *threads):
        thread.join(10)
        assert not thread.is_alive(), "a caller was left waiting"
    assert run.groups == [["a"], ["b", "c"]]
    assert isinstance(b.error, Stop) and isinstance(c.error, Stop) and c.finished
    late = Call(name="late")
    groups.run("k", late, Recorder())
    assert late.finished and late.error is None


def test_an_interrupted_waiter_leaves_the_queue(alarm: Any) -> None:
    """Interrupted before any leader took its call: the call is withdrawn (never run), and
    the caller behind it is run by the next group."""
    groups: Groups[Call] = Groups()
    run = Recorder(hold="a")
    first = in_thread(groups, Call(name="a"), run)
    assert run.holding.wait(10)
    mine = Call(name="mine")

    def queue_the_next() -> None:  # in the handler: one more caller behind this one
        behind.append(in_thread(groups, Call(name="behind"), run))
        wait_until(lambda: groups.waiting("k") == 2)

    behind: list[threading.Thread] = []
    alarm(0.2, queue_the_next)
    with pytest.raises(Stop):
        groups.run("k", mine, run)  # the main thread waits behind "a" until the alarm
    run.release.set()
    for thread in (first, *behind):
        thread.join(10)
        assert not thread.is_alive(), "a caller was left waiting"
    assert run.groups == [["a"], ["behind"]]
    assert not mine.finished and groups.waiting("k") == 0


def test_a_waiter_interrupted_just_as_it_is_handed_the_lead_passes_it_on(alarm: Any) -> None:
    """The leader hands the lead to the main thread, which is interrupted before it can
    take it: the lead goes to the caller behind, who runs, and nobody is left waiting."""
    groups: Groups[Call] = Groups()
    run = Recorder(hold="a")
    first = in_thread(groups, Call(name="a"), run)
    assert run.holding.wait(10)
    mine = Call(name="mine")
    behind: list[threading.Thread] = []

    def hand_the_lead_over() -> None:  # in the handler: let the leader finish first
        behind.append(in_thread(groups, Call(name="behind"), run))
        wait_until(lambda: groups.waiting("k") == 2)
        run.release.set()
        wait_until(lambda: mine.leads)  # handed over; the handler then raises

    alarm(0.2, hand_the_lead_over)
    with pytest.raises(Stop):
        groups.run("k", mine, run)
    for thread in (first, *behind):
        thread.join(10)
        assert not thread.is_alive(), "a caller was left waiting behind a gone leader"
    assert run.groups == [["a"], ["behind"]]
    assert not mine.finished and groups.waiting("k") == 0
    after = Call(name="after")
    groups.run("k", after, run)
    assert after.finished
