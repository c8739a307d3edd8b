"""SQL views and table macros over loaded ledgers: bitemporal questions asked in DuckDB.

`install(con, config)` creates them on a DuckDB connection that has the tables of
`mempill.lab.ledgers` registered (`ledgers.connect` and `ledgers.register` call it); every
object is TEMP, so nothing is written to a database file. docs/duckdb.md documents each
one: its columns, what it is exact for, examples. The belief, history and claim-view
macros are the read fold in SQL (`sqlfold`); the others summarise the ledger, the oracle
outbox, `write_stats` and the lab's CSV files.

The connection's time zone is set to UTC, so a text instant such as `'2021-06-01'` in a
query means midnight UTC, as it does for the engine.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from mempill.core.config import EngineConfig
from mempill.lab import sqlfold

if TYPE_CHECKING:
    import duckdb
    import pandas as pd


@dataclass(frozen=True, slots=True)
class SqlObject:
    """One installed object: its name, kind (`macro` or `view`), call form and summary."""

    name: str
    kind: str
    call: str
    summary: str


_ONE = "(SELECT tx AS as_of, vt AS valid_at)"
_ONE_TX = "(SELECT tx AS as_of, NULL AS valid_at)"
_MANY = "query_table(points)"

_LINE_LOG = """
SELECT l.agent_id, l.subject, l.predicate, l.stream_seq, l.recorded_at,
    l.event_kind::VARCHAR AS event_kind, l.disposition::VARCHAR AS disposition, l.claim_ref,
    c.value, l.route, l.reason, json_extract_string(l.rationale, '$.handle_id') AS handle_id,
    l.request_ref
FROM ledger l
LEFT JOIN claims c ON c.agent_id = l.agent_id AND c.claim_ref = l.claim_ref
ORDER BY l.agent_id, l.subject, l.predicate, l.stream_seq
"""

_DISPOSITIONS = """
SELECT time_bucket(CAST(width AS INTERVAL), recorded_at) AS bucket, agent_id,
    disposition::VARCHAR AS disposition, count(*) AS entries
FROM ledger
GROUP BY ALL
ORDER BY bucket, agent_id, disposition
"""

_ORACLE_LATENCY = """
WITH decided AS (
    SELECT agent_id, json_extract_string(rationale, '$.handle_id') AS handle_id,
        min(recorded_at) FILTER (WHERE event_kind = 'AdjudicationResolved'
            AND json_extract_string(rationale, '$.side') = 'challenger') AS resolved_at,
        arg_min(json_extract_string(rationale, '$.verdict'), stream_seq)
            FILTER (WHERE event_kind = 'AdjudicationResolved'
                AND json_extract_string(rationale, '$.side') = 'challenger') AS verdict,
        min(recorded_at) FILTER (WHERE event_kind = 'AdjudicationExpired') AS expired_at
    FROM ledger
    WHERE event_kind IN ('AdjudicationResolved', 'AdjudicationExpired')
    GROUP BY ALL
)
SELECT p.agent_id, p.handle_id, p.subject, p.predicate, p.challenger_ref, p.queued_at,
    p.expires_at, p.status::VARCHAR AS status,
    CASE WHEN d.resolved_at IS NOT NULL THEN d.verdict
         WHEN d.expired_at IS NOT NULL THEN 'Expired' END AS outcome,
    coalesce(d.resolved_at, d.expired_at) AS decided_at,
    decided_at - p.queued_at AS latency,
    (epoch_us(decided_at) - epoch_us(p.queued_at)) / 1e6 AS latency_s
FROM pending_adjudications p
LEFT JOIN decided d ON d.agent_id = p.agent_id AND d.handle_id = p.handle_id
ORDER BY p.queued_at, p.agent_id, p.handle_id
"""

_CONTESTED_LINES = """
WITH entries AS (
    SELECT agent_id, subject, predicate,
        count(*) FILTER (WHERE disposition = 'Contested') AS contested_entries,
        count(*) FILTER (WHERE event_kind = 'AdjudicationRequested') AS adjudications,
        min(recorded_at) FILTER (WHERE disposition IN ('Contested', 'QueuedForAdjudication'))
            AS first_contested_at,
        max(recorded_at) FILTER (WHERE disposition IN ('Contested', 'QueuedForAdjudication'))
            AS last_contested_at
    FROM ledger WHERE subject <> '' GROUP BY ALL
), outcomes AS (
    SELECT agent_id, subject, predicate,
        count(*) FILTER (WHERE outcome IN ('Affirm', 'Deny', 'Unknown')) AS verdicts,
        count(*) FILTER (WHERE outcome = 'Expired') AS expired,
        count(*) FILTER (WHERE outcome IS NULL AND status = 'pending') AS open,
        median(latency_s) AS median_latency_s
    FROM oracle_latency GROUP BY ALL
)
SELECT e.agent_id, e.subject, e.predicate, e.contested_entries, e.adjudications,
    coalesce(o.verdicts, 0) AS verdicts, coalesce(o.expired, 0) AS expired,
    coalesce(o.open, 0) AS open, o.median_latency_s, e.first_contested_at,
    e.last_contested_at, b.status AS status_now, b.candidates AS candidates_now
FROM entries e
LEFT JOIN outcomes o USING (agent_id, subject, predicate)
LEFT JOIN belief_at(NULL, NULL) b USING (agent_id, subject, predicate)
WHERE e.contested_entries > 0 OR e.adjudications > 0 OR b.status = 'Contested'
ORDER BY e.agent_id, e.subject, e.predicate
"""

_WRITE_LATENCY = """
SELECT backend::VARCHAR AS backend, agent_id, count(*) AS writes,
    quantile_cont(lock_wait_us, 0.5) AS lock_wait_p50_us,
    quantile_cont(lock_wait_us, 0.9) AS lock_wait_p90_us,
    quantile_cont(lock_wait_us, 0.99) AS lock_wait_p99_us,
    max(lock_wait_us) AS lock_wait_max_us,
    quantile_cont(txn_us, 0.5) AS txn_p50_us,
    quantile_cont(txn_us, 0.9) AS txn_p90_us,
    quantile_cont(txn_us, 0.99) AS txn_p99_us,
    max(txn_us) AS txn_max_us,
    sum(lock_wait_us) / 1e6 AS lock_wait_total_s
FROM write_stats
GROUP BY GROUPING SETS ((backend, agent_id), (backend))
ORDER BY backend, agent_id NULLS FIRST
"""

_DURABILITY = """
SELECT backend, kind, sync, role, count(*) AS trials, sum(acked) AS acked, sum(lost) AS lost,
    count(*) FILTER (WHERE lost > 0) AS trials_losing,
    count(*) FILTER (WHERE NOT integrity_ok) AS integrity_failures,
    sum(belief_mismatches) AS belief_mismatches,
    quantile_cont(seconds, 0.5) AS seconds_p50
FROM read_csv_auto(path)
GROUP BY ALL
ORDER BY ALL
"""

_CONTENTION = """
SELECT r.config, r.mode, r.layout, r.writers, count(*) AS transactions,
    quantile_cont(t.lock_wait_us, 0.5) AS lock_wait_p50_us,
    quantile_cont(t.lock_wait_us, 0.99) AS lock_wait_p99_us,
    max(t.lock_wait_us) AS lock_wait_max_us,
    quantile_cont(t.txn_us, 0.5) AS txn_p50_us
FROM read_csv_auto(directory || '/transactions.csv.gz') t
JOIN read_csv_auto(directory || '/runs.csv') r USING (run_id)
GROUP BY ALL
ORDER BY ALL
"""

#: Every object `install` creates, in creation order (later ones use earlier ones).
OBJECTS = (
    SqlObject("claim_views_at", "macro", "claim_views_at(tx)", "each claim as the fold sees it"),
    SqlObject("claim_views_over", "macro", "claim_views_over(points)", "claim_views_at per as_of"),
    SqlObject("belief_at", "macro", "belief_at(tx, vt)", "the belief of every line"),
    SqlObject("belief_over", "macro", "belief_over(points)", "belief_at per point"),
    SqlObject("history_at", "macro", "history_at(tx)", "query_history of every line"),
    SqlObject("history_over", "macro", "history_over(points)", "history_at per as_of"),
    SqlObject("line_log", "view", "line_log", "every ledger entry with its line and value"),
    SqlObject("dispositions_by", "macro", "dispositions_by(width)", "entries per tx bucket"),
    SqlObject("oracle_latency", "view", "oracle_latency", "queue-to-verdict time"),
    SqlObject("contested_lines", "view", "contested_lines", "lines that were ever contested"),
    SqlObject("write_latency", "view", "write_latency", "write_stats percentiles"),
    SqlObject("durability_summary", "macro", "durability_summary(path)", "trials.csv per mode"),
    SqlObject("contention_percentiles", "macro", "contention_percentiles(directory)", "lock waits"),
)


def _statements(config: EngineConfig) -> list[str]:
    def macro(call: str, body: str) -> str:
        return f"CREATE OR REPLACE TEMP MACRO {call} AS TABLE {body}"

    def view(name: str, body: str) -> str:
        return f"CREATE OR REPLACE TEMP VIEW {name} AS {body}"

    return [
        macro("claim_views_at(tx)", sqlfold.claim_views_sql(_ONE_TX, config)),
        macro("claim_views_over(points)", sqlfold.claim_views_sql(_MANY, config)),
        macro("belief_at(tx, vt)", sqlfold.belief_sql(_ONE, config)),
        macro("belief_over(points)", sqlfold.belief_sql(_MANY, config)),
        macro("history_at(tx)", sqlfold.history_sql(_ONE_TX, config)),
        macro("history_over(points)", sqlfold.history_sql(_MANY, config)),
        view("line_log", _LINE_LOG),
        macro("dispositions_by(width)", _DISPOSITIONS),
        view("oracle_latency", _ORACLE_LATENCY),
        view("contested_lines", _CONTESTED_LINES),
        view("write_latency", _WRITE_LATENCY),
        macro("durability_summary(path)", _DURABILITY),
        macro("contention_percentiles(directory)", _CONTENTION),
    ]


def install(
    con: duckdb.DuckDBPyConnection, config: EngineConfig | None = None
) -> duckdb.DuckDBPyConnection:
    """Create every object of `OBJECTS` on `con` (which must have the ledger tables
    registered: `ledgers.register({})` registers empty ones), folding with `config`
    (default: the engine's defaults); returns `con`."""
    import duckdb

    con.execute("SET TimeZone = 'UTC'")
    for statement in _statements(config or EngineConfig()):
        try:
            con.execute(statement)
        except duckdb.CatalogException as e:
            raise ValueError(
                f"register the ledger tables first (ledgers.register or ledgers.connect): {e}"
            ) from e
    return con


def drop(con: duckdb.DuckDBPyConnection) -> None:
    """Remove every object `install` created (views first: they use the macros)."""
    for item in reversed(OBJECTS):
        kind = "VIEW" if item.kind == "view" else "MACRO TABLE"
        con.execute(f"DROP {kind} IF EXISTS {item.name}")


def catalog() -> pd.DataFrame:
    """The installed objects as a table: name, kind, how to call it, what it gives."""
    import pandas as pd

    return pd.DataFrame(
        [(o.name, o.kind, o.call, o.summary) for o in OBJECTS],
        columns=["name", "kind", "call", "summary"],
    )
