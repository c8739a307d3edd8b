# %% [markdown]
# # Performance
#
# How fast is mempill, and does it stay fast as a store grows? `python -m benchmarks run`
# (or `nox -s bench`) measures this engine against the disk's own limit and against the
# published `mempill` 0.4.0 wheel, fed the same claim streams, and saves
# `build/bench/results.json`. This notebook plots those results; when there are none it
# runs the quick benchmark first (tiny sizes when `MEMPILL_NOTEBOOK_SMALL=1`, as in CI).
#
# Every number is a median over repeated rounds measured in one run, so the ratios
# compare like with like. "First read" is the first query of a line after the engine was
# opened (the engine keeps an exact per-line cache); "repeated" queries it again.

# %%
# %matplotlib inline
import json
import tempfile
from pathlib import Path

from IPython.display import Markdown, display

from mempill.lab.notebooks import import_path_without_notebooks

import_path_without_notebooks()  # else notebooks/conformance.py shadows the package
from benchmarks import plots, tables
from benchmarks.reference import installed_version, venv_python
from benchmarks.report import SUMMARY, TARGETS, markdown_table
from benchmarks.runner import DEFAULT_OUT, run
from benchmarks.sizes import QUICK, TINY
from mempill.lab.notebooks import small

SAVED = DEFAULT_OUT / "results.json"
if SAVED.exists():
    results = json.loads(SAVED.read_text())
    print(f"plotting {SAVED} ({results['profile']} run of {results['machine']['started_at']})")
else:
    # In CI (small) the reference is used only when its environment already exists.
    have_reference = installed_version(venv_python(DEFAULT_OUT / "refvenv")) is not None
    out = Path(tempfile.mkdtemp(prefix="mempill-bench-"))
    results = run(
        TINY if small() else QUICK, out, reference=have_reference or not small(), keep=False
    )
    print(f"ran the {results['profile']} benchmark into {out}")

# %% [markdown]
# ## Targets
# Reported, never asserted: the targets, judged on this run.

# %%
display(Markdown(markdown_table(TARGETS, tables.targets(results))))

# %% [markdown]
# ## Query latency against line length
# A line is one (agent, subject, predicate); a long line is a fact with a long history
# (here: successive values with one-hour validity windows).

# %%
plots.latency(results, "line")

# %% [markdown]
# ## Query latency against store size
# One-claim lines in a store holding more and more claims of the same agent.

# %%
plots.latency(results, "store")

# %% [markdown]
# ## Ingest rate against store size and line length
# One claim per transaction. The durable rate is bounded by the disk's flush; the
# `synchronous=OFF` series (a lab-only setting) shows the engine's own cost.

# %%
plots.ingest(results, "store")

# %%
plots.ingest(results, "line")

# %% [markdown]
# ## Durable ingest against the disk's limit

# %%
plots.durable(results)

# %% [markdown]
# ## Concurrent writers

# %%
plots.concurrency(results)

# %% [markdown]
# ## Every number

# %%
display(Markdown(markdown_table(SUMMARY, tables.summary(results))))
