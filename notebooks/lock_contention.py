# ---
# jupyter:
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Lock contention
#
# Writes of one agent are serialized (reference invariant 7). How long does a writer wait for
# that lock, what does it cost in throughput, and do the writers get equal shares?
# `mempill.lab.contention` starts N writers (threads sharing one engine, or processes with
# an engine each), released together, each ingesting new facts, and keeps three records:
#
# * every write transaction, from the store's `write_stats`: its **lock wait** (from asking
#   for the agent's write lock to holding it; on PostgreSQL timed inside the transaction,
#   `pg_try_advisory_xact_lock` first, the blocking call timed only when it fails) and its
#   transaction time;
# * every writer: each ingest call's **latency** as the caller saw it (threads writing one
#   agent are *group committed*: they wait in the engine's queue, not for the store's lock,
#   so their wait shows here and not as lock wait) and how many claims it had committed
#   when the first writer finished (the **fairness** measure: equal counts = a fair lock);
# * every run: its parameters, wall-clock time (hence **throughput**, committed claims per
#   second) and the machine's load when it started.
#
# Configurations:
# * `sqlite-store-lock` — one SQLite file per agent with the store-wide write lock (the
#   `open_directory` default): every write of the store is serialized up to its COMMIT;
# * `sqlite-agent-lock` — the same without it (`serialize_all_writes=False`): only writes
#   of the same agent wait;
# * `postgres` — PostgreSQL, one advisory transaction lock per agent.
#
# Layouts: `one agent` (every writer on the same agent) and `agent per writer`.
#
# The figures are drawn from the **recorded data** in `data/contention/` (5 runs of every
# cell, 100 claims per writer; how and where it was measured is printed below). This
# notebook does not re-measure them: the small live run at the end only shows the pipeline
# works, and says it is too small for a verdict.

# %%
# %matplotlib inline
import tempfile

import pandas as pd

from mempill.lab import contention, notebooks
from mempill.lab.contention import plots

# %% tags=["parameters"]
SIZE = notebooks.default_size()  # "small" (seconds; CI) or "full"
DATA = "../data/contention"  # recorded runs the figures are drawn from

# %%
notebooks.use_size(SIZE)
pd.set_option("display.max_rows", 200)
pd.set_option("display.width", 200)

# %% [markdown]
# ## The recorded data and where it comes from
# `python -m mempill.lab contention record --out data/contention/` wrote it (the command,
# revision, machine and database versions below are read from its `recordings.jsonl`).
# The machine is a shared 2-vCPU VM that ran long durability experiments meanwhile:
# absolute numbers are noisy and machine-specific; the load average when each run started
# is kept with the run.

# %%
recording = contention.load(DATA)
for p in recording.provenance:
    machine, pg = p["machine"], p["postgres"] or {}
    print(f"recording {p['recording']}: {p['started_at']} to {p['finished_at']}, {p['runs']} runs")
    print(f"  command:  {p['command']}  (seed {p['seed']})")
    dirty = " + uncommitted changes" if p["uncommitted_changes"] else ""
    print(f"  revision: {p['commit']}{dirty}; mempill {p['mempill']}")
    cpu = machine["cpu"]
    print(
        f"  machine:  {cpu['model']}, {cpu['logical_cores']} logical cores, "
        f"{cpu['memory_total']}, {machine['kernel']}, Python {machine['python']}"
    )
    print(
        f"  load average (1, 5, 15 min): {machine['load_average']} at the start, "
        f"{p['load_average_end']} at the end; {p['load_note']}"
    )
    print(
        f"  SQLite {p['sqlite']['version']} on {p['sqlite']['filesystem']} "
        f"({p['sqlite']['directory']}), store defaults"
    )
    print(
        f"  PostgreSQL {pg.get('server_version')} ({pg.get('server')}; fsync={pg.get('fsync')}, "
        f"synchronous_commit={pg.get('synchronous_commit')}), psycopg {pg.get('psycopg')}"
    )
runs = contention.per_run(recording)
load = runs["load_1min"].describe()
print(
    f"\n{len(runs)} runs; 1-minute load average at their start: min {load['min']:.1f}, "
    f"median {load['50%']:.1f}, max {load['max']:.1f} (2 cores)"
)
print("size:", contention.size_note(runs) or "the recorded size (a verdict is possible)")

# %% [markdown]
# ## Summary
# One row per cell: the median over its runs, with the lowest and highest run in brackets.
# Throughput is committed claims per second of wall time; lock waits are per transaction
# (ms); `latency p99` is the worst writer's 99th-percentile ingest latency (ms); fairness
# is Jain's index of the claims each writer had committed when the first one finished
# (1 = equal shares, 1/n = one writer took everything).

# %%
summary = contention.summary(recording)
contention.table(summary)

# %% [markdown]
# ## Throughput against writers
# Per mode, a line per configuration and layout: the median of the runs, a band over their
# range, a dot per run. The spread is the machine's noise; where bands overlap, the data
# does not tell the configurations apart.

# %%
plots.throughput_vs_writers(runs)

# %% [markdown]
# ## Lock wait and latency against writers
# Lock wait is what the store measured per transaction; latency is what the writer saw per
# ingest call (lock wait, transaction, COMMIT and, for threads on one agent, the group
# commit queue). Both on log axes, a panel per mode and configuration.

# %%
plots.lock_wait_vs_writers(runs)

# %%
plots.latency_vs_writers(runs)

# %% [markdown]
# ## Fairness between writers
# The claims each writer had committed when the first writer finished, as Jain's index.
# A FIFO lock (threads waiting on a Python lock, PostgreSQL's lock queue) keeps it near 1;
# SQLite's busy handler between processes does not queue, so one process can keep
# winning while the others sleep.

# %%
plots.fairness_vs_writers(runs)

# %% [markdown]
# ## Lock-wait distributions at 16 writers
# Every transaction of the five runs pooled per curve; the log axis keeps the rare long
# waits visible.

# %%
most = recording.transactions[recording.transactions["writers"] == runs["writers"].max()]
plots.lock_wait_ecdf(most)

# %% [markdown]
# ## SQLite's busy handler over time
# One agent, 16 writers, SQLite: each transaction's lock wait at the moment it ended. With
# processes, a writer that finds the file locked sleeps in SQLite's busy handler (growing
# sleeps up to 100 ms) instead of queueing: most transactions do not wait at all, and a few
# wait hundreds of milliseconds to seconds. Threads queue on the store's own locks instead.
# The run shown per panel is the one with the median 99th-percentile wait of its five.

# %%
sqlite_one = runs[
    runs["config"].str.startswith("sqlite")
    & (runs["layout"] == "one agent")
    & (runs["writers"] == runs["writers"].max())
]
typical = (
    sqlite_one.sort_values("wait_p99_ms")
    .groupby(["config", "mode"], observed=True)["run_id"]
    .apply(lambda ids: ids.iloc[len(ids) // 2])
)
shown = recording.transactions[recording.transactions["run_id"].isin(typical)]
plots.wait_over_time(shown)

# %% [markdown]
# ## What the numbers say
# The claims below are computed from the recorded data in the next cell, so they stay true
# to it.


# %%
def cell(config, mode, layout, writers=16):
    rows = summary[
        (summary["config"] == config)
        & (summary["mode"] == mode)
        & (summary["layout"] == layout)
        & (summary["writers"] == writers)
    ]
    return rows.iloc[0]


def writes_for(row):
    return f"{row['writes_per_s']:.0f} [{row['writes_per_s_lo']:.0f}–{row['writes_per_s_hi']:.0f}]"


pg_one = cell("postgres", "processes", "one agent")
pg_each = cell("postgres", "processes", "agent per writer")
busy = cell("sqlite-agent-lock", "processes", "one agent")
store = cell("sqlite-store-lock", "threads", "agent per writer")
free = cell("sqlite-agent-lock", "threads", "agent per writer")
print(
    f"PostgreSQL, 16 processes on one agent: median lock wait {pg_one['wait_p50_ms']:.0f} ms, "
    f"p99 {pg_one['wait_p99_ms']:.0f} ms, fairness {pg_one['fairness']:.2f}"
)
print(f"PostgreSQL, 16 processes, an agent each: p99 lock wait {pg_each['wait_p99_ms']:.3f} ms")
print(
    f"SQLite (no store lock), 16 processes on one agent: median lock wait "
    f"{busy['wait_p50_ms']:.3f} ms, p99 {busy['wait_p99_ms']:.0f} ms, max "
    f"{busy['wait_max_ms']:.0f} ms, fairness {busy['fairness']:.2f} "
    f"[{busy['fairness_lo']:.2f}–{busy['fairness_hi']:.2f}]"
)
print(
    f"16 threads, an agent each: p99 lock wait {store['wait_p99_ms']:.1f} ms with the "
    f"store-wide lock, {free['wait_p99_ms']:.1f} ms without it; throughput (claims/s) "
    f"{writes_for(store)} with it, {writes_for(free)} without"
)
# threads on one agent: the writer that finished first against the others, at that moment
grouped = runs[
    (runs["mode"] == "threads") & (runs["layout"] == "one agent") & (runs["writers"] > 1)
]
shares = recording.writers[recording.writers["run_id"].isin(grouped["run_id"])]
counts = shares.groupby("run_id")["claims_by_first_finish"]
ratio = counts.max() / counts.apply(lambda s: s.sort_values().iloc[:-1].median())
print(
    f"threads on one agent ({len(ratio)} runs, 2-16 writers): when the first writer finished, "
    f"the others had committed 1/{ratio.median():.2f} of its claims (median; "
    f"range 1/{ratio.min():.2f} to 1/{ratio.max():.2f})"
)

# %% [markdown]
# * **PostgreSQL, processes on one agent**: every transaction waits on the advisory lock,
#   and the wait grows with the queue; the queue is fair (fairness 1.00).
# * **PostgreSQL, an agent per writer**: no writer waits for another; advisory locks are
#   per agent.
# * **SQLite, one agent, processes**: the median transaction does not wait at all, the tail
#   is hundreds of milliseconds to seconds, and the shares are unequal (fairness far below
#   1, towards the 1/n of one writer taking all): SQLite's busy handler polls with growing
#   sleeps instead of queueing, so the process holding the file lock keeps winning while
#   the others sleep (the figure over time shows the bursts). The store-wide lock does not
#   reach across processes, so both SQLite configurations behave alike here.
# * **Threads on one agent (SQLite and PostgreSQL)**: the engine's group commit takes the
#   writers' calls together, so the store's lock is barely contended; but the writer that
#   led a group runs its next call alone, before the group that queued meanwhile, so it
#   commits about twice as fast as the others (median fairness 0.89–0.95). Nobody starves;
#   the others' latency carries the difference.
# * **Threads on an agent each**: the store-wide lock makes writers of different agents wait
#   as if they shared one (its purpose); without it only SQLite itself serializes them.
# * Throughput bands of most configurations overlap on this loaded machine: the bands, not
#   the medians alone, are the result; differences inside them are not measured here.

# %% [markdown]
# ## A small live run
# The same pipeline on this machine, now: a sweep, saved in the recorded format to a
# temporary directory, loaded back, summarized and drawn. Its size is a smoke test, and the
# table and figure say so.

# %%
LIVE_WRITERS = notebooks.scale([1, 2], [1, 2, 4])
LIVE_CLAIMS = notebooks.scale(10, 40)
LIVE_LAYOUTS = notebooks.scale(["one agent"], list(contention.LAYOUTS))
live_dir = tempfile.TemporaryDirectory(prefix="mempill-contention-live-")
live = contention.sweep(
    list(contention.CONFIGS),
    LIVE_WRITERS,
    LIVE_CLAIMS,
    modes=contention.MODES,
    layouts=LIVE_LAYOUTS,
    seed=1,
)
contention.save(live, live_dir.name)
live = contention.load(live_dir.name)
live_runs = contention.per_run(live)
NOTE = contention.size_note(live_runs)
print(f"size {SIZE}: {len(live_runs)} runs. {NOTE or ''}")
contention.table(contention.summary(live)).assign(verdict=NOTE or "")

# %%
plots.throughput_vs_writers(live_runs, title="Live run: throughput against writers", note=NOTE)

# %%
live_dir.cleanup()  # the notebook leaves no temporary directory behind
