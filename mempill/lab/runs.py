"""Run metadata that goes with every experiment's results: without it a number means little.

`describe_run` says which revision ran, when, on what machine, with which seed and
arguments; `record_run` appends it as one JSON line to `runs.jsonl` beside the results,
whose rows carry the same `run_id`.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

#: Experiments write here unless told otherwise (`--out`); the curated sets live in data/.
BUILD = Path("build")


def _first(path: str, prefix: str) -> str | None:
    try:
        for line in Path(path).read_text().splitlines():
            if line.startswith(prefix):
                return line.split(":", 1)[1].strip()
    except OSError:
        return None
    return None


def cpu() -> dict[str, Any]:
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None
    return {
        "model": _first("/proc/cpuinfo", "model name") or platform.processor() or "unknown",
        "logical_cores": os.cpu_count(),
        "usable_cores": usable,
        "memory_total": _first("/proc/meminfo", "MemTotal"),
    }


def machine() -> dict[str, Any]:
    """The host, kernel, CPU and Python a run measured."""
    return {
        "host": platform.node(),
        "kernel": f"{platform.system()} {platform.release()}",
        "cpu": cpu(),
        "python": sys.version.split()[0],
        "load_average": [round(x, 2) for x in os.getloadavg()],
    }


def revision(root: Path | None = None) -> str:
    """The git revision measured (`-dirty` with uncommitted changes), or `unknown`."""
    where = ["-C", str(root)] if root is not None else []
    try:
        head = subprocess.run(
            ["git", *where, "rev-parse", "--short", "HEAD"],
            capture_output=True, text=True, check=True,
        ).stdout.strip()  # fmt: skip
        dirty = subprocess.run(
            ["git", *where, "status", "--porcelain", "--untracked-files=no"],
            capture_output=True, text=True, check=True,
        ).stdout.strip()  # fmt: skip
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return f"{head}-dirty" if dirty else head


def new_run_id() -> str:
    return uuid.uuid4().hex[:12]


def describe_run(run_id: str, command: str, seed: int | None, **details: Any) -> dict[str, Any]:
    """Everything a reader needs to trust or repeat a run."""
    return {
        "run_id": run_id,
        "command": command,
        "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "revision": revision(),
        "seed": seed,
        "machine": machine(),
        **details,
    }


def record_run(results: Path, run: dict[str, Any]) -> Path:
    """Append a run's metadata to `runs.jsonl` in the results' directory."""
    target = results.parent / "runs.jsonl"
    target.parent.mkdir(parents=True, exist_ok=True)
    with open(target, "a", encoding="utf-8") as handle:
        handle.write(json.dumps(run, sort_keys=True) + "\n")
    return target
