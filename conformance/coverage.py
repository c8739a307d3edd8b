"""Which reference rules a replay exercised, derived from what it observed — never from file names.

`observe` reads the records of one run (results, errors, and the ledger entries each
operation appended: `rationale.route` names the rule that decided a write) and returns
the rule ids it saw. `RULES` is the catalogue every corpus must cover; the README table
of the conformance package is generated from the same data.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta
from typing import Any

from mempill.core.dates import parse_tx
from mempill.core.enums import BeliefStatus, Currency, Disposition, EventKind, HistoryStatus, Marker
from mempill.streams import Header

V_REASONS = (
    "empty_key",
    "key_too_long",
    "invalid_text",
    "non_finite_number",
    "value_too_large",
    "value_too_deep",
    "confidence_out_of_range",
    "unknown_parent",
    "self_parent",
    "write_authority",
)

RULES: tuple[tuple[str, str, str], ...] = (
    *((f"V/{r}", "§4 V", f"Rejected/{r}") for r in V_REASONS),
    ("parse/ValidationError", "§4", "a request that does not parse raises ValidationError"),
    ("Q1/incoherent_window", "§4 Q1", "end <= start → Quarantined"),
    ("Q2/recall_burst", "§4 Q2", "too many recall re-entries in the burst window"),
    ("R0/unknown_recall_ref", "§4 R0", "recall of an unknown claim → Rejected"),
    ("R1/recall_echo", "§4 R1", "recall of a live value → CommittedCheap, no claim row"),
    ("R2/recall_mutated", "§4 R2", "mutated recall → CommittedInferred, RecallTainted"),
    ("M1/unanchored", "§4 M1", "unanchored ModelDerived → CommittedInferred"),
    ("M1/no_conflict", "§4 M1", "anchored ModelDerived without conflict → CommittedInferred"),
    ("M2", "§4 M2", "anchored ModelDerived in conflict → handled by E1–E6"),
    ("E1/low_confidence", "§4 E1", "low value confidence → PendingLowConfidence"),
    ("E2/first_authoritative", "§4 E2", "first authoritative claim of a line"),
    ("E2/corroboration", "§4 E2", "same value again → corroboration"),
    ("E2/set_member", "§4 E2", "a new member of a SetValued line"),
    ("E3/succession", "§4 E3", "non-overlapping trusted windows → succession"),
    ("E4/criticality_floor", "§4 E4", "weaker challenger of a critical incumbent"),
    ("E5/oracle", "§4 E5", "conflict with an oracle → QueuedForAdjudication"),
    ("E6/conflict", "§4 E6", "conflict without an oracle → Contested"),
    ("end/bound", "§4 end", "Bound(at) → Superseded"),
    ("end/bound_before_start", "§4 end", "bound before the claim's start → Rejected"),
    ("end/bound_requires_external", "§4 end", "a non-External bound → Rejected"),
    ("end/no_op", "§4 end", "an identical active bound → no-op receipt"),
    ("end/conflict_error", "§4 end", "a different active bound → ConflictError"),
    ("end_fact", "§4 end", "end_fact(line, at) bounds the line's single belief"),
    ("reopen/reopened", "§4 reopen", "Reopen → Reinstated"),
    ("reopen/no_op", "§4 reopen", "nothing bound → no-op receipt"),
    ("invalidate/invalidated", "§4 invalidate", "Invalidate → Invalidated"),
    ("invalidate/no_op", "§4 invalidate", "already invalidated → no-op receipt"),
    ("cascade/parent_superseded", "§4 cascade", "dependents of a Superseded claim flagged"),
    ("cascade/parent_invalidated", "§4 cascade", "dependents of an Invalidated claim flagged"),
    ("cascade/parent_denied", "§4 cascade", "dependents of a denied claim flagged"),
    ("cascade/review_cleared", "§4 cascade", "a corroborating claim clears PendingReview"),
    ("ingest_many", "§4", "a batch in one transaction"),
    *((f"disposition/{d.value}", "§4", f"disposition {d.value}") for d in Disposition),
    *((f"event/{e.value}", "§2", f"ledger event {e.value}") for e in EventKind),
    *((f"status/{s.value}", "§5", f"belief status {s.value}") for s in BeliefStatus),
    *(
        (f"nobelief/{r}", "§5 step 5", f"NoBelief reason {r}")
        for r in ("no_claims", "window_gap", "window_ended", "not_yet_valid")
    ),
    *((f"currency/{c.value}", "§5 step 6", f"currency {c.value}") for c in Currency),
    ("currency/boosted", "§5 step 6", "corroborations double the currency thresholds"),
    *((f"marker/{m.value}", "§5 step 7", f"marker {m.value}") for m in Marker),
    *((f"history/{h.value}", "§5 history", f"history status {h.value}") for h in HistoryStatus),
    ("fold/inferred_listed", "§5 step 4", "inferred candidates listed beside a belief"),
    ("fold/set_members", "§5 step 5", "several values of a SetValued line are members"),
    ("query/subject", "§5", "query_subject"),
    ("query/as_of", "§5", "a query at a past as_of"),
    ("query/valid_at", "§5", "a query at a valid_at instant"),
    ("query/audit_claim", "§5", "query_audit filtered by claim"),
    ("query/audit_paged", "§5", "query_audit with a next cursor"),
    ("oracle/affirm_bound_start", "§6", "Affirm bounds the incumbent at the challenger's start"),
    ("oracle/affirm_bound_now", "§6", "Affirm bounds the incumbent at now"),
    ("oracle/affirm", "§6", "Affirm → the challenger is CommittedCheap"),
    ("oracle/deny", "§6", "Deny → the challenger is Superseded and denied"),
    ("oracle/unknown", "§6", "Unknown → both sides Contested"),
    ("oracle/not_found", "§6", "unknown, resolved or expired handle → NotFoundError"),
    ("expiry/sweep", "§6", "sweep_expired expires a pending adjudication"),
    ("expiry/late_submit", "§6", "a submit after expires_at expires it"),
    ("oracle/notify_failed", "§6", "an oracle failure leaves the row pending, unnotified"),
    ("oracle/notify_pending", "§6", "notify_pending retries the oracle"),
    ("reconcile/escalated", "§6", "reconcile queues an adjudication for a Contested line"),
    ("reconcile/report_only", "§6", "reconcile without an oracle only reports"),
    ("time/snapshot_as_of", "§12", "a query as of a snapshot sees exactly the writes up to it"),
    ("time/snapshot_position", "§12", "a token naming a position inside one transaction"),
    ("time/timeline", "§12", "query_timeline: a line's belief over valid time, as segments"),
    ("time/timeline_as_of", "§12", "query_timeline as of a past position"),
    ("time/changes", "§12", "query_changes: lines touched, belief before and after"),
    ("time/changes_after", "§12", "query_changes after a snapshot"),
    ("time/changes_paged", "§12", "query_changes with a next cursor"),
    ("erase/line", "§12", "erase one line of a subject"),
    ("erase/subject", "§12", "erase every line of a subject"),
    ("find/search", "§13", "search finds lines by words of their subject, predicate or value"),
    ("find/search_prefix", "§13", "a query word matches the words it prefixes"),
    ("find/search_history", "§13", "include_history matches values no longer believed"),
    ("find/search_as_of", "§13", "search as of a past position or at a valid instant"),
    ("find/subjects", "§13", "list_subjects with counts of believed lines"),
    ("find/subjects_paged", "§13", "list_subjects with a next cursor"),
    ("find/predicates", "§13", "list_predicates with counts of believed lines"),
)
RULE_IDS = tuple(r[0] for r in RULES)


def _entry_rules(entry: Mapping[str, Any], op: str) -> Iterable[str]:
    """Rules seen in one ledger entry appended by operation `op`."""
    kind, disposition = entry["event_kind"], entry["disposition"]
    rationale = entry.get("rationale") or {}
    route, reason = str(rationale.get("route", "")), rationale.get("reason")
    yield f"event/{kind}"
    yield f"disposition/{disposition}"
    if kind in (EventKind.CLAIM_COMMITTED, EventKind.CLAIM_REJECTED, "RecallReEntryDetected"):
        if route.startswith("M2/"):
            yield "M2"
        elif route in ("Bound", "Reopen", "Invalidate"):
            yield f"{'end' if route == 'Bound' else route.lower()}/{reason}"
        else:
            yield f"{route}/{reason}"
    if kind == EventKind.VALIDITY_ASSERTED:
        if route == "oracle":
            moment = rationale.get("bound_at")
            yield (
                "oracle/affirm_bound_now"
                if moment == entry["recorded_at"]
                else ("oracle/affirm_bound_start")
            )
        else:
            yield f"{'end' if route == 'Bound' else route.lower()}/{reason}"
    if kind == EventKind.DEPENDENT_FLAGGED_PENDING_REVIEW:
        yield f"cascade/{reason}"
    if kind == EventKind.ADJUDICATION_RESOLVED and rationale.get("side") == "challenger":
        yield f"oracle/{str(reason).removeprefix('oracle_')}"
    if kind == EventKind.ADJUDICATION_EXPIRED:
        yield "expiry/sweep" if op == "sweep" else "expiry/late_submit"


def _slots(projection: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    primary = projection.get("primary")
    return [
        *([primary] if primary else []),
        *projection.get("members", []),
        *projection.get("alternatives", []),
    ]


def _projection_rules(
    projection: Mapping[str, Any], op: Mapping[str, Any], header: Header, flagged: set[str]
) -> Iterable[str]:
    status = projection["status"]
    yield f"status/{status}"
    if status == BeliefStatus.NO_BELIEF:
        yield f"nobelief/{projection['reason']}"
    yield from (f"marker/{m}" for m in projection["markers"])
    yield from (f"currency/{s['currency']}" for s in _slots(projection))
    if projection.get("inferred"):
        yield "fold/inferred_listed"
    if projection.get("members"):
        yield "fold/set_members"
    if Marker.PENDING_REVIEW not in projection["markers"] and any(
        flagged & set(s["claim_refs"]) for s in _slots(projection)
    ):
        yield "cascade/review_cleared"
    if "valid_at" not in op:
        age_at = parse_tx(projection["as_of"] or projection["valid_at"])
        yield from _boost(projection, header, age_at)


def _boost(projection: Mapping[str, Any], header: Header, age_at: datetime) -> Iterable[str]:
    config = header.make_config()
    aging = timedelta(days=config.aging_unconfirmed_threshold_days)
    for slot in _slots(projection):
        age = age_at - parse_tx(slot["last_refreshed_at"])
        boosted = slot["corroboration_count"] >= config.corroboration_count_for_currency_boost
        if boosted and age >= aging and slot["currency"] == Currency.FRESH:
            yield "currency/boosted"


#: (operation, error class) -> the rule an expected error demonstrates
ERROR_RULES = {
    ("ingest", "ValidationError"): "parse/ValidationError",
    ("ingest_many", "ValidationError"): "parse/ValidationError",
    ("end", "ConflictError"): "end/conflict_error",
    ("submit_adjudication", "NotFoundError"): "oracle/not_found",
}


def _write_rules(name: str, result: Any, header: Header) -> Iterable[str]:
    """Rules seen in the result of a write (receipts, no-ops, the outbox, reconcile)."""
    receipts = result if name == "ingest_many" else [result] if name == "ingest" else []
    if name in ("ingest_many", "end_fact"):
        yield name
    for receipt in receipts:
        yield f"disposition/{receipt['disposition']}"
        if receipt["reason"] == "write_authority":
            yield "V/write_authority"
        if receipt.get("handle_id") and receipt.get("oracle_notified") is False:
            yield "oracle/notify_failed"
    if name in ("end", "reopen", "invalidate") and result.get("no_op"):
        yield f"{name}/no_op"
    if name == "erase" and result["lines"]:
        yield "erase/line" if result.get("predicate") else "erase/subject"
    if name == "notify" and result:
        yield "oracle/notify_pending"
    if name == "reconcile":
        escalated = result["escalations"] > 0
        contested = any(line["status"] == BeliefStatus.CONTESTED for line in result["lines"])
        if escalated or (contested and header.oracle is None):
            yield "reconcile/escalated" if escalated else "reconcile/report_only"


def _read_rules(
    op: Mapping[str, Any], result: Any, header: Header, flagged: set[str]
) -> Iterable[str]:
    """Rules seen in the result of a query."""
    name: str = op["op"]
    if name in ("query_memory", "query_subject"):
        for projection in result if name == "query_subject" else [result]:
            yield from _projection_rules(projection, op, header, flagged)
    if name == "query_subject":
        yield "query/subject"
    if name == "query_history":
        yield from (f"history/{e['status']}" for e in result["entries"])
    yield from (f"query/{key}" for key in ("as_of", "valid_at") if key in op)
    if name == "query_timeline":
        yield "time/timeline"
        if "as_of" in op:
            yield "time/timeline_as_of"
        for segment in result["segments"]:
            yield f"status/{segment['status']}"
    if name == "query_changes":
        yield "time/changes_after" if "after" in op else "time/changes"
        if result["next_cursor"] is not None:
            yield "time/changes_paged"
    if any(str(op.get(k, "")).startswith("$") for k in ("as_of", "since", "until", "after")):
        yield "time/snapshot_as_of"
    if name == "search" and result["hits"]:
        yield "find/search"
        if any(0 < h["score"] < 2 * len(h["matched"]) for h in result["hits"]):
            yield "find/search_prefix"
        if op.get("include_history"):
            yield "find/search_history"
        if "as_of" in op or "valid_at" in op:
            yield "find/search_as_of"
    if name == "list_subjects" and result["subjects"]:
        yield "find/subjects_paged" if result["next_cursor"] is not None else "find/subjects"
    if name == "list_predicates" and result:
        yield "find/predicates"
    if str(op.get("as_of", "")).startswith("snapshot:"):
        yield "time/snapshot_position"
    if name == "query_audit":
        if "claim_ref" in op:
            yield "query/audit_claim"
        if result["next_cursor"] is not None:
            yield "query/audit_paged"


def _result_rules(
    op: Mapping[str, Any], record: Mapping[str, Any], header: Header, flagged: set[str]
) -> Iterable[str]:
    name: str = op["op"]
    if "error" in record:
        rule = ERROR_RULES.get((name, record["error"]))
        return [rule] if rule else []
    if name.startswith(("query_", "search", "list_subjects", "list_predicates")):
        return list(_read_rules(op, record["result"], header, flagged))
    return list(_write_rules(name, record["result"], header))


def observe(header: Header, ops: Iterable[Mapping[str, Any]], records: Iterable[Any]) -> set[str]:
    """The rule ids one run exercised: `records` are OpRecord JSON dicts, in order."""
    seen: set[str] = set()
    flagged: set[str] = set()
    for op, record in zip(ops, records, strict=False):
        for entry in record.get("ledger", ()):
            seen.update(_entry_rules(entry, op["op"]))
            if entry["event_kind"] == EventKind.DEPENDENT_FLAGGED_PENDING_REVIEW:
                flagged.add(entry["claim_ref"])
        seen.update(_result_rules(op, record, header, flagged))
    return seen


def coverage(observed: Mapping[str, set[str]]) -> dict[str, list[str]]:
    """rule id → the streams that exercised it (every catalogue rule present, maybe empty)."""
    table: dict[str, list[str]] = {rule: [] for rule in RULE_IDS}
    for stream, rules in sorted(observed.items()):
        for rule in rules:
            if rule in table:
                table[rule].append(stream)
    return table


def markdown(table: Mapping[str, list[str]], limit: int = 4) -> str:
    """The README table: rule, reference section, meaning, scenarios (a few, then a count)."""
    rows = ["| rule | reference | what | scenarios |", "|---|---|---|---|"]
    for rule, section, about in RULES:
        names = table.get(rule, [])
        shown = ", ".join(f"`{n}`" for n in names[:limit])
        more = f" +{len(names) - limit}" if len(names) > limit else ""
        rows.append(f"| `{rule}` | {section} | {about} | {shown or '**none**'}{more} |")
    return "\n".join(rows)
