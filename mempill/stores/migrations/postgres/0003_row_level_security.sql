-- mempill schema v3 (PostgreSQL): tenant isolation enforced by the server.
-- (Its line-index change is explained below the policies' description.)
-- Every table holding agent rows gets row-level security, forced (it binds the tables'
-- owner too), with one policy keyed by agent_id. Who may see which agent is the table
-- mempill_roles (role_name, agent_id, kind):
--   admin   (agent '*')  the role that ran this migration (the owner): a session that has
--                        not scoped itself sees every agent (doctor, ad hoc SQL, backups);
--   service (agent '*')  a shared runtime role serving many agents from one pool: it sees
--                        only the agent its transaction is scoped to;
--   agent   (agent A)    a per-agent runtime role: it sees agent A's rows and nothing else,
--                        whatever it sets.
-- The engine scopes every transaction with set_config('mempill.agent_id', A, true)
-- (SET LOCAL): the policy then admits agent A's rows only, so even an engine bug cannot
-- read or write another agent; store-wide calls scope to '*' (the admin and service roles
-- see every agent there, an agent role its own). Superusers and BYPASSRLS roles skip all
-- of this, as PostgreSQL always lets them; runtime roles are neither (`mempill pg
-- grant-agent` / `grant-service` create them with the least privilege the engine needs).
-- The sub-selects of mempill_roles do not depend on the row, so PostgreSQL evaluates them
-- once per statement (InitPlans), not once per row.
--
-- Under a policy, PostgreSQL uses a query's condition to seek an index only if every
-- function applied to a column in it is LEAKPROOF (else it could leak rows the policy
-- hides), and hashtextextended is not: the expression indexes of migration 2 would
-- become sequential scans for runtime roles. So the hashes become stored generated
-- columns, `subject_key` and `predicate_key`, and the line indexes use them: the
-- queries compare `subject_key = hashtextextended($param, 0)` (a function of a
-- parameter only) and the text itself, as before.

DO $$
DECLARE
    t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['claims', 'ledger', 'assertions', 'pending_adjudications'] LOOP
        EXECUTE format('ALTER TABLE %I '
            'ADD COLUMN subject_key bigint '
            'GENERATED ALWAYS AS (hashtextextended(subject, 0)) STORED, '
            'ADD COLUMN predicate_key bigint '
            'GENERATED ALWAYS AS (hashtextextended(predicate, 0)) STORED', t);
    END LOOP;
END
$$;
DROP INDEX claims_line;
CREATE INDEX claims_line ON claims (agent_id, subject_key, predicate_key, stream_seq);
DROP INDEX ledger_line;
CREATE INDEX ledger_line ON ledger (agent_id, subject_key, predicate_key, stream_seq);
DROP INDEX assertions_line;
CREATE INDEX assertions_line ON assertions (agent_id, subject_key, predicate_key, stream_seq);
DROP INDEX pending_line;
CREATE INDEX pending_line ON pending_adjudications (agent_id, subject_key, predicate_key, status);

CREATE TABLE mempill_roles (
    role_name text NOT NULL,
    agent_id text NOT NULL,
    kind text NOT NULL CHECK (kind IN ('admin', 'service', 'agent')),
    CHECK ((kind = 'agent') = (agent_id <> '*')),
    CONSTRAINT mempill_roles_pkey PRIMARY KEY (role_name, agent_id)
);
INSERT INTO mempill_roles (role_name, agent_id, kind) VALUES (current_user, '*', 'admin');
-- A runtime role reads its own grants (the policies below look them up as that role).
ALTER TABLE mempill_roles ENABLE ROW LEVEL SECURITY;
CREATE POLICY own_grants ON mempill_roles FOR SELECT USING (role_name = current_user);
GRANT SELECT ON mempill_roles TO PUBLIC;

DO $$
DECLARE
    t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['claims', 'ledger', 'assertions', 'edges',
                             'pending_adjudications', 'write_stats'] LOOP
        EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', t);
        EXECUTE format('ALTER TABLE %I FORCE ROW LEVEL SECURITY', t);
        EXECUTE format($policy$
            CREATE POLICY agent_scope ON %I AS PERMISSIVE FOR ALL TO PUBLIC USING (
                CASE coalesce(current_setting('mempill.agent_id', true), '')
                    WHEN '' THEN
                        EXISTS (SELECT 1 FROM mempill_roles r
                                WHERE r.role_name = current_user AND r.kind = 'admin')
                        OR agent_id = ANY (ARRAY(SELECT r.agent_id FROM mempill_roles r
                                                 WHERE r.role_name = current_user))
                    WHEN '*' THEN
                        EXISTS (SELECT 1 FROM mempill_roles r
                                WHERE r.role_name = current_user AND r.agent_id = '*')
                        OR agent_id = ANY (ARRAY(SELECT r.agent_id FROM mempill_roles r
                                                 WHERE r.role_name = current_user))
                    ELSE
                        agent_id = current_setting('mempill.agent_id', true)
                        AND (EXISTS (SELECT 1 FROM mempill_roles r
                                     WHERE r.role_name = current_user AND r.agent_id = '*')
                             OR agent_id = ANY (ARRAY(SELECT r.agent_id FROM mempill_roles r
                                                      WHERE r.role_name = current_user)))
                END
            )$policy$, t);
    END LOOP;
END
$$;
