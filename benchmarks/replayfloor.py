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
statements with the same parameters, fetching as many rows as the engine fetched — and
times them: the sqlite3 work of the replay with no engine, no harness and no Python
between the calls beyond a loop. Every conformance stream starts on an empty store and its
clock and ids are injected, so the same calls meet the same data: `Floor.check` (run once,
untimed, before any timed run) compares every fetched row and every failure with the
capture and refuses a floor that does different work.
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
    error: str | None = None  # the sqlite3 error's class, when the statement failed
    target: int = 0  # backup: the destination connection's number
    settings: dict[str, Any] = field(default_factory=dict)  # connect: its arguments


class _Log:
    def __init__(self) -> None:
        self.steps: list[Step] = []
        self.cursors: dict[int, int] = {}
        self.keep: list[Any] = []  # ids stay unique while the objects live


class _Cursor(sqlite3.Cursor):
    log: _Log
    number: int
    step: Step | None = None
    implicit = False  # made by the connection's execute, not by the engine

    def _run(self, sql: str, rows: tuple[Params, ...], many: bool) -> Step:
        step = Step("call", self.number, sql, rows, many, via=self._via())
        self.log.steps.append(step)
        self.step = step
        return step

    def _via(self) -> int:
        if self.implicit:
            return 0
        self.log.keep.append(self)
        return self.log.cursors.setdefault(id(self), len(self.log.cursors) + 1)

    def execute(self, sql: str, parameters: Any = (), /) -> Self:
        step = self._run(sql, (copy_row(parameters),), False)
        try:
            return super().execute(sql, parameters)
        except sqlite3.Error as e:
            step.error = type(e).__name__
            raise

    def executemany(self, sql: str, seq_of_parameters: Iterable[Any], /) -> Self:
        rows = tuple(copy_row(p) for p in seq_of_parameters)
        step = self._run(sql, rows, True)
        try:
            return super().executemany(sql, rows)
        except sqlite3.Error as e:
            step.error = type(e).__name__
            raise

    def _got(self, rows: list[Any]) -> None:
        if self.step is not None:
            self.step.fetched.extend(rows)

    def fetchone(self) -> Any:
        row = super().fetchone()
        if row is not None:
            self._got([row])
        return row

    def fetchmany(self, size: int | None = None) -> list[Any]:
        rows = super().fetchmany(self.arraysize if size is None else size)
        self._got(rows)
        return rows

    def fetchall(self) -> list[Any]:
        rows = super().fetchall()
        self._got(rows)
        return rows

    def __next__(self) -> Any:
        row = super().__next__()
        self._got([row])
        return row


class _Connection(sqlite3.Connection):
    log: _Log
    number: int

    def cursor(self, factory: Any = None) -> Any:
        made = super().cursor(factory or _Cursor)
        if isinstance(made, _Cursor):
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


@contextmanager
def _recording(log: _Log) -> Iterator[None]:
    """Every `sqlite3.connect` records into `log`; the engine's template is made afresh."""
    real = sqlite3.connect
    opened = 0

    def connect(*args: Any, **kwargs: Any) -> sqlite3.Connection:
        nonlocal opened
        if "factory" in kwargs:
            raise RuntimeError("replay floor: a connection with its own factory is not recorded")
        opened += 1
        log.steps.append(Step("connect", opened, settings={"args": args, "kwargs": kwargs}))
        conn = real(*args, factory=_Connection, **kwargs)
        assert isinstance(conn, _Connection)
        conn.log, conn.number = log, opened
        return conn

    saved = list(connections._template)
    connections._template.clear()
    setattr(sqlite3, "connect", connect)  # noqa: B010 (restored below)
    try:
        yield
    finally:
        setattr(sqlite3, "connect", real)  # noqa: B010
        connections._template[:] = saved


@dataclass
class Capture:
    """The steps of one corpus replay; `setup` are the template's numbers (made untimed)."""

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
    with _recording(log):
        operations = replay()
    sources = frozenset(s.conn for s in log.steps if s.kind == "backup")
    if not any(s.kind == "call" for s in log.steps):
        raise RuntimeError(
            "replay floor: the replay made no sqlite3 call through a recorded connection"
        )
    return Capture(log.steps, sources, operations)


class Floor:
    """The captured steps replayed on fresh connections: `run` times them, `check` verifies."""

    def __init__(self, captured: Capture) -> None:
        self.captured = captured
        setup = [s for s in captured.steps if s.conn in captured.setup and s.kind != "backup"]
        self.timed = [
            s for s in captured.steps if s.conn not in captured.setup or s.kind == "backup"
        ]
        self.stores = [s for s in self.timed if s.kind != "call"]
        self.templates: dict[int, sqlite3.Connection] = {}
        for step in setup:  # the template(s), untimed, as the engine made them
            self._do(step, self.templates, {}, check=True)

    def run(self) -> dict[str, float]:
        """Seconds to make every timed step's sqlite3 call once more (`seconds`), and then
        only the stores' opening, copying and closing without their statements
        (`stores_seconds`: the part a harness making one store per stream pays)."""
        return {"seconds": self._timed(self.timed), "stores_seconds": self._timed(self.stores)}

    def _timed(self, steps: list[Step]) -> float:
        made: dict[int, sqlite3.Connection] = dict(self.templates)
        cursors: dict[tuple[int, int], sqlite3.Cursor] = {}
        do = self._do
        started = time.perf_counter()
        for step in steps:
            do(step, made, cursors, check=False)
        seconds = time.perf_counter() - started
        self._close(made)
        return seconds

    def check(self) -> None:
        """Replay once, untimed, comparing every fetched row and failure with the capture."""
        made: dict[int, sqlite3.Connection] = dict(self.templates)
        for step in self.timed:
            self._do(step, made, {}, check=True)
        self._close(made)

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
            try:
                if step.many:
                    cursor = target.executemany(step.sql, step.rows)
                else:
                    cursor = target.execute(step.sql, step.rows[0])
                rows = cursor.fetchmany(len(step.fetched)) if step.fetched else []
                failed = None
            except sqlite3.Error as e:
                rows, failed = [], type(e).__name__
            if check and (failed != step.error or rows != step.fetched):
                raise RuntimeError(
                    f"replay floor differs from the engine's run at {' '.join(step.sql.split())!r}:"
                    f" error {failed} (engine: {step.error}), {len(rows)} rows "
                    f"(engine: {len(step.fetched)}, equal: {rows == step.fetched})"
                )
        elif kind == "connect":
            made[step.conn] = sqlite3.connect(*step.settings["args"], **step.settings["kwargs"])
        elif kind == "backup":
            made[step.conn].backup(made[step.target])
        elif kind == "close":
            made.pop(step.conn).close()
