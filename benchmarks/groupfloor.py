"""The group-commit floor: the script floor's ingests, group committed, from many threads.

The group-commit targets compare N writer threads with one (durable, into one agent and
into N agents of one directory). A Python engine under the GIL can only gain as much as
the work it does per claim leaves the disk idle: the less Python per claim, the larger
the gain. So the least Python that writes these rows — the script floor (`scriptfloor`) —
bounds the ratio any engine issuing these statements can reach on this machine.

`GroupFloor` runs the script floor behind the engine's own grouping (the runner's leader,
its followers and the hand-off of the lead): each caller makes its claim's parameters in
its own thread, outside any lock (more favourable than the engine, which makes them inside
the transaction); the first caller to find no leader takes every claim waiting at that
moment and writes them in one transaction — BEGIN and the head read once, each table's
rows in one `executemany`, COMMIT — so one fsync covers them all; every caller returns
after that COMMIT, and the first caller that came meanwhile leads next. Into several
agents, each agent has its own database file and group, and one store-wide lock is held
from BEGIN up to COMMIT, as `open_directory` does by default (the fsyncs of
different agents overlap).
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from benchmarks.scriptfloor import Fields, Script
from benchmarks.sqlfloor import Capture
from benchmarks.streams import Claim
from mempill.core.model import Receipt
from mempill.engine.grouping import Groups, Waiter


@dataclass(eq=False)
class _Call(Waiter):
    fields: Fields
    receipt: Receipt | None = None


class GroupFloor:
    """The script floor of the agents `agent_ids` (a database file each, in `folder`),
    group committed. Its `ingest(claim)` routes by the claim's `agent_id`, like an engine,
    so the concurrency section drives it with the engine's own claims and threads."""

    def __init__(self, captured: Capture, folder: Path, agent_ids: Sequence[str]) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self.scripts = {
            agent: Script(captured, folder / f"group{number:02d}.db")
            for number, agent in enumerate(agent_ids)
        }
        self.store_lock = threading.Lock() if len(agent_ids) > 1 else None
        self.groups: Groups[_Call] = Groups()  # the engine's own queue (engine/grouping.py)

    def ingest(self, claim: Claim) -> Receipt:
        """One claim; returns after the COMMIT that covers it."""
        agent = claim["agent_id"]
        script = self.scripts[agent]
        call = _Call(script.fields(claim))

        def run(calls: list[_Call]) -> None:
            receipts = script.run([c.fields for c in calls], self.store_lock)
            for c, receipt in zip(calls, receipts, strict=True):
                c.receipt, c.finished = receipt, True

        self.groups.run(agent, call, run)
        if call.error is not None:
            raise call.error
        assert call.receipt is not None
        return call.receipt

    def stored(self) -> int:
        """Claims in all its agent databases (every claim acknowledged must be there)."""
        return sum(
            int(script.floor.conn.execute("SELECT count(*) FROM claims").fetchone()[0])
            for script in self.scripts.values()
        )

    def close(self) -> None:
        for script in self.scripts.values():
            script.close()
