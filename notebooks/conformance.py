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

# %%
import io

import pandas as pd

from mempill.lab.notebooks import ROOT, import_path_without_notebooks, scale

import_path_without_notebooks()  # else this notebook's own conformance.py shadows the package
from conformance.corpus import run_corpus, summary_table

SCENARIOS = ROOT / "data" / "scenarios"
BACKENDS = ("sqlite-file", "postgres")
streams = sorted(p for p in SCENARIOS.glob("*.jsonl") if not p.name.endswith(".expected.jsonl"))
streams = streams[: scale(8, len(streams))]
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
