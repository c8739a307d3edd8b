"""Turning decisions into rows inside one agent's write transaction.

`Batch` owns what every write needs: the agent's next `stream_seq`, a strictly
increasing tx time per call (SPEC §1.2) and the id factory. The functions below apply
one public write each; the engine wraps them in a transaction with retries.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from mempill.canonical import is_clean_text, loads, safe_json
from mempill.config import EngineConfig
from mempill.dates import MICROSECOND, parse_tx, rfc3339
from mempill.decide import (
    MAX_KEY_CHARS,
    AssertionDecision,
    Candidate,
    decide,
    derivation,
    effective_time_confidence,
    validate,
)
from mempill.enums import (
    AssertionKind,
    Disposition,
    EdgeKind,
    EventKind,
    Granularity,
    PendingStatus,
    Provenance,
    Verdict,
)
from mempill.errors import NotFoundError
from mempill.fold import ClaimView, overlaps, view
from mempill.ids import IdFactory
from mempill.lines import LineCache, LineState
from mempill.model import (
    AdjudicationOutcome,
    AssertionRow,
    ClaimRow,
    EdgeRow,
    IngestRequest,
    LedgerEntry,
    LineRows,
    PendingAdjudication,
    Receipt,
    ValidityReceipt,
)
from mempill.ports import Writer


@dataclass
class Batch:
    """The state of one write transaction of one agent."""

    txn: Writer
    agent_id: str
    ids: IdFactory
    now: datetime
    config: EngineConfig
    has_oracle: bool
    cache: LineCache
    seq: int = 0
    start_seq: int = 0
    last_tx: datetime | None = None
    tx_time: datetime | None = None
    queued: list[str] = field(default_factory=list)
    new_claims: list[ClaimRow] = field(default_factory=list)
    local: dict[tuple[str, str], LineState] = field(default_factory=dict)
    seen: dict[tuple[str, str], LineState] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.seq, self.last_tx = self.txn.head()
        self.start_seq = self.seq

    def tick(self) -> datetime:
        """Start a call: its tx time is now, or last + 1 µs if the clock has not moved past."""
        tx = (
            self.now
            if self.last_tx is None or self.now > self.last_tx
            else self.last_tx + MICROSECOND
        )
        self.last_tx = self.tx_time = tx
        return tx

    @property
    def tx(self) -> datetime:
        assert self.tx_time is not None, "tick() before writing"
        return self.tx_time

    def next_seq(self) -> int:
        self.seq += 1
        return self.seq

    # ---- line states: the shared cache holds committed rows, writes go to private copies

    def line_state(self, subject: str, predicate: str) -> LineState:
        """The line as this transaction sees it (its own writes included)."""
        line = (subject, predicate)
        known = self.local.get(line) or self.seen.get(line)
        if known is not None:  # we hold the agent's lock: only our own writes change it
            return known
        version = self.txn.line_version(subject, predicate)
        shared = self.cache.refreshed(
            (self.agent_id, subject, predicate),
            version,
            lambda after: self.txn.line_since(subject, predicate, after),
            upto=self.start_seq,  # never let this transaction's own rows into the shared cache
        )
        if version > self.start_seq:
            return self._private(line, shared)
        self.seen[line] = shared
        return shared

    def _private(self, line: tuple[str, str], shared: LineState) -> LineState:
        state = self.cache.private_copy(shared)
        state.apply(self.txn.line_since(line[0], line[1], state.version))
        self.local[line] = state
        return state

    def _writing(self, line: tuple[str, str]) -> LineState:
        """The private state of a line about to get a row (loaded before the row is stored).

        A line without a private state has no rows of this transaction yet (all of them
        go through here), so the shared committed state is exactly its current state.
        """
        state = self.line_state(*line)
        private = self.local.get(line)
        if private is None:
            private = self.local[line] = self.cache.private_copy(state)
        return private

    def add_claim(self, row: ClaimRow) -> None:
        state = self._writing((row.subject, row.predicate))
        self.txn.append_claim(row)
        state.apply(LineRows(claims=(row,)))
        self.new_claims.append(row)

    def add_assertion(self, row: AssertionRow) -> None:
        state = self._writing((row.subject, row.predicate))
        self.txn.append_assertion(row)
        state.apply(LineRows(assertions=(row,)))

    def entry(
        self,
        kind: EventKind,
        disposition: Disposition,
        rationale: dict[str, Any],
        *,
        claim_ref: str | None,
        line: tuple[str, str] | None,
        request_ref: str | None = None,
    ) -> LedgerEntry:
        entry = LedgerEntry(
            agent_id=self.agent_id,
            stream_seq=self.next_seq(),
            entry_id=self.ids(),
            claim_ref=claim_ref,
            event_kind=kind,
            disposition=disposition,
            rationale=rationale,
            recorded_at=self.tx,
            subject=None if line is None else line[0],
            predicate=None if line is None else line[1],
            request_ref=request_ref,
        )
        state = None if line is None else self._writing(line)
        self.txn.append_entry(entry)
        if state is not None:
            state.apply(LineRows(entries=(entry,)))
        return entry

    def publish(self) -> None:
        """After COMMIT: the private line states are committed now; share them."""
        for (subject, predicate), state in self.local.items():
            self.cache.publish((self.agent_id, subject, predicate), state)

    def claim_view(self, claim_ref: str) -> ClaimView:
        row = self.txn.claim(claim_ref)
        if row is None:
            raise NotFoundError(f"agent {self.agent_id!r} has no claim {claim_ref!r}")
        return view(
            row,
            self.txn.claim_entries(claim_ref),
            self.txn.claim_assertions(claim_ref),
            self.config,
        )


# ---------------------------------------------------------------- ingest


def ingest(batch: Batch, request: IngestRequest, ref: str) -> Receipt:
    """Decide and append one ingest request (rules V … E6)."""
    tx = batch.tick()
    line = (request.subject, request.predicate)
    reason, text = validate(request, batch.config)
    if reason is not None or text is None:
        return _rejected(batch, request, ref, "V", reason or "invalid")
    state = batch.line_state(*line)
    line_views = state.ordered_views()
    parents = {p: row for p in request.derived_from if (row := batch.txn.claim(p)) is not None}
    depth, anchor = derivation(request.provenance, request.derived_from, parents)
    time_confidence = effective_time_confidence(request)
    window = request.valid_time
    trusted = (
        window is not None
        and window.valid_from is not None
        and time_confidence >= batch.config.valid_time_confidence_threshold
    )
    decision = decide(
        Candidate(request, text, trusted, depth),
        line_views,
        state.echoes,
        parents,
        tx_time=tx,
        has_oracle=batch.has_oracle,
        config=batch.config,
    )
    if decision.disposition is Disposition.REJECTED:
        return _rejected(batch, request, ref, decision.rule, decision.reason)
    rationale: dict[str, Any] = {"route": decision.rule, "reason": decision.reason}
    if decision.matched_ref is not None:
        rationale["request_ref"] = ref
        batch.entry(
            EventKind.RECALL_RE_ENTRY_DETECTED,
            decision.disposition,
            rationale,
            claim_ref=decision.matched_ref,
            line=line,
            request_ref=ref,
        )
        return Receipt(
            claim_ref=decision.matched_ref, disposition=decision.disposition, reason=decision.reason
        )
    row = ClaimRow(
        agent_id=batch.agent_id,
        claim_ref=ref,
        subject=request.subject,
        predicate=request.predicate,
        value=text,
        cardinality=request.cardinality,
        provenance=request.provenance,
        value_confidence=float(request.value_confidence),
        valid_time_confidence=float(time_confidence),
        criticality=request.criticality,
        valid_from=None if window is None else window.valid_from,
        valid_from_granularity=None if window is None else window.from_granularity,
        valid_until=None if window is None else window.valid_until,
        valid_until_granularity=None if window is None else window.until_granularity,
        tx_time=tx,
        stream_seq=batch.seq + 1,
        derived_from=request.derived_from,
        derivation_depth=depth,
        external_anchor=anchor,
    )
    batch.add_claim(row)
    for parent in request.derived_from:
        if parent in parents:
            batch.txn.append_edge(
                EdgeRow(
                    agent_id=batch.agent_id,
                    kind=EdgeKind.DERIVED_FROM,
                    from_ref=ref,
                    to_ref=parent,
                    tx_time=tx,
                )
            )
    if decision.contested_with:
        rationale["contested_with"] = list(decision.contested_with)
    handle = batch.ids() if decision.queue else None
    if handle is not None:
        rationale["handle_id"] = handle
    batch.entry(
        EventKind.CLAIM_COMMITTED,
        decision.disposition,
        rationale,
        claim_ref=ref,
        line=line,
        request_ref=ref,
    )
    if handle is not None:
        incumbents = [v for v in line_views if v.ref in decision.contested_with]
        queue(batch, handle, row, [v.row for v in incumbents], decision.rule)
    return Receipt(
        claim_ref=ref,
        disposition=decision.disposition,
        reason=decision.reason,
        contested_with=decision.contested_with,
        handle_id=handle,
    )


def _rejected(batch: Batch, request: IngestRequest, ref: str, rule: str, reason: str) -> Receipt:
    keys_ok = all(
        0 < len(k) <= MAX_KEY_CHARS and is_clean_text(k)
        for k in (request.subject, request.predicate)
    )
    batch.entry(
        EventKind.CLAIM_REJECTED,
        Disposition.REJECTED,
        {
            "route": rule,
            "reason": reason,
            "request_ref": ref,
            "request": request_summary(request, reason),
        },
        claim_ref=None,
        line=(request.subject, request.predicate) if keys_ok else None,
        request_ref=ref,
    )
    return Receipt(claim_ref=ref, disposition=Disposition.REJECTED, reason=reason)


def request_summary(request: IngestRequest, reason: str) -> dict[str, Any]:
    """A storable echo of a rejected request (values too big or deep are left out)."""
    summary = safe_json(
        {
            "agent_id": request.agent_id,
            "subject": request.subject,
            "predicate": request.predicate,
            "provenance": request.provenance.value,
            "cardinality": request.cardinality.value,
            "criticality": request.criticality.value,
            "value_confidence": request.value_confidence,
            "valid_time_confidence": request.valid_time_confidence,
            "derived_from": list(request.derived_from),
        }
    )
    if reason not in ("value_too_large", "value_too_deep"):
        summary["value"] = safe_json(request.value)
    return dict(summary)


def receipt_from_entry(entry: LedgerEntry, notified: bool | None) -> Receipt:
    """Rebuild the receipt of an ingest whose commit already happened (idempotent retry)."""
    rationale = entry.rationale
    return Receipt(
        claim_ref=entry.claim_ref or str(rationale.get("request_ref")),
        disposition=entry.disposition,
        reason=str(rationale.get("reason")),
        contested_with=tuple(rationale.get("contested_with", ())),
        handle_id=rationale.get("handle_id"),
        oracle_notified=notified,
    )


# ---------------------------------------------------------------- the oracle outbox


def claim_payload(row: ClaimRow) -> dict[str, Any]:
    payload = row.to_dict()
    payload["value"] = loads(row.value)
    return payload


def queue(
    batch: Batch, handle: str, challenger: ClaimRow, incumbents: list[ClaimRow], rule: str
) -> None:
    """Write the pending-adjudication row and its ledger entry (same transaction as the claim)."""
    ttl = batch.config.default_adjudication_ttl_seconds
    expires = None if ttl is None else batch.tx + timedelta(seconds=ttl)
    line = (challenger.subject, challenger.predicate)
    payload = {
        "line": {"agent_id": batch.agent_id, "subject": line[0], "predicate": line[1]},
        "challenger": claim_payload(challenger),
        "incumbents": [claim_payload(r) for r in incumbents],
        "rule": rule,
        "queued_at": rfc3339(batch.tx),
        "expires_at": rfc3339(expires),
    }
    batch.txn.append_pending(
        PendingAdjudication(
            agent_id=batch.agent_id,
            handle_id=handle,
            subject=line[0],
            predicate=line[1],
            challenger_ref=challenger.claim_ref,
            incumbent_refs=tuple(r.claim_ref for r in incumbents),
            request=payload,
            queued_at=batch.tx,
            expires_at=expires,
            status=PendingStatus.PENDING,
            notified=False,
        )
    )
    batch.entry(
        EventKind.ADJUDICATION_REQUESTED,
        Disposition.QUEUED_FOR_ADJUDICATION,
        {
            "route": rule,
            "reason": "oracle",
            "handle_id": handle,
            "incumbents": [r.claim_ref for r in incumbents],
        },
        claim_ref=challenger.claim_ref,
        line=line,
    )
    batch.queued.append(handle)


def expire(batch: Batch, pending: PendingAdjudication) -> None:
    batch.txn.set_pending_status(pending.handle_id, PendingStatus.EXPIRED)
    batch.entry(
        EventKind.ADJUDICATION_EXPIRED,
        Disposition.CONTESTED,
        {"route": "oracle", "reason": "expired", "handle_id": pending.handle_id},
        claim_ref=pending.challenger_ref,
        line=(pending.subject, pending.predicate),
    )


def adjudicate(
    batch: Batch, pending: PendingAdjudication, verdict: Verdict, evidence: Provenance, op_ref: str
) -> AdjudicationOutcome:
    """Apply an oracle verdict (SPEC §6) to a pending row that has not expired."""
    challenger = batch.claim_view(pending.challenger_ref)
    line = (pending.subject, pending.predicate)
    base = {
        "route": "oracle",
        "handle_id": pending.handle_id,
        "verdict": verdict.value,
        "evidence": evidence.value,
    }
    superseded: list[str] = []
    if verdict is Verdict.AFFIRM:
        disposition = Disposition.COMMITTED_CHEAP
        for ref in pending.incumbent_refs if challenger.live else ():
            incumbent = batch.claim_view(ref)
            if not _still_conflicts(challenger, incumbent):
                continue
            at = _affirm_bound(challenger, incumbent, batch.tx)
            if incumbent.active_bound is not None and incumbent.active_bound <= at:
                continue
            bound(batch, incumbent, at, None, evidence, 1.0, handle=pending.handle_id)
            batch.txn.append_edge(
                EdgeRow(
                    agent_id=batch.agent_id,
                    kind=EdgeKind.SUPERSEDES,
                    from_ref=challenger.ref,
                    to_ref=ref,
                    tx_time=batch.tx,
                )
            )
            superseded.append(ref)
    elif verdict is Verdict.DENY:
        disposition = Disposition.SUPERSEDED
    else:
        disposition = Disposition.CONTESTED
        for ref in pending.incumbent_refs:
            if batch.claim_view(ref).live:
                batch.entry(
                    EventKind.ADJUDICATION_RESOLVED,
                    disposition,
                    {**base, "reason": "oracle_unknown", "side": "incumbent"},
                    claim_ref=ref,
                    line=line,
                )
    reason = {
        Verdict.AFFIRM: "oracle_affirm",
        Verdict.DENY: "oracle_deny",
        Verdict.UNKNOWN: "oracle_unknown",
    }[verdict]
    batch.entry(
        EventKind.ADJUDICATION_RESOLVED,
        disposition,
        {**base, "reason": reason, "side": "challenger", "superseded": superseded},
        claim_ref=challenger.ref,
        line=line,
        request_ref=op_ref,
    )
    batch.txn.set_pending_status(pending.handle_id, PendingStatus.RESOLVED)
    if verdict is Verdict.DENY:
        flag_dependents(batch, challenger.ref, "parent_denied")
    return AdjudicationOutcome(
        handle_id=pending.handle_id,
        agent_id=batch.agent_id,
        verdict=verdict,
        claim_ref=challenger.ref,
        disposition=disposition,
        superseded=tuple(superseded),
    )


def _still_conflicts(challenger: ClaimView, incumbent: ClaimView) -> bool:
    return (
        incumbent.live
        and incumbent.value != challenger.value
        and overlaps(
            challenger.window_from,
            challenger.window_until,
            incumbent.window_from,
            incumbent.window_until,
        )
    )


def _affirm_bound(challenger: ClaimView, incumbent: ClaimView, now: datetime) -> datetime:
    """The challenger's trusted start when later than the incumbent's start, else now."""
    start = challenger.window_from
    if (
        challenger.trusted
        and start is not None
        and (incumbent.window_from is None or start > incumbent.window_from)
    ):
        return start
    return now


# ---------------------------------------------------------------- validity assertions


def bound(
    batch: Batch,
    claim: ClaimView,
    at: datetime,
    granularity: Granularity | None,
    provenance: Provenance,
    confidence: float,
    *,
    handle: str | None = None,
    op_ref: str | None = None,
) -> ValidityReceipt:
    """Append Bound(at) → Superseded, and flag the claim's dependents."""
    return _assert(
        batch,
        claim,
        AssertionKind.BOUND,
        Disposition.SUPERSEDED,
        "bound",
        provenance,
        confidence,
        at=at,
        granularity=granularity,
        handle=handle,
        op_ref=op_ref,
    )


def apply_assertion(
    batch: Batch,
    claim: ClaimView,
    kind: AssertionKind,
    decision: AssertionDecision,
    provenance: Provenance,
    confidence: float,
    op_ref: str,
    *,
    at: datetime | None = None,
    granularity: Granularity | None = None,
) -> ValidityReceipt:
    """Carry out a decided end / reopen / invalidate (or record its rejection)."""
    if decision.disposition is Disposition.REJECTED:
        batch.entry(
            EventKind.CLAIM_REJECTED,
            Disposition.REJECTED,
            {
                "route": kind.value,
                "reason": decision.reason,
                "target": claim.ref,
                "request_ref": op_ref,
            },
            claim_ref=None,
            line=(claim.row.subject, claim.row.predicate),
            request_ref=op_ref,
        )
        return ValidityReceipt(
            claim_ref=claim.ref, disposition=Disposition.REJECTED, reason=decision.reason
        )
    if not decision.write:
        return ValidityReceipt(
            claim_ref=claim.ref,
            disposition=decision.disposition,
            reason=decision.reason,
            effective_at=claim.active_bound,
            no_op=True,
        )
    return _assert(
        batch,
        claim,
        kind,
        decision.disposition,
        decision.reason,
        provenance,
        confidence,
        at=at,
        granularity=granularity,
        op_ref=op_ref,
    )


def _assert(
    batch: Batch,
    claim: ClaimView,
    kind: AssertionKind,
    disposition: Disposition,
    reason: str,
    provenance: Provenance,
    confidence: float,
    *,
    at: datetime | None = None,
    granularity: Granularity | None = None,
    handle: str | None = None,
    op_ref: str | None = None,
) -> ValidityReceipt:
    line = (claim.row.subject, claim.row.predicate)
    ref = batch.ids()
    batch.add_assertion(
        AssertionRow(
            agent_id=batch.agent_id,
            assertion_ref=ref,
            claim_ref=claim.ref,
            subject=line[0],
            predicate=line[1],
            kind=kind,
            bound_at=at,
            bound_granularity=granularity,
            provenance=provenance,
            confidence=confidence,
            tx_time=batch.tx,
            stream_seq=batch.seq + 1,
            handle_id=handle,
        )
    )
    rationale: dict[str, Any] = {
        "route": "oracle" if handle else kind.value,
        "reason": reason,
        "assertion_ref": ref,
    }
    if at is not None:
        rationale["bound_at"] = rfc3339(at)
    if handle is not None:
        rationale["handle_id"] = handle
    batch.entry(
        EventKind.VALIDITY_ASSERTED,
        disposition,
        rationale,
        claim_ref=claim.ref,
        line=line,
        request_ref=op_ref,
    )
    if disposition in (Disposition.SUPERSEDED, Disposition.INVALIDATED):
        flag_dependents(
            batch,
            claim.ref,
            "parent_superseded" if disposition is Disposition.SUPERSEDED else "parent_invalidated",
        )
    return ValidityReceipt(
        claim_ref=claim.ref,
        disposition=disposition,
        reason=reason,
        assertion_ref=ref,
        effective_at=at,
    )


def validity_receipt_from_entry(entry: LedgerEntry) -> ValidityReceipt:
    rationale = entry.rationale
    bound_at = rationale.get("bound_at")
    return ValidityReceipt(
        claim_ref=entry.claim_ref or str(rationale.get("target")),
        disposition=entry.disposition,
        reason=str(rationale.get("reason")),
        assertion_ref=rationale.get("assertion_ref"),
        effective_at=None if bound_at is None else parse_tx(bound_at),
    )


def flag_dependents(batch: Batch, root: str, reason: str) -> None:
    """The PendingReview cascade: every live claim derived (transitively) from `root`."""
    seen = {root}
    todo = deque([root])
    while todo:
        parent = todo.popleft()
        for child in batch.txn.children(parent):
            if child in seen:
                continue
            seen.add(child)
            todo.append(child)
            claim = batch.claim_view(child)
            if claim.live:
                batch.entry(
                    EventKind.DEPENDENT_FLAGGED_PENDING_REVIEW,
                    Disposition.PENDING_REVIEW,
                    {"route": "cascade", "reason": reason, "root": root, "parent": parent},
                    claim_ref=child,
                    line=(claim.row.subject, claim.row.predicate),
                )
