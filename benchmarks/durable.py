"""(1) Durable ingest on SQLite against the disk's limit.

Per round, on the same disk and in rotating order: the raw rate of one-row
`BEGIN IMMEDIATE; INSERT; COMMIT` transactions (WAL, synchronous=FULL), this engine's
`ingest` (`open_directory`, one claim per call and transaction, synchronous=FULL), the
reference's `ingest_claim`, and the script floor (`scriptfloor`: the engine's statements
for one ingest with the least Python that makes their parameters, on a file with the
engine's schema, WAL and synchronous=FULL — what any Python engine writing these rows
one claim per transaction could reach on this disk). The ratio is taken per round, then
the median over rounds, so a change in the disk's speed during the run affects numerator
and denominator alike.
"""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path
from typing import Any, TypeVar

from benchmarks.context import Bench
from benchmarks.drivers import Driver
from benchmarks.scriptfloor import Script
from benchmarks.sqlfloor import capture
from benchmarks.streams import fresh
from benchmarks.timing import finite, median, optional, ratio

RAW_PAYLOAD = "x" * 200  # about the size of a claim row
T = TypeVar("T")


class RawSQLite:
    """One connection doing one-row transactions: the disk's limit for SQLite commits.

    `path` None is an in-memory database: the limit of the sqlite3 module and SQLite
    alone, with no disk (what the engine-only measurement compares with).
    """

    def __init__(self, path: Path | None) -> None:
        self.conn = sqlite3.connect(":memory:" if path is None else path, isolation_level=None)
        mode = self.conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
        if path is not None and str(mode).lower() != "wal":
            raise RuntimeError(f"raw SQLite: could not enable WAL on {path} (got {mode})")
        self.conn.execute("PRAGMA synchronous = FULL")
        self.conn.execute("CREATE TABLE raw (id INTEGER PRIMARY KEY, ref TEXT, payload TEXT)")
        self.count = 0

    def rate(self, transactions: int) -> float:
        """Transactions per second over `transactions` one-row commits."""
        started = time.perf_counter()
        for _ in range(transactions):
            self.count += 1
            self.conn.execute("BEGIN IMMEDIATE")
            self.conn.execute(
                "INSERT INTO raw (ref, payload) VALUES (?, ?)", (f"r{self.count}", RAW_PAYLOAD)
            )
            self.conn.execute("COMMIT")
        return transactions / (time.perf_counter() - started)

    def batch_rate(self, rows: int) -> float:
        """Rows per second of one transaction inserting `rows` rows (one `executemany`)."""
        first = self.count
        self.count += rows
        values = [(f"r{first + i + 1}", RAW_PAYLOAD) for i in range(rows)]
        started = time.perf_counter()
        self.conn.execute("BEGIN IMMEDIATE")
        self.conn.executemany("INSERT INTO raw (ref, payload) VALUES (?, ?)", values)
        self.conn.execute("COMMIT")
        return rows / (time.perf_counter() - started)

    def close(self) -> None:
        self.conn.close()


def rotated(items: list[T], number: int) -> list[T]:
    """`items` starting at position `number` (mod its length): who goes first rotates."""
    shift = number % len(items)
    return items[shift:] + items[:shift]


def per_round(rounds: list[dict[str, float]], a: str, b: str) -> float | None:
    """Median over the rounds that measured both of the per-round ratio a ÷ b."""
    found = [ratio(r[a], r[b]) for r in rounds if a in r and b in r]
    return finite(median(found)) if found else None


def run(bench: Bench) -> dict[str, Any]:
    sizes = bench.sizes
    work = bench.scratch("durable")
    raw = RawSQLite(work / "raw.db")
    drivers = bench.drivers()
    handles = {d.name: d.open(work / d.name, "durable") for d in drivers}
    script, script_error = optional(lambda: Script(capture(), work / "script.db"))
    rounds: list[dict[str, float]] = []
    sent = 0
    try:
        for number in range(sizes.durable_rounds):
            bench.progress.say(f"durable ingest: round {number + 1}/{sizes.durable_rounds}")
            claims = [fresh("durable", "d", sent + i) for i in range(sizes.durable_claims)]
            sent += len(claims)
            measured: dict[str, float] = {}
            order: list[Driver | str] = ["raw", *(["script"] if script else []), *drivers]
            for who in rotated(order, number):
                if who == "raw":
                    measured["raw"] = raw.rate(sizes.durable_claims)
                elif who == "script" and script is not None:
                    measured["script"] = script.rate(claims)
                else:
                    assert not isinstance(who, str)
                    measured[who.name] = who.ingest(handles[who.name], claims).rate
            rounds.append(measured)
    finally:
        raw.close()
        if script is not None:
            script.close()
        for d in drivers:
            d.close(handles[d.name])
    results = summarize(rounds, sizes.durable_claims)
    if script_error:
        results["script_error"] = script_error
    return results


def summarize(rounds: list[dict[str, float]], claims: int) -> dict[str, Any]:
    """Median rates and median per-round ratios (ours/raw, reference/raw, ours/reference)."""
    return {
        "claims_per_round": claims,
        "rounds": rounds,
        "rate": median_rates(rounds),
        "ours_over_raw": per_round(rounds, "ours", "raw"),
        "reference_over_raw": per_round(rounds, "reference", "raw"),
        "ours_over_reference": per_round(rounds, "ours", "reference"),
        "script_over_raw": per_round(rounds, "script", "raw"),
        "ours_over_script": per_round(rounds, "ours", "script"),
    }


def median_rates(rounds: list[dict[str, float]]) -> dict[str, float | None]:
    """Each name's median over the rounds that measured it."""
    names = sorted({k for r in rounds for k in r})
    return {n: finite(median([r[n] for r in rounds if n in r])) for n in names}
