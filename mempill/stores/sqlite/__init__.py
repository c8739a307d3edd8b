"""SQLite, topology A (reference §8.1): one database per agent, WAL + synchronous=FULL.

Writes to an agent go through that agent's one write connection, under its lock, in
`BEGIN IMMEDIATE` (so two processes on one file are serialized by SQLite itself); a
store-wide lock, on by default, serializes all agents of one store. Reads of file
databases use their own connections and WAL snapshots, so they never wait for a write.

`store` holds `SQLiteStore`; `connections` the PRAGMAs, migrations, read-only schema
check and the bounded set of open agent databases (an LRU: a folder of thousands of
agents never runs out of file descriptors); `files` how databases and folders are
created on disk (0600 and 0700, never through a symbolic link).
"""

from mempill.stores.sqlite.connections import (
    BUSY_TIMEOUT_MS,
    DEFAULT_MAX_OPEN_AGENTS,
    DIALECT,
    LAB_SYNCHRONOUS,
    AgentDatabase,
    SQLiteDialect,
    default_max_open,
    migrations,
    translate,
)
from mempill.stores.sqlite.files import SQLITE_HEADER, not_an_agent_store
from mempill.stores.sqlite.store import SQLiteStore

__all__ = [
    "BUSY_TIMEOUT_MS",
    "DEFAULT_MAX_OPEN_AGENTS",
    "DIALECT",
    "LAB_SYNCHRONOUS",
    "SQLITE_HEADER",
    "AgentDatabase",
    "SQLiteDialect",
    "SQLiteStore",
    "default_max_open",
    "migrations",
    "not_an_agent_store",
    "translate",
]
