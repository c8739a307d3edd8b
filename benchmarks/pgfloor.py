"""The SQL floor of a PostgreSQL ingest: the statements one ingest sends, without the engine.

Each writer thread has a connection of its own and an agent of its own, and sends per claim
exactly what the store sends for an ingest on a new line — BEGIN, the scope and the agent's
advisory lock, the head and line version, then the claim, its word-index rows, its ledger
entry and COMMIT, in the store's two messages (`HeldCursor`, `SqlSession`) — with rows
copied from a claim the engine really wrote (fresh refs, the next stream_seq). No decision,
no line cache, no pool. Its rate is what any engine making these calls could reach on the
same server from the same process; the engine's writers ÷ raw cannot beat floor ÷ raw.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any

from benchmarks.timing import in_threads
from mempill.core.model import ClaimRow, LedgerEntry
from mempill.core.search import claim_terms
from mempill.engine import Engine
from mempill.stores.pgaccess import SCOPED_LOCK
from mempill.stores.pgcursor import HeldCursor
from mempill.stores.pgdialect import PREPARED
from mempill.stores.sql import SqlSession

_runs = itertools.count()


def template(engine: Engine, agent: str) -> tuple[ClaimRow, LedgerEntry]:
    """The claim row and ledger entry of the agent's first claim, as the engine wrote them."""
    with engine.runner.store.read(agent) as reader:
        claim = reader.all_claims()[0]
        entry = next(iter(reader.ledger()))
    return claim, entry


def ingest_sql(conn: Any, agent: str, claim: ClaimRow, entry: LedgerEntry) -> None:
    """The statements of one ingest of `claim` and its ledger `entry`."""
    cursor = HeldCursor(conn)
    cursor.execute("BEGIN")
    cursor.execute(SCOPED_LOCK, (agent, agent))
    session = SqlSession(cursor, PREPARED, agent)
    session.head_and_line(claim.subject, claim.predicate)
    session.append_claim(claim)
    session.append_terms(claim.claim_ref, claim_terms(claim.subject, claim.predicate, claim.value))
    session.append_entry(entry)
    session.flush()
    cursor.execute("COMMIT")
    cursor.send()


def floor_rate(connections: Sequence[Any], rows: tuple[ClaimRow, LedgerEntry], count: int) -> float:
    """Claims per second of one thread per connection, each into a new agent of its own."""
    claim, entry = rows
    run = next(_runs)

    def worker(agent: str, conn: Any) -> Callable[[], None]:
        def work() -> None:
            for seq in range(1, count + 1):
                ref, subject = f"{agent}-{seq}", f"floor{seq}"
                ingest_sql(
                    conn,
                    agent,
                    replace(claim, agent_id=agent, claim_ref=ref, subject=subject, stream_seq=seq),
                    replace(
                        entry,
                        agent_id=agent,
                        entry_id=ref,
                        claim_ref=ref,
                        request_ref=ref,
                        subject=subject,
                        stream_seq=seq,
                    ),
                )

        return work

    agents = [f"floor-{run}-{i:02d}" for i in range(len(connections))]
    for conn in connections:  # the store's statements, as each pooled connection has them
        mine = "SELECT count(*) FROM pg_prepared_statements WHERE name LIKE 'mempill\\_%'"
        if not conn.execute(mine).fetchone()[0]:
            PREPARED.prepare(conn)
    seconds = in_threads([worker(a, c) for a, c in zip(agents, connections, strict=True)])
    return len(connections) * count / seconds
