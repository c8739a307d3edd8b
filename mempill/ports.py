"""The seams between the engine and the world: the store, the oracle and the vector index."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager
from datetime import datetime
from typing import Protocol

from mempill.core.enums import PendingStatus
from mempill.core.model import (
    AdjudicationRequest,
    AssertionRow,
    ClaimRow,
    EdgeRow,
    LedgerEntry,
    LineRows,
    PendingAdjudication,
    WriteStat,
)
from mempill.core.travel import Cut
from mempill.errors import ConfigError, ValidationError


class Reader(Protocol):
    """Reads of one agent's rows; inside a write transaction they see its own writes."""

    def line(self, subject: str, predicate: str, as_of: datetime | None = None) -> LineRows: ...

    def line_version(self, subject: str, predicate: str) -> int: ...

    def line_since(self, subject: str, predicate: str, after_seq: int) -> LineRows: ...

    def claim(self, claim_ref: str) -> ClaimRow | None: ...

    def claim_entries(self, claim_ref: str) -> tuple[LedgerEntry, ...]: ...

    def claim_assertions(self, claim_ref: str) -> tuple[AssertionRow, ...]: ...

    def children(self, claim_ref: str) -> tuple[str, ...]: ...

    def predicates(self, subject: str, cut: Cut | None = None) -> tuple[str, ...]: ...

    def head(self) -> tuple[int, datetime | None]:
        """The last stream_seq and its transaction time ((0, None) for an empty ledger)."""
        ...

    def seq_at(self, moment: datetime) -> int:
        """The stream_seq of the last entry recorded at or before `moment` (0: none)."""
        ...

    def window(self, after_seq: int, until_seq: int) -> tuple[LedgerEntry, ...]:
        """The entries with `after_seq < stream_seq <= until_seq`, in stream order."""
        ...

    def lines(self) -> tuple[tuple[str, str], ...]: ...

    def term_lines(self, low: str, high: str) -> tuple[tuple[str, str, str], ...]:
        """(subject, predicate, term) of the lines with a claim whose word index holds a
        term in `[low, high)` (code point order); erased claims are left out."""
        ...

    def recorded_claims(self, low: int, high: int) -> tuple[tuple[str, str, str, str], ...]:
        """(claim_ref, subject, predicate, value JSON) of the claims recorded at a stream_seq
        in `[low, high)`, in stream order; erased claims are left out (the word index's
        source, docs/search.md)."""
        ...

    def audit(
        self, claim_ref: str | None, after_seq: int, limit: int
    ) -> tuple[LedgerEntry, ...]: ...

    def ledger(self) -> Iterator[LedgerEntry]: ...

    def all_claims(self) -> tuple[ClaimRow, ...]: ...

    def all_assertions(self) -> tuple[AssertionRow, ...]: ...

    def all_edges(self) -> tuple[EdgeRow, ...]: ...

    def request_entries(self, request_ref: str) -> tuple[LedgerEntry, ...]: ...

    def pending(self, status: PendingStatus | None = None) -> tuple[PendingAdjudication, ...]: ...

    def pending_for_line(self, subject: str, predicate: str) -> tuple[PendingAdjudication, ...]: ...

    def pending_by_handle(self, handle_id: str) -> PendingAdjudication | None: ...

    def write_stats(self) -> tuple[WriteStat, ...]: ...


class Writer(Reader, Protocol):
    """A write transaction of one agent: append-only rows plus the outbox status."""

    def line_versions(self, lines: Sequence[tuple[str, str]]) -> dict[tuple[str, str], int]:
        """The version of each line (0 for an empty one), in one statement."""
        ...

    def head_and_line(self, subject: str, predicate: str) -> tuple[int, datetime | None, int]:
        """`head()` and `line_version(subject, predicate)` together."""
        ...

    def append_claim(self, row: ClaimRow) -> None: ...

    def append_entry(self, entry: LedgerEntry) -> None: ...

    def append_terms(self, claim_ref: str, terms: Sequence[str]) -> None:
        """The word index rows of one claim (docs/search.md), in the claim's transaction."""
        ...

    def delete_terms(self) -> None:
        """Drop the agent's whole word index (before `reindex` writes it again)."""
        ...

    def append_assertion(self, row: AssertionRow) -> None: ...

    def append_edge(self, row: EdgeRow) -> None: ...

    def append_pending(self, row: PendingAdjudication) -> None: ...

    def set_pending_status(self, handle_id: str, status: PendingStatus) -> None: ...

    def set_pending_notified(self, handle_id: str) -> None: ...

    def erasable(self, subject: str) -> tuple[str, ...]:
        """The predicates of the subject's lines holding more than erasure records."""
        ...

    def erase_line(self, subject: str, predicate: str, marker_seq: int) -> tuple[int, int]:
        """Erasure, the one exception to append-only (docs/erasure.md): scrub the line's
        rows in place; (claim rows, ledger entries) scrubbed."""
        ...


class Store(Protocol):
    """A persistence backend: per-agent write transactions and read snapshots.

    A `read_only` store runs no migration and opens nothing for writing; the engine
    refuses every write call on it before touching it (`write` raises too)."""

    backend: str
    read_only: bool
    #: The word index is written this many ledger positions at a time (docs/search.md;
    #: 0: a claim's terms in the claim's own transaction).
    index_block: int

    def write(self, agent_id: str) -> AbstractContextManager[Writer]:
        """Take the agent's write lock and open a transaction; commit on a clean exit."""
        ...

    def read(self, agent_id: str) -> AbstractContextManager[Reader]:
        """A consistent read snapshot of one agent."""
        ...

    def read_line(
        self, agent_id: str, subject: str, predicate: str, after: int
    ) -> tuple[int, LineRows]:
        """One line's version and its rows written after stream_seq `after` (none when the
        version is not past it), in one snapshot: a point query's only read (PostgreSQL:
        one round trip)."""
        ...

    def may_write(self, agent_id: str) -> bool:
        """False when the store is bound to another agent (reference §8.1 write authority)."""
        ...

    def agents(self) -> tuple[str, ...]:
        """Every agent with stored rows."""
        ...

    def agents_with_pending(self) -> tuple[str, ...]:
        """Agents with a pending adjudication (for sweeps and notification retries)."""
        ...

    def find_handle(self, handle_id: str) -> str | None:
        """The agent owning an adjudication handle, or None."""
        ...

    def purge(self, agent_id: str) -> None:
        """After an erasure committed: make the scrubbed bytes unreadable from the store's
        own files where the backend can (SQLite: VACUUM and a truncating WAL checkpoint;
        PostgreSQL and memory: nothing, see docs/erasure.md)."""
        ...

    def close(self) -> None: ...


class OraclePort(Protocol):
    """Adjudicates contested claims; called after the commit that queued the request."""

    def request_adjudication(self, handle_id: str, request: AdjudicationRequest) -> None: ...


class VectorPort(Protocol):
    """Similarity search over claims (`engine.search(..., semantic=True)`).

    `index_claim` is called after the COMMIT that wrote each claim (and by `reindex` for
    every stored claim); `nearest` returns up to `k` (claim_ref, similarity) pairs of the
    agent's claims closest to `text`, best first, ties by claim_ref; `forget` drops claims
    (erasure). A port with `index_claim` alone still works; semantic search then raises
    ConfigError."""

    def index_claim(self, row: ClaimRow) -> None: ...

    def nearest(self, agent_id: str, text: str, k: int) -> Sequence[tuple[str, float]]: ...

    def forget(self, agent_id: str, claim_refs: Sequence[str]) -> None: ...


class NoOpOracle:
    """The default oracle: none. Conflicts are surfaced as Contested (rule E6)."""

    def request_adjudication(self, handle_id: str, request: AdjudicationRequest) -> None:
        return None


class NoOpVector:
    """The default vector port: none. Semantic search raises ConfigError."""

    def index_claim(self, row: ClaimRow) -> None:
        return None

    def nearest(self, agent_id: str, text: str, k: int) -> Sequence[tuple[str, float]]:
        raise ConfigError(
            "semantic search needs a vector port: open the engine with vector=... "
            "(e.g. mempill.vectors.ExactIndex(embedder))"
        )

    def forget(self, agent_id: str, claim_refs: Sequence[str]) -> None:
        return None


def read_only_error(what: str) -> ValidationError:
    """What every write call on a read-only store raises, before touching it. A
    ValidationError: the call is refused like a request this engine cannot take, and
    nothing is written (docs/decisions.md, "Read-only stores")."""
    return ValidationError(
        f"{what}: this engine is read-only (its store was opened with read_only=True); "
        "open it without read_only to write"
    )


def has_oracle(oracle: OraclePort | None) -> bool:
    return oracle is not None and not isinstance(oracle, NoOpOracle)


__all__: Sequence[str] = (
    "NoOpOracle",
    "NoOpVector",
    "OraclePort",
    "Reader",
    "Store",
    "VectorPort",
    "Writer",
    "has_oracle",
    "read_only_error",
)
