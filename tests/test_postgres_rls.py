"""Tenant isolation enforced by PostgreSQL (issue 17): row-level security on every table
holding agent rows, per-agent and service runtime roles with the least privilege, and an
owner bound by the policies once it scopes a transaction. Raw psycopg as the roles shows
what the server refuses; the engine shows what a user sees. Runs on the suite's
PostgreSQL (15 and 18 in CI), each test in its own schema with its own roles.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
import pytest
from conftest import RecordingOracle
from pghelpers import POSTGRES_ONLY, with_params
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict
from test_cli import Cli

import mempill
from mempill import Disposition, PermissionDeniedError, SeededIds, SteppingClock
from mempill.core.search import INDEX_BLOCK, indexed_below
from mempill.lab import backends
from mempill.lab.servers import fresh_schema
from mempill.stores.pgaccess import AGENT_TABLES, grant_script

pytestmark = POSTGRES_ONLY
TABLES = AGENT_TABLES


@dataclass
class Store:
    owner: str  # the superuser DSN (scoped to the test's schema)
    schema: str
    made: list[str]

    def role(self, name: str, agent: str | None) -> str:
        """Create a runtime role as `mempill pg grant-*` does; its DSN."""
        role = f"{name}_{uuid.uuid4().hex[:8]}"
        self.made.append(role)
        with psycopg.connect(self.owner, autocommit=True) as conn:
            for statement in grant_script(self.schema, role, agent, create=True, password=None):
                conn.execute(statement)
        return with_params(self.owner, user=role)

    def login(self, name: str, *grants: str) -> str:
        """A bare login role (no mempill grants) with the given SQL grants; its DSN."""
        role = f"{name}_{uuid.uuid4().hex[:8]}"
        self.made.append(role)
        with psycopg.connect(self.owner, autocommit=True) as conn:
            conn.execute(sql.SQL("CREATE ROLE {} LOGIN").format(sql.Identifier(role)))
            for grant in grants:
                conn.execute(grant.format(role=f'"{role}"', schema=f'"{self.schema}"'))
        return with_params(self.owner, user=role)


@pytest.fixture
def store(postgres_server: str) -> Iterator[Store]:
    made: list[str] = []
    with fresh_schema(postgres_server) as dsn:
        schema = conninfo_to_dict(dsn)["options"].split("=", 1)[1]
        mempill.open_postgres(dsn, pool_min_size=0).close()  # migrations, as the superuser
        yield Store(dsn, schema, made)
    with psycopg.connect(postgres_server, autocommit=True) as conn:
        for role in made:
            conn.execute(sql.SQL("DROP OWNED BY {}").format(sql.Identifier(role)))
            conn.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(role)))


def engine(dsn: str) -> mempill.Engine:
    clock = SteppingClock(datetime(2026, 1, 1, tzinfo=UTC))
    return mempill.open_postgres(dsn, clock=clock, ids=SeededIds(17), pool_min_size=0)


def put(e: mempill.Engine, agent: str, value: Any, subject: str = "user") -> mempill.Receipt:
    return e.ingest({"agent_id": agent, "subject": subject, "predicate": "city", "value": value})


def rows(dsn: str, query: str, *params: Any, scope: str | None = None) -> list[tuple[Any, ...]]:
    with psycopg.connect(dsn, autocommit=True) as conn:
        if scope is not None:
            conn.execute("SELECT set_config('mempill.agent_id', %s, false)", (scope,))
        return conn.execute(query, params).fetchall()


def seed_two_agents(owner: str) -> None:
    """Agents A and B with a claim each, and B with a pending adjudication."""
    e = mempill.open_postgres(owner, oracle=RecordingOracle(), pool_min_size=0)
    try:
        put(e, "A", "Paris")
        put(e, "B", "Rome")
        assert put(e, "B", "Oslo").disposition is Disposition.QUEUED_FOR_ADJUDICATION
    finally:
        e.close()


def test_an_agent_role_reaches_its_agent_only_whatever_sql_it_runs(store: Store) -> None:
    seed_two_agents(store.owner)
    outbox = rows(store.owner, "SELECT status, notified FROM pending_adjudications")
    a = store.role("agent_a", "A")
    for table in TABLES:  # every table: B's rows are invisible, scoped or not
        for scope in (None, "B", "*"):
            seen = rows(a, f"SELECT DISTINCT agent_id FROM {table}", scope=scope)
            assert set(seen) <= {("A",)}, (table, scope, seen)
    assert rows(a, "SELECT value FROM claims") == [('"Paris"',)]
    with psycopg.connect(a, autocommit=True) as conn:
        # Adding a row for B: refused by the policy (a copy of A's claim relabelled B).
        with pytest.raises(psycopg.errors.InsufficientPrivilege, match="row-level security"):
            conn.execute(
                "INSERT INTO edges (agent_id, from_ref, kind, to_ref, tx_time) "
                "SELECT 'B', claim_ref, 'derived_from', claim_ref, tx_time FROM claims"
            )
        # The outbox is the only thing a runtime role may update: B's rows are not there.
        assert conn.execute("UPDATE pending_adjudications SET notified = 0").rowcount == 0
        assert conn.execute("UPDATE pending_adjudications SET status = 'expired'").rowcount == 0
        for forbidden in (
            "UPDATE claims SET value = '\"Berlin\"'",  # append-only: no UPDATE privilege
            "DELETE FROM ledger",
            "DELETE FROM pending_adjudications",
            "TRUNCATE claims",
            "ALTER TABLE claims DISABLE ROW LEVEL SECURITY",
            "ALTER TABLE claims ADD COLUMN x int",
            "DROP POLICY agent_scope ON claims",
            "CREATE TABLE mine (x int)",
            "INSERT INTO mempill_roles VALUES (current_user, '*', 'service')",
            "SET ROLE postgres",
        ):
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                conn.execute(forbidden)
    # B's data is untouched by all of the above.
    assert rows(store.owner, "SELECT count(*) FROM claims WHERE agent_id = 'B'") == [(2,)]
    assert rows(store.owner, "SELECT status, notified FROM pending_adjudications") == outbox


def test_the_engine_as_an_agent_role_works_for_it_and_refuses_others(store: Store) -> None:
    seed_two_agents(store.owner)
    b_ledger = rows(store.owner, "SELECT count(*) FROM ledger WHERE agent_id = 'B'")
    e = engine(store.role("agent_a", "A"))
    try:
        assert put(e, "A", "Lyon").disposition is Disposition.CONTESTED
        assert e.query_memory("A", "user", "city").status.value == "Contested"
        assert len(e.query_history("A", "user", "city")) == 2
        assert [x.stream_seq for x in e.query_audit("A").entries] == [1, 2]
        assert e.store.agents() == ("A",)
        refused = put(e, "B", "Lyon")  # as on a single file another agent owns
        assert (refused.disposition, refused.reason) == (Disposition.REJECTED, "write_authority")
        for read in (
            lambda: e.query_memory("B", "user", "city"),
            lambda: e.query_audit("B"),
            lambda: e.list_pending("B"),
        ):
            with pytest.raises(PermissionDeniedError, match=r"may not reach agent 'B'"):
                read()
        assert e.sweep_expired() == 0  # store-wide: only A's outbox, which is empty
    finally:
        e.close()
    assert rows(store.owner, "SELECT count(*) FROM ledger WHERE agent_id = 'B'") == b_ledger


def test_a_service_role_is_held_to_the_agent_of_each_transaction(store: Store) -> None:
    seed_two_agents(store.owner)
    service = store.role("service", None)
    assert rows(service, "SELECT agent_id FROM claims") == []  # unscoped: nothing
    assert rows(service, "SELECT DISTINCT agent_id FROM claims", scope="A") == [("A",)]
    assert sorted(rows(service, "SELECT DISTINCT agent_id FROM claims", scope="*")) == [
        ("A",),
        ("B",),
    ]
    # An engine bug writing B's row inside A's transaction: the policy refuses it.
    with psycopg.connect(service) as conn:
        conn.execute("SELECT set_config('mempill.agent_id', 'A', true)")
        with pytest.raises(psycopg.errors.InsufficientPrivilege, match="row-level security"):
            conn.execute(
                "INSERT INTO edges (agent_id, from_ref, kind, to_ref, tx_time) "
                "SELECT 'B', claim_ref, 'derived_from', claim_ref, tx_time FROM claims"
            )
    e = engine(service)
    try:
        assert e.query_memory("B", "user", "city").status.value == "Contested"
        assert put(e, "C", "Kyiv").disposition is Disposition.COMMITTED_CHEAP
        assert e.store.agents() == ("A", "B", "C")
        assert [p.agent_id for p in e.list_pending()] == ["B"]
    finally:
        e.close()


def test_a_non_superuser_owner_is_bound_by_the_policies_once_scoped(
    postgres_server: str,
) -> None:
    """FORCE ROW LEVEL SECURITY: the tables' owner (a plain role that ran the migrations)
    sees every agent unscoped (doctor, backups), only the scope's agent once scoped."""
    owner = f"owner_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(postgres_server, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE ROLE {} LOGIN").format(sql.Identifier(owner)))
    try:
        with fresh_schema(postgres_server) as dsn:
            schema = conninfo_to_dict(dsn)["options"].split("=", 1)[1]
            with psycopg.connect(postgres_server, autocommit=True) as conn:
                conn.execute(
                    sql.SQL("ALTER SCHEMA {} OWNER TO {}").format(
                        sql.Identifier(schema), sql.Identifier(owner)
                    )
                )
            as_owner = with_params(dsn, user=owner)
            seed_two_agents(as_owner)
            assert rows(as_owner, "SELECT DISTINCT agent_id FROM ledger ORDER BY 1") == [
                ("A",),
                ("B",),
            ]
            assert rows(as_owner, "SELECT DISTINCT agent_id FROM ledger", scope="A") == [("A",)]
            assert rows(as_owner, "SELECT count(*) FROM claims", scope="nobody") == [(0,)]
            assert rows(as_owner, "SELECT relforcerowsecurity FROM pg_class "
                        "WHERE relname = 'claims' AND relnamespace = %s::regnamespace",
                        schema) == [(True,)]  # fmt: skip
    finally:
        with psycopg.connect(postgres_server, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP OWNED BY {}").format(sql.Identifier(owner)))
            conn.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(owner)))


def test_a_role_without_grants_reaches_nothing(store: Store) -> None:
    seed_two_agents(store.owner)
    # Even with SELECT granted by hand, no mempill grant means no rows.
    bare = store.login(
        "bare", "GRANT USAGE ON SCHEMA {schema} TO {role}",
        "GRANT SELECT ON ALL TABLES IN SCHEMA {schema} TO {role}",
    )  # fmt: skip
    assert rows(bare, "SELECT count(*) FROM claims", scope="*") == [(0,)]
    e = engine(bare)
    try:
        with pytest.raises(PermissionDeniedError, match="its agents: none"):
            e.query_memory("A", "user", "city")
    finally:
        e.close()


def test_the_conformance_corpus_passes_under_row_level_security() -> None:
    """Every scenario and regression stream replays on backend `pg-rls` (a fresh schema and
    a service role per stream: the policies apply) exactly as on SQLite in memory: same
    receipts, beliefs and digests."""
    from conformance.replay import replay_path, stream_paths

    root = Path(__file__).resolve().parent.parent / "data"
    paths = stream_paths([root / "scenarios", root / "regressions"])
    assert len(paths) > 40
    for path in paths:
        names = [b for b in ("sqlite-mem", "pg-rls") if backends.supports(b, _topology(path))]
        if len(names) < 2:
            continue
        verdict = replay_path(path, names, require_expected=False)
        problems = [d.render() for d in verdict.differences]
        problems += [p for r in verdict.runs.values() for p in [r.error, *r.unexpected] if p]
        assert verdict.ok, f"{path.name}: " + "\n".join(problems)


def _topology(path: Path) -> str:
    with open(path, encoding="utf-8") as handle:
        return str(json.loads(handle.readline()).get("topology", "default"))


# ---------------------------------------------------------------- the CLI


@pytest.fixture
def cli(tmp_path: Path) -> Cli:
    return Cli(tmp_path, {})


def test_the_cli_grants_prints_and_revokes(store: Store, cli: Cli) -> None:
    role = f"cli_{uuid.uuid4().hex[:8]}"
    store.made.append(role)
    pg = ("--pg", store.owner)
    shown = cli.ok(*pg, "pg", "grant-agent", "A", "--role", role, "--print-sql").out
    assert f'CREATE ROLE "{role}" LOGIN' in shown and "GRANT SELECT, INSERT ON" in shown
    assert rows(store.owner, "SELECT count(*) FROM pg_roles WHERE rolname = %s", role) == [(0,)]
    secret = "s3cret-" + uuid.uuid4().hex
    done = cli.ok(*pg, "pg", "grant-agent", "A", "--role", role, "--password-env", "PW",
                  "--json", PW=secret)  # fmt: skip
    assert secret not in done.out + done.err
    assert done.json()["applied"] is True and "PASSWORD '…'" in done.json()["sql"][0]
    as_role = with_params(store.owner, user=role, password=secret)
    # The role's conninfo (with its password) from the environment, as docs/postgres.md says.
    cli.ok("--agent", "A", "remember", "user", "city", "Paris", MEMPILL_PG_DSN=as_role)
    line = cli.fails(3, "--agent", "B", "recall", "user", "city", MEMPILL_PG_DSN=as_role)
    assert "may not reach agent 'B'" in line
    cli.ok(*pg, "pg", "grant-agent", "B", "--role", role)  # a second agent for the role
    cli.ok("--agent", "B", "remember", "user", "city", "Rome", MEMPILL_PG_DSN=as_role)
    cli.ok(*pg, "pg", "revoke-agent", "A", "--role", role)
    assert rows(as_role, "SELECT DISTINCT agent_id FROM claims") == [("B",)]
    cli.ok(*pg, "pg", "revoke-agent", "B", "--role", role)  # its last: privileges go too
    with pytest.raises(psycopg.errors.InsufficientPrivilege, match="permission denied"):
        rows(as_role, f'SELECT count(*) FROM "{store.schema}".claims')
    # Bad usage is refused before anything runs.
    assert "needs an AGENT_ID" in cli.fails(2, *pg, "pg", "grant-agent", "--role", role)
    assert "takes no AGENT_ID" in cli.fails(2, *pg, "pg", "grant-service", "A", "--role", role)
    assert "reserved" in cli.fails(2, *pg, "pg", "grant-service", "--role", "pg_monitor")
    assert "unset or empty" in cli.fails(
        2, *pg, "pg", "grant-service", "--role", role, "--password-env", "NOPE_UNSET"
    )


def test_an_agent_role_searches_and_reindexes_its_own_word_index_only(store: Store) -> None:
    """The word index (`terms`, migration 4) is an agent table like the others: an agent
    role reads, writes and deletes (reindex) its own agent's terms and none of B's."""
    seed_two_agents(store.owner)
    owner = engine(store.owner)
    try:
        assert owner.reindex("B") == 2  # B's terms written again by its owner
    finally:
        owner.close()
    b_terms = rows(store.owner, "SELECT term, claim_ref FROM terms WHERE agent_id = 'B'")
    assert ("rome",) in {(t,) for t, _ in b_terms}
    a = store.role("agent_a", "A")
    for scope in (None, "A", "B", "*"):
        assert rows(a, "SELECT DISTINCT agent_id FROM terms", scope=scope) in ([], [("A",)])
    with psycopg.connect(a, autocommit=True) as conn:
        conn.execute("SELECT set_config('mempill.agent_id', 'B', false)")
        assert conn.execute("DELETE FROM terms").rowcount == 0  # B's rows are not there
        with pytest.raises(psycopg.errors.InsufficientPrivilege, match="row-level security"):
            conn.execute("INSERT INTO terms (agent_id, term, claim_ref) VALUES ('B', 'x', 'y')")
    e = engine(a)
    try:
        assert [h.subject for h in e.search("A", "paris")] == ["user"]
        with pytest.raises(PermissionDeniedError, match=r"may not reach agent 'B'"):
            e.search("B", "rome")
        assert e.reindex("A") == 1
        assert [h.predicate for h in e.search("A", "city")] == ["city"]
        for i in range(INDEX_BLOCK):  # the role writes the terms of its claims (PostgreSQL:
            put(e, "A", f"Town {i}", subject=f"town{i}")  # with each claim) under the policy
        indexed = indexed_below(1 + INDEX_BLOCK, e.store.index_block) - 1  # at seq 1, 2, …
        assert rows(a, "SELECT count(DISTINCT claim_ref) FROM terms", scope="A") == [(indexed,)]
        assert [h.subject for h in e.search("A", "paris")] == ["user"]
    finally:
        e.close()
    assert rows(store.owner, "SELECT term, claim_ref FROM terms WHERE agent_id = 'B'") == b_terms
