"""The Engine: the only place that opens transactions, retries, and calls the oracle.

It glues the pure core (`core/decide.py`, `core/fold.py`, applied by `ingest.py`,
`assertions.py` and `oracle.py`) to a `Store` through its `TransactionRunner`.
Every public call reads the clock once; every write runs in one transaction of one
agent and is retried as a whole on a transient storage error.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any, Self, TypeVar

from mempill.clock import Clock, system_clock
from mempill.core import parse
from mempill.core.config import EngineConfig
from mempill.core.enums import AssertionKind, Granularity, PendingStatus, Provenance, Verdict
from mempill.core.fold import history
from mempill.core.limits import MAX_SEQ
from mempill.core.model import (
    AdjudicationOutcome,
    AuditPage,
    EndFactReceipt,
    History,
    IngestRequest,
    PendingAdjudication,
    Projection,
    Receipt,
    ReconcileReport,
    ValidityReceipt,
    WriteStat,
)
from mempill.core.travel import ChangesPage, ErasureReceipt, Snapshot, Timeline
from mempill.engine import erasure, travel
from mempill.engine.assertions import Instant, assert_validity, end_belief, end_claim, key
from mempill.engine.digests import content_digest, ledger_digest
from mempill.engine.ingest import ingest_requests
from mempill.engine.linecache import DEFAULT_CACHE_BYTES, LineCache
from mempill.engine.oracle import OracleLoop, read_snapshot, retrying
from mempill.engine.runner import RetryPolicy, TransactionRunner, check_setup
from mempill.engine.travel import read_cut
from mempill.errors import ValidationError
from mempill.ids import IdFactory, random_ids
from mempill.ports import NoOpVector, OraclePort, Reader, Store, VectorPort, has_oracle

RequestLike = IngestRequest | Mapping[str, Any]
T = TypeVar("T")

__all__ = ["Engine", "RetryPolicy"]


class Engine:
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
        ids: IdFactory = random_ids,
        retry: RetryPolicy | None = None,
        cache_claims: int = 50_000,
        cache_bytes: int = DEFAULT_CACHE_BYTES,
    ) -> None:
        """`cache_claims` and `cache_bytes` bound the line cache (claims held, estimated
        bytes of rows and keys); ConfigError for a collaborator of the wrong kind."""
        check_setup(config, clock, ids, retry, cache_claims, cache_bytes)
        self.runner = TransactionRunner(
            store,
            config=config or EngineConfig(),
            clock=clock,
            ids=ids,
            retry=retry or RetryPolicy(),
            has_oracle=has_oracle(oracle),
            cache_claims=cache_claims,
            cache_bytes=cache_bytes,
        )
        self.oracle_loop = OracleLoop(self.runner, oracle, vector or NoOpVector())

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

    def query_memory(
        self,
        agent_id: str,
        subject: str,
        predicate: str,
        as_of: Instant | Snapshot | None = None,
        valid_at: Instant | None = None,
    ) -> Projection:
        """The belief of one line: what was believed at tx time `as_of`, true at `valid_at`.

        Raises ValidationError (a key that is empty, over 1,024 characters or with U+0000
        or a lone surrogate, a bad date…), StorageError.
        """
        agent = parse.agent_id(agent_id)
        subject, predicate = key(subject, "subject"), key(predicate, "predicate")
        cut = read_cut(as_of, agent, "as_of")
        valid = parse.optional_moment(valid_at, "valid_at")
        now = self.clock()
        return self.read(
            agent,
            lambda r: self.runner.project(r, agent, subject, predicate, cut, valid, now),
        )

    def query_subject(
        self,
        agent_id: str,
        subject: str,
        as_of: Instant | Snapshot | None = None,
        valid_at: Instant | None = None,
    ) -> tuple[Projection, ...]:
        """One projection per predicate of a subject, sorted by predicate. Raises
        ValidationError, StorageError."""
        agent = parse.agent_id(agent_id)
        subject = key(subject, "subject")
        cut = read_cut(as_of, agent, "as_of")
        valid = parse.optional_moment(valid_at, "valid_at")
        now = self.clock()

        def read(reader: Reader) -> tuple[Projection, ...]:
            return tuple(
                self.runner.project(reader, agent, subject, p, cut, valid, now)
                for p in sorted(reader.predicates(subject, cut))
            )

        return self.read(agent, read)

    def query_history(
        self, agent_id: str, subject: str, predicate: str, as_of: Instant | Snapshot | None = None
    ) -> History:
        """Every claim of a line, ordered by effective start, with its status at `as_of`.
        Raises ValidationError, StorageError."""
        agent = parse.agent_id(agent_id)
        subject, predicate = key(subject, "subject"), key(predicate, "predicate")
        cut = read_cut(as_of, agent, "as_of")
        now = self.clock()

        def read(reader: Reader) -> History:
            with self.runner.line(reader, agent, subject, predicate, cut) as line:
                return history(
                    line,
                    agent_id=agent,
                    subject=subject,
                    predicate=predicate,
                    as_of=None if cut is None else cut.at,
                    now=now,
                    config=self.config,
                )

        return self.read(agent, read)

    # ------------------------------------------------------------ time travel and erasure

    def snapshot(self, agent_id: str) -> Snapshot:
        """The agent's ledger position now: `as_of=` it (or its `.token`) in any query sees
        exactly the writes up to it. Raises ValidationError (agent_id), StorageError."""
        return travel.snapshot(self.runner, parse.agent_id(agent_id))

    def query_timeline(
        self,
        agent_id: str,
        subject: str,
        predicate: str,
        *,
        valid_from: Instant | None = None,
        valid_until: Instant | None = None,
        as_of: Instant | Snapshot | None = None,
    ) -> Timeline:
        """The belief of a line over valid time `[valid_from, valid_until)` (None: open), as
        segments; `query_memory` at any instant of a segment gives its belief. Raises
        ValidationError (also for `valid_from >= valid_until`), StorageError."""
        return travel.timeline(
            self.runner, agent_id, subject, predicate, valid_from, valid_until, as_of
        )

    def query_changes(
        self,
        agent_id: str,
        *,
        since: Instant | Snapshot | None = None,
        until: Instant | Snapshot | None = None,
        after: Snapshot | str | None = None,
        subject: str | None = None,
        predicate: str | None = None,
        valid_at: Instant | None = None,
        cursor: int | None = None,
        limit: int = 100,
    ) -> ChangesPage:
        """What changed after `since` (or the snapshot `after`) up to `until`: each touched
        line with its ledger entries in the window and its belief before and after, in the
        order the window first touched them, `limit` lines a page (`cursor=` the page's
        `next_cursor`). Raises ValidationError, StorageError."""
        return travel.changes(
            self.runner, agent_id, since, until, after, subject, predicate, valid_at, cursor, limit
        )

    def erase(
        self, agent_id: str, subject: str, predicate: str | None = None, *, reason: str
    ) -> ErasureReceipt:
        """Forget every value stored about a subject (or one of its lines), in place: the
        one exception to append-only (docs/erasure.md). The ledger keeps a `LineErased`
        entry per line (when, why, which line) and no value. Raises ValidationError (a bad
        key or reason, a read-only engine), ConflictError, StorageError."""
        return erasure.erase(self.runner, agent_id, subject, predicate, reason)

    def query_audit(
        self, agent_id: str, claim_ref: str | None = None, after_seq: int = 0, limit: int = 100
    ) -> AuditPage:
        """Ledger entries in ascending stream_seq after `after_seq`, filtered, then limited.

        Raises ValidationError (`after_seq` not an integer in [0, 2**63 - 1], `limit` not
        one in [1, 2**63 - 1], a claim_ref that is not a UUID), StorageError.
        """
        agent = parse.agent_id(agent_id)
        ref = None if claim_ref is None else parse.claim_ref(claim_ref)
        after_seq = parse.count(after_seq, "after_seq", 0)
        limit = parse.count(limit, "limit", 1)
        self.clock()
        wanted = min(limit + 1, MAX_SEQ)  # one more tells whether a next page exists
        entries = self.read(agent, lambda r: r.audit(ref, after_seq, wanted))
        more = len(entries) > limit
        entries = entries[:limit]
        return AuditPage(
            entries=entries, next_cursor=entries[-1].stream_seq if more and entries else None
        )

    def ledger_digest(self, agent_id: str) -> str:
        """SHA-256 over the agent's ledger entries in stream order (reference §9). Raises
        ValidationError (agent_id), StorageError."""
        return self.read(parse.agent_id(agent_id), ledger_digest)

    def content_digest(self, agent_id: str) -> str:
        """SHA-256 over everything stored for the agent except timing statistics: the ledger,
        claim rows, validity assertions, edges and the oracle outbox (reference §9).

        Two stores with equal content digests hold the same rows, down to a claim's
        `external_anchor`; the ledger digest alone would not see a change there.
        Raises ValidationError (agent_id), StorageError.
        """
        return self.read(parse.agent_id(agent_id), content_digest)

    def write_stats(self, agent_id: str) -> tuple[WriteStat, ...]:
        """The agent's write statistics (`record_write_stats=True`). Raises
        ValidationError (agent_id), StorageError."""
        agent = parse.agent_id(agent_id)
        return self.read(agent, lambda r: r.write_stats())

    def read(self, agent_id: str, fn: Callable[[Reader], T]) -> T:
        """`fn` over one read snapshot of the agent, read again from the start after a
        transient storage failure. For the layers over the engine (compat)."""
        return read_snapshot(self.runner, parse.agent_id(agent_id), fn)

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

    def recall(
        self,
        agent_id: str,
        subject: str,
        predicate: str,
        *,
        as_of: Instant | Snapshot | None = None,
        valid_at: Instant | None = None,
    ) -> Projection:
        """The belief of a line (`.value`, `.status`, `.candidates`); raises what
        `query_memory` raises."""
        return self.query_memory(agent_id, subject, predicate, as_of=as_of, valid_at=valid_at)

    def history(
        self,
        agent_id: str,
        subject: str,
        predicate: str,
        *,
        as_of: Instant | Snapshot | None = None,
    ) -> History:
        """Every claim of a line; raises what `query_history` raises."""
        return self.query_history(agent_id, subject, predicate, as_of=as_of)
