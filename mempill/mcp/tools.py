"""The MCP tools: thin methods over the engine for one agent, returning plain JSON.

Each method's signature is its JSON schema (the SDK derives it with pydantic) and its
docstring is the description an agent reads, so both are written for an agent: what
the tool does, when to use it, what comes back. Engine errors become tool errors with
the engine's message, which names the argument; no traceback reaches the client.
Reads check their keys and cursors first (`mempill.cli.checks`); every tool first checks
that a single-file store still belongs to this server's agent (`guards`). The time-travel
tools and `erase` are in `travel`; search, list_subjects and list_predicates in `finding`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from mcp.server.mcpserver.exceptions import ToolError
from pydantic import Field

from mempill.cli import checks
from mempill.cli.checks import MAX_MCP_LIMIT
from mempill.cli.explain import (
    belief_reason,
    receipt_reason,
    stored_claim,
    stored_validity,
    validity_reason,
)
from mempill.core import parse
from mempill.core.enums import BeliefStatus, Disposition
from mempill.core.limits import MAX_SEQ
from mempill.core.model import Projection, Receipt, ValidityReceipt
from mempill.mcp.arguments import (
    AsOf,
    CardinalityArg,
    Confidence,
    CriticalityArg,
    DerivedFrom,
    EndAt,
    EndRef,
    EndValue,
    Predicate,
    ProvenanceArg,
    Subject,
    TimeConfidence,
    ValidAt,
    ValidFrom,
    ValidUntil,
    Value,
)
from mempill.mcp.finding import FindingTools, similar_predicates
from mempill.mcp.guards import compact, date_arg, guarded, keys
from mempill.mcp.travel import TravelTools


class MemoryTools(FindingTools, TravelTools):
    """The tools of one agent's memory. Write tools are left out in read-only mode, and
    `erase` unless the server was started with --allow-erase."""

    READ: tuple[str, ...] = (
        "recall",
        *FindingTools.READ,
        "query_memory",
        "query_subject",
        "history",
        "audit",
        "reconcile",
        *TravelTools.READ,
    )
    WRITE: tuple[str, ...] = ("remember", "ingest_claim", "end_fact")
    ERASE = TravelTools.ERASE

    # ---------------------------------------------------------------- writes

    @guarded
    def remember(
        self,
        subject: Subject,
        predicate: Predicate,
        value: Value,
        valid_from: ValidFrom = None,
        valid_until: ValidUntil = None,
        confidence: Confidence = 1.0,
        cardinality: CardinalityArg = "Functional",
        criticality: CriticalityArg = "Medium",
    ) -> dict[str, Any]:
        """Remember a fact the user told you (provenance External:UserAsserted).

        Use it whenever the user states something worth keeping. Restating a value
        corroborates it; a different value for the same time is kept as Contested (never
        silently overwritten). When a value changed, first end_fact the old one at the
        time of the change, then remember the new one with valid_from. Returns the
        disposition, a status_reason in plain words, the belief after the write and
        similar_predicates: the subject's other predicates sharing a word with this one
        (home_city when you wrote city). If one of them means the same, remember the fact
        under it instead, so one fact is not split across two names. For your own
        inferences use ingest_claim with provenance ModelDerived.
        """
        receipt = self.engine.remember(
            self.agent,
            subject,
            predicate,
            value,
            valid_from=date_arg(valid_from, "valid_from"),
            valid_until=date_arg(valid_until, "valid_until"),
            confidence=confidence,
            cardinality=cardinality,
            criticality=criticality,
        )
        return self._receipt(receipt, subject, predicate)

    @guarded
    def ingest_claim(
        self,
        subject: Subject,
        predicate: Predicate,
        value: Value,
        provenance: ProvenanceArg = "External:UserAsserted",
        value_confidence: Confidence = 1.0,
        valid_from: ValidFrom = None,
        valid_until: ValidUntil = None,
        valid_time_confidence: TimeConfidence = None,
        cardinality: CardinalityArg = "Functional",
        criticality: CriticalityArg = "Medium",
        derived_from: DerivedFrom = None,
    ) -> dict[str, Any]:
        """Write one claim with full control over provenance, confidences and derivation.

        Provenance decides how the claim is treated: External claims can become and
        contest beliefs; ModelDerived ones stay inferences unless anchored to an
        External source through derived_from; RecallReEntry marks a recalled value coming
        back. Returns the disposition (one of 12, e.g. CommittedCheap, Contested,
        PendingConflict, Rejected), a plain-language status_reason, the belief after and
        similar_predicates (as remember).
        """
        window = None
        if valid_from is not None or valid_until is not None:
            window = {
                "start": date_arg(valid_from, "valid_from"),
                "end": date_arg(valid_until, "valid_until"),
            }
        receipt = self.engine.ingest(
            {
                "agent_id": self.agent,
                "subject": subject,
                "predicate": predicate,
                "value": value,
                "provenance": provenance,
                "value_confidence": value_confidence,
                "valid_time": window,
                "valid_time_confidence": valid_time_confidence,
                "cardinality": cardinality,
                "criticality": criticality,
                "derived_from": derived_from or [],
            }
        )
        return self._receipt(receipt, subject, predicate)

    @guarded
    def end_fact(
        self,
        subject: Subject,
        predicate: Predicate,
        at: EndAt = None,
        value: EndValue = None,
        claim_ref: EndRef = None,
    ) -> dict[str, Any]:
        """Mark the current value of a fact as no longer true from `at` on (default now).

        Use it when the user says something changed or was wrong. The old value stays in
        history as Ended; nothing is deleted. When the fact is Contested or set-valued,
        pass value (or claim_ref) to choose which value to end.
        """
        keys(subject, predicate)
        moment = self.engine.clock() if at is None else date_arg(at, "at")
        assert moment is not None
        if claim_ref is not None:
            claim_ref = parse.claim_ref(checks.text(claim_ref, "claim_ref"))
            receipts = [self._end_claim(subject, predicate, claim_ref, moment)]
        else:
            kwargs: dict[str, Any] = {} if value is None else {"value": value}
            ended = self.engine.end_fact(self.agent, subject, predicate, moment, **kwargs)
            receipts = list(ended.receipts)
        return {
            "subject": subject,
            "predicate": predicate,
            "receipts": [
                r.to_dict() | {"committed": stored_validity(r), "status_reason": validity_reason(r)}
                for r in receipts
            ],
            "committed": any(stored_validity(r) for r in receipts),
            "status_reason": validity_reason(receipts[0]),
            "belief": self._compact(self.engine.recall(self.agent, subject, predicate)),
        }

    def _end_claim(
        self, subject: str, predicate: str, claim_ref: str, moment: datetime | str
    ) -> ValidityReceipt:
        """End one claim, after checking it belongs to the line the agent named."""
        known = {e.claim_ref for e in self.engine.history(self.agent, subject, predicate)}
        if claim_ref not in known:
            raise ToolError(
                f"claim_ref: {claim_ref!r} is not a claim of ({subject!r}, {predicate!r})"
            )
        return self.engine.end(self.agent, claim_ref, moment)

    # ---------------------------------------------------------------- reads

    @guarded
    def recall(
        self, subject: Subject, predicate: Predicate, as_of: AsOf = None, valid_at: ValidAt = None
    ) -> dict[str, Any]:
        """What is believed about one fact: status, value and every candidate value.

        status is Resolved (value holds the answer), Contested (several values are
        believed for the same time; see values and status_reason, and ask the user),
        TimingUncertain (believed, with no known valid time) or NoBelief. Check status
        before trusting value. Use as_of/valid_at for questions about the past. recall
        needs the exact subject and predicate: on NoBelief, search for the fact's words
        before concluding that nothing is known (it may be stored as home_city, not city).
        """
        keys(subject, predicate)
        return self._compact(
            self.engine.recall(self.agent, subject, predicate, as_of=as_of, valid_at=valid_at)
        )

    @guarded
    def query_memory(
        self, subject: Subject, predicate: Predicate, as_of: AsOf = None, valid_at: ValidAt = None
    ) -> dict[str, Any]:
        """The full belief projection of one fact (the detailed form of recall).

        Includes primary, alternatives (when Contested), members (set-valued), inferred
        and pending claims, markers, currency, criticality and corroboration count.
        """
        keys(subject, predicate)
        projection = self.engine.query_memory(self.agent, subject, predicate, as_of, valid_at)
        return _projection(projection)

    @guarded
    def query_subject(
        self, subject: Subject, as_of: AsOf = None, valid_at: ValidAt = None
    ) -> dict[str, Any]:
        """Everything believed about one subject: one projection per predicate, sorted."""
        keys(subject)
        rows = self.engine.query_subject(self.agent, subject, as_of, valid_at)
        return {"subject": subject, "facts": [_projection(p) for p in rows]}

    @guarded
    def history(self, subject: Subject, predicate: Predicate, as_of: AsOf = None) -> dict[str, Any]:
        """Every claim ever made about one fact, oldest first, each with its status.

        Statuses: Current, Ended, Superseded, Contested, Pending, Inferred, Quarantined,
        Invalidated, Denied. Use it to explain how a belief came to be or to find the
        claim_ref to pass to end_fact.
        """
        keys(subject, predicate)
        return self.engine.history(self.agent, subject, predicate, as_of=as_of).to_dict()

    @guarded
    def audit(
        self,
        claim_ref: Annotated[
            str | None, Field(description="Only entries about this claim. Omit for all.")
        ] = None,
        after_seq: Annotated[
            int,
            Field(ge=0, le=MAX_SEQ, description="Return entries after this stream_seq (a cursor)."),
        ] = 0,
        limit: Annotated[
            int, Field(ge=1, le=MAX_MCP_LIMIT, description="At most this many entries.")
        ] = 50,
    ) -> dict[str, Any]:
        """The append-only ledger: every write decision, oldest first, with its rationale.

        Page with after_seq = the returned next_cursor until it is null.
        """
        checks.optional_text(claim_ref, "claim_ref")
        return self.engine.query_audit(self.agent, claim_ref, after_seq, limit).to_dict()

    @guarded
    def reconcile(
        self,
        lines: Annotated[
            list[tuple[str, str]] | None,
            Field(description="[subject, predicate] pairs to check. Omit for every fact."),
        ] = None,
    ) -> dict[str, Any]:
        """Report each fact's status and list the Contested ones; it never changes a value.

        With an adjudicator configured it also queues the contested facts for
        adjudication; this server has none, so it only reports.
        """
        for subject, predicate in lines or ():
            keys(subject, predicate)
        report = self.engine.reconcile(self.agent, lines)
        result = report.to_dict()
        result["contested"] = [
            [line.subject, line.predicate]
            for line in report.lines
            if line.status is BeliefStatus.CONTESTED
        ]
        return result

    # ---------------------------------------------------------------- shapes

    def _receipt(self, receipt: Receipt, subject: str, predicate: str) -> dict[str, Any]:
        result = receipt.to_dict()
        result["committed"] = stored_claim(receipt)
        result["status_reason"] = receipt_reason(receipt, self.engine.config)
        similar: list[str] = []
        if receipt.disposition is not Disposition.REJECTED:
            result["belief"] = self._compact(self.engine.recall(self.agent, subject, predicate))
            similar = similar_predicates(self.engine, self.agent, subject, predicate)
        result["similar_predicates"] = similar
        return result

    @staticmethod
    def _compact(projection: Projection) -> dict[str, Any]:
        return compact(projection)


def _projection(projection: Projection) -> dict[str, Any]:
    return projection.to_dict() | {"status_reason": belief_reason(projection)}
