-- mempill schema v1 (PostgreSQL). The same tables and columns as the SQLite schema, so
-- the SQL in mempill/stores/sql.py is shared; times are timestamptz (UTC, microseconds),
-- values and JSON documents are canonical text (value_jsonb is a generated copy for
-- analysis only). Claims, ledger entries, assertions and edges are append-only; only the
-- outbox (pending_adjudications.status / notified) is ever updated.
-- Every table and every index leads with agent_id, so the schema can be distributed by
-- agent (e.g. Citus) without change. There is no store_meta table: a PostgreSQL store is
-- shared by all agents and is never bound to one.

CREATE TABLE claims (
    agent_id text NOT NULL,
    claim_ref text NOT NULL,
    subject text NOT NULL,
    predicate text NOT NULL,
    value text NOT NULL,
    value_jsonb jsonb GENERATED ALWAYS AS (value::jsonb) STORED,
    cardinality text NOT NULL,
    provenance text NOT NULL,
    value_confidence double precision NOT NULL,
    valid_time_confidence double precision NOT NULL,
    criticality text NOT NULL,
    valid_from timestamptz,
    valid_from_granularity text,
    valid_until timestamptz,
    valid_until_granularity text,
    tx_time timestamptz NOT NULL,
    stream_seq bigint NOT NULL,
    derived_from text NOT NULL,
    derivation_depth integer,
    external_anchor text,
    CONSTRAINT claims_pkey PRIMARY KEY (agent_id, claim_ref)
);
CREATE INDEX claims_line ON claims (agent_id, subject, predicate, stream_seq);

CREATE TABLE ledger (
    agent_id text NOT NULL,
    stream_seq bigint NOT NULL,
    entry_id text NOT NULL,
    claim_ref text,
    event_kind text NOT NULL,
    disposition text NOT NULL,
    rationale text NOT NULL,
    recorded_at timestamptz NOT NULL,
    subject text,
    predicate text,
    request_ref text,
    CONSTRAINT ledger_agent_seq PRIMARY KEY (agent_id, stream_seq),
    CONSTRAINT ledger_claim_fkey FOREIGN KEY (agent_id, claim_ref)
        REFERENCES claims (agent_id, claim_ref)
);
CREATE INDEX ledger_line ON ledger (agent_id, subject, predicate, stream_seq);
CREATE INDEX ledger_claim ON ledger (agent_id, claim_ref, stream_seq);
CREATE INDEX ledger_request ON ledger (agent_id, request_ref, stream_seq)
    WHERE request_ref IS NOT NULL;

CREATE TABLE assertions (
    agent_id text NOT NULL,
    assertion_ref text NOT NULL,
    claim_ref text NOT NULL,
    subject text NOT NULL,
    predicate text NOT NULL,
    kind text NOT NULL,
    bound_at timestamptz,
    bound_granularity text,
    provenance text NOT NULL,
    confidence double precision NOT NULL,
    tx_time timestamptz NOT NULL,
    stream_seq bigint NOT NULL,
    handle_id text,
    CONSTRAINT assertions_pkey PRIMARY KEY (agent_id, assertion_ref),
    CONSTRAINT assertions_claim_fkey FOREIGN KEY (agent_id, claim_ref)
        REFERENCES claims (agent_id, claim_ref)
);
CREATE INDEX assertions_line ON assertions (agent_id, subject, predicate, stream_seq);
CREATE INDEX assertions_claim ON assertions (agent_id, claim_ref, stream_seq);

CREATE TABLE edges (
    agent_id text NOT NULL,
    kind text NOT NULL,
    from_ref text NOT NULL,
    to_ref text NOT NULL,
    tx_time timestamptz NOT NULL,
    CONSTRAINT edges_pkey PRIMARY KEY (agent_id, from_ref, kind, to_ref),
    CONSTRAINT edges_from_fkey FOREIGN KEY (agent_id, from_ref)
        REFERENCES claims (agent_id, claim_ref),
    CONSTRAINT edges_to_fkey FOREIGN KEY (agent_id, to_ref)
        REFERENCES claims (agent_id, claim_ref)
);
CREATE INDEX edges_to ON edges (agent_id, to_ref, kind);

CREATE TABLE pending_adjudications (
    agent_id text NOT NULL,
    handle_id text NOT NULL,
    subject text NOT NULL,
    predicate text NOT NULL,
    challenger_ref text NOT NULL,
    incumbent_refs text NOT NULL,
    request text NOT NULL,
    queued_at timestamptz NOT NULL,
    expires_at timestamptz,
    status text NOT NULL CHECK (status IN ('pending', 'resolved', 'expired')),
    notified integer NOT NULL DEFAULT 0 CHECK (notified IN (0, 1)),
    CONSTRAINT pending_adjudications_pkey PRIMARY KEY (agent_id, handle_id),
    CONSTRAINT pending_challenger_fkey FOREIGN KEY (agent_id, challenger_ref)
        REFERENCES claims (agent_id, claim_ref)
);
CREATE INDEX pending_line ON pending_adjudications (agent_id, subject, predicate, status);
CREATE INDEX pending_status ON pending_adjudications (agent_id, status, queued_at);

CREATE TABLE write_stats (
    agent_id text NOT NULL,
    stat_id bigint GENERATED ALWAYS AS IDENTITY,
    first_seq bigint,
    last_seq bigint,
    lock_wait_us bigint NOT NULL,
    txn_us bigint NOT NULL,
    backend text NOT NULL,
    pid integer NOT NULL,
    recorded_at timestamptz NOT NULL,
    CONSTRAINT write_stats_pkey PRIMARY KEY (agent_id, stat_id)
);
