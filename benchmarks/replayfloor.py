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
from collections.abc import Callable
from dataclasses import dataclass

from benchmarks.recording import Log, Step, recording


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
    log = Log()
    with recording(log) as template:
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
