"""The transaction runner: one write transaction per call, retried whole when transient,
and the line reads that fold a cached line state held still for the reader.

Ingest calls of one agent made from several threads at once are *group committed*: the
first caller leads, runs the calls waiting at that moment in one transaction (each with its
own clock reading, in arrival order, exactly as if they ran one after another) and commits
once, so one fsync covers them all; every caller returns only after that COMMIT. Then it
hands the lead to the first caller that came meanwhile (`grouping.py`)."""

from __future__ import annotations

import logging
import math
import random
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Generic, TypeVar

from mempill.clock import Clock
from mempill.core import parse
from mempill.core.config import EngineConfig
from mempill.core.fold import Line, Scan, project, views
from mempill.core.linestate import LineState
from mempill.core.model import LineRows, Projection
from mempill.core.travel import Cut
from mempill.engine.batch import Batch, Committed
from mempill.engine.grouping import Groups, Waiter
from mempill.engine.linecache import LineCache
from mempill.errors import ConfigError, ConflictError, TransientStorageError
from mempill.ids import IdFactory
from mempill.ports import Reader, Store, Writer, read_only_error

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
        cache_bytes: int,
        text_index: bool = True,
    ) -> None:
        """`cache_claims` and `cache_bytes` bound the line cache (claims, estimated bytes);
        `text_index` False writes no word index rows (docs/search.md: `reindex` later)."""
        self.store = store
        self.config = config
        self.clock = clock
        self.ids = ids
        self.retry = retry
        self.has_oracle = has_oracle
        self.text_index = text_index
        self.lines = LineCache(config, max_claims=cache_claims, max_bytes=cache_bytes)
        self._groups: Groups[_Call[Any]] = Groups()

    # ------------------------------------------------------------ writes

    def writable(self, what: str) -> None:
        """Refuse a write on a read-only store before any storage is touched."""
        if self.store.read_only:
            raise read_only_error(what)

    def write(
        self,
        agent_id: str,
        work: Callable[[Batch], T],
        *,
        replay: Callable[[Writer], T | None] | None = None,
        now: datetime | None = None,
    ) -> tuple[T, Committed]:
        """Run `work` in one write transaction, retrying the whole of it when transient.

        Before a retry, `replay` looks for the rows of an attempt whose COMMIT was lost
        with the connection; when it finds them, their result is returned instead.
        """
        self.writable("write")
        call = _Call(work, replay, self.clock() if now is None else now)
        self._run([call], agent_id)
        return call.outcome()

    def write_grouped(
        self,
        agent_id: str,
        work: Callable[[Batch], T],
        *,
        replay: Callable[[Writer], T | None] | None = None,
        lines: tuple[tuple[str, str], ...] = (),
    ) -> tuple[T, Committed]:
        """`write`, group committed with the calls other threads make for the agent meanwhile.

        `work` must not raise but for storage errors: when a call of a group raises, the
        group is rolled back and each of its calls runs again alone. `lines` are the lines the
        call will write, when known: their versions are read together, with the head.
        """
        call = _Call(work, replay, self.clock(), lines)  # ingest_requests checked `writable`
        self._groups.run(agent_id, call, lambda calls: self._run(calls, agent_id))
        return call.outcome()

    def waiting(self, agent_id: str) -> int:
        """How many ingest calls of the agent wait for the next group commit (diagnostics)."""
        return self._groups.waiting(agent_id)

    def _run(self, calls: list[_Call[Any]], agent_id: str) -> None:
        """Run `calls` in one transaction (retried whole when transient); on any other error
        run each alone, so only the call that fails sees its error."""
        try:
            self._transaction(calls, agent_id)
        except BaseException as e:
            if len(calls) == 1 or isinstance(e, ConflictError) or not isinstance(e, Exception):
                for call in calls:
                    call.fail(e)
                if not isinstance(e, Exception):
                    raise
                return
            for call in calls:
                try:
                    self._transaction([call], agent_id)
                except BaseException as alone:
                    call.fail(alone)
                    if not isinstance(alone, Exception):
                        raise

    def _transaction(self, calls: list[_Call[Any]], agent_id: str) -> None:
        for attempt in range(self.retry.attempts):
            batch: Batch | None = None
            try:
                with self.store.write(agent_id) as txn:
                    lines = (
                        list(calls[0].lines)
                        if len(calls) == 1
                        else list(dict.fromkeys(line for call in calls for line in call.lines))
                    )
                    batch = self._batch(txn, agent_id, calls[0].now, lines)
                    for call in calls:
                        if attempt and call.replay is not None:
                            done = call.replay(txn)
                            if done is not None:
                                call.set(done, Committed(agent_id))
                                continue
                        marks = len(batch.new_claims), len(batch.queued)
                        batch.now = call.now
                        call.set(call.work(batch), batch.committed(*marks))
                    batch.settle()
                batch.publish()
                for call in calls:
                    call.finished = True
                return
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

    def _batch(
        self, txn: Writer, agent_id: str, now: datetime, lines: list[tuple[str, str]] | None = None
    ) -> Batch:
        return Batch(
            txn,
            agent_id,
            self.ids,
            now,
            self.config,
            self.has_oracle,
            self.lines,
            known=lines,
            text_index=self.text_index,
            index_block=self.store.index_block,
        )

    # ------------------------------------------------------------ reads

    def project(
        self,
        reader: Reader | None,
        agent: str,
        subject: str,
        predicate: str,
        cut: Cut | None,
        valid_at: datetime | None,
        now: datetime,
    ) -> Projection:
        """The belief of one line as of `cut` (None: everything): in the reader's snapshot,
        or, without a reader, in a snapshot of its own (`read_line`)."""
        with (
            self.line(reader, agent, subject, predicate, cut)
            if reader is not None
            else self.read_line(agent, subject, predicate, cut)
        ) as line:
            return project(
                line,
                agent_id=agent,
                subject=subject,
                predicate=predicate,
                as_of=None if cut is None else cut.at,
                valid_at=valid_at,
                now=now,
                config=self.config,
            )

    @contextmanager
    def read_line(
        self, agent: str, subject: str, predicate: str, cut: Cut | None
    ) -> Iterator[Line]:
        """The line in a snapshot of its own with one read (`Store.read_line`): its version
        and the rows the cache lacks (PostgreSQL: one round trip)."""
        key = (agent, subject, predicate)
        after = self.lines.version(key)
        version, delta = self.store.read_line(agent, subject, predicate, after)

        def since(seq: int) -> LineRows:  # the cached state's rows after `seq` (under its lock)
            if seq < after:  # the state was dropped or replaced meanwhile: no read here
                raise _Stale
            return _after(delta, seq)

        def whole() -> LineRows:  # a write holds the cached line: fold a snapshot's rows
            return delta if after == 0 else self.store.read_line(agent, subject, predicate, 0)[1]

        try:
            state = self.lines.refreshed(key, version, since)
        except _Stale:  # fold a whole snapshot of the line, uncached
            rows = whole()
            yield Scan(views(rows if cut is None else cut.rows(rows), self.config))
            return
        with self._folded(state, cut, whole) as line:
            yield line

    @contextmanager
    def line(
        self, reader: Reader, agent: str, subject: str, predicate: str, cut: Cut | None
    ) -> Iterator[Line]:
        """The line from the cache, refreshed to the reader's snapshot (and held still)."""
        state = self.lines.refreshed(
            (agent, subject, predicate),
            reader.line_version(subject, predicate),
            lambda after: reader.line_since(subject, predicate, after),
        )
        with self._folded(state, cut, lambda: reader.line(subject, predicate)) as line:
            yield line

    @contextmanager
    def _folded(
        self, state: LineState, cut: Cut | None, whole: Callable[[], LineRows]
    ) -> Iterator[Line]:
        """The cached state as a line to fold (held still), cut when asked; while a write in
        this engine holds the state, the `whole` rows of the reader's own snapshot."""
        if cut is None:
            with self.lines.reading(state) as line:
                if line is not None:
                    yield line
                    return
        else:
            rows = self.lines.rows(state, cut)
            if rows is not None:
                yield Scan(views(rows, self.config))
                return
        rows = whole()
        yield Scan(views(rows if cut is None else cut.rows(rows), self.config))


class _Stale(Exception):
    """The cached state lacks rows a point query's delta does not hold (it was dropped or
    replaced while the query read): reading them there would do I/O under its lock."""


def _after(rows: LineRows, seq: int) -> LineRows:
    """The rows written after stream_seq `seq`."""
    return LineRows(
        claims=tuple(c for c in rows.claims if c.stream_seq > seq),
        entries=tuple(e for e in rows.entries if e.stream_seq > seq),
        assertions=tuple(a for a in rows.assertions if a.stream_seq > seq),
    )


@dataclass(eq=False)
class _Call(Waiter, Generic[T]):
    """One caller's work in a (group) transaction, and what became of it."""

    work: Callable[[Batch], T]
    replay: Callable[[Writer], T | None] | None
    now: datetime
    lines: tuple[tuple[str, str], ...] = ()
    result: T | None = None
    done: Committed | None = None

    def set(self, result: T, done: Committed) -> None:
        self.result, self.done, self.error = result, done, None

    def outcome(self) -> tuple[T, Committed]:
        if self.error is not None:
            raise self.error
        assert self.finished and self.done is not None
        return self.result, self.done  # type: ignore[return-value]


def check_setup(
    config: Any, clock: Any, ids: Any, retry: Any, cache_claims: Any, cache_bytes: Any
) -> None:
    """The Engine's collaborators are of the right kind (ConfigError otherwise)."""
    if config is not None and not isinstance(config, EngineConfig):
        raise ConfigError(f"config: expected an EngineConfig, got {type(config).__name__}")
    if not callable(clock) or not callable(ids):
        raise ConfigError("clock and ids must be callables (a Clock and an IdFactory)")
    if retry is not None and not (
        isinstance(retry, RetryPolicy)
        and parse.whole(retry.attempts, 1)
        and all(
            parse.whole(x, 0) or (isinstance(x, float) and 0 <= x < math.inf)
            for x in (retry.base_seconds, retry.cap_seconds)
        )
    ):
        raise ConfigError("retry: expected a RetryPolicy with attempts >= 1, finite delays >= 0")
    if not parse.whole(cache_claims, 0):
        raise ConfigError(f"cache_claims: expected an integer >= 0, got {parse.show(cache_claims)}")
    if not parse.whole(cache_bytes, 0):
        raise ConfigError(f"cache_bytes: expected an integer >= 0, got {parse.show(cache_bytes)}")
