"""The scenario corpus replays on every selected backend exactly as recorded, and together
the streams exercise every rule of reference §4–§6 (derived from what the replay observed)."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import selected_backends

from conformance.coverage import RULE_IDS, coverage, markdown, observe
from conformance.expected import expected_path, read_expected
from conformance.record import readme_table
from conformance.replay import first_difference, run_on, stream_paths
from mempill.lab.backends import supports
from mempill.streams import read_stream

ROOT = Path(__file__).resolve().parent.parent
SCENARIOS = ROOT / "data" / "scenarios"
README = ROOT / "conformance" / "README.md"
PATHS = stream_paths([SCENARIOS])
CASES = [
    pytest.param(path, backend, id=f"{path.stem}-{backend}")
    for path in PATHS
    for backend in selected_backends()
    if supports(backend, read_stream(path).header.topology)
]


def test_the_corpus_is_large_enough_and_recorded() -> None:
    assert len(PATHS) >= 80
    unrecorded = [p.stem for p in PATHS if not expected_path(p).exists()]
    assert not unrecorded, f"record them: python -m conformance record ({unrecorded})"
    names = [read_stream(p).name for p in PATHS]
    assert names == [p.stem for p in PATHS], "a stream's name must be its file name"


@pytest.mark.parametrize(("path", "backend"), CASES)
def test_stream_replays_as_recorded(path: Path, backend: str) -> None:
    stream = read_stream(path)
    expected = read_expected(expected_path(path))
    assert expected is not None
    run = run_on(stream, backend)
    assert run.ok, run.error
    assert not run.unexpected, run.unexpected
    assert not run.broken, "declared expectations broken:\n" + "\n".join(run.broken)
    difference = first_difference(stream, "expected", expected, backend, run.lines)
    assert difference is None, (
        f"{difference.render()}\nIf the engine changed on purpose, review the change and record "
        f"it: python -m conformance record --force {path} (it refuses what breaks a declaration)"
    )


@pytest.fixture(scope="module")
def observed() -> dict[str, set[str]]:
    """What each stream exercised on the in-memory backend (its file twin for single-file)."""
    found: dict[str, set[str]] = {}
    for path in PATHS:
        stream = read_stream(path)
        backend = "sqlite-mem" if supports("sqlite-mem", stream.header.topology) else "sqlite-file"
        run = run_on(stream, backend)
        found[stream.name] = observe(stream.header, stream.ops, [r.to_json() for r in run.records])
    return found


def test_every_rule_has_a_scenario(observed: dict[str, set[str]]) -> None:
    table = coverage(observed)
    uncovered = [rule for rule, streams in table.items() if not streams]
    assert not uncovered, f"rules no scenario exercises: {uncovered}"


def test_readme_table_is_what_the_replay_observed(observed: dict[str, set[str]]) -> None:
    assert readme_table(README) == markdown(coverage(observed)), (
        "regenerate it: python -m conformance coverage --write-readme"
    )


def test_coverage_is_derived_from_observations_not_names() -> None:
    """A stream named after a rule covers nothing it does not actually exercise."""
    stream = read_stream(SCENARIOS / "e6_conflict_contested.jsonl")
    run = run_on(stream, "sqlite-mem")
    seen = observe(stream.header, stream.ops, [r.to_json() for r in run.records])
    assert {"E6/conflict", "disposition/Contested", "status/Contested"} <= seen
    assert "E5/oracle" not in seen  # no oracle in this stream
    only_first = observe(stream.header, stream.ops[:1], [run.records[0].to_json()])
    assert "E6/conflict" not in only_first
    table = coverage({"e6_conflict_contested": only_first})
    assert set(table) == set(RULE_IDS)
    assert table["E6/conflict"] == []
