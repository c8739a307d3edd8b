"""The 0.4 wheel's `mempill.types`, written for `mempill.compat`: `Disposition` with the
wheel's member names, `ProvenanceLabel`, and TypedDicts of the dicts compat takes and returns.

The TypedDicts describe compat's shapes (the wheel's keys plus the ones compat adds); they
are hints for type checkers, and plain dicts work everywhere. Migrating code changes
`from mempill.types import …` to `from mempill.compat.types import …`.
"""

from enum import StrEnum
from typing import Any, NotRequired, TypedDict

from mempill.compat.shapes import provenance_dict
from mempill.core.enums import Provenance

__all__ = [
    "AuditQueryRequest",
    "AuditQueryResponse",
    "BeliefProjection",
    "BeliefSlot",
    "ConfidenceDict",
    "Disposition",
    "FactDict",
    "IngestClaimRequest",
    "IngestClaimResponse",
    "ProvenanceLabel",
    "QueryMemoryRequest",
    "QueryMemoryResponse",
    "ReconcileRequest",
    "ReconcileResponse",
    "ValidTimeDict",
]


class Disposition(StrEnum):
    """The twelve write outcomes, spelt as the wheel spelt them (`Disposition.CommittedCheap`).

    Each member equals the string compat returns: `receipt["disposition"] ==
    Disposition.Contested`. The typed API's `mempill.Disposition` has the same values under
    upper-case names (`mempill.Disposition.CONTESTED`).
    """

    CommittedCheap = "CommittedCheap"
    CommittedInferred = "CommittedInferred"
    QueuedForAdjudication = "QueuedForAdjudication"
    Contested = "Contested"
    PendingConflict = "PendingConflict"
    PendingReview = "PendingReview"
    PendingLowConfidence = "PendingLowConfidence"
    Quarantined = "Quarantined"
    Superseded = "Superseded"
    Invalidated = "Invalidated"
    Reinstated = "Reinstated"
    Rejected = "Rejected"


class ProvenanceLabel:
    """Provenance dicts in the wheel's wire shape (`{"type": "External", "kind": …}`).

    compat also accepts the plain strings `"External:UserAsserted"`, `"ModelDerived"`, ….
    """

    USER_ASSERTED = "UserAsserted"
    EXTERNAL_FIRST_HAND = "ExternalFirstHand"

    @staticmethod
    def external_user_asserted() -> dict[str, str]:
        """A person stated it (the user as the authority)."""
        return provenance_dict(Provenance.USER_ASSERTED)

    @staticmethod
    def external_first_hand() -> dict[str, str]:
        """First-hand external evidence: a tool result, a system of record, a sensor."""
        return provenance_dict(Provenance.EXTERNAL_FIRST_HAND)

    @staticmethod
    def recall_re_entry() -> dict[str, str]:
        """Something the store served before, written back (corroborates, never grounds)."""
        return provenance_dict(Provenance.RECALL_RE_ENTRY)

    @staticmethod
    def model_derived() -> dict[str, str]:
        """Model output or inference; stored down-weighted until anchored."""
        return provenance_dict(Provenance.MODEL_DERIVED)


class ConfidenceDict(TypedDict):
    value_confidence: float
    valid_time_confidence: float


class ValidTimeDict(TypedDict):
    """A window `[start, end)`. Dates as `2020`, `2020-03`, `2020-03-15` or RFC 3339; a
    granularity (`year`, `month`, `day`, `instant`) is how precisely an end was written."""

    valid_time_confidence: float
    start: NotRequired[str | None]
    end: NotRequired[str | None]
    start_granularity: NotRequired[str]
    end_granularity: NotRequired[str]


class FactDict(TypedDict):
    subject: str
    predicate: str
    value: Any


class IngestClaimRequest(TypedDict):
    """`ingest_claim`'s request. `claim_ref` is an idempotency key (new in compat)."""

    agent_id: str
    subject: str
    predicate: str
    value: Any
    provenance: dict[str, str] | str
    cardinality: str
    valid_time: NotRequired[ValidTimeDict | None]
    confidence: ConfidenceDict
    criticality: str
    derived_from: list[str]
    claim_ref: NotRequired[str | None]


class IngestClaimResponse(TypedDict):
    """`ingest_claim`'s receipt; `handle_id`/`oracle_notified` when the claim was queued."""

    claim_ref: str
    disposition: str
    contested_with: list[str]
    reason: str
    handle_id: NotRequired[str]
    oracle_notified: NotRequired[bool]


class BeliefSlot(TypedDict, total=False):
    """One side of a belief. `valid_time` is the window as stored; `effective_window`
    is the window the fold used (bounds applied)."""

    claim_ref: str
    fact: FactDict
    provenance: dict[str, str]
    valid_time: ValidTimeDict
    transaction_time: str
    confidence: ConfidenceDict
    currency_signal: dict[str, Any]
    criticality: str
    valid_from_display: str
    valid_until_display: str
    cardinality: str
    claim_refs: list[str]
    effective_window: dict[str, str | None]


class BeliefProjection(TypedDict, total=False):
    """`query_memory`'s belief: `primary` is None unless one value holds (a Contested
    belief lists every side in `alternatives`)."""

    status: str
    primary: BeliefSlot | None
    alternatives: list[BeliefSlot]
    currency: str
    criticality: str
    staleness: dict[str, Any]
    markers: list[str]
    reason: str | None
    members: list[BeliefSlot]
    inferred: list[BeliefSlot]
    pending: list[BeliefSlot]
    corroboration_count: int
    as_of_tx_time: str | None
    valid_at: str | None


class QueryMemoryRequest(TypedDict):
    """Without `valid_at` the belief is the one in force now; without `as_of_tx_time`,
    everything recorded so far."""

    agent_id: str
    subject: str
    predicate: str
    as_of_tx_time: NotRequired[str | None]
    valid_at: NotRequired[str | None]


class QueryMemoryResponse(TypedDict):
    belief: BeliefProjection


class ReconcileRequest(TypedDict):
    """An empty `subject_lines` reconciles every line of the agent."""

    agent_id: str
    subject_lines: list[tuple[str, str]] | list[list[str]]


class ReconcileResponse(TypedDict):
    outcomes: list[list[str]]
    oracle_escalations: int
    lines: list[dict[str, Any]]
    notified: list[str]


class AuditQueryRequest(TypedDict):
    """`after_seq` (new) continues from a page's `next_cursor`."""

    agent_id: str
    claim_ref: NotRequired[str | None]
    from_tx_time: NotRequired[str | None]
    limit: int
    after_seq: NotRequired[int]


class AuditQueryResponse(TypedDict):
    entries: list[dict[str, Any]]
    next_cursor: int | None
