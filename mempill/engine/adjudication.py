"""The oracle outbox: queue a pending adjudication, expire it, apply a verdict (reference §6)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from mempill.core.canonical import loads
from mempill.core.dates import END_OF_TIME, rfc3339
from mempill.core.enums import Disposition, EdgeKind, EventKind, PendingStatus, Provenance, Verdict
from mempill.core.fold import ClaimView, overlaps
from mempill.core.model import AdjudicationOutcome, ClaimRow, EdgeRow, PendingAdjudication
from mempill.engine.batch import Batch
from mempill.engine.validity import flag_dependents, oracle_bound

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
    expires = None if ttl is None else _expiry(batch.tx, ttl)
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


def _expiry(tx: datetime, ttl: float) -> datetime:
    """tx + ttl, or the last storable instant when that lies beyond year 9999 (a clock
    near the end of time): such a request never expires in practice, and nothing raises."""
    try:
        return min(tx + timedelta(seconds=ttl), END_OF_TIME)
    except OverflowError:
        return END_OF_TIME


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
    """Apply an oracle verdict (reference §6) to a pending row that has not expired."""
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
            oracle_bound(batch, incumbent, at, evidence, pending.handle_id, challenger.ref)
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
