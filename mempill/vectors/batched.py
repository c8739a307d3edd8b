"""What every vector index shares: claims queued and embedded in batches, erased claims
dropped, one lock, and the query side (`nearest`) that embeds the query and asks the store.

A subclass stores vectors (`_store`), drops them (`_drop`) and ranks an agent's vectors
against a unit query vector (`_search`); this class decides what is embedded and when.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from typing import Any

from mempill.core.model import ClaimRow
from mempill.errors import ConfigError, ValidationError
from mempill.vectors.embed import Embedder, Vector, checked, claim_text, unit

log = logging.getLogger("mempill.vectors")


class BatchedIndex:
    """A `VectorPort` that embeds claims in batches: `index_claim` queues the claim's text
    and embeds the queue once it holds `batch` texts (one `embed` call for the lot);
    `nearest` embeds what is still queued for its agent first, so it always sees every
    claim given to it. An embedder failing while indexing is logged and the texts stay
    queued (a committed write never fails because of its index); while querying, it raises.
    Thread-safe: one lock around the queue, the embedder and the stored vectors."""

    def __init__(self, embedder: Embedder, *, batch: int = 64) -> None:
        if not callable(getattr(embedder, "embed", None)):
            raise ConfigError(
                f"expected an embedder with embed(texts), got {type(embedder).__name__}"
            )
        if isinstance(batch, bool) or not isinstance(batch, int) or batch < 1:
            raise ConfigError(f"batch must be a positive integer, got {batch!r}")
        self.embedder = embedder
        self.batch = batch
        self.dimensions: int | None = None
        self._lock = threading.RLock()
        self._queued: dict[tuple[str, str], str] = {}

    # ------------------------------------------------------------ the VectorPort

    def index_claim(self, row: ClaimRow) -> None:
        """Queue the claim's text (`claim_text(row)`), replacing what was queued or stored
        for it; an erased claim (empty subject) is dropped instead."""
        key = (row.agent_id, row.claim_ref)
        with self._lock:
            self._queued.pop(key, None)
            if row.subject == "":
                self._drop(row.agent_id, [row.claim_ref])
                return
            self._queued[key] = claim_text(row)
            if len(self._queued) < self.batch:
                return
            try:
                self.flush()
            except Exception:  # never fail the write that called us; nearest will raise
                log.warning(
                    "embedding %d claims failed; they stay queued", len(self._queued), exc_info=True
                )

    def nearest(self, agent_id: str, text: str, k: int) -> list[tuple[str, float]]:
        """Up to `k` (claim_ref, cosine similarity) of the agent's claims nearest to `text`,
        best first, ties by claim_ref. A query (or claim) embedded to the zero vector is near
        nothing."""
        if isinstance(k, bool) or not isinstance(k, int) or k < 0:
            raise ValidationError(f"k must be a non-negative integer, got {k!r}")
        with self._lock:
            self.flush(agent_id)
            (vector,) = self._embed([text])
            query = unit(vector)
            if k == 0 or query is None:
                return []
            return self._search(agent_id, query, k)

    def forget(self, agent_id: str, claim_refs: Sequence[str]) -> None:
        """Drop the claims' vectors (erasure)."""
        refs = list(claim_refs)
        with self._lock:
            for ref in refs:
                self._queued.pop((agent_id, ref), None)
            if refs:
                self._drop(agent_id, refs)

    # ------------------------------------------------------------ the rest

    def flush(self, agent_id: str | None = None) -> int:
        """Embed and store the queued claims (of one agent, or all); returns how many."""
        with self._lock:
            keys = [key for key in self._queued if agent_id is None or key[0] == agent_id]
            for start in range(0, len(keys), self.batch):
                chunk = keys[start : start + self.batch]
                vectors = self._embed([self._queued[key] for key in chunk])
                stored: list[tuple[str, str, Vector]] = []
                dropped: list[tuple[str, str]] = []
                for key, vector in zip(chunk, vectors, strict=True):
                    scaled = unit(vector)
                    if scaled is None:
                        dropped.append(key)
                    else:
                        stored.append((key[0], key[1], scaled))
                for agent, ref in dropped:
                    self._drop(agent, [ref])
                self._store(stored)
                for key in chunk:
                    del self._queued[key]
            return len(keys)

    def queued(self) -> int:
        """How many claims wait to be embedded."""
        with self._lock:
            return len(self._queued)

    def size(self, agent_id: str | None = None) -> int:
        """How many vectors are stored (for one agent, or all), after embedding the queue."""
        with self._lock:
            self.flush(agent_id)
            return self._count(agent_id)

    def __len__(self) -> int:
        return self.size()

    def __bool__(self) -> bool:  # an empty index is still an index (`vector or default`)
        return True

    def close(self) -> None:
        return None

    def __enter__(self) -> Any:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _embed(self, texts: list[str]) -> list[Vector]:
        vectors = checked(self.embedder.embed(texts), len(texts))
        size = len(vectors[0])
        if self.dimensions is None:
            self.dimensions = size
        elif size != self.dimensions:
            raise ConfigError(
                f"the embedder returned vectors of dimension {size}, but this index holds "
                f"vectors of dimension {self.dimensions} (a new model? open a new index and "
                "call engine.reindex)"
            )
        return vectors

    # ------------------------------------------------------------ storage (subclasses)

    def _store(self, rows: list[tuple[str, str, Vector]]) -> None:
        """Store (agent_id, claim_ref, unit vector) rows, replacing any of the same claims."""
        raise NotImplementedError

    def _drop(self, agent_id: str, claim_refs: list[str]) -> None:
        raise NotImplementedError

    def _search(self, agent_id: str, query: Vector, k: int) -> list[tuple[str, float]]:
        """The top k of the agent's vectors by (-similarity, claim_ref); `query` is a unit
        vector of the index's dimension."""
        raise NotImplementedError

    def _count(self, agent_id: str | None) -> int:
        raise NotImplementedError
