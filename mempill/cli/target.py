"""Where the command line and the MCP server find their store, agent and clock.

Both front ends read the same settings, from flags first and then from the environment:
`MEMPILL_DB_PATH` (a SQLite file, or a directory holding one file per agent),
`MEMPILL_PG_DSN` (PostgreSQL instead), `MEMPILL_AGENT_ID`, and two reproducibility
knobs for tests and demos, `MEMPILL_CLOCK_START` (a stepping clock, one second per
call, from that instant) and `MEMPILL_ID_SEED` (seeded claim refs).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

from mempill import extras
from mempill.clock import Clock, SteppingClock, system_clock
from mempill.core import parse
from mempill.core.config import EngineConfig
from mempill.core.dates import parse_lenient
from mempill.engine import Engine
from mempill.errors import ConfigError, StorageError, ValidationError
from mempill.ids import IdFactory, SeededIds, time_ordered_ids
from mempill.openers import open_default, open_default_in_memory, open_directory
from mempill.ports import OraclePort
from mempill.secrets import UNPARSEABLE, redact

ENV_DB = "MEMPILL_DB_PATH"
ENV_PG = "MEMPILL_PG_DSN"
ENV_AGENT = "MEMPILL_AGENT_ID"
ENV_CLOCK = "MEMPILL_CLOCK_START"
ENV_SEED = "MEMPILL_ID_SEED"
#: A command or one MCP client needs few connections; the store's default is 20.
PG_POOL_SIZE = 4
#: What `--pg` with a password is told: other local users can read a process's arguments.
PASSWORD_IN_ARGUMENTS = (
    "--pg carries a password, which other local users can read (ps, /proc); put the "
    f"conninfo in {ENV_PG} or the password in a PGPASSFILE (~/.pgpass) instead"
)


@dataclass(frozen=True, slots=True, kw_only=True)
class Target:
    """A resolved store location: a SQLite path, a PostgreSQL DSN, or neither (in memory)."""

    db: str | None = None
    pg: str | None = None
    clock_start: str | None = None
    id_seed: str | None = None

    @property
    def kind(self) -> str:
        if self.pg:
            return "postgres"
        if self.db:
            return "sqlite-directory" if names_directory(self.db) else "sqlite-file"
        return "sqlite-memory"

    def describe(self) -> str:
        """Where the store is, without credentials (`mempill.secrets.redact`)."""
        if self.pg:
            return f"postgres {redact(self.pg)}"
        if self.db:
            return f"{self.kind} {self.db}"
        return "sqlite in memory"

    def __repr__(self) -> str:  # never the DSN itself: it may hold a password
        return f"Target({self.describe()})"


def names_directory(db: str) -> bool:
    """An existing directory, or a path ending in `/`: one SQLite file per agent in it."""
    return db.endswith(("/", os.sep)) or store_path(db).is_dir()


def store_path(db: str) -> Path:
    """`--db` / `MEMPILL_DB_PATH` as a path, `~` expanded."""
    try:
        return Path(db).expanduser()
    except RuntimeError as e:  # `~nobody/…`: no such user
        raise ConfigError(f"database path {db!r}: {e}") from e


def resolve_target(
    db: str | None = None, pg: str | None = None, env: Mapping[str, str] | None = None
) -> Target:
    """Flags win over the environment; a SQLite path and a DSN together are a ConfigError,
    and so is a DSN libpq cannot parse (its parse error would quote it, password included)."""
    environ = os.environ if env is None else env
    db = db or environ.get(ENV_DB) or None
    pg = pg or environ.get(ENV_PG) or None
    if db and pg:
        raise ConfigError(
            f"give a SQLite path (--db / {ENV_DB}) or a PostgreSQL DSN (--pg / {ENV_PG}), not both"
        )
    if pg and redact(pg) == UNPARSEABLE:
        raise ConfigError(
            f"--pg / {ENV_PG}: libpq cannot parse the conninfo (not shown: it may hold a "
            "password); use key=value pairs (quote a value with spaces: 'my secret') or a "
            "postgresql:// URI"
        )
    return Target(
        db=db,
        pg=pg,
        clock_start=environ.get(ENV_CLOCK) or None,
        id_seed=environ.get(ENV_SEED) or None,
    )


def resolve_agent(agent: str | None, env: Mapping[str, str] | None = None) -> str | None:
    """The agent from `--agent` or `MEMPILL_AGENT_ID`, validated (None when neither is set)."""
    environ = os.environ if env is None else env
    chosen = agent or environ.get(ENV_AGENT) or None
    if chosen is None:
        return None
    try:
        return parse.agent_id(chosen)
    except ValidationError as e:
        raise ConfigError(str(e)) from e


def clock_for(target: Target) -> Clock:
    """The system clock, or a one-second stepping clock from `MEMPILL_CLOCK_START`."""
    if target.clock_start is None:
        return system_clock
    try:
        start, _ = parse_lenient(target.clock_start, ENV_CLOCK)
    except ValidationError as e:
        raise ConfigError(str(e)) from e
    return SteppingClock(start, timedelta(seconds=1))


def ids_for(target: Target) -> IdFactory:
    """Time-ordered UUIDs (version 7), or a reproducible sequence seeded by
    `MEMPILL_ID_SEED`."""
    if target.id_seed is None:
        return time_ordered_ids
    seed: int | str = int(target.id_seed) if target.id_seed.isdigit() else target.id_seed
    return SeededIds(seed)


def open_target(
    target: Target,
    *,
    clock: Clock | None = None,
    ids: IdFactory | None = None,
    config: EngineConfig | None = None,
    oracle: OraclePort | None = None,
    create: bool = True,
    read_only: bool = False,
) -> Engine:
    """Open the engine a target names; PostgreSQL support is imported only when asked for.

    With `create` (the default, as `open_default` / `open_directory` do) a new SQLite
    store is made, missing parent directories included. `create=False` refuses a store
    that does not exist yet (read-only commands must not leave an empty database behind
    a typo). `read_only` opens the store read-only (SQLite `mode=ro`, no migration; on
    PostgreSQL no DDL, read-only transactions): it changes nothing, not even a journal
    mode, and works on a 0444 file or with a SELECT-only role. A path that cannot be
    created or opened is a StorageError naming it.
    """
    if read_only and not target.pg and not target.db:
        raise ConfigError(
            f"read-only needs a store (--db / {ENV_DB} or --pg / {ENV_PG}): an in-memory "
            "one would always be empty"
        )
    options: dict[str, Any] = {
        "clock": clock or clock_for(target),
        "ids": ids or ids_for(target),
        "config": config,
        "oracle": oracle,
    }
    if target.pg:
        return _open_postgres(target.pg, options | {"read_only": read_only})
    if not target.db:
        return open_default_in_memory(**options)
    options["read_only"] = read_only
    path = store_path(target.db)
    directory = names_directory(target.db)
    if not create and not path.exists():
        what = "directory" if directory else "file"
        raise ConfigError(f"database {what} {target.db!r} does not exist")
    try:
        if directory:
            return open_directory(path, **options)
        return open_default(path, **options)
    except OSError as e:  # a parent that is a file, no permission, a name too long…
        reason = e.strerror or str(e)
        where = f" ({e.filename})" if e.filename and str(e.filename) != str(path) else ""
        raise StorageError(f"cannot open database {target.db!r}: {reason}{where}") from e
    except StorageError as e:  # SQLite's own words ("file is not a database") name no file
        if str(path) in str(e):
            raise
        raise StorageError(f"cannot open database {target.db!r}: {e}") from e


def _open_postgres(dsn: str, options: dict[str, Any]) -> Engine:
    try:
        import psycopg  # noqa: F401  (checked first: the clearer message for a missing driver)
    except ImportError as e:
        raise ConfigError(extras.missing("PostgreSQL support", "postgres")) from e
    from mempill.openers import open_postgres

    engine: Engine = open_postgres(dsn, pool_max_size=PG_POOL_SIZE, **options)
    return engine


def bound_agent(engine: Engine) -> str | None:
    """The agent a single-file SQLite store belongs to, when it has one (a read, no binding)."""
    finder = getattr(engine.store, "bound_agent", None)
    if finder is None:
        return None
    found = finder()
    return None if found is None else str(found)


def require_owner(engine: Engine, target: Target, agent: str, fix: str) -> str | None:
    """The store's owner (None: not bound); a ConfigError when it is not `agent`.

    Such a store holds no memory of `agent` and refuses its writes, so a read as that
    agent would answer "nothing is known" about memory that is really someone else's.
    """
    owner = bound_agent(engine)
    if owner is not None and owner != agent:
        raise ConfigError(
            f"{target.db} belongs to agent {owner!r}, not {agent!r}: it holds no memory of "
            f"{agent!r} and refuses its writes; {fix.format(owner=owner)} or use another "
            "database file"
        )
    return owner
