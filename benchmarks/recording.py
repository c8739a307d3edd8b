"""Recording what an engine asks of sqlite3, for the floors that make the same calls alone.

Inside `recording(log)`, every `sqlite3.connect` makes a connection that appends a `Step`
to `log.steps` for everything asked of it, in order across connections: each `connect`
and its arguments, each statement with its parameters, its rowcount, the rows then
fetched and whether they were read to the end, failures, each `backup` and each `close`.
The engine's migrated in-memory template is set aside for the duration, so the template
made inside is recorded too (its connection is yielded, then closed). Connection and
cursor methods the engine does not use (`commit`, `executescript`, …) raise rather than go
unrecorded, so a floor built from a log never misses work silently. Used by
`replayfloor` (a whole corpus replay) and `sqlfloor` (one block of ingests).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Self

from mempill.stores.sqlite import connections

Params = tuple[Any, ...] | dict[str, Any]  # positional, or named (`:name`)


def copy_row(parameters: Any) -> Params:
    """A copy of one call's parameters (a later change by the caller cannot alter it)."""
    return dict(parameters) if isinstance(parameters, Mapping) else tuple(parameters)


@dataclass(slots=True)
class Step:
    """One thing the engine asked of sqlite3 (`kind`: connect, call, backup or close)."""

    kind: str
    conn: int  # the connection's number, in the order the capture saw them opened
    sql: str = ""
    rows: tuple[Params, ...] = ()  # one row of parameters, or executemany's rows
    many: bool = False
    via: int = 0  # 0: the connection's execute; n > 0: the n-th cursor the engine made
    fetched: list[Any] = field(default_factory=list)  # rows the engine read back
    exhausted: bool = False  # the engine read to the end (a fetch came back short)
    rowcount: int = -1  # the cursor's rowcount after the statement (-1: a query)
    error: str | None = None  # the sqlite3 error's class, when the statement failed
    target: int = 0  # backup: the destination connection's number
    settings: dict[str, Any] = field(default_factory=dict)  # connect: its arguments


class Log:
    def __init__(self) -> None:
        self.steps: list[Step] = []
        self.cursors: dict[int, int] = {}
        self.keep: list[Any] = []  # ids stay unique while the objects live


def unrecorded(what: str) -> RuntimeError:
    return RuntimeError(f"replay floor: {what} is not recorded; the floor would miss its work")


class _Cursor(sqlite3.Cursor):
    log: Log
    number: int
    step: Step | None = None
    implicit = False  # made by the connection's execute, not by the engine

    def _via(self) -> int:
        if self.implicit:
            return 0
        if id(self) not in self.log.cursors:
            self.log.keep.append(self)
            self.log.cursors[id(self)] = len(self.log.cursors) + 1
        return self.log.cursors[id(self)]

    def execute(self, sql: str, parameters: Any = (), /) -> Self:
        return self._call(sql, (copy_row(parameters),), many=False)

    def executemany(self, sql: str, seq_of_parameters: Iterable[Any], /) -> Self:
        return self._call(sql, tuple(copy_row(p) for p in seq_of_parameters), many=True)

    def _call(self, sql: str, rows: tuple[Params, ...], *, many: bool) -> Self:
        step = Step("call", self.number, sql, rows, many, via=self._via())
        self.log.steps.append(step)
        self.step = step
        try:
            if many:
                super().executemany(sql, rows)
            else:
                super().execute(sql, rows[0])
        except sqlite3.Error as e:
            step.error = type(e).__name__
            raise
        step.rowcount = self.rowcount
        return self

    def executescript(self, sql_script: str, /) -> Self:
        raise unrecorded("Cursor.executescript")

    def _got(self, rows: list[Any], *, end: bool) -> None:
        if self.step is not None:
            self.step.fetched.extend(rows)
            self.step.exhausted = self.step.exhausted or end

    def fetchone(self) -> Any:
        row = super().fetchone()
        self._got([] if row is None else [row], end=row is None)
        return row

    def fetchmany(self, size: int | None = None) -> list[Any]:
        wanted = self.arraysize if size is None else size
        rows = super().fetchmany(wanted)
        self._got(rows, end=len(rows) < wanted)
        return rows

    def fetchall(self) -> list[Any]:
        rows = super().fetchall()
        self._got(rows, end=True)
        return rows

    def __next__(self) -> Any:
        try:
            row = super().__next__()
        except StopIteration:
            self._got([], end=True)
            raise
        self._got([row], end=False)
        return row


class _Connection(sqlite3.Connection):
    log: Log
    number: int

    def cursor(self, factory: Any = None) -> Any:
        if factory is not None and not (isinstance(factory, type) and issubclass(factory, _Cursor)):
            raise unrecorded("a cursor of another class")
        made = super().cursor(factory or _Cursor)
        assert isinstance(made, _Cursor)
        made.log, made.number = self.log, self.number
        return made

    def _implicit(self) -> _Cursor:
        made = self.cursor()
        assert isinstance(made, _Cursor)
        made.implicit = True
        return made

    # Connection.execute makes its cursor in C, past `cursor`: make it here instead.
    def execute(self, sql: str, parameters: Any = (), /) -> sqlite3.Cursor:
        return self._implicit().execute(sql, parameters)

    def executemany(self, sql: str, parameters: Iterable[Any], /) -> sqlite3.Cursor:
        return self._implicit().executemany(sql, parameters)

    def backup(self, target: sqlite3.Connection, **kwargs: Any) -> None:
        if kwargs:
            raise RuntimeError(f"replay floor: backup arguments not replayed: {sorted(kwargs)}")
        self.log.steps.append(Step("backup", self.number, target=getattr(target, "number", -1)))
        super().backup(target)

    def close(self) -> None:
        self.log.steps.append(Step("close", self.number))
        super().close()

    # What the engine does not call today: refused rather than missed by the floor.
    def commit(self) -> None:
        raise unrecorded("Connection.commit")

    def rollback(self) -> None:
        raise unrecorded("Connection.rollback")

    def executescript(self, sql_script: str, /) -> sqlite3.Cursor:
        raise unrecorded("Connection.executescript")

    def create_function(self, *args: Any, **kwargs: Any) -> None:
        raise unrecorded("Connection.create_function")

    def __enter__(self) -> Self:
        raise unrecorded("a connection used as a context manager (it commits)")


@contextmanager
def recording(log: Log) -> Iterator[list[_Connection]]:
    """Every `sqlite3.connect` records into `log`; the engine's template is made afresh
    (the one it makes inside is yielded in the list, then closed)."""
    real = sqlite3.connect
    opened = 0

    def connect(*args: Any, **kwargs: Any) -> sqlite3.Connection:
        nonlocal opened
        if "factory" in kwargs or len(args) > 4:  # factory is connect's fifth parameter
            raise unrecorded("a connection with its own factory")
        opened += 1
        log.steps.append(Step("connect", opened, settings={"args": args, "kwargs": kwargs}))
        conn = real(*args, factory=_Connection, **kwargs)
        assert isinstance(conn, _Connection)
        conn.log, conn.number = log, opened
        return conn

    made: list[_Connection] = []
    with connections._template_lock:
        saved = list(connections._template)
        connections._template.clear()
    setattr(sqlite3, "connect", connect)  # noqa: B010 (restored below)
    try:
        yield made
        made.extend(c for _, c in connections._template if isinstance(c, _Connection))
    finally:
        setattr(sqlite3, "connect", real)  # noqa: B010
        with connections._template_lock:
            ours = [c for _, c in connections._template]
            connections._template[:] = saved
        for conn in ours:
            sqlite3.Connection.close(conn)  # not a step of the replay
