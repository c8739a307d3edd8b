"""Who may reach which agent in a PostgreSQL store: row-level security (migration 3).

The server enforces it: every table holding agent rows has a forced policy keyed by
`agent_id`, and the table `mempill_roles` says which role may see which agent (`admin`:
the owner, every agent when unscoped; `service`: a shared runtime role, only the agent
its transaction is scoped to; `agent`: one agent's own role). The engine scopes each
transaction with `set_config('mempill.agent_id', …, true)`; this module holds that SQL,
reads what the connected role was granted (so a refused agent gets a clear answer
before any SQL runs), and writes the GRANT/REVOKE scripts `mempill pg grant-agent`,
`grant-service` and `revoke` run or print.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from psycopg import sql

from mempill.errors import PermissionDeniedError

#: The transaction-local setting the policies read; '*' scopes to every agent (store-wide).
SCOPE = "mempill.agent_id"
EVERY_AGENT = "*"
#: Scope the write transaction and try the agent's lock in one statement.
SCOPED_TRY_LOCK = (
    f"SELECT set_config('{SCOPE}', %s, true), pg_try_advisory_xact_lock(hashtextextended(%s, 0))"
)
#: Scope the write transaction and wait for the agent's lock in one statement.
SCOPED_LOCK = (
    f"SELECT set_config('{SCOPE}', %s, true), pg_advisory_xact_lock(hashtextextended(%s, 0))"
)
#: A read: one snapshot, scoped to the agent (two statements, sent together).
BEGIN_READ = "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY"
SCOPE_READ = f"SELECT set_config('{SCOPE}', %s, true)"
#: The tables a runtime role writes (INSERT) and reads; append-only but for the outbox
#: and the word index `terms` (derived rows, migration 4).
AGENT_TABLES = (
    "claims", "ledger", "assertions", "edges", "pending_adjudications", "write_stats", "terms",
)  # fmt: skip
#: The only table whose rows a runtime role may DELETE: the word index, which `reindex`
#: rebuilds and an erasure clears (derived data; a role without it could not do either).
DERIVED_TABLES = ("terms",)
#: The only columns any runtime role may UPDATE (the outbox of reference §6).
OUTBOX_UPDATES = ("status", "notified")
#: What an erasure scrubs (docs/erasure.md): UPDATE of exactly these columns is granted
#: only with `erase=True` (`mempill pg grant-agent|grant-service --erase`).
ERASE_UPDATES = {
    "claims": (
        "subject", "predicate", "value", "valid_from", "valid_from_granularity",
        "valid_until", "valid_until_granularity", "external_anchor",
    ),
    "ledger": ("subject", "predicate", "rationale"),
    "assertions": ("subject", "predicate", "bound_at", "bound_granularity"),
    "pending_adjudications": ("subject", "predicate", "request", "status"),
}  # fmt: skip

ACCESS = (
    "SELECT r.rolsuper OR r.rolbypassrls, current_user, "
    "ARRAY(SELECT g.kind || ':' || g.agent_id FROM mempill_roles g "
    "      WHERE g.role_name = current_user ORDER BY 1) "
    "FROM pg_roles r WHERE r.rolname = current_user"
)


@dataclass(frozen=True, slots=True)
class Access:
    """What the connected role may reach: `agents` None means every agent."""

    role: str
    agents: frozenset[str] | None

    def allows(self, agent_id: str) -> bool:
        return self.agents is None or agent_id in self.agents

    def check(self, agent_id: str) -> None:
        if not self.allows(agent_id):
            mine = ", ".join(sorted(self.agents or ())) or "none"
            raise PermissionDeniedError(
                f"postgres: role {self.role!r} may not reach agent {agent_id!r} "
                f"(its agents: {mine}); the store's owner grants it with "
                f"`mempill pg grant-agent {agent_id} --role {self.role}`"
            )


def read_access(conn: Any) -> Access:
    """The connected role's reach: superusers, BYPASSRLS, admin and service roles reach
    every agent; an agent role its granted agents; any other role none."""
    row = conn.execute(ACCESS).fetchone()
    bypass, role, grants = bool(row[0]), str(row[1]), list(row[2])
    kinds = {g.split(":", 1)[0] for g in grants}
    if bypass or kinds & {"admin", "service"}:
        return Access(role, None)
    return Access(role, frozenset(g.split(":", 1)[1] for g in grants if g.startswith("agent:")))


# ---------------------------------------------------------------- granting roles


def grant_script(
    schema: str,
    role: str,
    agent_id: str | None,
    *,
    create: bool,
    password: str | None,
    read_only: bool = False,
    erase: bool = False,
) -> list[sql.Composed]:
    """Create `role` if asked (LOGIN; with a password when one is given) and let it reach
    one agent (`agent_id`) or, as a service role, the agent of each transaction (None):
    schema usage, SELECT and INSERT on the agent tables, UPDATE of the outbox columns,
    SELECT of the version and role tables, DELETE of the derived word index (`terms`:
    reindex and erasure). No UPDATE/DELETE of append-only rows, no DDL.
    `read_only`: SELECT alone (no INSERT, no UPDATE), for `open_postgres(read_only=True)`;
    a role granted more before keeps it (revoke first). `erase`: also UPDATE of the columns
    an erasure scrubs (ERASE_UPDATES), which `Engine.erase` needs; without it the role's
    erase raises PermissionDeniedError and changes nothing."""
    ident, schema_ident = sql.Identifier(role), sql.Identifier(schema)
    script: list[sql.Composed] = []
    if create:
        login = sql.SQL("CREATE ROLE {} LOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE")
        if password is None:
            script.append(login.format(ident))
        else:
            script.append(
                sql.SQL("{} PASSWORD {}").format(login.format(ident), sql.Literal(password))
            )
    tables = sql.SQL(", ").join(sql.Identifier(schema, t) for t in AGENT_TABLES)
    columns = sql.SQL(", ").join(map(sql.Identifier, OUTBOX_UPDATES))
    script += [
        sql.SQL("GRANT USAGE ON SCHEMA {} TO {}").format(schema_ident, ident),
        sql.SQL("GRANT SELECT ON {}, {} TO {}").format(
            sql.Identifier(schema, "schema_migrations"),
            sql.Identifier(schema, "mempill_roles"),
            ident,
        ),
        sql.SQL(
            "GRANT SELECT ON {} TO {}" if read_only else "GRANT SELECT, INSERT ON {} TO {}"
        ).format(tables, ident),
    ]
    if not read_only:
        script.append(
            sql.SQL("GRANT UPDATE ({}) ON {} TO {}").format(
                columns, sql.Identifier(schema, "pending_adjudications"), ident
            )
        )
        script.append(
            sql.SQL("GRANT DELETE ON {} TO {}").format(
                sql.SQL(", ").join(sql.Identifier(schema, t) for t in DERIVED_TABLES), ident
            )
        )
    if erase and not read_only:
        script += [
            sql.SQL("GRANT UPDATE ({}) ON {} TO {}").format(
                sql.SQL(", ").join(map(sql.Identifier, names)), sql.Identifier(schema, table), ident
            )
            for table, names in ERASE_UPDATES.items()
        ]
    script += [
        sql.SQL(
            "INSERT INTO {} (role_name, agent_id, kind) VALUES ({}, {}, {}) "
            "ON CONFLICT (role_name, agent_id) DO NOTHING"
        ).format(
            sql.Identifier(schema, "mempill_roles"),
            sql.Literal(role),
            sql.Literal(agent_id or EVERY_AGENT),
            sql.Literal("agent" if agent_id else "service"),
        ),
    ]
    return script


def revoke_script(
    schema: str, role: str, agent_id: str | None, *, last: bool
) -> list[sql.Composed]:
    """Take one agent (or the service grant, None) from `role`; when it was the role's
    last grant, also its privileges on the schema (the role itself is kept)."""
    ident = sql.Identifier(role)
    script: list[sql.Composed] = [
        sql.SQL("DELETE FROM {} WHERE role_name = {} AND agent_id = {} AND kind <> 'admin'").format(
            sql.Identifier(schema, "mempill_roles"),
            sql.Literal(role),
            sql.Literal(agent_id or EVERY_AGENT),
        )
    ]
    if last:
        tables = sql.SQL(", ").join(
            sql.Identifier(schema, t) for t in (*AGENT_TABLES, "schema_migrations", "mempill_roles")
        )
        script += [
            sql.SQL("REVOKE ALL ON {} FROM {}").format(tables, ident),
            sql.SQL("REVOKE USAGE ON SCHEMA {} FROM {}").format(sql.Identifier(schema), ident),
        ]
    return script
