"""One claim as the fold sees it: its state, liveness and effective window (reference §5.1–2).

`view` folds a claim's own ledger entries and validity assertions; `views` does it for
every claim of a line's rows. Reads and the write rules both start from these views.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from mempill.core.config import EngineConfig
from mempill.core.enums import (
    AssertionKind,
    Disposition,
    EventKind,
    Granularity,
)
from mempill.core.model import (
    AssertionRow,
    ClaimRow,
    LedgerEntry,
    LineRows,
)

#: Ingest dispositions that keep a claim out of belief at every instant (§5 step 1).
OUT_OF_BELIEF = frozenset(
    {
        Disposition.QUARANTINED,
        Disposition.REJECTED,
        Disposition.PENDING_LOW_CONFIDENCE,
        Disposition.PENDING_CONFLICT,
    }
)
PENDING_INGEST = frozenset({Disposition.PENDING_LOW_CONFIDENCE, Disposition.PENDING_CONFLICT})


@dataclass(frozen=True, slots=True)
class ClaimView:
    """One claim as the fold sees it. A window end of None is open; a start of None is -inf."""

    row: ClaimRow
    ingest: Disposition
    state: Disposition
    live: bool
    invalidated: bool
    denied: bool
    inferred: bool
    trusted: bool
    window_from: datetime | None
    window_until: datetime | None
    until_granularity: Granularity | None
    active_bound: datetime | None
    bound_by_oracle: bool
    review_flag_seq: int | None

    @property
    def ref(self) -> str:
        return self.row.claim_ref

    @property
    def value(self) -> str:
        return self.row.value

    def contains(self, instant: datetime) -> bool:
        return (self.window_from is None or self.window_from <= instant) and (
            self.window_until is None or instant < self.window_until
        )


def overlaps(
    a_from: datetime | None,
    a_until: datetime | None,
    b_from: datetime | None,
    b_until: datetime | None,
) -> bool:
    """Half-open windows overlap; an open end reaches everything on its side."""
    return (a_from is None or b_until is None or a_from < b_until) and (
        b_from is None or a_until is None or b_from < a_until
    )


def is_trusted(row: ClaimRow, config: EngineConfig) -> bool:
    return row.valid_from is not None and (
        row.valid_time_confidence >= config.valid_time_confidence_threshold
    )


def view(
    row: ClaimRow,
    entries: Sequence[LedgerEntry],
    assertions: Sequence[AssertionRow],
    config: EngineConfig,
) -> ClaimView:
    """Fold one claim's own entries and assertions (each in stream order) into its view."""
    ingest: Disposition | None = None
    state: Disposition | None = None
    denied = False
    review_seq: int | None = None
    for entry in entries:
        if entry.event_kind is EventKind.CLAIM_COMMITTED and ingest is None:
            ingest = entry.disposition
        if entry.event_kind is EventKind.RECALL_RE_ENTRY_DETECTED:
            continue  # an echo of the claim, not a change of its state
        state = entry.disposition
        if (
            entry.event_kind is EventKind.ADJUDICATION_RESOLVED
            and entry.disposition is Disposition.SUPERSEDED
        ):
            denied = True
        if entry.event_kind is EventKind.DEPENDENT_FLAGGED_PENDING_REVIEW:
            review_seq = entry.stream_seq
    ingest = ingest or state or Disposition.COMMITTED_CHEAP
    state = state or ingest
    bounds: list[AssertionRow] = []
    invalidated = False
    for assertion in assertions:
        if assertion.kind is AssertionKind.BOUND:
            bounds.append(assertion)
        elif assertion.kind is AssertionKind.REOPEN and bounds:
            bounds.pop()
        elif assertion.kind is AssertionKind.INVALIDATE:
            invalidated = True
    trusted = is_trusted(row, config)
    window_from = row.valid_from if trusted else None
    window_until = row.valid_until if trusted else None
    until_granularity = row.valid_until_granularity if trusted else None
    active = bounds[-1] if bounds else None
    if (
        active is not None
        and active.bound_at is not None
        and (window_until is None or active.bound_at < window_until)
    ):
        window_until = active.bound_at
        until_granularity = active.bound_granularity
    return ClaimView(
        row=row,
        ingest=ingest,
        state=state,
        live=ingest not in OUT_OF_BELIEF and not invalidated and not denied,
        invalidated=invalidated,
        denied=denied,
        inferred=ingest is Disposition.COMMITTED_INFERRED,
        trusted=trusted,
        window_from=window_from,
        window_until=window_until,
        until_granularity=until_granularity,
        active_bound=None if active is None else active.bound_at,
        bound_by_oracle=active is not None and active.handle_id is not None,
        review_flag_seq=review_seq if state is Disposition.PENDING_REVIEW else None,
    )


def views(rows: LineRows, config: EngineConfig) -> tuple[ClaimView, ...]:
    """One view per claim of the line, in stream order."""
    entries: dict[str, list[LedgerEntry]] = defaultdict(list)
    for entry in rows.entries:
        if entry.claim_ref is not None:
            entries[entry.claim_ref].append(entry)
    assertions: dict[str, list[AssertionRow]] = defaultdict(list)
    for assertion in rows.assertions:
        assertions[assertion.claim_ref].append(assertion)
    return tuple(
        view(row, entries[row.claim_ref], assertions[row.claim_ref], config) for row in rows.claims
    )
