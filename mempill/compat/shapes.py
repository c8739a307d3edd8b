"""Typed results rendered as the published 0.4 wheel's dicts (the output half of `compat`).

Every renderer is pure. Keys the wheel returned are always present with the wheel's
meaning; keys it never had (reasons, members, cursors…) are added, never substituted.
Valid times (caller-supplied) print like the wheel: `2020-01-01T00:00:00Z`, with a
fraction only when there is one; tx times (engine-stamped) keep the fixed-width,
sortable `…:00.000000Z` form.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from mempill.core.canonical import canonical_json, loads
from mempill.core.dates import display, format_tx, parse_tx
from mempill.core.enums import (
    AssertionKind,
    BeliefStatus,
    Cardinality,
    Criticality,
    Currency,
    Granularity,
    Provenance,
)
from mempill.core.model import (
    AdjudicationOutcome,
    AssertionRow,
    BeliefSlot,
    ClaimRow,
    HistoryEntry,
    LedgerEntry,
    PendingAdjudication,
    Projection,
    Receipt,
)

#: The wheel's reason for every adjudication request (its only same-line reason).
ORACLE_REASON = "ExternalContradiction"
#: What the wheel reported for a line without belief; kept so staleness checks still work.
EMPTY_CURRENCY, EMPTY_CRITICALITY = Currency.DECAYED.value, Criticality.LOW.value


def valid_text(moment: datetime | None) -> str | None:
    """A valid-time instant as the wheel printed it (no fraction when it is zero)."""
    if moment is None:
        return None
    text = format_tx(moment)
    return text.replace(".000000Z", "Z")


def tx_text(moment: datetime | None) -> str | None:
    """An engine-stamped instant in the fixed-width form (sorts as text)."""
    return None if moment is None else format_tx(moment)


def provenance_dict(provenance: Provenance) -> dict[str, str]:
    """`{"type": "External", "kind": "UserAsserted"}`, `{"type": "RecallReEntry"}`, …"""
    if provenance.is_external:
        return {"type": "External", "kind": provenance.value.split("/", 1)[1]}
    return {"type": provenance.value}


def _some(**items: Any) -> dict[str, Any]:
    """Only the items that are not None (the wheel omits absent displays/granularities)."""
    return {k: v for k, v in items.items() if v is not None}


def _gran(granularity: Granularity | None) -> str | None:
    return None if granularity is None else granularity.value


def window_dict(row: ClaimRow) -> dict[str, Any]:
    """The claim's stored window, with its one valid_time_confidence and granularities."""
    return {
        "start": valid_text(row.valid_from),
        "end": valid_text(row.valid_until),
        "valid_time_confidence": row.valid_time_confidence,
        **_some(
            start_granularity=_gran(row.valid_from_granularity),
            end_granularity=_gran(row.valid_until_granularity),
        ),
    }


def _confidence(value: float, valid_time: float) -> dict[str, float]:
    return {"value_confidence": value, "valid_time_confidence": valid_time}


def claim_dict(row: ClaimRow) -> dict[str, Any]:
    """A stored claim in the wheel's `Claim` shape (what its oracle was sent)."""
    return {
        "claim_ref": row.claim_ref,
        "agent_id": row.agent_id,
        "fact": {"subject": row.subject, "predicate": row.predicate, "value": loads(row.value)},
        "cardinality": row.cardinality.value,
        "provenance": provenance_dict(row.provenance),
        "external_anchor": {
            "nearest_external_anchor": row.external_anchor,
            "derivation_depth": row.derivation_depth,
        },
        "transaction_time": tx_text(row.tx_time),
        "valid_time": window_dict(row),
        "confidence": _confidence(row.value_confidence, row.valid_time_confidence),
        "criticality": row.criticality.value,
        "derived_from": list(row.derived_from),
        "metadata": None,
        "snapshot_schema_version": None,
    }


def slot_dict(slot: BeliefSlot, row: ClaimRow) -> dict[str, Any]:
    """One belief slot. `valid_time` and the displays show the stored window (as the wheel
    did); `effective_window` adds the reference's window (bounds applied, untrusted → open)."""
    return {
        "claim_ref": slot.claim_ref,
        "fact": {"subject": row.subject, "predicate": row.predicate, "value": slot.value},
        "provenance": provenance_dict(slot.provenance),
        "valid_time": window_dict(row),
        "transaction_time": tx_text(slot.tx_time),
        "confidence": _confidence(slot.value_confidence, slot.valid_time_confidence),
        "currency_signal": {
            "last_refreshed_at": tx_text(slot.last_refreshed_at),
            "state": slot.currency.value,
            "corroboration_count": slot.corroboration_count,
        },
        "criticality": slot.criticality.value,
        **_some(
            valid_from_display=display(row.valid_from, row.valid_from_granularity),
            valid_until_display=display(row.valid_until, row.valid_until_granularity),
        ),
        "cardinality": slot.cardinality.value,
        "claim_refs": list(slot.claim_refs),
        "effective_window": {
            "valid_from": valid_text(slot.valid_from),
            "valid_until": valid_text(slot.valid_until),
            "valid_from_display": slot.valid_from_display,
            "valid_until_display": slot.valid_until_display,
        },
    }


def belief_dict(belief: Projection, rows: Mapping[str, ClaimRow]) -> dict[str, Any]:
    """`query_memory`'s `belief`. A line without belief keeps the wheel's Decayed/Low."""

    def slots(items: Iterable[BeliefSlot]) -> list[dict[str, Any]]:
        return [slot_dict(s, rows[s.claim_ref]) for s in items]

    empty = belief.status is BeliefStatus.NO_BELIEF
    stale = empty or belief.currency is Currency.DECAYED
    contested = belief.status is BeliefStatus.CONTESTED
    return {
        "status": belief.status.value,
        "primary": None if belief.primary is None else slots([belief.primary])[0],
        "alternatives": slots(belief.alternatives),
        "currency": EMPTY_CURRENCY if belief.currency is None else belief.currency.value,
        "criticality": EMPTY_CRITICALITY
        if belief.criticality is None
        else belief.criticality.value,
        "staleness": {
            "is_stale": stale,
            "reason": belief.reason if empty else "decayed" if stale else None,
        },
        "markers": (["Contested"] if contested else []) + [m.value for m in belief.markers],
        "reason": belief.reason,
        "members": slots(belief.members),
        "inferred": slots(belief.inferred),
        "pending": slots(belief.pending),
        "corroboration_count": belief.corroboration_count,
        "as_of_tx_time": tx_text(belief.as_of),
        "valid_at": valid_text(belief.valid_at),
    }


def belief_refs(belief: Projection) -> set[str]:
    """The claim refs `belief_dict` renders (so their rows can be read once)."""
    groups = (belief.alternatives, belief.members, belief.inferred, belief.pending)
    slots = [s for group in groups for s in group]
    if belief.primary is not None:
        slots.append(belief.primary)
    return {s.claim_ref for s in slots}


def display_value(value: Any) -> str:
    """`query_subject`'s value: a string as is, anything else as canonical JSON."""
    return value if isinstance(value, str) else canonical_json(value)


def _subject_slot(slot: BeliefSlot, row: ClaimRow) -> dict[str, Any]:
    return {
        "value": display_value(slot.value),
        "valid_from_display": display(row.valid_from, row.valid_from_granularity),
        "valid_until_display": display(row.valid_until, row.valid_until_granularity),
        "provenance": slot.provenance.value,
        "claim_ref": slot.claim_ref,
        "conf": slot.value_confidence,
    }


def subject_row(belief: Projection, rows: Mapping[str, ClaimRow]) -> dict[str, Any]:
    """One `query_subject` row. A Contested row picks no value (reference §1.5): `value` is
    None and `candidates` lists every side; a set lists its members there too."""
    chosen = None if belief.status is BeliefStatus.CONTESTED else belief.primary
    head = (
        _subject_slot(chosen, rows[chosen.claim_ref])
        if chosen is not None
        else dict.fromkeys(
            ("value", "valid_from_display", "valid_until_display", "claim_ref", "conf")
        )
        | {"provenance": "none"}
    )
    return {
        "predicate": belief.predicate,
        "status": belief.status.value,
        **head,
        "reason": belief.reason,
        "candidates": [
            _subject_slot(s, rows[s.claim_ref]) | {"value": s.value} for s in belief.candidates
        ],
    }


def _until_granularity(
    entry: HistoryEntry, row: ClaimRow, bounds: Iterable[AssertionRow]
) -> Granularity | None:
    """The granularity of whatever set the entry's effective end: its own end or a Bound.

    An oracle's Bound records no granularity; its end is displayed as a day, so it is
    reported as one (as the wheel did).
    """
    if entry.valid_until is None:
        return None
    if row.valid_until == entry.valid_until:
        return row.valid_until_granularity
    matching = [b for b in bounds if b.bound_at == entry.valid_until]
    return (matching[-1].bound_granularity if matching else None) or Granularity.DAY


def history_dict(
    entry: HistoryEntry, row: ClaimRow, assertions: Iterable[AssertionRow]
) -> dict[str, Any]:
    """One `query_history` entry: the reference's effective window, status and state."""
    bounds = [a for a in assertions if a.kind is AssertionKind.BOUND]
    return {
        "claim_ref": entry.claim_ref,
        "value": entry.value,
        "valid_from": valid_text(entry.valid_from),
        "valid_until": valid_text(entry.valid_until),
        **_some(
            valid_from_granularity=_gran(row.valid_from_granularity)
            if entry.valid_from is not None
            else None,
            valid_until_granularity=_gran(_until_granularity(entry, row, bounds)),
        ),
        "status": entry.status.value,
        "provenance": entry.provenance.value,
        "value_confidence": entry.value_confidence,
        **_some(
            valid_from_display=entry.valid_from_display,
            valid_until_display=entry.valid_until_display,
        ),
        "criticality": entry.criticality.value,
        "disposition": entry.ingest_disposition.value,
        "state": entry.state.value,
        "transaction_time": tx_text(entry.tx_time),
        "stream_seq": entry.stream_seq,
        "valid_time": window_dict(row),
    }


def ledger_dict(entry: LedgerEntry) -> dict[str, Any]:
    return {
        "entry_id": entry.entry_id,
        "agent_id": entry.agent_id,
        "claim_ref": entry.claim_ref,
        "event_kind": entry.event_kind.value,
        "disposition": entry.disposition.value,
        "rationale": entry.rationale,
        "recorded_at": tx_text(entry.recorded_at),
        "stream_seq": entry.stream_seq,
    }


def receipt_dict(receipt: Receipt) -> dict[str, Any]:
    """`ingest_claim`'s answer, plus `reason` and (when queued) the outbox handle."""
    body: dict[str, Any] = {
        "claim_ref": receipt.claim_ref,
        "disposition": receipt.disposition.value,
        "contested_with": list(receipt.contested_with),
        "reason": receipt.reason,
    }
    if receipt.handle_id is not None:
        body["handle_id"] = receipt.handle_id
        body["oracle_notified"] = bool(receipt.oracle_notified)
    return body


def outcome_dict(outcome: AdjudicationOutcome, handle_given: str) -> dict[str, Any]:
    return {
        "handle_id": handle_given,
        "disposition": outcome.disposition.value,
        "claim_ref": outcome.claim_ref,
        "verdict": outcome.verdict.value,
        "superseded": list(outcome.superseded),
    }


# ---------------------------------------------------------------- the oracle outbox


def row_from_payload(payload: Mapping[str, Any]) -> ClaimRow:
    """A ClaimRow back from the outbox payload (`ClaimRow.to_dict()` with a decoded value)."""

    def moment(key: str) -> datetime | None:
        text = payload.get(key)
        return None if text is None else parse_tx(str(text))

    def granularity(key: str) -> Granularity | None:
        text = payload.get(key)
        return None if text is None else Granularity(text)

    return ClaimRow(
        agent_id=payload["agent_id"],
        claim_ref=payload["claim_ref"],
        subject=payload["subject"],
        predicate=payload["predicate"],
        value=canonical_json(payload["value"]),
        cardinality=Cardinality(payload["cardinality"]),
        provenance=Provenance(payload["provenance"]),
        value_confidence=payload["value_confidence"],
        valid_time_confidence=payload["valid_time_confidence"],
        criticality=Criticality(payload["criticality"]),
        valid_from=moment("valid_from"),
        valid_from_granularity=granularity("valid_from_granularity"),
        valid_until=moment("valid_until"),
        valid_until_granularity=granularity("valid_until_granularity"),
        tx_time=parse_tx(payload["tx_time"]),
        stream_seq=payload["stream_seq"],
        derived_from=tuple(payload.get("derived_from") or ()),
        derivation_depth=payload.get("derivation_depth"),
        external_anchor=payload.get("external_anchor"),
    )


def adjudication_request(payload: Mapping[str, Any], handle_id: str) -> dict[str, Any]:
    """The wheel's oracle request, from the engine's outbox payload. The wheel named one
    `incumbent`; all of them are in `incumbents`, and `handle_id` is the engine's handle."""
    challenger = row_from_payload(payload["challenger"])
    incumbents = [row_from_payload(p) for p in payload.get("incumbents", ())]
    worst = max((r.criticality for r in incumbents), key=lambda c: c.rank, default=None)
    return {
        "subject_line": dict(payload["line"]),
        "incumbent": claim_dict(incumbents[0]) if incumbents else None,
        "challenger": claim_dict(challenger),
        "criticality": (worst or challenger.criticality).value,
        "reason": ORACLE_REASON,
        "incumbents": [claim_dict(r) for r in incumbents],
        "handle_id": handle_id,
        "rule": payload.get("rule"),
        "queued_at": payload.get("queued_at"),
        "expires_at": payload.get("expires_at"),
    }


def pending_dict(pending: PendingAdjudication, oracle_handle: str | None) -> dict[str, Any]:
    """One `list_pending_adjudications` row (handle_id is the engine's handle)."""
    request = adjudication_request(pending.request, pending.handle_id)
    incumbents = request["incumbents"]
    return {
        "handle_id": pending.handle_id,
        "agent_id": pending.agent_id,
        "subject": pending.subject,
        "predicate": pending.predicate,
        "incumbent_value": incumbents[0]["fact"]["value"] if incumbents else None,
        "challenger_value": request["challenger"]["fact"]["value"],
        "queued_at": tx_text(pending.queued_at),
        "expires_at": tx_text(pending.expires_at),
        "status": pending.status.value,
        "request_payload": request,
        "challenger_ref": pending.challenger_ref,
        "incumbent_refs": list(pending.incumbent_refs),
        "incumbent_values": [i["fact"]["value"] for i in incumbents],
        "notified": pending.notified,
        "oracle_handle_id": oracle_handle,
    }
