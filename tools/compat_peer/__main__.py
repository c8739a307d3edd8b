"""`python -m tools.compat_peer fetch|run [--cache DIR] [--sdist URL_OR_PATH]`.

`fetch` prints the verified sdist's path; `run` also runs the suite and prints the verdict.
Exit status: 0 as documented, 1 a problem, 3 the sdist could not be fetched (the package
index is unreachable: the caller skips).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from . import runner, sdist

UNREACHABLE = 3
CACHE = Path(__file__).resolve().parents[2] / "build" / "compat-peer"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.compat_peer", description=__doc__)
    parser.add_argument("action", choices=("fetch", "run"))
    parser.add_argument("--cache", type=Path, default=CACHE, help=f"default: {CACHE}")
    parser.add_argument("--sdist", help=f"a mirror of {sdist.FILENAME} (URL or path)")
    args = parser.parse_args(argv)
    try:
        archive = sdist.fetch(args.cache, args.sdist)
    except sdist.Unreachable as e:
        print(f"unreachable: the {sdist.FILENAME} sdist could not be fetched ({e})")
        return UNREACHABLE
    if args.action == "fetch":
        print(archive)
        return 0
    verdict = runner.run(archive)
    print(verdict.report())
    return 1 if verdict.problems() else 0


if __name__ == "__main__":
    sys.exit(main())
