"""The PostgreSQL schema: embedded migrations applied under an advisory lock, or (for a
read-only store) only checked, in a read-only transaction."""

from __future__ import annotations

from contextlib import suppress
from typing import Any

import psycopg

from mempill.errors import StorageError
from mempill.stores.sql import embedded_migrations

Connection = psycopg.Connection[tuple[Any, ...]]
MIGRATION_KEY = "hashtextextended('mempill.migrations:' || current_schema(), 0)"
VERSION_TABLE = (
    "CREATE TABLE IF NOT EXISTS schema_migrations (version integer PRIMARY KEY, "
    "name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())"
)


def migrations() -> list[tuple[int, str, str]]:
    """(version, name, sql) of the embedded postgres migrations, in order."""
    return embedded_migrations("postgres")


def apply_migrations(conn: Connection) -> tuple[int, ...]:
    """Apply the missing migrations in the current schema; return the versions applied.

    Runs on an autocommit connection under a session advisory lock keyed by the schema,
    so concurrent first connects apply each migration exactly once; each migration and
    its schema_migrations row commit together.
    """
    schema = _creation_schema(conn)
    if not _pending(conn, schema):
        return ()  # nothing to do and no DDL: a runtime role (no CREATE) may open it
    conn.execute(f"SELECT pg_advisory_lock({MIGRATION_KEY})")
    try:
        conn.execute(VERSION_TABLE)
        done = []
        for version, name, script in _missing(conn, schema):
            with conn.transaction():
                conn.execute(script)
                conn.execute(
                    "INSERT INTO schema_migrations (version, name) VALUES (%s, %s)", (version, name)
                )
            done.append(version)
        return tuple(done)
    finally:
        with suppress(psycopg.Error):
            conn.execute(f"SELECT pg_advisory_unlock({MIGRATION_KEY})")


def check_schema(conn: Connection, where: str) -> None:
    """Read-only: every embedded migration must be recorded. One READ ONLY transaction,
    no lock, no DDL: a role with USAGE and SELECT alone may run it."""
    with conn.transaction():
        conn.execute("SET TRANSACTION READ ONLY")
        schema = _creation_schema(conn)
        missing = [version for version, _, _ in _pending(conn, schema)]
    if not missing:
        return
    raise StorageError(
        f"postgres: schema {schema!r} of {where} needs migration(s) "
        f"{', '.join(map(str, missing))}; a read-only store runs none: open it once without "
        "read_only, as the schema's owner, to migrate it"
    )


def _creation_schema(conn: Connection) -> str:
    """The schema new tables go to; a search_path naming no existing schema is an error."""
    row = conn.execute("SELECT current_schema()").fetchone()
    if row is None or row[0] is None:
        path = conn.execute("SHOW search_path").fetchone()
        raise StorageError(
            f"postgres: no schema to create tables in; search_path {path and path[0]!r} "
            "names no existing schema (that this role has USAGE on)"
        )
    return str(row[0])


def _pending(conn: Connection, schema: str) -> list[tuple[int, str, str]]:
    """The embedded migrations not recorded yet (all of them before the version table
    exists), read without any lock or DDL."""
    row = conn.execute("SELECT to_regclass('schema_migrations') IS NOT NULL").fetchone()
    return _missing(conn, schema) if row and row[0] else migrations()


def _missing(conn: Connection, schema: str) -> list[tuple[int, str, str]]:
    """The embedded migrations not applied yet; a schema newer than the code is refused."""
    applied = {int(r[0]) for r in conn.execute("SELECT version FROM schema_migrations")}
    known = migrations()
    newest = max(version for version, _, _ in known)
    if applied and max(applied) > newest:
        raise StorageError(
            f"postgres: schema {schema!r} is at migration {max(applied)}, newer than this "
            f"mempill knows ({newest}); upgrade mempill"
        )
    return [m for m in known if m[0] not in applied]
