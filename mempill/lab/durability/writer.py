"""The victim process of a durability trial: ingest claims and acknowledge each one.

`python -m mempill.lab.durability.writer --backend sqlite --target DIR --sync FULL --seed S`
(or `--backend postgres --target DSN --sync on`) opens the store through the real
engine (lab-only durability parameter), ingests the workload stream and, after each
ingest returns, writes `ack <claim_ref> <stream_seq>` to stdout unbuffered. A line on
stdout is therefore a promise the store made to its caller; the harness checks it. An
ingest that raises (a failed fsync) is reported as `error <claim_ref>` and tried again.

With `--threads N --agents M --opener directory|file` (SQLite only) it runs N threads on
one Engine (`open_directory`, or `open_default` on one file for M = 1; the lab-only
`SQLiteStore(lab_synchronous=...)` of the same layout for a mode other than FULL). Thread
i ingests `workload.requests(thread_seed(S, i))` into agent `agent_name(i, M)` and, after
each `ingest` returned, writes `ack <claim_ref> <stream_seq> <agent> <disposition>` in
one `write(2)` of under PIPE_BUF bytes (atomic: lines of threads never interleave).
"""

from __future__ import annotations

import argparse
import os
import sys
import threading
import traceback
from pathlib import Path
from typing import Any

from mempill.clock import SteppingClock
from mempill.core.enums import Disposition
from mempill.engine import Engine
from mempill.errors import MempillError
from mempill.ids import SeededIds
from mempill.lab.durability import workload


def open_engine(backend: str, target: str, sync: str, *, dirsync: bool = True) -> Engine:
    """An engine over the store under test, with the lab-only durability settings
    (`dirsync=False`: a SQLite store that never fsyncs a directory, a positive control)."""
    clock = SteppingClock(workload.START, workload.STEP)
    ids = SeededIds("durability-writer")
    store: Any
    if backend == "sqlite":
        from mempill.stores.sqlite import SQLiteStore

        store = SQLiteStore(directory=target, lab_synchronous=sync, lab_directory_sync=dirsync)
        return Engine(store, clock=clock, ids=ids)
    from mempill.openers import open_postgres

    engine: Engine = open_postgres(
        target, clock=clock, ids=ids, pool_max_size=1, lab_synchronous_commit=sync
    )
    return engine


ATTEMPTS = 3  # ingest calls per claim before the writer gives up (the fsync-error model)


def _ingest(engine: Engine, request: Any, ack_on_error: bool, tail: str = "") -> Any:
    """The receipt of `request`, trying again after a failed ingest (a failed fsync): each
    failure is reported as `error <claim_ref>` on stdout and the claim is not acknowledged
    — unless `ack_on_error` (the positive control: an engine that ignores a failed fsync),
    which acknowledges it as `ack <claim_ref> 0` and moves on. None: skip the claim."""
    for _ in range(ATTEMPTS):
        try:
            return engine.ingest(request)
        except MempillError as e:
            print(f"writer: ingest of {request.claim_ref} failed: {e}", file=sys.stderr)
            os.write(1, f"error {request.claim_ref}\n".encode("ascii"))
            if ack_on_error:
                os.write(1, f"ack {request.claim_ref} 0{tail}\n".encode("ascii"))
                return None
    raise SystemExit(f"writer: ingest of {request.claim_ref} failed {ATTEMPTS} times")


def _read_back(engine: Engine, agent: str, ref: str, ack_on_error: bool, tail: str = "") -> int:
    """The stream_seq of an ingested claim, read back; 0 when the read fails in the
    `ack-on-error` control, which then acknowledges the claim as a failed ingest (its
    store, past an fsync error it ignored, may be corrupt: "file is not a database")."""
    try:
        return engine.query_audit(agent, claim_ref=ref, limit=1).entries[0].stream_seq
    except MempillError as e:
        if not ack_on_error:
            raise
        print(f"writer: read-back of {ref} failed: {e}", file=sys.stderr)
        os.write(1, f"error {ref}\nack {ref} 0{tail}\n".encode("ascii"))
        return 0


def _skipped_parent(receipt: Any, ack_on_error: bool) -> bool:
    """In the `ack-on-error` control a claim whose ingest failed is skipped, so a later
    claim that names it as its parent is rejected: expected there, and not acknowledged."""
    return ack_on_error and receipt.disposition is Disposition.REJECTED


def run(
    backend: str,
    target: str,
    sync: str,
    seed: int,
    limit: int | None,
    *,
    dirsync: bool = True,
    ack_on_error: bool = False,
) -> int:
    """Ingest the stream until killed (or `limit`), acknowledging each receipt."""
    engine = open_engine(backend, target, sync, dirsync=dirsync)
    os.write(1, b"open\n")
    for count, request in enumerate(workload.requests(seed), start=1):
        receipt = _ingest(engine, request, ack_on_error)
        if receipt is None or _skipped_parent(receipt, ack_on_error):
            continue
        if receipt.disposition is Disposition.REJECTED or receipt.claim_ref != request.claim_ref:
            print(f"writer: unexpected receipt {receipt.to_dict()}", file=sys.stderr)
            return 1
        seq = _read_back(engine, workload.AGENT, receipt.claim_ref, ack_on_error)
        if seq:
            os.write(1, f"ack {receipt.claim_ref} {seq}\n".encode("ascii"))
        if limit is not None and count >= limit:
            break
    engine.close()
    return 0


def open_threaded(target: str, opener: str, sync: str, *, dirsync: bool = True) -> Engine:
    """One engine for every thread: the public opener of the layout as shipped (FULL),
    the lab-only store of the same layout for another synchronous mode (or, `dirsync`
    False, for a store that never fsyncs a directory)."""
    from mempill.openers import open_default, open_directory
    from mempill.stores.sqlite import SQLiteStore

    clock = SteppingClock(workload.START, workload.STEP)
    ids = SeededIds("durability-writer")
    # write_stats rows (one per transaction) let the checker count commits
    if sync.upper() == "FULL" and dirsync:
        if opener == "file":
            return open_default(Path(target), clock=clock, ids=ids, record_write_stats=True)
        return open_directory(target, clock=clock, ids=ids, record_write_stats=True)
    store = SQLiteStore(
        path=target if opener == "file" else None,
        directory=None if opener == "file" else target,
        lab_synchronous=sync,
        lab_directory_sync=dirsync,
        record_stats=True,
    )
    return Engine(store, clock=clock, ids=ids)


def _thread(
    engine: Engine, seed: int, index: int, agents: int, limit: int | None, ack_on_error: bool
) -> None:
    """One writer thread: its own stream into its agent, each receipt acknowledged only
    after `ingest` returned it (and its stream_seq was read back); a failed ingest is
    reported and tried again (`_ingest`)."""
    agent = workload.agent_name(index, agents)
    for count, request in enumerate(
        workload.requests(workload.thread_seed(seed, index), agent), start=1
    ):
        receipt = _ingest(engine, request, ack_on_error, f" {agent} failed")
        if receipt is None or _skipped_parent(receipt, ack_on_error):
            continue
        if receipt.disposition is Disposition.REJECTED or receipt.claim_ref != request.claim_ref:
            raise RuntimeError(f"unexpected receipt {receipt.to_dict()}")
        seq = _read_back(engine, agent, receipt.claim_ref, ack_on_error, f" {agent} failed")
        if seq:
            line = f"ack {receipt.claim_ref} {seq} {agent} {receipt.disposition}\n"
            os.write(1, line.encode("ascii"))
        if limit is not None and count >= limit:
            return


def run_threads(
    target: str,
    opener: str,
    sync: str,
    seed: int,
    threads: int,
    agents: int,
    limit: int | None,
    *,
    dirsync: bool = True,
    ack_on_error: bool = False,
) -> int:
    """N threads ingesting into M agents of one engine until killed (or `limit` each)."""
    engine = open_threaded(target, opener, sync, dirsync=dirsync)
    start = threading.Barrier(threads)
    failed: list[int] = []

    def body(index: int) -> None:
        try:
            start.wait()
            _thread(engine, seed, index, agents, limit, ack_on_error)
        except BaseException:
            failed.append(index)
            print(f"writer thread {index}:\n{traceback.format_exc()}", file=sys.stderr)

    workers = [threading.Thread(target=body, args=(i,), name=f"writer-{i}") for i in range(threads)]
    os.write(1, b"open\n")
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    engine.close()
    return 1 if failed else 0


def main(argv: list[str] | None = None) -> int:
    """Command line of the victim process (the harness starts it)."""
    parser = argparse.ArgumentParser(prog="python -m mempill.lab.durability.writer")
    parser.add_argument("--backend", choices=("sqlite", "postgres"), required=True)
    parser.add_argument("--target", required=True, help="SQLite directory or PostgreSQL DSN")
    parser.add_argument("--sync", required=True)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--limit", type=int, default=None, help="stop after N claims (each)")
    parser.add_argument("--threads", type=int, default=1, help="N > 1: the threaded writer")
    parser.add_argument("--agents", type=int, default=1, help="agents the threads write into")
    parser.add_argument("--opener", choices=("directory", "file"), default="directory")
    parser.add_argument(
        "--no-dirsync", action="store_true", help="SQLite: never fsync a directory (a control)"
    )
    parser.add_argument(
        "--ack-on-error",
        action="store_true",
        help="acknowledge a claim whose ingest failed (a control: ignores a failed fsync)",
    )
    args = parser.parse_args(argv)
    if args.threads > 1:
        if args.backend != "sqlite" or not 1 <= args.agents <= args.threads:
            parser.error("--threads needs --backend sqlite and 1 <= --agents <= --threads")
        if args.opener == "file" and args.agents != 1:
            parser.error("--opener file (open_default) holds one agent: use --agents 1")
        return run_threads(
            args.target, args.opener, args.sync, args.seed, args.threads, args.agents, args.limit,
            dirsync=not args.no_dirsync, ack_on_error=args.ack_on_error,
        )  # fmt: skip
    return run(
        args.backend, args.target, args.sync, args.seed, args.limit,
        dirsync=not args.no_dirsync, ack_on_error=args.ack_on_error,
    )  # fmt: skip


if __name__ == "__main__":
    raise SystemExit(main())
