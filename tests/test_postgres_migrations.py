"""PostgreSQL embedded migrations: applied once, concurrently safe, agent-leading schema."""

from __future__ import annotations

import multiprocessing
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from pghelpers import POSTGRES_ONLY, fetch, open_at_barrier

from mempill import AdjudicationRequest, StorageError
from mempill.core.dates import END_OF_TIME
from mempill.lab.servers import fresh_schema, with_options
from mempill.openers import open_postgres
from mempill.stores.pgdialect import DIALECT
from mempill.stores.pgschema import migrations
from mempill.stores.postgres import PoolSettings, PostgresStore

pytestmark = POSTGRES_ONLY

TABLES = {
    "claims",
    "ledger",
    "assertions",
    "edges",
    "pending_adjudications",
    "write_stats",
    "terms",
}
#: The tables that hold no agent rows: versions, and which role may reach which agent.
META = {"schema_migrations", "mempill_roles"}
PROCESSES = 10


@pytest.fixture
def dsn(postgres_server: str) -> Iterator[str]:
    with fresh_schema(postgres_server) as schema_dsn:
        yield schema_dsn


def tables(dsn: str) -> set[str]:
    rows = fetch(dsn, "SELECT tablename FROM pg_tables WHERE schemaname = current_schema()")
    return {r[0] for r in rows}


def applied(dsn: str) -> list[tuple[int, str, str]]:
    return [
        (int(v), str(n), str(at))
        for v, n, at in fetch(
            dsn, "SELECT version, name, applied_at FROM schema_migrations ORDER BY version"
        )
    ]


def test_ten_processes_opening_a_fresh_schema_apply_each_migration_once(dsn: str) -> None:
    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(PROCESSES)
    results = context.Queue()
    workers = [
        context.Process(target=open_at_barrier, args=(dsn, barrier, results))
        for _ in range(PROCESSES)
    ]
    for p in workers:
        p.start()
    for p in workers:
        p.join(timeout=120)
    assert [p.exitcode for p in workers] == [0] * PROCESSES
    reports = [results.get(timeout=10) for _ in workers]
    known = [version for version, _, _ in migrations()]
    # Exactly one process applied each migration; the nine others found them applied.
    assert sorted(v for report in reports for v in report) == known
    assert sum(1 for report in reports if report) == 1
    assert [(v, n) for v, n, _ in applied(dsn)] == [(v, n) for v, n, _ in migrations()]
    assert tables(dsn) == TABLES | META


def test_reopening_applies_nothing(dsn: str) -> None:
    first = PostgresStore(dsn, PoolSettings(min_size=0, max_size=1))
    first.close()
    before = applied(dsn)
    again = PostgresStore(dsn, PoolSettings(min_size=0, max_size=1))
    again.close()
    assert first.applied_migrations == tuple(v for v, _, _ in migrations())
    assert again.applied_migrations == ()
    assert applied(dsn) == before


def test_every_table_and_index_leads_with_agent_id(dsn: str) -> None:
    PostgresStore(dsn, PoolSettings(min_size=0, max_size=1)).close()
    columns = fetch(
        dsn,
        "SELECT c.relname, a.attname FROM pg_class c "
        "JOIN pg_namespace n ON n.oid = c.relnamespace "
        "JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = 1 "
        "WHERE n.nspname = current_schema() AND c.relkind = 'r'",
    )
    indexes = fetch(
        dsn,
        "SELECT t.relname, i.relname, a.attname FROM pg_index x "
        "JOIN pg_class t ON t.oid = x.indrelid JOIN pg_class i ON i.oid = x.indexrelid "
        "JOIN pg_namespace n ON n.oid = t.relnamespace "
        "JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = x.indkey[0] "
        "WHERE n.nspname = current_schema()",
    )
    agent_tables = {t: c for t, c in columns if t not in META}
    assert set(agent_tables) == TABLES  # no store_meta: a shared database is never bound
    assert set(agent_tables.values()) == {"agent_id"}
    agent_indexes = [(t, i, a) for t, i, a in indexes if t not in META]
    assert {t for t, _, _ in agent_indexes} == TABLES  # every table is indexed
    assert len(agent_indexes) >= 15
    assert [(t, i) for t, i, a in agent_indexes if a != "agent_id"] == []
    unique_ledger = fetch(
        dsn,
        "SELECT pg_get_constraintdef(oid) FROM pg_constraint "
        "WHERE conname = 'ledger_agent_seq' AND connamespace = current_schema()::regnamespace",
    )
    assert unique_ledger == [("PRIMARY KEY (agent_id, stream_seq)",)]


def test_terms_are_compared_by_code_point(dsn: str) -> None:
    PostgresStore(dsn, PoolSettings(min_size=0, max_size=1)).close()
    found = fetch(
        dsn,
        "SELECT collation_name FROM information_schema.columns "
        "WHERE table_schema = current_schema() AND table_name = 'terms' AND column_name = 'term'",
    )
    assert found == [("C",)]
    fetch(
        dsn,
        "INSERT INTO terms VALUES ('a', 'Z', 'r'), ('a', 'a', 'r'), ('a', 'é', 'r') RETURNING 1",
    )
    assert fetch(dsn, "SELECT term FROM terms ORDER BY term") == [("Z",), ("a",), ("é",)]


def test_a_schema_newer_than_the_code_is_refused(dsn: str) -> None:
    PostgresStore(dsn, PoolSettings(min_size=0, max_size=1)).close()
    fetch(dsn, "INSERT INTO schema_migrations (version, name) VALUES (9999, 'future') RETURNING 1")
    with pytest.raises(StorageError, match="newer than this mempill knows"):
        PostgresStore(dsn, PoolSettings(min_size=0, max_size=1))


def test_a_search_path_without_a_schema_is_a_clear_error(postgres_server: str) -> None:
    nowhere = with_options(postgres_server, "-csearch_path=no_such_schema_here")
    with pytest.raises(StorageError, match="no schema to create tables in"):
        PostgresStore(nowhere, PoolSettings(min_size=0, max_size=1))


# query -> (parameters, the columns its index condition must hold beyond agent_id)
HOT_QUERIES: dict[str, tuple[tuple[Any, ...], tuple[str, ...]]] = {
    "head": (("a",), ()),
    "line_version": (("a", "s1", "p1"), ("subject", "predicate")),
    "line_claims": (("a", "s1", "p1", 0), ("subject", "predicate", "stream_seq")),
    "line_entries": (("a", "s1", "p1", 0), ("subject", "predicate", "stream_seq")),
    "line_assertions": (("a", "s1", "p1", 0), ("subject", "predicate", "stream_seq")),
    "claim": (("a", "r"), ("claim_ref",)),
    "claim_entries": (("a", "r"), ("claim_ref",)),
    "claim_assertions": (("a", "r"), ("claim_ref",)),
    "children": (("a", "r", "DerivedFrom"), ("to_ref",)),
    "request_entries": (("a", "r"), ("request_ref",)),
    "predicates": (("a", "s1", END_OF_TIME, 99), ("subject",)),
    "audit": (("a", 0, 10), ("stream_seq",)),
    "audit_claim": (("a", "r", 0, 10), ("claim_ref",)),
    "pending_line": (("a", "s1", "p1"), ("subject", "predicate")),
    "pending_handle": (("a", "h"), ("handle_id",)),
    "pending_status": (("a", "pending"), ("status",)),
    # the word index: a range of terms (COLLATE "C": code point order, as on SQLite)
    "term_lines": (("a", "s", "t"), ("term",)),
    "erase_terms": (("a", "a", "s1", "p1"), ("claim_ref",)),
}


class SilentOracle:
    def request_adjudication(self, handle_id: str, request: AdjudicationRequest) -> None:
        return None


def plan_nodes(plan: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield plan
    for child in plan.get("Plans", ()):
        yield from plan_nodes(child)


def test_hot_queries_can_seek_an_index(dsn: str) -> None:
    """Every hot query has an index whose condition covers agent_id and its filter."""
    with open_postgres(dsn, oracle=SilentOracle()) as engine:  # conflicts fill the outbox
        engine.ingest_many(
            {"agent_id": "a", "subject": f"s{i % 10}", "predicate": f"p{i % 4}", "value": i}
            for i in range(300)
        )
    assert len(fetch(dsn, "SELECT 1 FROM pending_adjudications")) > 100
    with psycopg.connect(dsn, autocommit=True) as conn:
        # Autovacuum analyzes a growing table on its own; without statistics a 300-row
        # table gives the planner ties (it may seek claims_line and filter claim_ref).
        conn.execute("ANALYZE")
        conn.execute("SET enable_seqscan = off")  # only a missing index can force a scan
        for key, (params, columns) in HOT_QUERIES.items():
            explained = conn.execute(f"EXPLAIN (FORMAT JSON) {DIALECT.sql(key)}", params)
            row = explained.fetchone()
            assert row is not None
            nodes = list(plan_nodes(row[0][0]["Plan"]))
            assert not [n for n in nodes if n["Node Type"] == "Seq Scan"], (key, nodes)
            conditions = [str(n.get("Index Cond", "")) for n in nodes]
            assert any(
                "agent_id" in cond and all(c in cond for c in columns) for cond in conditions
            ), (key, conditions)
