"""The read fold (SPEC §5): belief computed from a line's rows, purely and deterministically.

`views` turns stored rows into one `ClaimView` per claim (state, liveness, effective
window); `project` and `history` fold those views at an instant. The write path
(`decide.py`) reads the same views, so writes and reads never disagree about a line.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from mempill.canonical import loads
from mempill.config import EngineConfig
from mempill.dates import display
from mempill.enums import (
    AssertionKind,
    BeliefStatus,
    Cardinality,
    Currency,
    Disposition,
    EventKind,
    Granularity,
    HistoryStatus,
    Marker,
    Provenance,
)
from mempill.model import (
    AssertionRow,
    BeliefSlot,
    ClaimRow,
    History,
    HistoryEntry,
    LedgerEntry,
    LineRows,
    Projection,
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
        view(row, entries.get(row.claim_ref, ()), assertions.get(row.claim_ref, ()), config)
        for row in rows.claims
    )


# ---------------------------------------------------------------- projection


@dataclass(frozen=True, slots=True)
class _Group:
    value: str
    claims: tuple[ClaimView, ...]

    @property
    def latest(self) -> ClaimView:
        return max(self.claims, key=lambda v: (v.row.tx_time, v.row.stream_seq))


def _groups(candidates: Iterable[ClaimView]) -> tuple[_Group, ...]:
    """Group by canonical value, in order of each value's first appearance."""
    grouped: dict[str, list[ClaimView]] = {}
    for candidate in sorted(candidates, key=lambda v: v.row.stream_seq):
        grouped.setdefault(candidate.value, []).append(candidate)
    return tuple(_Group(value, tuple(claims)) for value, claims in grouped.items())


def currency_of(
    last_refreshed: datetime, corroborations: int, at: datetime, config: EngineConfig
) -> Currency:
    """Fresh / AgingUnconfirmed / Decayed by age at `at`; enough corroboration doubles both."""
    factor = 2 if corroborations >= config.corroboration_count_for_currency_boost else 1
    age = max(at - last_refreshed, timedelta(0))
    if age < timedelta(days=config.aging_unconfirmed_threshold_days * factor):
        return Currency.FRESH
    if age < timedelta(days=config.decayed_threshold_days * factor):
        return Currency.AGING_UNCONFIRMED
    return Currency.DECAYED


def _slot(group: _Group, at: datetime, config: EngineConfig) -> BeliefSlot:
    rep = group.latest
    row = rep.row
    last_refreshed = max(v.row.tx_time for v in group.claims)
    corroborations = len(group.claims) - 1
    return BeliefSlot(
        claim_ref=row.claim_ref,
        value=loads(row.value),
        provenance=row.provenance,
        value_confidence=row.value_confidence,
        valid_time_confidence=row.valid_time_confidence,
        criticality=row.criticality,
        cardinality=row.cardinality,
        valid_from=rep.window_from,
        valid_until=rep.window_until,
        valid_from_display=display(rep.window_from, row.valid_from_granularity),
        valid_until_display=display(rep.window_until, rep.until_granularity),
        tx_time=row.tx_time,
        currency=currency_of(last_refreshed, corroborations, at, config),
        last_refreshed_at=last_refreshed,
        corroboration_count=corroborations,
        claim_refs=tuple(v.ref for v in group.claims),
    )


def is_set_valued(live: Sequence[ClaimView]) -> bool:
    """A line is SetValued only when every live claim on it is SetValued."""
    return bool(live) and all(v.row.cardinality is Cardinality.SET_VALUED for v in live)


def _no_belief_reason(live: Sequence[ClaimView], instant: datetime) -> str:
    if not live:
        return "no_claims"
    before = any(v.window_until is not None and v.window_until <= instant for v in live)
    after = any(v.window_from is not None and v.window_from > instant for v in live)
    if before and after:
        return "window_gap"
    return "not_yet_valid" if after else "window_ended"


def _review_open(group: _Group) -> bool:
    """A PendingReview claim stays flagged until a later authoritative claim corroborates it."""
    for flagged in group.claims:
        if flagged.review_flag_seq is None:
            continue
        corroborated = any(
            not other.inferred
            and other.review_flag_seq is None
            and other.row.stream_seq > flagged.review_flag_seq
            for other in group.claims
        )
        if not corroborated:
            return True
    return False


@dataclass(frozen=True, slots=True)
class _Belief:
    """The belief-tier split of a line's candidates at one instant."""

    candidates: tuple[ClaimView, ...]
    groups: tuple[_Group, ...]
    inferred_groups: tuple[_Group, ...]
    from_inferred: bool
    status: BeliefStatus | None


def _belief(all_views: Sequence[ClaimView], instant: datetime) -> _Belief:
    live = [v for v in all_views if v.live]
    candidates = tuple(v for v in live if v.contains(instant))
    authoritative = [v for v in candidates if not v.inferred]
    inferred = [v for v in candidates if v.inferred]
    tier = authoritative or inferred
    groups = _groups(tier)
    status: BeliefStatus | None
    if not groups:
        status = None
    elif len(groups) == 1:
        has_time = any(v.row.valid_from or v.row.valid_until for v in groups[0].claims)
        status = BeliefStatus.RESOLVED if has_time else BeliefStatus.TIMING_UNCERTAIN
    elif is_set_valued(live):
        status = BeliefStatus.RESOLVED
    else:
        status = BeliefStatus.CONTESTED
    return _Belief(
        candidates=candidates,
        groups=groups,
        inferred_groups=_groups(inferred) if authoritative else (),
        from_inferred=not authoritative and bool(inferred),
        status=status,
    )


def project(
    all_views: Sequence[ClaimView],
    *,
    agent_id: str,
    subject: str,
    predicate: str,
    as_of: datetime | None,
    valid_at: datetime | None,
    now: datetime,
    config: EngineConfig,
) -> Projection:
    """Fold a line's views into its belief at `valid_at` (default: `as_of`, else now)."""
    age_at = as_of or now
    instant = valid_at or age_at
    belief = _belief(all_views, instant)
    slots = tuple(_slot(g, age_at, config) for g in belief.groups)
    alternatives: tuple[BeliefSlot, ...] = ()
    members: tuple[BeliefSlot, ...] = ()
    primary_slot: BeliefSlot | None = None
    if belief.status is BeliefStatus.CONTESTED:
        alternatives = slots
    elif belief.status is not None:
        latest = max(belief.groups, key=lambda g: (g.latest.row.tx_time, g.latest.row.stream_seq))
        primary_slot = slots[belief.groups.index(latest)]
        members = slots if len(slots) > 1 else ()
    pending_views = [
        v
        for v in all_views
        if v.ingest in PENDING_INGEST and not v.invalidated and v.contains(instant)
    ]
    pending = tuple(_slot(_Group(v.value, (v,)), age_at, config) for v in pending_views)
    markers = _markers(belief, members, pending_views, config)
    belief_claims = [v for g in belief.groups for v in g.claims]
    newest = max(slots, key=lambda s: (s.last_refreshed_at, s.tx_time), default=None)
    return Projection(
        agent_id=agent_id,
        subject=subject,
        predicate=predicate,
        as_of=as_of,
        valid_at=instant,
        status=belief.status or BeliefStatus.NO_BELIEF,
        reason=None
        if belief.status
        else _no_belief_reason([v for v in all_views if v.live], instant),
        primary=primary_slot,
        alternatives=alternatives,
        members=members,
        inferred=tuple(_slot(g, age_at, config) for g in belief.inferred_groups),
        pending=pending,
        markers=markers,
        currency=None if newest is None else newest.currency,
        criticality=max(
            (v.row.criticality for v in belief_claims), key=lambda c: c.rank, default=None
        ),
        corroboration_count=(
            primary_slot.corroboration_count
            if primary_slot is not None
            else max((s.corroboration_count for s in slots), default=0)
        ),
    )


def _markers(
    belief: _Belief,
    members: Sequence[BeliefSlot],
    pending: Sequence[ClaimView],
    config: EngineConfig,
) -> tuple[Marker, ...]:
    claims = [v for g in belief.groups for v in g.claims]
    found: set[Marker] = set()
    if any(v.state is Disposition.QUEUED_FOR_ADJUDICATION for v in belief.candidates):
        found.add(Marker.QUEUED_FOR_ADJUDICATION)
    believed = {g.value for g in belief.groups}
    if any(v.ingest is Disposition.PENDING_CONFLICT and v.value not in believed for v in pending):
        found.add(Marker.PENDING_CONFLICT)  # a held-back challenger whose value is not believed
    if any(_review_open(g) for g in belief.groups):
        found.add(Marker.PENDING_REVIEW)
    if any(v.row.provenance is Provenance.RECALL_RE_ENTRY for v in claims):
        found.add(Marker.RECALL_TAINTED)
    if any(_low_anchor(v, config) for v in claims):
        found.add(Marker.LOW_DERIVATION_ANCHOR)
    if any(m.currency is not Currency.FRESH for m in members):
        found.add(Marker.AGED_SET_MEMBER)
    if belief.from_inferred:
        found.add(Marker.INFERRED)
    return tuple(m for m in Marker if m in found)


def _low_anchor(claim: ClaimView, config: EngineConfig) -> bool:
    """Deeper than the currency-boost cap (or with no External ancestor at all)."""
    depth = claim.row.derivation_depth
    return depth is None or depth > config.derivation_depth_cap_for_currency_boost


# ---------------------------------------------------------------- history


def _history_status(
    claim: ClaimView, belief: _Belief, believed: frozenset[str], instant: datetime
) -> HistoryStatus:
    if claim.invalidated:
        return HistoryStatus.INVALIDATED
    if claim.denied:
        return HistoryStatus.DENIED
    if claim.ingest is Disposition.QUARANTINED:
        return HistoryStatus.QUARANTINED
    if claim.ingest in PENDING_INGEST:
        return HistoryStatus.PENDING
    if claim.contains(instant):
        if claim.ref in believed:
            contested = belief.status is BeliefStatus.CONTESTED
            return HistoryStatus.CONTESTED if contested else HistoryStatus.CURRENT
        return HistoryStatus.INFERRED
    if claim.window_from is not None and claim.window_from > instant:
        return HistoryStatus.PENDING
    return HistoryStatus.SUPERSEDED if claim.bound_by_oracle else HistoryStatus.ENDED


def history(
    all_views: Sequence[ClaimView],
    *,
    agent_id: str,
    subject: str,
    predicate: str,
    as_of: datetime | None,
    now: datetime,
    config: EngineConfig,
) -> History:
    """Every claim of the line with its status at `as_of`, ordered by effective start."""
    instant = as_of or now
    belief = _belief(all_views, instant)
    believed = frozenset(v.ref for g in belief.groups for v in g.claims)
    ordered = sorted(
        all_views,
        key=lambda v: (v.window_from or v.row.tx_time, v.row.tx_time, v.row.stream_seq),
    )
    return History(
        agent_id=agent_id,
        subject=subject,
        predicate=predicate,
        as_of=as_of,
        entries=tuple(
            HistoryEntry(
                claim_ref=v.ref,
                value=loads(v.value),
                provenance=v.row.provenance,
                value_confidence=v.row.value_confidence,
                criticality=v.row.criticality,
                valid_from=v.window_from,
                valid_until=v.window_until,
                valid_from_display=display(v.window_from, v.row.valid_from_granularity),
                valid_until_display=display(v.window_until, v.until_granularity),
                ingest_disposition=v.ingest,
                state=v.state,
                status=_history_status(v, belief, believed, instant),
                tx_time=v.row.tx_time,
                stream_seq=v.row.stream_seq,
            )
            for v in ordered
        ),
    )
