"""The contention figures: every one titled, axes labelled with units and scale, the legend
outside the data, and no line that mixes configurations or modes.

Each helper draws one panel per value of `panels` and one line (or curve, or point cloud)
per value of `by` inside a panel. `check_grouping` refuses a frame in which a key that tells
configurations apart (`CONFIGURATION`, and the writer count where it is not the x axis)
takes several values without being a panel or line key: those rows would be pooled into
one line. Every drawn artist carries its group as its `gid` (`mode=threads|config=…`), so
a figure can be checked for what each line holds. Waits of 0 µs (under 1 µs: the stores
count whole µs) cannot sit on a log axis: they are drawn at `ZERO_WAIT_MS`, which every
such figure says, with a dotted line at that floor.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

from mempill.lab.contention.stats import CONFIGURATION

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

ZERO_WAIT_MS = 0.001  # where a lock wait of 0 µs is drawn on a log axis
FLOOR = f"waits under 1 µs (recorded as 0) drawn at {ZERO_WAIT_MS} ms"
WRITERS_AXIS = "concurrent writers (count, log₂ scale)"
#: Keys that tell rows apart and so must be a panel, a line, or constant in a figure.
DISTINCT = (*CONFIGURATION, "writers")


def check_grouping(frame: pd.DataFrame, keys: Sequence[str], axis: Sequence[str] = ()) -> None:
    """Refuse to pool rows of different configurations into one line: every key of
    `DISTINCT` that is not in `keys` (panels and lines) or `axis` (drawn along an axis)
    must take a single value in `frame`."""
    for key in DISTINCT:
        if key in keys or key in axis or key not in frame:
            continue
        values = sorted(map(str, frame[key].dropna().unique()))
        if len(values) > 1:
            raise ValueError(
                f"{key} takes {len(values)} values ({', '.join(values)}) but is neither a "
                f"panel nor a line: one line would mix them; filter the frame or group by {key!r}"
            )


def gid(keys: Sequence[str], values: Sequence[Any]) -> str:
    """The group an artist draws, as `key=value|…` (what tests and readers check)."""
    return "|".join(f"{k}={v}" for k, v in zip(keys, values, strict=True))


def _label(keys: Sequence[str], values: Sequence[Any]) -> str:
    return " · ".join(
        f"{v} writers" if k == "writers" else f"{v} claims/writer" if k == "claims_per_writer"
        else f"run {v}" if k == "run_id" else str(v) for k, v in zip(keys, values, strict=True)
    )  # fmt: skip


def _constants(frame: pd.DataFrame, used: Sequence[str]) -> str:
    """The keys of `DISTINCT` a figure holds constant (not panels, not lines), in words."""
    keys = [k for k in DISTINCT if k not in used and k in frame and frame[k].nunique() == 1]
    return _label(keys, [frame[k].iloc[0] for k in keys])


SPREAD = "line: median of {runs} per point; band: their range; dots: each run"


def _title(title: str, frame: pd.DataFrame, used: Sequence[str], how: str) -> str:
    """`title: what the figure holds constant (how it summarizes)`; `{runs}` in `how` is
    the number of runs per point."""
    fixed = _constants(frame, used)
    if "{runs}" in how:
        how = how.format(runs=_runs_note(frame))
    return f"{title}{': ' + fixed if fixed else ''}{f' ({how})' if how else ''}"


def _tuple(value: Any) -> tuple[Any, ...]:
    return value if isinstance(value, tuple) else (value,)


def _grid(
    frame: pd.DataFrame, panels: Sequence[str], width: float = 5.0, height: float = 3.6
) -> tuple[Figure, list[tuple[tuple[Any, ...], Axes, pd.DataFrame]]]:
    """A figure with one axes per panel value: rows by the first panel key, columns by the
    rest (one row when there is a single key); each with its rows of `frame`."""
    from matplotlib.figure import Figure

    if frame.empty:
        raise ValueError("nothing to draw: the frame has no rows")
    groups = [(_tuple(k), g) for k, g in frame.groupby(list(panels), observed=True, sort=True)]
    if len(panels) > 1:
        rows = sorted({k[0] for k, _ in groups}, key=str)
        cols = sorted({k[1:] for k, _ in groups}, key=str)
        place = {k: (rows.index(k[0]), cols.index(k[1:])) for k, _ in groups}
    else:
        rows, cols = [None], [k for k, _ in groups]
        place = {k: (0, i) for i, (k, _) in enumerate(groups)}
    fig = Figure(figsize=(width * len(cols) + 2.5, height * len(rows) + 0.8), layout="constrained")
    grid = fig.add_gridspec(len(rows), len(cols))
    drawn = []
    first: Axes | None = None
    for keys, group in groups:
        r, c = place[keys]
        ax = fig.add_subplot(grid[r, c], sharey=first)
        first = first or ax
        ax.set_title(_label(panels, keys), fontsize="medium")
        drawn.append((keys, ax, group))
    return fig, drawn


def _lines(
    group: pd.DataFrame, by: Sequence[str]
) -> Iterator[tuple[tuple[Any, ...], pd.DataFrame]]:
    for keys, rows in group.groupby(list(by), observed=True, sort=True):
        yield _tuple(keys), rows


def _colours(frame: pd.DataFrame, by: Sequence[str]) -> dict[tuple[Any, ...], Any]:
    """One colour per line key across every panel, so a legend entry means one thing."""
    from matplotlib import colormaps

    keys = sorted({k for k, _ in _lines(frame, by)}, key=str)
    palette = colormaps["tab10" if len(keys) <= 10 else "tab20"]
    return {k: palette(i % palette.N) for i, k in enumerate(keys)}


def _finish(fig: Figure, title: str, note: str | None, extra: Sequence[Any] = ()) -> Figure:
    """Suptitle (and the size note under it), one legend outside the panels on the right."""
    fig.suptitle(title if note is None else f"{title}\n{note}")
    handles: dict[str, Any] = {}
    for ax in fig.axes:
        ax.grid(True, which="both", alpha=0.3)
        for handle, label in zip(*ax.get_legend_handles_labels(), strict=True):
            handles.setdefault(label, handle)
    for handle in extra:
        handles.setdefault(handle.get_label(), handle)
    fig.legend(list(handles.values()), list(handles), loc="outside right center",
               fontsize="small")  # fmt: skip
    return fig


def _writers_axis(ax: Axes, writers: Any) -> None:
    """Writers on a log-2 axis with a tick at each count measured."""
    ax.set_xscale("log", base=2)
    ticks = sorted({int(w) for w in writers})
    ax.set_xticks(ticks, [str(t) for t in ticks])
    ax.set_xlabel(WRITERS_AXIS)


def _floor(ax: Axes, values: Any, vertical: bool = False) -> None:
    """When any of `values` (ms) lies under the floor, mark the floor and say so."""
    if (values < ZERO_WAIT_MS).any():
        line = ax.axvline if vertical else ax.axhline
        line(ZERO_WAIT_MS, color="grey", linestyle=":", linewidth=1, label=FLOOR)


def _per_writers(rows: pd.DataFrame, metric: str) -> pd.DataFrame:
    """Median, lowest and highest run of `metric` per writer count."""
    return rows.groupby("writers")[metric].agg(["median", "min", "max", "count"]).reset_index()


def _metric_vs_writers(
    runs: pd.DataFrame, metric: str, ylabel: str, title: str, panels: Sequence[str],
    by: Sequence[str], note: str | None,
) -> tuple[Figure, list[tuple[tuple[Any, ...], Axes, pd.DataFrame]]]:  # fmt: skip
    """Median over runs (line), range over runs (band) and each run (dots) of a per-run
    measure against writers, a panel per `panels` value and a line per `by` value."""
    check_grouping(runs, (*panels, *by), axis=("writers",))
    fig, drawn = _grid(runs, panels)
    colours = _colours(runs, by)
    for keys, ax, group in drawn:
        for line, rows in _lines(group, by):
            name, colour = gid((*panels, *by), (*keys, *line)), colours[line]
            cell = _per_writers(rows, metric)
            ax.plot(cell["writers"], cell["median"], marker="o", color=colour,
                    label=_label(by, line), gid=name)  # fmt: skip
            ax.fill_between(cell["writers"], cell["min"], cell["max"], color=colour, alpha=0.15,
                            gid=name)  # fmt: skip
            ax.scatter(rows["writers"], rows[metric], s=8, color=colour, alpha=0.5, gid=name)
        _writers_axis(ax, runs["writers"])
        ax.set_ylabel(ylabel)
    return fig, drawn


def _runs_note(runs: pd.DataFrame) -> str:
    """How many runs each point summarizes: `5 runs`, `1 run`, `3–5 runs`."""
    counts = runs.groupby([*CONFIGURATION, "writers"], observed=True).size()
    low, high = int(counts.min()), int(counts.max())
    return f"{low} run" + ("" if high == 1 else "s") if low == high else f"{low}–{high} runs"


def throughput_vs_writers(
    runs: pd.DataFrame,
    panels: Sequence[str] = ("mode",),
    by: Sequence[str] = ("config", "layout"),
    title: str = "Write throughput against writers",
    note: str | None = None,
) -> Figure:
    """Committed claims per second of wall-clock time (`per_run` rows) against writers:
    median over runs (line), range over runs (band), each run (dots)."""
    fig, drawn = _metric_vs_writers(
        runs, "writes_per_s", "throughput (committed claims/s, linear scale)", title, panels,
        by, note,
    )  # fmt: skip
    for _, ax, _ in drawn:
        ax.set_ylim(bottom=0)
    return _finish(fig, _title(title, runs, (*panels, *by, "writers"), SPREAD), note)


def fairness_vs_writers(
    runs: pd.DataFrame,
    panels: Sequence[str] = ("mode",),
    by: Sequence[str] = ("config", "layout"),
    title: str = "Fairness between writers",
    note: str | None = None,
) -> Figure:
    """Jain's index of the claims each writer had committed when the first one finished
    (`per_run` rows): 1 = every writer got the same share; the dotted curve is 1/n, one
    writer taking everything."""
    from matplotlib.lines import Line2D

    fig, drawn = _metric_vs_writers(
        runs, "fairness", "Jain's fairness index (1 = equal shares, linear scale)", title,
        panels, by, note,
    )  # fmt: skip
    counts = sorted({int(w) for w in runs["writers"]})
    for _, ax, _ in drawn:
        ax.plot(counts, [1 / n for n in counts], color="grey", linestyle=":")
        ax.set_ylim(0, 1.05)
    worst = Line2D([], [], color="grey", linestyle=":", label="1/n: one writer takes all")
    return _finish(fig, _title(title, runs, (*panels, *by, "writers"), SPREAD), note, [worst])


#: What the quantile figures draw: per-run columns (low, high), axis label, legend words.
QUANTILES = {
    "wait": ("wait_p50_ms", "wait_p99_ms", "lock wait per transaction (ms, log scale)",
             ("median of the runs' p50", "median of the runs' p99")),
    "latency": ("latency_p50_ms", "latency_p99_ms", "ingest latency per claim (ms, log scale)",
                ("median of the runs' typical writer p50", "median of the runs' worst writer p99")),
}  # fmt: skip


def _quantiles_vs_writers(
    runs: pd.DataFrame, measure: str, title: str, panels: Sequence[str], by: Sequence[str],
    note: str | None,
) -> Figure:  # fmt: skip
    """Median over runs of a run's p50 (solid) and p99 (dashed) against writers, the band
    between them, whiskers on p99 spanning the runs' range; values clipped at the floor."""
    from matplotlib.lines import Line2D

    low, high, ylabel, words = QUANTILES[measure]
    check_grouping(runs, (*panels, *by), axis=("writers",))
    fig, drawn = _grid(runs, panels, width=4.2)
    colours = _colours(runs, by)
    for keys, ax, group in drawn:
        for line, rows in _lines(group, by):
            name, colour = gid((*panels, *by), (*keys, *line)), colours[line]
            p50 = _per_writers(rows, low).clip(lower=ZERO_WAIT_MS)
            p99 = _per_writers(rows, high).clip(lower=ZERO_WAIT_MS)
            x = p50["writers"]
            ax.plot(x, p50["median"], marker="o", color=colour, label=_label(by, line), gid=name)
            ax.plot(x, p99["median"], marker="x", linestyle="--", color=colour, gid=name)
            ax.fill_between(x, p50["median"], p99["median"], color=colour, alpha=0.15, gid=name)
            spread = [p99["median"] - p99["min"], p99["max"] - p99["median"]]
            ax.errorbar(x, p99["median"], yerr=spread, fmt="none", ecolor=colour, capsize=2,
                        linewidth=0.8, gid=name)  # fmt: skip
        _floor(ax, group[low])  # a run's p50 is its lowest value drawn
        ax.set_yscale("log")
        _writers_axis(ax, runs["writers"])
        ax.set_ylabel(ylabel)
    styles = [
        Line2D([], [], color="black", marker="o", label=words[0]),
        Line2D([], [], color="black", marker="x", linestyle="--",
               label=f"{words[1]} (whiskers: range over runs)"),
    ]  # fmt: skip
    return _finish(fig, _title(title, runs, (*panels, *by, "writers"), "{runs} per point"), note,
                   styles)  # fmt: skip


def lock_wait_vs_writers(
    runs: pd.DataFrame,
    panels: Sequence[str] = ("mode", "config"),
    by: Sequence[str] = ("layout",),
    title: str = "Lock wait against writers",
    note: str | None = None,
) -> Figure:
    """Each run's median and 99th-percentile lock wait per transaction, as the store timed
    it (`per_run` rows), against writers: see `_quantiles_vs_writers`."""
    return _quantiles_vs_writers(runs, "wait", title, panels, by, note)


def latency_vs_writers(
    runs: pd.DataFrame,
    panels: Sequence[str] = ("mode", "config"),
    by: Sequence[str] = ("layout",),
    title: str = "Ingest latency against writers",
    note: str | None = None,
) -> Figure:
    """Each run's ingest latency as its writers saw it (`per_run` rows: the writers' median
    p50 and the worst writer's p99; queueing for a group commit included) against writers."""
    return _quantiles_vs_writers(runs, "latency", title, panels, by, note)


def lock_wait_ecdf(
    transactions: pd.DataFrame,
    panels: Sequence[str] = ("mode",),
    by: Sequence[str] = ("config", "layout"),
    title: str = "Lock wait per write transaction",
    note: str | None = None,
) -> Figure:
    """Empirical CDF of lock wait (ms, log scale) over every transaction of a group's runs
    pooled, one curve per group: rare long waits stay visible. One writer count only."""
    import numpy as np

    check_grouping(transactions, (*panels, *by))
    fig, drawn = _grid(transactions, panels)
    colours = _colours(transactions, by)
    for keys, ax, group in drawn:
        for line, rows in _lines(group, by):
            waits = np.sort(np.maximum(rows["lock_wait_us"].to_numpy() / 1000.0, ZERO_WAIT_MS))
            share = np.arange(1, len(waits) + 1) / len(waits)
            ax.step(waits, share, where="post", color=colours[line],
                    gid=gid((*panels, *by), (*keys, *line)), label=_label(by, line))  # fmt: skip
        sizes = group.groupby(list(by), observed=True).size()
        counts = f"{sizes.min()}" if sizes.min() == sizes.max() else f"{sizes.min()}–{sizes.max()}"
        runs = group.groupby(list(by), observed=True)["run_id"].nunique().max()
        ax.set_title(f"{ax.get_title()} ({counts} transactions per curve, ≤ {runs} runs)",
                     fontsize="medium")  # fmt: skip
        _floor(ax, group["lock_wait_us"] / 1000.0, vertical=True)
        ax.set_xscale("log")
        ax.set_xlabel("lock wait (ms, log scale)")
        ax.set_ylabel("share of transactions waiting at most x (fraction, linear scale)")
        ax.set_ylim(0, 1.08)
    return _finish(fig, _title(title, transactions, (*panels, *by), "each curve: its runs pooled"),
                   note)  # fmt: skip


def wait_over_time(
    transactions: pd.DataFrame,
    panels: Sequence[str] = ("config", "mode"),
    by: Sequence[str] = ("run_id",),
    title: str = "Lock wait over the run",
    note: str | None = None,
) -> Figure:
    """Each transaction's lock wait (ms, log scale) at the moment it ended (s since its
    run's start): bursts and streaks show who got the lock when. One layout and writer
    count only; a point colour per `by` value (by default, per run)."""
    check_grouping(transactions, (*panels, *by))
    fig, drawn = _grid(transactions, panels, width=5.5)
    colours = _colours(transactions, by)
    for keys, ax, group in drawn:
        for line, rows in _lines(group, by):
            waits = (rows["lock_wait_us"] / 1000.0).clip(lower=ZERO_WAIT_MS)
            ax.scatter(rows["t_us"] / 1e6, waits, s=5, alpha=0.6, color=colours[line],
                       label=_label(by, line), gid=gid((*panels, *by), (*keys, *line)),
                       rasterized=True)  # fmt: skip
        _floor(ax, group["lock_wait_us"] / 1000.0)
        ax.set_yscale("log")
        ax.set_xlabel("time since the run's start (s, linear scale)")
        ax.set_ylabel("lock wait of the transaction (ms, log scale)")
    return _finish(fig, _title(title, transactions, (*panels, *by), ""), note)
