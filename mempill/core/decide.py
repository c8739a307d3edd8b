"""The pure write decision (reference §4): the first matching rule of V, Q, R, M, E wins.

Each rule is one branch below, named by its reference id; the id is recorded as the
ledger entry's `route`, so every stored outcome points back at the rule that made it.
No I/O here: the engine hands in the line's views, the named parents and the tx time.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from mempill.core import limits
from mempill.core.canonical import canonical_json, fits, inspect_value, is_clean_text
from mempill.core.config import EngineConfig
from mempill.core.dates import earlier, format_tx
from mempill.core.enums import Cardinality, Disposition, Provenance
from mempill.core.line import Line
from mempill.core.model import ClaimRow, IngestRequest, LedgerEntry
from mempill.core.view import ClaimView
from mempill.errors import ConflictError

MAX_KEY_CHARS = limits.MAX_KEY_CHARS  # named here too: older callers import it from decide
MAX_VALUE_DEPTH = limits.MAX_VALUE_DEPTH


@dataclass(frozen=True, slots=True)
class Decision:
    """What to do with one ingest request."""

    disposition: Disposition
    rule: str
    reason: str
    contested_with: tuple[str, ...] = ()
    matched_ref: str | None = None
    queue: bool = False


def _reject(rule: str, reason: str) -> Decision:
    return Decision(Disposition.REJECTED, rule, reason)


# ---------------------------------------------------------------- V: validation


def validate(request: IngestRequest, config: EngineConfig) -> tuple[str | None, str | None]:
    """Rule V on the request alone: (rejection reason or None, canonical value text)."""
    for key in (request.subject, request.predicate):
        if not key:
            return "empty_key", None
        if len(key) > MAX_KEY_CHARS:
            return "key_too_long", None
        if not is_clean_text(key):
            return "invalid_text", None
    reason = inspect_value(request.value, MAX_VALUE_DEPTH)
    if reason is not None:
        return reason, None
    text = canonical_json(request.value)
    if not fits(text, config.max_value_bytes):
        return "value_too_large", None
    value_confidence, time_confidence = (
        request.value_confidence,
        effective_time_confidence(request),
    )
    if not (0.0 <= value_confidence <= 1.0 and 0.0 <= time_confidence <= 1.0):
        return "confidence_out_of_range", None  # NaN too: it compares false
    if request.claim_ref is not None and request.claim_ref in request.derived_from:
        return "self_parent", None
    return None, text


def effective_time_confidence(request: IngestRequest) -> float:
    """An omitted valid-time confidence is 1.0 when a window was given, else 0.0."""
    if request.valid_time_confidence is not None:
        return request.valid_time_confidence
    window = request.valid_time
    has_window = window is not None and (
        window.valid_from is not None or window.valid_until is not None
    )
    return 1.0 if has_window else 0.0


# ---------------------------------------------------------------- derivation


def derivation(
    provenance: Provenance, derived_from: Sequence[str], parents: Mapping[str, ClaimRow]
) -> tuple[int | None, str | None]:
    """(derivation_depth, external_anchor) along the shortest path to an External claim."""
    if provenance.is_external:
        return 0, None
    best: tuple[int, str | None] | None = None
    for ref in derived_from:
        parent = parents.get(ref)
        if parent is None or parent.derivation_depth is None:
            continue
        anchor = parent.claim_ref if parent.derivation_depth == 0 else parent.external_anchor
        if best is None or parent.derivation_depth < best[0]:
            best = (parent.derivation_depth, anchor)
    if best is None:
        return None, None
    return best[0] + 1, best[1]


# ---------------------------------------------------------------- Q R M E


@dataclass(frozen=True, slots=True)
class Candidate:
    """The new claim as the rules see it."""

    request: IngestRequest
    value: str
    trusted: bool
    derivation_depth: int | None

    @property
    def window(self) -> tuple[datetime | None, datetime | None]:
        window = self.request.valid_time
        if not self.trusted or window is None:
            return None, None
        return window.valid_from, window.valid_until


def recall_reentries(line: Line, echoes: Sequence[LedgerEntry], since: datetime) -> int:
    """Recall re-entries on the line (echo entries and stored rows) with tx time after `since`."""
    recent_echoes = 0
    for echo in reversed(echoes):  # stream order: stop at the first one outside the window
        if echo.recorded_at <= since:
            break
        recent_echoes += 1
    return recent_echoes + line.recall_rows_since(since)


def conflicts(candidate: Candidate, line: Line) -> tuple[ClaimView, ...]:
    """Live authoritative claims with a different value whose effective window overlaps."""
    start, end = candidate.window
    return tuple(
        v for v in line.overlapping(start, end) if not v.inferred and v.value != candidate.value
    )


def decide(
    candidate: Candidate,
    line: Line,
    echoes: Sequence[LedgerEntry],
    parents: Mapping[str, ClaimRow],
    *,
    tx_time: datetime,
    has_oracle: bool,
    config: EngineConfig,
) -> Decision:
    """Rules V (parents), Q1–Q2, R0–R2, M1–M2 and E1–E6, in reference order."""
    request = candidate.request
    recall = request.provenance is Provenance.RECALL_RE_ENTRY
    missing = [ref for ref in request.derived_from if ref not in parents]
    if missing and not recall:
        return _reject("V", "unknown_parent")
    window = request.valid_time
    if (
        window is not None
        and window.valid_from is not None
        and window.valid_until is not None
        and window.valid_until <= window.valid_from
    ):
        return Decision(Disposition.QUARANTINED, "Q1", "incoherent_window")
    if recall:
        since = earlier(tx_time, config.burst_window_seconds)
        if recall_reentries(line, echoes, since) >= config.quarantine_burst_threshold - 1:
            return Decision(Disposition.QUARANTINED, "Q2", "recall_burst")
        return _decide_recall(candidate, line, missing)
    if request.provenance is Provenance.MODEL_DERIVED:
        depth = candidate.derivation_depth
        anchored = depth is not None and depth <= config.derivation_depth_cap_for_overturning
        if not anchored:
            return Decision(Disposition.COMMITTED_INFERRED, "M1", "unanchored")
        if not conflicts(candidate, line):
            return Decision(Disposition.COMMITTED_INFERRED, "M1", "no_conflict")
        return _decide_external(candidate, line, has_oracle, config, rule_prefix="M2/")
    return _decide_external(candidate, line, has_oracle, config, rule_prefix="")


def _decide_recall(candidate: Candidate, line: Line, missing: list[str]) -> Decision:
    if missing:
        return _reject("R0", "unknown_recall_ref")
    matched = line.latest_live_with_value(candidate.value)
    if matched is not None:
        return Decision(Disposition.COMMITTED_CHEAP, "R1", "recall_echo", matched_ref=matched.ref)
    return Decision(Disposition.COMMITTED_INFERRED, "R2", "recall_mutated")


def _decide_external(
    candidate: Candidate,
    line: Line,
    has_oracle: bool,
    config: EngineConfig,
    rule_prefix: str,
) -> Decision:
    request = candidate.request

    def outcome(disposition: Disposition, rule: str, reason: str, **extra: object) -> Decision:
        return Decision(disposition, rule_prefix + rule, reason, **extra)  # type: ignore[arg-type]

    if request.value_confidence < config.low_confidence_threshold:
        return outcome(Disposition.PENDING_LOW_CONFIDENCE, "E1", "low_confidence")
    cheap = Disposition.COMMITTED_CHEAP
    if not line.has_live_authoritative():
        return outcome(cheap, "E2", "first_authoritative")
    if request.cardinality is Cardinality.SET_VALUED and line.set_valued():
        return outcome(cheap, "E2", "set_member")
    incumbents = conflicts(candidate, line)
    if not incumbents:
        if line.has_live_authoritative(candidate.value):
            return outcome(cheap, "E2", "corroboration")
        return outcome(cheap, "E3", "succession")
    refs = tuple(v.ref for v in incumbents)
    floor = config.criticality_overturn_floor.rank
    if any(
        v.row.criticality.rank >= floor and request.value_confidence < v.row.value_confidence
        for v in incumbents
    ):
        return outcome(Disposition.PENDING_CONFLICT, "E4", "criticality_floor", contested_with=refs)
    if has_oracle:
        return outcome(
            Disposition.QUEUED_FOR_ADJUDICATION, "E5", "oracle", contested_with=refs, queue=True
        )
    return outcome(Disposition.CONTESTED, "E6", "conflict", contested_with=refs)


# ---------------------------------------------------------------- validity assertions


@dataclass(frozen=True, slots=True)
class AssertionDecision:
    """A validity assertion's outcome: write it, record a rejection, or answer a no-op."""

    disposition: Disposition
    reason: str
    write: bool = False  # only a decision that writes says so; rejections and no-ops do not


def decide_end(claim: ClaimView, at: datetime, provenance: Provenance) -> AssertionDecision:
    """`end(claim, at)`: a Bound, a no-op or a rejection; another active bound is a
    ConflictError (the caller reopens first)."""
    if not provenance.is_external:
        return AssertionDecision(Disposition.REJECTED, "bound_requires_external")
    if not claim.live:
        return AssertionDecision(Disposition.REJECTED, "claim_not_live")
    start = claim.row.valid_from  # the claim's own start, trusted or not
    if start is not None and at < start:
        return AssertionDecision(Disposition.REJECTED, "bound_before_start")
    if claim.active_bound is not None:
        if claim.active_bound == at:
            return AssertionDecision(Disposition.SUPERSEDED, "already_bound")
        bound_at = format_tx(claim.active_bound)
        raise ConflictError(f"claim {claim.ref} is already bound at {bound_at}; reopen it first")
    return AssertionDecision(Disposition.SUPERSEDED, "bound", write=True)


def decide_reopen(claim: ClaimView, provenance: Provenance) -> AssertionDecision:
    if not provenance.is_external:
        return AssertionDecision(Disposition.REJECTED, "bound_requires_external")
    if not claim.live:
        return AssertionDecision(Disposition.REJECTED, "claim_not_live")
    if claim.active_bound is None:
        return AssertionDecision(Disposition.REINSTATED, "nothing_bound")
    return AssertionDecision(Disposition.REINSTATED, "reopened", write=True)


def decide_invalidate(claim: ClaimView, provenance: Provenance) -> AssertionDecision:
    if not provenance.is_external:
        return AssertionDecision(Disposition.REJECTED, "bound_requires_external")
    if claim.invalidated:
        return AssertionDecision(Disposition.INVALIDATED, "already_invalidated")
    return AssertionDecision(Disposition.INVALIDATED, "invalidated", write=True)
