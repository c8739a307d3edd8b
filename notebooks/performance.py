# ---
# jupyter:
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Performance
#
# How fast is mempill, and does it stay fast as a store grows? `python -m benchmarks run`
# (or `nox -s bench`) measures this engine against the disk's own limit and against the
# **reference**: the published `mempill` 0.4.0 wheel, installed in a virtual environment of
# its own (`build/bench/refvenv`, never the project's) and fed the same claim streams in the
# same run. It saves `build/bench/results.json`; this notebook plots those results, or
# measures first when there are none.
#
# Every number is a median over repeated rounds measured in one run, so the ratios compare
# like with like. "First read" is the first query of a line after the engine was opened (the
# engine keeps an exact per-line cache); "repeated" queries it again.
#
# **Sizes.** The targets are set for the full sizes (`nox -s bench`: stores of up to
# 100,000 claims). A notebook run is smaller: `SIZE = "full"` runs the quick benchmark (about
# three minutes, stores of up to 5,000 claims: indicative verdicts), `SIZE = "small"` a tiny
# one (seconds, two points per curve: the shape of each curve and no verdict at all).

# %%
# %matplotlib inline
import json
import sys

import pandas as pd
from IPython.display import Markdown, display

from mempill.lab import notebooks

notebooks.import_path_without_notebooks()  # else notebooks/conformance.py shadows the package
from benchmarks import plots, tables
from benchmarks.reference import VERSION, installed_version, venv_python
from benchmarks.report import SUMMARY, TARGETS, markdown_table
from benchmarks.runner import DEFAULT_OUT, run
from benchmarks.sizes import QUICK, TINY
from benchmarks.timing import Progress

notebooks.tidy_tables()

# %% tags=["parameters"]
SIZE = notebooks.default_size()  # "small" (a tiny run, seconds; CI) or "full" (the quick one)
RESULTS = "saved"  # "saved": plot build/bench/results.json when it exists; "run": measure now
REFERENCE = True  # measure the 0.4.0 wheel too (a small run only when its venv already exists)
BACKENDS = notebooks.default_backends("sqlite-file", "postgres")  # without "postgres": SQLite only
PG_DSN = notebooks.default_dsn()  # a libpq conninfo; None: the embedded PostgreSQL 18

# %%
notebooks.use_size(SIZE)
notebooks.use_dsn(PG_DSN)
SAVED = DEFAULT_OUT / "results.json"
SHARED_VENV = DEFAULT_OUT / "refvenv"  # where `nox -s bench` installs the reference wheel
have_venv = installed_version(venv_python(SHARED_VENV)) == VERSION
postgres = "postgres" in BACKENDS
progress = Progress(sys.stdout)  # progress lines in the cell's output

if RESULTS == "saved" and SAVED.exists():
    results = json.loads(SAVED.read_text())
    why_no_reference = "it was not measured in the saved run: {}"
elif notebooks.small():
    # A tiny run of its own (never into build/bench, whose results it would replace); it
    # borrows the reference's venv when `nox -s bench` made one, and never installs it.
    out = notebooks.output_dir() / "bench"
    out.mkdir(exist_ok=True)
    borrowed = out / "refvenv"
    if have_venv and not borrowed.exists():
        borrowed.symlink_to(SHARED_VENV, target_is_directory=True)
    reference = REFERENCE and have_venv
    results = run(TINY, out, reference=reference, postgres=postgres, progress=progress)
    why_no_reference = (
        f'a small run never installs it; `nox -s bench` (or SIZE = "full") creates its venv, '
        f"{SHARED_VENV.relative_to(notebooks.ROOT)}, after which small runs measure it too"
    )
else:
    results = run(QUICK, DEFAULT_OUT, reference=REFERENCE, postgres=postgres, progress=progress)
    why_no_reference = "it could not be set up: {}"
if not REFERENCE:
    why_no_reference = "REFERENCE is False"

PROFILE = results["profile"]
machine = results["machine"]
print(f"{PROFILE} run of {machine['started_at']}, {results['seconds']:.0f} s")

# %% [markdown]
# ## What can be judged at this size

# %%
CAVEATS = {
    "full": "",
    "quick": "quick sizes: indicative, the targets are set for the full sizes",
    "tiny": "tiny sizes: the shape of each curve only, no verdict",
}
CAVEAT = CAVEATS.get(PROFILE, f"{PROFILE} sizes: no verdict")


def verdict(met: bool | None) -> str:
    """met / NOT MET at the full sizes; hedged at the quick ones; none at the tiny ones."""
    if met is None:
        return "not measured"
    if PROFILE == "full":
        return "met" if met else "NOT MET"
    if PROFILE == "quick":
        return "indicative: met" if met else "indicative: not met"
    return "no verdict (too small)"


unavailable = results.get("unavailable") or {}
if results.get("reference"):
    reference_note = (
        f"**Reference column**: the published mempill {results['reference']} wheel, measured in "
        "the same run from a virtual environment of its own; `—` where it has no counterpart."
    )
else:
    why = why_no_reference.format(unavailable.get("reference", "no reason recorded"))
    reference_note = (
        f"**Reference column empty.** The reference, the published mempill {VERSION} wheel in "
        f"a virtual environment of its own, was not measured: {why}."
    )
lines = [f"**{PROFILE} run.** " + (CAVEAT or "The issue's sizes: verdicts stand."), reference_note]
if "PostgreSQL" in unavailable:
    lines.append(f"PostgreSQL not measured: {unavailable['PostgreSQL']}.")
display(Markdown("\n\n".join(lines)))


def caveated(figure):
    """The figure with the size's caveat under each title (nothing at the full sizes)."""
    if CAVEAT:
        for ax in figure.axes:
            ax.set_title(f"{ax.get_title()}\n({CAVEAT})", fontsize=10)
        figure.tight_layout()
    return figure


# %% [markdown]
# ## Targets
# Reported, never asserted: the targets, judged on this run only at the full sizes.
# Beside each, the same measure taken by its floor where the run has one (the engine's own
# statements with no engine; "out of reach": the floor itself misses the bound).

# %%
judged = zip(tables.targets(results), results["targets"], strict=True)
targets = pd.DataFrame(
    [[*row[:3], verdict(t["met"]), row[4]] for row, t in judged], columns=list(TARGETS)
)
notebooks.save_frame("targets", targets)
display(Markdown(markdown_table(TARGETS, targets.to_numpy().tolist())))


# %% [markdown]
# ## Query latency against line length
# A line is one (agent, subject, predicate); a long line is a fact with a long history
# (here: successive values with one-hour validity windows).


# %%
def milliseconds(point: dict, kind: str) -> float | None:
    seconds = (point.get(kind) or {}).get("median_s")
    return None if seconds is None else 1000 * seconds


def flat_frame(axis: str) -> pd.DataFrame:
    """The points behind the flat-cost figures: one row per (engine, size)."""
    flat = (results.get("flat") or {}).get(axis) or {}
    xs = flat.get("sizes" if axis == "store" else "lengths") or []
    rows = []
    for engine, points in (flat.get("engines") or {}).items():
        for x, found in zip(xs, points, strict=False):
            point = found or {}
            rows.append(
                {
                    "stored claims" if axis == "store" else "line length": x,
                    "engine": engine,
                    "first read ms": milliseconds(point, "query_cold"),
                    "repeated ms": milliseconds(point, "query_warm"),
                    "ingest claims/s": point.get("ingest_rate"),
                }
            )
    return pd.DataFrame(rows)


notebooks.save_frame("line", flat_frame("line"))
notebooks.save_frame("store", flat_frame("store"))
caveated(plots.latency(results, "line"))

# %% [markdown]
# ## Query latency against store size
# One-claim lines in a store holding more and more claims of the same agent.

# %%
caveated(plots.latency(results, "store"))

# %% [markdown]
# ## Ingest rate against store size and line length
# One claim per transaction. The durable rate is bounded by the disk's flush; the
# `synchronous=OFF` series (a lab-only setting) shows the engine's own cost.

# %%
caveated(plots.ingest(results, "store"))

# %%
caveated(plots.ingest(results, "line"))

# %% [markdown]
# ## Durable ingest against the disk's limit

# %%
rates = (results.get("durable") or {}).get("rate") or {}
notebooks.save_frame(
    "durable", pd.DataFrame({"series": list(rates), "per second": list(rates.values())})
)
caveated(plots.durable(results))

# %% [markdown]
# ## Concurrent writers

# %%
configs = (results.get("concurrency") or {}).get("configs") or {}
concurrency = pd.DataFrame(
    [{"config": name, **point} for name, points in configs.items() for point in points]
)
notebooks.save_frame("concurrency", concurrency.drop(columns="round_rates", errors="ignore"))
caveated(plots.concurrency(results))

# %% [markdown]
# ## Every number

# %%
summary = pd.DataFrame(tables.summary(results), columns=list(SUMMARY))
notebooks.save_frame("summary", summary)
display(Markdown(reference_note))
display(Markdown(markdown_table(SUMMARY, summary.to_numpy().tolist())))
