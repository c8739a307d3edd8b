"""The oracle loop of reference §6: the outbox notifications after a commit, verdicts, expiry,
notification retries and reconcile. The Engine holds one and delegates to it."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

from mempill.core import parse
from mempill.core.enums import BeliefStatus, PendingStatus, Provenance, Verdict
from mempill.core.fold import project
from mempill.core.model import (
    AdjudicationOutcome,
    AdjudicationRequest,
    PendingAdjudication,
    ReconcileLine,
    ReconcileReport,
)
from mempill.engine.adjudication import adjudicate, expire, queue
from mempill.engine.batch import Batch, Committed
from mempill.engine.runner import TransactionRunner
from mempill.errors import ConfigError, NotFoundError, TransientStorageError
from mempill.ports import OraclePort, Reader, VectorPort, Writer

log = logging.getLogger("mempill")
T = TypeVar("T")


def retrying(runner: TransactionRunner, fn: Callable[[], T]) -> T:
    """`fn` (a read, or an idempotent write), run again after a transient storage error,
    with the write retries' backoff (reference §8.2); the last failure is raised as it is."""
    for attempt in range(runner.retry.attempts):
        try:
            return fn()
        except TransientStorageError as e:
            if attempt + 1 >= runner.retry.attempts:
                raise
            log.info("retried after a transient failure (attempt %d): %s", attempt + 1, e)
            time.sleep(runner.retry.delay(attempt))
    raise AssertionError("unreachable")  # a RetryPolicy has at least one attempt


def read_snapshot(runner: TransactionRunner, agent_id: str, fn: Callable[[Reader], T]) -> T:
    """`fn` over one read snapshot of the agent; a snapshot lost to a transient error (a
    connection dropped mid-read) is read again from the start."""

    def attempt() -> T:
        with runner.store.read(agent_id) as reader:
            return fn(reader)

    return retrying(runner, attempt)


class OracleLoop:
    """Talks to the oracle and vector ports around the runner's transactions."""

    def __init__(
        self, runner: TransactionRunner, oracle: OraclePort | None, vector: VectorPort
    ) -> None:
        for port, method in ((oracle, "request_adjudication"), (vector, "index_claim")):
            if port is not None and not callable(getattr(port, method, None)):
                raise ConfigError(f"expected an object with {method}(), got {type(port).__name__}")
        self.runner = runner
        self.oracle = oracle if runner.has_oracle else None
        self.vector = vector

    # ------------------------------------------------------------ after a commit

    def after_commit(
        self, done: Committed, handles: Iterable[str] | None = None
    ) -> dict[str, bool]:
        """Index the new claims, then tell the oracle of each queued handle (an outbox):
        the call's own, or `handles` when the call knows better (a replayed commit)."""
        for row in done.new_claims:
            self.vector.index_claim(row)
        chosen = done.queued if handles is None else handles
        if not chosen:
            return {}
        return {handle: self.notify(done.agent_id, handle) for handle in chosen}

    def notify(self, agent_id: str, handle_id: str) -> bool:
        """Call the oracle for one outbox row; on success mark it notified."""
        if self.oracle is None:
            return False
        store = self.runner.store
        row = read_snapshot(self.runner, agent_id, lambda r: r.pending_by_handle(handle_id))
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
        except Exception:  # an oracle failure must never orphan the claim (reference §6)
            log.warning("oracle failed for handle %s; it stays pending", handle_id, exc_info=True)
            return False

        def mark() -> None:  # an idempotent UPDATE: safe to run again after a lost connection
            with store.write(agent_id) as txn:
                txn.set_pending_notified(handle_id)

        retrying(self.runner, mark)
        return True

    # ------------------------------------------------------------ the Engine's oracle calls

    def submit_adjudication(
        self,
        handle_id: str,
        verdict: Verdict | str,
        evidence_provenance: Any = Provenance.USER_ASSERTED,
        *,
        agent_id: str | None = None,
    ) -> AdjudicationOutcome:
        """Apply an oracle verdict. Unknown, resolved or expired handles raise NotFoundError."""
        self.runner.writable("submit_adjudication")
        handle_id = parse.handle(handle_id)
        chosen = parse.enum(Verdict, verdict, "verdict")
        evidence = parse.provenance(evidence_provenance, "evidence_provenance")
        agent = (
            parse.agent_id(agent_id)
            if agent_id is not None
            else retrying(self.runner, lambda: self.runner.store.find_handle(handle_id))
        )
        if agent is None:
            raise NotFoundError(f"unknown adjudication handle {parse.show(handle_id)}")
        op_ref = self.runner.ids()

        def work(batch: Batch) -> AdjudicationOutcome | None:
            batch.tick()
            pending = batch.txn.pending_by_handle(handle_id)
            if pending is None or pending.status is not PendingStatus.PENDING:
                raise NotFoundError(
                    f"adjudication handle {parse.show(handle_id)} is unknown or already closed"
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
                superseded=tuple(e.rationale["superseded"]),
            )

        outcome, _ = self.runner.write(agent, work, replay=replay)
        if outcome is None:
            raise NotFoundError(f"adjudication handle {parse.show(handle_id)} has expired")
        return outcome

    def sweep_expired(self) -> int:
        """Expire every pending adjudication past its `expires_at`; returns how many."""
        self.runner.writable("sweep_expired")
        now = self.runner.clock()  # one instant for the whole sweep, whatever the number of agents
        count = 0
        for agent in retrying(self.runner, self.runner.store.agents_with_pending):

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

            count += self.runner.write(agent, work, now=now)[0]
        return count

    def notify_pending(self, agent_id: str | None = None) -> int:
        """Retry the oracle for pending rows it was never told about; returns how many succeeded."""
        self.runner.writable("notify_pending")
        agents = (
            (parse.agent_id(agent_id),)
            if agent_id is not None
            else retrying(self.runner, self.runner.store.agents_with_pending)
        )
        done = 0
        for agent in agents:
            rows = read_snapshot(self.runner, agent, lambda r: r.pending(PendingStatus.PENDING))
            done += sum(self.notify(agent, p.handle_id) for p in rows if not p.notified)
        return done

    def list_pending(
        self, agent_id: str | None = None, *, status: PendingStatus | None = PendingStatus.PENDING
    ) -> tuple[PendingAdjudication, ...]:
        """Outbox rows (pending by default; `status=None` for all), oldest first."""
        wanted = None if status is None else parse.enum(PendingStatus, status, "status")
        agents = (
            (parse.agent_id(agent_id),)
            if agent_id is not None
            else retrying(self.runner, self.runner.store.agents)
        )
        rows: list[PendingAdjudication] = []
        for agent in agents:
            rows.extend(read_snapshot(self.runner, agent, lambda r: r.pending(wanted)))
        return tuple(sorted(rows, key=lambda p: (p.queued_at, p.agent_id, p.handle_id)))

    def reconcile(
        self, agent_id: str, lines: Iterable[tuple[str, str]] | None = None
    ) -> ReconcileReport:
        """Report each line's status; queue an adjudication for each Contested line without one.

        Never bounds anything. Without an oracle, or on a read-only store, it only reports.
        It reads first and writes only when a line is due for escalation, so a call with
        nothing to queue changes no stored state (it does not bind a single-file store, nor
        create an agent's file).
        """
        agent = parse.agent_id(agent_id)
        wanted = None if lines is None else parse.lines(lines)
        now = self.runner.clock()

        def report(reader: Reader) -> tuple[tuple[ReconcileLine, ...], bool]:
            targets = wanted if wanted is not None else sorted(reader.lines())
            found, due = [], False
            for s, p in targets:
                status = self.runner.project(reader, agent, s, p, None, None, now).status
                found.append(ReconcileLine(subject=s, predicate=p, status=status, escalated=False))
                due = due or (
                    self.oracle is not None
                    and status is BeliefStatus.CONTESTED
                    and not any(
                        q.status is PendingStatus.PENDING for q in reader.pending_for_line(s, p)
                    )
                )
            return tuple(found), due

        lines_now, due = read_snapshot(self.runner, agent, report)
        store = self.runner.store
        if self.oracle is None or not due or store.read_only or not store.may_write(agent):
            return ReconcileReport(agent_id=agent, lines=lines_now, escalations=0)

        def work(batch: Batch) -> tuple[ReconcileLine, ...]:
            batch.tick()
            targets = wanted if wanted is not None else sorted(batch.txn.lines())
            return tuple(self._reconcile_line(batch, s, p) for s, p in targets)

        result, done = self.runner.write(agent, work, now=now)
        notified = self.after_commit(done)
        return ReconcileReport(
            agent_id=agent,
            lines=result,
            escalations=sum(line.escalated for line in result),
            notified=tuple(h for h, ok in notified.items() if ok),
        )

    def _reconcile_line(self, batch: Batch, subject: str, predicate: str) -> ReconcileLine:
        state = batch.line_state(subject, predicate)
        belief = project(
            state,
            agent_id=batch.agent_id,
            subject=subject,
            predicate=predicate,
            as_of=None,
            valid_at=None,
            now=batch.tx,
            config=self.runner.config,
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
        contending = [state.by_ref[ref] for ref in contenders]
        challenger = max(contending, key=lambda v: v.row.stream_seq)
        incumbents = [v.row for v in contending if v.value != challenger.value]
        handle = self.runner.ids()
        queue(batch, handle, challenger.row, incumbents, "reconcile")
        return ReconcileLine(
            subject=subject,
            predicate=predicate,
            status=belief.status,
            escalated=True,
            handle_id=handle,
        )
