"""Plain-language `status_reason` text for receipts and beliefs (CLI and MCP server).

An agent reading a tool result, or a person reading a terminal, should learn from one
sentence what happened and what to do next, without knowing the rule letters of
reference §4. The texts are keyed by the engine's reason codes; an unknown code falls back
to a generic sentence that still names the code.
"""

from __future__ import annotations

import json
from typing import Any

from mempill.core.config import EngineConfig
from mempill.core.enums import BeliefStatus, Currency, Disposition, Marker
from mempill.core.model import BeliefSlot, Projection, Receipt, ValidityReceipt

_INGEST: dict[str, str] = {
    "first_authoritative": "Stored; it is now the belief for this subject and predicate.",
    "set_member": "Stored as one more member of a set-valued fact.",
    "corroboration": "Stored; it corroborates the value already believed.",
    "succession": "Stored; its valid time follows the earlier value's, so both are kept in order.",
    "recall_echo": (
        "Not stored again: this is a value mempill already holds, coming back from a recall."
    ),
    "unanchored": (
        "Stored as an inference only: it has no external source behind it, so it never "
        "overrides what the user or a first-hand source said."
    ),
    "no_conflict": "Stored as an inference (ModelDerived); it does not contradict any belief.",
    "recall_mutated": (
        "Stored as an inference marked RecallTainted: a recalled value came back changed."
    ),
    "low_confidence": (
        "Not believed: its confidence is below the low-confidence threshold ({low}). It is kept "
        "as pending; restate it with more confidence if it is true."
    ),
    "criticality_floor": (
        "Not believed yet: it contradicts a High- or Critical-criticality value that was stated "
        "with more confidence. The old value stays believed; restate this one with at least that "
        "confidence, or end the old fact first ({end})."
    ),
    "oracle": (
        "Stored, but it contradicts what is believed; an adjudicator was asked to decide. Until "
        "then recall reports the fact as Contested."
    ),
    "conflict": (
        "Stored, but it contradicts {n} value(s) already believed for the same time. mempill "
        "keeps both and recall reports the fact as Contested until one side is ended. If the "
        "new value replaced the old one, {end} the old value at the time of the change; if it "
        "is unclear which is right, ask the user, then {end} the wrong one."
    ),
    "incoherent_window": (
        "Quarantined: its valid time ends before it starts (valid_until must be after "
        "valid_from). It is never believed."
    ),
    "recall_burst": (
        "Quarantined: too many recalled values re-entered this fact in a short time (a loop?). "
        "It is never believed."
    ),
    "empty_key": "Rejected: subject and predicate must not be empty.",
    "key_too_long": "Rejected: subject and predicate are limited to 1024 characters.",
    "invalid_text": "Rejected: the text contains U+0000 or an unpaired surrogate.",
    "non_finite_number": "Rejected: the value contains NaN or an infinity; JSON has neither.",
    "value_too_large": "Rejected: the value is larger than the store's limit (64 KiB).",
    "value_too_deep": "Rejected: the value nests deeper than 64 levels.",
    "confidence_out_of_range": "Rejected: confidences must be between 0 and 1.",
    "unknown_parent": "Rejected: derived_from names a claim this agent does not have.",
    "self_parent": "Rejected: a claim cannot be derived from itself.",
    "unknown_recall_ref": (
        "Rejected: a RecallReEntry must point (derived_from) at a claim this agent holds."
    ),
    "write_authority": "Rejected: this store belongs to another agent and refuses its writes.",
}

_VALIDITY: dict[str, str] = {
    "bound": "Ended: the claim stops holding at {at}.",
    "already_bound": "Nothing to do: the claim already ends at {at}.",
    "bound_requires_external": "Rejected: only user or first-hand sources may end a fact.",
    "claim_not_live": "Rejected: that claim is not believed, so there is nothing to end.",
    "bound_before_start": "Rejected: the end is before the claim's valid time starts.",
    "reopened": "Reopened: the claim's end was cancelled.",
    "nothing_bound": "Nothing to do: the claim had no end to cancel.",
    "invalidated": "Invalidated: the claim is treated as never having been true.",
    "already_invalidated": "Nothing to do: the claim was already invalidated.",
}

_NO_BELIEF: dict[str, str] = {
    "no_claims": "Nothing is remembered about this subject and predicate.",
    "window_gap": "Values are remembered, but none is valid at that time (it falls in a gap).",
    "window_ended": "The remembered value(s) stopped being valid before that time.",
    "not_yet_valid": "The remembered value(s) only become valid after that time.",
}

_MARKERS: dict[Marker, str] = {
    Marker.QUEUED_FOR_ADJUDICATION: "a conflicting value is waiting for an adjudicator",
    Marker.PENDING_CONFLICT: (
        "a conflicting value was stated but not believed (not confident enough to overturn it)"
    ),
    Marker.PENDING_REVIEW: (
        "it was derived from a claim that has since ended or been invalidated; re-check it"
    ),
    Marker.RECALL_TAINTED: "it came back changed from a recall",
    Marker.LOW_DERIVATION_ANCHOR: "it is derived through a long chain of inferences",
    Marker.AGED_SET_MEMBER: "some set members have not been confirmed recently",
    Marker.INFERRED: "it is only inferred; nobody stated it",
}


def stored_claim(receipt: Receipt) -> bool:
    """`committed` of an ingest result: this call stored a new claim.

    True when a claim row and its `ClaimCommitted` ledger entry were written, whatever
    the disposition (a Contested or pending claim is stored too; `disposition` and the
    belief say whether it is believed). False for a Rejected request (only a
    `ClaimRejected` entry) and for a recall echo (the value was already held: the receipt
    names the existing claim and nothing new is stored): `Receipt.committed`.
    """
    return receipt.committed


def stored_validity(receipt: ValidityReceipt) -> bool:
    """`committed` of an end result: this call stored a validity assertion (an end).

    False for a Rejected request and for a no-op (the claim already ended there).
    """
    return receipt.committed


def receipt_reason(
    receipt: Receipt, config: EngineConfig | None = None, end: str = "end_fact"
) -> str:
    """One or two sentences on what an ingest did and what to do next.

    `end` names the way to end a fact in the caller's world: the MCP tool `end_fact`,
    or the command `mempill end`.
    """
    cfg = config or EngineConfig()
    template = _INGEST.get(receipt.reason)
    if template is None:
        return f"{receipt.disposition.value} ({receipt.reason})."
    return template.format(low=cfg.low_confidence_threshold, n=len(receipt.contested_with), end=end)


def validity_reason(receipt: ValidityReceipt) -> str:
    """What an end (Bound), reopen or invalidate did."""
    at = "" if receipt.effective_at is None else receipt.effective_at.isoformat()
    template = _VALIDITY.get(receipt.reason)
    if template is None:
        return f"{receipt.disposition.value} ({receipt.reason})."
    return template.format(at=at)


def belief_reason(projection: Projection, end: str = "end_fact") -> str | None:
    """Why a belief is not a plain, fresh, single value; None when it is."""
    parts: list[str] = []
    status = projection.status
    if status is BeliefStatus.CONTESTED:
        values = "; ".join(_slot_text(s) for s in projection.alternatives)
        parts.append(
            f"Contested: {len(projection.alternatives)} different values are believed for the "
            f"same time ({values}). mempill does not pick one: if one value replaced another, "
            f"{end} the old one at the time of the change; otherwise ask the user which is "
            f"right, then {end} the wrong one."
        )
    elif status is BeliefStatus.NO_BELIEF:
        parts.append(_NO_BELIEF.get(projection.reason or "", "No value is believed."))
    elif status is BeliefStatus.TIMING_UNCERTAIN:
        parts.append("Believed, but no valid time is known for it.")
    markers = [_MARKERS[m] for m in projection.markers if m in _MARKERS]
    if markers:
        parts.append("Note: " + "; ".join(markers) + ".")
    if projection.currency is Currency.DECAYED:
        parts.append("It has not been confirmed for a long time (Decayed); consider re-checking.")
    elif projection.currency is Currency.AGING_UNCONFIRMED:
        parts.append("It has not been confirmed recently (AgingUnconfirmed).")
    return " ".join(parts) or None


def is_settled(disposition: Disposition) -> bool:
    """Committed outcomes (the write became or supports belief)."""
    return disposition in (Disposition.COMMITTED_CHEAP, Disposition.COMMITTED_INFERRED)


def _slot_text(slot: BeliefSlot) -> str:
    window = ""
    if slot.valid_from_display or slot.valid_until_display:
        window = f" valid {slot.valid_from_display or '…'}–{slot.valid_until_display or '…'}"
    return f"{value_text(slot.value)}{window} from {slot.provenance.value}"


def value_text(value: Any) -> str:
    """A value as compact JSON (strings quoted), for one-line messages and tables."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))
