"""Property-based differential testing: every selected backend (plus SQLite in memory as
the reference) gets the same operations and must agree after every step. The budget comes
from HYPOTHESIS_PROFILE (`ci` by default); the statistics go to build/conformance/."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest
from conftest import selected_backends
from hypothesis import settings

from conformance.fuzz import BASE, run_machine, save_regression
from conformance.machine import STATS, DifferentialMachine
from conformance.replay import replay_path
from mempill.streams import Header, read_stream

ROOT = Path(__file__).resolve().parent.parent
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
