"""The state of one write transaction: stream_seq, tx time, ids and the lines it touches.

Rows go through the Batch, which applies them to the cached line states in place, marked
dirty until COMMIT (see `core/linestate.py`). A line's new rows are applied together when
the line is next asked for (or at COMMIT), so a claim and its ledger entry refresh the
claim's view once."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from mempill.core.config import EngineConfig
from mempill.core.dates import MICROSECOND
from mempill.core.enums import Disposition, EventKind
from mempill.core.fold import ClaimView, view
from mempill.core.linestate import LineState
from mempill.core.model import AssertionRow, ClaimRow, LedgerEntry, LineRows
from mempill.core.search import claim_terms, indexed_below
from mempill.engine.linecache import LineCache
from mempill.errors import NotFoundError
from mempill.ids import IdFactory
from mempill.ports import Writer


@dataclass(frozen=True, slots=True)
class Committed:
    """What one call wrote, for the work after COMMIT (vector index, oracle outbox)."""

    agent_id: str
    new_claims: tuple[ClaimRow, ...] = ()
    queued: tuple[str, ...] = ()


@dataclass(slots=True)
class _Rows:
    claims: list[ClaimRow] = field(default_factory=list)
    entries: list[LedgerEntry] = field(default_factory=list)
    assertions: list[AssertionRow] = field(default_factory=list)


@dataclass
class Batch:
    """The state of one write transaction of one agent."""

    txn: Writer
    agent_id: str
    ids: IdFactory
    now: datetime
    config: EngineConfig
    has_oracle: bool
    cache: LineCache
    seq: int = 0
    start_seq: int = 0
    last_tx: datetime | None = None
    tx_time: datetime | None = None
    queued: list[str] = field(default_factory=list)
    new_claims: list[ClaimRow] = field(default_factory=list)
    local: dict[tuple[str, str], LineState] = field(default_factory=dict)
    seen: dict[tuple[str, str], LineState] = field(default_factory=dict)
    unapplied: dict[tuple[str, str], _Rows] = field(default_factory=dict)
    known: list[tuple[str, str]] | None = None  # lines the calls will write, when known
    versions: dict[tuple[str, str], int] = field(default_factory=dict)
    text_index: bool = True  # write the word index (docs/search.md)
    index_block: int = 0  # … with each claim (0), or that many ledger positions at a time

    def __post_init__(self) -> None:
        """Read the head, and the versions of the `known` lines with as few statements."""
        lines = self.known or ()
        if len(lines) == 1:
            self.seq, self.last_tx, version = self.txn.head_and_line(*lines[0])
            self.versions[lines[0]] = version
        else:
            self.seq, self.last_tx = self.txn.head()
            if lines:
                self.versions = self.txn.line_versions(lines)
        self.start_seq = self.seq

    def tick(self) -> datetime:
        """Start a call: its tx time is now, or last + 1 µs if the clock has not moved past."""
        tx = (
            self.now
            if self.last_tx is None or self.now > self.last_tx
            else self.last_tx + MICROSECOND
        )
        self.last_tx = self.tx_time = tx
        return tx

    @property
    def tx(self) -> datetime:
        assert self.tx_time is not None, "tick() before writing"
        return self.tx_time

    def next_seq(self) -> int:
        self.seq += 1
        return self.seq

    # ---- line states: written in place, hidden from readers until COMMIT

    def line_state(self, subject: str, predicate: str) -> LineState:
        """The line as this transaction sees it (its own writes included)."""
        line = (subject, predicate)
        if line in self.unapplied:
            self._apply(line)
        known = self.local.get(line) or self.seen.get(line)
        if known is not None:  # we hold the agent's lock: only our own writes change it
            return known
        version = self.versions.pop(line, None)
        if version is None:
            version = self.txn.line_version(subject, predicate)
        if version > self.start_seq:  # every row of ours goes through `_writing` first
            raise AssertionError(f"line {line} has rows this transaction did not track")
        shared = self.cache.refreshed(
            (self.agent_id, subject, predicate),
            version,
            lambda after: self.txn.line_since(subject, predicate, after),
        )
        self.seen[line] = shared
        return shared

    def _writing(self, line: tuple[str, str]) -> LineState:
        """The state of a line about to get a row of this transaction.

        The shared state is marked dirty before its first uncommitted row: readers then
        fold a fresh read of their own snapshot instead, until `publish` (after COMMIT)
        or `abandon` (after a rollback, which also drops the state from the cache).
        """
        state = self.local.get(line)
        if state is None:
            state = self.line_state(*line)
            self.cache.mark_dirty(state)
            self.local[line] = state
        return state

    def _rows(self, line: tuple[str, str]) -> _Rows:
        """The rows of `line` written since the line was last asked for."""
        rows = self.unapplied.get(line)
        if rows is None:
            self._writing(line)
            rows = self.unapplied[line] = _Rows()
        return rows

    def _apply(self, line: tuple[str, str]) -> None:
        rows = self.unapplied.pop(line)
        self.local[line].apply(
            LineRows(
                claims=tuple(rows.claims),
                entries=tuple(rows.entries),
                assertions=tuple(rows.assertions),
            )
        )

    def add_claim(self, row: ClaimRow) -> None:
        rows = self._rows((row.subject, row.predicate))
        self.txn.append_claim(row)
        if self.text_index and not self.index_block:
            self.txn.append_terms(row.claim_ref, claim_terms(row.subject, row.predicate, row.value))
        rows.claims.append(row)
        self.new_claims.append(row)

    def add_assertion(self, row: AssertionRow) -> None:
        rows = self._rows((row.subject, row.predicate))
        self.txn.append_assertion(row)
        rows.assertions.append(row)

    def entry(
        self,
        kind: EventKind,
        disposition: Disposition,
        rationale: dict[str, Any],
        *,
        claim_ref: str | None,
        line: tuple[str, str] | None,
        request_ref: str | None = None,
    ) -> LedgerEntry:
        entry = LedgerEntry(
            agent_id=self.agent_id,
            stream_seq=self.next_seq(),
            entry_id=self.ids(),
            claim_ref=claim_ref,
            event_kind=kind,
            disposition=disposition,
            rationale=rationale,
            recorded_at=self.tx,
            subject=None if line is None else line[0],
            predicate=None if line is None else line[1],
            request_ref=request_ref,
        )
        rows = None if line is None else self._rows(line)
        self.txn.append_entry(entry)
        if rows is not None:
            rows.entries.append(entry)
        return entry

    def committed(self, claims_from: int = 0, queued_from: int = 0) -> Committed:
        """The claims and handles this transaction wrote (from the given positions on)."""
        return Committed(
            self.agent_id, tuple(self.new_claims[claims_from:]), tuple(self.queued[queued_from:])
        )

    def settle(self) -> None:
        """Apply every line's outstanding rows and, when the head entered a new block of
        the word index, write the terms of the blocks completed (before COMMIT)."""
        for line in list(self.unapplied):
            self._apply(line)
        if not (self.text_index and self.index_block):
            return
        done = indexed_below(self.start_seq, self.index_block)
        complete = indexed_below(self.seq, self.index_block)
        if complete > done:
            for ref, subject, predicate, value in self.txn.recorded_claims(done, complete):
                self.txn.append_terms(ref, claim_terms(subject, predicate, value))

    def publish(self) -> None:
        """After COMMIT: the line states written in place are committed now."""
        for (subject, predicate), state in self.local.items():
            self.cache.publish((self.agent_id, subject, predicate), state)

    def abandon(self) -> None:
        """After a rollback: the states written in place hold rows that never were."""
        self.cache.forget((self.agent_id, s, p) for s, p in self.local)

    def claim_view(self, claim_ref: str) -> ClaimView:
        row = self.txn.claim(claim_ref)
        if row is None:
            raise NotFoundError(f"agent {self.agent_id!r} has no claim {claim_ref!r}")
        return view(
            row,
            self.txn.claim_entries(claim_ref),
            self.txn.claim_assertions(claim_ref),
            self.config,
        )
