"""The victim process of a durability trial: ingest claims and acknowledge each one.

`python -m mempill.lab.durability.writer --backend sqlite --target DIR --sync FULL --seed S`
(or `--backend postgres --target DSN --sync on`) opens the store through the real
engine (lab-only durability parameter), ingests the workload stream and, after each
ingest returns, writes `ack <claim_ref> <stream_seq>` to stdout unbuffered. A line on
stdout is therefore a promise the store made to its caller; the harness checks it.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

from mempill.clock import SteppingClock
from mempill.core.enums import Disposition
from mempill.engine import Engine
from mempill.ids import SeededIds
from mempill.lab.durability import workload


def open_engine(backend: str, target: str, sync: str) -> Engine:
    """An engine over the store under test, with the lab-only durability setting."""
    clock = SteppingClock(workload.START, workload.STEP)
    ids = SeededIds("durability-writer")
    store: Any
    if backend == "sqlite":
        from mempill.stores.sqlite import SQLiteStore

        store = SQLiteStore(directory=target, lab_synchronous=sync)
        return Engine(store, clock=clock, ids=ids)
    from mempill.openers import open_postgres

    engine: Engine = open_postgres(
        target, clock=clock, ids=ids, pool_max_size=1, lab_synchronous_commit=sync
    )
    return engine


def run(backend: str, target: str, sync: str, seed: int, limit: int | None) -> int:
    """Ingest the stream until killed (or `limit`), acknowledging each receipt."""
    engine = open_engine(backend, target, sync)
    os.write(1, b"open\n")
    for count, request in enumerate(workload.requests(seed), start=1):
        receipt = engine.ingest(request)
        if receipt.disposition is Disposition.REJECTED or receipt.claim_ref != request.claim_ref:
            print(f"writer: unexpected receipt {receipt.to_dict()}", file=sys.stderr)
            return 1
        entries = engine.query_audit(workload.AGENT, claim_ref=receipt.claim_ref, limit=1).entries
        os.write(1, f"ack {receipt.claim_ref} {entries[0].stream_seq}\n".encode("ascii"))
        if limit is not None and count >= limit:
            break
    engine.close()
    return 0


def main(argv: list[str] | None = None) -> int:
    """Command line of the victim process (the harness starts it)."""
    parser = argparse.ArgumentParser(prog="python -m mempill.lab.durability.writer")
    parser.add_argument("--backend", choices=("sqlite", "postgres"), required=True)
    parser.add_argument("--target", required=True, help="SQLite directory or PostgreSQL DSN")
    parser.add_argument("--sync", required=True)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--limit", type=int, default=None, help="stop after N claims")
    args = parser.parse_args(argv)
    return run(args.backend, args.target, args.sync, args.seed, args.limit)


if __name__ == "__main__":
    raise SystemExit(main())
