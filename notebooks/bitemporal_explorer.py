# ---
# jupyter:
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Bitemporal explorer
#
# One line — `(agent, subject, predicate)` — seen on both time axes at once: **valid
# time** (when a fact held in the world, supplied by the caller) and **transaction
# time** (when the memory learned it, stamped by the engine). Everything drawn here is
# the engine's own answer, never a re-implementation: `query_timeline` gives the line's
# belief across valid time as of any ledger position (a `Snapshot`), and
# `query_changes` gives the ledger entries that moved it, with the belief before and
# after. At the end the same questions are asked in SQL (DuckDB, over the loaded ledger)
# and every answer is checked against `query_memory`.
#
# Parameters: `SIZE` (how many successive jobs end the story), `BACKENDS` (without
# `"postgres"` the PostgreSQL comparison is skipped) and `PG_DSN`.

# %%
# %matplotlib inline
import json
import tempfile
from datetime import UTC, datetime, timedelta
from itertools import pairwise

import duckdb
import pandas as pd
from IPython.display import display

import mempill
from mempill import Snapshot, open_postgres
from mempill.lab import ledgers, notebooks, plots, sqlcheck
from mempill.lab.servers import fresh_schema, postgres_dsn

notebooks.tidy_tables()

# %% tags=["parameters"]
SIZE = notebooks.default_size()  # "small" (seconds; CI) or "full"
BACKENDS = notebooks.default_backends("sqlite-file", "postgres")  # without "postgres": SQLite only
PG_DSN = notebooks.default_dsn()  # a libpq conninfo; None: the embedded PostgreSQL 18

# %%
notebooks.use_size(SIZE)
notebooks.use_dsn(PG_DSN)
AGENT, SUBJECT, PREDICATE = "hr-bot", "bob", "employer"
JOBS = notebooks.scale(3, 12)  # extra successive jobs after the story below
GLOBEX_YEARS = "2019-06-01"  # a valid instant inside Globex's years, for the changes feed


def deterministic() -> dict[str, object]:
    start = datetime(2026, 1, 1, tzinfo=UTC)
    return {"clock": mempill.SteppingClock(start, timedelta(hours=6)), "ids": mempill.SeededIds(3)}


# %% [markdown]
# ## A story with corrections
# A succession (Acme, then Globex), an untrusted rumour with no valid time (Initech) that
# contests both, an end date for Globex learned later, a low-confidence report (Hooli)
# that stays pending, the rumour invalidated, then a run of successive jobs. After each
# chapter the story takes a `snapshot`: a position in the ledger that any query accepts
# as `as_of`.


# %%
def story(memory: mempill.Engine) -> list[tuple[str, Snapshot]]:
    def job(value: str, start: str, end: str | None = None, **options: object) -> mempill.Receipt:
        return memory.remember(
            AGENT, SUBJECT, PREDICATE, value, valid_from=start, valid_until=end, **options
        )

    chapters = [("start", memory.snapshot(AGENT))]

    def chapter(name: str) -> None:
        chapters.append((name, memory.snapshot(AGENT)))

    job("Acme", "2015-02", "2018-09")
    globex = job("Globex", "2018-09")
    chapter("Acme, then Globex")
    rumour = memory.remember(AGENT, SUBJECT, PREDICATE, "Initech")  # no valid time
    chapter("the Initech rumour")
    memory.end(AGENT, globex.claim_ref, "2021-04")
    chapter("Globex ended 2021-04")
    job("Hooli", "2021-04", confidence=0.2, valid_time_confidence=0.9)  # a doubtful report
    chapter("a doubtful Hooli report")
    memory.invalidate(AGENT, rumour.claim_ref)
    chapter("the rumour invalidated")
    for year in range(2022, 2022 + JOBS):
        job(f"Startup {year - 2021}", f"{year}-01", f"{year + 1}-01")
    chapter("successive startups")
    return chapters


workdir = tempfile.TemporaryDirectory(prefix="mempill-bitemporal-")
sqlite_memory = mempill.open_directory(workdir.name, **deterministic())
chapters = story(sqlite_memory)
pd.DataFrame(
    [(name, s.stream_seq, s.tx_time, s.token) for name, s in chapters],
    columns=["after chapter", "stream_seq", "tx_time (UTC)", "token"],
)

# %% [markdown]
# ## Claims versus belief
# `history` lists the **claims** and what became of each (`state`, `status`). A claim's
# ingest disposition is how its write was received — Globex was `CommittedCheap` — and
# says nothing about what the memory believes at a given instant. That is the
# **timeline**: valid time cut into segments, each with a belief status (`Resolved`,
# `TimingUncertain`, `Contested`, `NoBelief`) and its value or candidates.

# %%
sqlite_memory.history(AGENT, SUBJECT, PREDICATE)

# %%
now = sqlite_memory.query_timeline(AGENT, SUBJECT, PREDICATE)
plots.timeline_frame(now)

# %% [markdown]
# The same line as of the snapshot taken just after the rumour: the rumour has no valid
# time, so it holds at every instant — it contests Acme and Globex inside their windows
# and is the only (timing-uncertain) candidate outside them.

# %%
rumour_snapshot = dict(chapters)["the Initech rumour"]
plots.timeline_frame(sqlite_memory.query_timeline(AGENT, SUBJECT, PREDICATE, as_of=rumour_snapshot))

# %% [markdown]
# ## The changes feed
# `query_changes(after=snapshot, until=snapshot)` lists each line a window of the ledger
# touched, its entries there, and its belief before and after the window at one valid
# instant (here mid-2019, during Globex's years). One row per chapter:


# %%
def belief(projection: mempill.Projection) -> str:
    values = " | ".join(str(c.value) for c in projection.candidates)
    return f"{projection.status.value} {values}".strip()


def feed(memory: mempill.Engine) -> pd.DataFrame:
    rows = []
    for (_, start), (name, end) in pairwise(chapters):
        page = memory.query_changes(AGENT, after=start, until=end, valid_at=GLOBEX_YEARS)
        for change in page.changes:
            entries = [f"{plots.event_action(e)} → {e.disposition.value}" for e in change.entries]
            rows.append(
                {
                    "chapter": name,
                    "subject": change.subject,
                    "predicate": change.predicate,
                    "entries (action → disposition)": "; ".join(entries),
                    f"before (valid {GLOBEX_YEARS})": belief(change.before),
                    f"after (valid {GLOBEX_YEARS})": belief(change.after),
                }
            )
    return pd.DataFrame(rows)


with pd.option_context("display.max_colwidth", 120):
    display(feed(sqlite_memory))

# %% [markdown]
# ## Belief on both axes
# `bitemporal_segments` asks `query_timeline` at every ledger position that touched the
# line (the entries of `query_changes`) and keeps a segment as one row while it stays the
# same; `line_events` lists those entries.

# %%
segments = plots.bitemporal_segments(sqlite_memory, AGENT, SUBJECT, PREDICATE)
events = plots.line_events(sqlite_memory, AGENT, SUBJECT, PREDICATE)
segments.head(12)

# %% [markdown]
# **What to look at.** Read the figure bottom to top, one horizontal slice per ledger
# event (markers on the right). Each slice is the whole timeline as believed then: a
# partition of valid time, so no rectangle hides another. At the bottom Acme and then
# Globex are green (`Resolved`). The rumour (●, written `Contested`) turns the band red
# (`Contested`, both candidates written in) wherever Acme or Globex held, and orange
# (`TimingUncertain`, Initech alone) everywhere else, out to both open ends (◂ ▸).
# Globex's end (▼) shortens its red band to 2021-04 and hands the years after it to the
# rumour alone. The doubtful Hooli report changes nothing — it is pending, not believed.
# The invalidation (◆) clears the rumour: Acme and Globex are green again up to the top
# edge (still believed now), and 2021-04 onwards is blank — no belief, since Hooli is
# still pending — until each startup adds its green year. The cell below prints these
# moments from the data.

# %%
plots.bitemporal_timeline(segments, events, title=f"{SUBJECT} / {PREDICATE} on SQLite")

# %%
globex_rows = segments[segments["candidates"].str.contains("Globex")]
contested = globex_rows[globex_rows["status"] == "Contested"]
invalidated = events[events["action"] == "invalidate"]["recorded_at"].iloc[0]
print(
    "Globex contested from tx", contested["tx_from"].min(), "until tx", contested["tx_until"].max()
)
print("the rumour invalidated at tx", invalidated)
assert contested["tx_until"].max() == invalidated

# %% [markdown]
# ## What the memory believes now
# The latest timeline as one strip across valid time (the top edge of the figure above).

# %%
VALID_RANGE = (datetime(2014, 1, 1, tzinfo=UTC), datetime(2023 + JOBS, 1, 1, tzinfo=UTC))
plots.belief_strip(
    now, title=f"{SUBJECT} / {PREDICATE}: what the memory believes now", valid_range=VALID_RANGE
)

# %% [markdown]
# And the same strip as of the rumour's snapshot (a slice of the figure above): every
# year held something, but nothing was settled.

# %%
plots.belief_strip(
    sqlite_memory.query_timeline(AGENT, SUBJECT, PREDICATE, as_of=rumour_snapshot),
    title=f"{SUBJECT} / {PREDICATE}: believed just after the rumour",
    valid_range=VALID_RANGE,
)

# %% [markdown]
# ## The same line on PostgreSQL
# Same story, same clock and ids: every segment at every position, and every ledger
# event, are identical.

# %%
pg_tables = None
if "postgres" in BACKENDS:
    with (
        fresh_schema(postgres_dsn(), prefix="bitemporal") as dsn,
        open_postgres(dsn, **deterministic()) as pg_memory,
    ):
        story(pg_memory)
        pg_segments = plots.bitemporal_segments(pg_memory, AGENT, SUBJECT, PREDICATE)
        pg_events = plots.line_events(pg_memory, AGENT, SUBJECT, PREDICATE)
        pg_tables = ledgers.load_all(pg_memory)
    same = pg_segments.equals(segments) and pg_events.equals(events)
    print("identical segments and events on SQLite and PostgreSQL:", same)
    assert same
else:
    print("PostgreSQL left out: BACKENDS =", BACKENDS)

# %% [markdown]
# ## Bitemporal questions in SQL
# `ledgers.connect` loads the ledger into DuckDB with views and table macros
# ([docs/duckdb.md](../docs/duckdb.md)). `belief_at(tx, vt)` is the belief of every line
# as of transaction time `tx` (NULL: everything written), valid at instant `vt`: the fold
# of `query_memory` written in SQL. Values are canonical JSON.

# %%
con = ledgers.connect(sqlite_memory)
con.sql(f"""
SELECT subject, predicate, status, value, candidates, valid_from, valid_until
FROM belief_at(NULL, '{GLOBEX_YEARS}')
""").df()

# %% [markdown]
# **As of each chapter, what was believed about mid-2019?** One query over a table of
# points (each chapter's transaction time, all valid at 2019-06-01), beside
# `query_memory(as_of=snapshot, valid_at=2019-06-01)`; `match` compares status and values.

# %%
told = [(name, snap) for name, snap in chapters if snap.tx_time is not None]
chapter_points = pd.DataFrame(
    {
        "chapter": [name for name, _ in told],
        "as_of": ledgers.times([snap.tx_time for _, snap in told]),
        "valid_at": ledgers.times([GLOBEX_YEARS] * len(told)),
    }
)
con.register("chapter_points", chapter_points)
by_chapter = con.sql(f"""
SELECT p.chapter, b.as_of, b.status, b.candidates
FROM belief_over('chapter_points') b JOIN chapter_points p USING (as_of)
WHERE b.agent_id = '{AGENT}' AND b.subject = '{SUBJECT}' AND b.predicate = '{PREDICATE}'
ORDER BY b.as_of
""").df()
by_chapter["sql"] = [
    f"{status} {' | '.join(json.loads(v) for v in values)}".strip()
    for status, values in by_chapter[["status", "candidates"]].itertuples(index=False)
]
by_chapter["query_memory"] = [
    belief(sqlite_memory.query_memory(AGENT, SUBJECT, PREDICATE, as_of=snap, valid_at=GLOBEX_YEARS))
    for _, snap in told
]
by_chapter["match"] = by_chapter["sql"] == by_chapter["query_memory"]
assert by_chapter["match"].all()
by_chapter[["chapter", "as_of", "sql", "query_memory", "match"]]

# %% [markdown]
# **When did the belief about mid-2019 change?** The belief at every transaction time of
# the ledger, kept where it differs from the one before (a window function over
# `belief_over`).

# %%
con.sql(f"""
CREATE OR REPLACE TEMP TABLE every_tx AS
SELECT DISTINCT recorded_at AS as_of, TIMESTAMPTZ '{GLOBEX_YEARS}' AS valid_at FROM ledger
""")
con.sql(f"""
SELECT as_of, status, candidates FROM (
    SELECT as_of, status, candidates,
        lag(status) OVER w AS status_before, lag(candidates) OVER w AS candidates_before
    FROM belief_over('every_tx')
    WHERE agent_id = '{AGENT}' AND subject = '{SUBJECT}' AND predicate = '{PREDICATE}'
    WINDOW w AS (ORDER BY as_of)
)
WHERE status IS DISTINCT FROM status_before OR candidates IS DISTINCT FROM candidates_before
ORDER BY as_of
""").df()

# %% [markdown]
# **Which claims were current, contested or pending at each chapter?** `history_over`
# gives `query_history`'s statuses at each point (valid at the point's own time).

# %%
con.sql(
    "CREATE OR REPLACE TEMP VIEW chapter_tx AS SELECT as_of, NULL AS valid_at FROM chapter_points"
)
con.sql(f"""
SELECT p.chapter, h.status, string_agg(h.value, ', ' ORDER BY h.position) AS claims
FROM history_over('chapter_tx') h JOIN chapter_points p USING (as_of)
WHERE h.agent_id = '{AGENT}' AND h.subject = '{SUBJECT}' AND h.predicate = '{PREDICATE}'
GROUP BY ALL ORDER BY min(h.as_of), h.status
""").df()

# %% [markdown]
# ## Every answer checked
# The SQL above is only useful if it answers like the engine. `sqlcheck.compare_belief`
# asks every line both ways at a grid of points — every transaction time of this ledger
# (and NULL) times every valid-time boundary of its claims and the microsecond before
# each — and `compare_history` does the same for the claims' statuses.

# %%
frames = ledgers.load_all(sqlite_memory)
points = sqlcheck.grid(frames, as_of=notebooks.scale(12, 40), valid_at=notebooks.scale(12, 40))
lines = sqlcheck.lines_of(frames)
checked = sqlcheck.compare_belief(sqlite_memory, con, points, lines)
as_ofs = sorted({t.to_pydatetime() for t in points["as_of"].dropna()})
histories = sqlcheck.compare_history(sqlite_memory, con, as_ofs, lines)
print(f"belief: {int(checked['match'].sum())} of {len(checked)} answers match; "
      f"history: {int(histories['match'].sum())} of {len(histories)}")  # fmt: skip
assert checked["match"].all() and histories["match"].all()
checked.groupby(["engine_status"]).agg(answers=("match", "size"), all_match=("match", "all"))

# %%
checked.sample(8, random_state=1).sort_values(["as_of", "valid_at"])

# %% [markdown]
# ## The ledger as data
# The loaders return typed frames (timezone-aware timestamps, categoricals for enums).
# The frames loaded from PostgreSQL above are registered on DuckDB's default connection,
# so plain `duckdb.sql` sees them.

# %%
query = "select event_kind, disposition, count(*) as entries from ledger group by all order by all"
con.sql(query).df()

# %%
if pg_tables is not None:
    ledgers.register(pg_tables, duckdb.default_connection())
    display(duckdb.sql(query).df())

# %%
con.close()
sqlite_memory.close()
workdir.cleanup()
