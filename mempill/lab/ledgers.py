"""Ledgers as data: a store's tables as pandas DataFrames and as DuckDB tables.

Any store can be read: an `Engine` (SQLite in memory, single file or directory;
PostgreSQL), a SQLite file or directory path, or a PostgreSQL conninfo. Rows are read
with `sqlite3`/`psycopg` (never a DuckDB extension, which would need a download) in one
snapshot per database, then typed: timezone-aware `datetime64[us, UTC]` timestamps
(microseconds, so valid times in years 1 and 9999 fit), categoricals for enums with every
member as a category (ordered for criticality), nullable integers, canonical JSON text.
`connect` and `register` put them in DuckDB with the SQL views and table macros of
`sqlviews` (the belief of every line at any bitemporal point, and more: docs/duckdb.md).
"""

from __future__ import annotations

import json
import os
import re
import sqlite3
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from mempill.core import parse
from mempill.core.canonical import canonical_json
from mempill.core.config import EngineConfig
from mempill.core.dates import format_tx, parse_lenient
from mempill.core.enums import (
    AssertionKind,
    Cardinality,
    Criticality,
    Disposition,
    EventKind,
    Granularity,
    PendingStatus,
    Provenance,
)
from mempill.engine import Engine
from mempill.stores.sql import (
    ASSERTION_COLUMNS,
    CLAIM_COLUMNS,
    ENTRY_COLUMNS,
    PENDING_COLUMNS,
    STATS_COLUMNS,
)
from mempill.stores.sqlite import SQLiteStore

if TYPE_CHECKING:
    import duckdb
    import pandas as pd

Source = Engine | SQLiteStore | str | os.PathLike[str]
Instant = datetime | date | str
Rows = dict[str, list[tuple[Any, ...]]]


@dataclass(frozen=True, slots=True)
class Table:
    """One stored table: its columns (as the stores write them), tx-time column and order."""

    name: str
    columns: tuple[str, ...]
    tx_column: str
    order: tuple[str, ...]


def _columns(text: str) -> tuple[str, ...]:
    return tuple(c.strip() for c in text.split(","))


_SPECS = (  # name, columns, tx-time column, row order
    ("ledger", ENTRY_COLUMNS, "recorded_at", "agent_id stream_seq"),
    ("claims", CLAIM_COLUMNS, "tx_time", "agent_id stream_seq claim_ref"),
    ("assertions", ASSERTION_COLUMNS, "tx_time", "agent_id stream_seq assertion_ref"),
    ("pending_adjudications", PENDING_COLUMNS, "queued_at", "queued_at agent_id handle_id"),
    ("write_stats", STATS_COLUMNS, "recorded_at", "recorded_at agent_id first_seq"),
)
TABLES = {n: Table(n, _columns(c), tx, tuple(o.split())) for n, c, tx, o in _SPECS}
TIMES = frozenset(
    {"tx_time", "valid_from", "valid_until", "recorded_at", "bound_at", "queued_at", "expires_at"}
)
INTS = frozenset({"stream_seq", "lock_wait_us", "txn_us", "pid"})
NULLABLE_INTS = frozenset({"derivation_depth", "first_seq", "last_seq"})
FLOATS = frozenset({"value_confidence", "valid_time_confidence", "confidence"})
JSON_TEXT = frozenset({"rationale", "derived_from", "incumbent_refs", "request"})
ENUMS: dict[str, type[StrEnum]] = {
    "cardinality": Cardinality,
    "provenance": Provenance,
    "criticality": Criticality,
    "valid_from_granularity": Granularity,
    "valid_until_granularity": Granularity,
    "bound_granularity": Granularity,
    "event_kind": EventKind,
    "disposition": Disposition,
    "kind": AssertionKind,
    "status": PendingStatus,
}
#: Backend names the stores write; others found in a store are added as categories.
BACKENDS = ("sqlite", "postgres")


@dataclass(frozen=True, slots=True)
class Filter:
    """Which rows to load: some agents (None: all) and a tx-time range `[tx_from, tx_until)`."""

    agents: tuple[str, ...] | None = None
    tx_from: datetime | None = None
    tx_until: datetime | None = None

    @classmethod
    def of(
        cls,
        agents: str | Iterable[str] | None = None,
        tx_from: Instant | None = None,
        tx_until: Instant | None = None,
    ) -> Filter:
        """Validate loose filter arguments (agent ids, lenient dates) into a Filter."""
        chosen = None
        if agents is not None:
            names = (agents,) if isinstance(agents, str) else tuple(agents)
            chosen = tuple(parse.agent_id(a) for a in names)
        start = None if tx_from is None else parse_lenient(tx_from, "tx_from")[0]
        end = None if tx_until is None else parse_lenient(tx_until, "tx_until")[0]
        if start is not None and end is not None and end <= start:
            raise ValueError(f"tx_until ({format_tx(end)}) must be after tx_from")
        return cls(chosen, start, end)

    def wants(self, agent_id: str) -> bool:
        return self.agents is None or agent_id in self.agents

    def select(self, table: Table, mark: str, time_param: Any) -> tuple[str, list[Any]]:
        """SELECT text (constant identifiers, parameters for every value) and its parameters."""
        where: list[str] = []
        params: list[Any] = []
        if self.agents is not None:
            where.append(f"agent_id IN ({', '.join(mark for _ in self.agents)})")
            params.extend(self.agents)
        for moment, op in ((self.tx_from, ">="), (self.tx_until, "<")):
            if moment is not None:
                where.append(f"{table.tx_column} {op} {mark}")
                params.append(time_param(moment))
        clause = f" WHERE {' AND '.join(where)}" if where else ""
        return f"SELECT {', '.join(table.columns)} FROM {table.name}{clause}", params


# ---------------------------------------------------------------- reading rows


def _read_sqlite(conn: sqlite3.Connection, flt: Filter, label: str) -> Rows:
    """Every table from one SQLite database, inside one read transaction (one snapshot)."""
    rows: Rows = {}
    began = not conn.in_transaction
    if began:
        conn.execute("BEGIN")
    try:
        for table in TABLES.values():
            sql, params = flt.select(table, "?", format_tx)
            try:
                rows[table.name] = conn.execute(sql, params).fetchall()
            except sqlite3.OperationalError as e:
                raise ValueError(f"{label} is not a mempill store: {e}") from e
    finally:
        if began:
            conn.execute("COMMIT")
    return rows


def _sqlite_file(path: Path, flt: Filter) -> Rows:
    conn = sqlite3.connect(f"file:{quote(str(path.resolve()))}?mode=ro", uri=True)
    try:
        return _read_sqlite(conn, flt, str(path))
    finally:
        conn.close()


def _sqlite_store(store: SQLiteStore, flt: Filter) -> Iterator[Rows]:
    """An open SQLite store: files through read-only connections, memory under the agent lock."""
    for agent in store.agents():
        if not flt.wants(agent):
            continue
        path = store.database_path(agent)
        if path is not None:
            yield _sqlite_file(path, flt)
            continue
        with store.read(agent):  # holds the agent lock: no write is open on its connection
            conn = store.connection_for(agent)
            if conn is not None:
                yield _read_sqlite(conn, flt, f"in-memory database of {agent!r}")


def _sqlite_path(path: Path, flt: Filter) -> Iterator[Rows]:
    """A single database file, or a directory of `<agent_id>.db` files."""
    if not path.exists():
        raise FileNotFoundError(f"no SQLite store at {path}")
    if path.is_file():
        yield _sqlite_file(path, flt)
        return
    for file in sorted(path.glob("*.db")):
        if flt.wants(file.stem):
            yield _sqlite_file(file, flt)


def _read_postgres(conn: Any, flt: Filter, label: str) -> Rows:
    """Every table from PostgreSQL in one READ ONLY REPEATABLE READ transaction (one snapshot).

    `conn` is an autocommit psycopg connection, so the transaction is explicit.
    """
    import psycopg

    rows: Rows = {}
    with conn.cursor() as cursor:
        cursor.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
        try:
            for table in TABLES.values():
                sql, params = flt.select(table, "%s", lambda moment: moment)
                try:
                    cursor.execute(sql.encode(), params)
                except psycopg.errors.UndefinedTable as e:
                    raise ValueError(f"{label} is not a mempill store: {e}") from e
                rows[table.name] = cursor.fetchall()
        finally:
            cursor.execute("ROLLBACK")
    return rows


def _postgres(conninfo: str, flt: Filter) -> Iterator[Rows]:
    import psycopg

    from mempill.secrets import redact as describe  # the server, without secrets

    with psycopg.connect(conninfo, autocommit=True) as conn:
        yield _read_postgres(conn, flt, describe(conninfo))


def is_conninfo(text: str) -> bool:
    """A PostgreSQL URI or key=value conninfo (as opposed to a SQLite path)."""
    return text.startswith(("postgresql://", "postgres://")) or bool(
        re.search(r"(^|\s)(host|hostaddr|dbname|user|port|service)=", text)
    )


def _rows(source: Source, flt: Filter) -> Iterator[Rows]:
    """The rows of every table of every database of `source`, one Rows per database."""
    store = source.store if isinstance(source, Engine) else source
    if isinstance(store, SQLiteStore):
        yield from _sqlite_store(store, flt)
    elif isinstance(store, (str, os.PathLike)):
        text = os.fspath(store)
        if is_conninfo(text):
            yield from _postgres(text, flt)
        else:
            yield from _sqlite_path(Path(text), flt)
    else:
        pool: Any = getattr(store, "pool", None)  # a PostgresStore: borrow a pooled connection
        if pool is not None and hasattr(pool, "connection"):
            with pool.connection() as conn:
                yield _read_postgres(conn, flt, repr(store))
            return
        raise TypeError(f"cannot load the ledgers of {source!r}: unsupported store")


# ---------------------------------------------------------------- typing the columns


def times(values: Sequence[Any]) -> pd.Series:
    """Instants (aware datetimes, stored tx-time text or None) as `datetime64[us, UTC]`."""
    import numpy as np
    import pandas as pd

    text = [
        "NaT" if v is None else (format_tx(v) if isinstance(v, datetime) else str(v))[:26]
        for v in values
    ]
    array = np.array(text, dtype="datetime64[us]")
    return pd.Series(array, dtype="datetime64[us]").dt.tz_localize("UTC")


def _categorical(name: str, values: Sequence[Any]) -> pd.Categorical:
    import pandas as pd

    kind = ENUMS[name]
    categories = [m.value for m in kind]
    unknown = {v for v in values if v is not None} - set(categories)
    if unknown:
        raise ValueError(f"column {name}: unknown value(s) {sorted(unknown)}")
    return pd.Categorical(values, categories=categories, ordered=kind is Criticality)


def _column(name: str, values: Sequence[Any]) -> Any:
    """One column's values as a typed pandas array."""
    import pandas as pd

    if name in TIMES:
        return times(values)
    if name in ENUMS:
        return _categorical(name, values)
    if name == "backend":
        return pd.Categorical(values, categories=sorted(set(BACKENDS) | set(values)))
    if name in INTS:
        return pd.array([int(v) for v in values], dtype="int64")
    if name in NULLABLE_INTS:
        return pd.array([None if v is None else int(v) for v in values], dtype="Int64")
    if name in FLOATS:
        return pd.array([float(v) for v in values], dtype="float64")
    if name == "notified":
        return pd.array([bool(v) for v in values], dtype="bool")
    if name in JSON_TEXT:
        values = [v if v is None or isinstance(v, str) else canonical_json(v) for v in values]
    return pd.array(values, dtype="string")


def _frame(table: Table, rows: list[tuple[Any, ...]]) -> pd.DataFrame:
    import pandas as pd

    data = {name: _column(name, [r[i] for r in rows]) for i, name in enumerate(table.columns)}
    frame = pd.DataFrame(data)
    if table.name == "ledger":
        rationale = [json.loads(text) for text in frame["rationale"]]
        for key in ("route", "reason"):
            found = [r.get(key) for r in rationale]
            frame[key] = pd.array([None if v is None else str(v) for v in found], dtype="string")
    return frame.sort_values(list(table.order), kind="stable").reset_index(drop=True)


# ---------------------------------------------------------------- the public loaders


def load_all(
    source: Source,
    *,
    agents: str | Iterable[str] | None = None,
    tx_from: Instant | None = None,
    tx_until: Instant | None = None,
) -> dict[str, pd.DataFrame]:
    """Every table of `source` as a typed DataFrame, keyed by table name (see `TABLES`)."""
    flt = Filter.of(agents, tx_from, tx_until)
    collected: Rows = {name: [] for name in TABLES}
    for rows in _rows(source, flt) if flt.agents != () else ():  # no agents: nothing to read
        for name, found in rows.items():
            collected[name].extend(found)
    return {name: _frame(TABLES[name], collected[name]) for name in TABLES}


def load(
    source: Source,
    table: str,
    *,
    agents: str | Iterable[str] | None = None,
    tx_from: Instant | None = None,
    tx_until: Instant | None = None,
) -> pd.DataFrame:
    """One table of `source` as a typed DataFrame."""
    if table not in TABLES:
        raise ValueError(f"unknown table {table!r}; choose one of {', '.join(TABLES)}")
    return load_all(source, agents=agents, tx_from=tx_from, tx_until=tx_until)[table]


def ledger(source: Source, **filters: Any) -> pd.DataFrame:
    """Ledger entries in (agent_id, stream_seq) order, with `route` and `reason` columns."""
    return load(source, "ledger", **filters)


def claims(source: Source, **filters: Any) -> pd.DataFrame:
    """Claim rows; `value` is the canonical JSON text (the value's identity)."""
    return load(source, "claims", **filters)


def assertions(source: Source, **filters: Any) -> pd.DataFrame:
    """Validity assertions (Bound, Reopen, Invalidate)."""
    return load(source, "assertions", **filters)


def pending_adjudications(source: Source, **filters: Any) -> pd.DataFrame:
    """The oracle outbox, oldest first."""
    return load(source, "pending_adjudications", **filters)


def write_stats(source: Source, **filters: Any) -> pd.DataFrame:
    """One row per write transaction: lock wait and transaction time in µs, backend, pid."""
    return load(source, "write_stats", **filters)


def register(
    frames: Mapping[str, pd.DataFrame],
    connection: duckdb.DuckDBPyConnection | None = None,
    *,
    views: bool = True,
    config: EngineConfig | None = None,
) -> duckdb.DuckDBPyConnection:
    """Register DataFrames as DuckDB tables (views over the frames, no copy) and, with
    `views`, the SQL views and macros of `sqlviews` (folding with `config`; docs/duckdb.md);
    then a table of `TABLES` missing from `frames` is registered empty."""
    import duckdb

    from mempill.lab import sqlviews

    con = connection if connection is not None else duckdb.connect(":memory:")
    if views:
        frames = {**{n: _frame(t, []) for n, t in TABLES.items() if n not in frames}, **frames}
    for name, frame in frames.items():
        con.register(name, frame)
    if views:
        sqlviews.install(con, config)
    return con


def connect(
    source: Source,
    *,
    default: bool = False,
    views: bool = True,
    config: EngineConfig | None = None,
    **filters: Any,
) -> duckdb.DuckDBPyConnection:
    """A DuckDB connection with every table of `source` registered, and the SQL views.

    With `default=True` the tables go on DuckDB's default connection, so module-level
    `duckdb.sql("select disposition, count(*) from ledger group by all")` works. The belief
    macros fold with `config`, by default the engine's own when `source` is an Engine.
    """
    import duckdb

    frames = load_all(source, **filters)
    if config is None and isinstance(source, Engine):
        config = source.config
    con = duckdb.default_connection() if default else None
    return register(frames, con, views=views, config=config)


# ---------------------------------------------------------------- derived views


def digests(engines: Mapping[str, Engine], agents: Iterable[str] | None = None) -> pd.DataFrame:
    """The ledger digest (reference §9) of each agent on each engine, and whether they all agree.

    One row per agent; one column per engine label; `equal` is True when every engine
    has the same digest for that agent.
    """
    import pandas as pd

    if not engines:
        raise ValueError("digests: give at least one engine")
    chosen = (
        sorted({a for e in engines.values() for a in e.store.agents()})
        if agents is None
        else [parse.agent_id(a) for a in agents]
    )
    table: dict[str, list[Any]] = {"agent_id": chosen}
    for label, engine in engines.items():
        table[label] = [engine.ledger_digest(agent) for agent in chosen]
    frame = pd.DataFrame(table)
    frame["equal"] = frame[list(engines)].nunique(axis=1) == 1
    return frame
