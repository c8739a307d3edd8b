"""Group commit: ingest calls of one agent from several threads share one transaction.

A gate inside the store's write transaction holds the first call until the others are
queued behind it, so the grouping is forced, not hoped for; the group must then give
exactly what the same calls give one after another (receipts and every stored row), and
a call that fails must not take the others of its group down with it.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from conftest import Backend

from mempill import Engine, Receipt
from mempill.errors import IntegrityError, TransientStorageError

AGENT = "grouped"
THREADS = 12


def claim(k: int, subject: str | None = None) -> dict[str, Any]:
    return {
        "agent_id": AGENT,
        "subject": subject or f"s{k % 5}",
        "predicate": "p",
        "value": k % 3,
        "valid_time": {"start": f"20{10 + k:02d}-01-01"},
    }


class Gated:
    """The engine's store, with `gate(agent)` called in every write once it is open, and
    `session(s)` wrapping the session the engine writes through."""

    def __init__(self, inner: Any, gate: Callable[[str], None], session: Callable[[Any], Any]):
        self.inner, self.gate, self.session = inner, gate, session

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    @contextmanager
    def write(self, agent_id: str) -> Iterator[Any]:
        with self.inner.write(agent_id) as session:
            self.gate(agent_id)
            yield self.session(session)


def wait_until(condition: Callable[[], bool]) -> None:
    deadline = time.monotonic() + 30
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.001)


def grouped_ingest(
    engine: Engine,
    requests: list[dict[str, Any]],
    session: Callable[[Any], Any] = lambda s: s,
) -> list[Receipt | BaseException]:
    """Ingest `requests` from one thread each: the first holds its transaction open until
    all others are queued (in order) behind it; they then commit as one group."""
    release = threading.Event()
    first = [True]

    def gate(agent: str) -> None:
        if first[0]:
            first[0] = False
            release.wait(30)

    engine.runner.store = Gated(engine.runner.store, gate, session)  # type: ignore[assignment]
    results: list[Receipt | BaseException | None] = [None] * len(requests)

    def run(k: int) -> None:
        try:
            results[k] = engine.ingest(requests[k])
        except BaseException as e:  # an interrupted leader's too (below)
            results[k] = e

    threads = [threading.Thread(target=run, args=(k,)) for k in range(len(requests))]
    threads[0].start()
    wait_until(lambda: not first[0])  # the first call is inside its transaction
    for k, thread in enumerate(threads[1:], start=1):
        thread.start()
        wait_until(lambda k=k: engine.runner.waiting(AGENT) == k)  # queued in this order
    release.set()
    for thread in threads:
        thread.join(60)
        assert not thread.is_alive(), "a caller was left waiting"
    return [r for r in results if r is not None]


def second_backend(backend: Backend, request: pytest.FixtureRequest) -> Backend:
    """Another empty store on the same backend (PostgreSQL: a schema of its own)."""
    other = Backend(backend.name, backend.tmp_path / "second", backend.stack)
    if backend.is_postgres:
        from mempill.lab.servers import fresh_schema

        server = request.getfixturevalue("postgres_server")
        other.dsn = backend.stack.enter_context(fresh_schema(server))
    return other


def test_a_group_equals_the_same_calls_one_by_one(
    backend: Backend, request: pytest.FixtureRequest
) -> None:
    requests = [claim(k) for k in range(THREADS)]
    grouped = backend.open(record_write_stats=True)
    receipts = grouped_ingest(grouped, requests)
    stats = grouped.write_stats(AGENT)
    # one transaction for the first call, one for all the others
    assert [(s.first_seq, s.last_seq) for s in stats] == [(1, 1), (2, THREADS)]

    serial = second_backend(backend, request).open()
    alone = [serial.ingest(r) for r in requests]
    assert receipts == alone
    assert {r.disposition.value for r in alone} >= {"CommittedCheap", "Contested"}
    assert grouped.content_digest(AGENT) == serial.content_digest(AGENT)
    assert grouped.ledger_digest(AGENT) == serial.ledger_digest(AGENT)


def raising_on(subject: str, error: BaseException) -> Callable[[Any], Any]:
    """A session wrapper whose `append_claim` raises `error` for a claim of `subject`."""

    class Raising:
        def __init__(self, inner: Any) -> None:
            self.inner = inner

        def __getattr__(self, name: str) -> Any:
            return getattr(self.inner, name)

        def append_claim(self, row: Any) -> None:
            if row.subject == subject:
                raise error
            self.inner.append_claim(row)

    return Raising


def test_a_failing_call_fails_alone(backend: Backend) -> None:
    engine = backend.open()
    requests = [claim(k, "boom" if k == 3 else None) for k in range(6)]
    results = grouped_ingest(engine, requests, raising_on("boom", IntegrityError("injected")))
    assert isinstance(results[3], IntegrityError)
    others = [r for k, r in enumerate(results) if k != 3]
    assert all(isinstance(r, Receipt) for r in others)
    history = engine.query_audit(AGENT, limit=100).entries
    assert len(history) == 5 and all(e.subject != "boom" for e in history)
    assert [e.stream_seq for e in history] == [1, 2, 3, 4, 5]


def test_calls_queued_meanwhile_form_the_next_group_led_by_the_first(backend: Backend) -> None:
    """While a group commits, the callers that come queue; its leader then wakes the first
    of them to lead, and that one takes all of them: two transactions for THREADS calls,
    the second written in arrival order, and every caller gets its own receipt."""
    engine = backend.open(record_write_stats=True)
    requests = [claim(k, f"line{k}") for k in range(THREADS)]
    receipts = grouped_ingest(engine, requests)
    assert all(isinstance(r, Receipt) for r in receipts)
    stats = engine.write_stats(AGENT)
    assert [(s.first_seq, s.last_seq) for s in stats] == [(1, 1), (2, THREADS)]
    entries = engine.query_audit(AGENT, limit=100).entries
    assert [e.subject for e in entries] == [f"line{k}" for k in range(THREADS)]
    assert [e.claim_ref for e in entries] == [r.claim_ref for r in receipts]  # type: ignore[union-attr]
    assert engine.runner.waiting(AGENT) == 0
    assert engine.ingest(claim(13, "after")).disposition.value == "CommittedCheap"


def test_an_interrupted_leader_leaves_no_caller_waiting(backend: Backend) -> None:
    """A BaseException (an interrupt) in a group's leader fails every call of its group —
    none of them committed here — and wakes them all; the engine then writes as before."""

    class Stop(BaseException):
        pass

    engine = backend.open()
    requests = [claim(0, "first"), claim(1, "stop"), claim(2, "two"), claim(3, "three")]
    results = grouped_ingest(engine, requests, raising_on("stop", Stop("injected interrupt")))
    assert isinstance(results[0], Receipt)
    assert all(isinstance(r, Stop) for r in results[1:])
    assert engine.runner.waiting(AGENT) == 0
    assert engine.ingest(claim(4, "after")).disposition.value == "CommittedCheap"
    entries = engine.query_audit(AGENT, limit=100).entries
    assert [e.subject for e in entries] == ["first", "after"]


def test_a_transient_error_retries_the_whole_group(
    backend: Backend, request: pytest.FixtureRequest
) -> None:
    failures = [1]

    class FlakyCommit:
        def __init__(self, inner: Any) -> None:
            self.inner = inner

        def __getattr__(self, name: str) -> Any:
            return getattr(self.inner, name)

        def append_entry(self, entry: Any) -> None:
            self.inner.append_entry(entry)
            if entry.stream_seq == 4 and failures[0]:
                failures[0] -= 1
                raise TransientStorageError("injected: connection lost")

    requests = [claim(k) for k in range(6)]
    engine = backend.open()
    results = grouped_ingest(engine, requests, FlakyCommit)
    assert failures == [0]
    serial = second_backend(backend, request).open()
    alone = [serial.ingest(r) for r in requests]

    def outcome(r: Any) -> tuple[str, str, int]:
        return r.disposition.value, r.reason, len(r.contested_with)

    # the retry draws fresh ids for the rows it writes again, so compare all but the ids
    assert [outcome(r) for r in results] == [outcome(r) for r in alone]
    entries = engine.query_audit(AGENT, limit=100).entries
    assert [e.stream_seq for e in entries] == list(range(1, 7))
    assert [e.claim_ref for e in entries] == [r.claim_ref for r in results]  # type: ignore[union-attr]


def test_write_stats_are_recorded_only_when_asked(backend: Backend) -> None:
    quiet, counted = backend.open(), backend.open(record_write_stats=True)
    quiet.ingest(claim(0))
    assert quiet.write_stats(AGENT) == ()
    counted.ingest({**claim(1), "agent_id": "counted"})
    ((stat,),) = [counted.write_stats("counted")]
    assert (stat.first_seq, stat.last_seq) == (1, 1)
