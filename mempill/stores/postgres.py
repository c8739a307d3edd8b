"""PostgreSQL, topology B (reference §8.2): one shared database, true per-agent concurrency.

Each write takes a pooled connection, opens a transaction and takes the agent's
transaction-scoped advisory lock on the 64-bit key `hashtextextended(agent_id, 0)`, so
writes of one agent serialize across threads and processes while other agents proceed
in parallel; `PRIMARY KEY (agent_id, stream_seq)` on the ledger is the optimistic
backstop. Reads run in a REPEATABLE READ READ ONLY transaction (one snapshot). The SQL
is the shared text of `stores/sql.py`; embedded migrations are applied once, on first
connect, under an advisory lock keyed by the current schema.
"""

from __future__ import annotations

import math
import select
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg import errors as pg_errors
from psycopg.conninfo import conninfo_to_dict
from psycopg_pool import ConnectionPool, PoolClosed, PoolTimeout, TooManyRequests

from mempill.clock import system_clock
from mempill.core.model import LineRows
from mempill.core.parse import show
from mempill.errors import (
    ConfigError,
    IntegrityError,
    PermissionDeniedError,
    StorageError,
    TransientStorageError,
)
from mempill.ports import read_only_error
from mempill.secrets import check_transport, redact, scrub
from mempill.stores.pgaccess import (
    BEGIN_READ,
    EVERY_AGENT,
    SCOPE_READ,
    SCOPED_LOCK,
    SCOPED_TRY_LOCK,
    Access,
    read_access,
)
from mempill.stores.pgcursor import HeldCursor
from mempill.stores.pgdialect import PREPARED
from mempill.stores.pgschema import apply_migrations, check_schema
from mempill.stores.sql import EMPTY_LINE, LINE_QUERIES, SqlSession

Connection = psycopg.Connection[tuple[Any, ...]]
LAB_SYNCHRONOUS_COMMIT = ("on", "off", "local", "remote_write", "remote_apply")
#: SQLSTATEs that are safe to retry: the whole transaction is replayed by the engine.
TRANSIENT_SQLSTATES = {
    "40001": "serialization failure",
    "40P01": "deadlock",
    "55P03": "lock not available",
    "57014": "statement cancelled (timeout)",
    "57P01": "server terminated the connection (admin shutdown)",
    "57P02": "server crashed (crash shutdown)",
    "57P03": "server cannot accept connections now",
    # a pooler or proxy reset the session: the connection is closed, a fresh one prepares
    "26000": "a prepared statement is missing (the session was reset)",
}
LEDGER_KEY = "ledger_agent_seq"  # the (agent_id, stream_seq) primary key of the ledger
LOCK = "SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))"
MAX_TIMEOUT = 86_400  # seconds: longer waits are refused (and would overflow libpq's int)


LineRefresh = tuple[int, LineRows]


def check_idle(conn: Connection) -> None:
    """The pool's check of a connection it hands out, with no round trip: an idle
    connection has nothing to read unless the server wrote first (the FATAL of a
    terminated backend or a shutdown) or closed it; only then is the server asked
    (and a dead connection replaced). A connection that breaks later fails its
    statement, and the engine retries the whole transaction."""
    if conn.closed or conn.broken:
        raise psycopg.OperationalError("the pooled connection is closed")
    if _readable(conn.fileno()):
        ConnectionPool.check_connection(conn)


def _readable(fd: int) -> bool:
    """Whether the socket has something to read (or hung up), without waiting. poll, where
    there is one: select cannot watch a descriptor numbered 1,024 or more."""
    if hasattr(select, "poll"):
        poller = select.poll()
        poller.register(fd, select.POLLIN)
        return bool(poller.poll(0))
    return bool(select.select([fd], [], [], 0)[0])


def translate(error: BaseException) -> StorageError:
    """The one place driver errors become mempill errors (callers chain the cause).

    Lost connections, shutdowns, serialization failures, deadlocks, lock and pool
    timeouts and a duplicate ledger key (another writer raced) are transient: the engine
    retries the whole transaction. Other constraint violations are IntegrityError.
    """
    message = str(error).strip() or type(error).__name__
    if isinstance(error, PoolClosed):
        return StorageError(f"postgres: the store is closed ({message})")
    if isinstance(error, (PoolTimeout, TooManyRequests)):
        return TransientStorageError(f"postgres: no pooled connection available: {message}")
    sqlstate = getattr(error, "sqlstate", None)
    if sqlstate in TRANSIENT_SQLSTATES:
        return TransientStorageError(f"postgres: {TRANSIENT_SQLSTATES[sqlstate]}: {message}")
    if sqlstate is not None and sqlstate.startswith("08"):
        return TransientStorageError(f"postgres: connection failure: {message}")
    if sqlstate is None and isinstance(error, psycopg.OperationalError):
        return TransientStorageError(f"postgres: connection lost: {message}")
    if isinstance(error, pg_errors.UniqueViolation) and error.diag.constraint_name == LEDGER_KEY:
        return TransientStorageError(f"postgres: another writer took this stream_seq: {message}")
    if sqlstate == "42501":  # insufficient privilege, or a row outside the role's agents
        return PermissionDeniedError(f"postgres: permission denied: {message}")
    if isinstance(error, psycopg.IntegrityError):
        return IntegrityError(f"postgres: {message}")
    return StorageError(f"postgres: {message}")


@dataclass(frozen=True, slots=True, kw_only=True)
class PoolSettings:
    """Validated pool and connection settings of one PostgresStore."""

    min_size: int = 1
    max_size: int = 20
    connect_timeout: float = 10.0
    pool_timeout: float = 30.0
    synchronous_commit: str | None = None

    def __post_init__(self) -> None:
        for name, low in (("max_size", 1), ("min_size", 0)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise ConfigError(f"pool_{name} must be an integer >= {low}, got {show(value)}")
        if self.min_size > self.max_size:
            raise ConfigError(
                f"pool_min_size ({show(self.min_size)}) must not exceed "
                f"pool_max_size ({show(self.max_size)})"
            )
        for name in ("connect_timeout", "pool_timeout"):
            value = getattr(self, name)
            number = isinstance(value, (int, float)) and not isinstance(value, bool)
            if not (number and 0 < value <= MAX_TIMEOUT):  # NaN and huge ints fail too
                raise ConfigError(
                    f"{name} must be a finite number of seconds > 0 (at most a day), "
                    f"got {show(value)}"
                )
        sync = self.synchronous_commit
        if sync is not None and sync not in LAB_SYNCHRONOUS_COMMIT:
            raise ConfigError(
                f"lab_synchronous_commit must be one of {LAB_SYNCHRONOUS_COMMIT}, got {show(sync)}"
            )

    @property
    def libpq_timeout(self) -> int:
        """libpq takes whole seconds (and treats anything below 2 as 2)."""
        return max(2, math.ceil(self.connect_timeout))


class PostgresStore:
    """The shared-database store; made by `open_postgres`."""

    backend = "postgres"
    index_block = 0  # a block's read-back would add a round trip (docs/decisions.md)

    def __init__(
        self,
        conninfo: str,
        settings: PoolSettings | None = None,
        *,
        record_stats: bool = False,
        read_only: bool = False,
    ) -> None:
        """Connect once (clear errors, migrations), then open the pool and wait for it.

        `read_only`: no migration, no DDL, no migration lock: the schema version is only
        checked, in a read-only transaction, and every pooled connection defaults to
        read-only transactions; a role with SELECT alone (`grant_script(read_only=True)`)
        can read. An InsecureConnectionWarning says when a remote host is reached without
        `sslmode=verify-full`."""
        if not isinstance(conninfo, str):
            raise ConfigError(f"conninfo must be a string, got {type(conninfo).__name__}")
        if not isinstance(read_only, bool):
            raise ConfigError(f"read_only must be True or False, got {show(read_only)}")
        try:
            params = conninfo_to_dict(conninfo)
        except psycopg.Error:
            # libpq's parse error quotes the string, which may hold a password: not shown.
            raise ConfigError(
                "invalid PostgreSQL conninfo: libpq cannot parse it (not shown: it may hold "
                "a password); use key=value pairs or a postgresql:// URI"
            ) from None
        self.settings = settings or PoolSettings()
        self.record_stats = record_stats
        self.read_only = read_only
        self._where = redact(conninfo)
        check_transport(conninfo)
        self._kwargs: dict[str, Any] = {
            "autocommit": True,
            "connect_timeout": self.settings.libpq_timeout,
        }
        if "application_name" not in params:
            self._kwargs["application_name"] = "mempill"
        self.applied_migrations = self._migrate(conninfo)
        self.pool: ConnectionPool[Connection] = ConnectionPool(
            conninfo,
            kwargs=self._kwargs,
            min_size=self.settings.min_size,
            max_size=self.settings.max_size,
            open=False,
            configure=self._configure,
            check=check_idle,
            timeout=self.settings.pool_timeout,
            name="mempill",
        )
        wait = 2.0 * self.settings.libpq_timeout
        try:
            self.pool.open(wait=True, timeout=wait)
        except PoolTimeout as e:
            self.pool.close()
            raise StorageError(
                f"postgres: the pool could not open {self.settings.min_size} connection(s) to "
                f"{self._where} within {wait:g}s"
            ) from e

    def _migrate(self, conninfo: str) -> tuple[int, ...]:
        """Apply missing migrations (read-only: check that none is missing), then read what
        the connected role may reach."""
        try:
            conn = psycopg.connect(conninfo, **self._kwargs)
        except psycopg.Error as e:
            message = scrub(str(e), conninfo)
            raise StorageError(f"postgres: cannot connect to {self._where}: {message}") from e
        doing = "reading the schema version of" if self.read_only else "migrating"
        try:
            with conn:
                applied = () if self.read_only else apply_migrations(conn)
                if self.read_only:
                    check_schema(conn, self._where)
                self.access: Access = read_access(conn)
                return applied
        except psycopg.Error as e:
            error = translate(e)
            raise type(error)(
                f"postgres: {doing} {self._where} failed: {scrub(str(e), conninfo)}"
            ) from e

    def _configure(self, conn: Connection) -> None:
        """Every new pooled connection: UTC session time zone, the store's statements
        prepared, read-only transactions for a read-only store, optional lab durability."""
        conn.execute("SET TIME ZONE 'UTC'")
        PREPARED.prepare(conn)
        if self.read_only:
            conn.execute("SET default_transaction_read_only = on")
        if self.settings.synchronous_commit is not None:
            conn.execute(
                "SELECT set_config('synchronous_commit', %s, false)",
                (self.settings.synchronous_commit,),
            )

    @contextmanager
    def _connection(self) -> Iterator[Connection]:
        """A checked connection from the pool; pool failures become mempill errors."""
        try:
            with self.pool.connection() as conn:
                yield conn
        except psycopg.Error as e:
            raise translate(e) from e

    # ---------------------------------------------------------------- the Store port

    @contextmanager
    def write(self, agent_id: str) -> Iterator[SqlSession]:
        """BEGIN, the agent's advisory lock, the caller's work (a write_stats row when
        recorded), COMMIT; statements held back until a result is read (`HeldCursor`), so
        BEGIN and the lock travel with the first read and the inserts with COMMIT: two round
        trips for an ingest on a cached line."""
        if self.read_only:
            raise read_only_error("write")
        self.access.check(agent_id)
        with self._connection() as conn:
            cursor = HeldCursor(conn)
            try:
                cursor.execute("BEGIN ISOLATION LEVEL READ COMMITTED")  # head read after the lock
                if self.record_stats:  # the wait is measured: try first (a round trip)
                    lock_wait_us, held = _lock_agent(cursor, agent_id)
                else:
                    cursor.execute(SCOPED_LOCK, (agent_id, agent_id))
                session = SqlSession(cursor, PREPARED, agent_id)
                yield session
                session.flush()
                if self.record_stats:
                    session.record_stats(
                        lock_wait_us, (time.perf_counter_ns() - held) // 1000, system_clock()
                    )
                cursor.execute("COMMIT")
                cursor.send()
            except psycopg.Error as e:
                _rollback(conn, e)
                raise translate(e) from e
            except BaseException:
                _rollback(conn)
                raise

    @contextmanager
    def read(self, agent_id: str) -> Iterator[SqlSession]:
        """One consistent snapshot: a REPEATABLE READ READ ONLY transaction (BEGIN and the
        scope travel with the first query).

        Once the caller has read everything, ending the transaction cannot change what
        it saw, so a connection lost at that point is left to the pool, not raised.
        """
        self.access.check(agent_id)
        with self._snapshot(agent_id) as session:
            yield session

    @contextmanager
    def _snapshot(self, scope: str) -> Iterator[SqlSession]:
        """`read` scoped to `scope`: an agent, or EVERY_AGENT the role may reach."""
        read = False
        with self._connection() as conn:
            cursor = HeldCursor(conn)
            try:
                cursor.execute(BEGIN_READ)
                cursor.execute(SCOPE_READ, (scope,))
                yield SqlSession(cursor, PREPARED, scope)
                read = True
                cursor.execute("COMMIT")
                cursor.send()  # with any statement the caller sent but never read
            except psycopg.Error as e:
                _rollback(conn, e)
                if not read or not (conn.closed or conn.broken):  # a statement's error
                    raise translate(e) from e
            except BaseException:
                _rollback(conn)
                raise

    def read_line(self, agent_id: str, subject: str, predicate: str, after: int) -> LineRefresh:
        """The line's version and its rows after `after`, in one snapshot and one round
        trip: BEGIN, the scope, the four queries and COMMIT sent as one message."""
        self.access.check(agent_id)
        line = (agent_id, subject, predicate)
        rows = (*line, after)
        queries = [(PREPARED.sql(k), rows if k != "line_version" else line) for k in LINE_QUERIES]
        with self._connection() as conn:
            cursor = HeldCursor(conn)
            try:
                cursor.execute(BEGIN_READ)
                cursor.execute(SCOPE_READ, (agent_id,))
                found = cursor.results([*queries, ("COMMIT", ())])
            except psycopg.Error as e:
                _rollback(conn, e)
                raise translate(e) from e
            except BaseException:
                _rollback(conn)
                raise
        version = int(found[0][0][0] or 0)
        if version <= after:
            return version, EMPTY_LINE
        return version, SqlSession(cursor, PREPARED, agent_id).line_rows(*found[1:4])

    def may_write(self, agent_id: str) -> bool:
        """A shared database is never bound to one agent; a role granted some agents
        only (row-level security) writes only those (others are Rejected/write_authority).
        A read-only store writes nothing."""
        return not self.read_only and self.access.allows(agent_id)

    def _column(self, key: str, *params: Any) -> list[str]:
        """A store-wide query, scoped to every agent the role may reach."""
        with self._snapshot(EVERY_AGENT) as session:
            rows = session.cursor.execute(PREPARED.sql(key), params).fetchall()
        return [str(r[0]) for r in rows]

    def agents(self) -> tuple[str, ...]:
        return tuple(sorted(self._column("agents")))

    def agents_with_pending(self) -> tuple[str, ...]:
        return tuple(sorted(self._column("agents_with_pending", "pending")))

    def find_handle(self, handle_id: str) -> str | None:
        found = self._column("find_handle", handle_id)
        return found[0] if found else None

    def purge(self, agent_id: str) -> None:
        """Nothing: the scrubbed rows' old versions are dead tuples until VACUUM, which an
        ordinary runtime role cannot run (docs/erasure.md says what to run)."""
        return None

    def close(self) -> None:
        """Close the pool (idempotent); in-flight work finishes or fails first."""
        if not self.pool.closed:
            self.pool.close()

    def __repr__(self) -> str:
        size = f"{self.settings.min_size}..{self.settings.max_size}"
        mode = " read-only" if self.read_only else ""
        return f"<PostgresStore {self._where} pool={size}{mode}>"


def _lock_agent(cursor: HeldCursor, agent_id: str) -> tuple[int, int]:
    """Take the agent's write lock; return (µs waited, perf_counter_ns when held).

    An uncontended lock (the try succeeds) waited 0 µs; otherwise the wait runs from
    asking (the try) to holding (the blocking call's return).
    """
    asked = time.perf_counter_ns()
    row = cursor.execute(SCOPED_TRY_LOCK, (agent_id, agent_id)).fetchone()
    if row is not None and row[1]:
        return 0, time.perf_counter_ns()
    cursor.execute(LOCK, (agent_id,)).fetchone()  # held back: the fetch sends it
    held = time.perf_counter_ns()
    return (held - asked) // 1000, held


def _rollback(conn: Connection, error: BaseException | None = None) -> None:
    """Roll back if the connection still works; a broken one is discarded by the pool, and
    so is one whose prepared statements are gone (closed here)."""
    if conn.closed:
        return
    if getattr(error, "sqlstate", None) == "26000":
        conn.close()
        return
    with suppress(psycopg.Error):
        conn.rollback()
