"""Recorded contention data on disk: the tables, and where and how they were measured.

A recording directory holds
* `runs.csv` — one row per run: its parameters (config, mode, layout, writers, agents,
  claims per writer), `repeat`, `order` (its place in the shuffled sequence), start time,
  the 1-minute load average when it started, and `elapsed_s` (first writer's start to
  last writer's end); `recording` names the session that measured it;
* `transactions.csv.gz` — one row per write transaction (`TRANSACTION_COLUMNS`): lock wait
  and transaction time in µs as the store measured them, claims committed, and `t_us`,
  when it ended, in µs since its run's start;
* `writers.csv.gz` — one row per writer of each run (`writer_rows`);
* `recordings.jsonl` — one JSON object per recording session: revision, dates, machine,
  load, database versions, command line, seed and grid (`provenance`).
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mempill.lab import runs as lab_runs
from mempill.lab.contention.runner import TRANSACTION_COLUMNS, Recording

if TYPE_CHECKING:
    import pandas as pd

RUNS, TRANSACTIONS, WRITERS, RECORDINGS = (
    "runs.csv", "transactions.csv.gz", "writers.csv.gz", "recordings.jsonl",
)  # fmt: skip
ROOT = Path(__file__).resolve().parents[3]
#: Columns of `runs.csv`, in order.
RUN_COLUMNS = (
    "run_id", "recording", "order", "repeat", "config", "mode", "layout", "writers", "agents",
    "claims_per_writer", "started_at", "start_unix_us", "load_1min", "elapsed_s",
)  # fmt: skip
#: Columns of `writers.csv.gz`, in order.
WRITER_COLUMNS = (
    "run_id", "writer", "agent", "pid", "start_us", "end_us", "claims",
    "claims_by_first_finish", "latency_p50_us", "latency_p99_us", "latency_max_us",
)  # fmt: skip
_PARAMETERS = ("config", "mode", "layout", "writers", "agents", "claims_per_writer", "elapsed_s")


def _git(*args: str) -> str:
    try:
        done = subprocess.run(
            ["git", "-C", str(ROOT), *args], capture_output=True, text=True, check=True
        )
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return done.stdout.strip()


def _filesystem(path: str) -> str:
    """The type of the file system holding `path` (from /proc/mounts), or `unknown`."""
    try:
        mounts = [line.split() for line in Path("/proc/mounts").read_text().splitlines()]
    except OSError:
        return "unknown"
    real = os.path.realpath(path)
    best = max((m for m in mounts if real.startswith(m[1].rstrip("/") + "/") or real == m[1]),
               key=lambda m: len(m[1]), default=None)  # fmt: skip
    return "unknown" if best is None else best[2]


def _postgres(dsn: str | None) -> dict[str, Any]:
    """The PostgreSQL server measured: where it came from, version, durability settings."""
    import psycopg

    from mempill.lab.servers import ENV_DSN, postgres_dsn

    origin = "--dsn" if dsn else ENV_DSN if os.environ.get(ENV_DSN) else "embedded"
    with psycopg.connect(dsn or postgres_dsn()) as conn:
        settings = {
            name: str(conn.execute(f"SHOW {name}").fetchone()[0])  # type: ignore[index]
            for name in ("server_version", "fsync", "synchronous_commit", "shared_buffers")
        }
    return {"server": origin, **settings, "psycopg": psycopg.__version__}


def provenance(
    command: str, seed: int | None, grid: dict[str, Any], note: str, dsn: str | None
) -> dict[str, Any]:
    """Where, when and how a recording is measured (completed by `finish` at its end)."""
    import mempill

    with_postgres = "postgres" in grid.get("backends", ())
    temp = tempfile.gettempdir()
    return {
        "recording": lab_runs.new_run_id(),
        "command": command,
        "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "commit": _git("rev-parse", "HEAD"),
        "uncommitted_changes": _git("status", "--porcelain", "--untracked-files=no") != "",
        "mempill": mempill.__version__,
        "machine": lab_runs.machine(),
        "load_note": note,
        "sqlite": {
            "version": sqlite3.sqlite_version,
            "directory": temp,
            "filesystem": _filesystem(temp),
            "settings": "store defaults",
        },
        "postgres": _postgres(dsn) if with_postgres else None,
        "seed": seed,
        "grid": grid,
    }


def finish(described: dict[str, Any], recording: Recording) -> dict[str, Any]:
    """The provenance with the end time, the closing load average and the run count."""
    return {
        **described,
        "finished_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "load_average_end": [round(x, 2) for x in os.getloadavg()],
        "runs": len(recording.runs),
    }


def _write_csv(frame: pd.DataFrame, path: Path) -> None:
    """CSV, gzip-compressed when the name says so, with a fixed gzip time (same rows, same
    bytes)."""
    compression: Any = {"method": "gzip", "mtime": 0} if path.suffix == ".gz" else None
    frame.to_csv(path, index=False, compression=compression)


def check_target(directory: Path, append: bool) -> bool:
    """Whether `directory` already holds a recording; FileExistsError if so without
    `append` (checked before a recording starts, so no run is wasted)."""
    present = [name for name in (RUNS, TRANSACTIONS, WRITERS) if (directory / name).exists()]
    if present and not append:
        raise FileExistsError(f"{directory} already holds {', '.join(present)}: append to it "
                              "(--append) or choose another directory (--out)")  # fmt: skip
    return bool(present)


def save(recording: Recording, directory: str | os.PathLike[str], *, append: bool = False) -> Path:
    """Write a recording's tables and its provenance (one `recordings.jsonl` line per session
    in `recording.provenance`) into `directory`; with `append`, add to what is there."""
    import pandas as pd

    out = Path(directory)
    present = check_target(out, append)
    out.mkdir(parents=True, exist_ok=True)
    old = load(out) if present else None
    runs = recording.runs
    if "recording" not in runs:  # a sweep saved without a recording session
        runs = runs.assign(recording="")
    tables = {
        RUNS: runs[list(RUN_COLUMNS)],
        TRANSACTIONS: recording.transactions[list(TRANSACTION_COLUMNS)],
        WRITERS: recording.writers[list(WRITER_COLUMNS)],
    }
    if old is not None:
        before = {RUNS: old.runs, TRANSACTIONS: old.transactions, WRITERS: old.writers}
        tables = {name: pd.concat([before[name][list(frame.columns)], frame], ignore_index=True)
                  for name, frame in tables.items()}  # fmt: skip
    for name, frame in tables.items():
        _write_csv(frame, out / name)
    with open(out / RECORDINGS, "a", encoding="utf-8") as handle:
        for described in recording.provenance:
            handle.write(json.dumps(described, sort_keys=True) + "\n")
    return out


def load(directory: str | os.PathLike[str]) -> Recording:
    """A saved recording, its transactions carrying their run's parameters (categoricals),
    checked: every run's transactions commit exactly writers x claims per writer claims."""
    import pandas as pd

    where = Path(directory)
    missing = [n for n in (RUNS, TRANSACTIONS, WRITERS) if not (where / n).is_file()]
    if missing:
        raise FileNotFoundError(f"{where}: no {', '.join(missing)} (record with "
                                "`python -m mempill.lab contention record --out DIR`)")  # fmt: skip
    runs = pd.read_csv(where / RUNS)
    transactions = pd.read_csv(where / TRANSACTIONS, dtype={"writer": "Int64"})
    writers = pd.read_csv(where / WRITERS)
    parameters = runs[["run_id", *_PARAMETERS]].copy()
    for key in ("config", "mode", "layout"):
        parameters[key] = parameters[key].astype("category")
    transactions = transactions.merge(parameters, on="run_id", how="left", validate="m:1")
    committed = transactions.groupby("run_id")["claims"].sum()
    expected = runs.set_index("run_id")["writers"] * runs.set_index("run_id")["claims_per_writer"]
    wrong = expected[committed.reindex(expected.index, fill_value=0) != expected]
    if len(wrong):
        raise ValueError(f"{where}: runs {list(wrong.index)[:5]} do not add up to their claims")
    described = []
    if (where / RECORDINGS).is_file():
        lines = (where / RECORDINGS).read_text(encoding="utf-8").splitlines()
        described = [json.loads(line) for line in lines if line.strip()]
    return Recording(runs, transactions, writers, described)
