"""Validity assertions (end / reopen / invalidate) and the PendingReview cascade."""

from __future__ import annotations

from collections import deque
from datetime import datetime
from typing import Any

from mempill.core.dates import parse_tx, rfc3339
from mempill.core.decide import AssertionDecision
from mempill.core.enums import AssertionKind, Disposition, EventKind, Granularity, Provenance
from mempill.core.fold import ClaimView
from mempill.core.model import AssertionRow, LedgerEntry, ValidityReceipt
from mempill.engine.batch import Batch

# ---------------------------------------------------------------- validity assertions


def oracle_bound(
    batch: Batch, incumbent: ClaimView, at: datetime, evidence: Provenance, handle: str, spare: str
) -> ValidityReceipt:
    """An Affirm ends an incumbent: Bound(at) → Superseded, with the verdict's evidence and
    full confidence, and the incumbent's dependents flagged (all but the winner, `spare`)."""
    return _assert(
        batch,
        incumbent,
        AssertionKind.BOUND,
        Disposition.SUPERSEDED,
        "bound",
        evidence,
        1.0,
        at=at,
        handle=handle,
        spare=spare,
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
    spare: str | None = None,
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
        superseded = disposition is Disposition.SUPERSEDED
        cascade = "parent_superseded" if superseded else "parent_invalidated"
        flag_dependents(batch, claim.ref, cascade, spare=spare)
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


def flag_dependents(batch: Batch, root: str, reason: str, spare: str | None = None) -> None:
    """The PendingReview cascade: every live claim derived (transitively) from `root`.

    `spare` is a claim an oracle just affirmed over `root`: the verdict is its review.
    """
    seen = {root, spare}  # `spare` may be None, which names no claim
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
