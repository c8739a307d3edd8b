"""Matplotlib figures for the lab: every figure has a title, axis labels and units.

Figures are built with `matplotlib.figure.Figure` (not pyplot), so library code keeps no
global state and works in threads and headless runs; a notebook shows one by leaving it
as a cell's value. The contention figures are in `mempill.lab.contention.plots`. The
bitemporal figures draw the engine's own answers:
`bitemporal_segments` (the line's `query_timeline` at every ledger position that touched
it) feeds `bitemporal_timeline`, and `belief_strip` draws one `Timeline`.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from mempill.core import parse
from mempill.core.canonical import canonical_json
from mempill.core.enums import BeliefStatus, Disposition, EventKind, HistoryStatus
from mempill.core.model import LedgerEntry
from mempill.core.travel import Segment, Snapshot, Timeline
from mempill.engine import Engine

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

LABEL_BOX = {"boxstyle": "round", "facecolor": "white", "alpha": 0.7, "linewidth": 0}


def _figure(width: float = 10.0, height: float = 4.5) -> tuple[Figure, Axes]:
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), layout="constrained")
    return fig, fig.add_subplot()


# ---------------------------------------------------------------- the bitemporal figures


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
    """Each claim of one line as (tx span, effective valid window, state, status) rows: the
    fold's `query_history(as_of=t)` at every tx time the line changed, identical spans
    merged; NaT ends are open (NaT `tx_until`: until now). A claims table, not a belief:
    the figures draw `bitemporal_segments`, coloured by belief status."""
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


# ------------------------------------------------- belief segments across both time axes

#: Colour and hatch (for print and colour blindness) per belief status; NoBelief is blank.
STATUS_STYLE: dict[str, tuple[str, str | None]] = {
    BeliefStatus.RESOLVED.value: ("#4daf4a", None),
    BeliefStatus.TIMING_UNCERTAIN.value: ("#fdb462", ".."),
    BeliefStatus.CONTESTED.value: ("#e41a1c", "xx"),
}
#: Marker per kind of ledger event (`event_action`), drawn on the transaction axis.
EVENT_MARKERS = {
    "claim written": "o", "claim rejected": "X", "recall echo": "s", "end": "v",
    "reopen": "^", "invalidate": "D", "adjudication requested": "P", "verdict": "*",
    "verdict expired": "h", "flagged for review": "p", "erased": "8", "validity asserted": "d",
}  # fmt: skip
_ACTIONS = dict(zip(list(EventKind), ["claim written", "claim rejected", "recall echo",
    "validity asserted", "adjudication requested", "verdict", "verdict expired",
    "flagged for review", "erased"], strict=True))  # fmt: skip
_VALIDITY = {"Bound": "end", "Reopen": "reopen", "Invalidate": "invalidate"}
_OPEN_ENDS = "◂ ▸ open end: runs past the axis"


def _text(value: Any) -> str | None:
    """A value as figures and tables show it: strings bare, the rest canonical JSON."""
    return value if isinstance(value, str) or value is None else canonical_json(value)


def event_action(entry: LedgerEntry) -> str:
    """What a ledger entry did, in the figures' words (a key of `EVENT_MARKERS`)."""
    if entry.event_kind is EventKind.VALIDITY_ASSERTED:
        return _VALIDITY.get(str(entry.rationale.get("route")), "validity asserted")
    return _ACTIONS[entry.event_kind]


def line_entries(engine: Engine, agent_id: str, subject: str, predicate: str) -> list[LedgerEntry]:
    """Every ledger entry of one line in stream order, read through the changes feed."""
    page = engine.query_changes(agent_id, subject=subject, predicate=predicate)
    return [entry for change in page.changes for entry in change.entries]


def line_events(engine: Engine, agent_id: str, subject: str, predicate: str) -> pd.DataFrame:
    """One row per ledger entry of the line: position, tx time, action, disposition, claim."""
    import pandas as pd

    from mempill.lab.ledgers import times

    found = line_entries(engine, agent_id, subject, predicate)
    values = {e.claim_ref: e.value for e in engine.query_history(agent_id, subject, predicate)}
    column: dict[str, list[Any]] = {
        "stream_seq": [e.stream_seq for e in found],
        "action": [event_action(e) for e in found],
        "event_kind": [e.event_kind.value for e in found],
        "disposition": [e.disposition.value for e in found],
        "claim_ref": [e.claim_ref for e in found],
        "value": [_text(values[e.claim_ref]) if e.claim_ref in values else None for e in found],
        "reason": [e.rationale.get("reason") for e in found],
    }
    return pd.DataFrame(
        {"recorded_at": times([e.recorded_at for e in found])}
        | {k: pd.array(v, dtype="Int64" if k == "stream_seq" else "string")
           for k, v in column.items()}
    )  # fmt: skip


def _key(segment: Segment) -> tuple[Any, ...]:
    """What makes two segments the same rectangle: range, status and candidate claims."""
    held = tuple((c.claim_ref, canonical_json(c.value)) for c in segment.candidates)
    return (segment.valid_from, segment.valid_until, segment.status, held)


def _row(segment: Segment) -> dict[str, Any]:
    return {
        "valid_from": segment.valid_from, "valid_until": segment.valid_until,
        "status": segment.status.value, "value": _text(segment.value),
        "candidates": " | ".join(str(_text(c.value)) for c in segment.candidates),
        "n_candidates": len(segment.candidates),
    }  # fmt: skip


def _frame(rows: list[dict[str, Any]], columns: Sequence[str]) -> pd.DataFrame:
    """Typed columns: instants as UTC timestamps, counts Int64, status categorical."""
    import pandas as pd

    from mempill.lab.ledgers import times

    def typed(name: str) -> Any:
        values = [r[name] for r in rows]
        if name.startswith(("tx_", "valid_")):
            return times(values)
        if name == "status":
            return pd.Categorical(values, categories=[b.value for b in BeliefStatus])
        return pd.array(values, dtype="string" if name in ("value", "candidates") else "Int64")

    return pd.DataFrame({name: typed(name) for name in columns})


def timeline_frame(timeline: Timeline) -> pd.DataFrame:
    """A `Timeline`'s segments as a table: valid range, status, value, candidates."""
    rows = [_row(s) for s in timeline.segments]
    return _frame(rows, ["valid_from", "valid_until", "status", "value", "candidates",
                         "n_candidates"])  # fmt: skip


def bitemporal_segments(
    engine: Engine, agent_id: str, subject: str, predicate: str
) -> pd.DataFrame:
    """The line's belief on both time axes: one row per (segment, span of ledger positions).

    At every ledger position that touched the line (its entries in `query_changes`),
    `query_timeline(as_of=Snapshot(position))` partitions valid time into segments; a
    segment unchanged (range, status, candidate claims) from one position to the next
    stays one row. A row holds from `seq_from` / `tx_from` until `seq_until` / `tx_until`,
    the position that changed it (NA: still believed). NaT valid ends are open. NoBelief
    segments are rows too.
    """
    agent = parse.agent_id(agent_id)
    rows: list[dict[str, Any]] = []
    live: dict[tuple[Any, ...], dict[str, Any]] = {}
    for entry in line_entries(engine, agent, subject, predicate):
        at = Snapshot(agent_id=agent, stream_seq=entry.stream_seq, tx_time=entry.recorded_at)
        now = {_key(s): s for s in engine.query_timeline(agent, subject, predicate, as_of=at)}
        for key in [k for k in live if k not in now]:
            live.pop(key).update(tx_until=entry.recorded_at, seq_until=entry.stream_seq)
        for key in now.keys() - live.keys():
            start = {"tx_from": entry.recorded_at, "seq_from": entry.stream_seq}
            live[key] = {**start, "tx_until": None, "seq_until": None, **_row(now[key])}
            rows.append(live[key])
    rows.sort(key=lambda r: (r["seq_from"], r["valid_from"] is not None, r["valid_from"]))
    columns = ["tx_from", "tx_until", "seq_from", "seq_until", "valid_from", "valid_until",
               "status", "value", "candidates", "n_candidates"]  # fmt: skip
    return _frame(rows, columns)


def _date_axis(axis: Any) -> None:
    import matplotlib.dates as mdates

    locator = mdates.AutoDateLocator()  # type: ignore[no-untyped-call]
    axis.set_major_locator(locator)
    axis.set_major_formatter(mdates.ConciseDateFormatter(locator))  # type: ignore[no-untyped-call]


def _fitting(options: list[str], width_in: float, height_in: float) -> str | None:
    """The first text that fits a rectangle of that size (inches, x-small type), if any."""
    for text in options:
        lines = text.split("\n")
        if max(map(len, lines)) * 0.065 < width_in and len(lines) * 0.15 < height_in:
            return text
    return None


def _draw_segments(ax: Axes, segments: pd.DataFrame, box: tuple[datetime, ...],
                   inches: tuple[float, float]) -> set[str]:  # fmt: skip
    """One rectangle per segment (NoBelief blank) inside `box` (x low, x high, y low, y
    high); open valid ends run to the edge with an arrowhead, open tx ends to the top.
    `inches` is the axes' size, to decide whether a value fits. Returns the statuses drawn."""
    from matplotlib.patches import Rectangle

    x_low, x_high, y_low, y_high = map(_num, box)
    drawn: set[str] = set()
    rows = zip(_moments(segments["valid_from"]), _moments(segments["valid_until"]),
               _moments(segments["tx_from"]), _moments(segments["tx_until"]),
               segments["status"].astype(str), segments["value"].astype(object),
               segments["candidates"].astype(object), strict=True)  # fmt: skip
    for v_from, v_until, t_from, t_until, status, value, candidates in rows:
        left = x_low if v_from is None else max(_num(v_from), x_low)
        right = x_high if v_until is None else min(_num(v_until), x_high)
        bottom, top = _num(t_from or box[2]), y_high if t_until is None else _num(t_until)
        if status not in STATUS_STYLE or right <= left or top <= bottom:
            continue  # no belief, or off the axis, or positions sharing one tx time
        drawn.add(status)
        colour, hatch = STATUS_STYLE[status]
        ax.add_patch(Rectangle((left, bottom), right - left, top - bottom, facecolor=colour,
                               hatch=hatch, edgecolor="black", linewidth=0.6))  # fmt: skip
        middle = (bottom + top) / 2
        for is_open, at, marker in ((v_from is None, left, "<"), (v_until is None, right, ">")):
            if is_open:
                ax.plot([at], [middle], marker=marker, color="black", markersize=5, clip_on=False)
        parts = str(candidates).split(" | ")
        options = [" vs ".join(parts), "\n".join(parts)] if len(parts) > 1 else [str(value)]
        size = ((right - left) / (x_high - x_low) * inches[0],
                (top - bottom) / (y_high - y_low) * inches[1])  # fmt: skip
        text = _fitting(options, *size)
        if text is not None:
            ax.text((left + right) / 2, middle, text, ha="center", va="center",
                    fontsize="x-small", clip_on=True, bbox=LABEL_BOX)  # fmt: skip
    return drawn


def _draw_events(ev: Axes, events: pd.DataFrame) -> list[str]:
    """A marker per ledger entry at its tx time, with its text (entries sharing a tx time
    share a line of text); returns the actions drawn, in order."""
    import pandas as pd

    lines: dict[datetime, list[str]] = {}
    values = [None if pd.isna(v) else str(v) for v in events["value"]]
    rows = zip(events["recorded_at"].dt.to_pydatetime(), events["action"].astype(str), values,
               events["disposition"].astype(str), strict=True)  # fmt: skip
    for at, action, value, disposition in rows:  # tx times are never NaT
        ev.plot([0.05], [_num(at)], marker=EVENT_MARKERS[action], color="black", linestyle="")
        what = "" if value is None else f" {value}"
        lines.setdefault(at, []).append(f"{action}{what} → {disposition}")
    for at, texts in lines.items():
        ev.text(0.13, _num(at), "; ".join(texts), va="center", fontsize="x-small")
    ev.set(xlim=(0, 1), xticks=[])
    ev.tick_params(axis="y", labelleft=False)
    for side in ("top", "right", "bottom"):
        ev.spines[side].set_visible(False)
    ev.set_title("ledger events (at their tx time)", fontsize="small")
    return list(dict.fromkeys(events["action"].astype(str)))


def _legend_handles(statuses: set[str], actions: Sequence[str]) -> list[Any]:
    """Exactly what was drawn: a swatch per status, a marker per kind of event."""
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    swatches: list[Any] = [Patch(facecolor=c, hatch=h, edgecolor="black", label=s)
                           for s, (c, h) in STATUS_STYLE.items() if s in statuses]  # fmt: skip
    return swatches + [Line2D([], [], marker=EVENT_MARKERS[a], color="black", linestyle="",
                              label=a) for a in actions]  # fmt: skip


def bitemporal_timeline(
    segments: pd.DataFrame, events: pd.DataFrame | None = None, title: str = "Bitemporal belief"
) -> Figure:
    """x = valid time, y = transaction time: what the memory believed, and since when.

    `segments` is `bitemporal_segments(...)`, `events` (optional) `line_events(...)`. Each
    rectangle is a segment of the line's timeline during a span of tx time, coloured by
    its belief status (NoBelief: blank); its value is written in when it fits (Contested:
    both). An arrowhead marks an open valid-time end; rectangles reaching the top edge are
    still believed. Ledger events are marked on the tx axis at the right. The legend, below
    the axes, lists exactly the statuses and kinds of event drawn.
    """
    from matplotlib.figure import Figure

    if segments.empty:
        raise ValueError("bitemporal_timeline: no segments (the line has no ledger entries)")
    width, height = 11.0, 5.5
    fig = Figure(figsize=(width, height), layout="constrained")
    grid = fig.add_gridspec(1, 2, width_ratios=[3.0, 1.4])
    ax = fig.add_subplot(grid[0])
    ev = fig.add_subplot(grid[1], sharey=ax)
    tx = [t for t in (*_moments(segments["tx_from"]), *_moments(segments["tx_until"])) if t]
    low, high = min(tx), max(tx)
    now = high + max((high - low) * 0.2, timedelta(seconds=1))
    low -= (now - low) * 0.04
    valid = [t for t in (*_moments(segments["valid_from"]), *_moments(segments["valid_until"]))
             if t]  # fmt: skip
    x = _limits(valid, low)
    drawn = _draw_segments(ax, segments, (*x, low, now), (width * 0.6, height * 0.7))
    actions = [] if events is None else _draw_events(ev, events)
    ax.set(xlim=(_num(x[0]), _num(x[1])), ylim=(_num(low), _num(now)))
    _date_axis(ax.xaxis)
    _date_axis(ax.yaxis)
    ax.grid(True, alpha=0.3)
    ax.set_xlabel(f"valid time (UTC dates, linear scale; {_OPEN_ENDS})")
    ax.set_ylabel("transaction time (UTC, linear scale; top edge = now)")
    ax.set_title("belief per valid-time segment (blank: no belief)", fontsize="small")
    fig.suptitle(title)
    handles = _legend_handles(drawn, actions)
    fig.legend(handles=handles, loc="outside lower center", ncols=min(len(handles), 6),
               fontsize="small", title="status (rectangles) · ledger event (markers)")  # fmt: skip
    return fig


def belief_strip(
    timeline: Timeline,
    title: str = "What the memory believes now",
    valid_range: tuple[datetime, datetime] | None = None,
) -> Figure:
    """One row: a timeline's segments across valid time (`valid_range`, default: around
    its edges), coloured by status, values written in where they fit, arrowheads at open
    ends; the legend lists the statuses drawn."""
    from mempill.lab.ledgers import times

    frame = timeline_frame(timeline)
    if frame.empty:
        raise ValueError("belief_strip: the timeline has no segments")
    fig, ax = _figure(11.0, 2.4)
    valid = [t for t in (*_moments(frame["valid_from"]), *_moments(frame["valid_until"])) if t]
    x = valid_range or _limits(valid, timeline.as_of or datetime.now(UTC))
    band = frame.assign(tx_from=times([x[0]] * len(frame)), tx_until=times([x[1]] * len(frame)))
    drawn = _draw_segments(ax, band, (*x, *x), (11.0 * 0.8, 2.4 * 0.5))  # one band: y = x
    ax.set(xlim=(_num(x[0]), _num(x[1])), ylim=(_num(x[0]), _num(x[1])), yticks=[])
    _date_axis(ax.xaxis)
    as_of = "now" if timeline.as_of is None else f"{timeline.as_of:%Y-%m-%d %H:%M} UTC"
    ax.set_ylabel(f"as of\n{as_of}")
    ax.set_xlabel(f"valid time (UTC dates, linear scale; {_OPEN_ENDS}; blank: no belief)")
    ax.set_title(title)
    ax.legend(handles=_legend_handles(drawn, []), fontsize="small", loc="upper left",
              bbox_to_anchor=(1.01, 1.0), title="status")  # fmt: skip
    return fig
