"""The harness's session: `mempill.streams.Session`, reading only what an operation can
have changed.

After every operation a session reads the ledger entries it appended, for every agent the
stream has named (`Session._new_entries`): a read transaction per agent and per operation,
most of them for agents the operation never wrote to, and on SQLite a throwaway database
opened and migrated to answer for an agent with no database yet (about a millisecond). Rows
change only inside `Store.write` transactions (a `Reader` has no way to write), so
`HarnessSession` notes the agents the engine opens for writing and reads only those: the
same entries, for a fraction of the reads. The differential machine also takes each written
agent's outbox state in the same read snapshot.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any

from mempill.core.model import LedgerEntry, PendingAdjudication
from mempill.ports import Writer
from mempill.streams import Session

#: an audit page larger than any stream's ledger: every entry after the last one seen
ALL = 1_000_000_000
#: (handle_id, status, notified) of each outbox row, by handle
OutboxState = tuple[tuple[str, str, bool], ...]


@dataclass
class HarnessSession(Session):
    """A stream on one engine, as the conformance harness runs it.

    The engine's store is wrapped so that every `write(agent)` it opens marks the agent in
    `written`; after an operation only the tracked agents so marked are read. An agent
    whose store was not opened for writing has no new row, so skipping it yields exactly
    the entries the full read yields. `unseen()` checks that claim against the store (the
    machine does so with every digest comparison).
    """

    #: also take each written agent's outbox state (`outbox_state`) after every operation
    watch_outbox: bool = False
    outboxes: dict[str, OutboxState] = field(default_factory=dict)
    written: set[str] = field(default_factory=set)

    def __post_init__(self) -> None:
        store = self.engine.store
        spy = store.write if isinstance(store.write, WriteSpy) else WriteSpy(store.write)
        spy.written = self.written  # a kept store (see engines.py) reports to its new session
        store.write = spy  # type: ignore[method-assign]  # this store object only

    def _new_entries(self) -> tuple[dict[str, Any], ...]:
        found: list[dict[str, Any]] = []
        for agent in sorted(self.agents):
            if agent not in self.written:  # never written, or nothing written since last read
                if self.watch_outbox:
                    self.outboxes.setdefault(agent, ())
                continue
            self.written.discard(agent)  # marks of agents not tracked yet are kept for later
            with self.engine.store.read(agent) as reader:
                entries = reader.audit(None, self.seen_seq.get(agent, 0), ALL)
                if self.watch_outbox:
                    self.outboxes[agent] = outbox_state(reader.pending(None))
            if entries:
                self.seen_seq[agent] = entries[-1].stream_seq
            found.extend(e.to_dict() for e in entries)
        return tuple(found)

    def unseen(self) -> dict[str, tuple[LedgerEntry, ...]]:
        """Ledger entries of tracked agents that no record has shown (none, unless a row was
        written outside a `Store.write` this session saw): every agent is read."""
        found = {}
        for agent in sorted(self.agents):
            with self.engine.store.read(agent) as reader:
                entries = reader.audit(None, self.seen_seq.get(agent, 0), ALL)
            if entries:
                found[agent] = entries
        return found


class WriteSpy:
    """A store's `write`, noting each agent it is opened for in `written`."""

    def __init__(self, opener: Callable[[str], AbstractContextManager[Writer]]) -> None:
        self.opener = opener
        self.written: set[str] = set()

    def __call__(self, agent_id: str) -> AbstractContextManager[Writer]:
        self.written.add(agent_id)
        return self.opener(agent_id)


def outbox_state(rows: Iterable[PendingAdjudication]) -> OutboxState:
    """The columns of the outbox that are updated in place (reference §6: a row's status and
    its notified flag; every other column, like every other table, is only ever appended).
    Compared after every operation, they catch a difference that a later update could undo;
    the rows' other columns are compared by the content digests."""
    return tuple(sorted((p.handle_id, p.status.value, p.notified) for p in rows))
