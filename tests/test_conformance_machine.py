"""Property-based differential testing: every selected backend (plus SQLite in memory as
the reference) gets the same operations and must agree after every step. The budget comes
from HYPOTHESIS_PROFILE (`ci` by default); the statistics go to build/conformance/."""

from __future__ import annotations

import json
import sqlite3
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from conftest import selected_backends
from hypothesis import settings

from conformance.engines import kept_stores, machine_engine
from conformance.fuzz import BASE, run_machine, save_regression
from conformance.machine import STATS, DifferentialMachine, machine_for
from conformance.replay import replay_path
from mempill.core.config import EngineConfig
from mempill.ids import SeededIds
from mempill.stores.sqlite import SQLiteStore
from mempill.streams import Header, StreamClock, read_stream

ROOT = Path(__file__).resolve().parent.parent
START, STEP = datetime(2026, 1, 1, tzinfo=UTC), timedelta(seconds=1)
STATS_FILE = ROOT / "build" / "conformance" / "hypothesis.json"


def machine_backends() -> tuple[str, ...]:
    """SQLite in memory is the reference; the selected backends are compared with it (SQLite
    files when only the reference is selected: a backend compared with itself proves nothing)."""
    others = [b for b in selected_backends() if b != "sqlite-mem"] or ["sqlite-file"]
    return ("sqlite-mem", *others)


def test_the_machine_refuses_to_compare_a_backend_with_itself() -> None:
    for backends in (("sqlite-mem",), ("sqlite-mem", "sqlite-mem")):
        with pytest.raises(ValueError, match="at least two"):
            run_machine(backends)
    assert len(set(machine_backends())) >= 2


def test_backends_agree_after_every_step() -> None:
    backends = machine_backends()
    try:
        stats = run_machine(backends)
    finally:
        STATS_FILE.parent.mkdir(parents=True, exist_ok=True)
        STATS_FILE.write_text(json.dumps(STATS.to_dict(), indent=1) + "\n")
    assert stats.divergences == 0
    assert stats.steps > stats.examples  # the machine did more than open engines
    if stats.profile == "ci":
        assert stats.steps >= 10_000, "the ci budget is at least 10,000 operations"


class Skewed(DifferentialMachine):
    """Two engines whose id factories differ: the harness must notice at the first write."""

    BACKENDS = ("sqlite-mem", "sqlite-file")

    def header_for(self, backend: str) -> Header:
        return self.header if backend == "sqlite-mem" else replace(self.header, id_seed=8)


def test_a_divergence_fails_and_is_saved_as_a_replayable_stream(tmp_path: Path) -> None:
    budget = settings(BASE, max_examples=30, stateful_step_count=10, database=None)
    with pytest.raises(AssertionError, match="backends disagree at operation"):
        run_machine(Skewed.BACKENDS, regressions=tmp_path, machine=Skewed, budget=budget)
    saved = list(tmp_path.glob("hypothesis-*.jsonl"))
    assert len(saved) == 1
    stream = read_stream(saved[0])
    assert stream.name == saved[0].stem
    assert stream.ops, "the shrunk example still has the diverging step"
    # Replayed with one header for both backends, the saved stream agrees again.
    verdict = replay_path(saved[0], ["sqlite-mem", "sqlite-file"], require_expected=False)
    assert verdict.ok, [d.render() for d in verdict.differences]


def test_saved_regressions_get_a_stable_name(tmp_path: Path) -> None:
    stream = read_stream(ROOT / "data" / "scenarios" / "e6_conflict_contested.jsonl")
    first = save_regression(stream, tmp_path)
    second = save_regression(stream, tmp_path)
    assert first == second and first.stem.startswith("hypothesis-")
    assert read_stream(first).ops == stream.ops


HOT = {"agent_id": "a1", "subject": "s1", "predicate": "p1", "valid_time": {"start": "2020"}}


def opened(oracle: str | None = "recording") -> DifferentialMachine:
    """A machine on both SQLite backends, engines open, driven by hand."""
    machine = machine_for(("sqlite-mem", "sqlite-file"))()
    machine.open_engines(oracle=oracle, ttl=None, step=1.0)
    return machine


def memory_connection(machine: DifferentialMachine) -> sqlite3.Connection:
    store = machine.sessions["sqlite-mem"].engine.store
    assert isinstance(store, SQLiteStore)
    conn = store.connection_for("a1")
    assert conn is not None
    return conn


def test_a_difference_only_in_stored_rows_fails_when_the_example_ends() -> None:
    """Digests are compared every few operations and at the end of each example: a row
    that differs without showing in any result is still caught."""
    machine = opened(oracle=None)
    machine.run({"op": "ingest", "request": {**HOT, "value": "x"}})
    memory_connection(machine).execute("UPDATE claims SET valid_time_confidence = 0.5")
    machine.run({"op": "query_memory", "agent_id": "a1", "subject": "s1", "predicate": "p1"})
    with pytest.raises(AssertionError, match="backends disagree at operation 2"):
        machine.teardown()


def test_an_outbox_update_that_differs_fails_at_once() -> None:
    """The outbox's status and notified flag, the only columns ever updated in place, are
    compared after every operation that wrote to the agent."""
    machine = opened()
    machine.run({"op": "ingest", "request": {**HOT, "value": "x"}})
    machine.run({"op": "ingest", "request": {**HOT, "value": "y"}})  # queued for the oracle
    memory_connection(machine).execute("UPDATE pending_adjudications SET notified = 0")
    with pytest.raises(AssertionError, match="notified"):
        machine.run({"op": "ingest", "request": {**HOT, "predicate": "p2", "value": "z"}})
    machine.stack.close()


def test_ledger_entries_written_behind_the_harness_are_reported() -> None:
    """The harness reads an agent only after the engine opened it for writing; a ledger
    entry that appears otherwise fails the next digest comparison."""
    machine = opened(oracle=None)
    machine.run({"op": "ingest", "request": {**HOT, "value": "x"}})
    conn = memory_connection(machine)
    conn.execute(
        "INSERT INTO ledger SELECT agent_id, stream_seq + 1, entry_id || '-copy', claim_ref, "
        "event_kind, disposition, rationale, recorded_at, subject, predicate, request_ref "
        "FROM ledger"
    )
    with pytest.raises(AssertionError, match="no entry outside the records"):
        machine.teardown()


@pytest.mark.postgres_only
def test_kept_postgres_stores_start_every_example_empty() -> None:
    with kept_stores():
        for _ in range(2):
            with machine_engine(
                "postgres",
                clock=StreamClock(START, STEP),
                ids=SeededIds(7),
                oracle=None,
                config=EngineConfig(),
            ) as engine:
                assert engine.store.agents() == ()
                engine.ingest({**HOT, "value": "x"})
                assert engine.store.agents() == ("a1",)
