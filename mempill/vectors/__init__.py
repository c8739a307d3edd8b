"""Semantic search: embedders and vector indexes behind the engine's `VectorPort`
(docs/vectors.md).

`ExactIndex(embedder)` is the in-process exact index; `SqliteVecIndex` (sqlite-vec) and
`PgVectorIndex` (pgvector) persist the vectors when their extension is installed; all three
search exactly, so they agree. `ToyEmbedder` is a deterministic embedder for tests.

    engine = mempill.open_default_in_memory(vector=ExactIndex(ToyEmbedder()))
"""

from __future__ import annotations

from collections.abc import Sequence

from mempill.vectors.batched import BatchedIndex
from mempill.vectors.embed import Embedder, ToyEmbedder, claim_text
from mempill.vectors.exact import ExactIndex
from mempill.vectors.pgvector import PgVectorIndex
from mempill.vectors.sqlitevec import SqliteVecIndex

__all__: Sequence[str] = (
    "BatchedIndex",
    "Embedder",
    "ExactIndex",
    "PgVectorIndex",
    "SqliteVecIndex",
    "ToyEmbedder",
    "claim_text",
)
