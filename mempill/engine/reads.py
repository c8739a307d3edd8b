"""The Engine's read calls: point queries, time travel, the audit trail and digests.

A mixin of `Engine` (engine.py), which holds the runner and the `read` snapshot these use;
kept apart so each file stays readable. Every call parses its arguments first (a
ValidationError touches no storage), reads the clock once and runs in one read snapshot of
one agent, retried whole after a transient storage failure.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from mempill.core import parse
from mempill.core.fold import history
from mempill.core.limits import MAX_SEQ
from mempill.core.model import AuditPage, History, Projection, WriteStat
from mempill.core.search import PredicateCount, SubjectsPage
from mempill.core.travel import ChangesPage, Snapshot, Timeline
from mempill.engine import finding, travel
from mempill.engine.assertions import Instant, key
from mempill.engine.digests import content_digest, ledger_digest
from mempill.engine.oracle import read_snapshot, retrying
from mempill.engine.runner import TransactionRunner
from mempill.engine.travel import read_cut
from mempill.ports import Reader

T = TypeVar("T")


class Reads:
    """The read calls of `Engine` (see its docstring for the errors every call may raise)."""

    runner: TransactionRunner

    def read(self, agent_id: str, fn: Callable[[Reader], T]) -> T:
        """`fn` over one read snapshot of the agent, read again from the start after a
        transient storage failure. For the layers over the engine (compat)."""
        return read_snapshot(self.runner, parse.agent_id(agent_id), fn)

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
        now = self.runner.clock()
        return retrying(
            self.runner,
            lambda: self.runner.project(None, agent, subject, predicate, cut, valid, now),
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
        now = self.runner.clock()

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
        now = self.runner.clock()

        def read(reader: Reader) -> History:
            with self.runner.line(reader, agent, subject, predicate, cut) as line:
                return history(
                    line,
                    agent_id=agent,
                    subject=subject,
                    predicate=predicate,
                    as_of=None if cut is None else cut.at,
                    now=now,
                    config=self.runner.config,
                )

        return self.read(agent, read)

    # ------------------------------------------------------------ time travel

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
        self.runner.clock()
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

    # ------------------------------------------------------------ discovery

    def list_subjects(
        self,
        agent_id: str,
        *,
        prefix: str | None = None,
        limit: int = 100,
        after: str | None = None,
    ) -> SubjectsPage:
        """The agent's subjects in code point order (those starting with `prefix`), each with
        its lines and how many hold a belief now; `after=` the page's `next_cursor`. Raises
        ValidationError, StorageError."""
        return finding.list_subjects(self.runner, agent_id, prefix, limit, after)

    def list_predicates(
        self, agent_id: str, subject: str | None = None
    ) -> tuple[PredicateCount, ...]:
        """The predicates in use (of `subject`, or of every subject) in code point order,
        each with its lines and how many hold a belief now. Raises ValidationError,
        StorageError."""
        return finding.list_predicates(self.runner, agent_id, subject)

    # ------------------------------------------------------------ ergonomic helpers

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
