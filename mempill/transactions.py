"""Transactions, retries and post-commit work: the base of the Engine."""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Self, TypeVar

from mempill.batch import Batch
from mempill.clock import Clock, system_clock
from mempill.config import EngineConfig
from mempill.enums import PendingStatus
from mempill.errors import ConflictError, TransientStorageError
from mempill.fold import Line, Scan, project, views
from mempill.ids import IdFactory, random_ids
from mempill.linecache import LineCache
from mempill.model import AdjudicationRequest, Projection
from mempill.ports import NoOpVector, OraclePort, Reader, Store, VectorPort, Writer, has_oracle

log = logging.getLogger("mempill")
T = TypeVar("T")


@dataclass(frozen=True, slots=True, kw_only=True)
class RetryPolicy:
    """Capped, jittered exponential backoff for transient storage errors."""

    attempts: int = 8
    base_seconds: float = 0.01
    cap_seconds: float = 1.0

    def delay(self, attempt: int) -> float:
        return random.uniform(0, min(self.cap_seconds, self.base_seconds * 2**attempt))


class Transactions:
    """The engine's plumbing: the store, clock, ids, ports, the transaction loop with its
    retries, the oracle notifications after a commit, and the cached line views."""

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
    ) -> None:
        """`cache_claims` bounds the claims the line cache holds (about 4 KiB each)."""
        self.store = store
        self.oracle = oracle
        self.vector = vector or NoOpVector()
        self.config = config or EngineConfig()
        self.clock = clock
        self.ids = ids
        self.retry = retry or RetryPolicy()
        self.lines = LineCache(self.config, max_claims=cache_claims)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.store.close()

    def __repr__(self) -> str:
        return f"<mempill.Engine backend={self.store.backend!r}>"

    # ------------------------------------------------------------ transactions

    def _write(
        self,
        agent_id: str,
        work: Callable[[Batch], T],
        *,
        replay: Callable[[Writer], T | None] | None = None,
        now: datetime | None = None,
    ) -> tuple[T, Batch]:
        """Run `work` in one write transaction, retrying the whole of it when transient.

        Before a retry, `replay` looks for the rows of an attempt whose COMMIT was lost
        with the connection; when it finds them, their result is returned instead.
        """
        now = self.clock() if now is None else now
        for attempt in range(self.retry.attempts):
            batch: Batch | None = None
            try:
                with self.store.write(agent_id) as txn:
                    if attempt and replay is not None:
                        done = replay(txn)
                        if done is not None:
                            return done, self._batch(txn, agent_id, now)
                    batch = self._batch(txn, agent_id, now)
                    result = work(batch)
                batch.publish()
                return result, batch
            except BaseException as e:
                if batch is not None:
                    batch.abandon()
                if not isinstance(e, TransientStorageError):
                    raise
                if attempt + 1 == self.retry.attempts:
                    raise ConflictError(
                        f"write for agent {agent_id!r} failed after {attempt + 1} attempts: {e}"
                    ) from e
                log.info("transient storage error (attempt %d): %s", attempt + 1, e)
                time.sleep(self.retry.delay(attempt))
        raise AssertionError("unreachable")

    def _batch(self, txn: Writer, agent_id: str, now: datetime) -> Batch:
        return Batch(txn, agent_id, self.ids, now, self.config, has_oracle(self.oracle), self.lines)

    def _after_commit(self, batch: Batch) -> dict[str, bool]:
        for row in batch.new_claims:
            self.vector.index_claim(row)
        return {handle: self._notify(batch.agent_id, handle) for handle in batch.queued}

    def _notify(self, agent_id: str, handle_id: str) -> bool:
        """Call the oracle for one outbox row; on success mark it notified."""
        if not has_oracle(self.oracle) or self.oracle is None:
            return False
        with self.store.read(agent_id) as reader:
            row = reader.pending_by_handle(handle_id)
        if row is None or row.status is not PendingStatus.PENDING:
            return False
        request = AdjudicationRequest(
            handle_id=handle_id,
            agent_id=agent_id,
            subject=row.subject,
            predicate=row.predicate,
            payload=row.request,
        )
        try:
            self.oracle.request_adjudication(handle_id, request)
        except Exception:  # an oracle failure must never orphan the claim (SPEC §6)
            log.warning("oracle failed for handle %s; it stays pending", handle_id, exc_info=True)
            return False
        with self.store.write(agent_id) as txn:
            txn.set_pending_notified(handle_id)
        return True

    # ------------------------------------------------------------ reads

    def _project(
        self,
        reader: Reader,
        agent: str,
        subject: str,
        predicate: str,
        as_of: datetime | None,
        valid_at: datetime | None,
        now: datetime,
    ) -> Projection:
        with self._line(reader, agent, subject, predicate, as_of) as line:
            return project(
                line,
                agent_id=agent,
                subject=subject,
                predicate=predicate,
                as_of=as_of,
                valid_at=valid_at,
                now=now,
                config=self.config,
            )

    @contextmanager
    def _line(
        self, reader: Reader, agent: str, subject: str, predicate: str, as_of: datetime | None
    ) -> Iterator[Line]:
        """The line from the cache, refreshed to the reader's snapshot (and held still)."""
        state = self.lines.refreshed(
            (agent, subject, predicate),
            reader.line_version(subject, predicate),
            lambda after: reader.line_since(subject, predicate, after),
        )
        if as_of is None:
            with self.lines.reading(state) as line:
                if line is not None:
                    yield line
                    return
        else:
            rows = self.lines.rows(state, as_of)
            if rows is not None:
                yield Scan(views(rows, self.config))
                return
        # a write in this engine holds the cached line: fold our own snapshot instead
        yield Scan(views(reader.line(subject, predicate, as_of), self.config))
