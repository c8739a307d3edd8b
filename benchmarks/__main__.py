"""`python -m benchmarks run [--quick | --tiny] [options]`: see `benchmarks.runner`;
`python -m benchmarks instructions [--work …]`: instructions per operation, see
`benchmarks.instructions`."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from benchmarks import instructions
from benchmarks.runner import DEFAULT_OUT, SECTIONS, print_summary, run
from benchmarks.sizes import FULL, QUICK, TINY


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    commands = top.add_subparsers(dest="command", required=True)
    go = commands.add_parser("run", help="run the benchmarks and write the report")
    size = go.add_mutually_exclusive_group()
    size.add_argument("--quick", action="store_true", help="reduced sizes, under three minutes")
    size.add_argument("--tiny", action="store_true", help="smoke-test sizes (seconds)")
    go.add_argument("--out", type=Path, default=DEFAULT_OUT, help="output directory")
    go.add_argument("--no-reference", action="store_true", help="skip the published wheel")
    go.add_argument("--no-postgres", action="store_true", help="skip PostgreSQL")
    go.add_argument(
        "--pg-dsn",
        help="PostgreSQL server (default: $MEMPILL_BENCH_PG_DSN, "
        "$MEMPILL_TEST_PG_DSN, else an embedded PostgreSQL 18)",
    )
    go.add_argument("--only", nargs="+", choices=SECTIONS, default=list(SECTIONS))
    go.add_argument("--keep", action="store_true", help="keep the stores in OUT/work")
    count = commands.add_parser(
        "instructions", help="instructions per operation under callgrind (load-independent)"
    )
    count.add_argument("--work", nargs="+", choices=instructions.WORKLOADS, default=["ingest"])
    count.add_argument("--count", type=int, help="units counted (default: per workload)")
    count.add_argument("--out", type=Path, help="also write the rows as JSON here")
    return top


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if args.command == "instructions":
        try:
            print(instructions.table(instructions.run(args.work, args.count, args.out)))
        except RuntimeError as e:
            print(f"instructions: {e}", file=sys.stderr)
            return 1
        return 0
    sizes = QUICK if args.quick else TINY if args.tiny else FULL
    results = run(
        sizes,
        args.out,
        reference=not args.no_reference,
        postgres=not args.no_postgres,
        pg_dsn=args.pg_dsn,
        only=tuple(args.only),
        keep=args.keep,
    )
    print_summary(results, args.out)
    for name, error in results["errors"].items():
        print(f"\n{name} failed:\n{error}", file=sys.stderr)
    return 1 if results["errors"] else 0


if __name__ == "__main__":
    sys.exit(main())
