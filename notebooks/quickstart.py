# ---
# jupyter:
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # mempill quickstart
#
# mempill is an append-only, bi-temporal memory for agents: every write is kept, each
# fact carries **provenance** and a **valid-time** window, and belief is computed on every
# read. This notebook runs against the embedded default (a SQLite file) and, at the end,
# the same calls against PostgreSQL. The clock and ids are fixed so the output is
# reproducible.
#
# The parameters cell below is where to change what runs (`SIZE`, `BACKENDS`, `PG_DSN`);
# `python -m mempill.lab.notebooks execute quickstart -p NAME=VALUE` sets them from the
# command line.

# %%
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

import mempill
from mempill import open_postgres
from mempill.lab import ledgers, notebooks
from mempill.lab.servers import fresh_schema, postgres_dsn

notebooks.tidy_tables()

# %% tags=["parameters"]
SIZE = notebooks.default_size()  # "small" (seconds; CI) or "full": this tour is small at both
BACKENDS = notebooks.default_backends("sqlite-file", "postgres")  # without "postgres": SQLite only
PG_DSN = notebooks.default_dsn()  # a libpq conninfo; None: the embedded PostgreSQL 18

# %%
notebooks.use_size(SIZE)
notebooks.use_dsn(PG_DSN)
START = datetime(2026, 1, 1, tzinfo=UTC)
scratch = tempfile.TemporaryDirectory(prefix="mempill-quickstart-")  # removed at the end
workdir = Path(scratch.name)
memory = mempill.open_default(
    workdir / "alice.db",
    clock=mempill.SteppingClock(START, timedelta(days=1)),
    ids=mempill.SeededIds(7),
)

# %% [markdown]
# ## Remember and recall
# `remember` returns a receipt with one of twelve dispositions; `recall` folds the stored
# claims into a belief.

# %%
memory.remember("alice", "alice", "home_city", "Lisbon")

# %%
memory.recall("alice", "alice", "home_city")

# %% [markdown]
# ## A contradiction is surfaced, never silently resolved
# A second, different value for the same line does not overwrite the first: the line
# becomes **Contested** and the projection lists every candidate.

# %%
memory.remember("alice", "alice", "home_city", "Porto")

# %%
contested = memory.recall("alice", "alice", "home_city")
print(contested.status, [slot.value for slot in contested.candidates])
contested

# %% [markdown]
# ## A valid-time succession
# Two values whose trusted windows do not overlap succeed each other instead of
# contesting (dates are lenient: `2019-03` means March 2019).

# %%
acme = memory.remember(
    "alice", "alice", "employer", "Acme", valid_from="2019-03", valid_until="2023-06"
)
globex = memory.remember("alice", "alice", "employer", "Globex", valid_from="2023-06")
globex

# %% [markdown]
# ## Two time axes: `valid_at` and `as_of`
# `valid_at` asks what was true in the world at an instant; `as_of` asks what the memory
# believed at an earlier transaction time.

# %%
memory.recall("alice", "alice", "employer", valid_at="2020-06-01")

# %%
day_two = START + timedelta(days=1)  # the clock steps a day per call: Porto arrived on day 3
memory.recall("alice", "alice", "home_city", as_of=day_two)

# %% [markdown]
# ## History and the audit trail
# The history lists every claim of a line with its effective window and status; the
# audit trail is the append-only ledger itself.

# %%
memory.history("alice", "alice", "employer")

# %%
memory.query_audit("alice", limit=10)

# %% [markdown]
# The ledger is also a data frame (and a DuckDB table) for analysis:

# %%
ledger = ledgers.ledger(memory)
notebooks.save_frame("ledger", ledger)  # every column, in build/notebooks/quickstart/
ledger[["stream_seq", "event_kind", "disposition", "route", "recorded_at"]]

# %% [markdown]
# ## The same calls on PostgreSQL
# `open_postgres` takes a libpq conninfo; here a fresh schema on the embedded server (or
# the one `MEMPILL_TEST_PG_DSN` names). The same calls with the same clock and ids give
# the same receipts and a ledger with the same digest on both backends.


# %%
def tour(engine: mempill.Engine) -> tuple[list[str], str]:
    receipts = [
        engine.remember("alice", "alice", "home_city", "Lisbon"),
        engine.remember("alice", "alice", "home_city", "Porto"),
        engine.remember(
            "alice", "alice", "employer", "Acme", valid_from="2019-03", valid_until="2023-06"
        ),
        engine.remember("alice", "alice", "employer", "Globex", valid_from="2023-06"),
    ]
    return [r.disposition.value for r in receipts], engine.ledger_digest("alice")


def deterministic() -> dict[str, object]:
    return {"clock": mempill.SteppingClock(START, timedelta(days=1)), "ids": mempill.SeededIds(7)}


with mempill.open_default(workdir / "tour.db", **deterministic()) as on_sqlite:
    sqlite_tour = tour(on_sqlite)
print("SQLite:    ", sqlite_tour)
if "postgres" in BACKENDS:
    with (
        fresh_schema(postgres_dsn(), prefix="quickstart") as dsn,
        open_postgres(dsn, **deterministic()) as on_postgres,
    ):
        postgres_tour = tour(on_postgres)
    print("PostgreSQL:", postgres_tour)
    assert sqlite_tour == postgres_tour
else:
    print("PostgreSQL: left out (BACKENDS)")

# %% [markdown]
# The store lived in a temporary directory; closing the engine and removing it leaves
# nothing behind.

# %%
memory.close()
scratch.cleanup()
