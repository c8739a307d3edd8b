"""Recording expectations from one backend, with an outline to review them by, and the
rule-coverage command (which also regenerates the README table)."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from conformance.coverage import RULES, coverage, markdown, observe
from conformance.expected import expected_path, read_expected, write_expected
from conformance.replay import first_difference, run_on, stream_paths
from mempill.lab.backends import supports
from mempill.streams import read_stream

BEGIN, END = "<!-- coverage:begin -->", "<!-- coverage:end -->"


def outline(op: Mapping[str, Any], record: Mapping[str, Any]) -> str:
    """One line per operation: what it returned, in the words of the reference."""
    name = op["op"]
    routes = [
        f"{e['event_kind']}/{e['disposition']}[{e['rationale'].get('route')}:"
        f"{e['rationale'].get('reason')}]"
        for e in record["ledger"]
    ]
    ledger = f"  ledger {' '.join(routes)}" if routes else ""
    if "error" in record:
        unexpected = " (UNEXPECTED)" if "unexpected" in record else ""
        return f"{name}: raises {record['error']}{unexpected}{ledger}"
    result = record["result"]
    if name in ("ingest", "ingest_many"):
        receipts = result if name == "ingest_many" else [result]
        text = ", ".join(f"{r['disposition']}/{r['reason']}" for r in receipts)
    elif name in ("query_memory", "query_subject"):
        projections = result if name == "query_subject" else [result]
        text = "; ".join(_belief(p) for p in projections)
    elif name == "query_history":
        text = ", ".join(f"{e['value']!r}:{e['status']}" for e in result["entries"])
    elif isinstance(result, dict) and "disposition" in result:
        no_op = " (no-op)" if result.get("no_op") else ""
        text = f"{result['disposition']}/{result.get('reason')}{no_op}"
    elif name == "erase":
        lines = ", ".join(f"{s}/{p}" for s, p in result["lines"]) or "nothing"
        text = f"erased {lines}: {result['claims']} claims, {result['entries']} entries"
    elif name == "query_timeline":
        text = "; ".join(
            f"[{g['valid_from']}, {g['valid_until']}) {g['status']} {g['value']!r}"
            for g in result["segments"]
        )
    elif name == "search":
        text = (
            ", ".join(f"{h['subject']}/{h['predicate']}:{h['score']:g}" for h in result["hits"])
            or "no hit"
        )
    elif name in ("list_subjects", "list_predicates"):
        rows = result["subjects"] if name == "list_subjects" else result
        key = "subject" if name == "list_subjects" else "predicate"
        text = ", ".join(f"{r[key]}({r['believed']}/{r['lines']})" for r in rows)
    elif name == "query_changes":
        text = ", ".join(
            f"{c['subject']}/{c['predicate']} {c['before']['status']}->{c['after']['status']}"
            for c in result["changes"]
        )
    elif isinstance(result, dict) and "lines" in result:
        text = ", ".join(f"{x['subject']}/{x['predicate']}:{x['status']}" for x in result["lines"])
        text += f" escalations={result['escalations']}"
    else:
        text = repr(result)[:80]
    return f"{name}: {text}{ledger}"


def _belief(p: Mapping[str, Any]) -> str:
    values = [s["value"] for s in p["alternatives"] or p["members"] or [p["primary"]] if s]
    extra = f" reason={p['reason']}" if p["reason"] else ""
    markers = f" markers={','.join(p['markers'])}" if p["markers"] else ""
    currency = f" {p['currency']}" if p["currency"] else ""
    inferred = f" inferred={[s['value'] for s in p['inferred']]}" if p["inferred"] else ""
    pending = f" pending={[s['value'] for s in p['pending']]}" if p["pending"] else ""
    return (
        f"{p['subject']}/{p['predicate']} {p['status']} {values}{extra}{markers}{currency}"
        f"{inferred}{pending}"
    )


def record(targets: Sequence[str | Path], backend: str, *, force: bool) -> int:
    """Write `<name>.expected.jsonl` for each stream (only missing ones unless `force`).

    A run that breaks one of the stream's declared expectations is never written: the
    declarations, not the engine, say what must happen. Over an existing recording the
    first changed operation is shown, for review.
    """
    failures = 0
    for path in stream_paths(targets):
        target = expected_path(path)
        if target.exists() and not force:
            print(f"{path.stem}: already recorded in {target.name} (--force records it again)")
            continue
        stream = read_stream(path)
        chosen = backend if supports(backend, stream.header.topology) else "sqlite-file"
        run = run_on(stream, chosen)
        if not run.ok or run.broken:
            problems = [run.error or run.skipped] if not run.ok else run.broken
            print(f"{path.stem}: NOT recorded: the run breaks what the stream declares:")
            print("".join(f"  {p}\n" for p in problems[:10]), end="")
            failures += 1
            continue
        old = read_expected(target)
        if old is not None:
            change = first_difference(stream, "recorded", old, chosen, run.lines)
            if change is None:
                print(f"{path.stem}: unchanged")
                continue
            print(f"{path.stem}: CHANGED — review before committing; {change.render()}")
        write_expected(target, run.lines)
        print(f"{path.stem}: recorded {len(run.records)} operations from {chosen}")
        for op, rec in zip(stream.ops, run.records, strict=True):
            print(f"  {rec.index:>3} {outline(op, rec.to_json())}")
    return 1 if failures else 0


def observed_rules(targets: Sequence[str | Path], backend: str) -> dict[str, set[str]]:
    observed: dict[str, set[str]] = {}
    for path in stream_paths(targets):
        stream = read_stream(path)
        chosen = backend if supports(backend, stream.header.topology) else "sqlite-file"
        run = run_on(stream, chosen)
        observed[stream.name] = observe(
            stream.header, stream.ops, [r.to_json() for r in run.records]
        )
    return observed


def update_readme(readme: Path, table: str) -> bool:
    """Replace the generated block of the README; True when it changed."""
    text = readme.read_text(encoding="utf-8")
    block = f"{BEGIN}\n{table}\n{END}"
    updated = re.sub(re.escape(BEGIN) + r".*?" + re.escape(END), lambda _: block, text, flags=re.S)
    if updated != text:
        readme.write_text(updated, encoding="utf-8")
    return updated != text


def readme_table(readme: Path) -> str | None:
    found = re.search(re.escape(BEGIN) + r"\n(.*?)\n" + re.escape(END), readme.read_text(), re.S)
    return None if found is None else found.group(1)


def show_coverage(targets: Sequence[str | Path], backend: str, readme: Path | None) -> int:
    """Print which rules each stream exercises; exit 1 when a catalogue rule has none."""
    table = coverage(observed_rules(targets, backend))
    missing = [rule for rule, streams in table.items() if not streams]
    for rule, section, _ in RULES:
        print(f"{rule:<34} {section:<14} {len(table[rule]):>3} streams")
    if readme is not None:
        changed = update_readme(readme, markdown(table))
        print(f"{readme}: {'updated' if changed else 'already up to date'}")
    print(f"{len(RULES) - len(missing)}/{len(RULES)} rules covered")
    if missing:
        print("uncovered: " + ", ".join(missing))
    return 1 if missing else 0
