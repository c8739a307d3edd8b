# %% [markdown]
# # Bitemporal explorer
#
# One line — `(agent, subject, predicate)` — seen on both time axes at once: **valid
# time** (when a fact held in the world, supplied by the caller) runs left to right,
# **transaction time** (when the memory learned it, stamped by the engine) runs bottom
# to top. Each rectangle is one claim's effective window during a span of tx time,
# coloured by its disposition; a hatched outline is an untrusted window (no trusted
# start), which holds at every instant. The picture is computed by the engine's own
# fold at every tx time the line changed.

# %%
# %matplotlib inline
import tempfile
from datetime import UTC, datetime, timedelta

import duckdb

import mempill
from mempill import open_postgres
from mempill.lab import ledgers, plots
from mempill.lab.notebooks import scale
from mempill.lab.servers import fresh_schema, postgres_dsn

AGENT, SUBJECT, PREDICATE = "hr-bot", "bob", "employer"
JOBS = scale(3, 12)  # extra successive jobs after the story below


def deterministic() -> dict[str, object]:
    start = datetime(2026, 1, 1, tzinfo=UTC)
    return {"clock": mempill.SteppingClock(start, timedelta(hours=6)), "ids": mempill.SeededIds(3)}


# %% [markdown]
# ## A story with corrections
# A succession, an untrusted rumour that contests it, an end date learned later, a
# low-confidence report, the rumour invalidated, then a run of successive jobs.


# %%
def story(memory: mempill.Engine) -> None:
    def job(value: str, start: str, end: str | None = None, **options: object) -> mempill.Receipt:
        return memory.remember(
            AGENT, SUBJECT, PREDICATE, value, valid_from=start, valid_until=end, **options
        )

    job("Acme", "2015-02", "2018-09")
    globex = job("Globex", "2018-09")
    rumour = memory.remember(AGENT, SUBJECT, PREDICATE, "Initech")  # no valid time
    memory.end(AGENT, globex.claim_ref, "2021-04")
    job("Hooli", "2021-04", confidence=0.2, valid_time_confidence=0.9)  # a doubtful report
    memory.invalidate(AGENT, rumour.claim_ref)
    for year in range(2022, 2022 + JOBS):
        job(f"Startup {year - 2021}", f"{year}-01", f"{year + 1}-01")


workdir = tempfile.mkdtemp(prefix="mempill-bitemporal-")
sqlite_memory = mempill.open_directory(workdir, **deterministic())
story(sqlite_memory)
sqlite_memory.history(AGENT, SUBJECT, PREDICATE)

# %% [markdown]
# ## The timeline

# %%
spans = plots.bitemporal_spans(sqlite_memory, AGENT, SUBJECT, PREDICATE)
spans.head(12)

# %%
plots.bitemporal_timeline(spans, title=f"{SUBJECT} / {PREDICATE} on SQLite")

# %% [markdown]
# ## The same line on PostgreSQL
# Same story, same clock and ids: the spans — every window and state at every tx time —
# are identical.

# %%
with (
    fresh_schema(postgres_dsn(), prefix="bitemporal") as dsn,
    open_postgres(dsn, **deterministic()) as pg_memory,
):
    story(pg_memory)
    pg_spans = plots.bitemporal_spans(pg_memory, AGENT, SUBJECT, PREDICATE)
    pg_tables = ledgers.load_all(pg_memory)
print("identical spans on SQLite and PostgreSQL:", pg_spans.equals(spans))
assert pg_spans.equals(spans)

# %% [markdown]
# ## The ledger as data
# The loaders return typed frames (timezone-aware timestamps, categoricals for enums);
# `ledgers.connect` registers them in DuckDB. The frames loaded from PostgreSQL above
# are registered on DuckDB's default connection, so plain `duckdb.sql` sees them.

# %%
con = ledgers.connect(sqlite_memory)
query = "select event_kind, disposition, count(*) as entries from ledger group by all order by all"
con.sql(query).df()

# %%
ledgers.register(pg_tables, duckdb.default_connection())
duckdb.sql("select disposition, count(*) as entries from ledger group by all order by all").df()

# %%
sqlite_memory.close()
