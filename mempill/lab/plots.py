"""Matplotlib figures for the lab: every figure has a title, axis labels and units.

Figures are built with `matplotlib.figure.Figure` (not pyplot), so library code keeps no
global state and works in threads and headless runs; a notebook shows one by leaving it
as a cell's value. `bitemporal_spans` prepares the data of the timeline figure.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from mempill.core import parse
from mempill.core.canonical import canonical_json
from mempill.core.enums import Disposition, HistoryStatus
from mempill.engine import Engine

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

#: One fixed colour per disposition, so every figure uses the same legend.
DISPOSITION_COLOURS = dict(
    zip(
        [d.value for d in Disposition],
        ["#2ca02c", "#98df8a", "#ff7f0e", "#d62728", "#ffbb78", "#9467bd",
         "#c5b0d5", "#8c564b", "#7f7f7f", "#000000", "#17becf", "#e377c2"],
        strict=True,
    )
)  # fmt: skip
LABEL_BOX = {"boxstyle": "round", "facecolor": "white", "alpha": 0.7, "linewidth": 0}
ZERO_WAIT_MS = 0.001  # where a lock wait of 0 is drawn on a log axis


def _writers_axis(ax: Axes, writers: Any) -> None:
    """Writers on a log-2 axis with a tick at each count measured."""
    ax.set_xscale("log", base=2)
    ticks = sorted({int(w) for w in writers})
    ax.set_xticks(ticks, [str(t) for t in ticks])
    ax.set_xlabel("concurrent writers (count, log scale)")


def _legend_outside(ax: Axes) -> None:
    """The legend to the right of the axes, where it never hides a curve."""
    ax.legend(fontsize="small", loc="upper left", bbox_to_anchor=(1.01, 1.0))


def _figure(width: float = 10.0, height: float = 4.5) -> tuple[Figure, Axes]:
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), layout="constrained")
    return fig, fig.add_subplot()


def _label(keys: Any, by: Sequence[str]) -> str:
    values = keys if isinstance(keys, tuple) else (keys,)
    return " · ".join(
        f"{v} writers" if k == "writers" else str(v) for k, v in zip(by, values, strict=True)
    )


def lock_wait_ecdf(
    frame: pd.DataFrame,
    by: Sequence[str] = ("config", "layout"),
    title: str = "Lock wait per write",
) -> Figure:
    """Empirical CDF of lock wait (ms, log scale), one curve per group: tails stay visible."""
    import numpy as np

    fig, ax = _figure()
    for keys, group in frame.groupby(list(by), observed=True, sort=True):
        waits = np.sort(np.maximum(group["lock_wait_us"].to_numpy() / 1000.0, ZERO_WAIT_MS))
        share = np.arange(1, len(waits) + 1) / len(waits)
        ax.step(waits, share, where="post", label=f"{_label(keys, by)} (n={len(waits)})")
    ax.set_xscale("log")
    ax.set_xlabel(f"lock wait (ms, log scale; no wait drawn at {ZERO_WAIT_MS} ms)")
    ax.set_ylabel("share of writes waiting at most x (fraction)")
    ax.set_ylim(0, 1.02)
    ax.set_title(title)
    ax.grid(True, which="both", alpha=0.3)
    _legend_outside(ax)
    return fig


def lock_wait_vs_writers(
    summary: pd.DataFrame,
    by: Sequence[str] = ("config", "layout"),
    title: str = "Lock wait against writers",
) -> Figure:
    """Median (solid) and p99 (dashed) lock wait in ms against the number of writers."""
    fig, ax = _figure()
    for keys, unsorted in summary.groupby(list(by), observed=True, sort=True):
        group = unsorted.sort_values("writers")
        (line,) = ax.plot(group["writers"], group["p50_ms"].clip(lower=ZERO_WAIT_MS), marker="o")
        line.set_label(f"{_label(keys, by)}: median")
        ax.plot(
            group["writers"],
            group["p99_ms"].clip(lower=ZERO_WAIT_MS),
            marker="x",
            linestyle="--",
            color=line.get_color(),
            label=f"{_label(keys, by)}: p99",
        )
    ax.set_yscale("log")
    _writers_axis(ax, summary["writers"])
    ax.set_ylabel("lock wait (ms, log scale)")
    ax.set_title(title)
    ax.grid(True, which="both", alpha=0.3)
    _legend_outside(ax)
    return fig


def throughput_vs_writers(
    summary: pd.DataFrame,
    by: Sequence[str] = ("config", "layout"),
    title: str = "Write throughput against writers",
) -> Figure:
    """Committed writes per second of wall-clock time against the number of writers."""
    fig, ax = _figure()
    for keys, unsorted in summary.groupby(list(by), observed=True, sort=True):
        group = unsorted.sort_values("writers")
        ax.plot(group["writers"], group["writes_per_s"], marker="o", label=_label(keys, by))
    _writers_axis(ax, summary["writers"])
    ax.set_ylabel("throughput (writes/s)")
    ax.set_ylim(bottom=0)
    ax.set_title(title)
    ax.grid(True, alpha=0.3)
    _legend_outside(ax)
    return fig


# ---------------------------------------------------------------- the bitemporal timeline


def _spans(
    engine: Engine, agent: str, subject: str, predicate: str, changes: list[datetime]
) -> list[dict[str, Any]]:
    """The fold's view of every claim at each change, consecutive identical views merged."""
    spans: dict[str, list[dict[str, Any]]] = {}
    for i, moment in enumerate(changes):
        until = changes[i + 1] if i + 1 < len(changes) else None
        for entry in engine.query_history(agent, subject, predicate, as_of=moment).entries:
            key = (entry.valid_from, entry.valid_until, entry.state, entry.status)
            own = spans.setdefault(entry.claim_ref, [])
            if own and own[-1]["key"] == key:
                own[-1]["tx_until"] = until
            else:
                own.append({"key": key, "ref": entry.claim_ref, "value": entry.value,
                            "tx_from": moment, "tx_until": until})  # fmt: skip
    found = (s for own in spans.values() for s in own)
    return sorted(found, key=lambda s: (s["tx_from"], s["ref"]))


def bitemporal_spans(engine: Engine, agent_id: str, subject: str, predicate: str) -> pd.DataFrame:
    """Each claim of one line as (tx-time span, effective valid-time window, state) rows.

    At every tx time the line changed, the engine's own fold (`query_history(as_of=t)`)
    gives every claim's effective window and state, so the picture cannot disagree with
    what the engine believed; consecutive identical spans are merged. NaT `valid_from` /
    `valid_until` are open ends (both NaT: an untrusted window, true at every instant);
    NaT `tx_until` means "until now".
    """
    import pandas as pd

    from mempill.lab.ledgers import ledger, times

    agent = parse.agent_id(agent_id)
    entries = ledger(engine, agents=agent)
    on_line = entries[(entries["subject"] == subject) & (entries["predicate"] == predicate)]
    changes = sorted({t for t in _moments(on_line["recorded_at"]) if t is not None})
    found = _spans(engine, agent, subject, predicate, changes)
    return pd.DataFrame(
        {
            "claim_ref": pd.array([s["ref"] for s in found], dtype="string"),
            "value": pd.array([canonical_json(s["value"]) for s in found], dtype="string"),
            "tx_from": times([s["tx_from"] for s in found]),
            "tx_until": times([s["tx_until"] for s in found]),
            "valid_from": times([s["key"][0] for s in found]),
            "valid_until": times([s["key"][1] for s in found]),
            "state": pd.Categorical(
                [s["key"][2].value for s in found], categories=[d.value for d in Disposition]
            ),
            "status": pd.Categorical(
                [s["key"][3].value for s in found], categories=[h.value for h in HistoryStatus]
            ),
        }
    )


def _limits(instants: list[datetime], fallback: datetime) -> tuple[datetime, datetime]:
    """Axis limits around the finite instants, with a margin where open ends are drawn."""
    if not instants:
        return fallback - timedelta(days=365), fallback + timedelta(days=365)
    low, high = min(instants), max(instants)
    margin = max((high - low) * 0.15, timedelta(days=1))
    first, last = datetime.min.replace(tzinfo=UTC), datetime.max.replace(tzinfo=UTC)
    return max(low, first + margin) - margin, min(high, last - margin) + margin


def _moments(series: pd.Series) -> list[datetime | None]:
    """Python datetimes, None for NaT."""
    import pandas as pd

    return [None if pd.isna(value) else value.to_pydatetime() for value in series]


def _num(moment: datetime) -> float:
    """Matplotlib's date number of an instant."""
    import matplotlib.dates as mdates

    return float(mdates.date2num(moment))  # type: ignore[no-untyped-call]


def _draw_spans(ax: Axes, spans: pd.DataFrame, x: tuple[datetime, datetime], now: datetime) -> None:
    """One rectangle per span: open valid-time ends run to the x limits, open tx ends to now."""
    from matplotlib.patches import Rectangle

    rows = zip(
        _moments(spans["valid_from"]), _moments(spans["valid_until"]),
        _moments(spans["tx_from"]), _moments(spans["tx_until"]),
        spans["state"].astype(str), spans["value"], strict=True,
    )  # fmt: skip
    for v_from, v_until, t_from, t_until, state, value in rows:
        untrusted = v_from is None and v_until is None
        left, bottom = _num(v_from or x[0]), _num(t_from or now)
        width, height = _num(v_until or x[1]) - left, _num(t_until or now) - bottom
        colour = DISPOSITION_COLOURS[state]
        ax.add_patch(  # untrusted windows: hatched outlines, so trusted ones stay readable
            Rectangle((left, bottom), width, height, facecolor="none" if untrusted else colour,
                      edgecolor=colour if untrusted else "black", hatch="//" if untrusted else None,
                      linewidth=1.0 if untrusted else 0.6, alpha=0.5 if untrusted else 0.75)
        )  # fmt: skip
        # untrusted spans cover the whole axis: label them at the left edge, not on top of others
        x_text = left + width * (0.02 if untrusted else 0.5)
        ax.text(x_text, bottom + height / 2, str(value), ha="left" if untrusted else "center",
                va="center", fontsize="small", clip_on=True, bbox=LABEL_BOX)  # fmt: skip


def bitemporal_timeline(spans: pd.DataFrame, title: str = "Bitemporal timeline") -> Figure:
    """Valid-time windows (x) against tx time (y) for one line, coloured by disposition.

    Each rectangle is a claim's effective window during a tx-time span; open ends run to
    the plot's edge, and untrusted windows (true at every instant) are hatched.
    """
    import matplotlib.dates as mdates
    from matplotlib.patches import Patch

    if spans.empty:
        raise ValueError("bitemporal_timeline: no spans (the line has no claims)")
    fig, ax = _figure(9.0, 5.0)
    tx = [t for t in (*_moments(spans["tx_from"]), *_moments(spans["tx_until"])) if t]
    tx_low, tx_high = min(tx), max(tx)
    now = tx_high + max((tx_high - tx_low) * 0.25, timedelta(seconds=1))
    valid = [t for t in (*_moments(spans["valid_from"]), *_moments(spans["valid_until"])) if t]
    x = _limits(valid, tx_low)
    _draw_spans(ax, spans, x, now)
    ax.set_xlim(_num(x[0]), _num(x[1]))
    ax.set_ylim(_num(tx_low), _num(now))
    for axis in (ax.xaxis, ax.yaxis):
        locator = mdates.AutoDateLocator()  # type: ignore[no-untyped-call]
        axis.set_major_locator(locator)
        axis.set_major_formatter(mdates.ConciseDateFormatter(locator))  # type: ignore[no-untyped-call]
    ax.set_xlabel("valid time (UTC; open ends run to the edge)")
    ax.set_ylabel("transaction time (UTC; top edge = now)")
    ax.set_title(title)
    present = dict.fromkeys(spans["state"].astype(str))
    handles = [Patch(facecolor=DISPOSITION_COLOURS[s], label=s) for s in present]
    handles.append(
        Patch(facecolor="white", edgecolor="black", hatch="//", label="untrusted (any instant)")
    )
    ax.legend(handles=handles, fontsize="small", loc="upper left", bbox_to_anchor=(1.01, 1.0),
              title="state")  # fmt: skip
    return fig
