"""The read fold (reference §5): belief computed from a line's rows, purely and deterministically.

`views` turns stored rows into one `ClaimView` per claim (state, liveness, effective
window); `project` and `history` fold those views at an instant. The write path
(`decide.py`) reads the same views, so writes and reads never disagree about a line.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from mempill.core.canonical import loads
from mempill.core.config import EngineConfig
from mempill.core.dates import display
from mempill.core.enums import (
    BeliefStatus,
    Currency,
    Disposition,
    HistoryStatus,
    Marker,
    Provenance,
)
from mempill.core.line import Line, Scan
from mempill.core.model import (
    BeliefSlot,
    History,
    HistoryEntry,
    Projection,
)
from mempill.core.view import (
    OUT_OF_BELIEF,
    PENDING_INGEST,
    ClaimView,
    is_trusted,
    overlaps,
    view,
    views,
)

__all__ = [
    "OUT_OF_BELIEF",
    "PENDING_INGEST",
    "ClaimView",
    "Line",
    "Scan",
    "history",
    "is_trusted",
    "overlaps",
    "project",
    "view",
    "views",
]


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


def _slot(claims: tuple[ClaimView, ...], at: datetime, config: EngineConfig) -> BeliefSlot:
    """One value's slot: its latest claim stands for the claims of the value."""
    rep = max(claims, key=lambda v: (v.row.tx_time, v.row.stream_seq))
    row = rep.row
    last_refreshed = max(v.row.tx_time for v in claims)
    corroborations = len(claims) - 1
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
        claim_refs=tuple(v.ref for v in claims),
    )


def _no_belief_reason(line: Line, instant: datetime) -> str:
    if not line.has_live():
        return "no_claims"
    before = line.any_ended_by(instant)
    after = line.any_starting_after(instant)
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


def _belief(line: Line, instant: datetime) -> _Belief:
    candidates = tuple(line.containing(instant))
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
    elif line.set_valued():
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
    line: Line,
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
    belief = _belief(line, instant)
    slots = tuple(_slot(g.claims, age_at, config) for g in belief.groups)
    alternatives: tuple[BeliefSlot, ...] = ()
    members: tuple[BeliefSlot, ...] = ()
    primary_slot: BeliefSlot | None = None
    if belief.status is BeliefStatus.CONTESTED:
        alternatives = slots
    elif belief.status is not None:
        latest = max(belief.groups, key=lambda g: (g.latest.row.tx_time, g.latest.row.stream_seq))
        primary_slot = slots[belief.groups.index(latest)]
        members = slots if len(slots) > 1 else ()
    pending_views = line.pending_containing(instant)
    pending = tuple(_slot((v,), age_at, config) for v in pending_views)
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
        reason=None if belief.status else _no_belief_reason(line, instant),
        primary=primary_slot,
        alternatives=alternatives,
        members=members,
        inferred=tuple(_slot(g.claims, age_at, config) for g in belief.inferred_groups),
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
    line: Line,
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
    belief = _belief(line, instant)
    believed = frozenset(v.ref for g in belief.groups for v in g.claims)
    ordered = sorted(
        line.views(),
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
