"""The Engine: the only place that opens transactions, retries, and calls the oracle.

It glues the pure core (`decide.py`, `fold.py`, applied by `writes.py`) to a `Store`.
Every public call reads the clock once; every write runs in one transaction of one
agent and is retried as a whole on a transient storage error.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace
from datetime import date, datetime
from typing import Any

from mempill import parse
from mempill.batch import Batch
from mempill.canonical import canonical_json, loads
from mempill.dates import format_tx, parse_lenient
from mempill.decide import AssertionDecision, decide_end, decide_invalidate, decide_reopen
from mempill.enums import AssertionKind, Disposition, Granularity, Provenance
from mempill.errors import ConflictError, NotFoundError, ValidationError
from mempill.fold import ClaimView, history, project
from mempill.model import (
    AuditPage,
    BeliefSlot,
    EndFactReceipt,
    History,
    IngestRequest,
    Projection,
    Receipt,
    ValidityReceipt,
    WriteStat,
)
from mempill.oracle_loop import OracleLoop
from mempill.ports import Reader, Writer
from mempill.transactions import RetryPolicy
from mempill.validity import apply_assertion, validity_receipt_from_entry
from mempill.writes import ingest, receipt_from_entry

RequestLike = IngestRequest | Mapping[str, Any]
Instant = datetime | date | str

__all__ = ["Engine", "RetryPolicy"]


class Engine(OracleLoop):
    """A mempill engine over one store. Use the `open_*` functions to make one."""

    # ------------------------------------------------------------ ingest

    def ingest(self, request: RequestLike) -> Receipt:
        """Write one claim; the receipt says which of the twelve dispositions it got."""
        return self._ingest_batch([parse.ingest_request(request)])[0]

    def ingest_many(self, requests: Iterable[RequestLike]) -> tuple[Receipt, ...]:
        """Write several claims of one agent in one transaction, each seeing the ones before."""
        parsed = [parse.ingest_request(r) for r in requests]
        if not parsed:
            return ()
        if len({r.agent_id for r in parsed}) > 1:
            raise ValidationError("ingest_many: every request must have the same agent_id")
        return self._ingest_batch(parsed)

    def _ingest_batch(self, requests: Sequence[IngestRequest]) -> tuple[Receipt, ...]:
        agent = requests[0].agent_id
        if not self.store.may_write(agent):
            return tuple(
                Receipt(
                    claim_ref=r.claim_ref or self.ids(),
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
                refs.append(requests[index].claim_ref or self.ids())
            return refs[index]

        def replay(txn: Writer) -> tuple[Receipt, ...] | None:
            if len(refs) < len(requests):
                return None
            stored = [self._stored_receipt(txn, ref) for ref in refs]
            done = [r for r in stored if r is not None]
            return tuple(done) if len(done) == len(refs) else None

        def work(batch: Batch) -> tuple[Receipt, ...]:
            receipts = []
            for index, request in enumerate(requests):
                ref = ref_for(index)
                stored = self._stored_receipt(batch.txn, ref) if request.claim_ref else None
                receipts.append(stored or ingest(batch, request, ref))
            return tuple(receipts)

        receipts, batch = self._write(agent, work, replay=replay)
        notified = self._after_commit(batch)
        return tuple(
            replace(r, oracle_notified=notified.get(r.handle_id, False))
            if r.handle_id is not None and r.disposition is Disposition.QUEUED_FOR_ADJUDICATION
            else r
            for r in receipts
        )

    @staticmethod
    def _stored_receipt(reader: Reader, ref: str) -> Receipt | None:
        entries = reader.request_entries(ref)
        if not entries:
            return None
        handle = entries[0].rationale.get("handle_id")
        pending = None if handle is None else reader.pending_by_handle(str(handle))
        return receipt_from_entry(entries[0], None if pending is None else pending.notified)

    # ------------------------------------------------------------ validity assertions

    def end(
        self,
        agent_id: str,
        claim_ref: str,
        at: Instant,
        *,
        provenance: Any = Provenance.USER_ASSERTED,
        confidence: float = 1.0,
        granularity: Granularity | str | None = None,
    ) -> ValidityReceipt:
        """Close a claim's window at `at` (Bound → Superseded); reopen first to move it.

        `granularity` overrides the display precision read from `at` (e.g. `2024-09`).
        """
        instant, written = parse_lenient(at, "at")
        if granularity is not None:
            written = parse.enum(Granularity, granularity, "granularity")
        granularity = written
        return self._assertion(
            agent_id, claim_ref, AssertionKind.BOUND, provenance, confidence, instant, granularity
        )

    def reopen(
        self, agent_id: str, claim_ref: str, *, provenance: Any = Provenance.USER_ASSERTED
    ) -> ValidityReceipt:
        """Cancel the latest Bound of a claim (Reinstated)."""
        return self._assertion(agent_id, claim_ref, AssertionKind.REOPEN, provenance, 1.0)

    def invalidate(
        self, agent_id: str, claim_ref: str, *, provenance: Any = Provenance.USER_ASSERTED
    ) -> ValidityReceipt:
        """Say a claim was never true: it leaves every read at every instant."""
        return self._assertion(agent_id, claim_ref, AssertionKind.INVALIDATE, provenance, 1.0)

    def _assertion(
        self,
        agent_id: str,
        claim_ref: str,
        kind: AssertionKind,
        provenance: Any,
        confidence: float,
        at: datetime | None = None,
        granularity: Granularity | None = None,
    ) -> ValidityReceipt:
        agent = parse.agent_id(agent_id)
        ref = parse.claim_ref(claim_ref)
        source = parse.provenance(provenance)
        confidence = _confidence(confidence)
        op_ref = self.ids()

        def work(batch: Batch) -> ValidityReceipt:
            batch.tick()
            claim = batch.claim_view(ref)
            if kind is AssertionKind.BOUND:
                assert at is not None
                decision = _decide_bound(claim, at, source)
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

        return self._write(agent, work, replay=replay)[0]

    def end_fact(
        self,
        agent_id: str,
        subject: str,
        predicate: str,
        at: Instant,
        *,
        value: Any = ...,
        provenance: Any = Provenance.USER_ASSERTED,
        confidence: float = 1.0,
    ) -> EndFactReceipt:
        """End the current belief of a line at `at` (lenient date): bound all its claims.

        The line must believe exactly one value now (pass `value=` to pick one member of
        a set or one side of a contest); otherwise NotFoundError or ConflictError. One
        transaction and one tx time for all the bounds.
        """
        agent = parse.agent_id(agent_id)
        subject, predicate = _key(subject, "subject"), _key(predicate, "predicate")
        instant, granularity = parse_lenient(at, "at")
        source = parse.provenance(provenance)
        confidence = _confidence(confidence)
        op_ref = self.ids()

        def work(batch: Batch) -> EndFactReceipt:
            tx = batch.tick()
            line = batch.line_state(subject, predicate)
            key = {"agent_id": agent, "subject": subject, "predicate": predicate}
            belief = project(line, **key, as_of=None, valid_at=None, now=tx, config=self.config)
            slot = _single_slot(belief, value)
            receipts = []
            for ref in slot.claim_refs:
                claim = batch.claim_view(ref)
                decision = _decide_bound(claim, instant, source)
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

        return self._write(agent, work, replay=replay)[0]

    def query_memory(
        self,
        agent_id: str,
        subject: str,
        predicate: str,
        as_of: Instant | None = None,
        valid_at: Instant | None = None,
    ) -> Projection:
        """The belief of one line: what was believed at tx time `as_of`, true at `valid_at`."""
        agent = parse.agent_id(agent_id)
        now = self.clock()
        with self.store.read(agent) as reader:
            return self._project(
                reader,
                agent,
                _key(subject, "subject"),
                _key(predicate, "predicate"),
                parse.optional_moment(as_of, "as_of"),
                parse.optional_moment(valid_at, "valid_at"),
                now,
            )

    def query_subject(
        self,
        agent_id: str,
        subject: str,
        as_of: Instant | None = None,
        valid_at: Instant | None = None,
    ) -> tuple[Projection, ...]:
        """One projection per predicate of a subject, sorted by predicate."""
        agent = parse.agent_id(agent_id)
        now = self.clock()
        as_of_at = parse.optional_moment(as_of, "as_of")
        valid = parse.optional_moment(valid_at, "valid_at")
        subject = _key(subject, "subject")
        with self.store.read(agent) as reader:
            return tuple(
                self._project(reader, agent, subject, p, as_of_at, valid, now)
                for p in sorted(reader.predicates(subject, as_of_at))
            )

    def query_history(
        self, agent_id: str, subject: str, predicate: str, as_of: Instant | None = None
    ) -> History:
        """Every claim of a line, ordered by effective start, with its status at `as_of`."""
        agent = parse.agent_id(agent_id)
        now = self.clock()
        as_of_at = parse.optional_moment(as_of, "as_of")
        subject, predicate = _key(subject, "subject"), _key(predicate, "predicate")
        with (
            self.store.read(agent) as reader,
            self._line(reader, agent, subject, predicate, as_of_at) as line,
        ):
            return history(
                line,
                agent_id=agent,
                subject=subject,
                predicate=predicate,
                as_of=as_of_at,
                now=now,
                config=self.config,
            )

    def query_audit(
        self, agent_id: str, claim_ref: str | None = None, after_seq: int = 0, limit: int = 100
    ) -> AuditPage:
        """Ledger entries in ascending stream_seq after `after_seq`, filtered, then limited."""
        agent = parse.agent_id(agent_id)
        ref = None if claim_ref is None else parse.claim_ref(claim_ref)
        for name, number, least in (("after_seq", after_seq, 0), ("limit", limit, 1)):
            if isinstance(number, bool) or not isinstance(number, int) or number < least:
                raise ValidationError(f"{name}: expected an integer >= {least}, got {number!r}")
        self.clock()
        with self.store.read(agent) as reader:
            entries = reader.audit(ref, after_seq, limit + 1)
        more = len(entries) > limit
        entries = entries[:limit]
        return AuditPage(
            entries=entries, next_cursor=entries[-1].stream_seq if more and entries else None
        )

    def ledger_digest(self, agent_id: str) -> str:
        """SHA-256 over the agent's ledger entries in stream order (SPEC §9)."""
        agent = parse.agent_id(agent_id)
        digest = hashlib.sha256()
        with self.store.read(agent) as reader:
            for e in reader.ledger():
                item = [
                    e.stream_seq,
                    e.entry_id,
                    e.claim_ref,
                    e.event_kind.value,
                    e.disposition.value,
                    e.rationale,
                    format_tx(e.recorded_at),
                ]
                digest.update(canonical_json(item).encode("utf-8"))
                digest.update(b"\n")
        return digest.hexdigest()

    def write_stats(self, agent_id: str) -> tuple[WriteStat, ...]:
        agent = parse.agent_id(agent_id)
        with self.store.read(agent) as reader:
            return reader.write_stats()

    # ------------------------------------------------------------ ergonomic helpers

    def remember(
        self,
        agent_id: str,
        subject: str,
        predicate: str,
        value: Any,
        *,
        valid_from: Instant | None = None,
        valid_until: Instant | None = None,
        confidence: float = 1.0,
        **options: Any,
    ) -> Receipt:
        """Record a fact with sensible defaults; dates may be `2020`, `2020-03`, RFC 3339…"""
        window = None
        if valid_from is not None or valid_until is not None:
            window = {"start": valid_from, "end": valid_until}
        request = {
            "agent_id": agent_id,
            "subject": subject,
            "predicate": predicate,
            "value": value,
            "valid_time": window,
            "value_confidence": confidence,
            **options,
        }
        if window is not None:
            request.setdefault("valid_time_confidence", confidence)
        return self.ingest(request)

    def recall(
        self,
        agent_id: str,
        subject: str,
        predicate: str,
        *,
        as_of: Instant | None = None,
        valid_at: Instant | None = None,
    ) -> Projection:
        """The belief of a line (`.value`, `.status`, `.candidates`)."""
        return self.query_memory(agent_id, subject, predicate, as_of=as_of, valid_at=valid_at)

    def history(
        self, agent_id: str, subject: str, predicate: str, *, as_of: Instant | None = None
    ) -> History:
        return self.query_history(agent_id, subject, predicate, as_of=as_of)


def _confidence(value: Any) -> float:
    number = parse.number(value, "confidence")
    if not 0.0 <= number <= 1.0:
        raise ValidationError(f"confidence: {number!r} is not in [0, 1]")
    return number


def _decide_bound(claim: ClaimView, at: datetime, source: Provenance) -> AssertionDecision:
    """`end` on one claim; a different active bound is a ConflictError (reopen first)."""
    decision = decide_end(claim, at, source)
    if decision.conflict:
        bound_at = format_tx(claim.active_bound or at)
        raise ConflictError(f"claim {claim.ref} is already bound at {bound_at}; reopen it first")
    return decision


def _single_slot(belief: Projection, value: Any) -> BeliefSlot:
    """The one value group `end_fact` ends, or NotFoundError / ConflictError."""
    slots = belief.candidates
    if value is not ...:
        slots = tuple(s for s in slots if canonical_json(s.value) == canonical_json(value))
    line = f"({belief.subject!r}, {belief.predicate!r})"
    if not slots:
        raise NotFoundError(f"no current belief to end on {line}")
    if len(slots) > 1:
        raise ConflictError(
            f"{line} believes {len(slots)} values; pass value= or end(claim_ref) to choose"
        )
    return slots[0]


def _key(value: Any, what: str) -> str:
    if not isinstance(value, str):
        raise ValidationError(f"{what}: expected a string, got {type(value).__name__}")
    return value
