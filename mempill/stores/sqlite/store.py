"""`SQLiteStore`: the Store port over one SQLite database per agent (see the package doc)."""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from mempill.clock import system_clock
from mempill.core import parse
from mempill.core.model import LineRows
from mempill.core.search import INDEX_BLOCK
from mempill.errors import ConfigError, MempillError, StorageError
from mempill.ports import read_only_error
from mempill.stores.sql import SqlSession
from mempill.stores.sqlite.connections import (
    DIALECT,
    LAB_SYNCHRONOUS,
    AgentDatabase,
    OpenDatabases,
    check_current,
    closed_on_error,
    connect,
    default_max_open,
    memory_database,
    migrate,
    translate,
    vacuum,
)
from mempill.stores.sqlite.files import (
    check_regular,
    create_file,
    fsync_directory,
    irregular,
    location,
    make_folder,
    not_an_agent_store,
    not_sqlite,
    sqlite_name,
)


class SQLiteStore:
    """The embedded store; made by `open_default`, `open_directory`, `open_default_in_memory`."""

    backend = "sqlite"
    index_block = INDEX_BLOCK  # one WAL frame per word and claim, else (docs/search.md)

    def __init__(
        self,
        *,
        path: str | os.PathLike[str] | None = None,
        directory: str | os.PathLike[str] | None = None,
        serialize_all_writes: bool = True,
        lab_synchronous: str = "FULL",
        lab_directory_sync: bool = True,
        record_stats: bool = False,
        read_only: bool = False,
        max_open_agents: int | None = None,
    ) -> None:
        """Exactly one of: `path` (one file), `directory` (a file per agent), neither (memory).

        `read_only` opens existing databases with `mode=ro` and runs no migration (an
        in-memory store cannot be read-only: it would always be empty). `max_open_agents`
        bounds the agent databases a directory store keeps open (default
        `default_max_open()`). `lab_synchronous` and `lab_directory_sync` (False: never fsync
        a directory, the `lost-dirent` model's positive control) exist for the durability lab
        only.
        """
        if path is not None and directory is not None:
            raise ConfigError("give a path or a directory, not both")
        if not isinstance(lab_synchronous, str) or lab_synchronous.upper() not in LAB_SYNCHRONOUS:
            raise ConfigError(f"lab_synchronous must be one of {LAB_SYNCHRONOUS}")
        if not isinstance(read_only, bool):
            raise ConfigError(f"read_only must be True or False, got {parse.show(read_only)}")
        if max_open_agents is not None and not parse.whole(max_open_agents, 1):
            raise ConfigError(
                f"max_open_agents must be an integer >= 1, got {parse.show(max_open_agents)}"
            )
        self.read_only = read_only
        self._synchronous = lab_synchronous.upper()
        self._directory_sync = lab_directory_sync is not False
        self._record_stats = record_stats
        self._path = location(path, "path")
        self._directory = location(directory, "directory")
        if read_only and self._path is None and self._directory is None:
            raise ConfigError("a read-only SQLite store needs a path or a directory")
        most = max_open_agents or default_max_open()
        self._open = OpenDatabases(most if self._directory is not None else None)
        self._agents = self._open.open  # the open agent databases, least recently used first
        self._store_lock = threading.Lock() if serialize_all_writes else None
        self._closed = False
        self._bound: str | None = None
        self._known_stores: set[str] = set()  # files of this folder found to be agent stores
        self._ignored: dict[str, str] = {}  # file name -> why it is not an agent store
        folder = self._directory if self._path is None else self._path.parent
        if folder is not None and read_only and not folder.is_dir():
            raise StorageError(f"sqlite: the folder {str(folder)!r} does not exist")
        if folder is not None and not read_only:
            make_folder(folder, durable=self._directory_sync)
        if self._path is not None:
            self._shared = self._open_database(sqlite_name(self._path))

    @property
    def topology(self) -> str:
        return "file" if self._path else "directory" if self._directory else "memory"

    # ---------------------------------------------------------------- connections

    def _open_database(self, target: str) -> AgentDatabase:
        """Open (creating 0600, or read-only: checking) one database; a connection whose
        migration or check fails is closed again."""
        if target == ":memory:":
            return AgentDatabase(path=None, writer=memory_database(self._synchronous))
        exists = check_regular(target)
        if self.read_only:
            if not exists:
                raise StorageError(
                    f"sqlite: {target!r} does not exist; a read-only store opens existing "
                    "databases only"
                )
            foreign = not_sqlite(target)
            if foreign is not None:
                raise StorageError(f"sqlite: {target!r} is not a mempill store ({foreign})")
            conn = connect(target, synchronous=self._synchronous, read_only=True)
            try:
                check_current(conn, target)
            except BaseException:
                conn.close()
                raise
            return AgentDatabase(path=target, writer=conn)
        is_new = not exists and create_file(target)
        if not is_new:
            check_regular(target)  # made meanwhile, by another process: look at it first
            foreign = not_an_agent_store(target)
            if foreign is not None:
                raise StorageError(f"sqlite: {target!r} is not a mempill store ({foreign})")
        return AgentDatabase(path=target, writer=self._migrated(target, is_new=is_new))

    def _migrated(self, target: str, *, is_new: bool) -> sqlite3.Connection:
        conn = connect(target, synchronous=self._synchronous)
        with closed_on_error(conn):
            migrate(conn)
        if is_new and self._directory_sync:
            fsync_directory(os.path.dirname(os.path.abspath(target)))
        return conn

    def _acquire(self, agent_id: str, create: bool) -> AgentDatabase | None:
        """The agent's database, counted as in use (give it back with `_open.release`)."""
        if self._closed:
            raise StorageError("sqlite: the store is closed")
        with self._open.lock:
            if self._path is not None:
                self._shared.users += 1
                return self._shared
            found = self._open.take(agent_id)
            if found is not None:
                return found
            if self._directory is None:
                target = ":memory:"
            else:
                target = str(self._directory / f"{parse.agent_id(agent_id)}.db")
                if not create and not os.path.lexists(target):
                    return None
            if target == ":memory:" and not create:
                return None
            database = self._open_database(target)
            self._open.add(agent_id, database)
            return database

    @contextmanager
    def _using(self, agent_id: str, create: bool) -> Iterator[AgentDatabase | None]:
        database = self._acquire(agent_id, create)
        try:
            yield database
        finally:
            if database is not None:
                self._open.release(database)

    # ---------------------------------------------------------------- the Store port

    @contextmanager
    def write(self, agent_id: str) -> Iterator[SqlSession]:
        """One write transaction under the agent's lock and, up to its COMMIT, the store-wide
        lock: the COMMIT's fsync runs outside it, so other agents' writes proceed meanwhile.
        Any error rolls the transaction back; a sqlite3 error becomes the mempill error it
        means. (One generator, no nested context managers: this runs for every write.)"""
        if self.read_only:
            raise read_only_error("write")
        database = self._acquire(agent_id, create=True)
        assert database is not None
        store_lock = self._store_lock
        try:
            asked = time.perf_counter_ns()
            with database.lock:
                conn = database.writer
                if store_lock is not None:
                    store_lock.acquire()
                try:
                    conn.execute("BEGIN IMMEDIATE")
                    held = time.perf_counter_ns()
                    session = SqlSession(conn.cursor(), DIALECT, agent_id)
                    yield session
                    session.flush()
                    if self._record_stats:
                        session.record_stats(
                            (held - asked) // 1000,
                            (time.perf_counter_ns() - held) // 1000,
                            system_clock(),
                        )
                except BaseException as e:
                    _undo(conn, e)
                    raise
                finally:
                    if store_lock is not None:
                        store_lock.release()
                try:
                    conn.execute("COMMIT")
                except BaseException as e:
                    _undo(conn, e)
                    raise
        finally:
            self._open.release(database)

    @contextmanager
    def read(self, agent_id: str) -> Iterator[SqlSession]:
        with self._using(agent_id, create=False) as database:
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
            except BaseException as e:  # the caller's error (a bad argument…) ends it too
                _rollback(conn)
                if isinstance(e, sqlite3.Error):
                    raise translate(e) from e
                raise
            finally:
                database.give_back(conn)

    def read_line(
        self, agent_id: str, subject: str, predicate: str, after: int
    ) -> tuple[int, LineRows]:
        """The line's version and its rows after `after`, in one snapshot."""
        with self.read(agent_id) as session:
            return session.line_refresh(subject, predicate, after)

    def _take_reader(self, database: AgentDatabase) -> sqlite3.Connection:
        try:
            return database.idle_readers.pop()
        except IndexError:
            assert database.path is not None
            return connect(database.path, synchronous=self._synchronous, read_only=self.read_only)

    @contextmanager
    def _empty_reader(self, agent_id: str) -> Iterator[SqlSession]:
        conn = memory_database("OFF")  # nothing is written to it
        try:
            yield SqlSession(conn.cursor(), DIALECT, agent_id)
        finally:
            conn.close()

    def may_write(self, agent_id: str) -> bool:
        """A single-file store belongs to the first agent that writes to it (a read-only
        store writes nothing, so it never binds itself)."""
        if self._path is None:
            return not self.read_only
        if self._bound is not None or self.read_only:
            return not self.read_only and self._bound == agent_id
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
            with self._open.lock:
                opened = set(self._agents)
            return tuple(sorted(set(self._agent_files()) | opened))
        if self._path is not None:
            bound = self.bound_agent()
            return () if bound is None else (bound,)
        with self._open.lock:
            return tuple(sorted(self._agents))

    def ignored_files(self) -> tuple[tuple[str, str], ...]:
        """(path, reason) of each `*.db` file in the store's folder that is not an agent
        store (a copy named `alice copy.db`, another program's database, a symbolic
        link…), as of the last look; store-wide calls skip them. Empty for the other
        topologies."""
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
            why = _why_not_a_store(str(path))
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
                session.cursor.execute(DIALECT.sql("agents_with_pending"), ("pending",))
                if session.cursor.fetchall():
                    found.append(agent)
        return tuple(found)

    def find_handle(self, handle_id: str) -> str | None:
        for agent in self.agents():
            with self.read(agent) as session:
                session.cursor.execute(DIALECT.sql("find_handle"), (handle_id,))
                row = session.cursor.fetchone()
            if row is not None:
                return str(row[0])
        return None

    def purge(self, agent_id: str) -> None:
        """After an erasure: VACUUM the agent's database and empty its WAL (`vacuum`), so
        the scrubbed bytes are in neither file. In memory, or with no file: nothing."""
        if self.read_only:
            raise read_only_error("erase")
        with self._using(agent_id, create=False) as database:
            if database is None or database.path is None:
                return
            with database.lock:
                vacuum(database.writer, database.path)

    def connection_for(self, agent_id: str) -> sqlite3.Connection | None:
        """The agent's write connection (for diagnostics and the lab), or None if absent.
        In a directory store it stays open until `max_open_agents` other agents are used."""
        with self._using(agent_id, create=False) as database:
            return None if database is None else database.writer

    def database_path(self, agent_id: str) -> Path | None:
        if self._path is not None:
            return self._path
        if self._directory is not None:
            return self._directory / f"{parse.agent_id(agent_id)}.db"
        return None

    def open_agents(self) -> int:
        """How many agent databases are open now (at most `max_open_agents` while idle)."""
        with self._open.lock:
            return len(self._agents)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._open.close_all()
        if self._path is not None:
            with self._shared.lock:
                self._shared.close()


def _why_not_a_store(path: str) -> str | None:
    """Why a `*.db` file of the folder is skipped (a link is never followed), or None."""
    return irregular(path) or not_an_agent_store(path)


def _undo(conn: sqlite3.Connection, error: BaseException) -> None:
    """Roll back after `error`; a sqlite3 error is raised as the mempill error it means."""
    _rollback(conn)
    if isinstance(error, sqlite3.Error):
        raise translate(error) from error


def _rollback(conn: sqlite3.Connection) -> None:
    try:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
    except sqlite3.Error:
        pass
