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
import re
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar

import psycopg
from psycopg import errors as pg_errors
from psycopg.conninfo import conninfo_to_dict
from psycopg_pool import ConnectionPool, PoolClosed, PoolTimeout, TooManyRequests

from mempill.clock import system_clock
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
    EVERY_AGENT,
    SCOPED_TRY_LOCK,
    Access,
    begin_read,
    read_access,
)
from mempill.stores.pgschema import apply_migrations, check_schema
from mempill.stores.sql import SQL, SqlSession

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
}
LEDGER_KEY = "ledger_agent_seq"  # the (agent_id, stream_seq) primary key of the ledger
LOCK = "SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))"
ZERO = timedelta(0)
MAX_TIMEOUT = 86_400  # seconds: longer waits are refused (and would overflow libpq's int)


#: Subject and predicate are found through 64-bit hashes (migration 2: a btree index row
#: cannot hold 1,024 characters of CJK text), stored as the columns subject_key and
#: predicate_key (migration 3: under row-level security only a condition without a
#: non-LEAKPROOF function of a column can seek an index). The line's parameters, in the
#: order the shared SQL passes them, become a one-row subquery `k`, so each is used twice:
#: hashed, to seek the index, and as text, to compare on the rows it finds.
HASH = "hashtextextended({}, 0)"
_LINE = re.compile(r"FROM (\w+) WHERE agent_id = \? AND subject = \?( AND predicate = \?)?")


def _by_hash(match: re.Match[str]) -> str:
    table, predicate = match.group(1), match.group(2) is not None
    keys = ["?::text AS k_agent", "?::text AS k_subject"]
    on = [
        "agent_id = k.k_agent",
        f"subject_key = {HASH.format('k.k_subject')}",
        "subject = k.k_subject",
    ]
    if predicate:
        keys.append("?::text AS k_predicate")
        on[2:2] = [f"predicate_key = {HASH.format('k.k_predicate')}"]
        on.append("predicate = k.k_predicate")
    return f"FROM (SELECT {', '.join(keys)}) AS k JOIN {table} ON {' AND '.join(on)} WHERE true"


def hashed_lines(sql: str) -> str:
    """The shared SQL with every lookup by (agent, subject[, predicate]) seeking by hash."""
    return _LINE.sub(_by_hash, sql)


class PostgresDialect:
    """`?` placeholders become `%s` once per query; times are `timestamptz`, read as UTC."""

    name = "postgres"
    overrides: ClassVar[dict[str, str]] = {
        # Text ordering in SQL must match SQLite's byte order, hence the C collation.
        "children": SQL["children"] + ' COLLATE "C"',
        "insert_terms": "INSERT INTO terms (agent_id, term, claim_ref) "
        "SELECT ?, e->>0, e->>1 FROM jsonb_array_elements(?::jsonb) AS e",
        # OFFSET 0 keeps the hashes computed in the subquery: pulled up into the join
        # condition, a function of a column there would stop the index seek (see HASH).
        "line_versions": "SELECT l.subject, l.predicate, max(l.stream_seq) "
        "FROM (SELECT ?::text AS k_agent, ?::jsonb AS k_subjects) AS k "
        "CROSS JOIN LATERAL (SELECT x AS k_subject, hashtextextended(x, 0) AS k_hash "
        "FROM jsonb_array_elements_text(k.k_subjects) AS e(x) OFFSET 0) AS s "
        "JOIN ledger l ON l.agent_id = k.k_agent AND l.subject_key = s.k_hash "
        "AND l.subject = s.k_subject GROUP BY l.subject, l.predicate",
    }

    def __init__(self) -> None:
        texts = {**{k: hashed_lines(v) for k, v in SQL.items()}, **self.overrides}
        self._sql = {key: text.replace("%", "%%").replace("?", "%s") for key, text in texts.items()}

    def sql(self, key: str) -> str:
        return self._sql[key]

    def time_param(self, moment: datetime) -> datetime:
        return moment

    def time_value(self, stored: Any) -> datetime:
        if not isinstance(stored, datetime) or stored.utcoffset() is None:
            raise StorageError(f"postgres: expected a timestamptz, got {stored!r}")
        if stored.utcoffset() == ZERO:
            return stored.replace(tzinfo=UTC)
        return stored.astimezone(UTC)


DIALECT = PostgresDialect()


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
            check=ConnectionPool.check_connection,
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
        """Every new pooled connection: UTC session time zone, read-only transactions for a
        read-only store, optional lab durability."""
        conn.execute("SET TIME ZONE 'UTC'")
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
        recorded), COMMIT."""
        if self.read_only:
            raise read_only_error("write")
        self.access.check(agent_id)
        with self._connection() as conn:
            try:
                cursor = conn.cursor()
                cursor.execute("BEGIN", prepare=False)
                lock_wait_us, held = _lock_agent(cursor, agent_id)
                session = SqlSession(cursor, DIALECT, agent_id)
                yield session
                session.flush()
                if self.record_stats:
                    session.record_stats(
                        lock_wait_us, (time.perf_counter_ns() - held) // 1000, system_clock()
                    )
                cursor.execute("COMMIT", prepare=False)
            except psycopg.Error as e:
                _rollback(conn)
                raise translate(e) from e
            except BaseException:
                _rollback(conn)
                raise

    @contextmanager
    def read(self, agent_id: str) -> Iterator[SqlSession]:
        """One consistent snapshot: a REPEATABLE READ READ ONLY transaction.

        Once the caller has read everything, ending the transaction cannot change what
        it saw, so a connection lost at that point is left to the pool, not raised.
        """
        self.access.check(agent_id)
        with self._connection() as conn:
            try:
                cursor = conn.cursor()
                cursor.execute(begin_read(agent_id), prepare=False)
                yield SqlSession(cursor, DIALECT, agent_id)
            except psycopg.Error as e:
                _rollback(conn)
                raise translate(e) from e
            except BaseException:
                _rollback(conn)
                raise
            with suppress(psycopg.Error):
                cursor.execute("COMMIT", prepare=False)

    def may_write(self, agent_id: str) -> bool:
        """A shared database is never bound to one agent; a role granted some agents
        only (row-level security) writes only those (others are Rejected/write_authority).
        A read-only store writes nothing."""
        return not self.read_only and self.access.allows(agent_id)

    def _column(self, key: str, *params: Any) -> list[str]:
        """A store-wide query, scoped to every agent the role may reach."""
        with self._connection() as conn:
            try:
                cursor = conn.cursor()
                cursor.execute(begin_read(EVERY_AGENT), prepare=False)
                rows = cursor.execute(DIALECT.sql(key), params).fetchall()
                cursor.execute("COMMIT", prepare=False)
            except psycopg.Error as e:
                _rollback(conn)
                raise translate(e) from e
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


def _lock_agent(cursor: psycopg.Cursor[Any], agent_id: str) -> tuple[int, int]:
    """Take the agent's write lock; return (µs waited, perf_counter_ns when held).

    An uncontended lock (the try succeeds) waited 0 µs; otherwise the wait runs from
    asking (the try) to holding (the blocking call's return).
    """
    asked = time.perf_counter_ns()
    row = cursor.execute(SCOPED_TRY_LOCK, (agent_id, agent_id)).fetchone()
    if row is not None and row[1]:
        return 0, time.perf_counter_ns()
    cursor.execute(LOCK, (agent_id,))
    held = time.perf_counter_ns()
    return (held - asked) // 1000, held


def _rollback(conn: Connection) -> None:
    """Roll back if the connection still works; a broken one is discarded by the pool."""
    if conn.closed:
        return
    with suppress(psycopg.Error):
        conn.rollback()
