"""Time travel's values: snapshots and read cuts, timelines, changes, erasure receipts.

Where a read stops in an agent's ledger: a transaction time, or a snapshot's position.

A read `as_of` a moment sees the rows written at or before it; a read `as_of` a `Snapshot`
sees the rows up to its `stream_seq`, so two entries that share a transaction time (the
bounds one `end_fact` writes) are told apart. Both become a `Cut`; the fold ages claims at
the cut's `at` (a snapshot's is the transaction time of its last entry).
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any, ClassVar

from mempill.core import tables
from mempill.core.dates import format_tx, parse_tx
from mempill.core.enums import BeliefStatus
from mempill.core.model import (
    FROZEN,
    AssertionRow,
    BeliefSlot,
    ClaimRow,
    LedgerEntry,
    LineRows,
    Listing,
    Projection,
    Record,
)
from mempill.core.tables import Column, column, values, verdict
from mempill.errors import ValidationError


@dataclass(**FROZEN)
class Snapshot(Record):
    """A position in one agent's ledger: every query given it as `as_of=` sees exactly the
    writes up to `stream_seq`, even those sharing its transaction time.

    `token` is its text form (`snapshot:<seq>@<tx time>#<agent tag>`), accepted wherever the
    object is; the tag ties it to its agent, so another agent's engine call refuses it."""

    agent_id: str
    stream_seq: int
    tx_time: datetime | None

    @property
    def token(self) -> str:
        return token(self)

    def __str__(self) -> str:
        return self.token

    def to_dict(self) -> dict[str, Any]:
        return {**Record.to_dict(self), "token": self.token}


@dataclass(**FROZEN)
class Segment(Record):
    """The belief of a line over one valid-time range `[valid_from, valid_until)` (None: open)."""

    valid_from: datetime | None
    valid_until: datetime | None
    status: BeliefStatus
    value: Any
    candidates: tuple[BeliefSlot, ...]


#: `Timeline`: a row per segment (its window ends as instants; None: open).
SEGMENT = (
    column("valid_from", "time", label="valid from", missing="open"),
    column("valid_until", "time", label="until", missing="open"),
    column("status", "category", label="status", enum=BeliefStatus),
    column("value", "value", label="value", shown=values),
    column("candidates", "int", lambda s: len(s.candidates), label="candidates"),
    column("claim_refs", "value", lambda s: [c.claim_ref for c in s.candidates]),
)


@dataclass(**FROZEN)
class Timeline(Listing, Record):
    """A line's belief across valid time, as believed at `as_of`: segments in order, adjacent
    equal ones merged; the first starts at `valid_from` and the last ends at `valid_until`."""

    agent_id: str
    subject: str
    predicate: str
    as_of: datetime | None
    valid_from: datetime | None
    valid_until: datetime | None
    segments: tuple[Segment, ...]
    _columns: ClassVar[tuple[Column, ...]] = SEGMENT
    _entries: ClassVar[str] = "segments"

    def _summary(self) -> str:
        window = (tables.text(self.valid_from) or "open", tables.text(self.valid_until) or "open")
        line = f"{self.subject} · {self.predicate} over [{window[0]}, {window[1]}): "
        return line + Listing._summary(self) + tables.as_of(self.as_of)

    def __iter__(self) -> Any:
        return iter(self.segments)

    def __len__(self) -> int:
        return len(self.segments)


@dataclass(**FROZEN)
class Change(Record):
    """One line touched in a changes window: its ledger entries there, in stream order, and
    its belief before the window and at its end."""

    subject: str
    predicate: str
    entries: tuple[LedgerEntry, ...]
    before: Projection
    after: Projection


def _side(name: str, label: str) -> tuple[Column, Column]:
    """A change's belief before or after the window: its status (the HTML cell: in a few
    words) and its value."""
    return (
        column(
            f"{name}_status",
            "category",
            f"{name}.status",
            label=label,
            shown=lambda c: verdict(getattr(c, name)),
            enum=BeliefStatus,
        ),
        column(f"{name}_value", "value", f"{name}.value"),
    )


#: `ChangesPage`: a row per line touched, with its entries' span and its belief both sides.
CHANGE = (
    column("subject", "text", label="subject"),
    column("predicate", "text", label="predicate"),
    column("entries", "int", lambda c: len(c.entries), label="entries"),
    column("first_seq", "int?", lambda c: c.entries[0].stream_seq if c.entries else None),
    column("last_seq", "int?", lambda c: c.entries[-1].stream_seq if c.entries else None),
    column("events", "value", lambda c: [e.event_kind.value for e in c.entries]),
    *_side("before", "before"),
    *_side("after", "after"),
)


@dataclass(**FROZEN)
class ChangesPage(Listing, Record):
    """Lines in the order the window first touched them; `next_cursor` (the stream_seq of the
    last line's first entry in the window) is passed as `cursor=` for the next page."""

    agent_id: str
    from_seq: int
    until_seq: int
    changes: tuple[Change, ...]
    next_cursor: int | None
    _columns: ClassVar[tuple[Column, ...]] = CHANGE
    _entries: ClassVar[str] = "changes"

    def _summary(self) -> str:
        span = f"entries after seq {self.from_seq} up to {self.until_seq}: "
        return span + Listing._summary(self) + tables.cursor(self.next_cursor)

    def __iter__(self) -> Any:
        return iter(self.changes)

    def __len__(self) -> int:
        return len(self.changes)


@dataclass(**FROZEN)
class ErasureReceipt(Record):
    """What `erase` did: the lines forgotten (sorted), the rows scrubbed, and its ledger
    entries (one `LineErased` entry per line, from `first_seq` to `last_seq`)."""

    agent_id: str
    subject: str
    predicate: str | None
    lines: tuple[tuple[str, str], ...]
    claims: int
    entries: int
    tx_time: datetime
    first_seq: int | None
    last_seq: int | None


PREFIX = "snapshot:"
_TOKEN = re.compile(
    r"snapshot:(\d{1,19})@(-|\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z)#([0-9a-f]{12})"
)


def tag(agent_id: str) -> str:
    """12 hex digits that tie a token to its agent without spelling the agent out."""
    return hashlib.sha256(agent_id.encode()).hexdigest()[:12]


def token(snapshot: Snapshot) -> str:
    at = "-" if snapshot.tx_time is None else format_tx(snapshot.tx_time)
    return f"{PREFIX}{snapshot.stream_seq}@{at}#{tag(snapshot.agent_id)}"


@dataclass(frozen=True, slots=True)
class Cut:
    """A read's bound: rows with tx time <= `at` and, for a snapshot, stream_seq <= `seq`."""

    at: datetime | None
    seq: int | None = None

    def claim(self, row: ClaimRow) -> bool:
        return (self.at is None or row.tx_time <= self.at) and (
            self.seq is None or row.stream_seq <= self.seq
        )

    def entry(self, row: LedgerEntry) -> bool:
        return (self.at is None or row.recorded_at <= self.at) and (
            self.seq is None or row.stream_seq <= self.seq
        )

    def assertion(self, row: AssertionRow) -> bool:
        return (self.at is None or row.tx_time <= self.at) and (
            self.seq is None or row.stream_seq <= self.seq
        )

    def rows(self, rows: LineRows) -> LineRows:
        return LineRows(
            claims=tuple(c for c in rows.claims if self.claim(c)),
            entries=tuple(e for e in rows.entries if self.entry(e)),
            assertions=tuple(a for a in rows.assertions if self.assertion(a)),
        )


def snapshot_of(value: Any, agent_id: str, what: str) -> Snapshot | None:
    """A Snapshot (or its token) of `agent_id`; None when `value` is neither.

    ValidationError for a malformed token or one of another agent."""
    if isinstance(value, Snapshot):
        found = value
        if found.agent_id != agent_id:
            raise ValidationError(f"{what}: that snapshot is of another agent")
        return found
    if not isinstance(value, str) or not value.startswith(PREFIX):
        return None
    match = _TOKEN.fullmatch(value)
    if match is None:
        raise ValidationError(f"{what}: not a snapshot token (snapshot:<seq>@<tx time>#<tag>)")
    seq, at, owner = match.groups()
    if owner != tag(agent_id):
        raise ValidationError(f"{what}: that snapshot is of another agent")
    try:
        moment = None if at == "-" else parse_tx(at)
    except ValueError as e:
        raise ValidationError(f"{what}: not a snapshot token (bad time)") from e
    if int(seq) > 2**63 - 1 or (moment is None) != (int(seq) == 0):
        raise ValidationError(f"{what}: not a snapshot token (bad position)")
    return Snapshot(agent_id=agent_id, stream_seq=int(seq), tx_time=moment)


def cut_of(snapshot: Snapshot) -> Cut:
    """A snapshot's cut; an empty ledger's (seq 0) sees nothing."""
    return Cut(at=snapshot.tx_time, seq=snapshot.stream_seq)
