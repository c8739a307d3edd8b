"""Row-level security: ingest and query as the owner (a superuser: policies bypassed)
and as runtime roles (a service role and an agent role: every statement filtered by the
policies), on one schema of one server, rounds interleaved.

Per round and per role: `claims` (a fifth of the engine section's) single ingests of
fresh lines into the role's agent, then `claims` `query_memory` calls on those lines
with the engine's line cache off (`cache_claims=0`: every query reads PostgreSQL).
Ratios are each role's rate ÷ the owner's in the same round, median over rounds; no
target, reported for issue 17.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from typing import Any

import mempill
from benchmarks.context import Bench
from benchmarks.drivers import CLOCK_START
from benchmarks.durable import rotated
from benchmarks.streams import fresh
from benchmarks.timing import finite, median, ratio
from mempill.engine import Engine

ROLES = ("owner", "service", "agent")


@contextmanager
def engines(dsn: str) -> Iterator[dict[str, Engine]]:
    """One engine per role on one fresh schema (owner = the benchmark's superuser DSN)."""
    import psycopg
    from psycopg import sql
    from psycopg.conninfo import conninfo_to_dict, make_conninfo

    from mempill.lab.servers import fresh_schema, service_role
    from mempill.openers import open_postgres
    from mempill.stores.pgaccess import grant_script

    with ExitStack() as stack:
        owner = stack.enter_context(fresh_schema(dsn, prefix="bench"))
        dsns = {"owner": owner, "service": stack.enter_context(service_role(owner))}
        agent_role = f"{conninfo_to_dict(dsns['service'])['user']}_a"
        with psycopg.connect(owner, autocommit=True) as conn:
            schema = str(conn.execute("SELECT current_schema()").fetchone()[0])  # type: ignore[index]
            for statement in grant_script(schema, agent_role, "agent", create=True, password=None):
                conn.execute(statement)

        def drop() -> None:
            with psycopg.connect(owner, autocommit=True) as conn:
                conn.execute(sql.SQL("DROP OWNED BY {}").format(sql.Identifier(agent_role)))
                conn.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(agent_role)))

        stack.callback(drop)
        dsns["agent"] = make_conninfo("", **{**conninfo_to_dict(owner), "user": agent_role})
        opened = {}
        for role, target in dsns.items():
            engine = open_postgres(
                target,
                clock=mempill.SteppingClock(CLOCK_START),
                cache_claims=0,
                pool_min_size=1,
                pool_max_size=2,
            )
            stack.callback(engine.close)
            opened[role] = engine
        yield opened


def timed(count: int, call: Callable[[int], Any]) -> float:
    started = time.perf_counter()
    for index in range(count):
        call(index)
    return count / (time.perf_counter() - started)


def measure(engine: Engine, role: str, tag: str, count: int) -> dict[str, float]:
    agent = "agent" if role == "agent" else f"{role}-agent"
    ingest = timed(count, lambda i: engine.ingest(fresh(agent, tag, i)))
    query = timed(count, lambda i: engine.query_memory(agent, f"{tag}{i}", "note"))
    return {"ingest": ingest, "query": query}


def run(bench: Bench) -> dict[str, Any]:
    if bench.pg_dsn is None:
        return {"skipped": bench.pg_error or "no PostgreSQL server"}
    sizes = bench.sizes
    # Durable PostgreSQL commits are slower than in-memory ones: a fifth of the engine's.
    count, rounds_wanted = max(20, sizes.engine_claims // 5), sizes.engine_rounds
    rounds: list[dict[str, dict[str, float]]] = []
    with engines(bench.pg_dsn) as by_role:
        for role, engine in by_role.items():  # warm each pool and plan cache
            agent = "agent" if role == "agent" else f"{role}-agent"
            engine.ingest(fresh(agent, "warm", 0))
            engine.query_memory(agent, "warm0", "note")
        for number in range(rounds_wanted):
            bench.progress.say(f"rls: round {number + 1}/{rounds_wanted}")
            measured: dict[str, dict[str, float]] = {}
            for role in rotated(list(ROLES), number):
                measured[role] = measure(by_role[role], role, f"r{number}-", count)
            rounds.append(measured)
    result: dict[str, Any] = {"claims_per_round": count, "rounds": rounds}
    for role in ROLES:
        for what in ("ingest", "query"):
            result[f"{role}_{what}_rate"] = finite(median([r[role][what] for r in rounds]))
            if role != "owner":
                result[f"{role}_{what}_over_owner"] = finite(
                    median([ratio(r[role][what], r["owner"][what]) for r in rounds])
                )
    return result


def report(results: dict[str, Any]) -> list[str]:
    rls = results.get("rls") or {}
    if not rls:
        return []
    out = ["## PostgreSQL row-level security", ""]
    if rls.get("skipped"):
        return [*out, f"Not measured: {rls['skipped']}", ""]
    out += [
        "Single ingests of fresh lines, then `query_memory` of each (line cache off), per "
        f"role, {rls['claims_per_round']:,} of each per round over {len(rls['rounds'])} "
        "rounds. The owner is the server's superuser (policies bypassed); the service and "
        "agent roles are runtime roles made by `mempill pg grant-service` / `grant-agent`, "
        "so every statement is filtered by the policies. Rates are medians; ratios the "
        "median of per-round ratios to the owner.",
        "",
        "| role | ingest claims/s | ÷ owner | queries/s | ÷ owner |",
        "|---|---:|---:|---:|---:|",
    ]
    for role in ROLES:

        def cell(key: str, spec: str) -> str:
            value = rls.get(key)
            return "—" if not isinstance(value, (int, float)) else format(value, spec)

        out.append(
            f"| {role} | {cell(f'{role}_ingest_rate', ',.0f')} | "
            f"{cell(f'{role}_ingest_over_owner', '.2f') if role != 'owner' else '1'} | "
            f"{cell(f'{role}_query_rate', ',.0f')} | "
            f"{cell(f'{role}_query_over_owner', '.2f') if role != 'owner' else '1'} |"
        )
    return [*out, ""]
