"""Tables and figures of the durability lab (the notebook and the closing note use them).

The saved trial rows are `data/durability/trials.csv` (curated: `python -m mempill.lab crash
--out data/durability/trials.csv` adds a run); `run_live` runs a small experiment through the
same CLI into a file of its own. The multi-threaded writer's rows (`crash --threads N`,
`build/durability/threads.csv` by default) load the same way; `summary_table` and
`markdown` then group them by threads, agents and opener as well.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mempill.lab.durability.mount import unavailable_reason

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.figure import Figure

ROOT = Path(__file__).resolve().parents[3]
SAVED = ROOT / "data" / "durability" / "trials.csv"
MODES = [
    ("sqlite", "FULL"), ("sqlite", "NORMAL"), ("sqlite", "OFF"),
    ("postgres", "on"), ("postgres", "off"),
]  # fmt: skip
KIND_STYLE = {"process-kill": ("#1f77b4", "process kill"), "power-loss": ("#d62728", "power cut")}
NAMES = {"sqlite": "SQLite", "postgres": "PostgreSQL"}
THREAD_KEYS = ("threads", "agents", "opener")  # the multi-threaded writer's extra keys
THREAD_CHECKS = ("digest_mismatches", "disposition_mismatches", "surviving_claims", "commits")


def load_trials(path: Path = SAVED) -> pd.DataFrame:
    """The tidy trial rows (one per trial) written by the crash CLI."""
    import pandas as pd

    if not path.exists():
        raise FileNotFoundError(
            f"no durability results at {path}; run python -m mempill.lab crash --out {path}"
        )
    return pd.read_csv(path)


def run_live(out: Path, trials: int) -> pd.DataFrame:
    """A small live run of SQLite FULL (process kill, and power cut where FUSE works) with
    its positive control, through the CLI in a child process (it becomes a subreaper)."""
    kinds = "process-kill" if unavailable_reason() else "process-kill,power-loss"
    command = [
        sys.executable, "-m", "mempill.lab", "crash", "--backend", "sqlite", "--kind", kinds,
        "--sync", "FULL", "--trials", str(trials), "--json", "--out", str(out),
    ]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode not in (0, 3):
        raise RuntimeError(f"the crash run failed ({done.returncode}):\n{done.stderr[-2000:]}")
    return load_trials(out)


def summary_table(trials: pd.DataFrame) -> pd.DataFrame:
    """Per configuration: trials, acknowledged, lost, and how many trials went wrong
    (per threads x agents x opener too, for the multi-threaded writer's rows)."""
    threaded = "threads" in trials.columns
    keys = ["backend", "kind", "sync", *(THREAD_KEYS if threaded else ())]
    extra = {k: (k, "sum") for k in THREAD_CHECKS if threaded}
    grouped = trials.assign(
        loss=trials["lost"] > 0,
        integrity_failure=~trials["integrity_ok"].astype(bool),
        gap=~trials["ledger_gap_free"].astype(bool),
    ).groupby(keys, sort=False)
    table = grouped.agg(
        trials=("trial", "size"),
        acked=("acked", "sum"),
        lost=("lost", "sum"),
        trials_with_loss=("loss", "sum"),
        integrity_failures=("integrity_failure", "sum"),
        ledger_gap_failures=("gap", "sum"),
        belief_mismatches=("belief_mismatches", "sum"),
        **extra,
    )
    table["lost_pct_of_acked"] = (100 * table["lost"] / table["acked"]).round(2)
    if threaded:  # claims one surviving commit covered: 1 without group commit
        table["claims_per_commit"] = (table["surviving_claims"] / table["commits"]).round(2)
    order = {mode: i for i, mode in enumerate(MODES)}
    kinds = list(KIND_STYLE)
    ranks = [
        (order.get((b, s), 99), kinds.index(k) if k in kinds else 9, *rest)
        for b, k, s, *rest in table.index
    ]
    return table.iloc[sorted(range(len(table)), key=lambda i: ranks[i])]


def _records(table: pd.DataFrame) -> dict[tuple[str, str, str], dict[str, Any]]:
    """The summary's rows keyed by (backend, kind, sync), in the table's order."""
    records = table.reset_index().to_dict("records")
    return {
        (str(r["backend"]), str(r["kind"]), str(r["sync"])): {str(k): v for k, v in r.items()}
        for r in records
    }


def markdown(table: pd.DataFrame) -> str:
    """The summary as a Markdown table (for the closing note)."""
    keys = [str(k) for k in table.index.names]
    columns = ["trials", "acked", "lost", "trials_with_loss", "integrity_failures"]
    lines = [
        "| " + " | ".join(keys) + " | " + " | ".join(columns) + " |",
        "|" + "---|" * len(keys) + "---:|" * len(columns),
    ]
    for row in table.reset_index().to_dict("records"):
        cells = [str(row[k]) for k in keys] + [str(int(row[c])) for c in columns]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def plot_lost(trials: pd.DataFrame, title: str = "What survives a crash") -> Figure:
    """Two panels per durability mode and backend, one bar per failure kind: lost
    acknowledged claims per trial (mean), and the share of trials that lost any.
    For the single writer's rows (the multi-threaded ones: `summary_table`)."""
    from matplotlib.figure import Figure

    rows = _records(summary_table(trials))
    modes = [m for m in MODES if any((b, s) == m for b, _, s in rows)]
    figure = Figure(figsize=(11, 4.2), layout="constrained")
    left, right = figure.subplots(1, 2)
    width = 0.38
    for offset, (kind, (colour, label)) in zip((-0.19, 0.19), KIND_STYLE.items(), strict=True):
        for x, (backend, sync) in enumerate(modes):
            row = rows.get((backend, kind, sync))
            if row is None:
                continue
            trials_n, lossy = int(row["trials"]), int(row["trials_with_loss"])
            bars = (
                (left, row["lost"] / trials_n, f"{int(row['lost'])}/{int(row['acked'])}"),
                (right, 100 * lossy / trials_n, f"{lossy}/{trials_n}"),
            )
            for ax, value, text in bars:
                ax.bar(x + offset, value, width, color=colour, label=label if x == 0 else None)
                ax.annotate(
                    text, (x + offset, value), xytext=(0, 2), textcoords="offset points",
                    ha="center", va="bottom", fontsize=7, rotation=90,
                )  # fmt: skip
    for ax in (left, right):
        ax.set_xticks(range(len(modes)), [f"{NAMES[b]}\n{s}" for b, s in modes])
        ax.set_xlabel("backend and durability setting (synchronous / synchronous_commit)")
    left.set_ylabel("lost acknowledged claims per trial (mean, claims)")
    left.set_title("Lost acknowledged claims (labels: lost / acknowledged)", fontsize=10)
    right.set_ylabel("trials that lost an acknowledged claim (%)")
    left.set_ylim(0, left.get_ylim()[1] * 1.35)  # room for the vertical labels
    right.set_ylim(0, 135)
    right.set_yticks(range(0, 101, 20))
    right.set_title("Trials with any loss (labels: with loss / trials)", fontsize=10)
    left.legend(title="failure")
    figure.suptitle(title)
    return figure
