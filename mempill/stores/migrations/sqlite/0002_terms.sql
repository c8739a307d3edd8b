-- mempill schema v2 (SQLite): the word index of text search (docs/search.md).
-- Derived rows: the distinct words of each claim's subject, predicate and value, written in
-- the claim's transaction. They only find candidate lines (a range of terms per query word,
-- BINARY collation: code point order); the engine decides every hit. `reindex` rebuilds
-- them; erasure deletes an erased line's rows. A store written before this migration
-- finds nothing until `mempill reindex` (or engine.reindex) is run for each agent.
CREATE TABLE terms (
    agent_id TEXT NOT NULL,
    term TEXT NOT NULL,
    claim_ref TEXT NOT NULL,
    PRIMARY KEY (agent_id, term, claim_ref)
) WITHOUT ROWID;
