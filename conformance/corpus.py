"""Replaying a whole corpus: progress while it runs, then the summary the commands print."""

from __future__ import annotations

import sys
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from conformance.coverage import RULE_IDS, coverage, observe
from conformance.replay import DIFF, ERROR, PASS, Verdict, replay_path, stream_paths
from mempill.lab.backends import unavailable

CELL_MARK = {
    "pass": "ok", "diff": "DIFF", "deviation": "DEV", "error": "ERR", "skip": "-", "broken": "DECL",
}  # fmt: skip


@dataclass
class CorpusResult:
    """Every verdict of one corpus run, plus what it could not run."""

    backends: tuple[str, ...]
    verdicts: list[Verdict] = field(default_factory=list)
    unavailable: dict[str, str] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.unavailable and all(v.ok for v in self.verdicts)

    @property
    def operations(self) -> int:
        return sum(len(v.stream.ops) for v in self.verdicts)

    def coverage(self) -> dict[str, list[str]]:
        """Rule → streams, from what the first good backend of each stream observed."""
        observed: dict[str, set[str]] = {}
        for v in self.verdicts:
            run = v.reference
            if run is not None:
                records = [r.to_json() for r in run.records]
                observed[v.stream.name] = observe(v.stream.header, v.stream.ops, records)
        return coverage(observed)

    def timing(self) -> dict[str, dict[str, tuple[int, float]]]:
        """backend → operation → (count, mean microseconds)."""
        sums: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
        for v in self.verdicts:
            for name, run in v.runs.items():
                for record in run.records:
                    sums[name][record.op].append(record.elapsed_s)
        return {
            name: {op: (len(xs), 1e6 * sum(xs) / len(xs)) for op, xs in sorted(ops.items())}
            for name, ops in sums.items()
        }


def _progress(total: int, enabled: bool) -> Any:
    """A tqdm bar on a terminal (stderr), else nothing; the per-stream lines still print."""
    if not enabled or not sys.stderr.isatty():
        return None
    try:
        from tqdm import tqdm
    except ImportError:
        return None
    return tqdm(total=total, unit="stream", file=sys.stderr, leave=False)


def usable_backends(
    backends: Sequence[str], optional: Sequence[str], result: CorpusResult, out: TextIO
) -> None:
    """Keep the backends that can open; a required one that cannot is a failure."""
    usable = []
    for name in backends:
        reason = unavailable(name)
        if reason is None:
            usable.append(name)
            continue
        print(f"backend {name} is unavailable: {reason}", file=out)
        if name not in optional:
            result.unavailable[name] = reason
    result.backends = tuple(usable)


def run_corpus(
    targets: Sequence[str | Path],
    backends: Sequence[str],
    *,
    require_expected: bool = True,
    optional: Sequence[str] = (),
    out: TextIO = sys.stdout,
    verbose: bool = True,
    progress: bool = True,
) -> CorpusResult:
    """Replay every stream under `targets` on each available backend, printing as it goes.

    A backend that cannot open is reported; unless it is listed in `optional`, that
    makes the result fail (a backend asked for and not checked proves nothing).
    """
    result = CorpusResult(tuple(backends))
    usable_backends(backends, optional, result, out)
    paths = stream_paths(targets)
    print(
        f"replaying {len(paths)} streams on {', '.join(result.backends) or 'no backend'}", file=out
    )
    bar = _progress(len(paths), progress)
    for number, path in enumerate(paths, 1):
        verdict = replay_path(path, result.backends, require_expected=require_expected)
        result.verdicts.append(verdict)
        if bar is not None:
            bar.update(1)
        elif not verbose and progress and (number % 20 == 0 or number == len(paths)):
            print(f"  … {number}/{len(paths)} streams", file=out, flush=True)
        if verbose or not verdict.ok:
            _say(bar, out, _verdict_text(verdict, f"[{number:>3}/{len(paths)}]"))
    if bar is not None:
        bar.close()
    return result


def _verdict_text(verdict: Verdict, counter: str) -> str:
    """One line per stream; then errors and the first difference, indented."""
    cells = "  ".join(f"{CELL_MARK.get(c, c):<5}" for c in verdict.cells.values())
    lines = [f"{counter} {verdict.stream.name:<32} {len(verdict.stream.ops):>3} ops  {cells}"]
    for name, run in verdict.runs.items():
        lines.extend(
            f"    {name}: {p}" for p in ([run.error] if run.error else []) + run.unexpected[:3]
        )
        lines.extend(f"    {name}: declared, broken: {p}" for p in run.broken[:5])
    lines.extend(_indent(d.render()) for d in verdict.differences[:1])
    return "\n".join(lines)


def _say(bar: Any, out: TextIO, text: str) -> None:
    if bar is not None and out is sys.stdout:
        bar.write(text, file=out)
    else:
        print(text, file=out)


def _indent(text: str) -> str:
    return "\n".join("    " + line for line in text.splitlines())


def _skip_notes(result: CorpusResult) -> list[str]:
    """Why a backend ran fewer streams than the corpus holds, one line per reason."""
    skipped: dict[str, list[tuple[str, str]]] = {}
    for verdict in result.verdicts:
        for name, run in verdict.runs.items():
            if run.skipped:
                skipped.setdefault(run.skipped, []).append((name, verdict.stream.name))
    notes = []
    for reason, where in skipped.items():
        backends = [b for b in result.backends if any(name == b for name, _ in where)]
        streams = sorted({stream for _, stream in where})
        notes.append(
            f"{', '.join(backends)}: {len(streams)} stream(s) not run ({', '.join(streams)}): "
            f"{reason}"
        )
    return notes


def summary_table(result: CorpusResult, *, with_coverage: bool = True) -> str:
    """The compact table: one row per backend, the verdict, and (for a whole corpus) the
    rules no stream exercised."""
    timing = result.timing()
    rows = [
        f"{'backend':<12} {'streams':>9} {'identical':>9} {'diff':>5} {'err':>4} "
        f"{'ops':>6} {'µs/op':>8}"
    ]
    for name in result.backends:
        cells = [v.cells.get(name) for v in result.verdicts]
        ran = [c for c in cells if c not in (None, "skip")]
        ops = sum(n for n, _ in timing.get(name, {}).values())
        total_us = sum(n * mean for n, mean in timing.get(name, {}).values())
        rows.append(
            f"{name:<12} {len(ran):>9} {sum(c == PASS for c in ran):>9} "
            f"{sum(c not in (PASS, ERROR) for c in ran):>5} {sum(c == ERROR for c in ran):>4} "
            f"{ops:>6} {total_us / max(ops, 1):>8.0f}"
        )
    for name, reason in result.unavailable.items():
        rows.append(f"{name:<12} unavailable: {reason}")
    rows.extend(_skip_notes(result))
    bad = [v.stream.name for v in result.verdicts if not v.ok]
    unrecorded = sum(v.expected is None for v in result.verdicts)
    if result.ok:
        rows.append(
            f"all {len(result.verdicts)} streams ({result.operations} operations) identical on "
            f"{', '.join(result.backends)}"
            + (
                f"; {unrecorded} without recorded expectations"
                if unrecorded
                else " and equal to their recorded expectations"
            )
        )
    elif bad:
        rows.append(f"{len(bad)} stream(s) differ, deviate or fail: {', '.join(bad[:12])}")
    else:
        missing = ", ".join(result.unavailable)
        rows.append(f"no stream differs, but {missing} could not be checked: FAILED")
    uncovered = [rule for rule, streams in result.coverage().items() if not streams]
    if len(uncovered) > len(RULE_IDS) // 2:  # a handful of streams, not a corpus
        uncovered = [*uncovered[:8], "…"]
    if uncovered and result.verdicts and with_coverage:
        rows.append(f"rules without a scenario: {', '.join(uncovered)}")
    return "\n".join(rows)


__all__ = ["DIFF", "CorpusResult", "run_corpus", "summary_table"]
