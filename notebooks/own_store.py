# ---
# jupyter:
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Your own store
#
# Point this notebook at a store — a SQLite file, a directory of agent files or a
# PostgreSQL DSN — and see what its ledger says: the dispositions of its writes over
# transaction time, the lines that were contested, how long the oracle took to answer,
# and how long writes waited for their lock. Everything is read once into DuckDB
# (`mempill.lab.ledgers`), nothing is written to the store, and every question below is
# one SQL query over the views of [docs/duckdb.md](../docs/duckdb.md), shown with its
# answer so it can be changed.
#
# With `SOURCE = None` it builds a demo store first: a generated workload
# (`mempill.lab.workload`: successions, contradictions sent to an oracle that answers
# some steps later or lets them expire, ends, invalidations, a burst of concurrent
# writers) in a temporary directory, removed at the end.
#
# Parameters: `SOURCE` (relative paths are from `notebooks/`), `AGENT` (one agent id, or
# None for every agent) and `SIZE`. A store written with a non-default `EngineConfig`
# needs it in `CONFIG` for the belief queries (the trust threshold and currency ages).

# %%
# %matplotlib inline
import tempfile
from pathlib import Path

import pandas as pd
from IPython.display import display

import mempill
from mempill.core.config import EngineConfig
from mempill.lab import ledgers, notebooks, sqlcheck, storeplots, workload

notebooks.tidy_tables()

# %% tags=["parameters"]
SOURCE = None  # a SQLite file, a directory of agent files or a postgresql:// DSN; None: a demo
AGENT = None  # None: every agent
SIZE = notebooks.default_size()  # "small" (seconds; CI) or "full"
CONFIG = None  # the store's EngineConfig when it is not the default one

# %%
notebooks.use_size(SIZE)
scratch = None
if SOURCE is None:
    scratch = tempfile.TemporaryDirectory(prefix="mempill-own-store-")  # removed at the end
    source = scratch.name
    counts = workload.demo_store(source, steps=notebooks.scale(300, 3000))
    config = workload.demo_config()
    print(f"demo store in {source}: {sum(counts.values())} operations")
    display(pd.Series(counts, name="operations").sort_values(ascending=False).to_frame())
else:
    source, config = SOURCE, CONFIG or EngineConfig()

# %% [markdown]
# ## Loading
# One read snapshot per database, every table typed (UTC timestamps, enums as
# categories); `register` puts them in a DuckDB connection with the views installed.

# %%
frames = ledgers.load_all(source, agents=AGENT)
con = ledgers.register(frames, config=config)
ledger = frames["ledger"]
start, end = ledger["recorded_at"].min(), ledger["recorded_at"].max()
print(
    f"{ledger['agent_id'].nunique()} agent(s), {len(ledger)} ledger entries from {start} to {end}"
)
pd.DataFrame({name: [len(frame)] for name, frame in frames.items()}, index=["rows"])


# %%
def sql(query: str) -> pd.DataFrame:
    """Run a query on the store's connection and show it with its answer."""
    print(query.strip())
    return con.sql(query).df()


# %% [markdown]
# ## Dispositions over transaction time
# How each write was received (`CommittedCheap`, `Contested`, `QueuedForAdjudication`,
# …), counted per bucket of transaction time; the bucket width is chosen from the
# ledger's span (at most 40 buckets).

# %%
width = storeplots.bucket_width(end - start) if len(ledger) else "1 day"
dispositions = sql(f"""
SELECT bucket, disposition, sum(entries) AS entries
FROM dispositions_by('{width}')
GROUP BY ALL ORDER BY bucket, disposition
""")
notebooks.save_frame("dispositions", dispositions)
dispositions.groupby("disposition")[["entries"]].sum().sort_values("entries", ascending=False)

# %%
storeplots.dispositions_over_time(
    dispositions, width, title="Ledger entries by disposition over transaction time"
)

# %% [markdown]
# ## Contested lines
# Lines that were ever contested or sent to the oracle (`contested_lines`), the busiest
# first: how many entries contested them, how many requests the oracle got and how they
# ended, and the belief valid now.

# %%
sql("""
SELECT agent_id, subject, predicate, contested_entries, adjudications, verdicts, expired,
    open, round(median_latency_s / 60, 1) AS median_latency_min, status_now
FROM contested_lines
ORDER BY contested_entries + adjudications DESC, agent_id, subject, predicate
LIMIT 15
""")

# %% [markdown]
# How many lines were believed `Contested` over transaction time: `belief_over` at 20
# transaction times spread over the ledger, each at every valid instant where a claim's
# window starts (and one before them all, for claims without valid time). A contest
# begins where a window does, so a line contested anywhere in valid time is counted —
# unless the store has more than 60 distinct window starts: then 60 spread over them are
# asked, and a contest between two of them can be missed. (On the demo store the last
# steps up are the burst's lines: facts without valid time, believed at every instant.)

# %%
starts = con.sql(
    "SELECT DISTINCT window_from FROM claim_views_at(NULL) WHERE window_from IS NOT NULL"
).df()["window_from"]
instants = [sqlcheck.BEGINNING, *sqlcheck.spread(sorted(starts), 60)]
txs = list(pd.date_range(start, end, periods=20)) if len(ledger) else []
tx_grid = pd.DataFrame(
    {
        "as_of": ledgers.times([t for t in txs for _ in instants]),
        "valid_at": ledgers.times([v for _ in txs for v in instants]),
    }
)
con.register("tx_grid", tx_grid)
contested = sql("""
SELECT as_of,
    count(DISTINCT [agent_id, subject, predicate]) FILTER (WHERE status = 'Contested')
        AS contested,
    count(DISTINCT [agent_id, subject, predicate]) FILTER (WHERE status <> 'NoBelief')
        AS believed
FROM belief_over('tx_grid')
GROUP BY ALL ORDER BY as_of
""")
notebooks.save_frame("contested_over_time", contested)
storeplots.contested_over_time(contested, title="Lines believed Contested over transaction time")

# %% [markdown]
# ## Oracle verdict latency
# Each adjudication request from its queueing to its verdict (`Affirm`, `Deny`,
# `Unknown`) or its expiry, in transaction time (`oracle_latency`). An expiry is recorded
# when a sweep or a late verdict finds the request expired, so it comes after the TTL.

# %%
latency = sql("SELECT * FROM oracle_latency")
notebooks.save_frame("oracle_latency", latency)
sql("""
SELECT coalesce(outcome, 'open') AS outcome, count(*) AS requests,
    round(quantile_cont(latency_s, 0.5) / 60, 1) AS p50_min,
    round(quantile_cont(latency_s, 0.9) / 60, 1) AS p90_min,
    round(max(latency_s) / 60, 1) AS max_min
FROM oracle_latency
GROUP BY ALL ORDER BY requests DESC
""")

# %%
storeplots.oracle_latency(latency, title="Oracle verdict latency by outcome")

# %% [markdown]
# ## Lock waits
# `write_stats` (engines opened with `record_write_stats=True`): one row per write
# transaction, with the time it waited for the agent's write lock and the time it took,
# both measured by the store. Percentiles per backend and agent (`write_latency`; the row
# without an agent is the whole backend). On the demo store the burst of concurrent
# writers is the agent `burst`; its waits depend on the machine's load at the time.

# %%
sql("""
SELECT backend, coalesce(agent_id, '(all)') AS agent, writes, lock_wait_p50_us,
    lock_wait_p99_us, lock_wait_max_us, txn_p50_us, txn_p99_us
FROM write_latency
""")

# %%
waits = frames["write_stats"][["agent_id", "lock_wait_us"]]
notebooks.save_frame("lock_waits", waits)
storeplots.lock_waits(waits, title="Lock wait per write transaction, by agent")

# %% [markdown]
# ## The SQL answers checked against the engine
# The belief macros are the engine's fold written in SQL. Here a sample of lines is asked
# both ways — `belief_over` and `query_memory` through an engine opened read-only on the
# same store — at transaction times of the ledger and valid-time boundaries of the
# claims; `match` must hold everywhere.


# %%
def open_read_only(where: str) -> mempill.Engine:
    if ledgers.is_conninfo(where):
        return mempill.open_postgres(where, config=config, read_only=True)
    path = Path(where)
    opener = mempill.open_directory if path.is_dir() else mempill.open_default
    return opener(path, config=config, read_only=True)


lines = sqlcheck.lines_of(frames)
sample = lines[:: max(1, len(lines) // notebooks.scale(12, 40))]
points = sqlcheck.grid(frames, as_of=notebooks.scale(4, 8), valid_at=notebooks.scale(5, 10))
with open_read_only(str(source)) as engine:
    checked = sqlcheck.compare_belief(engine, con, points, sample)
print(f"{len(checked)} answers ({len(sample)} lines x {len(points)} points): "
      f"{int(checked['match'].sum())} match")  # fmt: skip
assert checked["match"].all(), checked[~checked["match"]].head()
checked.groupby("engine_status").agg(answers=("match", "size"), match=("match", "all"))

# %%
con.close()
if scratch is not None:
    scratch.cleanup()
