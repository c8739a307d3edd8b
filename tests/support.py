"""Small builders shared by the engine tests."""

from __future__ import annotations

from typing import Any

from mempill import Engine, EventKind, LedgerEntry, Receipt

AGENT = "agent-1"


def request(
    value: Any, subject: str = "user", predicate: str = "city", **fields: Any
) -> dict[str, Any]:
    """An ingest request dict with test defaults (agent-1, External:UserAsserted)."""
    body: dict[str, Any] = {
        "agent_id": fields.pop("agent_id", AGENT),
        "subject": subject,
        "predicate": predicate,
        "value": value,
    }
    if "valid_from" in fields or "valid_until" in fields:
        body["valid_time"] = {
            "start": fields.pop("valid_from", None),
            "end": fields.pop("valid_until", None),
        }
    body.update(fields)
    return body


def put(
    engine: Engine, value: Any, subject: str = "user", predicate: str = "city", **fields: Any
) -> Receipt:
    return engine.ingest(request(value, subject, predicate, **fields))


def ledger(engine: Engine, agent: str = AGENT) -> list[LedgerEntry]:
    """The whole ledger of an agent, through the public audit API."""
    entries: list[LedgerEntry] = []
    cursor = 0
    while True:
        page = engine.query_audit(agent, after_seq=cursor, limit=500)
        entries.extend(page.entries)
        if page.next_cursor is None:
            return entries
        cursor = page.next_cursor


def entries_of(engine: Engine, claim_ref: str, agent: str = AGENT) -> list[LedgerEntry]:
    return list(engine.query_audit(agent, claim_ref=claim_ref, limit=1000).entries)


def kinds(entries: list[LedgerEntry]) -> list[tuple[EventKind, str]]:
    return [(e.event_kind, e.disposition.value) for e in entries]


def values(
    engine: Engine, subject: str = "user", predicate: str = "city", **query: Any
) -> list[Any]:
    """The values a projection holds (primary, members and alternatives)."""
    belief = engine.query_memory(AGENT, subject, predicate, **query)
    return sorted((s.value for s in belief.candidates), key=repr)


def history_rows(
    engine: Engine, subject: str = "user", predicate: str = "city"
) -> list[tuple[Any, str]]:
    return [(e.value, e.status.value) for e in engine.query_history(AGENT, subject, predicate)]
