# ---
# jupyter:
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Conformance: the same streams on two backends
#
# The differential replay of `conformance/`: every scenario stream in `data/scenarios`
# (requests, clock and ids fixed in its header) is replayed on the embedded SQLite store
# (a file per agent) and on PostgreSQL (the embedded server, or the one
# `MEMPILL_TEST_PG_DSN` names). Each operation's result and the ledger entries it
# appended must be identical, and so must the final ledger digests (reference §9). A cell
# reads `pass` (identical, and equal to the stream's recorded expectations when there
# are some), `diff` (unlike the first backend), `deviation` (unlike the recording) or
# `error`.
#
# Parameters: `SIZE` ("small": the first 8 streams), `BACKENDS` (lab backend names:
# `sqlite-mem`, `sqlite-file`, `postgres`, `pg-embedded`, `pg-system`, `pg-rls`) and `PG_DSN`.

# %%
import io

import pandas as pd

from mempill.lab import notebooks

notebooks.import_path_without_notebooks()  # else this notebook's conformance.py shadows the package
from conformance.corpus import run_corpus, summary_table

notebooks.tidy_tables()

# %% tags=["parameters"]
SIZE = notebooks.default_size()  # "small" (the first 8 streams; CI) or "full" (every stream)
BACKENDS = notebooks.default_backends("sqlite-file", "postgres")  # the first is the baseline
PG_DSN = notebooks.default_dsn()  # a libpq conninfo; None: the embedded PostgreSQL 18

# %%
notebooks.use_size(SIZE)
notebooks.use_dsn(PG_DSN)
SCENARIOS = notebooks.ROOT / "data" / "scenarios"
streams = sorted(p for p in SCENARIOS.glob("*.jsonl") if not p.name.endswith(".expected.jsonl"))
streams = streams[: notebooks.scale(8, len(streams))]
print(f"{len(streams)} streams on {', '.join(BACKENDS)}")

# %%
log = io.StringIO()  # the per-stream lines the command-line runner prints
result = run_corpus(streams, BACKENDS, require_expected=False, out=log, progress=False)
print(summary_table(result))

# %% [markdown]
# ## One row per stream
# `digest` is the first agent's ledger digest (12 hex digits) on the first backend;
# `same digests` says every backend ended with the same digest for every agent.


# %%
def row(verdict) -> dict[str, object]:
    digests = {name: run.digests for name, run in verdict.runs.items() if run.ok}
    first = next(iter(digests.values()), {})
    return {
        "stream": verdict.stream.name,
        "operations": len(verdict.stream.ops),
        **verdict.cells,
        "digest": next(iter(first.values()), "")[:12],
        "same digests": len({tuple(sorted(d.items())) for d in digests.values()}) == 1,
    }


table = pd.DataFrame([row(v) for v in result.verdicts])
notebooks.save_frame("streams", table)
table

# %% [markdown]
# ## Where backends differ
# The first differing operation of each stream that did not pass (empty when all agree).

# %%
for verdict in result.verdicts:
    for difference in verdict.differences[:1]:
        print(f"## {verdict.stream.name}\n{difference.render()}\n")
differing = sum(not v.ok for v in result.verdicts)
print("all identical" if result.ok else f"{differing} stream(s) differ")
