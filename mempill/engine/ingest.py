"""Ingest: the call (one write transaction of one agent, the oracle told after COMMIT) and,
inside it, each request decided (rules V … E6) and its rows appended."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from mempill.core.canonical import canonical_json, fits, is_clean_text, safe_json
from mempill.core.decide import (
    Candidate,
    decide,
    derivation,
    effective_time_confidence,
    validate,
)
from mempill.core.enums import Disposition, EdgeKind, EventKind
from mempill.core.limits import MAX_KEY_CHARS
from mempill.core.model import ClaimRow, EdgeRow, IngestRequest, LedgerEntry, Receipt
from mempill.engine.adjudication import queue
from mempill.engine.batch import Batch
from mempill.engine.oracle import OracleLoop
from mempill.engine.runner import TransactionRunner
from mempill.ports import Reader, Writer

# ---------------------------------------------------------------- ingest


def ingest_requests(
    runner: TransactionRunner, loop: OracleLoop, requests: Sequence[IngestRequest]
) -> tuple[Receipt, ...]:
    """Ingest requests of one agent in one transaction; notify the oracle after COMMIT."""
    agent = requests[0].agent_id
    runner.writable("ingest")
    if not runner.store.may_write(agent):
        return tuple(
            Receipt(
                claim_ref=r.claim_ref or runner.ids(),
                disposition=Disposition.REJECTED,
                reason="write_authority",
            )
            for r in requests
        )
    # Refs are minted request by request, interleaved with each request's own ids,
    # so a batch draws ids in the same order as ingesting one by one; they are kept
    # across retries so a lost COMMIT is recognised (`replay`).
    refs: list[str] = []

    def ref_for(index: int) -> str:
        if index == len(refs):
            refs.append(requests[index].claim_ref or runner.ids())
        return refs[index]

    def replay(txn: Writer) -> tuple[Receipt, ...] | None:
        if len(refs) < len(requests):
            return None
        stored = [_stored_receipt(txn, ref) for ref in refs]
        done = [r for r in stored if r is not None]
        return tuple(done) if len(done) == len(refs) else None

    def work(batch: Batch) -> tuple[Receipt, ...]:
        receipts = []
        for index, request in enumerate(requests):
            ref = ref_for(index)
            stored = _stored_receipt(batch.txn, ref) if request.claim_ref else None
            receipts.append(stored or ingest(batch, request, ref))
        return tuple(receipts)

    lines = tuple((r.subject, r.predicate) for r in requests if _storable_keys(r))
    receipts, done = runner.write_grouped(agent, work, replay=replay, lines=lines)
    # Queued handles the oracle has not heard of: this call's, or those of a commit whose
    # acknowledgement was lost (or a repeated request) when the oracle was not told yet.
    waiting = [
        r.handle_id
        for r in receipts
        if r.handle_id is not None
        and r.disposition is Disposition.QUEUED_FOR_ADJUDICATION
        and not r.oracle_notified
    ]
    notified = loop.after_commit(done, waiting)
    if not notified:
        return receipts
    return tuple(
        replace(r, oracle_notified=notified[r.handle_id]) if r.handle_id in notified else r
        for r in receipts
    )


def _stored_receipt(reader: Reader, ref: str) -> Receipt | None:
    entries = reader.request_entries(ref)
    if not entries:
        return None
    handle = entries[0].rationale.get("handle_id")
    pending = None if handle is None else reader.pending_by_handle(str(handle))
    return receipt_from_entry(entries[0], None if pending is None else pending.notified)


def ingest(batch: Batch, request: IngestRequest, ref: str) -> Receipt:
    """Decide and append one ingest request (rules V … E6)."""
    tx = batch.tick()
    line = (request.subject, request.predicate)
    reason, text = validate(request, batch.config)
    if reason is not None or text is None:
        return _rejected(batch, request, ref, "V", reason or "invalid")
    state = batch.line_state(*line)
    parents = (
        {p: row for p in request.derived_from if (row := batch.txn.claim(p)) is not None}
        if request.derived_from
        else {}
    )
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


def _storable_keys(request: IngestRequest) -> bool:
    subject, predicate = request.subject, request.predicate
    return (
        0 < len(subject) <= MAX_KEY_CHARS
        and 0 < len(predicate) <= MAX_KEY_CHARS
        and is_clean_text(subject)
        and is_clean_text(predicate)
    )


def _rejected(batch: Batch, request: IngestRequest, ref: str, rule: str, reason: str) -> Receipt:
    keys_ok = _storable_keys(request)
    batch.entry(
        EventKind.CLAIM_REJECTED,
        Disposition.REJECTED,
        {
            "route": rule,
            "reason": reason,
            "request_ref": ref,
            "request": request_summary(request, reason, batch.config.max_value_bytes),
        },
        claim_ref=None,
        line=(request.subject, request.predicate) if keys_ok else None,
        request_ref=ref,
    )
    return Receipt(claim_ref=ref, disposition=Disposition.REJECTED, reason=reason)


def request_summary(request: IngestRequest, reason: str, max_bytes: int) -> dict[str, Any]:
    """A storable echo of a rejected request. The value is left out when it is too big or
    deep, or when its echo would take more than `max_bytes` (a request rejected for its
    keys is not checked for size first): a rejection never stores more than a claim."""
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
        echo = safe_json(request.value)
        if fits(canonical_json(echo), max_bytes):
            summary["value"] = echo
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
