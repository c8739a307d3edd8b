"""`ExactIndex`: the in-process, exact vector index (the default adapter)."""

from __future__ import annotations

import heapq
import math
import operator
from array import array

from mempill.vectors.batched import BatchedIndex
from mempill.vectors.embed import Embedder, Vector

#: Similarities are rounded to this many decimals before ordering, so float noise (an
#: embedder's last bit, a summation order) cannot reorder claims that tie.
DECIMALS = 12


def similarity(query: Vector, stored: array[float]) -> float:
    """The cosine similarity of two unit vectors, correctly rounded (`math.fsum`: the same
    on every machine, whatever the order of the components), then rounded to DECIMALS."""
    return round(math.fsum(map(operator.mul, query, stored)), DECIMALS) + 0.0


class ExactIndex(BatchedIndex):
    """Vectors in this process's memory: `nearest` compares the query with every vector of
    the agent (exact nearest neighbours, O(claims of the agent) per query), so it gives the
    same answer on every backend and machine for the same embedder.

    Nothing is persisted: after a restart the index is empty; give it the stored claims again
    with `engine.reindex(agent_id)` (the re-embedding command, `mempill reindex`). Memory:
    one array of `dimensions` doubles per claim (a 384-dimension model: about 3 KB a claim).
    """

    def __init__(self, embedder: Embedder, *, batch: int = 64) -> None:
        super().__init__(embedder, batch=batch)
        self._vectors: dict[str, dict[str, array[float]]] = {}

    def __repr__(self) -> str:
        return f"ExactIndex({self.embedder!r}, batch={self.batch})"

    def agents(self) -> tuple[str, ...]:
        """The agents with stored vectors."""
        with self._lock:
            self.flush()
            return tuple(sorted(a for a, held in self._vectors.items() if held))

    def _store(self, rows: list[tuple[str, str, Vector]]) -> None:
        for agent_id, claim_ref, vector in rows:
            self._vectors.setdefault(agent_id, {})[claim_ref] = array("d", vector)

    def _drop(self, agent_id: str, claim_refs: list[str]) -> None:
        held = self._vectors.get(agent_id)
        if held is None:
            return
        for ref in claim_refs:
            held.pop(ref, None)
        if not held:
            del self._vectors[agent_id]

    def _search(self, agent_id: str, query: Vector, k: int) -> list[tuple[str, float]]:
        held = self._vectors.get(agent_id, {})
        best = heapq.nsmallest(
            k, ((-similarity(query, vector), ref) for ref, vector in held.items())
        )
        return [(ref, -negated + 0.0) for negated, ref in best]

    def _count(self, agent_id: str | None) -> int:
        if agent_id is None:
            return sum(len(held) for held in self._vectors.values())
        return len(self._vectors.get(agent_id, {}))
