"""The PostgreSQL dialect of the shared SQL: placeholders, times, line lookups by hash, and
many rows inserted as one JSON parameter."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar

import psycopg

from mempill.errors import StorageError
from mempill.stores.sql import SQL

ZERO = timedelta(0)


#: Subject and predicate are found through 64-bit hashes (migration 2: a btree index row
#: cannot hold 1,024 characters of CJK text), stored as the columns subject_key and
#: predicate_key (migration 3: under row-level security only a condition without a
#: non-LEAKPROOF function of a column can seek an index). The line's parameters, in the
#: order the shared SQL passes them, become a one-row subquery `k`, so each is used twice:
#: hashed, to seek the index, and as text, to compare on the rows it finds.
HASH = "hashtextextended({}, 0)"
_LINE = re.compile(r"FROM (\w+) WHERE agent_id = \? AND subject = \?( AND predicate = \?)?")


def _by_hash(match: re.Match[str]) -> str:
    table, predicate = match.group(1), match.group(2) is not None
    keys = ["?::text AS k_agent", "?::text AS k_subject"]
    on = [
        "agent_id = k.k_agent",
        f"subject_key = {HASH.format('k.k_subject')}",
        "subject = k.k_subject",
    ]
    if predicate:
        keys.append("?::text AS k_predicate")
        on[2:2] = [f"predicate_key = {HASH.format('k.k_predicate')}"]
        on.append("predicate = k.k_predicate")
    return f"FROM (SELECT {', '.join(keys)}) AS k JOIN {table} ON {' AND '.join(on)} WHERE true"


def hashed_lines(sql: str) -> str:
    """The shared SQL with every lookup by (agent, subject[, predicate]) seeking by hash."""
    return _LINE.sub(_by_hash, sql)


class PostgresDialect:
    """`?` placeholders become `%s` once per query; times are `timestamptz`, read as UTC."""

    name = "postgres"
    overrides: ClassVar[dict[str, str]] = {
        # Text ordering in SQL must match SQLite's byte order, hence the C collation.
        "children": SQL["children"] + ' COLLATE "C"',
        "insert_terms": "INSERT INTO terms (agent_id, term, claim_ref) "
        "SELECT ?, t.term, r.key FROM jsonb_each(?::jsonb) AS r, "
        "jsonb_array_elements_text(r.value) AS t(term)",
        # OFFSET 0 keeps the hashes computed in the subquery: pulled up into the join
        # condition, a function of a column there would stop the index seek (see HASH).
        "line_versions": "SELECT l.subject, l.predicate, max(l.stream_seq) "
        "FROM (SELECT ?::text AS k_agent, ?::jsonb AS k_subjects) AS k "
        "CROSS JOIN LATERAL (SELECT x AS k_subject, hashtextextended(x, 0) AS k_hash "
        "FROM jsonb_array_elements_text(k.k_subjects) AS e(x) OFFSET 0) AS s "
        "JOIN ledger l ON l.agent_id = k.k_agent AND l.subject_key = s.k_hash "
        "AND l.subject = s.k_subject GROUP BY l.subject, l.predicate",
    }

    def __init__(self) -> None:
        texts = {**{k: hashed_lines(v) for k, v in SQL.items()}, **self.overrides}
        self._sql = {key: text.replace("%", "%%").replace("?", "%s") for key, text in texts.items()}
        self._bulk = {
            key: (bulk_insert(found.group(1), found.group(2)), found.group(2).split(", "))
            for key, text in SQL.items()
            if (found := _INSERT.fullmatch(text))
        }

    def many(self, key: str, rows: list[tuple[Any, ...]]) -> tuple[str, tuple[Any, ...]] | None:
        """Many rows of an insert as one statement with one parameter: the rows as a JSON
        array of objects (`json.dumps` in C, where binding each value is Python's work)."""
        found = self._bulk.get(key)
        if found is None:
            return None
        sql, columns = found
        objects = [dict(zip(columns, row, strict=True)) for row in rows]
        return sql, (json.dumps(objects, default=_iso, ensure_ascii=False, allow_nan=False),)

    def sql(self, key: str) -> str:
        return self._sql[key]

    def time_param(self, moment: datetime) -> datetime:
        return moment

    def time_value(self, stored: Any) -> datetime:
        if not isinstance(stored, datetime) or stored.utcoffset() is None:
            raise StorageError(f"postgres: expected a timestamptz, got {stored!r}")
        if stored.utcoffset() == ZERO:
            return stored.replace(tzinfo=UTC)
        return stored.astimezone(UTC)


_INSERT = re.compile(r"INSERT INTO (\w+) \(([\w, ]+)\) VALUES \([?, ]+\)")


def bulk_insert(table: str, columns: str) -> str:
    """INSERT of the rows of a JSON array of objects keyed by column (the table's row type
    converts each value as its column's input would)."""
    return (
        f"INSERT INTO {table} ({columns}) SELECT {columns} "
        f"FROM jsonb_populate_recordset(NULL::{table}, %s::jsonb)"
    )


def _iso(value: Any) -> str:
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(f"not JSON serializable: {type(value).__name__}")


#: The prefix of the statements each pooled connection prepares.
PREPARED_PREFIX = "mempill_"


class PreparedDialect(PostgresDialect):
    """The dialect of the store's own sessions: every statement runs as `EXECUTE` of a
    statement its connection prepared once, when the pool opened it (`prepare`), so the
    server plans it once per connection instead of once per call; the arguments are bound
    as literals like any other parameter."""

    def __init__(self) -> None:
        super().__init__()
        plain = {**self._sql, **{f"many_{k}": sql for k, (sql, _) in self._bulk.items()}}
        self.script = "; ".join(
            f"PREPARE {PREPARED_PREFIX}{key} AS {_numbered(sql)}" for key, sql in plain.items()
        )
        self._sql = {key: _execute(key, sql) for key, sql in self._sql.items()}
        self._bulk = {
            key: (_execute(f"many_{key}", sql), columns)
            for key, (sql, columns) in self._bulk.items()
        }

    def prepare(self, conn: Any) -> None:
        """Prepare every statement on a new connection (one message)."""
        psycopg.ClientCursor(conn).execute(self.script)


def _numbered(sql: str) -> str:
    """`%s` placeholders as `$1`, `$2`…, and `%%` as `%`: the text PREPARE takes."""
    parts = sql.split("%%")
    number = 0
    for index, part in enumerate(parts):
        pieces = part.split("%s")
        text = pieces[0]
        for piece in pieces[1:]:
            number += 1
            text += f"${number}{piece}"
        parts[index] = text
    return "%".join(parts)


def _execute(key: str, sql: str) -> str:
    count = sql.replace("%%", "").count("%s")
    args = f"({', '.join(['%s'] * count)})" if count else ""
    return f"EXECUTE {PREPARED_PREFIX}{key}{args}"


DIALECT = PostgresDialect()
PREPARED = PreparedDialect()
