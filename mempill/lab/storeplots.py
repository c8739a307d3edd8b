"""Figures of a whole store, drawn from the SQL views (notebooks/own_store.py).

Each function takes the frame of one view (docs/duckdb.md) and returns a matplotlib
`Figure` (title, axes labelled with units, legend outside the data), or a `Note` saying
why there is too little data for an honest figure. A notebook shows either by leaving it
as a cell's value.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING

from mempill.core.enums import Disposition
from mempill.lab.plots import _date_axis

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

#: Bucket widths to choose from, narrowest first: (SQL interval, label).
WIDTHS = (
    (timedelta(minutes=1), "1 minute"),
    (timedelta(minutes=5), "5 minutes"),
    (timedelta(minutes=15), "15 minutes"),
    (timedelta(hours=1), "1 hour"),
    (timedelta(hours=6), "6 hours"),
    (timedelta(days=1), "1 day"),
    (timedelta(days=7), "7 days"),
    (timedelta(days=30), "30 days"),
)
#: Time units for latencies: (seconds, label), the largest that keeps most values >= 1.
UNITS = ((86400.0, "days"), (3600.0, "hours"), (60.0, "minutes"), (1.0, "seconds"))
TOP_AGENTS = 6


@dataclass(frozen=True, slots=True)
class Note:
    """Shown instead of a figure: what is missing."""

    text: str

    def _repr_markdown_(self) -> str:
        return f"*{self.text}*"

    def __str__(self) -> str:
        return self.text


def bucket_width(span: timedelta, buckets: int = 40) -> str:
    """The narrowest width of `WIDTHS` that cuts `span` into at most `buckets` buckets."""
    for width, label in WIDTHS:
        if span / width <= buckets:
            return label
    return WIDTHS[-1][1]


def _figure(width: float = 10.0, height: float = 4.5) -> tuple[Figure, Axes]:
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), layout="constrained")
    return fig, fig.add_subplot()


def _legend(ax: Axes, title: str) -> None:
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize="small", title=title)


def dispositions_over_time(frame: pd.DataFrame, width: str, title: str) -> Figure | Note:
    """Stacked bars: ledger entries per tx-time bucket (`dispositions_by(width)` summed over
    agents: columns bucket, disposition, entries), one colour per disposition."""
    import pandas as pd

    if frame.empty:
        return Note("No ledger entries to draw.")
    table = frame.pivot_table(
        index="bucket", columns="disposition", values="entries", aggfunc="sum", fill_value=0
    )
    if len(table) < 2 or table.to_numpy().sum() < 10:
        return Note(f"Too little data for a figure: {int(table.to_numpy().sum())} ledger "
                    f"entries in {len(table)} bucket(s) of {width}.")  # fmt: skip
    order = [d.value for d in Disposition if d.value in table.columns]
    fig, ax = _figure()
    step = pd.Timedelta(width) / pd.Timedelta(days=1)  # matplotlib dates are in days
    bottom = pd.Series(0, index=table.index)
    colours = _colours(len(Disposition))
    for disposition in order:
        colour = colours[[d.value for d in Disposition].index(disposition)]
        ax.bar(table.index, table[disposition], width=step * 0.9, bottom=bottom, align="edge",
               label=disposition, color=colour)  # fmt: skip
        bottom += table[disposition]
    ax.set(title=title, xlabel="transaction time (UTC; bars start at their bucket)",
           ylabel=f"ledger entries per {width}")  # fmt: skip
    _date_axis(ax.xaxis)
    _legend(ax, "disposition")
    return fig


def _colours(count: int) -> list[tuple[float, ...]]:
    from matplotlib import colormaps

    cmap = colormaps["tab20"]
    return [cmap(i / max(count - 1, 1)) for i in range(count)]


def contested_over_time(frame: pd.DataFrame, title: str) -> Figure | Note:
    """Lines believed Contested (and believed at all) at each tx time, at some valid instant
    (columns as_of, contested, believed)."""
    if len(frame) < 2:
        return Note(f"Too little data for a figure: {len(frame)} transaction time(s).")
    if not frame["contested"].any():
        return Note("No line was believed Contested at any of these transaction times.")
    fig, ax = _figure(10.0, 4.0)
    ax.step(frame["as_of"], frame["believed"], where="post", label="believed (any status)")
    ax.step(frame["as_of"], frame["contested"], where="post", label="Contested")
    ax.set(title=title, xlabel="transaction time as_of (UTC)",
           ylabel="lines (count) at some valid instant")  # fmt: skip
    ax.set_ylim(bottom=0)
    _date_axis(ax.xaxis)
    _legend(ax, "belief")
    return fig


def _unit(seconds: pd.Series) -> tuple[float, str]:
    middle = float(seconds.median())
    return next(((s, label) for s, label in UNITS if middle >= s), UNITS[-1])


def _ecdf(ax: Axes, values: pd.Series, label: str) -> None:
    import numpy as np

    ordered = np.sort(values.to_numpy(dtype=float))
    share = np.arange(1, len(ordered) + 1) / len(ordered)
    ax.step(ordered, share, where="post", label=f"{label} (n={len(ordered)})")


def oracle_latency(frame: pd.DataFrame, title: str, minimum: int = 5) -> Figure | Note:
    """The distribution (ECDF) of queue-to-verdict latency per outcome (`oracle_latency`
    rows: outcome, latency_s); open requests are counted in the note, not drawn."""
    decided = frame.dropna(subset=["latency_s"])
    if len(decided) < minimum:
        still_open = len(frame) - len(decided)
        return Note(f"Too little data for a figure: {len(decided)} decided adjudication "
                    f"request(s) (need {minimum}); {still_open} still open.")  # fmt: skip
    scale, unit = _unit(decided["latency_s"])
    fig, ax = _figure()
    for outcome, rows in decided.groupby("outcome"):
        _ecdf(ax, rows["latency_s"] / scale, str(outcome))
    ax.set(title=title, xlabel=f"latency from queueing to verdict or expiry ({unit} of "
           "transaction time)", ylabel="share of requests decided within (cumulative)")  # fmt: skip
    ax.set_ylim(0, 1.02)
    _legend(ax, "outcome")
    return fig


def lock_waits(frame: pd.DataFrame, title: str, minimum: int = 10) -> Figure | Note:
    """The distribution (ECDF, log scale) of lock waits per agent (`write_stats` rows:
    agent_id, lock_wait_us), the `TOP_AGENTS` busiest agents apart, the rest together."""
    if len(frame) < minimum:
        return Note(f"Too little data for a figure: {len(frame)} recorded write(s) (need "
                    f"{minimum}; engines record them with record_write_stats=True).")  # fmt: skip
    busiest = frame["agent_id"].value_counts().index[:TOP_AGENTS]
    groups = frame.assign(
        group=frame["agent_id"].where(frame["agent_id"].isin(busiest), "other agents")
    )
    fig, ax = _figure()
    for group, rows in groups.groupby("group", sort=True):
        _ecdf(ax, rows["lock_wait_us"].clip(lower=1), str(group))
    ax.set_xscale("log")
    ax.set(title=title, xlabel="lock wait per write transaction (µs, log scale; below 1 µs "
           "drawn at 1 µs)", ylabel="share of writes waiting at most (cumulative)")  # fmt: skip
    ax.set_ylim(0, 1.02)
    _legend(ax, "agent")
    return fig
