"""The columns of a result's table, declared once for its HTML display and its data frame.

A result that is a list (a history, an audit page, search hits, a timeline…) is shown in a
notebook as one table with a row per entry, and `to_frame()` gives the same rows as a typed
pandas frame. Both read the entries through a tuple of `Column`s: the frame takes every
column, the HTML table those with a `label` (the others are in the frame only). A column
reads its value from the entry (`get`); the HTML cell may show a shorter text (`shown`: a
date at the precision it was written with, a window's ends), the value staying in the cell's
`title`. Pure: no pandas here (`frames` types the columns), no HTML (`display`).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from enum import Enum
from typing import Any, Literal, NamedTuple

from mempill.core.dates import format_tx
from mempill.core.enums import (
    BeliefStatus,
    Cardinality,
    Criticality,
    Currency,
    Disposition,
    EventKind,
    HistoryStatus,
    Provenance,
)

#: How a column is typed in a frame: int64, nullable Int64, float64, bool, UTC instants
#: (datetime64[us, UTC]), text (the `string` dtype), a category, or any value (object).
Kind = Literal["int", "int?", "float", "bool", "time", "text", "category", "value"]
Get = Callable[[Any], Any]
#: The characters a cell shows before it is cut with "…" (its `title` holds the whole text).
WIDTH = 40
#: Claim refs and entry ids are shown by their first characters (whole in the `title`).
ID_WIDTH = 9


@dataclass(frozen=True, slots=True)
class Column:
    """One column: `name` in the frame, `label` the HTML header (None: the frame only)."""

    name: str
    kind: Kind
    get: Get
    label: str | None = None
    shown: Get | None = None  # the HTML cell's text, when it is not the value itself
    categories: tuple[str, ...] = ()
    ordered: bool = False
    width: int = WIDTH
    missing: str = ""  # what the HTML cell shows for None


def at(path: str) -> Get:
    """A getter following a dotted attribute path; None part-way gives None."""
    names = path.split(".")

    def get(item: Any) -> Any:
        for name in names:
            if item is None:
                return None
            item = getattr(item, name)
        return item

    return get


def column(
    name: str,
    kind: Kind,
    path: str | Get | None = None,
    *,
    label: str | None = None,
    shown: str | Get | None = None,
    enum: type[Enum] | None = None,
    width: int = WIDTH,
    missing: str = "",
) -> Column:
    """A Column reading attribute `path` (default: `name`); `enum` makes it a category."""
    return Column(
        name=name,
        kind="category" if enum is not None else kind,
        get=at(path or name) if path is None or isinstance(path, str) else path,
        label=label,
        shown=at(shown) if isinstance(shown, str) else shown,
        categories=() if enum is None else tuple(m.value for m in enum),
        ordered=enum is Criticality,
        width=width,
        missing=missing,
    )


def window_end(end: str, prefix: str = "") -> Column:
    """`valid_from` or `valid_until` (`end`) of the entry (or of its attribute `prefix`):
    the instant in the frame; in HTML as written (`valid_<end>_display`), "open" for none."""
    name = f"valid_{end}"
    label = "valid from" if end == "from" else "until"
    path = prefix + name
    return column(name, "time", path, label=label, shown=f"{path}_display", missing="open")


def category(name: str, enum: type[Enum], label: str | None = None, path: str = "") -> Column:
    return column(name, "category", path or name, label=label, enum=enum)


def within(
    prefix: str, columns: Sequence[Column], *, hide: Sequence[str] = ()
) -> tuple[Column, ...]:
    """`columns` read from the entry's attribute `prefix` (a search hit's belief); `hide`
    drops the labels of those named (the frame keeps them)."""
    outer = at(prefix)

    def inner(get: Get) -> Get:
        return lambda item: get(outer(item))

    return tuple(
        replace(
            c,
            get=inner(c.get),
            shown=None if c.shown is None else inner(c.shown),
            label=None if c.name in hide else c.label,
        )
        for c in columns
    )


# ---------------------------------------------------------------- what cells show


def text(value: Any) -> str:
    """A value as a cell shows it: text as is, an instant in UTC without its zero
    microseconds (`2026-01-01 00:00:00Z`), anything else as JSON (`null` is empty)."""
    if value is None:
        return ""
    if isinstance(value, Enum):
        return str(value.value)
    if isinstance(value, str):
        return value
    if isinstance(value, datetime):
        moment = value.astimezone(UTC).replace(tzinfo=None)
        return moment.isoformat(" ", "microseconds" if moment.microsecond else "seconds") + "Z"
    if hasattr(value, "to_dict"):
        value = value.to_dict()
    return json.dumps(value, ensure_ascii=False, default=str)


def full(value: Any) -> str:
    """A value's whole text, for a cell's `title`: an instant as stored (RFC 3339)."""
    return format_tx(value) if isinstance(value, datetime) else text(value)


def _joined(items: Any) -> str:
    return " | ".join(text(v) for v in items)


def ends(display: str) -> Get:
    """One end of the windows of a belief's candidates, at the precision it was written
    with ("open" when the window has none), one per candidate, joined with " | "."""

    def get(belief: Any) -> str:
        found = (getattr(c, display) for c in belief.candidates)
        return _joined("open" if v is None else v for v in found)

    return get


def values(belief: Any) -> Any:
    """The value a belief holds, or every candidate's joined with " | " (a contest, a set)."""
    found = belief.candidates
    return belief.value if len(found) <= 1 else _joined(c.value for c in found)


def verdict(belief: Any) -> str:
    """A belief in a few words: its value, or its status with its candidates' values."""
    if belief.status is BeliefStatus.RESOLVED and len(belief.candidates) == 1:
        return text(belief.value)
    if not belief.candidates:
        return str(belief.status.value)
    return f"{belief.status.value}: {text(values(belief))}"


def _status(belief: Any) -> str:
    reason = getattr(belief, "reason", None)
    return belief.status.value if reason is None else f"{belief.status.value} ({reason})"


class Slot(NamedTuple):
    """A belief's slot with its role: primary, alternative, member, inferred or pending."""

    role: str
    slot: Any


ROLES = ("primary", "alternative", "member", "inferred", "pending")


def slots(belief: Any) -> list[Slot]:
    """Every slot of a projection once: its primary (or the contest's alternatives, or the
    set's members, the primary among them), then inferred and pending values."""
    primary = belief.primary
    held = belief.alternatives or belief.members or (() if primary is None else (primary,))
    found = [
        Slot(
            "primary" if s is primary else "alternative" if belief.alternatives else "member",
            s,
        )
        for s in held
    ]
    found += [Slot("inferred", s) for s in belief.inferred]
    return found + [Slot("pending", s) for s in belief.pending]


# ---------------------------------------------------------------- the tables


_FROM, _UNTIL = ends("valid_from_display"), ends("valid_until_display")

#: A belief as one row (`Projection.to_frame()`: the primary's window as instants); its
#: labelled columns are the answer line of its HTML display (every candidate's window).
BELIEF = (
    column("subject", "text"),
    column("predicate", "text"),
    column("status", "category", label="status", shown=_status, enum=BeliefStatus),
    column("value", "value", label="value", shown=values),
    column("valid_from", "time", "primary.valid_from", label="valid from", shown=_FROM),
    column("valid_until", "time", "primary.valid_until", label="until", shown=_UNTIL),
    column("as_of", "time", label="as of", missing="now"),
    column("valid_at", "time", label="valid at"),
    column("reason", "text"),
    column("claim_ref", "text", "primary.claim_ref"),
    column("candidates", "int", lambda b: len(b.candidates)),
    category("currency", Currency),
    category("criticality", Criticality),
    column("corroboration_count", "int"),
    column("markers", "value", lambda b: [m.value for m in b.markers]),
)

#: A belief's slots with their roles (`Projection.to_frame(candidates=True)`).
SLOT = (
    Column("role", "category", at("role"), "role", categories=ROLES),
    column("claim_ref", "text", "slot.claim_ref", label="claim", width=ID_WIDTH),
    column("value", "value", "slot.value", label="value"),
    window_end("from", "slot."),
    window_end("until", "slot."),
    column("valid_from_display", "text", "slot.valid_from_display"),
    column("valid_until_display", "text", "slot.valid_until_display"),
    category("provenance", Provenance, "provenance", "slot.provenance"),
    column("value_confidence", "float", "slot.value_confidence", label="confidence"),
    column("valid_time_confidence", "float", "slot.valid_time_confidence"),
    category("criticality", Criticality, path="slot.criticality"),
    category("cardinality", Cardinality, path="slot.cardinality"),
    category("currency", Currency, "currency", "slot.currency"),
    column("tx_time", "time", "slot.tx_time", label="tx time"),
    column("last_refreshed_at", "time", "slot.last_refreshed_at"),
    column("corroboration_count", "int", "slot.corroboration_count", label="corroborations"),
    column("claim_refs", "value", lambda s: list(s.slot.claim_refs)),
)

#: `History` (engine.query_history): a row per claim of the line.
HISTORY_ENTRY = (
    column("stream_seq", "int", label="seq"),
    column("tx_time", "time", label="tx time"),
    category("status", HistoryStatus, "status"),
    column("value", "value", label="value"),
    window_end("from"),
    window_end("until"),
    column("valid_from_display", "text"),
    column("valid_until_display", "text"),
    category("provenance", Provenance, "provenance"),
    column("value_confidence", "float", label="confidence"),
    category("criticality", Criticality),
    category("ingest_disposition", Disposition, "ingested as"),
    category("state", Disposition),
    column("claim_ref", "text", label="claim", width=ID_WIDTH),
)

#: `AuditPage` (engine.query_audit): a row per ledger entry.
LEDGER_ENTRY = (
    column("stream_seq", "int", label="seq"),
    column("recorded_at", "time", label="tx time"),
    category("event_kind", EventKind, "event"),
    category("disposition", Disposition, "disposition"),
    column("subject", "text", label="subject"),
    column("predicate", "text", label="predicate"),
    column("claim_ref", "text", label="claim", width=ID_WIDTH),
    column("rationale", "value", label="rationale"),
    column("request_ref", "text"),
    column("entry_id", "text"),
    column("agent_id", "text"),
)

#: `ReconcileReport`: a row per line reconciled.
RECONCILE_LINE = (
    column("subject", "text", label="subject"),
    column("predicate", "text", label="predicate"),
    category("status", BeliefStatus, "status"),
    column("escalated", "bool", label="escalated"),
    column("handle_id", "text", label="handle", width=ID_WIDTH),
)


def counted(count: int, noun: str) -> str:
    """`1 entry`, `3 entries`: `noun` is given as its plural."""
    if count == 1:
        noun = noun[:-3] + "y" if noun.endswith("ies") else noun[:-1]
    return f"{count} {noun}"


def as_of(moment: Any) -> str:
    """`, as of <moment>` for a read in the past (nothing for a read now)."""
    return "" if moment is None else f", as of {text(moment)}"


def cursor(next_cursor: Any) -> str:
    """What a page says about the next one."""
    return "; last page" if next_cursor is None else f"; next page: cursor={next_cursor}"
