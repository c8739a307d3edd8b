# %% [markdown]
# # Lock contention
#
# Writes of one agent are serialized (reference invariant 7). How long does a writer wait for
# that lock, and what does it cost in throughput? `mempill.lab.contention` starts N
# writers (threads sharing one engine, or processes with an engine each), released
# together, each ingesting new facts; the store records every write transaction in
# `write_stats` (lock wait: from asking for the agent's lock to holding it; on PostgreSQL
# timed inside the transaction: `pg_try_advisory_xact_lock` first, the blocking call
# timed only when it fails).
#
# Configurations:
# * `sqlite-store-lock` — one SQLite file per agent with the store-wide write lock (the
#   `open_directory` default): every write of the store is serialized;
# * `sqlite-agent-lock` — the same without it (`serialize_all_writes=False`): only writes
#   of the same agent wait;
# * `postgres` — PostgreSQL, one advisory transaction lock per agent.
#
# Layouts: `one agent` (every writer on the same agent) and `agent per writer`.

# %%
# %matplotlib inline
from mempill.lab import contention, plots
from mempill.lab.notebooks import scale, small

WRITERS = scale([1, 4], [1, 2, 4, 8, 16])
CLAIMS_PER_WRITER = scale(15, 200)
MODES = ("threads", "processes")
CONFIGS = list(contention.CONFIGS)
print(f"small={small()} writers={WRITERS} claims/writer={CLAIMS_PER_WRITER} modes={MODES}")

# %%
stats = contention.sweep(CONFIGS, WRITERS, CLAIMS_PER_WRITER, modes=MODES)
stats.head()

# %% [markdown]
# ## Summary
# `waited_share` is the share of writes that waited more than 0.1 ms; percentiles and the
# maximum are in milliseconds; throughput is committed writes per second of wall time.

# %%
summary = contention.summary(stats)
summary.round(3)

# %% [markdown]
# ## Lock-wait distributions at the largest writer count
# A log-scale ECDF keeps the tail visible: rare long waits only show up because every
# write is recorded.

# %%
most = stats[stats["writers"] == max(WRITERS)]
plots.lock_wait_ecdf(
    most[most["mode"] == "threads"], title=f"Lock wait per write, {max(WRITERS)} writer threads"
)

# %%
plots.lock_wait_ecdf(
    most[most["mode"] == "processes"],
    title=f"Lock wait per write, {max(WRITERS)} writer processes",
)

# %% [markdown]
# ## Against the number of writers

# %%
plots.lock_wait_vs_writers(
    summary[summary["mode"] == "threads"], title="Lock wait against writer threads"
)

# %%
plots.throughput_vs_writers(
    summary[summary["mode"] == "threads"], title="Throughput against writer threads"
)

# %%
plots.throughput_vs_writers(
    summary[summary["mode"] == "processes"], title="Throughput against writer processes"
)

# %% [markdown]
# ## Reading the results
# * One agent: every configuration serializes its writers, so waits grow with the number
#   of writers (each waits for the transactions queued before it).
# * An agent per writer: PostgreSQL's per-agent advisory locks never contend, and
#   `sqlite-agent-lock` only waits on SQLite itself; with the store-wide lock, threads
#   of one store still queue behind each other. Processes each open their own store, so
#   the store-wide lock does not reach across them.
# * Numbers depend on the machine (cores, fsync cost); the table above is the measurement.
