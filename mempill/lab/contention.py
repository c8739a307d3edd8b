"""Lock-contention experiments: concurrent writers through the engine, every write recorded.

`run` starts `writers` writers (threads sharing one engine, or processes with an engine
each) that ingest `claims_per_writer` new facts each, writer `i` writing to agent
`i % agents`, all released together by a barrier. Every write transaction leaves a row in
`write_stats` (lock wait and transaction time, measured by the store itself), which `run`
returns as a DataFrame with the experiment's parameters as extra columns. `summary`,
`lock_wait_percentiles` and `throughput` reduce such frames; `sweep` runs a grid.

Configurations: `sqlite-store-lock` (directory topology, the store-wide write lock of
`open_directory`), `sqlite-agent-lock` (directory, `serialize_all_writes=False`: only the
per-agent lock and SQLite's own file lock) and `postgres` (per-agent advisory locks).
"""

from __future__ import annotations

import argparse
import json
import select
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from typing import IO, TYPE_CHECKING, Any

import mempill
from mempill.engine import Engine

if TYPE_CHECKING:
    import pandas as pd

CONFIGS = {
    "sqlite-store-lock": "SQLite, one file per agent, store-wide write lock (the default)",
    "sqlite-agent-lock": "SQLite, one file per agent, per-agent locks only",
    "postgres": "PostgreSQL, per-agent advisory transaction locks",
}
MODES = ("threads", "processes")
#: How writers share agents: the number of agents for a number of writers.
LAYOUTS: dict[str, Callable[[int], int]] = {
    "one agent": lambda writers: 1,
    "agent per writer": lambda writers: writers,
}
GROUP = ("config", "mode", "layout", "writers")
START = datetime(2026, 1, 1, tzinfo=UTC)
STARTUP_TIMEOUT_S = 300.0  # for a writer to open its engine
WRITE_TIMEOUT_S = 6 * 3600.0  # for a writer to finish its claims


@dataclass(frozen=True, slots=True)
class Plan:
    """One experiment: where, how many writers on how many agents, and how they run."""

    config: str
    location: str  # a SQLite directory or a PostgreSQL conninfo
    writers: int
    agents: int
    claims_per_writer: int
    prefix: str  # agent ids are `<prefix>-aNN`, unique per run
    seed: int | None

    def agent(self, writer: int) -> str:
        return f"{self.prefix}-a{writer % self.agents:02d}"

    def agent_ids(self) -> tuple[str, ...]:
        return tuple(self.agent(w) for w in range(min(self.agents, self.writers)))


def layout_of(writers: int, agents: int) -> str:
    """`one agent`, `agent per writer`, or `N agents`: how writers share agents."""
    if agents == 1:
        return "one agent"
    return "agent per writer" if agents >= writers else f"{agents} agents"


def open_engine(plan: Plan, pool_size: int, writer: int | None = None) -> Engine:
    """An engine on the plan's store; seeded clock and ids when the plan has a seed."""
    options: dict[str, Any] = {"record_write_stats": True}  # the lab's data
    if plan.seed is not None:
        options["clock"] = mempill.SteppingClock(START, timedelta(milliseconds=1))
        options["ids"] = mempill.SeededIds(f"{plan.seed}-{writer}")
    if plan.config == "postgres":
        from mempill.openers import open_postgres

        return open_postgres(plan.location, pool_max_size=pool_size, **options)
    serialize = plan.config == "sqlite-store-lock"
    return mempill.open_directory(plan.location, serialize_all_writes=serialize, **options)


def write_claims(engine: Engine, plan: Plan, writer: int) -> tuple[int, int]:
    """Ingest the writer's claims (each a new line); returns wall-clock (start, end) in ns."""
    agent = plan.agent(writer)
    start = time.time_ns()
    for k in range(plan.claims_per_writer):
        engine.ingest(
            {"agent_id": agent, "subject": f"w{writer:02d}-s{k:05d}", "predicate": "v", "value": k}
        )
    return start, time.time_ns()


def _threads(plan: Plan) -> list[tuple[int, int]]:
    """All writers as threads of this process, sharing one engine (and its pool)."""
    engine = open_engine(plan, pool_size=plan.writers + 1)
    barrier = threading.Barrier(plan.writers)
    spans: list[tuple[int, int]] = []
    errors: list[BaseException] = []

    def body(writer: int) -> None:
        try:
            barrier.wait(timeout=STARTUP_TIMEOUT_S)
            spans.append(write_claims(engine, plan, writer))
        except BaseException as e:
            errors.append(e)
            barrier.abort()

    try:
        threads = [threading.Thread(target=body, args=(w,)) for w in range(plan.writers)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        engine.close()
    if errors:
        raise RuntimeError(f"a writer thread failed: {errors[0]!r}") from errors[0]
    return spans


def writer_process() -> None:
    """Entry point of one writer process (`python -c`): a line protocol on stdin/stdout.

    Reads its plan (JSON) from stdin, opens its own engine, prints `ready`, waits for `go`
    (the common start), writes, then prints its wall-clock span as JSON.
    """
    job = json.loads(sys.stdin.readline())
    writer = int(job.pop("writer"))
    plan = Plan(**job)
    with open_engine(plan, pool_size=2, writer=writer) as engine:
        print("ready", flush=True)
        if sys.stdin.readline().strip() != "go":
            return
        start, end = write_claims(engine, plan, writer)
    print(json.dumps([start, end]), flush=True)


@dataclass
class _Child:
    """A writer process, its pipes and the file that collects its stderr."""

    proc: subprocess.Popen[str]
    stderr: IO[str]

    def send(self, line: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()

    def receive(self, what: str, timeout: float = STARTUP_TIMEOUT_S) -> str:
        """The next stdout line, or a RuntimeError carrying the process's stderr."""
        assert self.proc.stdout is not None
        ready, _, _ = select.select([self.proc.stdout], [], [], timeout)
        line = self.proc.stdout.readline() if ready else ""
        if line:
            return line.strip()
        self.proc.kill()
        self.proc.wait()
        self.stderr.seek(0)
        raise RuntimeError(f"a writer process failed before {what}:\n{self.stderr.read()[-4000:]}")


def _processes(plan: Plan) -> list[tuple[int, int]]:
    """All writers as separate interpreters, each with its own engine, started together.

    Plain subprocesses and pipes, not `multiprocessing`: no `__main__` re-import (scripts
    need no guard) and no resource-tracker child, which would delay a Jupyter kernel's
    shutdown until it is killed, skipping its exit handlers (the embedded server's stop).
    """
    code = "from mempill.lab.contention import writer_process; writer_process()"
    with ExitStack() as stack:
        children = []
        for writer in range(plan.writers):
            err = stack.enter_context(tempfile.TemporaryFile("w+"))  # never blocks the child
            proc = subprocess.Popen(
                [sys.executable, "-c", code],
                text=True, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=err,
            )  # fmt: skip
            stack.enter_context(proc)  # on exit: close the pipes and wait
            stack.callback(_stop, proc)
            children.append(_Child(proc, err))
            children[-1].send(json.dumps({**asdict(plan), "writer": writer}))
        for child in children:
            if child.receive("its start") != "ready":
                raise RuntimeError("a writer process did not report ready")
        for child in children:  # the common start
            child.send("go")
        spans = [json.loads(child.receive("finishing", WRITE_TIMEOUT_S)) for child in children]
        return [(int(start), int(end)) for start, end in spans]
    raise AssertionError("unreachable")


def _stop(proc: subprocess.Popen[str]) -> None:
    """Kill a writer process that is still running (after a failure elsewhere)."""
    if proc.poll() is None:
        proc.kill()


@contextmanager
def _location(config: str, directory: str | None, dsn: str | None) -> Iterator[str]:
    """Where to write: PostgreSQL always gets a fresh schema (dropped afterwards) on `dsn`'s
    server; SQLite the given directory, else a temporary one."""
    if config == "postgres":
        from mempill.lab.servers import fresh_schema

        with fresh_schema(dsn, prefix="contention") as fresh:
            yield fresh
    elif directory is not None:
        yield directory
    else:
        with tempfile.TemporaryDirectory(prefix="mempill-contention-") as tmp:
            yield tmp


def _check(config: str, writers: int, agents: int, claims: int, mode: str) -> None:
    if config not in CONFIGS:
        raise ValueError(f"backend {config!r}: choose one of {', '.join(CONFIGS)}")
    if mode not in MODES:
        raise ValueError(f"mode {mode!r}: choose one of {', '.join(MODES)}")
    for name, number in (("writers", writers), ("agents", agents), ("claims", claims)):
        if isinstance(number, bool) or not isinstance(number, int) or number < 1:
            raise ValueError(f"{name}: expected an integer >= 1, got {number!r}")


def run(
    backend: str,
    writers: int,
    agents: int,
    claims_per_writer: int,
    mode: str = "threads",
    *,
    directory: str | None = None,
    dsn: str | None = None,
    seed: int | None = None,
) -> pd.DataFrame:
    """Run one experiment and return its `write_stats` rows with the parameters as columns.

    `directory` is the SQLite store (default: a temporary directory; agents get ids unique
    to the run, so a store may be reused); on PostgreSQL every run writes to a fresh schema
    on `dsn`'s server (default `mempill.lab.servers.postgres_dsn()`), dropped afterwards.
    `seed` injects a stepping clock and seeded ids.
    """
    from mempill.lab import ledgers

    _check(backend, writers, agents, claims_per_writer, mode)
    prefix = f"c{uuid.uuid4().hex[:8]}" if seed is None else f"c{seed}"
    with _location(backend, directory, dsn) as location:
        plan = Plan(backend, location, writers, agents, claims_per_writer, prefix, seed)
        spans = (_threads if mode == "threads" else _processes)(plan)
        frame = ledgers.write_stats(location, agents=plan.agent_ids())
    expected = writers * claims_per_writer
    # one row per transaction; a group commit covers the claims of several waiting writers
    covered = int((frame["last_seq"] - frame["first_seq"] + 1).sum()) if len(frame) else 0
    if covered != expected:
        raise RuntimeError(
            f"{backend}: write_stats cover {covered} ledger entries, expected {expected}"
        )
    elapsed = (max(end for _, end in spans) - min(start for start, _ in spans)) / 1e9
    return frame.assign(
        claims=frame["last_seq"] - frame["first_seq"] + 1,  # a group commit holds several
        run_id=prefix,
        config=backend,
        mode=mode,
        layout=layout_of(writers, agents),
        writers=writers,
        agents=agents,
        claims_per_writer=claims_per_writer,
        elapsed_s=elapsed,
    )


def sweep(
    backends: Sequence[str],
    writer_counts: Sequence[int],
    claims_per_writer: int,
    *,
    modes: Sequence[str] = ("threads",),
    layouts: Sequence[str] = tuple(LAYOUTS),
    repeats: int = 1,
    dsn: str | None = None,
    progress: bool = True,
) -> pd.DataFrame:
    """Run every (backend, mode, layout, writers) combination `repeats` times (summaries
    pool the repeats; more of them steady a noisy machine); one frame, a progress bar."""
    import pandas as pd
    from tqdm import tqdm

    unknown = set(layouts) - set(LAYOUTS)
    if unknown:
        raise ValueError(f"layouts {sorted(unknown)}: choose from {', '.join(LAYOUTS)}")
    if isinstance(repeats, bool) or not isinstance(repeats, int) or repeats < 1:
        raise ValueError(f"repeats: expected an integer >= 1, got {repeats!r}")
    grid = [
        (b, m, lay, w)
        for b in backends
        for m in modes
        for lay in layouts
        for w in writer_counts
        for _ in range(repeats)
    ]
    frames = []
    for backend, mode, layout, writers in tqdm(grid, desc="contention", disable=not progress):
        frame = run(backend, writers, LAYOUTS[layout](writers), claims_per_writer, mode, dsn=dsn)
        frames.append(frame.assign(layout=layout))  # one writer fits both layouts: keep the name
    return pd.concat(frames, ignore_index=True)


def lock_wait_percentiles(
    frame: pd.DataFrame,
    by: Sequence[str] = GROUP,
    quantiles: Sequence[float] = (0.5, 0.9, 0.99),
    waited_us: int = 100,
) -> pd.DataFrame:
    """Per group: writes, share of writes that waited more than `waited_us` µs for the lock,
    lock-wait quantiles and maximum in milliseconds."""
    groups = frame.groupby(list(by), observed=True, sort=True)["lock_wait_us"]
    out = groups.agg(writes="count", waited_share=lambda s: float((s > waited_us).mean()))
    for q in quantiles:
        out[f"p{round(q * 100):d}_ms"] = groups.quantile(q) / 1000.0
    out["max_ms"] = groups.max() / 1000.0
    return out.reset_index()


def throughput(frame: pd.DataFrame, by: Sequence[str] = GROUP) -> pd.DataFrame:
    """Per group: committed writes (claims) per second of wall-clock time (pooled over the
    group's runs: all their claims over all their elapsed time), and median txn time (ms)."""
    runs = frame.groupby([*by, "run_id"], observed=True, sort=True).agg(
        writes=("claims", "sum"), elapsed_s=("elapsed_s", "max")
    )
    out = runs.groupby(list(by), observed=True, sort=True).sum()
    out["writes_per_s"] = out["writes"] / out["elapsed_s"]
    out["txn_p50_ms"] = frame.groupby(list(by), observed=True, sort=True)["txn_us"].median() / 1e3
    return out.reset_index()


def summary(frame: pd.DataFrame, by: Sequence[str] = GROUP) -> pd.DataFrame:
    """Lock-wait percentiles and throughput side by side, one row per group."""
    speed = throughput(frame, by).drop(columns=["writes"])
    return lock_wait_percentiles(frame, by).merge(speed, on=list(by))


def _numbers(text: str) -> list[int]:
    return [int(part) for part in text.split(",") if part.strip()]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m mempill.lab contention",
        description="Concurrent writers through the engine; prints lock-wait percentiles "
        "and throughput per configuration.",
    )
    parser.add_argument(
        "--backends", default=",".join(CONFIGS), help=f"comma-separated: {', '.join(CONFIGS)}"
    )
    parser.add_argument(
        "--writers", type=_numbers, default=[1, 2, 4, 8, 16], help="writer counts, e.g. 1,4,16"
    )
    parser.add_argument("--claims", type=int, default=50, help="claims per writer")
    parser.add_argument("--repeats", type=int, default=1, help="runs per configuration")
    parser.add_argument("--mode", choices=[*MODES, "both"], default="threads")
    parser.add_argument(
        "--layouts", default="one,each", help="one (all writers on one agent), each (an agent each)"
    )
    parser.add_argument("--dsn", help="PostgreSQL conninfo (default: MEMPILL_TEST_PG_DSN/embedded)")
    parser.add_argument("--out", help="write every write_stats row to this .csv or .parquet")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m mempill.lab contention`: run a sweep, print its summary, optionally save it."""
    import pandas as pd

    args = _parser().parse_args(argv)
    backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    for backend in backends:
        if backend not in CONFIGS:
            print(f"unknown backend {backend!r}; choose from {', '.join(CONFIGS)}", file=sys.stderr)
            return 2
    modes = MODES if args.mode == "both" else (args.mode,)
    aliases = {"one": "one agent", "each": "agent per writer"}
    layouts = [aliases.get(lay.strip(), lay.strip()) for lay in args.layouts.split(",") if lay]
    frame = sweep(
        backends, args.writers, args.claims, modes=modes, layouts=layouts,
        repeats=args.repeats, dsn=args.dsn, progress=not args.quiet,
    )  # fmt: skip
    if args.out:
        if args.out.endswith(".parquet"):
            frame.to_parquet(args.out)
        else:
            frame.to_csv(args.out, index=False)
    with pd.option_context("display.width", 200, "display.max_columns", 20):
        print(summary(frame).round(3).to_string(index=False))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
