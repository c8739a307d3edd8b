"""`PgVectorIndex`: vectors persisted in PostgreSQL with the pgvector extension.

One table `claim_vectors(agent_id, claim_ref, embedding vector)` in a schema of the user's
database (default `mempill_vectors`; never the agent store's own schema). The search is
exact: `<=>` (cosine distance) over every row of the agent, ordered without an approximate
(HNSW/IVFFlat) index, so it agrees with `ExactIndex` (up to pgvector's float32 storage:
similarities are rounded to 6 decimals).
"""

from __future__ import annotations

from typing import Any

from mempill.errors import ConfigError, StorageError
from mempill.secrets import scrub
from mempill.vectors.batched import BatchedIndex
from mempill.vectors.embed import Embedder, Vector

#: float32 storage: similarities are rounded to this many decimals before ordering.
DECIMALS = 6


def _literal(vector: Vector) -> str:
    return "[" + ",".join(repr(x) for x in vector) + "]"


class PgVectorIndex(BatchedIndex):
    """Claim vectors in `schema.claim_vectors` of the database at `dsn`, searched exactly
    with pgvector. Needs the `vector` extension on the server (`CREATE EXTENSION IF NOT
    EXISTS vector` is run; when it fails: ConfigError) and the postgres extra (psycopg).
    Forgotten rows are deleted; as for the agent stores, PostgreSQL keeps their bytes until
    its VACUUM (docs/erasure.md)."""

    def __init__(
        self,
        dsn: str,
        embedder: Embedder,
        *,
        schema: str = "mempill_vectors",
        batch: int = 64,
    ) -> None:
        super().__init__(embedder, batch=batch)
        try:
            import psycopg
            from psycopg import sql
        except ModuleNotFoundError as e:
            raise ConfigError(
                "PgVectorIndex needs psycopg: pip install 'psycopg[binary]>=3.2' "
                "(the mempill 'postgres' extra); or use ExactIndex"
            ) from e
        self._errors: type[Exception] = psycopg.Error
        self._dsn = dsn
        try:
            conn: Any = psycopg.connect(dsn, autocommit=True)
        except psycopg.Error as e:
            raise StorageError(f"PgVectorIndex: cannot connect: {scrub(str(e), dsn)}") from e
        try:
            conn.execute("CREATE EXTENSION IF NOT EXISTS vector")
            found = conn.execute(
                "SELECT extnamespace::regnamespace::text FROM pg_extension WHERE extname = 'vector'"
            ).fetchone()
        except psycopg.Error as e:
            conn.close()
            raise ConfigError(
                "PgVectorIndex needs the pgvector extension on the server, and CREATE "
                f"EXTENSION vector failed: {scrub(str(e), dsn).splitlines()[0]} (install "
                "pgvector, e.g. Debian's postgresql-NN-pgvector, or use ExactIndex)"
            ) from e
        # The extension's objects, qualified: its schema need not be on the search_path.
        ext = sql.Identifier(str(found[0]))
        names = {
            "table": sql.Identifier(schema, "claim_vectors"),
            "vector": sql.SQL("{}.vector").format(ext),
            "dims": sql.SQL("{}.vector_dims").format(ext),
            "distance": sql.SQL("OPERATOR({}.<=>)").format(ext),
        }
        self.schema = schema
        self._sql = {
            "store": sql.SQL(
                "INSERT INTO {table} VALUES (%s, %s, %s::{vector})"
                " ON CONFLICT (agent_id, claim_ref) DO UPDATE SET embedding = EXCLUDED.embedding"
            ).format(**names),
            "drop": sql.SQL(
                "DELETE FROM {table} WHERE agent_id = %s AND claim_ref = ANY(%s)"
            ).format(**names),
            "search": sql.SQL(
                "SELECT claim_ref,"
                " round((1 - (embedding {distance} %s::{vector}))::numeric, %s)::float8"
                " AS similarity FROM {table} WHERE agent_id = %s"
                ' ORDER BY similarity DESC, claim_ref COLLATE "C" LIMIT %s'
            ).format(**names),
            "count": sql.SQL("SELECT count(*) FROM {table}").format(**names),
            "count_agent": sql.SQL("SELECT count(*) FROM {table} WHERE agent_id = %s").format(
                **names
            ),
        }
        try:
            with conn.transaction():
                conn.execute(
                    sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(schema))
                )
                conn.execute(
                    sql.SQL(
                        "CREATE TABLE IF NOT EXISTS {table} (agent_id text NOT NULL,"
                        " claim_ref text NOT NULL, embedding {vector} NOT NULL,"
                        " PRIMARY KEY (agent_id, claim_ref))"
                    ).format(**names)
                )
            row = conn.execute(
                sql.SQL("SELECT {dims}(embedding) FROM {table} LIMIT 1").format(**names)
            ).fetchone()
        except psycopg.Error as e:
            conn.close()
            raise StorageError(
                f"PgVectorIndex: cannot create {schema}.claim_vectors: {scrub(str(e), dsn)}"
            ) from e
        self._conn = conn
        if row is not None:
            self.dimensions = int(row[0])

    def __repr__(self) -> str:
        return f"PgVectorIndex(schema={self.schema!r}, embedder={self.embedder!r})"

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def _run(self, what: str, *params: Any, many: list[tuple[Any, ...]] | None = None) -> Any:
        try:
            if many is not None:
                with self._conn.transaction(), self._conn.cursor() as cur:
                    cur.executemany(self._sql[what], many)
                return None
            return self._conn.execute(self._sql[what], params).fetchall()
        except self._errors as e:
            raise StorageError(f"PgVectorIndex: {what}: {scrub(str(e), self._dsn)}") from e

    def _store(self, rows: list[tuple[str, str, Vector]]) -> None:
        if rows:
            self._run("store", many=[(a, r, _literal(v)) for a, r, v in rows])

    def _drop(self, agent_id: str, claim_refs: list[str]) -> None:
        self._run("drop", many=[(agent_id, list(claim_refs))])

    def _search(self, agent_id: str, query: Vector, k: int) -> list[tuple[str, float]]:
        found = self._run("search", _literal(query), DECIMALS, agent_id, k)
        return [(str(ref), float(sim) + 0.0) for ref, sim in found]

    def _count(self, agent_id: str | None) -> int:
        found = self._run("count") if agent_id is None else self._run("count_agent", agent_id)
        return int(found[0][0])
