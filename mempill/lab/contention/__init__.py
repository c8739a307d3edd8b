"""Lock-contention experiments: concurrent writers through the engine, every write recorded.

Configurations: `sqlite-store-lock` (directory topology, the store-wide write lock of
`open_directory`), `sqlite-agent-lock` (directory, `serialize_all_writes=False`: only the
per-agent lock and SQLite's own file lock) and `postgres` (per-agent advisory locks).
Writers run as threads sharing one engine or as processes with an engine each, on one
agent or an agent each.

* `runner` — `run` one experiment, `sweep` a grid into a `Recording`;
* `stats` — a row per run (`per_run`), medians and ranges over repeats (`summary`);
* `data` — `save` and `load` recordings with their provenance (`data/contention/`);
* `plots` — the figures; none of them mixes configurations or modes in one line;
* `cli` — `python -m mempill.lab contention [record]`.
"""

from mempill.lab.contention.cli import main
from mempill.lab.contention.data import load, save
from mempill.lab.contention.runner import (
    CONFIGS,
    LAYOUTS,
    MODES,
    Experiment,
    Recording,
    layout_of,
    run,
    sweep,
)
from mempill.lab.contention.stats import (
    CONFIGURATION,
    GROUP,
    METRICS,
    jain,
    lock_wait_percentiles,
    over_repeats,
    per_run,
    size_note,
    summary,
    table,
)

__all__ = [
    "CONFIGS", "CONFIGURATION", "GROUP", "LAYOUTS", "METRICS", "MODES", "Experiment",
    "Recording", "jain", "layout_of", "load", "lock_wait_percentiles", "main", "over_repeats",
    "per_run", "run", "save", "size_note", "summary", "sweep", "table",
]  # fmt: skip
