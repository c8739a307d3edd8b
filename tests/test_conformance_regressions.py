"""Every stream in data/regressions/ (failing examples the state machine found, and engine
bugs reproduced by hand) replays identically on SQLite in memory and every selected
backend, and equals its recorded expectations when it has them."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import selected_backends

from conformance.replay import replay_path, stream_paths
from mempill.lab.backends import SINGLE_FILE, supports
from mempill.streams import read_stream

REGRESSIONS = Path(__file__).resolve().parent.parent / "data" / "regressions"
PATHS = stream_paths([REGRESSIONS]) if REGRESSIONS.is_dir() else []


@pytest.mark.parametrize("path", PATHS, ids=[p.stem for p in PATHS])
def test_regression_stream_agrees_everywhere(path: Path) -> None:
    topology = read_stream(path).header.topology
    # SQLite in memory always replays a stream; a single-file stream (which only a real
    # file can hold) always gets a SQLite file, whatever MEMPILL_TEST_BACKENDS selects.
    always = ("sqlite-mem", "sqlite-file") if topology == SINGLE_FILE else ("sqlite-mem",)
    backends = [b for b in dict.fromkeys((*always, *selected_backends())) if supports(b, topology)]
    assert backends, f"no backend can replay a {topology!r} stream"
    verdict = replay_path(path, backends, require_expected=False)
    problems = [d.render() for d in verdict.differences]
    problems += [p for run in verdict.runs.values() for p in [run.error, *run.unexpected] if p]
    assert verdict.ok, "\n".join(problems)
