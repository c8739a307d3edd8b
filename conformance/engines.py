"""The engines the differential machine drives: each backend as `mempill.lab.backends`
opens it, minus the waits for the disk and for schema migrations.

The machine tests that backends agree, not that they survive a power cut (the durability
lab does that), and its CI budget is better spent on operations than on fsync: SQLite files
go to a RAM-backed directory where the machine has one, and PostgreSQL commits with
`synchronous_commit = off` (the engine's durability-lab setting; a commit still becomes
visible, atomically, before the call returns — only the wait for the WAL flush goes).

Creating, migrating and dropping a PostgreSQL schema for every example cost about 140 ms,
more than the example's operations. Within `kept_stores()` (the whole of one
`run_machine`) each PostgreSQL backend keeps one schema and store, emptied before each
example; every example still gets a new engine (its clock, ids, oracle, config and caches).
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from typing import TYPE_CHECKING

from mempill.clock import Clock
from mempill.core.config import EngineConfig
from mempill.engine import Engine
from mempill.ids import IdFactory
from mempill.lab.backends import BACKENDS, open_engine
from mempill.ports import OraclePort

if TYPE_CHECKING:  # psycopg is an optional dependency: imported where PostgreSQL is used
    from mempill.stores.postgres import PostgresStore

#: RAM-backed, where the machine has it (Linux)
RAM = "/dev/shm"  # noqa: S108 (only ever the parent of a fresh mkdtemp directory)


@contextmanager
def scratch_directory() -> Iterator[str]:
    """A fresh directory for one engine's SQLite files, removed afterwards: in RAM when the
    machine has a writable tmpfs, else in the usual temporary directory."""
    ram = RAM if os.path.isdir(RAM) and os.access(RAM, os.W_OK) else None
    with tempfile.TemporaryDirectory(prefix="mp-conf-", dir=ram) as path:
        yield path


@contextmanager
def machine_engine(
    name: str, *, clock: Clock, ids: IdFactory, oracle: OraclePort | None, config: EngineConfig
) -> Iterator[Engine]:
    """An engine on backend `name` with a fresh, empty store; closed (and dropped) on exit."""
    spec = BACKENDS[name]
    if spec.service_role:
        raise ValueError(
            f"{name}: the state machine empties its schema between examples, "
            "which a runtime role may not do; replay streams on it instead"
        )
    if spec.dsn is None:
        with (
            scratch_directory() as workdir,
            open_engine(
                name, clock=clock, ids=ids, oracle=oracle, config=config, workdir=workdir
            ) as engine,
        ):
            yield engine
        return
    if _KEPT:
        store = _KEPT[-1].emptied(name)
        yield Engine(store, oracle=oracle, config=config, clock=clock, ids=ids)
        return  # the store stays open for the next example
    from mempill.lab.servers import fresh_schema

    with fresh_schema(spec.dsn(), prefix="conf") as dsn:
        engine = Engine(_store(dsn), oracle=oracle, config=config, clock=clock, ids=ids)
        try:
            yield engine
        finally:
            engine.close()


class KeptStores:
    """One schema and store per PostgreSQL backend, kept across examples (see above)."""

    def __init__(self) -> None:
        self.stack = ExitStack()
        self.stores: dict[str, tuple[PostgresStore, str]] = {}

    def emptied(self, name: str) -> PostgresStore:
        """The backend's store with every row deleted: as a fresh schema, where only the
        write_stats identity counter (in no digest, no result) goes on counting."""
        if name not in self.stores:
            from mempill.lab.servers import fresh_schema

            server = BACKENDS[name].dsn
            assert server is not None  # only PostgreSQL backends come here
            dsn = self.stack.enter_context(fresh_schema(server(), prefix="conf"))
            store = _store(dsn)
            self.stack.callback(store.close)
            self.stores[name] = (store, _emptying(store))
            return store
        store, statement = self.stores[name]
        with store.pool.connection() as conn:
            conn.execute(statement)
        return store

    def close(self) -> None:
        self.stack.close()


def _store(dsn: str) -> PostgresStore:
    """The lab's pool for one engine (as `open_engine` makes it), committing without waiting
    for the WAL flush."""
    from mempill.stores.postgres import PoolSettings, PostgresStore

    return PostgresStore(dsn, PoolSettings(max_size=2, synchronous_commit="off"))


def _emptying(store: PostgresStore) -> str:
    """One statement deleting every row of the schema but its migrations. Tables are emptied
    newest first: a foreign key can only name a table created before its own (should a later
    migration add one the other way, the DELETE fails loudly rather than leave a row)."""
    with store.pool.connection() as conn:
        tables = [
            str(row[0])
            for row in conn.execute(
                "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
                "WHERE n.nspname = current_schema() AND c.relkind = 'r' "
                "AND c.relname <> 'schema_migrations' ORDER BY c.oid DESC"
            )
        ]
    deletes = "".join(f'DELETE FROM "{table}"; ' for table in tables)
    return f"BEGIN; {deletes}COMMIT"


_KEPT: list[KeptStores] = []


@contextmanager
def kept_stores() -> Iterator[None]:
    """While active, PostgreSQL engines of `machine_engine` share one emptied store each."""
    kept = KeptStores()
    _KEPT.append(kept)
    try:
        yield
    finally:
        _KEPT.remove(kept)
        kept.close()
