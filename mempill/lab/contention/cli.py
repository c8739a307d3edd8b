"""`python -m mempill.lab contention [record] [options]`.

Without `record`: run a sweep (threads, 50 claims per writer, one run per cell by default)
and print its summary. With `record`: run the recorded grid (both modes, every writer
count and layout, 5 runs per cell in a seeded random order) and save the tables and their
provenance (see `mempill.lab.contention.data`) under `--out`, by default
`build/contention/`; the tracked data set is `data/contention/`. Progress goes to stderr.
"""

from __future__ import annotations

import argparse
import random
import shlex
import sys
from collections.abc import Sequence
from pathlib import Path

from mempill.lab.contention import data, stats
from mempill.lab.contention.runner import CONFIGS, MODES, sweep

#: A recording's size: 1..16 writers x 3 configurations x 2 modes x 2 layouts x 5 repeats of
#: 100 claims per writer take about 20 minutes on a loaded 2-core machine.
RECORD_CLAIMS = stats.VERDICT_CLAIMS
RECORD_REPEATS = stats.VERDICT_RUNS
DEFAULT_OUT = "build/contention"
LAYOUT_ALIASES = {"one": "one agent", "each": "agent per writer"}


def _numbers(text: str) -> list[int]:
    return [int(part) for part in text.split(",") if part.strip()]


def _parser(record: bool) -> argparse.ArgumentParser:
    prog = "python -m mempill.lab contention" + (" record" if record else "")
    about = (
        "Run the contention grid and save every transaction, every writer and the provenance."
        if record
        else "Concurrent writers through the engine; prints lock-wait percentiles, throughput "
        "and fairness per configuration (medians over repeats, with their range). "
        "`contention record --help`: save a recording."
    )
    parser = argparse.ArgumentParser(prog=prog, description=about)
    parser.add_argument(
        "--backends", default=",".join(CONFIGS), help=f"comma-separated: {', '.join(CONFIGS)}"
    )
    parser.add_argument(
        "--writers", type=_numbers, default=[1, 2, 4, 8, 16], help="writer counts, e.g. 1,4,16"
    )
    parser.add_argument(
        "--claims", type=int, default=RECORD_CLAIMS if record else 50, help="claims per writer"
    )
    parser.add_argument(
        "--repeats", type=int, default=RECORD_REPEATS if record else 1, help="runs per cell"
    )
    parser.add_argument("--mode", choices=[*MODES, "both"], default="both" if record else "threads")
    parser.add_argument(
        "--layouts", default="one,each", help="one (all writers on one agent), each (an agent each)"
    )
    parser.add_argument("--dsn", help="PostgreSQL conninfo (default: MEMPILL_TEST_PG_DSN/embedded)")
    parser.add_argument(
        "--seed", type=int, help="shuffles the order of the runs (default: a random seed, saved)"
    )
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    if record:
        parser.add_argument("--out", default=DEFAULT_OUT, help=f"directory (default {DEFAULT_OUT})")
        parser.add_argument("--append", action="store_true", help="add to a recording in --out")
        parser.add_argument(
            "--note", default="", help="what else ran on the machine (saved with the provenance)"
        )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run a sweep and print its summary; `record` first: save it too."""
    import pandas as pd

    args_in = list(sys.argv[1:] if argv is None else argv)
    record = args_in[:1] == ["record"]
    args = _parser(record).parse_args(args_in[1:] if record else args_in)
    backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    for backend in backends:
        if backend not in CONFIGS:
            print(f"unknown backend {backend!r}; choose from {', '.join(CONFIGS)}", file=sys.stderr)
            return 2
    modes = list(MODES) if args.mode == "both" else [args.mode]
    layouts = [LAYOUT_ALIASES.get(x.strip(), x.strip()) for x in args.layouts.split(",") if x]
    seed = random.randrange(2**31) if args.seed is None else args.seed
    grid = {"backends": backends, "modes": modes, "layouts": layouts, "writers": args.writers,
            "repeats": args.repeats, "claims_per_writer": args.claims}  # fmt: skip
    described = None
    if record:
        try:
            data.check_target(Path(args.out), args.append)
        except FileExistsError as e:
            print(f"error: {e}", file=sys.stderr)
            return 2
        command = shlex.join(["python", "-m", "mempill.lab", "contention", *args_in])
        described = data.provenance(command, seed, grid, args.note or "not given", args.dsn)
    recording = sweep(
        backends, args.writers, args.claims, modes=modes, layouts=layouts,
        repeats=args.repeats, dsn=args.dsn, seed=seed, progress=not args.quiet,
    )  # fmt: skip
    if described is not None:
        recording.runs = recording.runs.assign(recording=described["recording"])
        recording.provenance = [data.finish(described, recording)]
        out = data.save(recording, args.out, append=args.append)
        print(f"saved {len(recording.runs)} runs to {out}", file=sys.stderr)
    with pd.option_context("display.width", 250, "display.max_columns", 30):
        print(stats.table(stats.summary(recording)).to_string(index=False))
    note = stats.size_note(stats.per_run(recording))
    if note:
        print(f"note: {note}")
    return 0
