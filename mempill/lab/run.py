"""`python -m mempill.lab run` (and `nox -s lab`): the conformance lab on the embedded default.

Replays the whole scenario corpus on SQLite in memory, SQLite files, and an embedded
PostgreSQL 18 when one can start (it says so when it cannot, and carries on with SQLite),
then prints the summary table: per backend, how many streams were identical and equal to
their recorded expectations, and the mean time per operation.
"""

from __future__ import annotations

import argparse
import logging
from collections.abc import Sequence
from pathlib import Path

from mempill.lab.backends import parse_backends

EMBEDDED_DEFAULT = ("sqlite-mem", "sqlite-file", "pg-embedded")
OPTIONAL = ("pg-embedded",)  # the lab still runs (on SQLite) when it cannot start


def scenarios_dir() -> Path:
    """`data/scenarios` of the working directory, else of the source checkout."""
    here = Path("data/scenarios")
    if here.is_dir():
        return here
    import conformance

    return Path(conformance.__file__).resolve().parent.parent / "data" / "scenarios"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m mempill.lab run", description=__doc__)
    parser.add_argument("targets", nargs="*", type=Path, help="stream files or directories")
    parser.add_argument(
        "--backends",
        type=parse_backends,
        default=EMBEDDED_DEFAULT,
        help="comma-separated: sqlite-mem, sqlite-file, pg-system, pg-embedded, pg-rls "
        "(PostgreSQL as a runtime role: row-level security applies)",
    )
    parser.add_argument("--verbose", action="store_true", help="one line per stream")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the lab; 0 when every stream is identical on every backend that could start."""
    args = _parser().parse_args(argv)
    logging.getLogger("mempill").setLevel(logging.ERROR)  # scenarios fail the oracle on purpose
    from conformance.corpus import run_corpus, summary_table
    from conformance.report import timing_table

    targets = args.targets or [scenarios_dir()]
    result = run_corpus(targets, args.backends, optional=OPTIONAL, verbose=args.verbose)
    skipped = [name for name in args.backends if name not in result.backends]
    for name in skipped:
        print(f"note: {name} could not start; the lab ran without it")
    print()
    print(summary_table(result))
    print()
    print(timing_table(result))
    return 0 if result.ok else 1
