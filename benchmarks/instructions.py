"""Instructions per operation, counted by valgrind's callgrind: a measure the machine's load
does not move.

    python -m benchmarks instructions [--work ingest ingest_many replay] [--count N]

Seconds on a shared machine vary by tens of percent from one run to the next; the number of
instructions a run executes does not (the same program, inputs and environment give the
same count, whatever else the machine is doing). Each workload is run twice under
`valgrind --tool=callgrind`, with a fixed warm-up and then `count` units or none, in a
fresh interpreter (`PYTHONHASHSEED=0`), and the difference is divided by `count`: the
start-up, imports and warm-up cancel out. The sqlite3 share is the inclusive count of the
driver's statement execution, row iteration and in-memory copies (`_pysqlite_query_execute`,
`pysqlite_cursor_iternext`, `pysqlite_connection_backup`) — everything else is the
interpreter running the engine's Python.

Workloads: `ingest` (one fresh-line claim per `ingest` on `open_default_in_memory()`, the
engine-only benchmark's unit), `ingest_many` (calls of 16 fresh-line claims, per claim: a
group's unit of work) and `replay` (the conformance corpus on `sqlite-mem`, per operation).
Instructions are not time: a cache miss or a system call costs more than its count says.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import mempill
from benchmarks.replaycost import loaded_corpus, replay_round
from benchmarks.streams import fresh

WORKLOADS = ("ingest", "ingest_many", "replay")
#: units run before the counted ones, in both runs of a workload
WARMUP = {"ingest": 300, "ingest_many": 20, "replay": 1}
DEFAULT_COUNT = {"ingest": 1_000, "ingest_many": 40, "replay": 2}
#: claims per ingest_many call
GROUP = 16
SQLITE_FUNCTIONS = (
    "_pysqlite_query_execute",
    "pysqlite_cursor_iternext",
    "pysqlite_connection_backup",
)
ROOT = Path(__file__).resolve().parents[1]


def work(name: str, units: int, warmup: int) -> None:
    """Run `warmup` units and then `units` more of workload `name` (in the counted child)."""
    total = warmup + units
    if name == "replay":
        logging.getLogger("mempill").setLevel(logging.ERROR)
        loaded = loaded_corpus()
        for _ in range(total):
            replay_round(loaded)
        return
    engine = mempill.open_default_in_memory()
    try:
        for unit in range(total):
            if name == "ingest":
                engine.ingest(fresh("instructions", "c", unit))
            else:
                engine.ingest_many([fresh("instructions", f"c{unit}-", i) for i in range(GROUP)])
    finally:
        engine.close()


def per_unit(name: str) -> int:
    """What one unit of a workload is made of: claims, or a replay round's operations."""
    if name == "ingest":
        return 1
    if name == "ingest_many":
        return GROUP
    return sum(len(stream.ops) for stream, _ in loaded_corpus())


def _callgrind(name: str, units: int, warmup: int, folder: Path) -> tuple[int, int]:
    """(all instructions, those inside the sqlite3 calls) of one child run."""
    out = folder / f"{name}-{units}.out"
    command = [
        "valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", sys.executable,
        "-m", "benchmarks.instructions", "--child", name, str(units), str(warmup),
    ]  # fmt: skip
    env = {**os.environ, "PYTHONHASHSEED": "0", "PYTHONPATH": str(ROOT)}
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"callgrind run of {name} failed:\n{done.stderr[-2000:]}")
    annotated = subprocess.run(
        ["callgrind_annotate", "--inclusive=yes", "--threshold=100", str(out)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return _total(annotated), _inside(annotated, SQLITE_FUNCTIONS)


def _count(text: str) -> int:
    return int(text.replace(",", ""))


def _total(annotated: str) -> int:
    found = re.search(r"^\s*([\d,]+) \(100\.0%\)\s+PROGRAM TOTALS", annotated, re.M)
    if found is None:
        raise RuntimeError("callgrind_annotate printed no program total")
    return _count(found.group(1))


def _inside(annotated: str, functions: tuple[str, ...]) -> int:
    """The inclusive counts of `functions` (each function's first line: its own file)."""
    total = 0
    for function in functions:
        pattern = rf"^\s*([\d,]+) \(\s*[\d.]+%\)\s+\S*:{re.escape(function)} \["
        found = re.search(pattern, annotated, re.M)
        total += 0 if found is None else _count(found.group(1))
    return total


def measure(name: str, count: int, folder: Path, warmup: int | None = None) -> dict[str, Any]:
    """Instructions per unit of `name`: (run with `count` units − run with none) ÷ count,
    both after the same warm-up (default `WARMUP[name]`)."""
    warm = WARMUP[name] if warmup is None else warmup
    base_all, base_sql = _callgrind(name, 0, warm, folder)
    more_all, more_sql = _callgrind(name, count, warm, folder)
    units = count * per_unit(name)
    every = (more_all - base_all) / units
    sql = (more_sql - base_sql) / units
    return {
        "workload": name,
        "unit": "operation" if name == "replay" else "claim",
        "units": units,
        "instructions": round(every),
        "in_sqlite3_calls": round(sql),
        "sqlite3_share": sql / every if every else None,
    }


def available() -> str | None:
    """Why callgrind cannot run here, or None."""
    for tool in ("valgrind", "callgrind_annotate"):
        if shutil.which(tool) is None:
            return f"{tool} is not installed (Debian: apt-get install valgrind)"
    return None


def run(names: list[str], count: int | None, out: Path | None) -> list[dict[str, Any]]:
    missing = available()
    if missing:
        raise RuntimeError(missing)
    found = []
    with tempfile.TemporaryDirectory(prefix="mempill-callgrind-") as folder:
        for name in names:
            print(f"callgrind: {name} …", file=sys.stderr, flush=True)
            found.append(measure(name, count or DEFAULT_COUNT[name], Path(folder)))
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(found, indent=2) + "\n", encoding="utf-8")
    return found


def table(found: list[dict[str, Any]]) -> str:
    lines = ["workload      per          instructions   in sqlite3 calls   share"]
    for row in found:
        share = row["sqlite3_share"]
        lines.append(
            f"{row['workload']:<13} {row['unit']:<12} {row['instructions']:>12,} "
            f"{row['in_sqlite3_calls']:>18,}   {'—' if share is None else f'{share:.1%}'}"
        )
    return "\n".join(lines)


if __name__ == "__main__":  # the counted child: python -m benchmarks.instructions --child …
    if sys.argv[1:2] != ["--child"] or len(sys.argv) != 5 or sys.argv[2] not in WORKLOADS:
        sys.exit("usage: python -m benchmarks instructions (this module's entry is internal)")
    work(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))
