"""The Engine: the only place that opens transactions, retries, and calls the oracle.

It glues the pure core (`decide.py`, `fold.py`, applied by `writes.py`) to a `Store`.
Every public call reads the clock once; every write runs in one transaction of one
agent and is retried as a whole on a transient storage error.
"""

from __future__ import annotations

import hashlib
import logging
import random
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime
from typing import Any, TypeVar

from mempill import parse
from mempill.canonical import canonical_json
from mempill.clock import Clock, system_clock
from mempill.config import EngineConfig
from mempill.dates import format_tx, parse_lenient
from mempill.decide import decide_end, decide_invalidate, decide_reopen
from mempill.enums import (
    AssertionKind,
    BeliefStatus,
    Disposition,
    Granularity,
    PendingStatus,
    Provenance,
    Verdict,
)
from mempill.errors import ConflictError, NotFoundError, TransientStorageError, ValidationError
from mempill.fold import ClaimView, history, project, views
from mempill.ids import IdFactory, random_ids
from mempill.lines import LineCache
from mempill.model import (
    AdjudicationOutcome,
    AdjudicationRequest,
    AuditPage,
    EndFactReceipt,
    History,
    IngestRequest,
    PendingAdjudication,
    Projection,
    Receipt,
    ReconcileLine,
    ReconcileReport,
    ValidityReceipt,
    WriteStat,
)
from mempill.ports import NoOpVector, OraclePort, Reader, Store, VectorPort, Writer, has_oracle
from mempill.writes import (
    Batch,
    adjudicate,
    apply_assertion,
    expire,
    ingest,
    queue,
    receipt_from_entry,
    validity_receipt_from_entry,
)

log = logging.getLogger("mempill")
T = TypeVar("T")
RequestLike = IngestRequest | Mapping[str, Any]
Instant = datetime | date | str


@dataclass(frozen=True, slots=True, kw_only=True)
class RetryPolicy:
    """Capped, jittered exponential backoff for transient storage errors."""

    attempts: int = 8
    base_seconds: float = 0.01
    cap_seconds: float = 1.0

    def delay(self, attempt: int) -> float:
        return random.uniform(0, min(self.cap_seconds, self.base_seconds * 2**attempt))


class Engine:
    """A mempill engine over one store. Use the `open_*` functions to make one."""

    def __init__(
        self,
        store: Store,
        *,
        oracle: OraclePort | None = None,
        vector: VectorPort | None = None,
        config: EngineConfig | None = None,
        clock: Clock = system_clock,
        ids: IdFactory = random_ids,
        retry: RetryPolicy | None = None,
    ) -> None:
        self.store = store
        self.oracle = oracle
        self.vector = vector or NoOpVector()
        self.config = config or EngineConfig()
        self.clock = clock
        self.ids = ids
        self.retry = retry or RetryPolicy()
        self.lines = LineCache(self.config)

    def __enter__(self) -> Engine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.store.close()

    def __repr__(self) -> str:
        return f"<mempill.Engine backend={self.store.backend!r}>"

    # ------------------------------------------------------------ transactions

    def _write(
        self,
        agent_id: str,
        work: Callable[[Batch], T],
        *,
        replay: Callable[[Writer], T | None] | None = None,
    ) -> tuple[T, Batch]:
        """Run `work` in one write transaction, retrying the whole of it when transient.

        Before a retry, `replay` looks for the rows of an attempt whose COMMIT was lost
        with the connection; when it finds them, their result is returned instead.
        """
        now = self.clock()
        for attempt in range(self.retry.attempts):
            try:
                with self.store.write(agent_id) as txn:
                    if attempt and replay is not None:
                        done = replay(txn)
                        if done is not None:
                            return done, self._batch(txn, agent_id, now)
                    batch = self._batch(txn, agent_id, now)
                    result = work(batch)
                batch.publish()
                return result, batch
            except TransientStorageError as e:
                if attempt + 1 == self.retry.attempts:
                    raise ConflictError(
                        f"write for agent {agent_id!r} failed after {attempt + 1} attempts: {e}"
                    ) from e
                log.info("transient storage error (attempt %d): %s", attempt + 1, e)
                time.sleep(self.retry.delay(attempt))
        raise AssertionError("unreachable")

    def _batch(self, txn: Writer, agent_id: str, now: datetime) -> Batch:
        return Batch(txn, agent_id, self.ids, now, self.config, has_oracle(self.oracle), self.lines)

    def _after_commit(self, batch: Batch) -> dict[str, bool]:
        for row in batch.new_claims:
            self.vector.index_claim(row)
        return {handle: self._notify(batch.agent_id, handle) for handle in batch.queued}

    def _notify(self, agent_id: str, handle_id: str) -> bool:
        """Call the oracle for one outbox row; on success mark it notified."""
        if not has_oracle(self.oracle) or self.oracle is None:
            return False
        with self.store.read(agent_id) as reader:
            row = reader.pending_by_handle(handle_id)
        if row is None or row.status is not PendingStatus.PENDING:
            return False
        request = AdjudicationRequest(
            handle_id=handle_id,
            agent_id=agent_id,
            subject=row.subject,
            predicate=row.predicate,
            payload=row.request,
        )
        try:
            self.oracle.request_adjudication(handle_id, request)
        except Exception:  # an oracle failure must never orphan the claim (SPEC §6)
            log.warning("oracle failed for handle %s; it stays pending", handle_id, exc_info=True)
            return False
        with self.store.write(agent_id) as txn:
            txn.set_pending_notified(handle_id)
        return True

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
    ) -> ValidityReceipt:
        """Close a claim's window at `at` (Bound → Superseded); reopen first to move it."""
        instant, granularity = parse_lenient(at, "at")
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
        confidence = parse.number(confidence, "confidence")
        if not 0.0 <= confidence <= 1.0:
            raise ValidationError(f"confidence: {confidence!r} is not in [0, 1]")
        op_ref = self.ids()

        def work(batch: Batch) -> ValidityReceipt:
            batch.tick()
            claim = batch.claim_view(ref)
            if kind is AssertionKind.BOUND:
                assert at is not None
                decision = decide_end(claim, at, source)
                if decision.conflict:
                    raise ConflictError(
                        f"claim {ref} is already bound at {format_tx(claim.active_bound or at)}; "
                        "reopen it first"
                    )
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
        a set or one side of a contest); otherwise NotFoundError or ConflictError.
        """
        instant, granularity = parse_lenient(at, "at")
        belief = self.query_memory(agent_id, subject, predicate)
        slots = belief.candidates
        if value is not ...:
            slots = tuple(s for s in slots if canonical_json(s.value) == canonical_json(value))
        if not slots:
            raise NotFoundError(f"no current belief to end on ({subject!r}, {predicate!r})")
        if len(slots) > 1:
            raise ConflictError(
                f"({subject!r}, {predicate!r}) believes {len(slots)} values; pass value= "
                "or end(claim_ref) to choose"
            )
        receipts = tuple(
            self._assertion(
                agent_id, ref, AssertionKind.BOUND, provenance, confidence, instant, granularity
            )
            for ref in slots[0].claim_refs
        )
        return EndFactReceipt(
            subject=subject,
            predicate=predicate,
            value=slots[0].value,
            effective_at=instant,
            receipts=receipts,
        )

    # ------------------------------------------------------------ the oracle loop

    def submit_adjudication(
        self,
        handle_id: str,
        verdict: Verdict | str,
        evidence_provenance: Any = Provenance.USER_ASSERTED,
        *,
        agent_id: str | None = None,
    ) -> AdjudicationOutcome:
        """Apply an oracle verdict. Unknown, resolved or expired handles raise NotFoundError."""
        chosen = parse.enum(Verdict, verdict, "verdict")
        evidence = parse.provenance(evidence_provenance, "evidence_provenance")
        agent = (
            parse.agent_id(agent_id) if agent_id is not None else self.store.find_handle(handle_id)
        )
        if agent is None:
            raise NotFoundError(f"unknown adjudication handle {handle_id!r}")
        op_ref = self.ids()

        def work(batch: Batch) -> AdjudicationOutcome | None:
            batch.tick()
            pending = batch.txn.pending_by_handle(handle_id)
            if pending is None or pending.status is not PendingStatus.PENDING:
                raise NotFoundError(
                    f"adjudication handle {handle_id!r} is unknown or already closed"
                )
            if pending.expires_at is not None and pending.expires_at <= batch.tx:
                expire(batch, pending)
                return None
            return adjudicate(batch, pending, chosen, evidence, op_ref)

        def replay(txn: Writer) -> AdjudicationOutcome | None:
            entries = txn.request_entries(op_ref)
            if not entries:
                return None
            e = entries[0]
            return AdjudicationOutcome(
                handle_id=handle_id,
                agent_id=agent,
                verdict=chosen,
                claim_ref=str(e.claim_ref),
                disposition=e.disposition,
                superseded=tuple(e.rationale.get("superseded", ())),
            )

        outcome, _ = self._write(agent, work, replay=replay)
        if outcome is None:
            raise NotFoundError(f"adjudication handle {handle_id!r} has expired")
        return outcome

    def sweep_expired(self) -> int:
        """Expire every pending adjudication past its `expires_at`; returns how many."""
        count = 0
        for agent in self.store.agents_with_pending():

            def work(batch: Batch) -> int:
                batch.tick()
                due = [
                    p
                    for p in batch.txn.pending(PendingStatus.PENDING)
                    if p.expires_at is not None and p.expires_at <= batch.tx
                ]
                for pending in due:
                    expire(batch, pending)
                return len(due)

            count += self._write(agent, work)[0]
        return count

    def notify_pending(self, agent_id: str | None = None) -> int:
        """Retry the oracle for pending rows it was never told about; returns how many succeeded."""
        agents = (parse.agent_id(agent_id),) if agent_id else self.store.agents_with_pending()
        done = 0
        for agent in agents:
            with self.store.read(agent) as reader:
                rows = [p for p in reader.pending(PendingStatus.PENDING) if not p.notified]
            done += sum(self._notify(agent, p.handle_id) for p in rows)
        return done

    def list_pending(
        self, agent_id: str | None = None, *, status: PendingStatus | None = PendingStatus.PENDING
    ) -> tuple[PendingAdjudication, ...]:
        """Outbox rows (pending by default; `status=None` for all), oldest first."""
        agents = (parse.agent_id(agent_id),) if agent_id else self.store.agents()
        rows: list[PendingAdjudication] = []
        for agent in agents:
            with self.store.read(agent) as reader:
                rows.extend(reader.pending(status))
        return tuple(sorted(rows, key=lambda p: (p.queued_at, p.agent_id, p.handle_id)))

    def reconcile(
        self, agent_id: str, lines: Iterable[tuple[str, str]] | None = None
    ) -> ReconcileReport:
        """Report each line's status; queue an adjudication for each Contested line without one.

        Never bounds anything. Without an oracle it only reports.
        """
        agent = parse.agent_id(agent_id)
        wanted = None if lines is None else [(str(s), str(p)) for s, p in lines]

        def work(batch: Batch) -> tuple[ReconcileLine, ...]:
            batch.tick()
            targets = wanted if wanted is not None else sorted(batch.txn.lines())
            return tuple(self._reconcile_line(batch, s, p) for s, p in targets)

        if not has_oracle(self.oracle) or not self.store.may_write(agent):
            now = self.clock()
            with self.store.read(agent) as reader:
                targets = wanted if wanted is not None else sorted(reader.lines())
                result = tuple(
                    ReconcileLine(
                        subject=s,
                        predicate=p,
                        status=self._project(reader, agent, s, p, None, None, now).status,
                        escalated=False,
                    )
                    for s, p in targets
                )
            return ReconcileReport(agent_id=agent, lines=result, escalations=0)
        result, batch = self._write(agent, work)
        notified = self._after_commit(batch)
        return ReconcileReport(
            agent_id=agent,
            lines=result,
            escalations=sum(line.escalated for line in result),
            notified=tuple(h for h, ok in notified.items() if ok),
        )

    def _reconcile_line(self, batch: Batch, subject: str, predicate: str) -> ReconcileLine:
        line_views = batch.line_state(subject, predicate).ordered_views()
        belief = project(
            line_views,
            agent_id=batch.agent_id,
            subject=subject,
            predicate=predicate,
            as_of=None,
            valid_at=None,
            now=batch.tx,
            config=self.config,
        )
        waiting = any(
            p.status is PendingStatus.PENDING
            for p in batch.txn.pending_for_line(subject, predicate)
        )
        if belief.status is not BeliefStatus.CONTESTED or waiting:
            return ReconcileLine(
                subject=subject, predicate=predicate, status=belief.status, escalated=False
            )
        contenders = {ref for slot in belief.alternatives for ref in slot.claim_refs}
        line_views = tuple(v for v in line_views if v.ref in contenders)
        challenger = max(line_views, key=lambda v: v.row.stream_seq)
        incumbents = [v.row for v in line_views if v.value != challenger.value]
        handle = self.ids()
        queue(batch, handle, challenger.row, incumbents, "reconcile")
        return ReconcileLine(
            subject=subject,
            predicate=predicate,
            status=belief.status,
            escalated=True,
            handle_id=handle,
        )

    # ------------------------------------------------------------ reads

    def _project(
        self,
        reader: Reader,
        agent: str,
        subject: str,
        predicate: str,
        as_of: datetime | None,
        valid_at: datetime | None,
        now: datetime,
    ) -> Projection:
        return project(
            self._views(reader, agent, subject, predicate, as_of),
            agent_id=agent,
            subject=subject,
            predicate=predicate,
            as_of=as_of,
            valid_at=valid_at,
            now=now,
            config=self.config,
        )

    def _views(
        self, reader: Reader, agent: str, subject: str, predicate: str, as_of: datetime | None
    ) -> Sequence[ClaimView]:
        """The line's claim views from the cache, refreshed to the reader's snapshot."""
        state = self.lines.refreshed(
            (agent, subject, predicate),
            reader.line_version(subject, predicate),
            lambda after: reader.line_since(subject, predicate, after),
        )
        if as_of is None:
            return self.lines.snapshot(state)
        return views(self.lines.rows(state, as_of), self.config)

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
        with self.store.read(agent) as reader:
            line_views = self._views(reader, agent, subject, predicate, as_of_at)
        return history(
            line_views,
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
        for name, number in (("after_seq", after_seq), ("limit", limit)):
            if isinstance(number, bool) or not isinstance(number, int) or number < 0:
                raise ValidationError(f"{name}: expected an integer >= 0, got {number!r}")
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


def _key(value: Any, what: str) -> str:
    if not isinstance(value, str):
        raise ValidationError(f"{what}: expected a string, got {type(value).__name__}")
    return value
