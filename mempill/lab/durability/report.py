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

from mempill.lab.durability.harness import KINDS, SAFE
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
NAMES = {"sqlite": "SQLite", "postgres": "PostgreSQL"}
THREAD_KEYS = ("threads", "agents", "opener")  # the multi-threaded writer's extra keys
THREAD_CHECKS = ("digest_mismatches", "disposition_mismatches", "surviving_claims", "commits")


#: Columns a row written before a column existed lacks, with the value it means there.
DEFAULTS: dict[str, str | int] = {"variant": "", "write_errors": 0, "cut": ""}
Z95 = 1.959963984540054  # the two-sided 95 % normal quantile


def load_trials(*paths: Path) -> pd.DataFrame:
    """The tidy trial rows (one per trial) written by the crash CLI, from one or more CSVs
    (default: the curated set); older rows get the columns added since (`DEFAULTS`)."""
    import pandas as pd

    chosen = paths or (SAVED,)
    missing = [p for p in chosen if not p.exists()]
    if missing:
        raise FileNotFoundError(
            f"no durability results at {missing[0]}; run python -m mempill.lab crash "
            f"--out {missing[0]}"
        )
    frames = [pd.read_csv(p, keep_default_na=False, na_values=[]) for p in chosen]
    return with_defaults(pd.concat(frames, ignore_index=True))


def with_defaults(trials: pd.DataFrame) -> pd.DataFrame:
    """The rows with every column added since they were written (`DEFAULTS`) and a role."""
    trials = trials.copy()
    for column, value in DEFAULTS.items():
        if column not in trials.columns:
            trials[column] = value
    if "role" not in trials.columns:
        trials["role"] = "measured"
    trials["variant"] = trials["variant"].fillna("").astype(str)
    return trials


def wilson(successes: int, trials: int, z: float = Z95) -> tuple[float, float]:
    """The Wilson score interval of a binomial proportion (95 % by default): with 0 losses
    in n trials its upper end is what the data still allows (about 3.8/n for large n)."""
    if trials <= 0:
        return (0.0, 1.0)
    if successes == 0:  # exact at the edges (the formula leaves rounding dust)
        return (0.0, z * z / (trials + z * z))
    if successes == trials:
        return (trials / (trials + z * z), 1.0)
    p = successes / trials
    denominator = 1 + z * z / trials
    centre = (p + z * z / (2 * trials)) / denominator
    half = z * ((p * (1 - p) / trials + z * z / (4 * trials * trials)) ** 0.5) / denominator
    return (max(0.0, centre - half), min(1.0, centre + half))


def provenance(path: Path = SAVED) -> pd.DataFrame:
    """The runs behind a trial CSV (its `runs.jsonl`): revision, date, machine, command,
    seed, and how many of the CSV's rows each run wrote."""
    import json

    import pandas as pd

    runs_file = path.parent / "runs.jsonl"
    runs = []
    if runs_file.exists():
        for line in runs_file.read_text(encoding="utf-8").splitlines():
            if line.strip():
                run = json.loads(line)
                machine = run.get("machine", {})
                cpu = machine.get("cpu", {}) if isinstance(machine, dict) else {}
                runs.append({
                    "run_id": run.get("run_id"),
                    "started_at": run.get("started_at"),
                    "revision": str(run.get("revision", ""))[:12],
                    "command": run.get("command"),
                    "seed": run.get("seed"),
                    "cpu": cpu.get("model") if isinstance(cpu, dict) else None,
                    "cores": cpu.get("usable_cores") if isinstance(cpu, dict) else None,
                })  # fmt: skip
    table = pd.DataFrame(runs, columns=["run_id", "started_at", "revision", "command", "seed",
                                        "cpu", "cores"])  # fmt: skip
    csvs = [p for p in (path, path.parent / "threads.csv") if p.exists()]
    if csvs:  # the threaded writer's rows sit beside the single writer's
        ids = pd.concat([pd.read_csv(p, usecols=["run_id"])["run_id"] for p in csvs])
        table["rows"] = table["run_id"].map(ids.value_counts()).fillna(0).astype(int)
    return table


def live_kinds(wanted: str = "all") -> tuple[list[str], str | None]:
    """The crash kinds a live run can use here, and why some were left out (FUSE)."""
    chosen = list(KINDS) if wanted == "all" else [k.strip() for k in wanted.split(",")]
    unknown = [k for k in chosen if k not in KINDS]
    if unknown:
        raise ValueError(f"unknown crash kinds {unknown}; choose from {', '.join(KINDS)}")
    reason = unavailable_reason()
    if reason is None:
        return chosen, None
    kept = [k for k in chosen if k == "process-kill"]
    return kept, f"{', '.join(k for k in chosen if k not in kept)} left out: {reason}"


def run_live(out: Path, trials: int, kinds: str = "all", control_trials: int = 6) -> pd.DataFrame:
    """A small live run of SQLite FULL under `kinds` (those FUSE allows here; `live_kinds`
    says which and why) with each kind's positive control, through the CLI in a child
    process (it becomes a subreaper). Controls get at least 6 trials: one can be inert."""
    chosen, _ = live_kinds(kinds)
    command = [
        sys.executable, "-m", "mempill.lab", "crash", "--backend", "sqlite",
        "--kind", ",".join(chosen), "--sync", "FULL", "--trials", str(trials),
        "--control-trials", str(max(trials, control_trials)), "--json", "--out", str(out),
    ]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode not in (0, 3):
        raise RuntimeError(f"the crash run failed ({done.returncode}):\n{done.stderr[-2000:]}")
    return load_trials(out)


def run_states(claims: int = 4, max_states: int = 40, seed: int = 0) -> pd.DataFrame:
    """A small crash-state enumeration (`python -m mempill.lab crash-states --model all`)
    through the CLI: one row per model and role with states checked and failed. Needs
    strace; raises RuntimeError saying why when the command cannot run."""
    import json

    import pandas as pd

    command = [
        sys.executable, "-m", "mempill.lab", "crash-states", "--backend", "sqlite",
        "--model", "all", "--claims", str(claims), "--max-states", str(max_states),
        "--seed", str(seed), "--json",
    ]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode not in (0, 1, 3):
        raise RuntimeError(f"crash-states could not run ({done.returncode}): {done.stderr[-800:]}")
    rows = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    keys = ["model", "role", "sync", "claims", "crash_points", "states_checked",
            "states_failed", "exhaustive"]  # fmt: skip
    return pd.DataFrame([{k: r.get(k) for k in keys} for r in rows], columns=keys)


def summary_table(trials: pd.DataFrame) -> pd.DataFrame:
    """Per configuration (backend, kind, sync, variant, role; threads x agents x opener for
    the multi-threaded writer's rows): trials, acknowledged and lost claims, how many trials
    went wrong, and the 95 % Wilson interval of the share of trials that lost anything."""
    threaded = "threads" in trials.columns
    trials = with_defaults(trials)
    keys = ["backend", "kind", "sync", "variant", "role", *(THREAD_KEYS if threaded else ())]
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
        write_errors=("write_errors", "sum"),
        **extra,
    )
    table["lost_pct_of_acked"] = (100 * table["lost"] / table["acked"]).round(3)
    bounds = [wilson(int(k), int(n)) for k, n in zip(table["trials_with_loss"], table["trials"],
                                                   strict=True)]  # fmt: skip
    table["loss_rate_ci95_low_pct"] = [round(100 * lo, 3) for lo, _ in bounds]
    table["loss_rate_ci95_high_pct"] = [round(100 * hi, 3) for _, hi in bounds]
    if threaded:  # claims one surviving commit covered: 1 without group commit
        table["claims_per_commit"] = (table["surviving_claims"] / table["commits"]).round(2)
    order = {mode: i for i, mode in enumerate(MODES)}
    ranks = [
        (
            KINDS.index(k) if k in KINDS else 99, order.get((b, s), 99), role != "measured",
            str(v), *map(str, rest),
        )
        for b, k, s, v, role, *rest in table.index
    ]  # fmt: skip
    return table.iloc[sorted(range(len(table)), key=lambda i: ranks[i])]


def markdown(table: pd.DataFrame) -> str:
    """The summary as a Markdown table (for the closing note)."""
    keys = [str(k) for k in table.index.names]
    columns = ["trials", "acked", "lost", "trials_with_loss", "integrity_failures"]
    lines = [
        "| " + " | ".join(keys) + " | " + " | ".join(columns) + " | trials with loss, 95 % CI |",
        "|" + "---|" * len(keys) + "---:|" * (len(columns) + 1),
    ]
    for row in table.reset_index().to_dict("records"):
        cells = [str(row[k]) or "-" for k in keys] + [str(int(row[c])) for c in columns]
        interval = f"{row['loss_rate_ci95_low_pct']:.2f}–{row['loss_rate_ci95_high_pct']:.2f} %"
        lines.append("| " + " | ".join(cells) + f" | {interval} |")
    return "\n".join(lines)


def _label(row: dict[str, Any]) -> str:
    name = f"{NAMES.get(str(row['backend']), row['backend'])} {row['kind']} {row['sync']}"
    return name + (f" {row['variant']}" if row["variant"] else "")


ROLE_STYLE = {
    "safe": ("#2ca02c", "safe setting (must lose nothing)"),
    "unsafe": ("#ff7f0e", "unsafe setting (may lose)"),
    "control": ("#d62728", "positive control (must lose)"),
}


def _role(row: dict[str, Any]) -> str:
    if row["role"] == "control":
        return "control"
    return (
        "safe" if SAFE.get(str(row["backend"])) == row["sync"] and not row["variant"] else "unsafe"
    )


def plot_lost(
    trials: pd.DataFrame, title: str = "What survives a crash", *, source: str = ""
) -> Figure:
    """Per configuration (one row each, grouped by crash model): the share of trials that
    lost an acknowledged claim with its 95 % Wilson interval, and lost claims as a share
    of acknowledged ones. Colour says what the configuration must do (`ROLE_STYLE`)."""
    from matplotlib.figure import Figure
    from matplotlib.patches import Patch

    rows = [
        {str(k): v for k, v in r.items()}
        for r in summary_table(trials).reset_index().to_dict("records")
    ]
    height = 1.6 + 0.34 * len(rows)
    figure = Figure(figsize=(12, height), layout="constrained")
    left, right = figure.subplots(1, 2, sharey=True, width_ratios=(3, 2))
    for y, row in enumerate(rows):
        colour = ROLE_STYLE[_role(row)][0]
        n, k = int(row["trials"]), int(row["trials_with_loss"])
        rate = 100 * k / n if n else 0.0
        low, high = row["loss_rate_ci95_low_pct"], row["loss_rate_ci95_high_pct"]
        left.errorbar(rate, y, xerr=[[rate - low], [high - rate]], fmt="o", color=colour,
                      capsize=3)  # fmt: skip
        broken = int(row["integrity_failures"])  # unsound stores are shown, not just losses
        left.annotate(
            f"{k}/{n}" + (f"  ✗ {broken} integrity failure(s)" if broken else ""),
            (high, y), xytext=(4, -3), textcoords="offset points", fontsize=7,
            color="black" if not broken else "#8c0000", fontweight="bold" if broken else None,
        )  # fmt: skip
        share = 100 * row["lost"] / row["acked"] if row["acked"] else 0.0
        right.barh(y, share, color=colour, height=0.6)
        right.annotate(f"{int(row['lost'])}/{int(row['acked'])}", (share, y), xytext=(3, -3),
                       textcoords="offset points", fontsize=7)  # fmt: skip
    left.set_yticks(range(len(rows)), [_label(r) for r in rows], fontsize=8)
    left.invert_yaxis()
    any_broken = any(int(r["integrity_failures"]) for r in rows)
    left.set_xlim(-2, 175 if any_broken else 118)  # room for the labels right of the dots
    left.set_xticks(range(0, 101, 20))
    left.set_xlabel("trials that lost an acknowledged claim (%, dot; bar: 95 % Wilson interval)")
    left.set_title(
        "Trials with any loss (labels: with loss / trials; ✗ stores that failed the integrity "
        "check)",
        fontsize=9,
    )
    right.set_xlim(0, max([100 * r["lost"] / r["acked"] for r in rows if r["acked"]] + [1]) * 1.3)
    right.set_xlabel("lost acknowledged claims (% of acknowledged; linear scale)")
    right.set_title("Lost / acknowledged claims", fontsize=10)
    drawn = {_role(r) for r in rows}  # the legend names only what is drawn
    handles = [Patch(color=c, label=text) for r, (c, text) in ROLE_STYLE.items() if r in drawn]
    figure.legend(handles=handles, loc="outside lower center", ncols=3, fontsize=8)
    figure.suptitle(title + (f" — {source}" if source else ""))
    return figure
