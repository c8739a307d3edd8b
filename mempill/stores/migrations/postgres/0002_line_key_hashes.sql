-- mempill schema v2 (PostgreSQL): the line indexes key on 64-bit hashes of subject and
-- predicate instead of the text itself.
-- A btree index row holds at most 2,704 bytes, and a subject or predicate may be 1,024
-- characters of any Unicode (up to 4 KB of UTF-8), so an index on the text refused keys
-- the contract allows. `hashtextextended(text, 0)` is immutable (hash partitioning relies
-- on it) and 8 bytes wide; the line queries (stores/postgres.py) seek these indexes by the
-- hashes and compare the text itself on the rows found, so a hash collision costs a
-- filtered row, never a wrong answer. Every index still leads with agent_id.

DROP INDEX claims_line;
CREATE INDEX claims_line ON claims
    (agent_id, hashtextextended(subject, 0), hashtextextended(predicate, 0), stream_seq);

DROP INDEX ledger_line;
CREATE INDEX ledger_line ON ledger
    (agent_id, hashtextextended(subject, 0), hashtextextended(predicate, 0), stream_seq);

DROP INDEX assertions_line;
CREATE INDEX assertions_line ON assertions
    (agent_id, hashtextextended(subject, 0), hashtextextended(predicate, 0), stream_seq);

DROP INDEX pending_line;
CREATE INDEX pending_line ON pending_adjudications
    (agent_id, hashtextextended(subject, 0), hashtextextended(predicate, 0), status);
