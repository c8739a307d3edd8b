"""Counting PostgreSQL round trips from libpq's own protocol trace.

A round trip is the client waiting for the server: in the trace of one connection it is
each run of frontend (`F`) messages followed by backend (`B`) messages. BEGIN, a lock, a
SELECT and COMMIT sent one after the other are four round trips; the same statements
pipelined, or sent in one simple-protocol message, are one. The count needs no proxy and
no server setting: libpq writes every message it sends and receives.

    with traced_store(engine) as trace:
        engine.ingest(...)
    trace.round_trips  # e.g. 2

`traced_store` needs a store whose pool holds exactly one connection
(`open_postgres(..., pool_min_size=1, pool_max_size=1)`), so every statement of the
engine goes through the traced connection.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from psycopg import pq


@dataclass
class Trace:
    """The protocol messages of a traced stretch of one connection."""

    lines: list[str] = field(default_factory=list)

    @property
    def messages(self) -> list[tuple[str, str]]:
        """(direction, message type) of every message: ("F", "Parse"), ("B", "DataRow")…"""
        found = []
        for line in self.lines:
            parts = line.split("\t")
            if len(parts) >= 3 and parts[0] in ("F", "B"):
                found.append((parts[0], parts[2].split(" ", 1)[0].strip()))
        return found

    @property
    def round_trips(self) -> int:
        return round_trips(self.messages)

    def statements(self) -> int:
        """Statements sent: Execute (extended protocol) plus the `;`-separated parts of each
        simple Query (a rough count: a `;` inside a literal counts too)."""
        count = 0
        for line in self.lines:
            parts = line.split("\t")
            if len(parts) >= 3 and parts[0] == "F":
                kind = parts[2].split(" ", 1)[0].strip()
                if kind == "Execute":
                    count += 1
                elif kind == "Query":
                    count += "\t".join(parts[3:]).count(";") + 1
        return count


def round_trips(messages: list[tuple[str, str]]) -> int:
    """Runs of frontend messages that the server answered (F…F then B)."""
    trips = 0
    previous = ""
    for direction, _ in messages:
        if direction == "B" and previous == "F":
            trips += 1
        previous = direction
    return trips


@contextmanager
def traced(conn: Any) -> Iterator[Trace]:
    """Trace one psycopg connection for the duration of the block."""
    trace = Trace()
    fd, path = tempfile.mkstemp(prefix="mempill-pgtrace-", suffix=".txt")
    try:
        conn.pgconn.trace(fd)
        conn.pgconn.set_trace_flags(pq.Trace.SUPPRESS_TIMESTAMPS | pq.Trace.REGRESS_MODE)
        try:
            yield trace
        finally:
            conn.pgconn.untrace()
        with open(path, encoding="utf-8", errors="replace") as f:
            trace.lines = f.read().splitlines()
    finally:
        os.close(fd)
        os.unlink(path)


@contextmanager
def traced_store(engine: Any) -> Iterator[Trace]:
    """Trace the one pooled connection of a PostgreSQL engine's store."""
    store = engine.runner.store
    pool = store.pool
    if pool.max_size != 1:
        raise ValueError("traced_store needs a pool of one connection (pool_max_size=1)")
    with pool.connection() as conn:
        pass  # the pool's only connection: traced while the engine uses it
    with traced(conn) as trace:
        yield trace
