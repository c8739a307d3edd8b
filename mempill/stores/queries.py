"""The SQL text both backends run, written once with `?` placeholders (see `sql.py`)."""

from __future__ import annotations

CLAIM_COLUMNS = (
    "agent_id, claim_ref, subject, predicate, value, cardinality, provenance, value_confidence, "
    "valid_time_confidence, criticality, valid_from, valid_from_granularity, valid_until, "
    "valid_until_granularity, tx_time, stream_seq, derived_from, derivation_depth, external_anchor"
)
ENTRY_COLUMNS = (
    "agent_id, stream_seq, entry_id, claim_ref, event_kind, disposition, rationale, "
    "recorded_at, subject, predicate, request_ref"
)
ASSERTION_COLUMNS = (
    "agent_id, assertion_ref, claim_ref, subject, predicate, kind, bound_at, bound_granularity, "
    "provenance, confidence, tx_time, stream_seq, handle_id"
)
PENDING_COLUMNS = (
    "agent_id, handle_id, subject, predicate, challenger_ref, incumbent_refs, request, "
    "queued_at, expires_at, status, notified"
)
STATS_COLUMNS = "agent_id, first_seq, last_seq, lock_wait_us, txn_us, backend, pid, recorded_at"


def _insert(table: str, columns: str) -> str:
    marks = ", ".join("?" for _ in columns.split(","))
    return f"INSERT INTO {table} ({columns}) VALUES ({marks})"


LINE = "agent_id = ? AND subject = ? AND predicate = ?"
#: Erasure (docs/erasure.md), the one exception to append-only: a line's rows are scrubbed
#: in place, their key set to '' (no valid key is empty, so no query reaches them again).
#: Each UPDATE finds its rows by a sub-select on the line, which PostgreSQL seeks by hash.
ERASED = "LineErased"
ERASE_SQL = {
    "erasable": "SELECT DISTINCT predicate FROM claims WHERE agent_id = ? AND subject = ? "
    "UNION SELECT DISTINCT predicate FROM ledger WHERE agent_id = ? AND subject = ? "
    f"AND event_kind <> '{ERASED}'",
    "erase_claims": "UPDATE claims SET subject = '', predicate = '', value = 'null', "
    "valid_from = NULL, valid_from_granularity = NULL, valid_until = NULL, "
    "valid_until_granularity = NULL, external_anchor = NULL WHERE agent_id = ? "
    f"AND claim_ref IN (SELECT claim_ref FROM claims WHERE {LINE})",
    "erase_entries": "UPDATE ledger SET subject = '', predicate = '', rationale = ? "
    f"WHERE agent_id = ? AND stream_seq IN (SELECT stream_seq FROM ledger WHERE {LINE} "
    f"AND event_kind <> '{ERASED}')",
    "erase_assertions": "UPDATE assertions SET subject = '', predicate = '', bound_at = NULL, "
    "bound_granularity = NULL WHERE agent_id = ? "
    f"AND assertion_ref IN (SELECT assertion_ref FROM assertions WHERE {LINE})",
    # the word index of the line's claims goes first: it is found through their refs
    "erase_terms": "DELETE FROM terms WHERE agent_id = ? AND claim_ref IN "
    f"(SELECT claim_ref FROM claims WHERE {LINE})",
    "erase_pending": "UPDATE pending_adjudications SET subject = '', predicate = '', "
    "request = '{}', status = CASE WHEN status = 'pending' THEN 'expired' ELSE status END "
    "WHERE agent_id = ? AND handle_id IN "
    f"(SELECT handle_id FROM pending_adjudications WHERE {LINE})",
}
#: The word index (docs/search.md): derived rows, written with each claim, deleted only by
#: `reindex` and erasure; it finds candidate lines, the matching rule decides the hits.
TERM_SQL = {
    # the rows of a transaction as one JSON object, {claim_ref: [term, ...], ...}; a row
    # already there (a store indexed claim by claim before, or by `reindex`) stays
    "insert_terms": "INSERT OR IGNORE INTO terms (agent_id, term, claim_ref) "
    "SELECT ?, t.value, r.key FROM json_each(?) AS r, json_each(r.value) AS t",
    # the claims recorded in a range of ledger positions: a claim's row holds the position
    # of the entry that recorded it (the claims table has no index by position)
    "recorded_claims": "SELECT c.claim_ref, c.subject, c.predicate, c.value FROM ledger l "
    "JOIN claims c ON c.agent_id = l.agent_id AND c.claim_ref = l.claim_ref "
    "AND c.stream_seq = l.stream_seq WHERE l.agent_id = ? AND l.stream_seq >= ? "
    "AND l.stream_seq < ? AND c.subject <> '' ORDER BY l.stream_seq",
    "term_lines": "SELECT DISTINCT c.subject, c.predicate, t.term FROM terms t "
    "JOIN claims c ON c.agent_id = t.agent_id AND c.claim_ref = t.claim_ref "
    "WHERE t.agent_id = ? AND t.term >= ? AND t.term < ? AND c.subject <> ''",
    "delete_terms": "DELETE FROM terms WHERE agent_id = ?",
}
SQL = {
    "insert_claim": _insert("claims", CLAIM_COLUMNS),
    "insert_entry": _insert("ledger", ENTRY_COLUMNS),
    "insert_assertion": _insert("assertions", ASSERTION_COLUMNS),
    "insert_edge": _insert("edges", "agent_id, kind, from_ref, to_ref, tx_time"),
    "insert_pending": _insert("pending_adjudications", PENDING_COLUMNS),
    "insert_stats": _insert("write_stats", STATS_COLUMNS),
    "head": "SELECT stream_seq, recorded_at FROM ledger WHERE agent_id = ? "
    "ORDER BY stream_seq DESC LIMIT 1",
    "line_version": f"SELECT max(stream_seq) FROM ledger WHERE {LINE}",
    # the versions of many lines: their subjects are one parameter, a JSON array of text
    "line_versions": "SELECT subject, predicate, max(stream_seq) FROM ledger WHERE agent_id = ? "
    "AND subject IN (SELECT value FROM json_each(?)) GROUP BY subject, predicate",
    # the head and one line's version in one round trip (a write's first two questions)
    "head_line": "SELECT (SELECT stream_seq FROM ledger WHERE agent_id = ? "
    "ORDER BY stream_seq DESC LIMIT 1), (SELECT recorded_at FROM ledger WHERE agent_id = ? "
    f"ORDER BY stream_seq DESC LIMIT 1), (SELECT max(stream_seq) FROM ledger WHERE {LINE})",
    "line_claims": f"SELECT {CLAIM_COLUMNS} FROM claims WHERE {LINE} AND stream_seq > ? "
    "ORDER BY stream_seq",
    "line_entries": f"SELECT {ENTRY_COLUMNS} FROM ledger WHERE {LINE} AND stream_seq > ? "
    "ORDER BY stream_seq",
    "line_assertions": f"SELECT {ASSERTION_COLUMNS} FROM assertions WHERE {LINE} "
    "AND stream_seq > ? ORDER BY stream_seq",
    # an erased claim (its line scrubbed to '') is found by no ref
    "claim": f"SELECT {CLAIM_COLUMNS} FROM claims WHERE agent_id = ? AND claim_ref = ? "
    "AND subject <> ''",
    "claim_entries": f"SELECT {ENTRY_COLUMNS} FROM ledger WHERE agent_id = ? AND claim_ref = ? "
    "ORDER BY stream_seq",
    "claim_assertions": f"SELECT {ASSERTION_COLUMNS} FROM assertions WHERE agent_id = ? "
    "AND claim_ref = ? ORDER BY stream_seq",
    # the children, each with whether it was erased (docs/erasure.md: seen through, not flagged)
    "children": "SELECT e.from_ref, CASE WHEN c.subject = '' THEN 1 ELSE 0 END FROM edges e "
    "JOIN claims c ON c.agent_id = e.agent_id AND c.claim_ref = e.from_ref "
    "WHERE e.agent_id = ? AND e.to_ref = ? AND e.kind = ? ORDER BY e.tx_time, e.from_ref",
    "predicates": "SELECT DISTINCT predicate FROM claims WHERE agent_id = ? AND subject = ? "
    "AND tx_time <= ? AND stream_seq <= ?",
    # the last ledger position at or before a transaction time (tx times grow with the seq)
    "seq_at": "SELECT stream_seq FROM ledger WHERE agent_id = ? AND recorded_at <= ? "
    "ORDER BY stream_seq DESC LIMIT 1",
    "window": f"SELECT {ENTRY_COLUMNS} FROM ledger WHERE agent_id = ? AND stream_seq > ? "
    "AND stream_seq <= ? ORDER BY stream_seq",
    "lines": "SELECT DISTINCT subject, predicate FROM claims WHERE agent_id = ? AND subject <> ''",
    "audit": f"SELECT {ENTRY_COLUMNS} FROM ledger WHERE agent_id = ? AND stream_seq > ? "
    "ORDER BY stream_seq LIMIT ?",
    "audit_claim": f"SELECT {ENTRY_COLUMNS} FROM ledger WHERE agent_id = ? AND claim_ref = ? "
    "AND stream_seq > ? ORDER BY stream_seq LIMIT ?",
    "ledger": f"SELECT {ENTRY_COLUMNS} FROM ledger WHERE agent_id = ? ORDER BY stream_seq",
    "all_claims": f"SELECT {CLAIM_COLUMNS} FROM claims WHERE agent_id = ? ORDER BY stream_seq",
    "all_assertions": f"SELECT {ASSERTION_COLUMNS} FROM assertions WHERE agent_id = ? "
    "ORDER BY stream_seq",
    "all_edges": "SELECT agent_id, kind, from_ref, to_ref, tx_time FROM edges WHERE agent_id = ?",
    "request_entries": f"SELECT {ENTRY_COLUMNS} FROM ledger WHERE agent_id = ? "
    "AND request_ref = ? ORDER BY stream_seq",
    "pending_all": f"SELECT {PENDING_COLUMNS} FROM pending_adjudications WHERE agent_id = ?",
    "pending_status": f"SELECT {PENDING_COLUMNS} FROM pending_adjudications "
    "WHERE agent_id = ? AND status = ?",
    "pending_line": f"SELECT {PENDING_COLUMNS} FROM pending_adjudications WHERE {LINE}",
    "pending_handle": f"SELECT {PENDING_COLUMNS} FROM pending_adjudications "
    "WHERE agent_id = ? AND handle_id = ?",
    "set_pending_status": "UPDATE pending_adjudications SET status = ? "
    "WHERE agent_id = ? AND handle_id = ?",
    "set_pending_notified": "UPDATE pending_adjudications SET notified = 1 "
    "WHERE agent_id = ? AND handle_id = ?",
    "stats": f"SELECT {STATS_COLUMNS} FROM write_stats WHERE agent_id = ? ORDER BY stat_id",
    "agents": "SELECT DISTINCT agent_id FROM ledger",
    "agents_with_pending": "SELECT DISTINCT agent_id FROM pending_adjudications WHERE status = ?",
    "find_handle": "SELECT agent_id FROM pending_adjudications WHERE handle_id = ?",
    **ERASE_SQL,
    **TERM_SQL,
}
