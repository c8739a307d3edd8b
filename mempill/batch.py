"""The state of one write transaction: stream_seq, tx time, ids and the lines it touches.

Rows go through the Batch so each line this transaction writes has a private state that
includes its own rows (see `lines.py`); after COMMIT those states are shared."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from mempill.config import EngineConfig
from mempill.dates import MICROSECOND
from mempill.enums import Disposition, EventKind
from mempill.errors import NotFoundError
from mempill.fold import ClaimView, view
from mempill.ids import IdFactory
from mempill.lines import LineCache, LineState
from mempill.model import AssertionRow, ClaimRow, LedgerEntry, LineRows
from mempill.ports import Writer


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

    def __post_init__(self) -> None:
        self.seq, self.last_tx = self.txn.head()
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

    # ---- line states: the shared cache holds committed rows, writes go to private copies

    def line_state(self, subject: str, predicate: str) -> LineState:
        """The line as this transaction sees it (its own writes included)."""
        line = (subject, predicate)
        known = self.local.get(line) or self.seen.get(line)
        if known is not None:  # we hold the agent's lock: only our own writes change it
            return known
        version = self.txn.line_version(subject, predicate)
        shared = self.cache.refreshed(
            (self.agent_id, subject, predicate),
            version,
            lambda after: self.txn.line_since(subject, predicate, after),
            upto=self.start_seq,  # never let this transaction's own rows into the shared cache
        )
        if version > self.start_seq:
            return self._private(line, shared)
        self.seen[line] = shared
        return shared

    def _private(self, line: tuple[str, str], shared: LineState) -> LineState:
        state = self.cache.private_copy(shared)
        state.apply(self.txn.line_since(line[0], line[1], state.version))
        self.local[line] = state
        return state

    def _writing(self, line: tuple[str, str]) -> LineState:
        """The private state of a line about to get a row (loaded before the row is stored).

        A line without a private state has no rows of this transaction yet (all of them
        go through here), so the shared committed state is exactly its current state.
        """
        state = self.line_state(*line)
        private = self.local.get(line)
        if private is None:
            private = self.local[line] = self.cache.private_copy(state)
        return private

    def add_claim(self, row: ClaimRow) -> None:
        state = self._writing((row.subject, row.predicate))
        self.txn.append_claim(row)
        state.apply(LineRows(claims=(row,)))
        self.new_claims.append(row)

    def add_assertion(self, row: AssertionRow) -> None:
        state = self._writing((row.subject, row.predicate))
        self.txn.append_assertion(row)
        state.apply(LineRows(assertions=(row,)))

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
        state = None if line is None else self._writing(line)
        self.txn.append_entry(entry)
        if state is not None:
            state.apply(LineRows(entries=(entry,)))
        return entry

    def publish(self) -> None:
        """After COMMIT: the private line states are committed now; share them."""
        for (subject, predicate), state in self.local.items():
            self.cache.publish((self.agent_id, subject, predicate), state)

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
