"""(4) Concurrency: writer threads sharing one engine, into one agent or into many.

Configurations: `sqlite` (one file per agent, the store-wide write lock `open_directory`
uses by default), `sqlite-agent-lock` (`serialize_all_writes=False`: only writes of the
same agent wait) and `postgres` (per-agent advisory locks). For each, 1/4/16 writer
threads write into one agent and into `wide_agents` agents; the aggregate rate is all
claims over the wall time from the common start to the last writer's end. Group commit
shows as `over_one_writer`: 16 writers' rate ÷ one writer's, into the same agents, taken
per round (`sqlite` is what `open_directory` gives by default).

The PostgreSQL ratio compares 16 writers into 16 agents with the raw rate of one-row
autocommit INSERTs from 16 connections, round by round in the same run.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any, Protocol

import mempill
from benchmarks.context import Bench
from benchmarks.drivers import CLOCK_START
from benchmarks.durable import rotated
from benchmarks.groupfloor import GroupFloor
from benchmarks.sqlfloor import capture
from benchmarks.streams import Claim, fresh
from benchmarks.timing import finite, in_threads, median, optional, ratio
from mempill.core.model import Receipt
from mempill.engine import Engine

CONFIGS = ("sqlite", "sqlite-agent-lock", "postgres")


_runs = itertools.count()


def writer_claims(prefix: str, writer: int, writers: int, agents: int, count: int) -> list[Claim]:
    """Writer `writer`'s claims, on new lines; claim j goes to agent (writer + j*writers) % agents.

    Each call tags its claims afresh, so repeated rounds never restate a fact.
    """
    tag = f"r{next(_runs)}w{writer}-"
    return [fresh(f"{prefix}{(writer + j * writers) % agents:02d}", tag, j) for j in range(count)]


class Ingests(Protocol):
    def ingest(self, request: Any) -> Receipt: ...


def aggregate_rate(engine: Ingests, prefix: str, writers: int, agents: int, count: int) -> float:
    """Claims per second of `writers` threads ingesting `count` claims each, one per call."""
    batches = [writer_claims(prefix, w, writers, agents, count) for w in range(writers)]

    def worker(claims: list[Claim]) -> Callable[[], None]:
        def work() -> None:
            for claim in claims:
                engine.ingest(claim)

        return work

    seconds = in_threads([worker(b) for b in batches])
    return writers * count / seconds


@contextmanager
def open_config(bench: Bench, config: str, pool: int) -> Iterator[Engine]:
    """An engine for one configuration, on a fresh directory or a fresh schema."""
    clock = mempill.SteppingClock(CLOCK_START)
    with ExitStack() as stack:
        if config == "postgres":
            from mempill.lab.servers import fresh_schema
            from mempill.openers import open_postgres

            assert bench.pg_dsn is not None
            dsn = stack.enter_context(fresh_schema(bench.pg_dsn, prefix="bench"))
            engine = open_postgres(dsn, pool_max_size=pool, pool_min_size=pool, clock=clock)
        else:
            directory: Path = bench.scratch(f"concurrency-{config}")
            engine = mempill.open_directory(
                directory, clock=clock, serialize_all_writes=config == "sqlite"
            )
        stack.callback(engine.close)
        yield engine


def measured_rounds(
    bench: Bench, label: str, target: Ingests, prefix: str, agents: int, threads: Sequence[int]
) -> list[dict[int, float]]:
    """Each agent's first claim (its database's first pages, before timing), then per round
    the aggregate rate of each writer count in `threads`, rotated within the round."""
    sizes = bench.sizes
    for a in range(agents):
        target.ingest(fresh(f"{prefix}{a:02d}", "warmup", 0))
    rounds: list[dict[int, float]] = []
    for number in range(sizes.concurrency_rounds):
        bench.progress.say(
            f"{label}, {agents} agent(s), round {number + 1}/{sizes.concurrency_rounds}"
        )
        rounds.append(
            {
                writers: aggregate_rate(target, prefix, writers, agents, sizes.writer_claims)
                for writers in rotated(list(threads), number)
            }
        )
    return rounds


def grid(bench: Bench, config: str) -> list[dict[str, Any]]:
    """Every (layout, writers) point of one configuration, medians over rounds.

    Rounds are the outer loop and the writer counts rotate within a round, so each point's
    `over_one_writer` (its rate ÷ the same round's single writer into the same agents,
    the median over rounds) compares measurements taken moments apart.
    """
    sizes = bench.sizes
    points = []
    one = min(sizes.threads)
    with open_config(bench, config, max(sizes.threads) + 2) as engine:
        for agents in (1, sizes.wide_agents):
            label = f"concurrency: {config}"
            rounds = measured_rounds(bench, label, engine, f"c{agents}-", agents, sizes.threads)
            for writers in sizes.threads:
                rates = [r[writers] for r in rounds]
                scaling = [ratio(r[writers], r[one]) for r in rounds]
                points.append(
                    {
                        "agents": agents,
                        "writers": writers,
                        "rate": finite(median(rates)),
                        "round_rates": rates,
                        "over_one_writer": finite(median(scaling)),
                    }
                )
    return points


def run(bench: Bench) -> dict[str, Any]:
    results: dict[str, Any] = {"configs": {}, "skipped": {}}
    for config in CONFIGS:
        if config == "postgres" and bench.pg_dsn is None:
            results["skipped"][config] = bench.pg_error or "no PostgreSQL server"
            continue
        results["configs"][config] = grid(bench, config)
        if config == "sqlite":  # its floor: the least Python, group committed alike
            floor, error = optional(lambda: floor_scaling(bench))
            results["group_floor"] = floor
            if error:
                results["group_floor_error"] = error
                bench.progress.say(f"group-commit floor unavailable: {error.splitlines()[-1]}")
    if bench.pg_dsn is not None:
        results["postgres_vs_raw"] = postgres_vs_raw(bench)
    return results


def floor_scaling(bench: Bench) -> dict[str, Any]:
    """The group-commit floor (`groupfloor.GroupFloor`) measured as `grid` measures the
    engine: per round, one writer and the most writers into one agent and into
    `wide_agents` agents (fresh files), the ratio per round, then the median."""
    sizes = bench.sizes
    one, most = min(sizes.threads), max(sizes.threads)
    captured = capture()
    found: dict[str, Any] = {}
    for agents in (1, sizes.wide_agents):
        prefix = f"f{agents}-"
        ids = [f"{prefix}{a:02d}" for a in range(agents)]
        floor = GroupFloor(captured, bench.scratch(f"group-floor-{agents}"), ids)
        try:
            label = "group-commit floor"
            rounds = measured_rounds(bench, label, floor, prefix, agents, (one, most))
            written = floor.stored()
        finally:
            floor.close()
        sent = agents + sizes.concurrency_rounds * (one + most) * sizes.writer_claims
        if written != sent:
            raise RuntimeError(f"group-commit floor: {written} claims stored, {sent} sent")
        found[str(agents)] = {
            "agents": agents,
            "writers": most,
            "round_rates": [{str(k): v for k, v in r.items()} for r in rounds],
            "over_one_writer": finite(median([ratio(r[most], r[one]) for r in rounds])),
        }
    return found


def raw_pg_rate(connections: Sequence[Any], count: int) -> float:
    """One-row autocommit INSERTs, `count` per connection, each connection in a thread."""

    def worker(index: int, conn: Any) -> Callable[[], None]:
        def work() -> None:
            for j in range(count):
                conn.execute(
                    "INSERT INTO raw_insert (agent_id, payload) VALUES (%s, %s)",
                    (f"a{index:02d}", f"payload {j} " + "x" * 180),
                )

        return work

    seconds = in_threads([worker(i, c) for i, c in enumerate(connections)])
    return len(connections) * count / seconds


def postgres_vs_raw(bench: Bench) -> dict[str, Any]:
    """Per round: raw INSERTs from N connections, then N writers into N agents."""
    import psycopg

    from mempill.lab.servers import fresh_schema

    sizes = bench.sizes
    writers = sizes.raw_pg_connections
    assert bench.pg_dsn is not None
    rounds = []
    with ExitStack() as stack:
        dsn = stack.enter_context(fresh_schema(bench.pg_dsn, prefix="bench"))
        conns = [stack.enter_context(psycopg.connect(dsn, autocommit=True)) for _ in range(writers)]
        conns[0].execute(
            "CREATE TABLE raw_insert (id bigserial PRIMARY KEY, agent_id text, payload text)"
        )
        engine = stack.enter_context(open_config(bench, "postgres", writers + 2))
        for a in range(sizes.wide_agents):
            engine.ingest(fresh(f"p-{a:02d}", "warmup", 0))
        for number in range(sizes.concurrency_rounds):
            bench.progress.say(f"postgres vs raw INSERT: round {number + 1}")
            raw = raw_pg_rate(conns, sizes.writer_claims)
            ours = aggregate_rate(engine, "p-", writers, sizes.wide_agents, sizes.writer_claims)
            rounds.append({"raw": raw, "ours": ours})
    return {
        "connections": writers,
        "agents": sizes.wide_agents,
        "rounds": rounds,
        "raw_rate": finite(median([r["raw"] for r in rounds])),
        "ours_rate": finite(median([r["ours"] for r in rounds])),
        "ours_over_raw": finite(median([ratio(r["ours"], r["raw"]) for r in rounds])),
    }
