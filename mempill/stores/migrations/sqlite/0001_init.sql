-- mempill schema v1 (SQLite). Times are fixed-width UTC text: YYYY-MM-DDTHH:MM:SS.ffffffZ.
-- Claims, ledger entries, assertions and edges are append-only; only the outbox
-- (pending_adjudications.status / notified) is ever updated.

CREATE TABLE store_meta (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

CREATE TABLE claims (
    agent_id TEXT NOT NULL,
    claim_ref TEXT NOT NULL,
    subject TEXT NOT NULL,
    predicate TEXT NOT NULL,
    value TEXT NOT NULL,
    cardinality TEXT NOT NULL,
    provenance TEXT NOT NULL,
    value_confidence REAL NOT NULL,
    valid_time_confidence REAL NOT NULL,
    criticality TEXT NOT NULL,
    valid_from TEXT,
    valid_from_granularity TEXT,
    valid_until TEXT,
    valid_until_granularity TEXT,
    tx_time TEXT NOT NULL,
    stream_seq INTEGER NOT NULL,
    derived_from TEXT NOT NULL,
    derivation_depth INTEGER,
    external_anchor TEXT,
    PRIMARY KEY (agent_id, claim_ref)
);
CREATE INDEX claims_line ON claims (agent_id, subject, predicate, stream_seq);

CREATE TABLE ledger (
    agent_id TEXT NOT NULL,
    stream_seq INTEGER NOT NULL,
    entry_id TEXT NOT NULL,
    claim_ref TEXT,
    event_kind TEXT NOT NULL,
    disposition TEXT NOT NULL,
    rationale TEXT NOT NULL,
    recorded_at TEXT NOT NULL,
    subject TEXT,
    predicate TEXT,
    request_ref TEXT,
    PRIMARY KEY (agent_id, stream_seq),
    FOREIGN KEY (agent_id, claim_ref) REFERENCES claims (agent_id, claim_ref)
);
CREATE INDEX ledger_line ON ledger (agent_id, subject, predicate, stream_seq);
CREATE INDEX ledger_claim ON ledger (agent_id, claim_ref, stream_seq);
CREATE INDEX ledger_request ON ledger (agent_id, request_ref, stream_seq)
    WHERE request_ref IS NOT NULL;

CREATE TABLE assertions (
    agent_id TEXT NOT NULL,
    assertion_ref TEXT NOT NULL,
    claim_ref TEXT NOT NULL,
    subject TEXT NOT NULL,
    predicate TEXT NOT NULL,
    kind TEXT NOT NULL,
    bound_at TEXT,
    bound_granularity TEXT,
    provenance TEXT NOT NULL,
    confidence REAL NOT NULL,
    tx_time TEXT NOT NULL,
    stream_seq INTEGER NOT NULL,
    handle_id TEXT,
    PRIMARY KEY (agent_id, assertion_ref),
    FOREIGN KEY (agent_id, claim_ref) REFERENCES claims (agent_id, claim_ref)
);
CREATE INDEX assertions_line ON assertions (agent_id, subject, predicate, stream_seq);
CREATE INDEX assertions_claim ON assertions (agent_id, claim_ref, stream_seq);

CREATE TABLE edges (
    agent_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    from_ref TEXT NOT NULL,
    to_ref TEXT NOT NULL,
    tx_time TEXT NOT NULL,
    PRIMARY KEY (agent_id, from_ref, kind, to_ref),
    FOREIGN KEY (agent_id, from_ref) REFERENCES claims (agent_id, claim_ref),
    FOREIGN KEY (agent_id, to_ref) REFERENCES claims (agent_id, claim_ref)
);
CREATE INDEX edges_to ON edges (agent_id, to_ref, kind);

CREATE TABLE pending_adjudications (
    agent_id TEXT NOT NULL,
    handle_id TEXT NOT NULL,
    subject TEXT NOT NULL,
    predicate TEXT NOT NULL,
    challenger_ref TEXT NOT NULL,
    incumbent_refs TEXT NOT NULL,
    request TEXT NOT NULL,
    queued_at TEXT NOT NULL,
    expires_at TEXT,
    status TEXT NOT NULL CHECK (status IN ('pending', 'resolved', 'expired')),
    notified INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (agent_id, handle_id),
    FOREIGN KEY (agent_id, challenger_ref) REFERENCES claims (agent_id, claim_ref)
);
CREATE INDEX pending_line ON pending_adjudications (agent_id, subject, predicate, status);
CREATE INDEX pending_status ON pending_adjudications (agent_id, status, queued_at);

CREATE TABLE write_stats (
    stat_id INTEGER PRIMARY KEY,
    agent_id TEXT NOT NULL,
    first_seq INTEGER,
    last_seq INTEGER,
    lock_wait_us INTEGER NOT NULL,
    txn_us INTEGER NOT NULL,
    backend TEXT NOT NULL,
    pid INTEGER NOT NULL,
    recorded_at TEXT NOT NULL
);
CREATE INDEX write_stats_agent ON write_stats (agent_id, stat_id);
