"""Results in a notebook (`_repr_html_`): the answer first, the details folded away, and a
list as one table with a row per entry.

A belief opens with one line (status, value, valid window, as of) and keeps its
candidates, provenance and ids in a collapsed `<details>`; a history, an audit page, search
hits and the like are one table whose columns `tables` declares (the same rows `to_frame()`
gives). Every text is escaped: values are caller data. A cell longer than its column's width
is cut with "…" and keeps its whole text in its `title` (shown on hover, at most `TITLE`
characters), and cells wrap anywhere, so a wide value never makes the notebook scroll
sideways. A table shows its first `ROWS` entries; `to_frame()` has them all.
"""

from __future__ import annotations

import html
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from mempill.core.tables import BELIEF, SLOT, Column, full, slots, text

#: A table shows at most this many rows (then says how many more `to_frame()` has).
ROWS = 200
#: A cell's `title` holds at most this many characters of its whole text.
TITLE = 2_000
#: A field of a record's table shows this many characters (then "…", the rest in `title`).
FIELD_WIDTH = 200
_CELL = "text-align:left;vertical-align:top;overflow-wrap:anywhere"
_SLOTS = ("primary", "alternatives", "members", "inferred", "pending")


def _escape(value: str) -> str:
    return html.escape(value, quote=True)


def _td(visible: str, titles: Sequence[str], tag: str = "td") -> str:
    shown = [t for t in titles if t]
    if not shown:
        return f"<{tag} style='{_CELL}'>{_escape(visible)}</{tag}>"
    whole = "\n".join(shown)
    whole = whole if len(whole) <= TITLE else whole[: TITLE - 1] + "…"
    return f"<{tag} style='{_CELL}' title='{_escape(whole)}'>{_escape(visible)}</{tag}>"


def _cut(visible: str, width: int) -> str:
    return visible if len(visible) <= width else visible[: width - 1] + "…"


def cell(column: Column, entry: Any) -> str:
    """One `<td>`: the shown text, cut at the column's width; the title holds the shown
    text when it was cut, and the value's whole text when the cell does not show it."""
    value = column.get(entry)
    shown = value if column.shown is None else column.shown(entry)
    visible = column.missing if shown is None or shown == "" else text(shown)
    cut = _cut(visible, column.width)
    whole = full(value)
    return _td(cut, [visible if cut != visible else "", "" if whole in visible else whole])


def grid(columns: Sequence[Column], entries: Iterable[Any], title: str, summary: str = "") -> str:
    """One table: a caption, a header row of the labelled columns, a row per entry."""
    shown = [c for c in columns if c.label is not None]
    rows = list(entries)
    head = "".join(f"<th style='{_CELL}'>{_escape(c.label or '')}</th>" for c in shown)
    body = "".join(f"<tr>{''.join(cell(c, e) for c in shown)}</tr>" for e in rows[:ROWS])
    if len(rows) > ROWS:
        more = f"… {len(rows) - ROWS} more rows (to_frame() has every one)"
        body += f"<tr><td colspan='{len(shown)}' style='{_CELL}'><i>{more}</i></td></tr>"
    head = f"<thead><tr>{head}</tr></thead>"
    return f"<table>{_caption(title, summary)}{head}<tbody>{body}</tbody></table>"


def _caption(title: str, summary: str) -> str:
    said = f"<b>{_escape(title)}</b>" + (f" {_escape(summary)}" if summary else "")
    return f"<caption style='text-align:left'>{said}</caption>"


def _value(value: Any) -> str:
    if isinstance(value, Mapping):
        return fields(value)
    if isinstance(value, (list, tuple)):
        if not value:
            return "<i>none</i>"
        return "".join(f"<div>{_value(v)}</div>" for v in value)
    if value is None:
        return "<i>—</i>"
    visible = text(value)
    cut = _cut(visible, FIELD_WIDTH)
    return _escape(cut) if cut == visible else _td(cut, [visible], "span")


def fields(data: Mapping[str, Any], title: str = "") -> str:
    """A table of a record's fields, one per row (nested records as nested tables)."""
    rows = "".join(
        f"<tr><th style='{_CELL}'>{_escape(str(k))}</th><td style='{_CELL}'>{_value(v)}</td></tr>"
        for k, v in data.items()
    )
    return f"<table>{_caption(title, '') if title else ''}{rows}</table>"


def details(summary: str, *parts: str) -> str:
    """A collapsed `<details>` element holding `parts`."""
    return f"<details><summary>{_escape(summary)}</summary>{''.join(parts)}</details>"


def belief(projection: Any) -> str:
    """A projection: the answer line, then its candidates and every field, folded."""
    line = f"{projection.subject} · {projection.predicate}"
    everything = projection.to_dict()
    held = slots(projection)
    return grid(BELIEF, [projection], "Belief", line) + details(
        "candidates, provenance, ids",
        grid(SLOT, held, "Candidates", f"({len(held)})") if held else "",
        fields({k: v for k, v in everything.items() if k not in _SLOTS}),
        details("every field", fields(everything)),
    )
