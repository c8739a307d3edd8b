"""The cursor a PostgreSQL session writes and reads through: few messages, few round trips.

Statements whose results nobody reads (BEGIN, the scope and the advisory lock, the
inserts, COMMIT) are held back and sent with the next statement whose result is read, all
in one simple-protocol message: BEGIN and the lock travel with a write's first read, the
inserts with COMMIT. The store's statements are `EXECUTE`s of statements each connection
prepared once (`pgdialect.PreparedDialect`); their arguments are bound as literals by
psycopg's client-side binding (`ClientCursor`, which escapes them for the connection's
encoding). One message costs one round trip and one pass through the driver, where the
same statements sent one by one (or pipelined, statement by statement) cost the driver's
work for each.

The server runs a message's statements in order and stops at the first error; the store
then rolls the transaction back, as after any failed statement.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import Any

import psycopg
from psycopg import pq

Query = tuple[str, Sequence[Any]]


class HeldCursor:
    """A `ClientCursor` that holds statements back until a result is read (`send`)."""

    def __init__(self, conn: psycopg.Connection[Any]) -> None:
        self._cursor = psycopg.ClientCursor(conn)
        self._held: list[Query] = []

    def execute(self, sql: str, params: Sequence[Any] = ()) -> HeldCursor:
        self._held.append((sql, params))
        return self

    def executemany(self, sql: str, params: Sequence[Sequence[Any]]) -> HeldCursor:
        self._held.extend((sql, row) for row in params)
        return self

    def send(self) -> None:
        """Send every statement held back, as one message; the cursor is left on the last
        statement's result."""
        if self._held:
            self._send_held()
            while self._cursor.nextset():
                pass

    def results(self, queries: Sequence[Query]) -> list[list[Any]]:
        """The rows of each of `queries`, sent (after what is held) as one message."""
        skip = len(self._held)
        self._held.extend(queries)
        self._send_held()
        found: list[list[Any]] = []
        for index in itertools.count():
            if index >= skip:
                found.append(self._rows())
            if not self._cursor.nextset():
                return found
        raise AssertionError("unreachable")

    def _send_held(self) -> None:
        held, self._held = self._held, []
        text = "; ".join(sql for sql, _ in held)
        self._cursor.execute(text, [value for _, row in held for value in row], prepare=False)

    def _rows(self) -> list[Any]:
        """The current result's rows ([] for a command); not through `description`, which
        builds a Column object per column."""
        result = self._cursor.pgresult
        if result is None or result.status != pq.ExecStatus.TUPLES_OK:
            return []
        return self._cursor.fetchall()

    def fetchone(self) -> Any:
        self.send()
        return self._cursor.fetchone()

    def fetchall(self) -> list[Any]:
        self.send()
        return self._cursor.fetchall()

    @property
    def rowcount(self) -> int:
        self.send()
        return self._cursor.rowcount
