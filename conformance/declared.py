"""Declared expectations: what a scenario says must happen, written beside each operation.

An operation may carry `"expect": {…}`, the facts the rules of docs/reference.md give for
it — a disposition and its reason, a belief's status and values, a history's statuses. The
replay checks them on every backend *independently* of `<name>.expected.jsonl`: a recording
can be rewritten by `python -m conformance record --force`, a declaration cannot, so an
engine with a wrong rule fails the corpus however it is re-recorded (and `record` refuses
to write a run that breaks a declaration).

Keys (unknown keys are a stream error, so a typo never passes silently):

* any operation: `error` — the error class it must raise (without it, it must not raise).
* receipts (`ingest`, `end`, `reopen`, `invalidate`, `submit_adjudication`):
  `disposition`, `reason`, `route` (the rule in the first new ledger entry's rationale),
  `contested_with` (refs, `$label`s, any order), `claim_ref` (a `$label`), `no_op`,
  `queued` (a handle was issued), `oracle_notified`, `superseded` (refs), `verdict`; for
  an ingest also `depth` and `anchor` (`$label` or null): the stored claim's derivation depth
  and External anchor.
* `ingest_many`: `dispositions`, `reasons` (lists, in request order).
* `end_fact`: `value`, `dispositions`, `no_op`.
* `query_memory`: `status`, `reason`, `value` (the primary's), `values` (every candidate's,
  any order), `markers` (exactly these, any order), `pending`, `inferred` (their values),
  `currency`, `corroboration_count`, `criticality`, `from`/`until` (the primary's display
  window).
* `query_subject`: `statuses` and/or `values`, each a map predicate → expectation.
* `query_history`: `entries` — `[value, status]` pairs in history order.
* `query_audit`: `seqs`, `next_cursor`, `events` (`[event_kind, disposition]` pairs).
* `reconcile`: `escalations`, `statuses` (a map `subject/predicate` → status).
* `sweep`, `notify`: `result` (the count). `list_pending`: `count`. `oracle_requests`:
  `count`.
* `snapshot`: `stream_seq`.
* `query_timeline`: `segments` — `[valid_from, valid_until, status, value]` per segment, in
  order (RFC 3339 instants or null for an open end).
* `query_changes`: `lines` (`subject/predicate` in feed order), `next_cursor`, `before` and
  `after` (maps `subject/predicate` → `[status, value]`).
* `erase`: `lines` (`subject/predicate`, sorted), `claims`, `entries`.
* `search`: `hits` (`subject/predicate` in order), `scores` (in order), `beliefs` (a map
  `subject/predicate` → the belief's primary value).
* `list_subjects`: `subjects` (in order), `counts` (a map subject → `[lines, believed]`),
  `next_cursor`. `list_predicates`: `predicates` (in order), `counts` (predicate →
  `[lines, believed]`).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from mempill.core.canonical import canonical_json
from mempill.core.model import ClaimRow
from mempill.streams import OpRecord, Session, StreamError

RECEIPT_KEYS = {
    "disposition", "reason", "route", "contested_with", "claim_ref", "no_op", "queued",
    "oracle_notified", "superseded", "verdict", "depth", "anchor",
}  # fmt: skip
PROJECTION_KEYS = {
    "status", "reason", "value", "values", "markers", "pending", "inferred", "currency",
    "corroboration_count", "criticality", "from", "until",
}  # fmt: skip
KEYS: dict[str, set[str]] = {
    "ingest": RECEIPT_KEYS,
    "end": RECEIPT_KEYS,
    "reopen": RECEIPT_KEYS,
    "invalidate": RECEIPT_KEYS,
    "submit_adjudication": RECEIPT_KEYS,
    "ingest_many": {"dispositions", "reasons"},
    "end_fact": {"value", "dispositions", "no_op"},
    "query_memory": PROJECTION_KEYS,
    "query_subject": {"statuses", "values"},
    "query_history": {"entries"},
    "query_audit": {"seqs", "next_cursor", "events"},
    "reconcile": {"escalations", "statuses"},
    "sweep": {"result"},
    "notify": {"result"},
    "list_pending": {"count"},
    "oracle_requests": {"count"},
    "snapshot": {"stream_seq"},
    "query_timeline": {"segments"},
    "query_changes": {"lines", "next_cursor", "before", "after"},
    "erase": {"lines", "claims", "entries"},
    "search": {"hits", "scores", "beliefs"},
    "list_subjects": {"subjects", "counts", "next_cursor"},
    "list_predicates": {"predicates", "counts"},
}
#: Operations whose outcome a scenario must declare: every write and every belief read.
MUST_DECLARE = frozenset(
    {
        "ingest", "ingest_many", "end", "end_fact", "reopen", "invalidate",
        "submit_adjudication", "reconcile", "sweep", "query_memory", "query_subject",
        "query_history", "query_timeline", "query_changes", "erase", "search",
    }
)  # fmt: skip


def check_declaration(op: Mapping[str, Any], where: str) -> None:
    """Static check of an operation's `expect`: a mapping of keys its kind knows."""
    expect = op.get("expect")
    if expect is None:
        return
    if not isinstance(expect, dict) or not expect:
        raise StreamError(f"{where}: expect must be a non-empty object")
    allowed = KEYS.get(op["op"], set()) | {"error"}
    unknown = sorted(set(expect) - allowed)
    if unknown:
        raise StreamError(
            f"{where}: expect of {op['op']}: unknown {unknown} (known {sorted(allowed)})"
        )


def _values(slots: Sequence[Mapping[str, Any]]) -> list[str]:
    return sorted(canonical_json(s["value"]) for s in slots)


def _same_values(expected: Sequence[Any], slots: Sequence[Mapping[str, Any]]) -> bool:
    return sorted(canonical_json(v) for v in expected) == _values(slots)


def _candidates(p: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    if p["alternatives"]:
        return list(p["alternatives"])
    if p["members"]:
        return list(p["members"])
    return [] if p["primary"] is None else [p["primary"]]


def _projection(p: Mapping[str, Any], key: str, want: Any) -> bool:
    """One expectation about a projection (query_memory, or a row of query_subject)."""
    primary = p["primary"] or {}
    simple: dict[str, Callable[[], Any]] = {
        "status": lambda: p["status"],
        "reason": lambda: p["reason"],
        "value": lambda: primary.get("value"),
        "currency": lambda: p["currency"],
        "corroboration_count": lambda: p["corroboration_count"],
        "criticality": lambda: p["criticality"],
        "from": lambda: primary.get("valid_from_display"),
        "until": lambda: primary.get("valid_until_display"),
    }
    if key in simple:
        return bool(simple[key]() == want)
    if key == "values":
        return _same_values(want, _candidates(p))
    if key in ("pending", "inferred"):
        return _same_values(want, p[key])
    if key == "markers":
        return sorted(p["markers"]) == sorted(want)
    raise AssertionError(key)


class Checker:
    """Checks one operation's declaration against what it did on one backend."""

    def __init__(self, session: Session) -> None:
        self.session = session

    def stored_claim(self, claim_ref: str) -> ClaimRow | None:
        engine = self.session.engine
        with engine.store.read(self.session.header.agent_id or "") as reader:
            return reader.claim(claim_ref)

    def refs(self, values: Any) -> list[str]:
        return sorted(self.session.ref(v) for v in values)

    def violations(self, op: Mapping[str, Any], record: OpRecord) -> list[str]:
        expect = op.get("expect")
        if not expect:
            return []
        outcome = record.outcome
        error = outcome.get("error")
        if "error" in expect or error is not None:
            if error != expect.get("error"):
                return [f"expected error {expect.get('error')}, got {error or 'a result'}"]
            return []
        result = outcome["result"]
        found = []
        for key, want in expect.items():
            got = self.observed(op["op"], key, want, result, record)
            if got is not None:
                found.append(f"{key}: expected {_show(want)}, got {_show(got)}")
        return found

    def observed(self, kind: str, key: str, want: Any, result: Any, record: OpRecord) -> Any | None:
        """None when `key` holds; otherwise what was observed instead."""
        if kind == "query_memory":
            return None if _projection(result, key, want) else _summary(result, key)
        if kind == "query_subject":
            rows = {row["predicate"]: row for row in result}
            sub = "status" if key == "statuses" else "values"
            bad = {
                pred: _summary(rows[pred], sub) if pred in rows else "missing"
                for pred, item in want.items()
                if pred not in rows or not _projection(rows[pred], sub, item)
            }
            if set(rows) != set(want):
                bad["predicates"] = sorted(rows)
            return bad or None
        got = self.value(kind, key, want, result, record)
        expected = self.refs(want) if key in ("contested_with", "superseded") else want
        if key in ("claim_ref", "anchor") and want is not None:
            expected = self.session.ref(want)
        if key in ("values",):
            return None if _same_values(want, got) else got
        return None if got == expected else got

    def value(self, kind: str, key: str, want: Any, result: Any, record: OpRecord) -> Any:
        if key in ("depth", "anchor"):
            row = self.stored_claim(result["claim_ref"])
            if row is None:
                return "no claim row"
            return row.derivation_depth if key == "depth" else row.external_anchor
        if key == "route":
            return record.ledger[0]["rationale"]["route"] if record.ledger else None
        if key in ("contested_with", "superseded"):
            return sorted(result.get(key) or [])
        if key == "queued":
            return result.get("handle_id") is not None
        if key == "dispositions":
            items = result if kind == "ingest_many" else result["receipts"]
            return [r["disposition"] for r in items]
        if key == "reasons":
            return [r["reason"] for r in result]
        if kind == "erase" and key in ("claims", "entries"):
            return result[key]
        if key == "entries":
            return [[e["value"], e["status"]] for e in result["entries"]]
        if key == "seqs":
            return [e["stream_seq"] for e in result["entries"]]
        if key == "events":
            return [[e["event_kind"], e["disposition"]] for e in result["entries"]]
        if key == "statuses" and kind == "reconcile":
            return {
                f"{line['subject']}/{line['predicate']}": line["status"] for line in result["lines"]
            }
        if key == "segments":
            return [
                [g["valid_from"], g["valid_until"], g["status"], g["value"]]
                for g in result["segments"]
            ]
        if key == "lines" and kind == "query_changes":
            return [f"{c['subject']}/{c['predicate']}" for c in result["changes"]]
        if key == "lines" and kind == "erase":
            return [f"{s}/{p}" for s, p in result["lines"]]
        if kind == "search":
            hits = result["hits"]
            if key == "hits":
                return [f"{h['subject']}/{h['predicate']}" for h in hits]
            if key == "scores":
                return [h["score"] for h in hits]
            return {f"{h['subject']}/{h['predicate']}": _primary(h["belief"]) for h in hits}
        if kind in ("list_subjects", "list_predicates"):
            rows = result["subjects"] if kind == "list_subjects" else result
            name = "subject" if kind == "list_subjects" else "predicate"
            if key == "counts":
                return {r[name]: [r["lines"], r["believed"]] for r in rows}
            if key in ("subjects", "predicates"):
                return [r[name] for r in rows]
        if key in ("before", "after"):
            return {
                f"{c['subject']}/{c['predicate']}": [c[key]["status"], _primary(c[key])]
                for c in result["changes"]
            }
        if key == "result":
            return result
        if key == "count":
            return len(result)
        return result.get(key) if isinstance(result, dict) else None


def _primary(projection: Mapping[str, Any]) -> Any:
    primary = projection["primary"]
    return None if primary is None else primary["value"]


def _summary(p: Mapping[str, Any], key: str) -> Any:
    if key in ("values",):
        return [json.loads(v) for v in _values(_candidates(p))]
    if key in ("pending", "inferred"):
        return [json.loads(v) for v in _values(p[key])]
    primary = p["primary"] or {}
    return {
        "value": primary.get("value"),
        "from": primary.get("valid_from_display"),
        "until": primary.get("valid_until_display"),
    }.get(key, p.get(key))


def _show(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, sort_keys=True)
