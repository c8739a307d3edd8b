"""The SQL floor: what the sqlite3 calls of one engine-only ingest cost on their own.

`capture` opens `mempill.open_default_in_memory()` with every sqlite3 connection it
makes recording its calls (`benchmarks.recording`: `sqlite3.connect` is wrapped, so no engine
code is changed or imported by name), ingests a few claims to warm the store, then
records exactly the statements and parameters of the next fresh-line ingests, in order:
`BEGIN IMMEDIATE`, its reads and inserts, `COMMIT`. It records a whole block of the word
index (`INDEX_BLOCK` ingests, the store's `index_block`): the one ingest of the block that
writes the block's terms (a read of the block's claims, one INSERT) counts once per
block, as in the engine.

`Floor` replays that list on a fresh in-memory database made with the engine's own schema
(`embedded_migrations("sqlite")` + `split_statements`) and the connection's own settings,
once per simulated ingest. The unique keys change between replays, so every INSERT
succeeds: the columns `claim_ref`, `entry_id`, `stream_seq` and `request_ref`, found by
name in each INSERT's column list; so does `subject`, so that each replay writes a new
line as each measured ingest does (the same subject every time would put every row of
the line indexes and the word index in one place of each B-tree, which is cheaper than
the engine's workload: about 40 µs per claim against about 50 in memory). A text key gets
a suffix wherever its value appears (so a ledger row still refers to its claim, the head
read asks for the new line, and the word index holds the new subject); an integer key is
shifted past the previous replay's, and so is an integer parameter of a read near the
captured keys (the word-index block read's positions); a JSON object parameter of an
INSERT of claim refs (the word-index rows) has its keys, claim refs, suffixed too. The
parameters of every replay are built before the clock starts, so the time is the sqlite3
calls alone: the best any Python engine issuing these statements could do. The statement
list is read afresh on every run, so the floor follows the engine as its statements change.
"""

from __future__ import annotations

import json
import math
import re
import sqlite3
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import mempill
from benchmarks.recording import Log, Params, recording
from benchmarks.streams import fresh
from mempill.core.search import INDEX_BLOCK
from mempill.stores.sql import embedded_migrations, split_statements

KEY_COLUMNS = frozenset({"claim_ref", "entry_id", "stream_seq", "request_ref", "subject"})
INSERT = re.compile(
    r"^\s*(?:INSERT|REPLACE)\s+(?:OR\s+\w+\s+)?INTO\s+([\w.\"`\[\]]+)\s*\(([^)]*)\)", re.I
)
AGENT = "floor"
#: Ingests before the capture: its positions then lie far from any small constant
#: parameter, so a read's integer parameter near them is a position (see `_Fresh`).
WARMUPS = 2 * INDEX_BLOCK + 2
#: A JSON string literal (the word-index parameter's keys and terms are such strings).
_QUOTED = re.compile(r'"(?:[^"\\]|\\.)*"')


@dataclass(frozen=True, slots=True)
class Call:
    """One sqlite3 call: `via` 0 is `Connection.execute(many)`, n > 0 the ingest's n-th cursor."""

    via: int
    sql: str
    rows: tuple[Params, ...]  # one row of parameters, or executemany's rows
    many: bool = False


@dataclass
class Capture:
    """`ingests` fresh-line ingests of an in-memory engine in a row, as sqlite3 saw them."""

    calls: list[Call]
    settings: dict[str, Any]  # sqlite3.connect keyword arguments (isolation_level, …)
    setup: list[str]  # the PRAGMAs the store ran when it opened the connection
    disposition: str
    connections: int = 1
    ingests: int = 1  # the calls are this many ingests (one replay simulates them all)

    def describe(self) -> list[dict[str, Any]]:
        """The statements, for the report: SQL, how it was issued, the key columns changed."""
        return [
            {
                "sql": " ".join(c.sql.split()),
                "via": "connection" if c.via == 0 else f"cursor {c.via}",
                "rows": len(c.rows),
                "keys": sorted(set(insert_keys(c.sql).values())),
            }
            for c in self.calls
        ]


def insert_columns(sql: str) -> list[str]:
    """The column list of an INSERT (lower case, unquoted); [] for any other statement."""
    found = INSERT.match(sql)
    if found is None:
        return []
    return [c.strip().strip('"`[]').lower() for c in found.group(2).split(",")]


def insert_keys(sql: str) -> dict[int, str]:
    """Parameter position → key column, for the key columns of an INSERT's column list."""
    return {i: c for i, c in enumerate(insert_columns(sql)) if c in KEY_COLUMNS}


def capture(warmups: int = WARMUPS, batch: int = 0) -> Capture:
    """Record the sqlite3 calls of a block's fresh-line `ingest`s on
    `open_default_in_memory()` (one ingest when its store writes the word index with each
    claim; `batch` > 0: of the `ingest_many` calls of that many claims each, on new lines,
    that write whole blocks: as many terms per claim as the engine writes in the long run)."""
    log = Log()
    with recording(log):
        engine = mempill.open_default_in_memory()
        try:
            for i in range(warmups):
                engine.ingest(fresh(AGENT, "floor-warmup", i))
            block = max(engine.store.index_block, 1)
            ingests = block // math.gcd(batch, block) if batch else block
            first = len(log.steps)
            if batch:
                for call in range(ingests):
                    claims = [fresh(AGENT, f"floor{call}-", i) for i in range(batch)]
                    receipt = engine.ingest_many(claims)[0]
            else:
                receipts = [engine.ingest(fresh(AGENT, "floor", i)) for i in range(ingests)]
                receipt = receipts[0]
            captured = [s for s in log.steps[first:] if s.kind == "call"]
        finally:
            engine.close()
    if not captured:
        raise RuntimeError("the captured ingest made no sqlite3 call through a recorded connection")
    used = sorted({s.conn for s in captured})
    opened = next(s for s in log.steps if s.kind == "connect" and s.conn == used[0])
    setup = []
    for step in log.steps:  # the PRAGMAs the store ran when it opened that connection
        if step.conn != opened.conn or step.kind != "call":
            continue
        if not step.sql.lstrip().upper().startswith("PRAGMA"):
            break
        setup.append(step.sql)
    return Capture(
        calls=[Call(s.via, s.sql, s.rows, s.many) for s in captured],
        settings=dict(opened.settings["kwargs"]),
        setup=setup,
        disposition=receipt.disposition.value,
        connections=len(used),
        ingests=ingests,
    )


def _object_keys(row: Params, width: int) -> list[str]:
    """The keys of the JSON object parameters of a row with fewer parameters than its
    INSERT has columns (an INSERT … SELECT from JSON); none for a plain VALUES row."""
    values = row.values() if isinstance(row, dict) else row
    if len(values) >= width:
        return []
    found: list[str] = []
    for value in values:
        if isinstance(value, str) and value.startswith("{"):
            parsed = json.loads(value)
            if isinstance(parsed, dict):
                found.extend(parsed)
    return found


@dataclass
class _Fresh:
    """How the n-th replay's parameters are made from the captured ones."""

    texts: frozenset[str]  # text key values: suffixed wherever they appear
    ints: dict[tuple[int, int, int | str], int]  # (call, row, position or name) → integer key
    span: int  # integer keys move by this much per replay, past the previous replay's
    json: set[tuple[int, int, int | str]] = field(default_factory=set)  # JSON naming keys

    @classmethod
    def of(cls, calls: Sequence[Call]) -> _Fresh:
        texts: set[str] = set()
        ints: dict[tuple[int, int, int | str], int] = {}
        for index, call in enumerate(calls):
            keys = insert_keys(call.sql)
            if not keys:
                continue
            width = len(insert_columns(call.sql))
            if "claim_ref" in keys.values():  # INSERT … SELECT from a JSON object of refs
                texts.update(k for row in call.rows for k in _object_keys(row, width))
            for row_number, row in enumerate(call.rows):
                # positional: the column at that place; named: a parameter named like a key
                slots: Iterable[tuple[int | str, Any]] = (
                    ((n, v) for n, v in row.items() if n.lower() in KEY_COLUMNS)
                    if isinstance(row, dict)
                    else ((p, v) for p, v in enumerate(row) if p % width in keys)
                )
                for slot, value in slots:
                    if isinstance(value, str):
                        texts.add(value)
                    elif isinstance(value, int) and not isinstance(value, bool):
                        ints[(index, row_number, slot)] = value
        values = list(ints.values())
        span = max(values) - min(values) + 1 if values else 1
        if values:  # a read's positions near the keys (within a span) move with them
            near = range(min(values) - span, max(values) + span + 1)
            for index, call in enumerate(calls):
                if insert_keys(call.sql):
                    continue
                for row_number, row in enumerate(call.rows):
                    pairs = row.items() if isinstance(row, dict) else enumerate(row)
                    for slot, value in pairs:
                        if type(value) is int and value in near:
                            ints[(index, row_number, slot)] = value
        quoted = {json.dumps(text, ensure_ascii=False) for text in texts}
        json_slots = {
            (index, row_number, slot)
            for index, call in enumerate(calls)
            for row_number, row in enumerate(call.rows)
            for slot, value in (row.items() if isinstance(row, dict) else enumerate(row))
            if isinstance(value, str)
            and value.startswith(("{", "["))
            and any(q in quoted for q in _QUOTED.findall(value))
        }
        return cls(frozenset(texts), ints, span, json_slots)

    def _quoted(self, quoted: str, n: int) -> str:
        """A JSON string of a text key, suffixed; any other JSON string as it is."""
        text = json.loads(quoted)
        return json.dumps(f"{text}~{n}", ensure_ascii=False) if text in self.texts else quoted

    def bind(self, calls: Sequence[Call], n: int) -> list[Any]:
        """The parameters of every call for replay number `n` (n ≥ 1)."""
        bound: list[Any] = []
        for index, call in enumerate(calls):
            rows: list[Params] = [
                {k: self._value(index, r, k, v, n) for k, v in row.items()}
                if isinstance(row, dict)
                else tuple(self._value(index, r, p, v, n) for p, v in enumerate(row))
                for r, row in enumerate(call.rows)
            ]
            bound.append(rows if call.many else rows[0])
        return bound

    def _value(self, call: int, row: int, slot: int | str, value: Any, n: int) -> Any:
        if isinstance(value, str) and value in self.texts:
            return f"{value}~{n}"
        if isinstance(value, str) and (call, row, slot) in self.json:
            # a JSON parameter naming keys (a transaction's word-index terms, a batch's
            # subjects for the head read): each JSON string that is a key, suffixed too
            return _QUOTED.sub(lambda m: self._quoted(m.group(0), n), value)
        shift = self.ints.get((call, row, slot))
        return value if shift is None else shift + n * self.span


@dataclass
class Floor:
    """A fresh in-memory database with the engine's schema, replaying a captured ingest."""

    captured: Capture
    path: Path | None = None  # a file (WAL, synchronous=FULL: the durable floor); None: memory
    conn: sqlite3.Connection = field(init=False)
    done: int = 0  # replays so far (the next one is number done + 1)

    def __post_init__(self) -> None:
        settings = {k: v for k, v in self.captured.settings.items() if k != "database"}
        self.conn = sqlite3.connect(":memory:" if self.path is None else self.path, **settings)
        for pragma in self.captured.setup:
            self.conn.execute(pragma)
        if self.path is not None:
            mode = self.conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            if str(mode).lower() != "wal":
                raise RuntimeError(f"floor: could not enable WAL on {self.path} (got {mode})")
            self.conn.execute("PRAGMA synchronous = FULL")
        self.conn.execute("BEGIN")
        for _, _, script in embedded_migrations("sqlite"):
            for statement in split_statements(script):
                self.conn.execute(statement)
        self.conn.execute("COMMIT")
        self.fresh = _Fresh.of(self.captured.calls)
        self.shape = [(c.via, c.sql, c.many) for c in self.captured.calls]

    def rate(self, ingests: int) -> float:
        """Simulated ingests per second over about `ingests` of them (whole replays of the
        captured ingests, at least one; parameters made beforehand)."""
        calls, each = self.captured.calls, self.captured.ingests
        replays = max(1, round(ingests / each))
        batches = [self.fresh.bind(calls, self.done + i + 1) for i in range(replays)]
        self.done += replays
        replay = self._replay
        started = time.perf_counter()
        for bound in batches:
            replay(bound)
        return replays * each / (time.perf_counter() - started)

    def _replay(self, bound: list[Any]) -> None:
        conn = self.conn
        cursors: dict[int, sqlite3.Cursor] = {}
        for (via, sql, many), params in zip(self.shape, bound, strict=True):
            target: sqlite3.Connection | sqlite3.Cursor = conn
            if via:
                if via not in cursors:
                    cursors[via] = conn.cursor()
                target = cursors[via]
            run: Callable[[str, Any], sqlite3.Cursor] = (
                target.executemany if many else target.execute
            )
            cursor = run(sql, params)
            if cursor.description is not None:
                cursor.fetchall()

    def close(self) -> None:
        self.conn.close()
