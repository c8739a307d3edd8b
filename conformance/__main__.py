"""`python -m conformance {replay,record,coverage,report,fuzz}` — the cross-backend harness."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from conformance.corpus import run_corpus, summary_table
from mempill.lab.backends import DEFAULT_BACKENDS, parse_backends

SCENARIOS = "data/scenarios"
README = Path(__file__).with_name("README.md")


def _backends(text: str) -> tuple[str, ...]:
    try:
        return parse_backends(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from e


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m conformance", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    replay = sub.add_parser("replay", help="replay streams on backends and compare them")
    replay.add_argument("targets", nargs="*", default=[SCENARIOS])
    replay.add_argument("--backends", type=_backends, default=DEFAULT_BACKENDS)
    replay.add_argument("--allow-unrecorded", action="store_true", help="no expectations needed")
    replay.add_argument("--quiet", action="store_true", help="print only differing streams")
    record = sub.add_parser("record", help="write <name>.expected.jsonl from one backend")
    record.add_argument("targets", nargs="*", default=[SCENARIOS])
    record.add_argument("--backend", default="sqlite-mem")
    record.add_argument("--force", action="store_true", help="overwrite existing expectations")
    cover = sub.add_parser("coverage", help="which reference rules the streams exercise")
    cover.add_argument("targets", nargs="*", default=[SCENARIOS])
    cover.add_argument("--backend", default="sqlite-mem")
    cover.add_argument("--write-readme", action="store_true", help=f"update {README}")
    report = sub.add_parser("report", help="write build/conformance/{index.html,summary.json}")
    report.add_argument("targets", nargs="*", default=[SCENARIOS])
    report.add_argument("--backends", type=_backends, default=DEFAULT_BACKENDS)
    report.add_argument("--out", type=Path, default=Path("build/conformance"))
    fuzz = sub.add_parser("fuzz", help="the hypothesis state machine across backends")
    fuzz.add_argument("--backends", type=_backends, default=("sqlite-mem", "sqlite-file"))
    fuzz.add_argument("--profile", default=None, help="ci, dev or deep (else HYPOTHESIS_PROFILE)")
    fuzz.add_argument("--out", type=Path, default=Path("build/conformance"))
    fuzz.add_argument("--examples", type=int, default=None, help="override the profile's count")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    # scenarios make the oracle fail on purpose; the engine's warning for it is noise here
    logging.getLogger("mempill").setLevel(logging.ERROR)
    if args.command == "replay":
        result = run_corpus(
            args.targets,
            args.backends,
            require_expected=not args.allow_unrecorded,
            verbose=not args.quiet,
        )
        corpus = [str(Path(t)) for t in args.targets] == [SCENARIOS]
        print(summary_table(result, with_coverage=corpus))
        return 0 if result.ok else 1
    if args.command == "record":
        from conformance.record import record

        return record(args.targets, args.backend, force=args.force)
    if args.command == "coverage":
        from conformance.record import show_coverage

        return show_coverage(args.targets, args.backend, README if args.write_readme else None)
    if args.command == "report":
        from conformance.report import report

        return report(args.targets, args.backends, args.out)
    from conformance.fuzz import fuzz as run_fuzz

    return run_fuzz(args.backends, args.profile, args.out, args.examples)


if __name__ == "__main__":
    sys.exit(main())
