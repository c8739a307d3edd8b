"""A generated workload: a deterministic mix of writes over a few agents and lines.

`run(engine, steps=…, seed=…)` uses a memory the way agents do, touching everything the
lab's SQL views look at: valid-time successions, corroborations, contradictions (Contested,
or QueuedForAdjudication when the engine has an oracle) answered by verdicts some steps
later (Affirm, Deny, Unknown) or left to expire, rumours without valid time, ends,
reopenings, invalidations, low-confidence reports, set-valued and model-derived claims.
Every choice comes from `random.Random(seed)`, so with a stepping clock and seeded ids
the same call writes the same ledger. `burst` adds concurrent writers (threads), so the
store's `write_stats` has lock waits; `demo_store` builds a directory store from both.
"""

from __future__ import annotations

import random
import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any

import mempill
from mempill.core.config import EngineConfig
from mempill.engine import Engine
from mempill.errors import MempillError
from mempill.streams import LabOracle

START = datetime(2026, 1, 1, tzinfo=UTC)
#: Tx time between two engine calls of the demo store (its stepping clock).
STEP = timedelta(minutes=5)
#: The demo store's adjudications expire after this much tx time (unless answered).
TTL = timedelta(hours=3)
CITIES = ("Lisbon", "Porto", "Braga", "Faro", "Evora", "Coimbra", "Aveiro", "Sintra")
LANGUAGES = ("pt", "en", "fr", "de", "es", "it")
#: (action, weight): how often each kind of write is chosen.
MIX = (
    ("succession", 30),
    ("corroboration", 8),
    ("contradiction", 12),
    ("rumour", 4),
    ("low_confidence", 6),
    ("set_member", 8),
    ("derived", 5),
    ("end", 8),
    ("reopen", 2),
    ("invalidate", 4),
    ("sweep", 2),
)
VERDICTS = (("Affirm", 5), ("Deny", 3), ("Unknown", 2))


@dataclass
class Workload:
    """The state of one generated run: what was written, what awaits a verdict."""

    engine: Engine
    rng: random.Random
    agents: tuple[str, ...]
    subjects: tuple[str, ...]
    max_delay: int
    step: int = 0
    counts: Counter[str] = field(default_factory=Counter)
    #: claim refs by line, with each one's valid-from year (None: no valid time)
    claims: dict[tuple[str, str, str], list[tuple[str, int | None]]] = field(default_factory=dict)
    #: next free valid-time year of each line's succession
    years: dict[tuple[str, str, str], int] = field(default_factory=dict)
    ended: list[tuple[str, str]] = field(default_factory=list)
    #: (step at which to answer, agent, handle)
    queued: list[tuple[int, str, str]] = field(default_factory=list)

    def line(self, predicate: str) -> tuple[str, str, str]:
        return (self.rng.choice(self.agents), self.rng.choice(self.subjects), predicate)

    def remember(
        self, line: tuple[str, str, str], value: Any, year: int | None, **options: Any
    ) -> None:
        agent, subject, predicate = line
        window: dict[str, Any] = {}
        if year is not None:
            window = {"valid_from": str(year), "valid_until": str(year + self.rng.randint(1, 3))}
        receipt = self.engine.remember(agent, subject, predicate, value, **window, **options)
        self.counts[receipt.disposition.value] += 1
        if receipt.committed:
            self.claims.setdefault(line, []).append((receipt.claim_ref, year))
        if receipt.handle_id is not None:
            due = self.step + self.rng.randint(1, self.max_delay)
            self.queued.append((due, agent, receipt.handle_id))

    def known(self) -> tuple[tuple[str, str, str], str, int | None] | None:
        """A random line written before, one of its claims and that claim's year."""
        lines = [line for line in self.claims if line[2] in ("city", "employer")]
        if not lines:
            return None
        line = self.rng.choice(lines)
        ref, year = self.rng.choice(self.claims[line])
        return line, ref, year

    # ------------------------------------------------------------ the actions

    def succession(self) -> None:
        line = self.line(self.rng.choice(("city", "employer")))
        year = self.years.get(line, 2000 + self.rng.randint(0, 10))
        self.years[line] = year + self.rng.randint(1, 3)
        self.remember(line, self.rng.choice(CITIES), year)

    def corroboration(self) -> None:
        found = self.known()
        if found is not None:
            line, ref, year = found
            value = self._value_of(line, ref)
            self.remember(line, value, year)

    def contradiction(self) -> None:
        found = self.known()
        if found is not None:
            line, _, year = found
            self.remember(line, self.rng.choice(CITIES), year)

    def rumour(self) -> None:
        found = self.known()
        if found is not None:
            self.remember(found[0], self.rng.choice(CITIES), None)

    def low_confidence(self) -> None:
        line = self.line("city")
        self.remember(line, self.rng.choice(CITIES), 2000 + self.rng.randint(0, 20), confidence=0.2)

    def set_member(self) -> None:
        line = self.line("languages")
        self.remember(line, self.rng.choice(LANGUAGES), None, cardinality="SetValued")

    def derived(self) -> None:
        found = self.known()
        if found is not None:
            (agent, subject, _), ref, year = found
            line = (agent, subject, "region")
            parent = [ref]
            self.remember(line, self.rng.choice(("north", "south")), year,
                          provenance="ModelDerived", derived_from=parent)  # fmt: skip

    def end(self) -> None:
        found = self.known()
        if found is not None:
            (agent, _, _), ref, year = found
            at = f"{(year or 2010) + self.rng.randint(0, 2)}-0{self.rng.randint(1, 9)}"
            self.engine.end(agent, ref, at)
            self.ended.append((agent, ref))
            self.counts["end"] += 1

    def reopen(self) -> None:
        if self.ended:
            agent, ref = self.ended.pop(self.rng.randrange(len(self.ended)))
            self.engine.reopen(agent, ref)
            self.counts["reopen"] += 1

    def invalidate(self) -> None:
        found = self.known()
        if found is not None:
            self.engine.invalidate(found[0][0], found[1])
            self.counts["invalidate"] += 1

    def sweep(self) -> None:
        self.counts["expired"] += self.engine.sweep_expired()

    def answer_due(self) -> None:
        """Verdicts for the adjudications whose delay has passed (expired ones refuse)."""
        due = [q for q in self.queued if q[0] <= self.step]
        self.queued = [q for q in self.queued if q[0] > self.step]
        for _, agent, handle in due:
            verdict = _weighted(self.rng, VERDICTS)
            self.attempt("verdict", partial(self.answer, agent, handle, verdict))

    def answer(self, agent: str, handle: str, verdict: str) -> None:
        self.engine.submit_adjudication(handle, verdict, agent_id=agent)
        self.counts[f"verdict {verdict}"] += 1

    def attempt(self, name: str, call: Callable[[], object]) -> None:
        try:
            call()
        except MempillError as e:  # refused (a conflict, an expired handle…): counted
            self.counts[f"refused {name}: {type(e).__name__}"] += 1

    def _value_of(self, line: tuple[str, str, str], ref: str) -> Any:
        history = self.engine.query_history(*line)
        return next((e.value for e in history.entries if e.claim_ref == ref), "?")


def _weighted(rng: random.Random, choices: tuple[tuple[str, int], ...]) -> str:
    return rng.choices([c for c, _ in choices], weights=[w for _, w in choices])[0]


def run(
    engine: Engine,
    *,
    steps: int = 300,
    seed: int = 7,
    agents: tuple[str, ...] = ("ada", "bea", "cyd"),
    subjects: tuple[str, ...] = ("alice", "bob", "carol", "dave"),
    max_delay: int = 40,
) -> Counter[str]:
    """`steps` writes chosen from `MIX` (answering due verdicts between them); returns how
    many writes got each disposition and how many actions were refused, by reason."""
    work = Workload(engine, random.Random(seed), agents, subjects, max_delay)
    for work.step in range(steps):
        work.answer_due()
        action = _weighted(work.rng, MIX)
        work.attempt(action, getattr(work, action))
    return work.counts


def burst(engine: Engine, *, writers: int = 4, claims: int = 25, agent: str = "burst") -> None:
    """`writers` threads writing `claims` new facts each at once, all to one agent (so the
    writes queue for its lock and `write_stats` records the waits)."""
    barrier = threading.Barrier(writers)

    def write(writer: int) -> None:
        barrier.wait()
        for i in range(claims):
            engine.remember(agent, f"w{writer}", f"note{i}", i)

    threads = [threading.Thread(target=write, args=(w,)) for w in range(writers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


def demo_config() -> EngineConfig:
    return EngineConfig(default_adjudication_ttl_seconds=TTL.total_seconds())


def demo_options() -> dict[str, Any]:
    """The demo's engine options: stepping clock, seeded ids, an oracle, a TTL, write stats."""
    return {
        "clock": mempill.SteppingClock(START, STEP),
        "ids": mempill.SeededIds(11),
        "oracle": LabOracle(),
        "config": demo_config(),
        "record_write_stats": True,
    }


def open_demo(directory: str | Path) -> Engine:
    """A directory store (`<agent>.db` files in `directory`) with `demo_options`."""
    return mempill.open_directory(directory, **demo_options())


def demo_store(directory: str | Path, *, steps: int = 300, seed: int = 7) -> Counter[str]:
    """Fill a directory store (`<agent>.db` files in `directory`) with `run` and a `burst`."""
    with open_demo(directory) as engine:
        counts = run(engine, steps=steps, seed=seed)
        burst(engine, writers=4, claims=min(25, max(5, steps // 20)))
    return counts
