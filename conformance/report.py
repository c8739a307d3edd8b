"""`python -m conformance report`: build/conformance/index.html and summary.json.

Streams × backends with pass/diff, the ledger digests, per-backend time per operation,
rule coverage, and the statistics of the last hypothesis run (`hypothesis.json`, written
by `python -m conformance fuzz` and by the state-machine test).
"""

from __future__ import annotations

import html
import json
import platform
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from conformance.corpus import CorpusResult, run_corpus, summary_table
from conformance.coverage import RULES
from conformance.replay import Verdict

COLOURS = {"pass": "#d4f4d4", "skip": "#eeeeee", "unrecorded": "#fff3c4"}


def _stream_row(verdict: Verdict) -> dict[str, Any]:
    digests = {name: run.digests for name, run in verdict.runs.items() if run.ok}
    distinct = {json.dumps(d, sort_keys=True) for d in digests.values()}
    return {
        "name": verdict.stream.name,
        "description": verdict.stream.header.description,
        "operations": len(verdict.stream.ops),
        "cells": verdict.cells,
        "digests": digests,
        "digests_identical": len(distinct) <= 1,
        "seconds": {name: round(run.seconds, 4) for name, run in verdict.runs.items()},
        "first_difference": verdict.differences[0].render() if verdict.differences else None,
        "errors": {
            name: [run.error] if run.error else run.unexpected
            for name, run in verdict.runs.items()
            if run.error or run.unexpected
        },
    }


def summary(result: CorpusResult, hypothesis: dict[str, Any] | None) -> dict[str, Any]:
    """Everything the report shows, as plain JSON."""
    streams = [_stream_row(v) for v in result.verdicts]
    cells = [c for row in streams for c in row["cells"].values()]
    table = result.coverage()
    return {
        "generated_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "python": platform.python_version(),
        "backends": list(result.backends),
        "unavailable": result.unavailable,
        "ok": result.ok,
        "totals": {
            "streams": len(streams),
            "operations": result.operations,
            **{state: cells.count(state) for state in sorted(set(cells))},
        },
        "streams": streams,
        "timing_us": {
            backend: {op: {"count": n, "mean_us": round(mean, 1)} for op, (n, mean) in ops.items()}
            for backend, ops in result.timing().items()
        },
        "coverage": table,
        "uncovered": [rule for rule, names in table.items() if not names],
        "hypothesis": hypothesis,
    }


def _cell(state: str) -> str:
    colour = COLOURS.get(state, "#f8c8c8")
    return f"<td style='background:{colour}'>{html.escape(state)}</td>"


def _stream_rows(data: dict[str, Any]) -> str:
    backends = data["backends"]
    rows = []
    for row in data["streams"]:
        digest: dict[str, str] = next(iter(row["digests"].values()), {})
        short = " ".join(f"{a}:{d[:12]}" for a, d in digest.items())
        same = "identical" if row["digests_identical"] else "<b>DIFFER</b>"
        rows.append(
            f"<tr><td title='{html.escape(row['description'])}'>{html.escape(row['name'])}</td>"
            f"<td>{row['operations']}</td>"
            + "".join(_cell(row["cells"].get(b, "-")) for b in backends)
            + f"<td><code>{html.escape(short)}</code> {same}</td></tr>"
        )
        if row["first_difference"]:
            rows.append(
                f"<tr><td colspan='{len(backends) + 3}'><pre>"
                f"{html.escape(row['first_difference'])}</pre></td></tr>"
            )
    return "".join(rows)


def _timing_rows(data: dict[str, Any]) -> str:
    timing = data["timing_us"]
    ops = sorted({op for by_op in timing.values() for op in by_op})
    return "".join(
        f"<tr><td>{op}</td>"
        + "".join(
            f"<td>{timing.get(b, {}).get(op, {}).get('mean_us', '')}</td>" for b in data["backends"]
        )
        + "</tr>"
        for op in ops
    )


def render_html(data: dict[str, Any]) -> str:
    """A single static page: no scripts, readable offline and in CI artifacts."""
    head = "".join(f"<th>{html.escape(b)}</th>" for b in data["backends"])
    coverage = "".join(
        f"<tr><td><code>{rule}</code></td><td>{section}</td><td>{html.escape(about)}</td>"
        f"<td>{len(data['coverage'][rule])}</td></tr>"
        for rule, section, about in RULES
    )
    hypothesis = html.escape(json.dumps(data["hypothesis"], indent=1)) or "not run"
    verdict = "all identical" if data["ok"] else "DIFFERENCES FOUND"
    return f"""<!doctype html><meta charset="utf-8"><title>mempill conformance</title>
<style>body{{font-family:sans-serif;margin:2em}}td,th{{padding:2px 8px;border:1px solid #ccc}}
table{{border-collapse:collapse;margin-bottom:2em}}pre{{font-size:11px}}</style>
<h1>mempill conformance: {verdict}</h1>
<p>{data["totals"]["streams"]} streams, {data["totals"]["operations"]} operations on
{", ".join(data["backends"])} — generated {data["generated_at"]}.
Unavailable: {html.escape(json.dumps(data["unavailable"])) or "none"}.</p>
<h2>Streams × backends</h2>
<table><tr><th>stream</th><th>ops</th>{head}<th>ledger digests</th></tr>{_stream_rows(data)}</table>
<h2>Mean time per operation (µs)</h2>
<table><tr><th>operation</th>{head}</tr>{_timing_rows(data)}</table>
<h2>reference rule coverage (streams per rule)</h2>
<table><tr><th>rule</th><th>reference</th><th>what</th><th>streams</th></tr>{coverage}</table>
<h2>Hypothesis state machine</h2><pre>{hypothesis}</pre>
"""


def timing_table(result: CorpusResult) -> str:
    """Mean µs per operation kind, one column per backend (the terminal version)."""
    timing = result.timing()
    ops = sorted({op for by_op in timing.values() for op in by_op})
    rows = [f"{'µs per op':<20}" + "".join(f"{b:>13}" for b in result.backends)]
    for op in ops:
        means = [timing.get(b, {}).get(op, (0, 0.0))[1] for b in result.backends]
        rows.append(f"{op:<20}" + "".join(f"{m:>13.0f}" for m in means))
    return "\n".join(rows)


def report(targets: Sequence[str | Path], backends: Sequence[str], out: Path) -> int:
    result = run_corpus(targets, backends, verbose=False)
    stats_path = out / "hypothesis.json"
    hypothesis = json.loads(stats_path.read_text()) if stats_path.exists() else None
    data = summary(result, hypothesis)
    out.mkdir(parents=True, exist_ok=True)
    (out / "summary.json").write_text(json.dumps(data, indent=1, ensure_ascii=False) + "\n")
    (out / "index.html").write_text(render_html(data), encoding="utf-8")
    print(summary_table(result))
    print(timing_table(result))
    if hypothesis:
        print(
            f"hypothesis ({hypothesis['profile']}, {', '.join(hypothesis['backends'])}): "
            f"{hypothesis['examples']} examples, {hypothesis['steps']} steps, "
            f"{hypothesis['divergences']} divergences"
        )
    print(f"wrote {out / 'index.html'} and {out / 'summary.json'}")
    return 0 if result.ok and not data["uncovered"] else 1
