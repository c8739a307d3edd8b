"""A write whose acknowledgement is lost is retried, and never applied twice (reference §8.2).

The store under the engine is real; only its acknowledgement is made to fail, once, at the
edge of the transaction: *before* COMMIT (the transaction rolls back; the retry does the work
again) or *after* it (the rows are in; the retry must find them and answer as if nothing had
happened). Each call is compared with the same call on an undisturbed engine of its own
agent, with the same clock and id factory, on every backend.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import pytest
from conftest import START, Backend, RecordingOracle
from support import put

from mempill import (
    ConflictError,
    Engine,
    RetryPolicy,
    SeededIds,
    SteppingClock,
    TransientStorageError,
    Verdict,
)
from mempill.ports import Store, Writer

FAST = RetryPolicy(attempts=3, base_seconds=0.0, cap_seconds=0.0)
Setup = Callable[[Engine, str], Any]
Call = Callable[[Engine, str, Any], Any]


class AckLosingStore:
    """A real store whose next `lose` write transactions fail at COMMIT's edge."""

    def __init__(self, inner: Store, when: str) -> None:
        self.inner = inner
        self.when = when
        self.lose = 0
        self.lost = 0
        self.backend = inner.backend

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    @contextmanager
    def write(self, agent_id: str) -> Iterator[Writer]:
        lose = self.lose > 0
        self.lose -= lose
        with self.inner.write(agent_id) as txn:
            yield txn
            if lose and self.when == "before":
                self.lost += 1
                raise TransientStorageError("connection lost before COMMIT (injected)")
        if lose and self.when == "after":
            self.lost += 1
            raise TransientStorageError("acknowledgement of COMMIT lost (injected)")


@dataclass
class Pair:
    """An undisturbed engine and one that loses acknowledgements, each with its own agent."""

    clean: Engine
    lossy: Engine
    store: AckLosingStore

    def both(self, call: Call, setup: Setup | None = None) -> tuple[Any, Any]:
        """`setup` on each engine undisturbed, then `call`, whose first write loses its ack."""
        context = setup(self.clean, "clean") if setup else None
        expected = call(self.clean, "clean", context)
        context = setup(self.lossy, "lossy") if setup else None
        self.store.lose = 1
        got = call(self.lossy, "lossy", context)
        assert self.store.lost == 1 and self.store.lose == 0
        return expected, got


def pair(backend: Backend, when: str, oracle: bool) -> Pair:
    def engine(store: Store | None = None) -> Engine:
        options: dict[str, Any] = {
            "clock": SteppingClock(START),
            "ids": SeededIds(1),
            "retry": FAST,
            "oracle": RecordingOracle() if oracle else None,
        }
        opened = backend.open(**options)
        if store is None:
            return opened
        return Engine(store, **options)

    clean = engine()
    store = AckLosingStore(backend.open().store, when)
    return Pair(clean, engine(store), store)


def setup_line(engine: Engine, agent: str) -> str:
    return put(engine, "Berlin", valid_from="2020", agent_id=agent).claim_ref


def setup_bound(engine: Engine, agent: str) -> str:
    ref = setup_line(engine, agent)
    engine.end(agent, ref, "2024")
    return ref


CALLS: dict[str, tuple[Setup | None, Call]] = {
    "ingest": (None, lambda e, a, _: put(e, "Paris", agent_id=a)),
    "ingest_many": (
        None,
        lambda e, a, _: e.ingest_many(
            [{"agent_id": a, "subject": "s", "predicate": "p", "value": v} for v in ("x", "y", "x")]
        ),
    ),
    "ingest_with_ref": (
        None,
        lambda e, a, _: put(
            e, "Paris", agent_id=a, claim_ref="00000000-0000-4000-8000-00000000abcd"
        ),
    ),
    "end": (setup_line, lambda e, a, ref: e.end(a, ref, "2024-09")),
    "end_fact": (setup_line, lambda e, a, _: e.end_fact(a, "user", "city", "2024")),
    "reopen": (setup_bound, lambda e, a, ref: e.reopen(a, ref)),
    "invalidate": (setup_line, lambda e, a, ref: e.invalidate(a, ref)),
    "reject": (setup_line, lambda e, a, ref: e.end(a, ref, "2019")),
    "end_fact_rejected": (setup_line, lambda e, a, _: e.end_fact(a, "user", "city", "2019")),
}


def rows_of(engine: Engine, agent: str) -> list[str]:
    """Every stored claim, assertion and outbox row of an agent, its name made alike."""
    with engine.store.read(agent) as reader:
        rows = [*reader.all_claims(), *reader.all_assertions(), *reader.pending(None)]
    return [str(r.to_dict()).replace(agent, "clean") for r in rows]


def _normal(result: Any) -> Any:
    """A result as plain data with the agents' names made alike."""
    items = result if isinstance(result, tuple) else (result,)
    return [str(r.to_dict()).replace("lossy", "clean") for r in items]


def _shape(result: Any) -> Any:
    items = result if isinstance(result, tuple) else (result,)
    return [(type(r).__name__, getattr(r, "disposition", None)) for r in items]


@pytest.mark.parametrize("when", ["before", "after"])
@pytest.mark.parametrize("name", list(CALLS))
def test_a_lost_acknowledgement_is_retried_and_never_applied_twice(
    backend: Backend, name: str, when: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="mempill")
    both = pair(backend, when, oracle=False)
    setup, call = CALLS[name]
    expected, got = both.both(call, setup)
    assert any("transient storage error" in r.getMessage() for r in caplog.records)
    clean, lossy = both.clean, both.lossy
    rows = [len(clean.query_audit("clean", limit=1000).entries)]
    rows.append(len(lossy.query_audit("lossy", limit=1000).entries))
    assert rows[0] == rows[1]  # nothing lost, nothing twice
    if when == "after":  # the retry found the committed rows and answered from them
        assert _normal(got) == _normal(expected)
        assert lossy.ledger_digest("lossy") == clean.ledger_digest("clean")
        assert rows_of(lossy, "lossy") == rows_of(clean, "clean")
    else:  # rolled back and done again: fresh entry ids, the same outcome
        assert _shape(got) == _shape(expected)


@pytest.mark.parametrize("when", ["before", "after"])
def test_a_queued_claim_whose_acknowledgement_is_lost(backend: Backend, when: str) -> None:
    """The retry answers with the claim's handle, and the oracle is told once either way."""
    both = pair(backend, when, oracle=True)

    def incumbent(engine: Engine, agent: str) -> None:
        put(engine, "Berlin", valid_from="2020", agent_id=agent)

    expected, got = both.both(
        lambda e, a, _: put(e, "Paris", valid_from="2024", agent_id=a), incumbent
    )
    assert got.handle_id is not None and got.oracle_notified is True
    assert _shape(got) == _shape(expected) and expected.oracle_notified is True
    oracle = both.lossy.oracle
    assert isinstance(oracle, RecordingOracle) and len(oracle.requests) == 1
    if when == "after":
        assert _normal(got) == _normal(expected)


@pytest.mark.parametrize("when", ["before", "after"])
def test_a_verdict_whose_acknowledgement_is_lost(backend: Backend, when: str) -> None:
    both = pair(backend, when, oracle=True)

    def contest(engine: Engine, agent: str) -> str:
        put(engine, "Berlin", valid_from="2020", agent_id=agent)
        challenger = put(engine, "Paris", valid_from="2024", agent_id=agent)
        assert challenger.handle_id is not None
        return challenger.handle_id

    def verdict(engine: Engine, agent: str, handle: str) -> Any:
        return engine.submit_adjudication(handle, Verdict.AFFIRM, agent_id=agent)

    expected, got = both.both(verdict, contest)
    assert _shape(got) == _shape(expected) and got.superseded == expected.superseded
    if when == "after":
        assert _normal(got) == _normal(expected)
        assert rows_of(both.lossy, "lossy") == rows_of(both.clean, "clean")


def test_contention_that_outlives_the_retries_is_a_conflict_error(backend: Backend) -> None:
    store = AckLosingStore(backend.open().store, "before")
    engine = Engine(store, clock=SteppingClock(START), ids=SeededIds(1), retry=FAST)
    store.lose = FAST.attempts
    with pytest.raises(ConflictError, match="after 3 attempts"):
        put(engine, "Paris")
    assert store.lost == FAST.attempts
    assert engine.query_audit("agent-1").entries == ()  # every attempt rolled back
    assert put(engine, "Paris").disposition.value == "CommittedCheap"  # and it is usable
