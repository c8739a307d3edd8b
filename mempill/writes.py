"""Ingest inside one agent's write transaction: decide (rules V … E6) and append the rows."""

from __future__ import annotations

from typing import Any

from mempill.adjudication import queue
from mempill.batch import Batch
from mempill.canonical import is_clean_text, safe_json
from mempill.decide import (
    MAX_KEY_CHARS,
    Candidate,
    decide,
    derivation,
    effective_time_confidence,
    validate,
)
from mempill.enums import Disposition, EdgeKind, EventKind
from mempill.model import ClaimRow, EdgeRow, IngestRequest, LedgerEntry, Receipt

# ---------------------------------------------------------------- ingest


def ingest(batch: Batch, request: IngestRequest, ref: str) -> Receipt:
    """Decide and append one ingest request (rules V … E6)."""
    tx = batch.tick()
    line = (request.subject, request.predicate)
    reason, text = validate(request, batch.config)
    if reason is not None or text is None:
        return _rejected(batch, request, ref, "V", reason or "invalid")
    state = batch.line_state(*line)
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
        state,
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
        incumbents = [state.by_ref[ref].row for ref in decision.contested_with]
        queue(batch, handle, row, incumbents, decision.rule)
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
