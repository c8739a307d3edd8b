"""The scenario corpus replays on every selected backend exactly as recorded, and together
the streams exercise every rule of reference §4–§6 (derived from what the replay observed)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from conftest import selected_backends

from conformance.coverage import RULE_IDS, coverage, markdown, observe
from conformance.declared import MUST_DECLARE, check_declaration
from conformance.expected import expected_path, read_expected
from conformance.record import readme_table
from conformance.replay import first_difference, run_on, stream_paths
from mempill.lab.backends import supports
from mempill.streams import Stream, StreamError, read_stream

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
def test_stream_keeps_its_declarations(path: Path, backend: str) -> None:
    """What the stream declares (hand-written from the rules) holds; no recording involved."""
    run = run_on(read_stream(path), backend)
    assert run.ok, run.error
    assert not run.unexpected, run.unexpected
    assert not run.broken, "declared expectations broken:\n" + "\n".join(run.broken)


@pytest.mark.parametrize(("path", "backend"), CASES)
def test_stream_replays_as_recorded(path: Path, backend: str) -> None:
    stream = read_stream(path)
    expected = read_expected(expected_path(path))
    assert expected is not None
    run = run_on(stream, backend)
    assert run.ok, run.error
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


def test_every_write_and_belief_read_declares_what_must_happen() -> None:
    """The expectations that cannot be re-recorded cover every write and every belief read."""
    undeclared = [
        f"{path.stem} operation {index} ({op['op']})"
        for path in PATHS
        for index, op in enumerate(read_stream(path).ops, 1)
        if op["op"] in MUST_DECLARE and "expect" not in op
    ]
    assert undeclared == []


def test_a_declaration_that_does_not_hold_breaks_the_run() -> None:
    """The checker bites: one changed fact in a declaration fails the stream on replay."""
    stream = read_stream(SCENARIOS / "e1_low_confidence.jsonl")
    first = dict(stream.ops[0])
    first["expect"] = {**first["expect"], "disposition": "CommittedCheap"}
    broken = Stream(stream.header, (first, *stream.ops[1:]), stream.source)
    run = run_on(broken, "sqlite-mem")
    assert run.ok and len(run.broken) == 1 and "disposition" in run.broken[0]
    with pytest.raises(StreamError, match="unknown"):
        check_declaration({"op": "ingest", "expect": {"dispostion": "x"}}, "here")


FLIPS = [  # (module, function, the rule's text, the flipped text)
    (
        "mempill.core.decide",
        "_decide_external",
        "value_confidence < config.low",
        "value_confidence <= config.low",
    ),
    ("mempill.core.view", "is_trusted", ">= config.valid_time", "> config.valid_time"),
    (
        "mempill.core.fold",
        "currency_of",
        "if age < timedelta(days=config.aging",
        "if age <= timedelta(days=config.aging",
    ),
    ("mempill.core.decide", "_decide_external", "if not incumbents:", "if incumbents:"),
    (
        "mempill.core.decide",
        "derivation",
        "parent.derivation_depth < best[0]",
        "parent.derivation_depth <= best[0]",
    ),
]


@pytest.mark.parametrize(
    ("module", "function", "rule", "flipped"), FLIPS, ids=[f[2][:24] for f in FLIPS]
)
def test_a_flipped_rule_fails_the_corpus_even_after_re_recording(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    module: str,
    function: str,
    rule: str,
    flipped: str,
) -> None:
    """The declarations are what re-recording cannot rewrite: with one rule flipped in the
    engine, `record --force` refuses and the replay reports the broken declarations."""
    import importlib
    import inspect
    import shutil
    import textwrap

    from conformance.record import record

    target = importlib.import_module(module)
    source = textwrap.dedent(inspect.getsource(getattr(target, function)))
    assert rule in source
    namespace = dict(vars(target))
    exec(compile(source.replace(rule, flipped), module, "exec"), namespace)
    original = getattr(target, function)
    for loaded in list(sys.modules.values()):  # every module that imported it by name
        if (
            getattr(loaded, "__name__", "").startswith("mempill")
            and getattr(loaded, function, None) is original
        ):
            monkeypatch.setattr(loaded, function, namespace[function])
    copy = tmp_path / "scenarios"
    shutil.copytree(SCENARIOS, copy)
    assert record([copy], "sqlite-mem", force=True) == 1  # refused at least one stream
    broken = [p.stem for p in stream_paths([copy]) if run_on(read_stream(p), "sqlite-mem").broken]
    assert broken, "no declaration noticed the flipped rule"
