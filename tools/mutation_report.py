"""Score a finished `mutmut run` against the equivalent mutants argued in docs/testing.md.

    python tools/mutation_report.py            (after `mutmut run`; `nox -s mutation` does both)

A mutant counts as killed when a test failed or it timed out; a survivor (or a mutant no
test reaches) must be listed in docs/testing.md's table of equivalent mutants, each with its
argument. The score is killed ÷ (all − equivalent). Exit 1 when a survivor is not listed or
the score is below the target; the report with every survivor's diff goes to build/mutation/.
"""

from __future__ import annotations

import re
import subprocess
import sys
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TESTING = ROOT / "docs" / "testing.md"
OUT = ROOT / "build" / "mutation"
TARGET = 0.90
KILLED = {"killed", "timeout"}
BEGIN, END = "<!-- equivalent:begin -->", "<!-- equivalent:end -->"


def results() -> dict[str, str]:
    """mutant name -> status, from `mutmut results --all true`."""
    done = subprocess.run(
        [sys.executable, "-m", "mutmut", "results", "--all", "true"],
        capture_output=True,
        text=True,
        check=True,
    )
    found = {}
    for line in done.stdout.splitlines():
        name, sep, status = line.strip().rpartition(": ")
        if sep and "__mutmut_" in name:
            found[name] = status
    return found


def equivalent() -> dict[str, str]:
    """mutant name -> the argument, from the table between the markers in docs/testing.md."""
    text = TESTING.read_text(encoding="utf-8")
    block = text.split(BEGIN, 1)[1].split(END, 1)[0] if BEGIN in text else ""
    rows = re.findall(r"^\|\s*`([^`]+)`\s*\|\s*(.+?)\s*\|$", block, re.M)
    return dict(rows)


def diff(name: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "mutmut", "show", name], capture_output=True, text=True, check=False
    )
    return done.stdout.strip()


def main() -> int:
    found = results()
    if not found:
        print("no mutmut results: run `mutmut run` first", file=sys.stderr)
        return 2
    argued = equivalent()
    counts = Counter(found.values())
    survivors = sorted(n for n, s in found.items() if s not in KILLED and s != "not checked")
    pending = sorted(n for n, s in found.items() if s == "not checked")
    unlisted = [n for n in survivors if n not in argued]
    stale = sorted(n for n in argued if found.get(n) in KILLED)
    considered = len(found) - len(pending) - sum(1 for n in survivors if n in argued)
    killed = sum(counts[s] for s in KILLED)
    score = killed / considered if considered else 0.0
    OUT.mkdir(parents=True, exist_ok=True)
    lines = [
        "# Mutation testing report",
        "",
        f"mutants: {len(found)}; " + ", ".join(f"{s}: {n}" for s, n in sorted(counts.items())),
        f"argued equivalent: {len(argued)}; score: {killed}/{considered} = {score:.1%} "
        f"(target {TARGET:.0%})",
        "",
    ]
    for name in unlisted:
        lines += [f"## {name} ({found[name]}, not argued)", "", "```diff", diff(name), "```", ""]
    (OUT / "report.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    print("\n".join(lines[:4]))
    if pending:
        print(f"{len(pending)} mutants were not checked: finish `mutmut run` first")
    if stale:
        print(f"listed as equivalent but now killed (remove them): {', '.join(stale)}")
    if unlisted:
        print(f"{len(unlisted)} survivors are neither killed nor argued equivalent; see {OUT}")
        for name in unlisted[:40]:
            print(f"  {name}: {found[name]}")
    ok = not unlisted and not pending and score >= TARGET
    print("verdict:", "met" if ok else "NOT MET")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
