"""The shared test suite runs on every backend through one `backend` fixture.

Backends: `sqlite-mem` (one in-memory database per agent), `sqlite-file` (the directory
topology: a real file per agent, separate read connections) and `postgres` (from
MEMPILL_TEST_PG_DSN, else an embedded PostgreSQL 18; each test gets its own schema).
MEMPILL_TEST_BACKENDS=sqlite-mem,postgres narrows the set.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

import mempill
from mempill import Engine, SeededIds, SteppingClock

ALL_BACKENDS = ("sqlite-mem", "sqlite-file", "postgres")
START = datetime(2026, 1, 1, tzinfo=UTC)


def selected_backends() -> tuple[str, ...]:
    chosen = os.environ.get("MEMPILL_TEST_BACKENDS")
    if not chosen:
        return ALL_BACKENDS
    names = tuple(n.strip() for n in chosen.split(",") if n.strip())
    unknown = set(names) - set(ALL_BACKENDS)
    if unknown:
        raise pytest.UsageError(f"MEMPILL_TEST_BACKENDS: unknown backend(s) {sorted(unknown)}")
    return names


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Skip backend-specific tests whose backend is not selected."""
    chosen = set(selected_backends())
    for item in items:
        if item.get_closest_marker("postgres_only") and "postgres" not in chosen:
            item.add_marker(pytest.mark.skip(reason="MEMPILL_TEST_BACKENDS excludes postgres"))
        if item.get_closest_marker("sqlite_only") and not chosen & {"sqlite-mem", "sqlite-file"}:
            item.add_marker(pytest.mark.skip(reason="MEMPILL_TEST_BACKENDS excludes sqlite"))


@dataclass
class Backend:
    """Opens engines on one backend with a deterministic clock and ids by default."""

    name: str
    tmp_path: Path
    stack: ExitStack
    dsn: str | None = None
    clock: SteppingClock = field(default_factory=lambda: SteppingClock(START, timedelta(seconds=1)))
    ids: SeededIds = field(default_factory=lambda: SeededIds(42))

    @property
    def is_postgres(self) -> bool:
        return self.name == "postgres"

    def open(self, **options: Any) -> Engine:
        options.setdefault("clock", self.clock)
        options.setdefault("ids", self.ids)
        engine: Engine
        if self.name == "sqlite-mem":
            engine = mempill.open_default_in_memory(**options)
        elif self.name == "sqlite-file":
            engine = mempill.open_directory(self.tmp_path / "agents", **options)
        else:
            assert self.dsn is not None
            engine = mempill.open_postgres(self.dsn, **options)
        self.stack.callback(engine.close)
        return engine


@pytest.fixture(scope="session")
def postgres_server() -> str:
    from mempill.lab.servers import postgres_dsn

    return postgres_dsn()


@pytest.fixture(params=selected_backends())
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    name: str = request.param
    with ExitStack() as stack:
        dsn = None
        if name == "postgres":
            from mempill.lab.servers import fresh_schema

            dsn = stack.enter_context(fresh_schema(request.getfixturevalue("postgres_server")))
        yield Backend(name=name, tmp_path=tmp_path, stack=stack, dsn=dsn)


@pytest.fixture
def engine(backend: Backend) -> Engine:
    """An engine without an oracle on the current backend."""
    return backend.open()


@pytest.fixture
def clock(backend: Backend) -> SteppingClock:
    return backend.clock


class RecordingOracle:
    """An oracle that records what it was asked (and can be told to fail)."""

    def __init__(self) -> None:
        self.requests: list[mempill.AdjudicationRequest] = []
        self.fail = False

    def request_adjudication(self, handle_id: str, request: mempill.AdjudicationRequest) -> None:
        if self.fail:
            raise RuntimeError("oracle is down")
        assert handle_id == request.handle_id, "the handle is passed beside the request"
        self.requests.append(request)


@pytest.fixture
def oracle() -> RecordingOracle:
    return RecordingOracle()


Claim = Callable[..., mempill.Receipt]
