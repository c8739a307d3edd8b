"""What a backend's driver gives the shared SQL session (`sql.SqlSession`): a cursor and a
dialect. SQLite's are the sqlite3 cursor and `SQLiteDialect`; PostgreSQL's are `HeldCursor`
(statements held back until a result is read) and `PostgresDialect`."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, Protocol


class Dialect(Protocol):
    """What differs between the backends: placeholders and timestamp values."""

    name: str

    def sql(self, key: str) -> str: ...

    def time_param(self, moment: datetime) -> Any: ...

    def time_value(self, stored: Any) -> datetime: ...

    def many(self, key: str, rows: list[tuple[Any, ...]]) -> tuple[str, tuple[Any, ...]] | None:
        """Many rows of the insert `key` as one statement and its parameters, or None."""
        ...


class Cursor(Protocol):
    def execute(self, sql: str, params: Sequence[Any] = ...) -> Any: ...

    def executemany(self, sql: str, params: Sequence[Sequence[Any]]) -> Any: ...

    def fetchone(self) -> Any: ...

    def fetchall(self) -> list[Any]: ...

    @property
    def rowcount(self) -> int: ...
