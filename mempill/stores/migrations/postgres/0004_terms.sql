-- mempill schema v4 (PostgreSQL): the word index of text search (docs/search.md).
-- Derived rows: the distinct words of each claim's subject, predicate and value, written in
-- the claim's transaction. They only find candidate lines (a range of terms per query word:
-- COLLATE "C" makes the ranges code point ranges, as SQLite's BINARY); the engine decides
-- every hit. `reindex` rebuilds them; erasure deletes an erased line's rows. Existing
-- claims get no terms here: run `mempill reindex` (or engine.reindex) for each agent.
-- Row-level security as every agent table (migration 3); runtime roles get SELECT, INSERT
-- and DELETE on it (`mempill pg grant-*`): DELETE because reindex and erasure need it.
CREATE TABLE terms (
    agent_id text NOT NULL,
    term text COLLATE "C" NOT NULL,
    claim_ref text NOT NULL,
    CONSTRAINT terms_pkey PRIMARY KEY (agent_id, term, claim_ref)
);
ALTER TABLE terms ENABLE ROW LEVEL SECURITY;
ALTER TABLE terms FORCE ROW LEVEL SECURITY;
-- The same policy as every other agent table, copied from `claims` (migration 3) so the
-- two can never drift apart.
DO $$
DECLARE
    scope text;
BEGIN
    SELECT qual INTO STRICT scope FROM pg_policies
     WHERE schemaname = current_schema() AND tablename = 'claims' AND policyname = 'agent_scope';
    EXECUTE format('CREATE POLICY agent_scope ON terms AS PERMISSIVE FOR ALL TO PUBLIC USING (%s)',
                   scope);
END
$$;
