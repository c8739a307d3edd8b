"""SQLite, topology A (reference §8.1): one database per agent, WAL + synchronous=FULL.

Writes to an agent go through that agent's one write connection, under its lock, in
`BEGIN IMMEDIATE` (so two processes on one file are serialized by SQLite itself); a
store-wide lock, on by default, serializes all agents of one store. Reads of file
databases use their own connections and WAL snapshots, so they never wait for a write.
"""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from mempill.clock import system_clock
from mempill.core import parse
from mempill.core.dates import format_tx, parse_tx
from mempill.errors import (
    ConfigError,
    IntegrityError,
    MempillError,
    StorageError,
    TransientStorageError,
)
from mempill.stores.sql import SQL, SqlSession, embedded_migrations, split_statements

BUSY_TIMEOUT_MS = 30_000
LAB_SYNCHRONOUS = ("FULL", "NORMAL", "OFF")


class SQLiteDialect:
    name = "sqlite"

    def __init__(self) -> None:
        self._last: tuple[datetime | None, str] = (None, "")

    def sql(self, key: str) -> str:
        return SQL[key]

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


@dataclass
class AgentDatabase:
    """One agent's database: its write connection, lock and idle read connections."""

    path: str | None  # None: in memory
    writer: sqlite3.Connection
    lock: threading.Lock = field(default_factory=threading.Lock)
    idle_readers: list[sqlite3.Connection] = field(default_factory=list)


class SQLiteStore:
    """The embedded store; made by `open_default`, `open_directory`, `open_default_in_memory`."""

    backend = "sqlite"

    def __init__(
        self,
        *,
        path: str | os.PathLike[str] | None = None,
        directory: str | os.PathLike[str] | None = None,
        serialize_all_writes: bool = True,
        lab_synchronous: str = "FULL",
        record_stats: bool = False,
    ) -> None:
        """Exactly one of: `path` (one file), `directory` (a file per agent), neither (memory).

        `lab_synchronous` exists for the durability lab only; the product keeps FULL.
        """
        if path is not None and directory is not None:
            raise ConfigError("give a path or a directory, not both")
        if not isinstance(lab_synchronous, str) or lab_synchronous.upper() not in LAB_SYNCHRONOUS:
            raise ConfigError(f"lab_synchronous must be one of {LAB_SYNCHRONOUS}")
        self._synchronous = lab_synchronous.upper()
        self._record_stats = record_stats
        self._path = _location(path, "path")
        self._directory = _location(directory, "directory")
        self._agents: dict[str, AgentDatabase] = {}
        self._agents_lock = threading.Lock()
        self._store_lock = threading.Lock() if serialize_all_writes else None
        self._closed = False
        self._bound: str | None = None
        self._known_stores: set[str] = set()  # files of this folder found to be agent stores
        self._ignored: dict[str, str] = {}  # file name -> why it is not an agent store
        folder = self._directory if self._path is None else self._path.parent
        if folder is not None:
            try:
                folder.mkdir(parents=True, exist_ok=True)
            except OSError as e:
                raise StorageError(f"sqlite: cannot create the folder {str(folder)!r}: {e}") from e
        if self._path is not None:
            self._shared = self._open_database(str(self._path))

    @property
    def topology(self) -> str:
        return "file" if self._path else "directory" if self._directory else "memory"

    # ---------------------------------------------------------------- connections

    def _connect(self, target: str) -> sqlite3.Connection:
        try:
            conn = sqlite3.connect(
                target,
                isolation_level=None,
                check_same_thread=False,
                timeout=BUSY_TIMEOUT_MS / 1000,
            )
            conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            if target != ":memory:" and str(mode).lower() != "wal":
                raise StorageError(f"sqlite: could not enable WAL on {target} (got {mode})")
            conn.execute(f"PRAGMA synchronous = {self._synchronous}")
            conn.execute("PRAGMA foreign_keys = ON")
        except sqlite3.Error as e:
            raise translate(e) from e
        return conn

    def _open_database(self, target: str) -> AgentDatabase:
        is_new = target != ":memory:" and not os.path.exists(target)
        if not is_new and target != ":memory:":
            foreign = not_an_agent_store(target)
            if foreign is not None:
                raise StorageError(f"sqlite: {target!r} is not a mempill store ({foreign})")
        conn = self._connect(target)
        try:
            self._migrate(conn)
        except sqlite3.Error as e:
            raise translate(e) from e
        if is_new:
            _fsync_directory(os.path.dirname(os.path.abspath(target)))
        return AgentDatabase(path=None if target == ":memory:" else target, writer=conn)

    @staticmethod
    def _migrate(conn: sqlite3.Connection) -> None:
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

    def _database(self, agent_id: str, create: bool) -> AgentDatabase | None:
        if self._closed:
            raise StorageError("sqlite: the store is closed")
        if self._path is not None:
            return self._shared
        with self._agents_lock:
            found = self._agents.get(agent_id)
            if found is not None:
                return found
            if self._directory is None:
                target = ":memory:"
            else:
                target = str(self._directory / f"{parse.agent_id(agent_id)}.db")
                if not create and not os.path.exists(target):
                    return None
            if target == ":memory:" and not create:
                return None
            database = self._open_database(target)
            self._agents[agent_id] = database
            return database

    # ---------------------------------------------------------------- the Store port

    @contextmanager
    def write(self, agent_id: str) -> Iterator[SqlSession]:
        """One write transaction under the agent's lock and, up to its COMMIT, the store-wide
        lock: the COMMIT's fsync runs outside it, so other agents' writes proceed meanwhile."""
        database = self._database(agent_id, create=True)
        assert database is not None
        asked = time.perf_counter_ns()
        store_lock = self._store_lock or nullcontext()
        with database.lock:
            conn = database.writer
            with store_lock:
                try:
                    conn.execute("BEGIN IMMEDIATE")
                except sqlite3.Error as e:
                    raise translate(e) from e
                held = time.perf_counter_ns()
                session = SqlSession(conn.cursor(), DIALECT, agent_id)
                try:
                    yield session
                    session.flush()
                    if self._record_stats:
                        session.record_stats(
                            (held - asked) // 1000,
                            (time.perf_counter_ns() - held) // 1000,
                            system_clock(),
                        )
                except sqlite3.Error as e:
                    _rollback(conn)
                    raise translate(e) from e
                except BaseException:
                    _rollback(conn)
                    raise
            try:
                conn.execute("COMMIT")
            except sqlite3.Error as e:
                _rollback(conn)
                raise translate(e) from e
            except BaseException:
                _rollback(conn)
                raise

    @contextmanager
    def read(self, agent_id: str) -> Iterator[SqlSession]:
        database = self._database(agent_id, create=False)
        if database is None:  # no file yet for this agent: an empty snapshot
            with self._empty_reader(agent_id) as session:
                yield session
            return
        if database.path is None:  # in memory: share the writer under the agent lock
            with database.lock:
                yield SqlSession(database.writer.cursor(), DIALECT, agent_id)
            return
        conn = self._take_reader(database)
        try:
            conn.execute("BEGIN")
            yield SqlSession(conn.cursor(), DIALECT, agent_id)
            conn.execute("COMMIT")
        except sqlite3.Error as e:
            _rollback(conn)
            raise translate(e) from e
        except BaseException:  # the caller's error (a bad argument…): end the snapshot too
            _rollback(conn)
            raise
        finally:  # never pooled inside a transaction: the next read would fail to BEGIN
            if conn.in_transaction:
                conn.close()
            else:
                database.idle_readers.append(conn)

    def _take_reader(self, database: AgentDatabase) -> sqlite3.Connection:
        try:
            return database.idle_readers.pop()
        except IndexError:
            assert database.path is not None
            return self._connect(database.path)

    @contextmanager
    def _empty_reader(self, agent_id: str) -> Iterator[SqlSession]:
        conn = sqlite3.connect(":memory:", isolation_level=None)
        try:
            self._migrate(conn)
            yield SqlSession(conn.cursor(), DIALECT, agent_id)
        finally:
            conn.close()

    def may_write(self, agent_id: str) -> bool:
        """A single-file store belongs to the first agent that writes to it."""
        if self._path is None:
            return True
        if self._bound is not None:
            return self._bound == agent_id
        conn = self._shared.writer
        with self._shared.lock:
            try:
                conn.execute("BEGIN IMMEDIATE")
                row = conn.execute(
                    "SELECT value FROM store_meta WHERE key = 'bound_agent'"
                ).fetchone()
                if row is None:
                    conn.execute(
                        "INSERT INTO store_meta (key, value) VALUES ('bound_agent', ?)", (agent_id,)
                    )
                conn.execute("COMMIT")
            except sqlite3.Error as e:
                _rollback(conn)
                raise translate(e) from e
        self._bound = agent_id if row is None else str(row[0])
        return self._bound == agent_id

    def bound_agent(self) -> str | None:
        """The agent a single-file store is bound to (None before its first write)."""
        if self._path is None:
            return None
        with self._shared.lock:
            try:
                row = self._shared.writer.execute(
                    "SELECT value FROM store_meta WHERE key = 'bound_agent'"
                ).fetchone()
            except sqlite3.Error as e:
                raise translate(e) from e
        return None if row is None else str(row[0])

    def agents(self) -> tuple[str, ...]:
        """Every agent of the store. In a folder: the `<agent_id>.db` files that are agent
        stores; any other `*.db` file is left alone and listed by `ignored_files`."""
        if self._directory is not None:
            return tuple(sorted(set(self._agent_files()) | set(self._agents)))
        if self._path is not None:
            bound = self.bound_agent()
            return () if bound is None else (bound,)
        return tuple(sorted(self._agents))

    def ignored_files(self) -> tuple[tuple[str, str], ...]:
        """(path, reason) of each `*.db` file in the store's folder that is not an agent
        store (a copy named `alice copy.db`, another program's database…), as of the last
        look; store-wide calls skip them. Empty for the other topologies."""
        if self._directory is None:
            return ()
        self._agent_files()
        return tuple(
            (str(self._directory / name), why) for name, why in sorted(self._ignored.items())
        )

    def _agent_files(self) -> list[str]:
        """The agents whose files in the folder are agent stores; remembers the others."""
        assert self._directory is not None
        agents, ignored = [], {}
        for path in self._directory.glob("*.db"):
            name = path.stem
            if name in self._known_stores or name in self._agents:
                agents.append(name)
                continue
            try:
                parse.agent_id(name)
            except MempillError:
                ignored[path.name] = "its name is not an agent id"
                continue
            why = not_an_agent_store(str(path))
            if why is None:
                self._known_stores.add(name)
                agents.append(name)
            else:
                ignored[path.name] = why
        self._ignored = ignored
        return agents

    def agents_with_pending(self) -> tuple[str, ...]:
        found = []
        for agent in self.agents():
            with self.read(agent) as session:
                session.cursor.execute(SQL["agents_with_pending"], ("pending",))
                if session.cursor.fetchall():
                    found.append(agent)
        return tuple(found)

    def find_handle(self, handle_id: str) -> str | None:
        for agent in self.agents():
            with self.read(agent) as session:
                session.cursor.execute(SQL["find_handle"], (handle_id,))
                row = session.cursor.fetchone()
            if row is not None:
                return str(row[0])
        return None

    def connection_for(self, agent_id: str) -> sqlite3.Connection | None:
        """The agent's write connection (for diagnostics and the lab), or None if absent."""
        database = self._database(agent_id, create=False)
        return None if database is None else database.writer

    def database_path(self, agent_id: str) -> Path | None:
        if self._path is not None:
            return self._path
        if self._directory is not None:
            return self._directory / f"{parse.agent_id(agent_id)}.db"
        return None

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        databases = list(self._agents.values())
        if self._path is not None:
            databases.append(self._shared)
        for database in databases:
            with database.lock:
                for conn in [database.writer, *database.idle_readers]:
                    conn.close()
                database.idle_readers.clear()


SQLITE_HEADER = b"SQLite format 3\x00"


def not_an_agent_store(path: str) -> str | None:
    """Why an existing file is not a mempill agent store, or None when it is one (or an
    empty database, which a first write makes one). Reads only: nothing is written."""
    try:
        with open(path, "rb") as f:
            header = f.read(len(SQLITE_HEADER))
    except OSError as e:
        return f"unreadable: {e.strerror or e}"
    if not header:
        return None
    if header != SQLITE_HEADER:
        return "not a SQLite database"
    try:
        conn = sqlite3.connect(path, isolation_level=None, timeout=BUSY_TIMEOUT_MS / 1000)
        try:
            tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master")}
            if not tables:
                return None
            if not {"schema_migrations", "ledger", "claims"} <= tables:
                return "a SQLite database of another program"
            row = conn.execute("SELECT name FROM schema_migrations WHERE version = 1").fetchone()
        finally:
            conn.close()
    except sqlite3.Error as e:
        return f"unreadable as SQLite: {e}"
    first = migrations()[0][1]
    return None if row is not None and row[0] == first else "a SQLite database of another program"


def _location(value: object, what: str) -> Path | None:
    """A path or directory argument: None, a str or an os.PathLike naming a local file."""
    if value is None:
        return None
    if not isinstance(value, (str, os.PathLike)):
        raise ConfigError(f"{what}: expected a path, got {type(value).__name__}")
    try:
        found = Path(value)
        text = str(found)
    except (TypeError, ValueError) as e:
        raise ConfigError(f"{what}: {parse.show(value)} is not a path: {e}") from e
    if "\x00" in text:
        raise ConfigError(f"{what}: {parse.show(value)} contains U+0000")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as e:
        raise ConfigError(f"{what}: {parse.show(value)} is not a usable path: {e}") from e
    return found


def _rollback(conn: sqlite3.Connection) -> None:
    try:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
    except sqlite3.Error:
        pass


def _fsync_directory(directory: str) -> None:
    """Make a newly created database file's directory entry durable (power-cut safety)."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
