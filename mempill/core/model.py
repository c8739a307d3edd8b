"""Frozen value objects that cross the engine's boundaries (requests, rows, results)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from datetime import datetime
from enum import Enum
from typing import TYPE_CHECKING, Any, ClassVar

from mempill.core import display, frames, tables
from mempill.core.dates import rfc3339
from mempill.core.enums import (
    AssertionKind,
    BeliefStatus,
    Cardinality,
    Criticality,
    Currency,
    Disposition,
    EdgeKind,
    EventKind,
    Granularity,
    HistoryStatus,
    Marker,
    PendingStatus,
    Provenance,
    Verdict,
)
from mempill.core.tables import Column

if TYPE_CHECKING:
    import pandas as pd

FROZEN = {"frozen": True, "slots": True, "kw_only": True}


_SCALARS = frozenset({str, int, float, bool, type(None)})


def plain(value: Any) -> Any:
    """Convert results to plain JSON-ready Python: dicts, lists, strings, numbers."""
    kind = type(value)
    if kind in _SCALARS:  # exactly these types (an enum member is a subclass: below)
        return value
    if kind is dict:
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, Record):
        return value.to_dict()
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, datetime):
        return rfc3339(value)
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if isinstance(value, Mapping):
        return {str(k): plain(v) for k, v in value.items()}
    return value


_FIELD_NAMES: dict[type, tuple[str, ...]] = {}


def _field_names(kind: type) -> tuple[str, ...]:
    """The dataclass fields of a Record type, in order (read once per type)."""
    names = _FIELD_NAMES.get(kind)
    if names is None:
        names = _FIELD_NAMES[kind] = tuple(f.name for f in fields(kind))
    return names


class Record:
    """Mixin for result objects: `to_dict()` and a notebook-friendly `_repr_html_`."""

    __slots__ = ()

    def to_dict(self) -> dict[str, Any]:
        return {name: plain(getattr(self, name)) for name in _field_names(type(self))}

    def _repr_html_(self) -> str:
        return display.fields(self.to_dict(), type(self).__name__)


class Listing:
    """Mixin for a result that is a list of entries (attribute `_entries`): in a notebook one
    table with a row per entry, and `to_frame()`, both with the columns `_columns` declares."""

    __slots__ = ()
    _columns: ClassVar[tuple[Column, ...]] = ()
    _entries: ClassVar[str] = "entries"

    def _summary(self) -> str:
        """The caption after the type's name: what the list is of, its size, its cursor."""
        return tables.counted(len(getattr(self, self._entries)), self._entries)

    def _repr_html_(self) -> str:
        rows = getattr(self, self._entries)
        return display.grid(self._columns, rows, type(self).__name__, self._summary())

    def to_frame(self) -> pd.DataFrame:
        """The entries as a pandas DataFrame, a row each (needs the notebooks extra)."""
        return frames.frame(self._columns, getattr(self, self._entries))


# ---------------------------------------------------------------- requests


@dataclass(**FROZEN)
class ValidTime(Record):
    """A caller-supplied valid-time window `[valid_from, valid_until)`; either end may be open."""

    valid_from: datetime | None = None
    valid_until: datetime | None = None
    from_granularity: Granularity | None = None
    until_granularity: Granularity | None = None


@dataclass(**FROZEN)
class IngestRequest(Record):
    """A claim to write. `valid_time_confidence=None` means 1.0 with a window, else 0.0."""

    agent_id: str
    subject: str
    predicate: str
    value: Any
    provenance: Provenance = Provenance.USER_ASSERTED
    cardinality: Cardinality = Cardinality.FUNCTIONAL
    value_confidence: float = 1.0
    valid_time: ValidTime | None = None
    valid_time_confidence: float | None = None
    criticality: Criticality = Criticality.MEDIUM
    derived_from: tuple[str, ...] = ()
    claim_ref: str | None = None


# ---------------------------------------------------------------- stored rows


@dataclass(**FROZEN)
class ClaimRow(Record):
    agent_id: str
    claim_ref: str
    subject: str
    predicate: str
    value: str  # canonical JSON text
    cardinality: Cardinality
    provenance: Provenance
    value_confidence: float
    valid_time_confidence: float
    criticality: Criticality
    valid_from: datetime | None
    valid_from_granularity: Granularity | None
    valid_until: datetime | None
    valid_until_granularity: Granularity | None
    tx_time: datetime
    stream_seq: int
    derived_from: tuple[str, ...]
    derivation_depth: int | None
    external_anchor: str | None


@dataclass(**FROZEN)
class LedgerEntry(Record):
    agent_id: str
    stream_seq: int
    entry_id: str
    claim_ref: str | None
    event_kind: EventKind
    disposition: Disposition
    rationale: dict[str, Any]
    recorded_at: datetime
    subject: str | None = None
    predicate: str | None = None
    request_ref: str | None = None


@dataclass(**FROZEN)
class AssertionRow(Record):
    agent_id: str
    assertion_ref: str
    claim_ref: str
    subject: str
    predicate: str
    kind: AssertionKind
    bound_at: datetime | None
    bound_granularity: Granularity | None
    provenance: Provenance
    confidence: float
    tx_time: datetime
    stream_seq: int
    handle_id: str | None = None


@dataclass(**FROZEN)
class EdgeRow(Record):
    agent_id: str
    kind: EdgeKind
    from_ref: str
    to_ref: str
    tx_time: datetime


@dataclass(**FROZEN)
class PendingAdjudication(Record):
    """A row of the oracle outbox."""

    agent_id: str
    handle_id: str
    subject: str
    predicate: str
    challenger_ref: str
    incumbent_refs: tuple[str, ...]
    request: dict[str, Any]
    queued_at: datetime
    expires_at: datetime | None
    status: PendingStatus
    notified: bool


@dataclass(**FROZEN)
class WriteStat(Record):
    agent_id: str
    first_seq: int | None
    last_seq: int | None
    lock_wait_us: int
    txn_us: int
    backend: str
    pid: int
    recorded_at: datetime


@dataclass(**FROZEN)
class LineRows:
    """Everything stored about one line (up to an `as_of`), each tuple in stream order."""

    claims: tuple[ClaimRow, ...] = ()
    entries: tuple[LedgerEntry, ...] = ()
    assertions: tuple[AssertionRow, ...] = ()


# ---------------------------------------------------------------- results


@dataclass(**FROZEN)
class Receipt(Record):
    """What `ingest` returns. For a rejection `claim_ref` is the ref the ledger records."""

    claim_ref: str
    disposition: Disposition
    reason: str
    contested_with: tuple[str, ...] = ()
    handle_id: str | None = None
    oracle_notified: bool | None = None

    @property
    def committed(self) -> bool:
        """This call stored a claim row, whatever its disposition (a Contested or pending
        claim is stored too); False for a Rejected request and for a recall echo."""
        return self.disposition is not Disposition.REJECTED and self.reason != "recall_echo"


@dataclass(**FROZEN)
class ValidityReceipt(Record):
    """What `end`, `reopen` and `invalidate` return."""

    claim_ref: str
    disposition: Disposition
    reason: str
    assertion_ref: str | None = None
    effective_at: datetime | None = None
    no_op: bool = False

    @property
    def committed(self) -> bool:
        """This call stored a validity assertion (False for a rejection or a no-op)."""
        return self.assertion_ref is not None


@dataclass(**FROZEN)
class EndFactReceipt(Record):
    """What `end_fact` returns: the bounded claims of the ended belief."""

    subject: str
    predicate: str
    value: Any
    effective_at: datetime
    receipts: tuple[ValidityReceipt, ...]

    @property
    def no_op(self) -> bool:
        return all(r.no_op for r in self.receipts)


@dataclass(**FROZEN)
class BeliefSlot(Record):
    """One value group of a projection, represented by its latest claim."""

    claim_ref: str
    value: Any
    provenance: Provenance
    value_confidence: float
    valid_time_confidence: float
    criticality: Criticality
    cardinality: Cardinality
    valid_from: datetime | None
    valid_until: datetime | None
    valid_from_display: str | None
    valid_until_display: str | None
    tx_time: datetime
    currency: Currency
    last_refreshed_at: datetime
    corroboration_count: int
    claim_refs: tuple[str, ...]


@dataclass(**FROZEN)
class Projection(Record):
    """The belief of one line at (`as_of`, `valid_at`), computed by the fold."""

    agent_id: str
    subject: str
    predicate: str
    as_of: datetime | None
    valid_at: datetime
    status: BeliefStatus
    reason: str | None
    primary: BeliefSlot | None
    alternatives: tuple[BeliefSlot, ...]
    members: tuple[BeliefSlot, ...]
    inferred: tuple[BeliefSlot, ...]
    pending: tuple[BeliefSlot, ...]
    markers: tuple[Marker, ...]
    currency: Currency | None
    criticality: Criticality | None
    corroboration_count: int

    @property
    def value(self) -> Any:
        """The primary value, or None (check `status` before trusting it)."""
        return None if self.primary is None else self.primary.value

    @property
    def is_contested(self) -> bool:
        return self.status is BeliefStatus.CONTESTED

    @property
    def candidates(self) -> tuple[BeliefSlot, ...]:
        """Every value the belief holds: the contested alternatives or the set's members."""
        if self.alternatives:
            return self.alternatives
        if self.members:
            return self.members
        return () if self.primary is None else (self.primary,)

    def _repr_html_(self) -> str:
        return display.belief(self)

    def to_frame(self, *, candidates: bool = False) -> pd.DataFrame:
        """The belief as one row (the primary's window), or with `candidates=True` a row per
        slot with its role: primary, alternative, member, inferred, pending."""
        if candidates:
            return frames.frame(tables.SLOT, tables.slots(self))
        return frames.frame(tables.BELIEF, [self])


@dataclass(**FROZEN)
class HistoryEntry(Record):
    claim_ref: str
    value: Any
    provenance: Provenance
    value_confidence: float
    criticality: Criticality
    valid_from: datetime | None
    valid_until: datetime | None
    valid_from_display: str | None
    valid_until_display: str | None
    ingest_disposition: Disposition
    state: Disposition
    status: HistoryStatus
    tx_time: datetime
    stream_seq: int


@dataclass(**FROZEN)
class History(Listing, Record):
    agent_id: str
    subject: str
    predicate: str
    as_of: datetime | None
    entries: tuple[HistoryEntry, ...]
    _columns: ClassVar[tuple[Column, ...]] = tables.HISTORY_ENTRY

    def _summary(self) -> str:
        line = f"{self.subject} · {self.predicate}: {Listing._summary(self)}"
        return line + tables.as_of(self.as_of)

    def current(self) -> tuple[HistoryEntry, ...]:
        return tuple(e for e in self.entries if e.status is HistoryStatus.CURRENT)

    def __iter__(self) -> Any:
        return iter(self.entries)

    def __len__(self) -> int:
        return len(self.entries)


@dataclass(**FROZEN)
class AuditPage(Listing, Record):
    entries: tuple[LedgerEntry, ...]
    next_cursor: int | None
    _columns: ClassVar[tuple[Column, ...]] = tables.LEDGER_ENTRY

    def _summary(self) -> str:
        return Listing._summary(self) + tables.cursor(self.next_cursor)


@dataclass(**FROZEN)
class ReconcileLine(Record):
    subject: str
    predicate: str
    status: BeliefStatus
    escalated: bool
    handle_id: str | None = None


@dataclass(**FROZEN)
class ReconcileReport(Listing, Record):
    agent_id: str
    lines: tuple[ReconcileLine, ...]
    escalations: int
    notified: tuple[str, ...] = field(default=())
    _columns: ClassVar[tuple[Column, ...]] = tables.RECONCILE_LINE
    _entries: ClassVar[str] = "lines"

    def _summary(self) -> str:
        return f"{Listing._summary(self)}, {self.escalations} escalated"


@dataclass(**FROZEN)
class AdjudicationRequest(Record):
    """What the oracle is asked: which challenger against which incumbents, on which line."""

    handle_id: str
    agent_id: str
    subject: str
    predicate: str
    payload: dict[str, Any]


@dataclass(**FROZEN)
class AdjudicationOutcome(Record):
    handle_id: str
    agent_id: str
    verdict: Verdict
    claim_ref: str
    disposition: Disposition
    superseded: tuple[str, ...] = ()
