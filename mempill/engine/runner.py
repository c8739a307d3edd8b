"""The transaction runner: one write transaction per call, retried whole when transient,
and the line reads that fold a cached line state held still for the reader."""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import TypeVar

from mempill.clock import Clock
from mempill.core.config import EngineConfig
from mempill.core.fold import Line, Scan, project, views
from mempill.core.model import Projection
from mempill.engine.batch import Batch
from mempill.engine.linecache import LineCache
from mempill.errors import ConflictError, TransientStorageError
from mempill.ids import IdFactory
from mempill.ports import Reader, Store, Writer

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


class TransactionRunner:
    """Owns the store, the clock, the ids, the retry policy and the shared line cache."""

    def __init__(
        self,
        store: Store,
        *,
        config: EngineConfig,
        clock: Clock,
        ids: IdFactory,
        retry: RetryPolicy,
        has_oracle: bool,
        cache_claims: int,
    ) -> None:
        """`cache_claims` bounds the claims the line cache holds (about 4 KiB each)."""
        self.store = store
        self.config = config
        self.clock = clock
        self.ids = ids
        self.retry = retry
        self.has_oracle = has_oracle
        self.lines = LineCache(config, max_claims=cache_claims)

    # ------------------------------------------------------------ writes

    def write(
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
        return Batch(txn, agent_id, self.ids, now, self.config, self.has_oracle, self.lines)

    # ------------------------------------------------------------ reads

    def project(
        self,
        reader: Reader,
        agent: str,
        subject: str,
        predicate: str,
        as_of: datetime | None,
        valid_at: datetime | None,
        now: datetime,
    ) -> Projection:
        """The belief of one line in the reader's snapshot."""
        with self.line(reader, agent, subject, predicate, as_of) as line:
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
    def line(
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
