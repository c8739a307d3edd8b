"""The validity calls (end, reopen, invalidate, end_fact), each one write transaction."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from mempill.core import parse
from mempill.core.canonical import canonical_json, inspect_value, loads
from mempill.core.dates import parse_lenient
from mempill.core.decide import decide_end, decide_invalidate, decide_reopen
from mempill.core.enums import AssertionKind, Granularity
from mempill.core.fold import project
from mempill.core.limits import MAX_VALUE_DEPTH
from mempill.core.model import BeliefSlot, EndFactReceipt, Projection, ValidityReceipt
from mempill.engine.batch import Batch
from mempill.engine.runner import TransactionRunner
from mempill.engine.validity import apply_assertion, validity_receipt_from_entry
from mempill.errors import ConflictError, NotFoundError, ValidationError
from mempill.ports import Writer

Instant = datetime | date | str
#: The public call each kind of assertion comes from (for the read-only refusal).
WHAT = {
    AssertionKind.BOUND: "end",
    AssertionKind.REOPEN: "reopen",
    AssertionKind.INVALIDATE: "invalidate",
}


def assert_validity(
    runner: TransactionRunner,
    agent_id: str,
    claim_ref: str,
    kind: AssertionKind,
    provenance: Any,
    confidence: float,
    at: datetime | None = None,
    granularity: Granularity | None = None,
) -> ValidityReceipt:
    """End, reopen or invalidate one claim in one write transaction."""
    runner.writable(WHAT[kind])
    agent = parse.agent_id(agent_id)
    ref = parse.claim_ref(claim_ref)
    source = parse.provenance(provenance)
    confidence = _confidence(confidence)
    op_ref = runner.ids()

    def work(batch: Batch) -> ValidityReceipt:
        batch.tick()
        claim = batch.claim_view(ref)
        if kind is AssertionKind.BOUND:
            assert at is not None
            decision = decide_end(claim, at, source)
        elif kind is AssertionKind.REOPEN:
            decision = decide_reopen(claim, source)
        else:
            decision = decide_invalidate(claim, source)
        return apply_assertion(
            batch,
            claim,
            kind,
            decision,
            source,
            confidence,
            op_ref,
            at=at,
            granularity=granularity,
        )

    def replay(txn: Writer) -> ValidityReceipt | None:
        entries = txn.request_entries(op_ref)
        return validity_receipt_from_entry(entries[0]) if entries else None

    return runner.write(agent, work, replay=replay)[0]


def end_claim(
    runner: TransactionRunner,
    agent_id: str,
    claim_ref: str,
    at: Instant,
    provenance: Any,
    confidence: float,
    granularity: Granularity | str | None,
) -> ValidityReceipt:
    """`end`: a Bound at `at`, shown at the granularity `at` was written in (or the one given)."""
    instant, written = parse_lenient(at, "at")
    if granularity is not None:
        written = parse.enum(Granularity, granularity, "granularity")
    return assert_validity(
        runner, agent_id, claim_ref, AssertionKind.BOUND, provenance, confidence, instant, written
    )


def end_belief(
    runner: TransactionRunner,
    agent_id: str,
    subject: str,
    predicate: str,
    at: Instant,
    value: Any,
    provenance: Any,
    confidence: float,
) -> EndFactReceipt:
    """`end_fact`: bound every claim of the line's one believed value, in one transaction."""
    runner.writable("end_fact")
    agent = parse.agent_id(agent_id)
    subject, predicate = key(subject, "subject"), key(predicate, "predicate")
    instant, granularity = parse_lenient(at, "at")
    chosen = None if value is ... else chosen_value(value)
    source = parse.provenance(provenance)
    confidence = _confidence(confidence)
    op_ref = runner.ids()

    def work(batch: Batch) -> EndFactReceipt:
        tx = batch.tick()
        line = batch.line_state(subject, predicate)
        key = {"agent_id": agent, "subject": subject, "predicate": predicate}
        belief = project(line, **key, as_of=None, valid_at=None, now=tx, config=runner.config)
        slot = _single_slot(belief, chosen)
        receipts = []
        for ref in slot.claim_refs:
            claim = batch.claim_view(ref)
            decision = decide_end(claim, instant, source)
            receipts.append(
                apply_assertion(
                    batch,
                    claim,
                    AssertionKind.BOUND,
                    decision,
                    source,
                    confidence,
                    op_ref,
                    at=instant,
                    granularity=granularity,
                )
            )
        return EndFactReceipt(
            subject=subject,
            predicate=predicate,
            value=slot.value,
            effective_at=instant,
            receipts=tuple(receipts),
        )

    def replay(txn: Writer) -> EndFactReceipt | None:
        entries = txn.request_entries(op_ref)
        if not entries:
            return None
        first = txn.claim(str(entries[0].claim_ref or entries[0].rationale.get("target")))
        return EndFactReceipt(
            subject=subject,
            predicate=predicate,
            value=None if first is None else loads(first.value),
            effective_at=instant,
            receipts=tuple(validity_receipt_from_entry(e) for e in entries),
        )

    return runner.write(agent, work, replay=replay)[0]


def _confidence(value: Any) -> float:
    number = parse.number(value, "confidence")
    if not 0.0 <= number <= 1.0:
        raise ValidationError(f"confidence: {number!r} is not in [0, 1]")
    return number


def chosen_value(value: Any) -> str:
    """`end_fact(value=…)` as canonical text; a value no claim could hold does not parse."""
    reason = inspect_value(parse.json_value(value), MAX_VALUE_DEPTH)
    if reason is not None:
        raise ValidationError(f"value: {parse.show(value)} is not a storable value ({reason})")
    return canonical_json(value)


def _single_slot(belief: Projection, value: str | None) -> BeliefSlot:
    """The one value group `end_fact` ends (`value`: canonical text), or NotFoundError /
    ConflictError."""
    slots = belief.candidates
    if value is not None:
        slots = tuple(s for s in slots if canonical_json(s.value) == value)
    line = f"({belief.subject!r}, {belief.predicate!r})"
    if not slots:
        raise NotFoundError(f"no current belief to end on {line}")
    if len(slots) > 1:
        raise ConflictError(
            f"{line} believes {len(slots)} values; pass value= or end(claim_ref) to choose"
        )
    return slots[0]


key = parse.key  # a subject or predicate to look up: a string both backends can store
