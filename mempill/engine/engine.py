"""The Engine: the only place that opens transactions, retries, and calls the oracle.

It glues the pure core (`core/decide.py`, `core/fold.py`, applied by `ingest.py`,
`assertions.py` and `oracle.py`) to a `Store` through its `TransactionRunner`.
Every public call reads the clock once; every write runs in one transaction of one
agent and is retried as a whole on a transient storage error.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Self

from mempill.clock import Clock, system_clock
from mempill.core import parse
from mempill.core.config import EngineConfig
from mempill.core.enums import AssertionKind, Granularity, PendingStatus, Provenance, Verdict
from mempill.core.model import (
    AdjudicationOutcome,
    EndFactReceipt,
    IngestRequest,
    PendingAdjudication,
    Receipt,
    ReconcileReport,
    ValidityReceipt,
)
from mempill.core.search import SearchResult
from mempill.core.travel import ErasureReceipt, Snapshot
from mempill.engine import erasure, finding
from mempill.engine.assertions import Instant, assert_validity, end_belief, end_claim
from mempill.engine.ingest import ingest_requests
from mempill.engine.linecache import DEFAULT_CACHE_BYTES, LineCache
from mempill.engine.oracle import OracleLoop, retrying
from mempill.engine.reads import Reads
from mempill.engine.runner import RetryPolicy, TransactionRunner, check_setup
from mempill.errors import ConfigError, ValidationError
from mempill.ids import IdFactory, time_ordered_ids
from mempill.ports import NoOpVector, OraclePort, Store, VectorPort, has_oracle

RequestLike = IngestRequest | Mapping[str, Any]

__all__ = ["Engine", "RetryPolicy"]


class Engine(Reads):
    """A mempill engine over one store. Use the `open_*` functions to make one.

    It holds two collaborators: a `TransactionRunner` (store, clock, ids, retries, line
    cache) that every call goes through, and an `OracleLoop` (the oracle and vector
    ports) for the outbox and the adjudication calls, which the Engine delegates to.

    Errors (reference §7): every method checks its arguments before it touches storage
    and raises ValidationError for one that does not parse (nothing is written); any
    method may raise StorageError when the storage layer fails (a read lost to a
    transient failure is retried first, like a write); writes raise ConflictError when
    contention outlives the retries. Each method's docstring names the rest. After any
    error the engine stays usable. Over a read-only store every call that writes raises
    ValidationError before touching storage (`reconcile` only reports).
    """

    def __init__(
        self,
        store: Store,
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
    ) -> None:
        """`cache_claims` and `cache_bytes` bound the line cache (claims held, estimated
        bytes of rows and keys); `text_index=False` writes claims without their word index
        rows (faster ingest; `search` misses them until `reindex`, docs/search.md);
        ConfigError for a collaborator of the wrong kind."""
        check_setup(config, clock, ids, retry, cache_claims, cache_bytes)
        if not isinstance(text_index, bool):
            raise ConfigError(f"text_index must be True or False, got {parse.show(text_index)}")
        self.runner = TransactionRunner(
            store,
            config=config or EngineConfig(),
            clock=clock,
            ids=ids,
            retry=retry or RetryPolicy(),
            has_oracle=has_oracle(oracle),
            cache_claims=cache_claims,
            cache_bytes=cache_bytes,
            text_index=text_index,
        )
        self.oracle_loop = OracleLoop(
            self.runner, oracle, vector if vector is not None else NoOpVector()
        )

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.store.close()

    def __repr__(self) -> str:
        return f"<mempill.Engine backend={self.store.backend!r}>"

    # ------------------------------------------------------------ collaborators

    @property
    def store(self) -> Store:
        return self.runner.store

    @property
    def config(self) -> EngineConfig:
        return self.runner.config

    @property
    def clock(self) -> Clock:
        return self.runner.clock

    @property
    def ids(self) -> IdFactory:
        return self.runner.ids

    @property
    def lines(self) -> LineCache:
        return self.runner.lines

    @property
    def oracle(self) -> OraclePort | None:
        return self.oracle_loop.oracle

    # ------------------------------------------------------------ ingest

    def ingest(self, request: RequestLike) -> Receipt:
        """Write one claim; the receipt says which of the twelve dispositions it got.

        A request that parses but is not acceptable is a Rejected receipt (rule V). Raises
        ValidationError when it does not parse (a wrong type, an unknown field, a value
        that is not JSON or has an integer of more than 4,300 digits, a `derived_from` of
        more than 256 entries or with one over 64 characters or with U+0000…; the limits
        are `mempill.core.limits`) or when the engine is read-only; ConflictError,
        StorageError.
        """
        return ingest_requests(self.runner, self.oracle_loop, [parse.ingest_request(request)])[0]

    def ingest_many(self, requests: Iterable[RequestLike]) -> tuple[Receipt, ...]:
        """Write several claims of one agent in one transaction, each seeing the ones before.

        Raises ValidationError as `ingest` does, and when `requests` is not a list of
        requests of one agent; ConflictError, StorageError.
        """
        parsed = [parse.ingest_request(r) for r in parse.items(requests, "requests")]
        if not parsed:
            return ()
        if len({r.agent_id for r in parsed}) > 1:
            raise ValidationError("ingest_many: every request must have the same agent_id")
        return ingest_requests(self.runner, self.oracle_loop, parsed)

    # ------------------------------------------------------------ validity assertions

    def end(
        self,
        agent_id: str,
        claim_ref: str,
        at: Instant,
        *,
        provenance: Any = Provenance.USER_ASSERTED,
        confidence: float = 1.0,
        granularity: Granularity | str | None = None,
    ) -> ValidityReceipt:
        """Close a claim's window at `at` (Bound → Superseded); reopen first to move it.

        `granularity` overrides the display precision read from `at` (e.g. `2024-09`).
        Raises ValidationError, NotFoundError (no such claim of the agent), ConflictError
        (another bound is active), StorageError.
        """
        return end_claim(self.runner, agent_id, claim_ref, at, provenance, confidence, granularity)

    def reopen(
        self, agent_id: str, claim_ref: str, *, provenance: Any = Provenance.USER_ASSERTED
    ) -> ValidityReceipt:
        """Cancel the latest Bound of a claim (Reinstated). Raises ValidationError,
        NotFoundError (no such claim), ConflictError, StorageError."""
        return assert_validity(
            self.runner, agent_id, claim_ref, AssertionKind.REOPEN, provenance, 1.0
        )

    def invalidate(
        self, agent_id: str, claim_ref: str, *, provenance: Any = Provenance.USER_ASSERTED
    ) -> ValidityReceipt:
        """Say a claim was never true: it leaves every read at every instant. Raises
        ValidationError, NotFoundError (no such claim), ConflictError, StorageError."""
        return assert_validity(
            self.runner, agent_id, claim_ref, AssertionKind.INVALIDATE, provenance, 1.0
        )

    def end_fact(
        self,
        agent_id: str,
        subject: str,
        predicate: str,
        at: Instant,
        *,
        value: Any = ...,
        provenance: Any = Provenance.USER_ASSERTED,
        confidence: float = 1.0,
    ) -> EndFactReceipt:
        """End the current belief of a line at `at` (lenient date): bound all its claims.

        The line must believe exactly one value now (pass `value=` to pick one member of
        a set or one side of a contest); otherwise NotFoundError or ConflictError. One
        transaction and one tx time for all the bounds. Raises ValidationError (also for a
        `value` no claim could hold: NaN, a set, an integer of more than 4,300 digits…),
        NotFoundError, ConflictError, StorageError.
        """
        return end_belief(
            self.runner, agent_id, subject, predicate, at, value, provenance, confidence
        )

    # ------------------------------------------------------------ erasure

    def erase(
        self, agent_id: str, subject: str, predicate: str | None = None, *, reason: str
    ) -> ErasureReceipt:
        """Forget every value stored about a subject (or one of its lines), in place: the
        one exception to append-only (docs/erasure.md). The ledger keeps a `LineErased`
        entry per line (when, why, which line) and no value. Raises ValidationError (a bad
        key or reason, a read-only engine), ConflictError, StorageError."""
        return erasure.erase(
            self.runner, agent_id, subject, predicate, reason, forget=self.oracle_loop.vector
        )

    # ------------------------------------------------------------ finding memories

    def search(
        self,
        agent_id: str,
        text: str,
        *,
        limit: int = 20,
        as_of: Instant | Snapshot | None = None,
        valid_at: Instant | None = None,
        include_history: bool = False,
        semantic: bool = False,
    ) -> SearchResult:
        """Lines whose subject, predicate or believed value match `text` (reference §13:
        words, prefixes, accents and case folded; `home_city` matches `city`), best first;
        `semantic=True` ranks by the vector port's nearest claims instead. Raises
        ValidationError, ConfigError (semantic without a vector port), StorageError."""
        return finding.search(
            self.runner,
            self.oracle_loop.vector,
            agent_id,
            text,
            limit=limit,
            as_of=as_of,
            valid_at=valid_at,
            include_history=include_history,
            semantic=semantic,
        )

    def reindex(self, agent_id: str) -> int:
        """Rebuild the agent's word index (and give every claim to the vector port again);
        returns the claims indexed. For stores written before the index existed, or with
        `text_index=False`. Raises ValidationError (also on a read-only engine),
        ConflictError, StorageError."""
        return finding.reindex(self.runner, self.oracle_loop.vector, agent_id)

    def ignored_files(self) -> tuple[tuple[str, str], ...]:
        """(path, reason) of each file in an `open_directory` folder that is not an agent
        store (e.g. `alice copy.db`): store-wide calls skip them. Empty for other stores."""
        found = getattr(self.store, "ignored_files", None)
        return () if found is None else tuple(retrying(self.runner, found))

    # ------------------------------------------------------------ the oracle loop (reference §6)

    def submit_adjudication(
        self,
        handle_id: str,
        verdict: Verdict | str,
        evidence_provenance: Any = Provenance.USER_ASSERTED,
        *,
        agent_id: str | None = None,
    ) -> AdjudicationOutcome:
        """Apply an oracle verdict. Unknown, resolved or expired handles raise NotFoundError.

        Raises ValidationError (a handle that is not 1-1,024 characters of clean text, an
        unknown verdict or provenance, a read-only engine), NotFoundError, ConflictError,
        StorageError.
        """
        return self.oracle_loop.submit_adjudication(
            handle_id, verdict, evidence_provenance, agent_id=agent_id
        )

    def sweep_expired(self) -> int:
        """Expire every pending adjudication past its `expires_at`; returns how many.

        Files of an `open_directory` folder that are not agent stores are skipped
        (`ignored_files`). Raises ConflictError, StorageError.
        """
        return self.oracle_loop.sweep_expired()

    def notify_pending(self, agent_id: str | None = None) -> int:
        """Retry the oracle for pending rows it was never told about; returns how many
        succeeded. `agent_id=None`: every agent. Raises ValidationError, StorageError."""
        return self.oracle_loop.notify_pending(agent_id)

    def list_pending(
        self, agent_id: str | None = None, *, status: PendingStatus | None = PendingStatus.PENDING
    ) -> tuple[PendingAdjudication, ...]:
        """Outbox rows (pending by default; `status=None` for all), oldest first.
        `agent_id=None`: every agent. Raises ValidationError, StorageError."""
        return self.oracle_loop.list_pending(agent_id, status=status)

    def reconcile(
        self, agent_id: str, lines: Iterable[tuple[str, str]] | None = None
    ) -> ReconcileReport:
        """Report each line's status; queue an adjudication for each Contested line without one.

        Never bounds anything. Without an oracle, on a read-only engine, or with nothing to
        escalate, it only reads. Raises ValidationError (`lines` not pairs of keys, or more
        than 10,000 of them), ConflictError, StorageError.
        """
        return self.oracle_loop.reconcile(agent_id, lines)

    # ------------------------------------------------------------ ergonomic helpers

    def remember(
        self,
        agent_id: str,
        subject: str,
        predicate: str,
        value: Any,
        *,
        valid_from: Instant | None = None,
        valid_until: Instant | None = None,
        confidence: float = 1.0,
        **options: Any,
    ) -> Receipt:
        """Record a fact with sensible defaults; dates may be `2020`, `2020-03`, RFC 3339…
        Raises what `ingest` raises."""
        window = None
        if valid_from is not None or valid_until is not None:
            window = {"start": valid_from, "end": valid_until}
            options.setdefault("valid_time_confidence", confidence)
        fields = {"subject": subject, "predicate": predicate, "value": value}
        request = {"agent_id": agent_id, **fields, "valid_time": window}
        request = {**request, "value_confidence": confidence, **options}
        return self.ingest(request)
