"""The oracle loop of SPEC §6: verdicts, expiry, notification retries, reconcile."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from mempill import parse
from mempill.adjudication import adjudicate, expire, queue
from mempill.batch import Batch
from mempill.enums import BeliefStatus, PendingStatus, Provenance, Verdict
from mempill.errors import NotFoundError
from mempill.fold import project
from mempill.model import AdjudicationOutcome, PendingAdjudication, ReconcileLine, ReconcileReport
from mempill.ports import Writer, has_oracle
from mempill.transactions import Transactions


class OracleLoop(Transactions):
    """Engine methods for adjudication: submit, sweep, notify, list, reconcile."""

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
        now = self.clock()  # one instant for the whole sweep, whatever the number of agents
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

            count += self._write(agent, work, now=now)[0]
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
        state = batch.line_state(subject, predicate)
        belief = project(
            state,
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
        contending = [state.by_ref[ref] for ref in contenders]
        challenger = max(contending, key=lambda v: v.row.stream_seq)
        incumbents = [v.row for v in contending if v.value != challenger.value]
        handle = self.ids()
        queue(batch, handle, challenger.row, incumbents, "reconcile")
        return ReconcileLine(
            subject=subject,
            predicate=predicate,
            status=belief.status,
            escalated=True,
            handle_id=handle,
        )
