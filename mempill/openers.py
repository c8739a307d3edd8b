"""The `open_*` functions: an Engine over each kind of store."""

from __future__ import annotations

import os
from typing import Any

from mempill.clock import Clock, system_clock
from mempill.config import EngineConfig
from mempill.engine import Engine, RetryPolicy
from mempill.ids import IdFactory, random_ids
from mempill.ports import OraclePort, VectorPort
from mempill.stores.sqlite import SQLiteStore

PathLike = str | os.PathLike[str]


def _engine(
    store: Any,
    oracle: OraclePort | None,
    vector: VectorPort | None,
    config: EngineConfig | None,
    clock: Clock,
    ids: IdFactory,
    retry: RetryPolicy | None,
    cache_claims: int,
) -> Engine:
    return Engine(
        store,
        oracle=oracle,
        vector=vector,
        config=config,
        clock=clock,
        ids=ids,
        retry=retry,
        cache_claims=cache_claims,
    )


def open_default(
    path: PathLike,
    *,
    oracle: OraclePort | None = None,
    vector: VectorPort | None = None,
    config: EngineConfig | None = None,
    clock: Clock = system_clock,
    ids: IdFactory = random_ids,
    retry: RetryPolicy | None = None,
    cache_claims: int = 50_000,
) -> Engine:
    """One SQLite file, bound to the first agent that writes to it."""
    return _engine(SQLiteStore(path=path), oracle, vector, config, clock, ids, retry, cache_claims)


def open_directory(
    base_dir: PathLike,
    *,
    oracle: OraclePort | None = None,
    vector: VectorPort | None = None,
    config: EngineConfig | None = None,
    clock: Clock = system_clock,
    ids: IdFactory = random_ids,
    retry: RetryPolicy | None = None,
    cache_claims: int = 50_000,
    serialize_all_writes: bool = True,
) -> Engine:
    """One SQLite file per agent under `base_dir` (`<agent_id>.db`)."""
    store = SQLiteStore(directory=base_dir, serialize_all_writes=serialize_all_writes)
    return _engine(store, oracle, vector, config, clock, ids, retry, cache_claims)


def open_default_in_memory(
    *,
    oracle: OraclePort | None = None,
    vector: VectorPort | None = None,
    config: EngineConfig | None = None,
    clock: Clock = system_clock,
    ids: IdFactory = random_ids,
    retry: RetryPolicy | None = None,
    cache_claims: int = 50_000,
) -> Engine:
    """One in-memory SQLite database per agent; gone when the engine closes."""
    return _engine(SQLiteStore(), oracle, vector, config, clock, ids, retry, cache_claims)
