"""Run lock-contention experiments: concurrent writers through the engine, every write and
every writer's progress recorded.

`run` starts `writers` writers (threads sharing one engine, or processes with an engine
each) that ingest `claims_per_writer` new facts each, writer `i` writing to agent
`i % agents`, all released together. It returns an `Experiment`: the store's `write_stats`
rows (one per write transaction: lock wait and transaction time, measured by the store
itself), one row per writer (its span, its claims' latencies as the caller saw them, and
how many it had committed when the first writer finished: the fairness measure) and one
row describing the run. `sweep` runs a grid of them, in a seeded random order, into a
`Recording`.
"""

from __future__ import annotations

import json
import os
import random
import select
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import asdict, dataclass, field
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
START = datetime(2026, 1, 1, tzinfo=UTC)
STARTUP_TIMEOUT_S = 300.0  # for a writer to open its engine
WRITE_TIMEOUT_S = 6 * 3600.0  # for a writer to finish its claims
#: The columns of a saved transaction row (the rest comes from its run's row).
TRANSACTION_COLUMNS = (
    "run_id", "agent", "writer", "first_seq", "claims", "lock_wait_us", "txn_us", "t_us",
)  # fmt: skip


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


@dataclass(frozen=True, slots=True)
class Progress:
    """One writer's claims as it saw them: its start and each claim's end (wall clock, ns
    since the epoch, comparable across processes) and each ingest call's latency (ns)."""

    start_ns: int
    ends_ns: list[int]
    latencies_ns: list[int]
    pid: int


@dataclass
class Experiment:
    """What one run produced: its row of parameters and outcome, its transactions (the
    store's `write_stats` with the parameters as columns) and one row per writer."""

    run: dict[str, Any]
    transactions: pd.DataFrame
    writers: pd.DataFrame


@dataclass
class Recording:
    """Experiments side by side: `runs` (a row per run), `transactions` (a row per write
    transaction, with its run's parameters), `writers` (a row per writer of each run) and
    `provenance` (a dict per recording session, from `runs.jsonl`; empty when not saved)."""

    runs: pd.DataFrame
    transactions: pd.DataFrame
    writers: pd.DataFrame
    provenance: list[dict[str, Any]] = field(default_factory=list)


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


def write_claims(engine: Engine, plan: Plan, writer: int) -> Progress:
    """Ingest the writer's claims (each a new line), timing every call."""
    agent = plan.agent(writer)
    ends: list[int] = []
    latencies: list[int] = []
    start = time.time_ns()
    for k in range(plan.claims_per_writer):
        asked = time.perf_counter_ns()
        engine.ingest(
            {"agent_id": agent, "subject": f"w{writer:02d}-s{k:05d}", "predicate": "v", "value": k}
        )
        latencies.append(time.perf_counter_ns() - asked)
        ends.append(time.time_ns())
    return Progress(start, ends, latencies, os.getpid())


def _threads(plan: Plan) -> list[Progress]:
    """All writers as threads of this process, sharing one engine (and its pool)."""
    engine = open_engine(plan, pool_size=plan.writers + 1)
    barrier = threading.Barrier(plan.writers)
    done: list[Progress | None] = [None] * plan.writers
    errors: list[BaseException] = []

    def body(writer: int) -> None:
        try:
            barrier.wait(timeout=STARTUP_TIMEOUT_S)
            done[writer] = write_claims(engine, plan, writer)
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
    return [progress for progress in done if progress is not None]


def writer_process() -> None:
    """Entry point of one writer process (`python -c`): a line protocol on stdin/stdout.

    Reads its plan (JSON) from stdin, opens its own engine, prints `ready`, waits for `go`
    (the common start), writes, then prints its `Progress` as JSON.
    """
    job = json.loads(sys.stdin.readline())
    writer = int(job.pop("writer"))
    plan = Plan(**job)
    with open_engine(plan, pool_size=2, writer=writer) as engine:
        print("ready", flush=True)
        if sys.stdin.readline().strip() != "go":
            return
        progress = write_claims(engine, plan, writer)
    print(json.dumps(asdict(progress)), flush=True)


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


def _processes(plan: Plan) -> list[Progress]:
    """All writers as separate interpreters, each with its own engine, started together.

    Plain subprocesses and pipes, not `multiprocessing`: no `__main__` re-import (scripts
    need no guard) and no resource-tracker child, which would delay a Jupyter kernel's
    shutdown until it is killed, skipping its exit handlers (the embedded server's stop).
    """
    code = "from mempill.lab.contention.runner import writer_process; writer_process()"
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
        return [Progress(**json.loads(c.receive("finishing", WRITE_TIMEOUT_S))) for c in children]
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


def _positive(name: str, number: Any) -> None:
    if isinstance(number, bool) or not isinstance(number, int) or number < 1:
        raise ValueError(f"{name}: expected an integer >= 1, got {number!r}")


def _check(config: str, writers: int, agents: int, claims: int, mode: str) -> None:
    if config not in CONFIGS:
        raise ValueError(f"backend {config!r}: choose one of {', '.join(CONFIGS)}")
    if mode not in MODES:
        raise ValueError(f"mode {mode!r}: choose one of {', '.join(MODES)}")
    for name, number in (("writers", writers), ("agents", agents), ("claims", claims)):
        _positive(name, number)


def writer_rows(progress: Sequence[Progress], plan: Plan, t0_ns: int) -> pd.DataFrame:
    """One row per writer: its span (µs from the run's start), claims, claims committed by
    the moment the first writer finished (equal shares: a fair lock), latency quantiles."""
    import numpy as np
    import pandas as pd

    first_done = min(p.ends_ns[-1] for p in progress)
    rows = []
    for writer, p in enumerate(progress):
        latency = np.asarray(p.latencies_ns, dtype=np.int64) // 1000
        rows.append({
            "writer": writer, "agent": writer % plan.agents, "pid": p.pid,
            "start_us": (p.start_ns - t0_ns) // 1000, "end_us": (p.ends_ns[-1] - t0_ns) // 1000,
            "claims": len(p.ends_ns),
            "claims_by_first_finish": int(sum(end <= first_done for end in p.ends_ns)),
            "latency_p50_us": int(np.quantile(latency, 0.5)),
            "latency_p99_us": int(np.quantile(latency, 0.99)),
            "latency_max_us": int(latency.max()),
        })  # fmt: skip
    return pd.DataFrame(rows)


def _writer_of(frame: pd.DataFrame, plan: Plan, mode: str, pids: dict[int, int]) -> pd.Series:
    """The writer behind each transaction, where it is known: its process, or its agent
    when each writer has one; threads sharing an agent are group committed (NA)."""
    import pandas as pd

    if mode == "processes":
        return frame["pid"].map(pids).astype("Int64")
    if plan.agents >= plan.writers:
        return frame["agent"].astype("Int64")
    return pd.Series(pd.NA, index=frame.index, dtype="Int64")


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
    layout: str | None = None,
) -> Experiment:
    """Run one experiment (see the module's description).

    `directory` is the SQLite store (default: a temporary directory; agents get ids unique
    to the run, so a store may be reused); on PostgreSQL every run writes to a fresh schema
    on `dsn`'s server (default `mempill.lab.servers.postgres_dsn()`), dropped afterwards.
    `seed` injects a stepping clock and seeded ids. `layout` names how writers share agents
    (default `layout_of(writers, agents)`; one writer fits both named layouts).
    """
    from mempill.lab import ledgers

    _check(backend, writers, agents, claims_per_writer, mode)
    prefix = f"c{uuid.uuid4().hex[:8]}" if seed is None else f"c{seed}"
    load = os.getloadavg()[0]
    started = datetime.now(UTC)
    with _location(backend, directory, dsn) as location:
        plan = Plan(backend, location, writers, agents, claims_per_writer, prefix, seed)
        progress = (_threads if mode == "threads" else _processes)(plan)
        frame = ledgers.write_stats(location, agents=plan.agent_ids())
    expected = writers * claims_per_writer
    # one row per transaction; a group commit covers the claims of several waiting writers
    covered = int((frame["last_seq"] - frame["first_seq"] + 1).sum()) if len(frame) else 0
    if covered != expected:
        raise RuntimeError(
            f"{backend}: write_stats cover {covered} ledger entries, expected {expected}"
        )
    t0 = min(p.start_ns for p in progress)
    parameters: dict[str, Any] = {
        "run_id": prefix, "config": backend, "mode": mode,
        "layout": layout or layout_of(writers, agents), "writers": writers, "agents": agents,
        "claims_per_writer": claims_per_writer,
        "elapsed_s": (max(p.ends_ns[-1] for p in progress) - t0) / 1e9,
    }  # fmt: skip
    agent = frame["agent_id"].astype(str).str.rsplit("-a", n=1).str[1].astype(int)
    frame = frame.assign(agent=agent, claims=frame["last_seq"] - frame["first_seq"] + 1)
    pids = {p.pid: w for w, p in enumerate(progress)}
    frame = frame.assign(
        writer=_writer_of(frame, plan, mode, pids),
        t_us=frame["recorded_at"].astype("int64") - t0 // 1000,  # µs since the run's start
        **parameters,
    )
    row = {**parameters, "started_at": started.isoformat(timespec="seconds"),
           "start_unix_us": t0 // 1000, "load_1min": round(load, 2)}  # fmt: skip
    writers_frame = writer_rows(progress, plan, t0).assign(run_id=prefix)
    return Experiment(row, frame, writers_frame)


def grid(
    backends: Sequence[str],
    writer_counts: Sequence[int],
    modes: Sequence[str],
    layouts: Sequence[str],
    repeats: int,
    seed: int | None,
) -> list[tuple[str, str, str, int, int]]:
    """Every (backend, mode, layout, writers, repeat), shuffled by `seed` (None: in order):
    a slow drift of the machine's load then spreads over every configuration alike."""
    unknown = set(layouts) - set(LAYOUTS)
    if unknown:
        raise ValueError(f"layouts {sorted(unknown)}: choose from {', '.join(LAYOUTS)}")
    _positive("repeats", repeats)
    for backend, mode, count in ((b, m, w) for b in backends for m in modes for w in writer_counts):
        _check(backend, count, 1, 1, mode)
    cells = [
        (b, m, lay, w, r)
        for r in range(repeats)
        for b in backends
        for m in modes
        for lay in layouts
        for w in writer_counts
    ]
    if seed is not None:
        random.Random(seed).shuffle(cells)
    return cells


def sweep(
    backends: Sequence[str],
    writer_counts: Sequence[int],
    claims_per_writer: int,
    *,
    modes: Sequence[str] = ("threads",),
    layouts: Sequence[str] = tuple(LAYOUTS),
    repeats: int = 1,
    dsn: str | None = None,
    seed: int | None = None,
    progress: bool = True,
) -> Recording:
    """Run every (backend, mode, layout, writers) combination `repeats` times, in an order
    shuffled by `seed` (None: grid order), with a progress bar on stderr."""
    import pandas as pd
    from tqdm.auto import tqdm

    cells = grid(backends, writer_counts, modes, layouts, repeats, seed)
    done: list[Experiment] = []
    bar = tqdm(cells, desc="contention", unit="run", disable=not progress)
    for order, (backend, mode, layout, writers, repeat) in enumerate(bar):
        bar.set_postfix_str(f"{backend} {mode} {layout} {writers}w")
        found = run(backend, writers, LAYOUTS[layout](writers), claims_per_writer, mode,
                    dsn=dsn, layout=layout)  # fmt: skip
        found.run.update(order=order, repeat=repeat)
        done.append(found)
    return Recording(
        runs=pd.DataFrame([e.run for e in done]),
        transactions=pd.concat([e.transactions for e in done], ignore_index=True),
        writers=pd.concat([e.writers for e in done], ignore_index=True),
    )
