"""PostgreSQL storage edge cases return exactly what SQLite returns (reference §1.9, §9).

Values and times at the limits of what PostgreSQL types hold (timestamptz at years 1 and
9999, a 301-digit integer through the generated jsonb column, 60 KB of text, floats at
the ends of their range) and text PostgreSQL cannot store at all (rejected, not raised).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from pghelpers import POSTGRES_ONLY, fetch

import mempill
from mempill.lab.servers import fresh_schema
from mempill.openers import open_postgres

pytestmark = POSTGRES_ONLY

AGENT = "agent-eq"
TRUSTED = 0.9
REQUESTS: list[dict[str, Any]] = [
    {"subject": "s", "predicate": "p", "value": 10**300, "valid_time_confidence": TRUSTED,
     "valid_time": {"start": "0001", "end": "9999-12-31T23:59:59.999999Z"}},
    {"subject": "s", "predicate": "q",
     "value": {"b": [1, 1.0, -0.0, 5e-324, 1.7976931348623157e308], "a": "é\u2028😀"}},
    {"subject": "ü", "predicate": "p", "value": "x" * 60_000},
    {"subject": "s", "predicate": "r", "value": "a\x00b"},
    {"subject": "s", "predicate": "r", "value": "\ud800"},
    {"subject": "s\x00", "predicate": "r", "value": 1},
    {"subject": "s" * 1025, "predicate": "r", "value": 1},
    {"subject": "s", "predicate": "p", "value": 2, "valid_time_confidence": TRUSTED,
     "valid_time": {"start": "2020", "end": "2019"}},
]  # fmt: skip


@pytest.fixture
def dsn(postgres_server: str) -> Iterator[str]:
    with fresh_schema(postgres_server) as schema_dsn:
        yield schema_dsn


def replay(engine: mempill.Engine) -> dict[str, Any]:
    receipts = [engine.ingest({"agent_id": AGENT, **r}) for r in REQUESTS]
    return {
        "receipts": receipts,
        "digest": engine.ledger_digest(AGENT),
        "subject": engine.query_subject(AGENT, "s"),
        "history": [engine.query_history(AGENT, "s", p) for p in "pqr"],
        "as_of_year_one": engine.query_memory(
            AGENT, "s", "p", valid_at=datetime(1, 1, 1, tzinfo=UTC)
        ),
        "audit": engine.query_audit(AGENT, limit=100),
        "stats": [(s.first_seq, s.last_seq) for s in engine.write_stats(AGENT)],
    }


def clocked() -> dict[str, Any]:
    return {
        "clock": mempill.SteppingClock(datetime(2026, 1, 1, tzinfo=UTC)),
        "ids": mempill.SeededIds(3),
        "record_write_stats": True,
    }


def test_edge_values_and_times_match_sqlite(dsn: str) -> None:
    with mempill.open_default_in_memory(**clocked()) as sqlite:
        expected = replay(sqlite)
    with open_postgres(dsn, **clocked()) as postgres:
        got = replay(postgres)
    assert [r.reason for r in got["receipts"]][3:] == [
        "invalid_text", "invalid_text", "invalid_text", "key_too_long", "incoherent_window"
    ]  # fmt: skip
    assert got == expected
    ((year_one, last_instant, big),) = fetch(
        dsn,
        "SELECT valid_from, valid_until, value_jsonb::text FROM claims "
        "WHERE subject = 's' AND predicate = 'p' AND value_jsonb IS NOT NULL "
        "ORDER BY stream_seq LIMIT 1",
    )
    assert (year_one.year, last_instant.microsecond, big) == (1, 999_999, str(10**300))
