"""`SqliteVecIndex`: vectors persisted in a SQLite file of their own, searched with sqlite-vec.

The vectors live in a separate file the user names (never the agent stores, whose schema is
mempill's): one table `claim_vectors(agent_id, claim_ref, embedding)`, the embedding a
float32 blob. The search is exact: `vec_distance_cosine` over every row of the agent, no
approximate index, so it agrees with `ExactIndex` (up to float32 storage: similarities are
rounded to 6 decimals).
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

from mempill.errors import ConfigError
from mempill.vectors.batched import BatchedIndex
from mempill.vectors.embed import Embedder, Vector

#: float32 storage: similarities are rounded to this many decimals before ordering.
DECIMALS = 6

_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS claim_vectors ("
    " agent_id TEXT NOT NULL, claim_ref TEXT NOT NULL, embedding BLOB NOT NULL,"
    " PRIMARY KEY (agent_id, claim_ref)) WITHOUT ROWID"
)
_SEARCH = (
    "SELECT claim_ref, round(1.0 - vec_distance_cosine(embedding, ?), ?) AS similarity"
    " FROM claim_vectors WHERE agent_id = ?"
    " ORDER BY similarity DESC, claim_ref LIMIT ?"
)


def _load() -> Any:
    try:
        import sqlite_vec  # type: ignore[import-not-found, unused-ignore]
    except ModuleNotFoundError as e:
        raise ConfigError(
            "SqliteVecIndex needs the sqlite-vec package: pip install 'sqlite-vec>=0.1' "
            "(the mempill 'vectors' extra); or use ExactIndex"
        ) from e
    return sqlite_vec


class SqliteVecIndex(BatchedIndex):
    """Claim vectors in the SQLite file at `path` (created 0600 when new; `":memory:"` for a
    throwaway), searched exactly with sqlite-vec. They survive a restart; `engine.reindex`
    still re-embeds every claim (a new model: use a new file).

    `connect(path)` opens the connection (default: the standard `sqlite3.connect`). Some
    Python builds' `sqlite3` cannot load extensions (built without
    `--enable-loadable-sqlite-extensions`): then ConfigError, or pass a `connect` whose
    connections can (e.g. from `pysqlite3`)."""

    def __init__(
        self,
        path: str | os.PathLike[str],
        embedder: Embedder,
        *,
        batch: int = 64,
        connect: Callable[[str], Any] | None = None,
    ) -> None:
        super().__init__(embedder, batch=batch)
        sqlite_vec = _load()
        where = os.fspath(path)
        if where != ":memory:" and not Path(where).exists():
            os.close(os.open(where, os.O_CREAT | os.O_WRONLY | os.O_EXCL, 0o600))
        if connect is None:
            conn: Any = sqlite3.connect(where, check_same_thread=False, isolation_level=None)
        else:
            conn = connect(where)
        if not callable(getattr(conn, "enable_load_extension", None)):
            conn.close()
            raise ConfigError(
                "SqliteVecIndex: this Python's sqlite3 cannot load extensions (it was built "
                "without --enable-loadable-sqlite-extensions); pass connect= a function "
                "returning a connection that can, or use ExactIndex"
            )
        try:
            conn.enable_load_extension(True)
            sqlite_vec.load(conn)
            conn.enable_load_extension(False)
            conn.execute("PRAGMA secure_delete = ON")  # forgotten vectors are overwritten
            conn.execute(_SCHEMA)
            row = conn.execute("SELECT vec_length(embedding) FROM claim_vectors LIMIT 1").fetchone()
        except Exception as e:
            conn.close()
            raise ConfigError(f"SqliteVecIndex: cannot use {where}: {e}") from e
        self.path = where
        self._conn = conn
        self._serialize: Callable[[Any], bytes] = sqlite_vec.serialize_float32
        if row is not None:
            self.dimensions = int(row[0])

    def __repr__(self) -> str:
        return f"SqliteVecIndex({self.path!r}, {self.embedder!r})"

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def _write(self, sql: str, rows: list[tuple[Any, ...]]) -> None:
        self._conn.execute("BEGIN IMMEDIATE")
        try:
            self._conn.executemany(sql, rows)
        except BaseException:
            self._conn.execute("ROLLBACK")
            raise
        self._conn.execute("COMMIT")

    def _store(self, rows: list[tuple[str, str, Vector]]) -> None:
        if rows:
            self._write(
                "INSERT OR REPLACE INTO claim_vectors VALUES (?, ?, ?)",
                [(agent, ref, self._serialize(list(vector))) for agent, ref, vector in rows],
            )

    def _drop(self, agent_id: str, claim_refs: list[str]) -> None:
        self._write(
            "DELETE FROM claim_vectors WHERE agent_id = ? AND claim_ref = ?",
            [(agent_id, ref) for ref in claim_refs],
        )

    def _search(self, agent_id: str, query: Vector, k: int) -> list[tuple[str, float]]:
        found = self._conn.execute(
            _SEARCH, (self._serialize(list(query)), DECIMALS, agent_id, k)
        ).fetchall()
        return [(str(ref), float(sim) + 0.0) for ref, sim in found]

    def _count(self, agent_id: str | None) -> int:
        if agent_id is None:
            row = self._conn.execute("SELECT count(*) FROM claim_vectors").fetchone()
        else:
            row = self._conn.execute(
                "SELECT count(*) FROM claim_vectors WHERE agent_id = ?", (agent_id,)
            ).fetchone()
        return int(row[0])
