"""Replay streams on several backends and compare: backends with each other, and each with
the expectations recorded beside the stream.

A backend's run is its list of canonical lines (one per operation: result or error plus
the ledger entries it appended; then the ledger digests). Two runs agree when the lists
are equal; the first index where they differ is the operation to show.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from conformance.declared import Checker, check_declaration
from conformance.diff import explain
from conformance.expected import expectation_lines, expected_path, read_expected
from conformance.session import HarnessSession
from mempill.lab.backends import open_engine, supports
from mempill.streams import OpRecord, Stream, StreamError, read_stream

PASS, DIFF, DEVIATION, ERROR, SKIP, UNRECORDED, BROKEN = (
    "pass",
    "diff",
    "deviation",
    "error",
    "skip",
    "unrecorded",
    "broken",  # a declared expectation does not hold (whatever the recording says)
)


@dataclass
class BackendRun:
    """One stream on one backend."""

    backend: str
    records: list[OpRecord] = field(default_factory=list)
    digests: dict[str, str] = field(default_factory=dict)
    content: dict[str, str] = field(default_factory=dict)  # content digests (every row)
    error: str | None = None  # the harness could not finish the stream (open failed, bad ref…)
    skipped: str | None = None
    seconds: float = 0.0
    broken: list[str] = field(default_factory=list)  # declared expectations that failed

    @property
    def lines(self) -> list[str]:
        return expectation_lines(self.records, self.digests, self.content)

    @property
    def ok(self) -> bool:
        return self.error is None and self.skipped is None

    @property
    def unexpected(self) -> list[str]:
        """Operations that raised something other than a MempillError: engine bugs."""
        return [
            f"operation {r.index} ({r.op}) raised {r.outcome['error']}"
            for r in self.records
            if "unexpected" in r.outcome
        ]


def run_on(stream: Stream, backend: str) -> BackendRun:
    """Replay a whole stream on a fresh store of `backend` with the header's clock and ids."""
    run = BackendRun(backend)
    header = stream.header
    if not supports(backend, header.topology):
        run.skipped = f"they need the {header.topology!r} topology, which these backends lack"
        return run
    clock, oracle = header.make_clock(), header.make_oracle()
    started = time.perf_counter()
    try:
        with open_engine(
            backend,
            clock=clock,
            ids=header.make_ids(),
            oracle=oracle,
            config=header.make_config(),
            topology=header.topology,
        ) as engine:
            session = HarnessSession(engine, header, clock, oracle)
            checker = Checker(session)
            for index, op in enumerate(stream.ops, 1):
                check_declaration(op, f"{stream.source} operation {index}")
                record = session.apply(op)
                run.records.append(record)
                run.broken.extend(
                    f"operation {index} ({op['op']}): {problem}"
                    for problem in checker.violations(op, record)
                )
            run.digests = session.digests()
            run.content = session.content_digests()
    except StreamError as e:
        run.error = f"stream error at operation {len(run.records) + 1}: {e}"
    except Exception as e:  # a backend that fails outside an operation (open, digest…)
        run.error = f"{type(e).__name__}: {e}"
    run.seconds = time.perf_counter() - started
    return run


@dataclass
class Difference:
    """The first line where two runs (or a run and the expectations) disagree."""

    left: str
    right: str
    index: int  # 1-based operation number; len(ops) + 1 is the digest line
    left_line: str | None
    right_line: str | None
    op: dict[str, Any] | None

    def render(self) -> str:
        where = f"operation {self.index}" if self.op is not None else "the ledger digests"
        head = f"first difference at {where}"
        if self.op is not None:
            head += f": {json.dumps(self.op, ensure_ascii=False)}"
        left = json.loads(self.left_line) if self.left_line else "<no line>"
        right = json.loads(self.right_line) if self.right_line else "<no line>"
        return f"{head}\n{explain(self.left, left, self.right, right)}"


def first_difference(
    stream: Stream, left: str, a: Sequence[str], right: str, b: Sequence[str]
) -> Difference | None:
    for i in range(max(len(a), len(b))):
        x = a[i] if i < len(a) else None
        y = b[i] if i < len(b) else None
        if x != y:
            op = stream.ops[i] if i < len(stream.ops) else None
            return Difference(left, right, i + 1, x, y, op)
    return None


@dataclass
class Verdict:
    """A stream replayed on every chosen backend, compared."""

    stream: Stream
    runs: dict[str, BackendRun]
    expected: list[str] | None
    cells: dict[str, str]  # backend -> pass | diff | deviation | error | skip | unrecorded | broken
    differences: list[Difference]

    @property
    def ok(self) -> bool:
        return all(c in (PASS, SKIP) for c in self.cells.values()) and any(
            c == PASS for c in self.cells.values()
        )

    @property
    def reference(self) -> BackendRun | None:
        return next((r for r in self.runs.values() if r.ok), None)


def judge(stream: Stream, runs: dict[str, BackendRun], expected: list[str] | None) -> Verdict:
    """Cells per backend: unlike the first good backend → diff; unlike the record → deviation."""
    cells: dict[str, str] = {}
    differences: list[Difference] = []
    reference: BackendRun | None = None
    reference_lines: list[str] = []
    for name, run in runs.items():
        if run.skipped or run.error:
            cells[name] = SKIP if run.skipped else ERROR
            continue
        lines = run.lines  # canonical JSON of every record: encoded once per run, not per use
        if reference is None:
            reference, reference_lines = run, lines
        elif (
            d := first_difference(stream, reference.backend, reference_lines, name, lines)
        ) is not None:
            cells[name] = DIFF
            differences.append(d)
            continue
        if expected is None:
            cells[name] = UNRECORDED
        elif (d := first_difference(stream, "expected", expected, name, lines)) is not None:
            cells[name] = DEVIATION
            if not any(x.left == "expected" for x in differences):
                differences.append(d)
        else:
            cells[name] = PASS
    if reference is not None and cells.get(reference.backend) == DEVIATION:
        for name, cell in cells.items():  # diffs against a deviating reference deviate too
            cells[name] = DEVIATION if cell == DIFF else cell
    for name, run in runs.items():  # an engine that crashes agrees with nothing
        if run.unexpected and cells[name] != DIFF:
            cells[name] = ERROR
        elif run.broken and cells[name] not in (SKIP, ERROR):
            cells[name] = BROKEN
    return Verdict(stream, runs, expected, cells, differences)


def replay(stream: Stream, backends: Iterable[str], *, expected: list[str] | None) -> Verdict:
    runs = {name: run_on(stream, name) for name in backends}
    return judge(stream, runs, expected)


def stream_paths(targets: Iterable[str | Path]) -> list[Path]:
    """Stream files under the given files or directories (never the `.expected.jsonl` ones)."""
    found: list[Path] = []
    for target in map(Path, targets):
        if target.is_dir():
            found.extend(
                p for p in sorted(target.glob("*.jsonl")) if not p.name.endswith(".expected.jsonl")
            )
        elif target.exists():
            found.append(target)
        else:
            raise FileNotFoundError(f"no stream file or directory {target}")
    return found


def replay_path(path: Path, backends: Sequence[str], *, require_expected: bool) -> Verdict:
    """Read a stream file and its expectations (when recorded) and replay it."""
    stream = read_stream(path)
    expected = read_expected(expected_path(path))
    verdict = replay(stream, backends, expected=expected)
    if expected is None and not require_expected:
        verdict.cells = {k: PASS if v == UNRECORDED else v for k, v in verdict.cells.items()}
    return verdict
