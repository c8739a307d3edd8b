"""Reduce contention recordings: a row per run, then medians and ranges over repeats.

A configuration is (config, mode, layout, claims per writer); a cell is a configuration at
one number of writers, measured `repeats` times. `per_run` reduces each run to its
lock-wait quantiles, throughput and fairness; `over_repeats` gives each cell's median over
its runs with the range (lowest, highest run) beside it: with five runs on a shared
machine, the range is the honest spread.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

from mempill.lab.contention.runner import Recording

if TYPE_CHECKING:
    import pandas as pd

#: What tells configurations apart: lines or panels of a figure must never mix these.
CONFIGURATION = ("config", "mode", "layout", "claims_per_writer")
GROUP = ("config", "mode", "layout", "writers")
CELL = (*CONFIGURATION[:3], "writers", "claims_per_writer")
WAITED_US = 100  # a write "waited" when its lock wait exceeded this
#: The size of the recorded data set, below which a measurement is a smoke test, not a verdict:
#: claims per writer, runs per cell (a recording takes about 20 minutes on a loaded 2-core VM).
VERDICT_CLAIMS = 100
VERDICT_RUNS = 5
#: Per-run measures `over_repeats` summarizes, with what each means.
METRICS = {
    "writes_per_s": "committed claims per second of wall-clock time",
    "wait_p50_ms": "median lock wait per write transaction (ms)",
    "wait_p99_ms": "99th percentile of lock wait (ms)",
    "wait_max_ms": "longest lock wait (ms)",
    "waited_share": f"share of transactions that waited more than {WAITED_US} µs",
    "txn_p50_ms": "median transaction time, lock held, before COMMIT (ms)",
    "latency_p50_ms": "median over writers of each one's median ingest latency, as seen (ms)",
    "latency_p99_ms": "worst writer's 99th percentile ingest latency, as the caller saw it (ms)",
    "fairness": "Jain's index of claims committed by the first writer's finish (1 = fair)",
}


def jain(values: Iterable[float]) -> float:
    """Jain's fairness index (Σx)² / (n·Σx²): 1 when every writer got the same share, 1/n
    when one got everything; NaN for no values or all zeros."""
    xs = [float(x) for x in values]
    total = sum(x * x for x in xs)
    return sum(xs) ** 2 / (len(xs) * total) if xs and total else float("nan")


def lock_wait_percentiles(
    frame: pd.DataFrame,
    by: Sequence[str] = GROUP,
    quantiles: Sequence[float] = (0.5, 0.9, 0.99),
    waited_us: int = WAITED_US,
) -> pd.DataFrame:
    """Per group, the group's transactions pooled: count, share that waited more than
    `waited_us` µs, lock-wait quantiles and maximum in ms (`wait_p50_ms`, …)."""
    groups = frame.groupby(list(by), observed=True, sort=True)["lock_wait_us"]
    out = groups.agg(transactions="count", waited_share=lambda s: float((s > waited_us).mean()))
    for q in quantiles:
        out[f"wait_p{round(q * 100):d}_ms"] = groups.quantile(q) / 1000.0
    out["wait_max_ms"] = groups.max() / 1000.0
    return out.reset_index()


def per_run(recording: Recording) -> pd.DataFrame:
    """One row per run: its parameters, claims and throughput, lock-wait quantiles, median
    transaction time, ingest latency (the writers' median p50, the worst writer's p99),
    fairness (Jain's index) and load."""
    transactions = recording.transactions
    waits = lock_wait_percentiles(transactions, by=("run_id",))
    txn = transactions.groupby("run_id", observed=True)["txn_us"].median() / 1000.0
    writes = transactions.groupby("run_id", observed=True)["claims"].sum()
    by_writer = recording.writers.groupby("run_id", observed=True)
    fair = by_writer["claims_by_first_finish"].agg(jain)
    typical = by_writer["latency_p50_us"].median() / 1000.0
    worst = by_writer["latency_p99_us"].max() / 1000.0
    runs = recording.runs.set_index("run_id")
    out = runs.assign(
        writes=writes, writes_per_s=writes / runs["elapsed_s"], txn_p50_ms=txn,
        latency_p50_ms=typical, latency_p99_ms=worst, fairness=fair,
    )  # fmt: skip
    return out.reset_index().merge(waits, on="run_id")


def over_repeats(runs: pd.DataFrame, by: Sequence[str] = CELL) -> pd.DataFrame:
    """Per cell: `runs` (how many), and for each of `METRICS` its median over the cell's
    runs with the range beside it (`<metric>_lo`, `<metric>_hi`: lowest and highest run)."""
    groups = runs.groupby(list(by), observed=True, sort=True)
    out = groups.size().rename("runs").to_frame()
    for metric in METRICS:
        column = groups[metric]
        out[metric] = column.median()
        out[f"{metric}_lo"] = column.min()
        out[f"{metric}_hi"] = column.max()
    return out.reset_index()


def summary(recording: Recording, by: Sequence[str] = CELL) -> pd.DataFrame:
    """`over_repeats(per_run(recording))`: a row per cell, medians and ranges over runs."""
    return over_repeats(per_run(recording), by)


def size_note(runs: pd.DataFrame) -> str | None:
    """None when every cell of `runs` (`per_run` rows) has the recorded size (at least
    `VERDICT_CLAIMS` claims per writer and `VERDICT_RUNS` runs); else a note saying the
    size is too small for a verdict, for figure titles and tables."""
    claims = int(runs["claims_per_writer"].min())
    counts = runs.groupby(list(CELL), observed=True).size()
    fewest = int(counts.min())
    if claims >= VERDICT_CLAIMS and fewest >= VERDICT_RUNS:
        return None
    plural = "" if fewest == 1 else "s"
    return (
        f"{claims} claims per writer, {fewest} run{plural} per cell: too small for a verdict "
        f"(the recorded data: {VERDICT_CLAIMS} claims, {VERDICT_RUNS} runs)"
    )


def table(summary: pd.DataFrame) -> pd.DataFrame:
    """A summary as a reader scans it: `median [lowest–highest run]` per measure, as text."""
    import pandas as pd

    def number(x: float, spec: str) -> str:
        return f"{x:.0f}" if spec == "ms" and x >= 100 else f"{x:{'.2g' if spec == 'ms' else spec}}"

    def cell(metric: str, spec: str) -> list[str]:
        """`spec`: a format, or "ms": two significant digits, whole numbers from 100."""
        rows = zip(summary[metric], summary[f"{metric}_lo"], summary[f"{metric}_hi"], strict=True)
        return [f"{number(m, spec)} [{number(lo, spec)}–{number(hi, spec)}]" for m, lo, hi in rows]

    keys = [k for k in (*CELL, "runs") if k in summary]
    shown = {
        "writes/s": cell("writes_per_s", ".0f"), "wait p50 ms": cell("wait_p50_ms", "ms"),
        "wait p99 ms": cell("wait_p99_ms", "ms"), "wait max ms": cell("wait_max_ms", "ms"),
        "latency p99 ms": cell("latency_p99_ms", "ms"), "fairness": cell("fairness", ".2f"),
    }  # fmt: skip
    return pd.concat([summary[keys].reset_index(drop=True), pd.DataFrame(shown)], axis=1)
