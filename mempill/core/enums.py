"""The closed vocabularies of reference §2–§5 as string enums."""

from __future__ import annotations

from enum import StrEnum


class Disposition(StrEnum):
    """The twelve outcomes a write can have (reference §4)."""

    COMMITTED_CHEAP = "CommittedCheap"
    COMMITTED_INFERRED = "CommittedInferred"
    QUEUED_FOR_ADJUDICATION = "QueuedForAdjudication"
    CONTESTED = "Contested"
    PENDING_CONFLICT = "PendingConflict"
    PENDING_REVIEW = "PendingReview"
    PENDING_LOW_CONFIDENCE = "PendingLowConfidence"
    QUARANTINED = "Quarantined"
    SUPERSEDED = "Superseded"
    INVALIDATED = "Invalidated"
    REINSTATED = "Reinstated"
    REJECTED = "Rejected"


class EventKind(StrEnum):
    CLAIM_COMMITTED = "ClaimCommitted"
    CLAIM_REJECTED = "ClaimRejected"
    RECALL_RE_ENTRY_DETECTED = "RecallReEntryDetected"
    VALIDITY_ASSERTED = "ValidityAsserted"
    ADJUDICATION_REQUESTED = "AdjudicationRequested"
    ADJUDICATION_RESOLVED = "AdjudicationResolved"
    ADJUDICATION_EXPIRED = "AdjudicationExpired"
    DEPENDENT_FLAGGED_PENDING_REVIEW = "DependentFlaggedPendingReview"
    LINE_ERASED = "LineErased"


class Provenance(StrEnum):
    """Where a claim came from; fixed at write time and decides its route."""

    USER_ASSERTED = "External/UserAsserted"
    EXTERNAL_FIRST_HAND = "External/ExternalFirstHand"
    RECALL_RE_ENTRY = "RecallReEntry"
    MODEL_DERIVED = "ModelDerived"

    @property
    def is_external(self) -> bool:
        return self in (Provenance.USER_ASSERTED, Provenance.EXTERNAL_FIRST_HAND)


class Cardinality(StrEnum):
    FUNCTIONAL = "Functional"
    SET_VALUED = "SetValued"
    UNKNOWN = "Unknown"


class Criticality(StrEnum):
    """Ordered Low < Medium < High < Critical (compare with `rank`)."""

    LOW = "Low"
    MEDIUM = "Medium"
    HIGH = "High"
    CRITICAL = "Critical"

    @property
    def rank(self) -> int:
        return _CRITICALITY_ORDER.index(self)


_CRITICALITY_ORDER = (Criticality.LOW, Criticality.MEDIUM, Criticality.HIGH, Criticality.CRITICAL)


class Granularity(StrEnum):
    YEAR = "year"
    MONTH = "month"
    DAY = "day"
    INSTANT = "instant"


class AssertionKind(StrEnum):
    BOUND = "Bound"
    REOPEN = "Reopen"
    INVALIDATE = "Invalidate"


class EdgeKind(StrEnum):
    DERIVED_FROM = "DerivedFrom"
    SUPERSEDES = "Supersedes"


class Verdict(StrEnum):
    AFFIRM = "Affirm"
    DENY = "Deny"
    UNKNOWN = "Unknown"


class PendingStatus(StrEnum):
    PENDING = "pending"
    RESOLVED = "resolved"
    EXPIRED = "expired"


class BeliefStatus(StrEnum):
    RESOLVED = "Resolved"
    CONTESTED = "Contested"
    TIMING_UNCERTAIN = "TimingUncertain"
    NO_BELIEF = "NoBelief"


class HistoryStatus(StrEnum):
    CURRENT = "Current"
    ENDED = "Ended"
    SUPERSEDED = "Superseded"
    CONTESTED = "Contested"
    PENDING = "Pending"
    INFERRED = "Inferred"
    QUARANTINED = "Quarantined"
    INVALIDATED = "Invalidated"
    DENIED = "Denied"


class Currency(StrEnum):
    FRESH = "Fresh"
    AGING_UNCONFIRMED = "AgingUnconfirmed"
    DECAYED = "Decayed"


class Marker(StrEnum):
    QUEUED_FOR_ADJUDICATION = "QueuedForAdjudication"
    PENDING_CONFLICT = "PendingConflict"
    PENDING_REVIEW = "PendingReview"
    RECALL_TAINTED = "RecallTainted"
    LOW_DERIVATION_ANCHOR = "LowDerivationAnchor"
    AGED_SET_MEMBER = "AgedSetMember"
    INFERRED = "Inferred"
