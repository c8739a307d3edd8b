"""The `open_*` functions: an Engine over each kind of store.

They compose a store (`stores/`) with the Engine (`engine/`); the stores never import the
engine. `open_postgres` imports psycopg only when called (the postgres extra).
"""

from __future__ import annotations

import os
from typing import Any

from mempill import extras
from mempill.clock import Clock, system_clock
from mempill.core.config import EngineConfig
from mempill.engine import Engine, RetryPolicy
from mempill.engine.linecache import DEFAULT_CACHE_BYTES
from mempill.ids import IdFactory, time_ordered_ids
from mempill.ports import OraclePort, Store, VectorPort
from mempill.stores.sqlite import SQLiteStore

PathLike = str | os.PathLike[str]


def _engine(
    store: Store,
    oracle: OraclePort | None,
    vector: VectorPort | None,
    config: EngineConfig | None,
    clock: Clock,
    ids: IdFactory,
    retry: RetryPolicy | None,
    cache_claims: int,
    cache_bytes: int = DEFAULT_CACHE_BYTES,
    text_index: bool = True,
) -> Engine:
    try:
        return Engine(
            store,
            oracle=oracle,
            vector=vector,
            config=config,
            clock=clock,
            ids=ids,
            retry=retry,
            cache_claims=cache_claims,
            cache_bytes=cache_bytes,
            text_index=text_index,
        )
    except BaseException:
        store.close()  # a refused collaborator must not leave the store's files open
        raise


def open_default(
    path: PathLike,
    *,
    oracle: OraclePort | None = None,
    vector: VectorPort | None = None,
    config: EngineConfig | None = None,
    clock: Clock = system_clock,
    ids: IdFactory = time_ordered_ids,
    retry: RetryPolicy | None = None,
    cache_claims: int = 50_000,
    cache_bytes: int = DEFAULT_CACHE_BYTES,
    text_index: bool = True,
    record_write_stats: bool = False,
    read_only: bool = False,
) -> Engine:
    """One SQLite file, bound to the first agent that writes to it.

    `record_write_stats` adds a `write_stats` row (lock wait, transaction time) to every
    write transaction, for the contention lab; off, a durable write touches fewer pages.
    `read_only` opens an existing file with `mode=ro`: no migration, no PRAGMA that
    writes, and every write call raises ValidationError. `cache_claims` and `cache_bytes`
    bound the line cache. A new file is created 0600 (its folders 0700).
    """
    store = SQLiteStore(path=path, record_stats=record_write_stats, read_only=read_only)
    return _engine(
        store, oracle, vector, config, clock, ids, retry, cache_claims, cache_bytes, text_index
    )


def open_directory(
    base_dir: PathLike,
    *,
    oracle: OraclePort | None = None,
    vector: VectorPort | None = None,
    config: EngineConfig | None = None,
    clock: Clock = system_clock,
    ids: IdFactory = time_ordered_ids,
    retry: RetryPolicy | None = None,
    cache_claims: int = 50_000,
    cache_bytes: int = DEFAULT_CACHE_BYTES,
    text_index: bool = True,
    serialize_all_writes: bool = True,
    record_write_stats: bool = False,
    read_only: bool = False,
    max_open_agents: int | None = None,
) -> Engine:
    """One SQLite file per agent under `base_dir` (`<agent_id>.db`, created 0600).

    At most `max_open_agents` agent databases stay open (default: 256, or a sixteenth of
    the file-descriptor limit when smaller); the least recently used idle one is closed
    and reopened on demand. `read_only` as for `open_default`.
    """
    store = SQLiteStore(
        directory=base_dir,
        serialize_all_writes=serialize_all_writes,
        record_stats=record_write_stats,
        read_only=read_only,
        max_open_agents=max_open_agents,
    )
    return _engine(
        store, oracle, vector, config, clock, ids, retry, cache_claims, cache_bytes, text_index
    )


def open_default_in_memory(
    *,
    oracle: OraclePort | None = None,
    vector: VectorPort | None = None,
    config: EngineConfig | None = None,
    clock: Clock = system_clock,
    ids: IdFactory = time_ordered_ids,
    retry: RetryPolicy | None = None,
    cache_claims: int = 50_000,
    cache_bytes: int = DEFAULT_CACHE_BYTES,
    text_index: bool = True,
    record_write_stats: bool = False,
) -> Engine:
    """One in-memory SQLite database per agent; gone when the engine closes."""
    store = SQLiteStore(record_stats=record_write_stats)
    return _engine(
        store, oracle, vector, config, clock, ids, retry, cache_claims, cache_bytes, text_index
    )


def open_postgres(
    conninfo: str,
    oracle: OraclePort | None = None,
    vector: VectorPort | None = None,
    config: EngineConfig | None = None,
    pool_max_size: int = 20,
    *,
    pool_min_size: int = 1,
    connect_timeout: float = 10.0,
    pool_timeout: float = 30.0,
    clock: Clock = system_clock,
    ids: IdFactory = time_ordered_ids,
    retry: RetryPolicy | None = None,
    cache_claims: int = 50_000,
    cache_bytes: int = DEFAULT_CACHE_BYTES,
    text_index: bool = True,
    lab_synchronous_commit: str | None = None,
    record_write_stats: bool = False,
    read_only: bool = False,
) -> Engine:
    """An Engine over a shared PostgreSQL database (libpq `conninfo`, TLS settings included).

    `connect_timeout` bounds each connection attempt (libpq: whole seconds, at least 2);
    `pool_timeout` bounds the wait for a free pooled connection. `lab_synchronous_commit`
    is for the durability lab only: the product keeps the server's setting. `read_only`
    checks the schema version only (no migration, no DDL, no lock) and runs every
    transaction read-only, so a role with SELECT alone can read; every write call raises
    ValidationError. A host that is not local without `sslmode=verify-full` gets an
    InsecureConnectionWarning.
    """
    postgres = _postgres_module()
    settings = postgres.PoolSettings(
        min_size=pool_min_size,
        max_size=pool_max_size,
        connect_timeout=connect_timeout,
        pool_timeout=pool_timeout,
        synchronous_commit=lab_synchronous_commit,
    )
    store = postgres.PostgresStore(
        conninfo, settings, record_stats=record_write_stats, read_only=read_only
    )
    return _engine(
        store, oracle, vector, config, clock, ids, retry, cache_claims, cache_bytes, text_index
    )


def _postgres_module() -> Any:
    """`mempill.stores.postgres`, or an ImportError that says what to install."""
    try:
        from mempill.stores import postgres
    except ImportError as e:
        raise ImportError(extras.missing("mempill.open_postgres", "postgres")) from e
    return postgres
