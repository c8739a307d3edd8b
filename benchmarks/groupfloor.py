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
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchmarks.context import Bench
from benchmarks.durable import rotated
from benchmarks.scriptfloor import Fields, Script
from benchmarks.sqlfloor import Capture
from benchmarks.streams import Claim, fresh
from benchmarks.timing import finite, in_threads, median, ratio
from mempill.core.model import Receipt
from mempill.engine.grouping import Groups, Waiter


@dataclass(eq=False)
class _Call(Waiter):
    fields: Fields
    receipt: Receipt | None = None


class GroupFloor:
    """The script floor of `agents` agent databases (files in `folder`), group committed."""

    def __init__(self, captured: Capture, folder: Path, agents: int) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self.scripts = [
            Script(captured, folder / f"group{number:02d}.db") for number in range(agents)
        ]
        self.store_lock = threading.Lock() if agents > 1 else None
        self.groups: Groups[_Call] = Groups()  # the engine's own queue (engine/grouping.py)

    def ingest(self, agent: int, claim: Claim) -> Receipt:
        """One claim into agent number `agent`; returns after the COMMIT that covers it."""
        script = self.scripts[agent]
        call = _Call(script.fields(claim))

        def run(calls: list[_Call]) -> None:
            receipts = script.run([c.fields for c in calls], self.store_lock)
            for c, receipt in zip(calls, receipts, strict=True):
                c.receipt, c.finished = receipt, True

        self.groups.run(str(agent), call, run)
        if call.error is not None:
            raise call.error
        assert call.receipt is not None
        return call.receipt

    def rate(self, batches: Sequence[Sequence[tuple[int, Claim]]]) -> float:
        """Claims per second of one thread per batch, each claim (agent, claim) ingested
        one per call; wall time from the common start to the last writer's end."""

        def worker(batch: Sequence[tuple[int, Claim]]) -> Callable[[], None]:
            def work() -> None:
                for agent, claim in batch:
                    self.ingest(agent, claim)

            return work

        seconds = in_threads([worker(b) for b in batches])
        return sum(len(b) for b in batches) / seconds

    def close(self) -> None:
        for script in self.scripts:
            script.close()


def assigned(claims: Sequence[Sequence[Claim]], agents: int) -> list[list[tuple[int, Claim]]]:
    """Writer w's claim j goes to agent (w + j * writers) % agents, as the engine's runs."""
    writers = len(claims)
    return [
        [((w + j * writers) % agents, claim) for j, claim in enumerate(batch)]
        for w, batch in enumerate(claims)
    ]


def stored(floor: GroupFloor) -> list[int]:
    """Claims in each agent database (every claim acknowledged must be there)."""
    return [
        int(script.floor.conn.execute("SELECT count(*) FROM claims").fetchone()[0])
        for script in floor.scripts
    ]


def measure(bench: Bench, captured: Capture) -> dict[str, Any]:
    """Per round, the group-commit floor's rate with one writer and with the most writers
    (`sizes.threads`), into one agent and into `wide_agents` agents (fresh files under the
    run's scratch folder), each writer `writer_claims` claims; the ratio per round, then
    the median — as the engine's `over_one_writer`."""
    sizes = bench.sizes
    one, most = min(sizes.threads), max(sizes.threads)
    found: dict[str, Any] = {}
    for agents in (1, sizes.wide_agents):
        floor = GroupFloor(captured, bench.scratch(f"group-floor-{agents}"), agents)
        try:
            for agent in range(agents):  # the databases' first pages, before timing
                floor.ingest(agent, fresh("floor", "warmup", agent))
            rounds: list[dict[int, float]] = []
            for number in range(sizes.concurrency_rounds):
                bench.progress.say(
                    f"group-commit floor: {agents} agent(s), "
                    f"round {number + 1}/{sizes.concurrency_rounds}"
                )
                rates: dict[int, float] = {}
                for writers in rotated([one, most], number):
                    tag = f"r{number}x{writers}w"
                    claims = [
                        [fresh("floor", f"{tag}{w}-", j) for j in range(sizes.writer_claims)]
                        for w in range(writers)
                    ]
                    rates[writers] = floor.rate(assigned(claims, agents))
                rounds.append(rates)
            written = stored(floor)
        finally:
            floor.close()
        expected = agents + sizes.concurrency_rounds * (one + most) * sizes.writer_claims
        if sum(written) != expected:
            raise RuntimeError(f"group-commit floor: {sum(written)} claims stored, {expected} sent")
        found[str(agents)] = {
            "agents": agents,
            "writers": most,
            "round_rates": [{str(k): v for k, v in r.items()} for r in rounds],
            "over_one_writer": finite(median([ratio(r[most], r[one]) for r in rounds])),
        }
    return found
