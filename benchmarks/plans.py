"""SQLite query plans of the engine's hot SQL, on a populated store.

Reads and writes must touch only the line's rows through indexes: every statement the
engine runs per ingest or per query is explained (`EXPLAIN QUERY PLAN`) against the
flat-cost benchmark's largest store. Flagged: a plan that scans a table (`SCAN` without
an index), and one whose only constraint is `agent_id` without a LIMIT — with one agent
per database file that visits every row of the agent.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

from mempill.stores.sql import SQL

#: The statements run per ingest and per query (INSERTs have no plan to show).
HOT = {
    "head": "every write: the agent's last stream_seq and tx time",
    "line_version": "every write and read: has the line changed since the cache?",
    "line_claims": "first read of a line, and each change since: its new claims",
    "line_entries": "… its new ledger entries",
    "line_assertions": "… its new validity assertions",
    "claim": "derived_from parents, end/reopen/invalidate targets",
    "request_entries": "retries after a lost COMMIT: was this request stored?",
    "predicates": "query_subject",
}


def _params(sql: str) -> tuple[str, ...]:
    return tuple("x" for _ in range(sql.count("?")))


def explain(database: Path) -> list[dict[str, Any]]:
    """Each hot statement with its plan lines and whether any line scans a table."""
    conn = sqlite3.connect(f"file:{database}?mode=ro", uri=True)
    try:
        found = []
        for key, why in HOT.items():
            sql = SQL[key]
            rows = conn.execute(f"EXPLAIN QUERY PLAN {sql}", _params(sql)).fetchall()
            plan = [str(r[3]) for r in rows]
            scans = [line for line in plan if line.startswith("SCAN") and "INDEX" not in line]
            wide = "LIMIT" not in sql and any(line.endswith("(agent_id=?)") for line in plan)
            found.append(
                {
                    "key": key,
                    "why": why,
                    "sql": sql,
                    "plan": plan,
                    "full_scan": bool(scans),
                    "agent_wide": wide,
                }
            )
        return found
    finally:
        conn.close()
