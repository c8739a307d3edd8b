"""`mempill --pg OWNER_DSN pg grant-agent|grant-service|revoke-agent|revoke-service`.

Runtime roles for a PostgreSQL store with row-level security (migration 3): an agent role
reaches one agent's rows (grant more agents to the same role if it serves several); a
service role serves every agent from one pool, each transaction held by the policies to
the agent the engine scoped it to. Both get only what the engine needs: no UPDATE or
DELETE of append-only rows, no DDL, no BYPASSRLS. The commands run as the store's owner
(the role that ran its migrations); `--print-sql` shows the script and changes nothing.
A password comes only from the environment variable `--password-env` names: never from
the command line (visible in `ps`), never printed, never prompted for. `--read-only`
grants SELECT alone, for a store opened read-only (`MEMPILL_READ_ONLY`, the CLI's reads).
`--erase` also grants UPDATE of exactly the columns `Engine.erase` scrubs (docs/erasure.md).
"""

from __future__ import annotations

import argparse
import os
from typing import Any

from mempill.cli.commands import Output
from mempill.cli.target import Target
from mempill.core import parse
from mempill.core.canonical import is_clean_text
from mempill.errors import ConfigError, ValidationError
from mempill.secrets import redact

MAX_ROLE_BYTES = 63  # PostgreSQL's NAMEDATALEN - 1: longer names would be truncated


def role_name(text: str) -> str:
    if not text or "\x00" in text or len(text.encode("utf-8", "surrogatepass")) > MAX_ROLE_BYTES:
        raise ValidationError(
            f"--role must be 1 to {MAX_ROLE_BYTES} bytes without NUL, got {text!r}"
        )
    if not is_clean_text(text):
        raise ValidationError(f"--role contains an unpaired surrogate: {text!r}")
    if text.lower().startswith("pg_"):
        raise ValidationError(f"--role {text!r}: names starting with pg_ are reserved")
    return text


def _arguments(args: argparse.Namespace) -> tuple[str, str | None, str | None]:
    """(role, agent or None for a service grant, password or None)."""
    role = role_name(args.role)
    wants_agent = args.action.endswith("-agent")
    if wants_agent and args.agent_id is None:
        raise ValidationError(f"pg {args.action} needs an AGENT_ID")
    if not wants_agent and args.agent_id is not None:
        raise ValidationError(f"pg {args.action} takes no AGENT_ID (a service serves every agent)")
    agent = parse.agent_id(args.agent_id) if wants_agent else None
    if args.read_only and args.action.startswith("revoke"):
        raise ValidationError("--read-only is for grant-agent and grant-service")
    if args.erase and (args.read_only or args.action.startswith("revoke")):
        raise ValidationError("--erase is for grant-agent and grant-service, without --read-only")
    password = None
    if args.password_env is not None:
        if args.action.startswith("revoke"):
            raise ValidationError("--password-env is for grant-agent and grant-service")
        password = os.environ.get(args.password_env)
        if not password:
            raise ConfigError(f"--password-env: the variable {args.password_env} is unset or empty")
    return role, agent, password


def pg_roles(target: Target, args: argparse.Namespace) -> Output:
    import psycopg

    from mempill.openers import open_postgres
    from mempill.stores.pgaccess import grant_script, revoke_script
    from mempill.stores.postgres import translate

    if not target.pg:
        raise ConfigError("`mempill pg` needs --pg DSN (or MEMPILL_PG_DSN): the store's owner")
    role, agent, password = _arguments(args)
    erase = bool(args.erase)  # --erase: UPDATE of what erase scrubs
    if not args.print_sql:
        open_postgres(target.pg, pool_min_size=0, pool_max_size=1).close()  # migrations
    try:
        with psycopg.connect(target.pg, autocommit=True) as conn:
            schema = str(_one(conn, "SELECT current_schema()"))
            exists = bool(_one(conn, "SELECT count(*) FROM pg_roles WHERE rolname = %s", role))
            grant = args.action.startswith("grant")
            create = grant and not exists
            if grant:
                if exists and args.read_only:
                    _refuse_writer(conn, schema, role)
                options = {"create": create, "read_only": args.read_only, "erase": erase}
                script = grant_script(schema, role, agent, password=password, **options)
                printable = grant_script(schema, role, agent, password=None, **options)
            else:
                others = _others(conn, schema, role, agent) if exists else 0
                script = printable = revoke_script(schema, role, agent, last=others == 0)
            shown = [q.as_string(conn) + ";" for q in printable]
            if create and password is not None:  # the secret itself is never shown
                shown[0] = f"{shown[0][:-1]} PASSWORD '…';  -- from ${args.password_env}"
            if args.print_sql:
                return Output({"sql": shown, "applied": False}, "\n".join(shown))
            if not grant and not exists:
                raise ValidationError(f"role {role!r} does not exist")
            with conn.transaction():
                for statement in script:
                    conn.execute(statement)
    except psycopg.Error as e:
        raise translate(e) from e
    what = f"agent {agent!r}" if agent else "every agent, one transaction at a time (service)"
    verb = "granted" if grant else "revoked"
    reach = ("may read" if args.read_only else "may reach") if grant else "no longer reaches"
    text = f"{verb}: role {role!r} {reach} {what} in schema {schema!r} of {redact(target.pg)}"
    if create:
        text += f"\ncreated login role {role!r}" + (
            f" (password from ${args.password_env})" if password else " (no password)"
        )
    data: dict[str, Any] = {"action": args.action, "role": role, "agent": agent,
                            "read_only": bool(args.read_only), "erase": erase,
                            "schema": schema, "applied": True, "sql": shown}  # fmt: skip
    return Output(data, text)


def _one(conn: Any, query: str, *params: Any) -> Any:
    row = conn.execute(query, params).fetchone()
    return None if row is None else row[0]


def _refuse_writer(conn: Any, schema: str, role: str) -> None:
    """A read-only grant cannot take back what the role may already do: say so."""
    from psycopg import sql

    claims = sql.Identifier(schema, "claims").as_string(conn)
    if _one(conn, "SELECT has_table_privilege(%s, to_regclass(%s), 'INSERT')", role, claims):
        raise ValidationError(
            f"role {role!r} may already write (INSERT) in schema {schema!r}: a read-only grant "
            "would not take that back; revoke its grants first (mempill pg revoke-agent / "
            "revoke-service), or grant to a new role"
        )


def _others(conn: Any, schema: str, role: str, agent: str | None) -> int:
    """How many grants the role keeps once this one is revoked (0: its last)."""
    from psycopg import sql

    query = sql.SQL(
        "SELECT count(*) FROM {} WHERE role_name = %s AND agent_id <> %s AND kind <> 'admin'"
    ).format(sql.Identifier(schema, "mempill_roles"))
    return int(_one(conn, query.as_string(conn), role, agent or "*") or 0)
