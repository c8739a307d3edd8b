"""SQLite connections: the PRAGMAs, the migrations (or, read-only, the schema check), the
translation of driver errors, and the bounded set of open agent databases.

A writable connection sets `journal_mode=WAL` (on a file: an in-memory database keeps its
memory journal), `synchronous` and the busy timeout and migrates its database. A read-only
one opens the file with a `mode=ro` URI and `PRAGMA query_only`, changes no journal mode and
runs no migration: it checks that the schema is current and refuses a store that needs a
writable open to migrate.
"""

from __future__ import annotations

import os
import resource
import sqlite3
import threading
import time
from collections import OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from mempill.clock import system_clock
from mempill.core.dates import format_tx, parse_tx
from mempill.errors import IntegrityError, StorageError, TransientStorageError
from mempill.stores.sql import SQL, embedded_migrations, split_statements
from mempill.stores.sqlite.files import foreign_schema, read_only_uri

BUSY_TIMEOUT_MS = 30_000
LAB_SYNCHRONOUS = ("FULL", "NORMAL", "OFF")
#: Agent databases a directory store keeps open at most (each holds 3 file descriptors,
#: plus 2 per idle read connection); beyond it the least recently used idle one is closed,
#: and reopened on demand. Lowered to a sixteenth of the process's file-descriptor limit
#: when that is smaller (`default_max_open`).
DEFAULT_MAX_OPEN_AGENTS = 256
#: Idle read connections kept per agent database (more are closed when returned).
MAX_IDLE_READERS = 4
#: TRUNCATE checkpoints an erasure tries (each waits up to the busy timeout for readers).
CHECKPOINT_TRIES = 3


class SQLiteDialect:
    name = "sqlite"

    def __init__(self) -> None:
        self._last: tuple[datetime | None, str] = (None, "")

    def sql(self, key: str) -> str:
        return SQL[key]

    def many(self, key: str, rows: list[tuple[Any, ...]]) -> None:
        """No bulk form: `executemany` is the fast path in-process."""
        return None

    def time_param(self, moment: datetime) -> str:
        """`format_tx`, remembering the last one: a write formats its tx time for each row."""
        last = self._last  # one tuple, read and replaced atomically: safe across threads
        if last[0] is moment:
            return last[1]
        text = format_tx(moment)
        self._last = (moment, text)
        return text

    def time_value(self, stored: Any) -> datetime:
        return parse_tx(stored)


DIALECT = SQLiteDialect()


def translate(error: sqlite3.Error) -> StorageError:
    """The one place SQLite errors become mempill errors (the cause is chained by callers)."""
    message = str(error)
    if isinstance(error, sqlite3.IntegrityError):
        return IntegrityError(f"sqlite: {message}")
    if isinstance(error, sqlite3.OperationalError) and ("locked" in message or "busy" in message):
        return TransientStorageError(f"sqlite: {message}")
    return StorageError(f"sqlite: {message}")


def migrations() -> list[tuple[int, str, str]]:
    """(version, name, sql) of the embedded sqlite migrations, in order."""
    return embedded_migrations("sqlite")


def connect(target: str, *, synchronous: str, read_only: bool = False) -> sqlite3.Connection:
    """A connection with mempill's PRAGMAs; closed again when one of them fails."""
    try:
        conn = sqlite3.connect(
            read_only_uri(target) if read_only else target,
            uri=read_only,
            isolation_level=None,
            check_same_thread=False,
            timeout=BUSY_TIMEOUT_MS / 1000,
        )
    except sqlite3.Error as e:
        raise translate(e) from e
    with closed_on_error(conn):
        conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        if read_only:
            conn.execute("PRAGMA query_only = ON")
        else:
            if target != ":memory:":  # an in-memory database keeps its "memory" journal
                mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
                if str(mode).lower() != "wal":
                    raise StorageError(f"sqlite: could not enable WAL on {target} (got {mode})")
            conn.execute(f"PRAGMA synchronous = {synchronous}")
        conn.execute("PRAGMA foreign_keys = ON")
    return conn


@contextmanager
def closed_on_error(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """Close `conn` when the block raises; a driver error leaves as a mempill error."""
    try:
        yield conn
    except BaseException as e:
        conn.close()
        if isinstance(e, sqlite3.Error):
            raise translate(e) from e
        raise


def migrate(conn: sqlite3.Connection) -> None:
    """Apply the missing embedded migrations in one IMMEDIATE transaction."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations "
            "(version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL)"
        )
        applied = {r[0] for r in conn.execute("SELECT version FROM schema_migrations")}
        for version, name, script in migrations():
            if version in applied:
                continue
            for statement in split_statements(script):
                conn.execute(statement)
            conn.execute(
                "INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)",
                (version, name, format_tx(system_clock())),
            )
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise


_template_lock = threading.Lock()
#: A migrated empty database and the process that made it (a forked child makes its own).
_template: list[tuple[int, sqlite3.Connection]] = []


def memory_database(synchronous: str) -> sqlite3.Connection:
    """A new migrated in-memory database: a page-by-page copy (SQLite's backup API) of an
    empty one the migrations made once in this process — running them costs about 1.8 ms,
    the copy about 0.3 ms, and every in-memory agent, test and conformance stream starts
    with one. The copy is a plain `:memory:` database like the original (no size cap
    beyond memory), with this connection's own PRAGMAs; only the migrations' `applied_at`
    is set to now, as running them would have."""
    conn = connect(":memory:", synchronous=synchronous)
    with closed_on_error(conn):
        with _template_lock:
            if not _template or _template[0][0] != os.getpid():
                template = connect(":memory:", synchronous=synchronous)
                with closed_on_error(template):
                    migrate(template)
                _template[:] = [(os.getpid(), template)]
            _template[0][1].backup(conn)
        conn.execute("UPDATE schema_migrations SET applied_at = ?", (format_tx(system_clock()),))
    return conn


def check_current(conn: sqlite3.Connection, target: str) -> None:
    """Read-only: the database must be an agent store whose schema is current."""
    try:
        foreign = foreign_schema(conn)
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master")}
        applied = (
            {int(r[0]) for r in conn.execute("SELECT version FROM schema_migrations")}
            if "schema_migrations" in tables
            else set()
        )
    except sqlite3.Error as e:
        if "readonly" in str(e):
            raise StorageError(
                f"sqlite: cannot read {target!r} read-only: it is a WAL database and SQLite "
                f"needs its -wal and -shm files, which are missing and cannot be created in "
                "its folder; open it once with write access (or make the folder writable)"
            ) from e
        raise StorageError(f"sqlite: cannot read {target!r}: {e}") from e
    if foreign is not None:
        raise StorageError(f"sqlite: {target!r} is not a mempill store ({foreign})")
    known = {version for version, _, _ in migrations()}
    if applied and max(applied) > max(known):
        raise StorageError(
            f"sqlite: {target!r} is at schema version {max(applied)}, newer than this "
            f"mempill knows ({max(known)}); upgrade mempill"
        )
    if known - applied:
        raise StorageError(
            f"sqlite: {target!r} needs schema migration(s) "
            f"{', '.join(map(str, sorted(known - applied)))}; a read-only open runs none: "
            "open it once without read_only to migrate it"
        )


def vacuum(conn: sqlite3.Connection, target: str) -> None:
    """After an erasure (docs/erasure.md): VACUUM rebuilds every page of the database (no
    free page or unused cell space keeps a scrubbed byte), then a TRUNCATE checkpoint
    copies the new pages into the main file, cuts it to size and empties the WAL, which
    held the old pages. A reader of another connection holding an old snapshot keeps the
    checkpoint from finishing: after the busy timeout and CHECKPOINT_TRIES tries, a
    StorageError says so (the erasure itself stays committed; erase again to retry)."""
    try:
        conn.execute("VACUUM")
        for attempt in range(CHECKPOINT_TRIES):
            busy, _, _ = conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
            if not busy:
                return
            time.sleep(0.05 * (attempt + 1))
    except sqlite3.Error as e:
        raise translate(e) from e
    raise StorageError(
        f"sqlite: the erasure is committed, but the WAL of {target!r} could not be emptied: "
        "another connection holds a read transaction open; its old pages stay in the WAL "
        "until a checkpoint completes (end that reader and call erase again)"
    )


def default_max_open() -> int:
    """`DEFAULT_MAX_OPEN_AGENTS`, or a sixteenth of the soft file-descriptor limit (at
    least 8) when that is smaller, so the defaults never exhaust the process's fds."""
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        return DEFAULT_MAX_OPEN_AGENTS
    return max(8, min(DEFAULT_MAX_OPEN_AGENTS, soft // 16))


@dataclass(eq=False)
class AgentDatabase:
    """One agent's database: its write connection, lock and idle read connections.

    `users` counts the calls holding it (guarded by the store's lock of open databases):
    only a database nobody uses may be closed to make room for another."""

    path: str | None  # None: in memory
    writer: sqlite3.Connection
    lock: threading.Lock = field(default_factory=threading.Lock)
    idle_readers: list[sqlite3.Connection] = field(default_factory=list)
    users: int = 0

    def give_back(self, conn: sqlite3.Connection) -> None:
        """Return a read connection: kept idle (up to MAX_IDLE_READERS) or closed."""
        if conn.in_transaction or len(self.idle_readers) >= MAX_IDLE_READERS:
            conn.close()  # never pooled inside a transaction: the next read could not BEGIN
        else:
            self.idle_readers.append(conn)

    def close(self) -> None:
        for conn in [self.writer, *self.idle_readers]:
            conn.close()
        self.idle_readers.clear()


class OpenDatabases:
    """The open agent databases of a store, least recently used first; beyond `most`,
    unused ones are closed (a database in use never is: the limit may be passed while
    every open one is busy). `most=None`: never close one (in-memory databases)."""

    def __init__(self, most: int | None) -> None:
        self.most = most
        self.lock = threading.Lock()
        self.open: OrderedDict[str, AgentDatabase] = OrderedDict()

    def take(self, agent_id: str) -> AgentDatabase | None:
        """The agent's open database, now in use (the lock is held), or None."""
        found = self.open.get(agent_id)
        if found is not None:
            found.users += 1
            self.open.move_to_end(agent_id)
        return found

    def add(self, agent_id: str, database: AgentDatabase) -> None:
        """Keep a newly opened database, in use (the lock is held); close idle ones beyond
        the limit."""
        database.users += 1
        self.open[agent_id] = database
        self._trim()

    def release(self, database: AgentDatabase) -> None:
        """A call is done with the database; the limit, passed while all were busy, holds
        again as soon as they are idle."""
        with self.lock:
            database.users -= 1
            self._trim()

    def _trim(self) -> None:
        """Close the least recently used idle databases beyond the limit (lock held)."""
        if self.most is None or len(self.open) <= self.most:
            return
        excess = len(self.open) - self.most
        for name in [n for n, d in self.open.items() if d.users == 0][:excess]:
            self.open.pop(name).close()

    def close_all(self) -> None:
        with self.lock:
            for database in self.open.values():
                with database.lock:
                    database.close()
