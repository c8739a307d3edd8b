"""The replay floor: what the sqlite3 calls of one conformance-corpus replay cost on their own.

`capture` replays the corpus once on `sqlite-mem`, exactly as the measured rounds do
(`replaycost.replay_round`), with every sqlite3 connection the engine opens meanwhile
recording what it asks of sqlite3, in order, across connections: each `connect` and its
arguments, each statement with its parameters, the rows the engine then fetched, whether
the statement failed, each `backup` (a new in-memory store is a copy of a migrated
template) and each `close`. The template itself is made afresh inside the capture (the
engine's cached one is set aside for the duration), so its `backup` calls are seen; it is
made once per process, so the floor makes it before the clock starts.

`Floor.run` then makes exactly those calls again on fresh in-memory databases — the same
statements with the same parameters, fetching as many rows as the engine fetched (all of
them where the engine read to the end) — and times them: the sqlite3 work of the replay
with no engine and no harness, only a loop over the steps between the calls (about 3 µs
per operation). Every conformance stream starts on an empty store and its clock and ids
are injected, so the same calls meet the same data: `Floor.check` (run once, untimed,
before any timed run) compares every statement's failure, rowcount and fetched rows with
the capture — and, where the engine read to the end, that there are no more rows — and
refuses a floor that does different work. The connection and cursor methods the engine
does not use (`commit`, `executescript`, …) refuse to run while recording, so a future
call the floor would miss fails the capture instead.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Self

from benchmarks.sqlfloor import Params, copy_row
from mempill.stores.sqlite import connections


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


class _Log:
    def __init__(self) -> None:
        self.steps: list[Step] = []
        self.cursors: dict[int, int] = {}
        self.keep: list[Any] = []  # ids stay unique while the objects live


def _unrecorded(what: str) -> RuntimeError:
    return RuntimeError(f"replay floor: {what} is not recorded; the floor would miss its work")


class _Cursor(sqlite3.Cursor):
    log: _Log
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
        raise _unrecorded("Cursor.executescript")

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
    log: _Log
    number: int

    def cursor(self, factory: Any = None) -> Any:
        if factory is not None and not (isinstance(factory, type) and issubclass(factory, _Cursor)):
            raise _unrecorded("a cursor of another class")
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
        raise _unrecorded("Connection.commit")

    def rollback(self) -> None:
        raise _unrecorded("Connection.rollback")

    def executescript(self, sql_script: str, /) -> sqlite3.Cursor:
        raise _unrecorded("Connection.executescript")

    def create_function(self, *args: Any, **kwargs: Any) -> None:
        raise _unrecorded("Connection.create_function")

    def __enter__(self) -> Self:
        raise _unrecorded("a connection used as a context manager (it commits)")


@contextmanager
def _recording(log: _Log) -> Iterator[list[_Connection]]:
    """Every `sqlite3.connect` records into `log`; the engine's template is made afresh
    (the one it makes inside is yielded in the list, then closed)."""
    real = sqlite3.connect
    opened = 0

    def connect(*args: Any, **kwargs: Any) -> sqlite3.Connection:
        nonlocal opened
        if "factory" in kwargs or len(args) > 4:  # factory is connect's fifth parameter
            raise _unrecorded("a connection with its own factory")
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


@dataclass
class Capture:
    """The steps of one corpus replay; `setup` holds the template's connection number (the
    engine made it once; the floor makes it before the clock starts)."""

    steps: list[Step]
    setup: frozenset[int]
    operations: int

    @property
    def statements(self) -> int:
        return sum(len(s.rows) for s in self.steps if s.kind == "call")

    @property
    def stores(self) -> int:
        """Connections opened outside the template: one per store the replay made."""
        return sum(1 for s in self.steps if s.kind == "connect" and s.conn not in self.setup)


def capture(replay: Callable[[], int]) -> Capture:
    """Record the sqlite3 calls of `replay()` (one corpus replay on sqlite-mem, returning
    how many operations it ran)."""
    log = _Log()
    with _recording(log) as template:
        operations = replay()
    if not any(s.kind == "call" for s in log.steps):
        raise RuntimeError(
            "replay floor: the replay made no sqlite3 call through a recorded connection"
        )
    return Capture(log.steps, frozenset(c.number for c in template), operations)


class Floor:
    """The captured steps replayed on fresh connections: `run` times them, `check` verifies."""

    def __init__(self, captured: Capture) -> None:
        self.captured = captured
        setup = [s for s in captured.steps if s.conn in captured.setup and s.kind != "backup"]
        self.timed = [
            s for s in captured.steps if s.conn not in captured.setup or s.kind == "backup"
        ]
        self.templates: dict[int, sqlite3.Connection] = {}
        for step in setup:  # the template, untimed, as the engine made it
            self._do(step, self.templates, {}, check=True)

    def run(self) -> dict[str, float]:
        """Seconds to make every timed step's sqlite3 call once more (`seconds`), and the
        part of them spent opening, copying and closing the stores (`stores_seconds`)."""
        made: dict[int, sqlite3.Connection] = dict(self.templates)
        cursors: dict[tuple[int, int], sqlite3.Cursor] = {}
        do, clock = self._do, time.perf_counter
        stores = 0.0
        started = clock()
        for step in self.timed:
            if step.kind == "call":
                do(step, made, cursors, check=False)
            else:
                at = clock()
                do(step, made, cursors, check=False)
                stores += clock() - at
        seconds = clock() - started
        self._close(made)
        return {"seconds": seconds, "stores_seconds": stores}

    def check(self) -> None:
        """Replay once, untimed, comparing with the capture every statement's failure, its
        rowcount, the rows the engine fetched, and — where the engine read to the end — that
        there are no more."""
        made: dict[int, sqlite3.Connection] = dict(self.templates)
        for step in self.timed:
            self._do(step, made, {}, check=True)
        self._close(made)

    def close(self) -> None:
        for conn in self.templates.values():
            conn.close()
        self.templates.clear()

    def _close(self, made: dict[int, sqlite3.Connection]) -> None:
        for number, conn in made.items():
            if number not in self.templates:
                conn.close()

    @staticmethod
    def _do(
        step: Step,
        made: dict[int, sqlite3.Connection],
        cursors: dict[tuple[int, int], sqlite3.Cursor],
        *,
        check: bool,
    ) -> None:
        kind = step.kind
        if kind == "call":
            conn = made[step.conn]
            target: sqlite3.Connection | sqlite3.Cursor = conn
            if step.via:
                key = (step.conn, step.via)
                if key not in cursors:
                    cursors[key] = conn.cursor()
                target = cursors[key]
            rowcount = -1
            try:
                if step.many:
                    cursor = target.executemany(step.sql, step.rows)
                else:
                    cursor = target.execute(step.sql, step.rows[0])
                rowcount = cursor.rowcount
                if step.exhausted:  # the engine stepped to the end: so does the floor
                    rows = cursor.fetchall()
                else:
                    rows = cursor.fetchmany(len(step.fetched)) if step.fetched else []
                failed = None
            except sqlite3.Error as e:
                rows, failed = [], type(e).__name__
            if check and (failed, rowcount, rows) != (step.error, step.rowcount, step.fetched):
                raise RuntimeError(
                    f"replay floor differs from the engine's run at {' '.join(step.sql.split())!r}:"
                    f" error {failed} (engine: {step.error}), rowcount {rowcount} (engine: "
                    f"{step.rowcount}), {len(rows)} rows (engine: {len(step.fetched)}, equal: "
                    f"{rows == step.fetched})"
                )
        elif kind == "connect":
            made[step.conn] = sqlite3.connect(*step.settings["args"], **step.settings["kwargs"])
        elif kind == "backup":
            made[step.conn].backup(made[step.target])
        elif kind == "close":
            made.pop(step.conn).close()
