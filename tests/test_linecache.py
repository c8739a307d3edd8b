"""The line cache never shows uncommitted rows and forgets a rolled-back transaction."""

from __future__ import annotations

import threading

import pytest
from conftest import Backend
from support import AGENT, history_rows, put, request

from mempill import Engine, Projection
from mempill.core import parse
from mempill.engine.batch import Batch
from mempill.engine.ingest import ingest


def test_readers_never_see_uncommitted_rows(backend: Backend) -> None:
    if backend.name == "sqlite-mem":
        pytest.skip("in-memory reads share the writer's connection under the agent lock")
    engine = backend.open()
    put(engine, "Berlin")
    engine.query_memory(AGENT, "user", "city")  # the line is cached now
    seen: list[Projection] = []

    def work(batch: Batch) -> None:
        ingest(batch, parse.ingest_request(request("Paris")), engine.ids())
        reader = threading.Thread(
            target=lambda: seen.append(engine.query_memory(AGENT, "user", "city"))
        )
        reader.start()
        reader.join(30)
        raise RuntimeError("roll the transaction back")

    with pytest.raises(RuntimeError):
        engine.runner.write(AGENT, work)
    assert [p.value for p in seen] == ["Berlin"] and not seen[0].is_contested
    assert history_rows(engine) == [("Berlin", "Current")]  # the rolled-back row is gone
    put(engine, "Paris")
    assert engine.query_memory(AGENT, "user", "city").is_contested


def test_a_rolled_back_write_leaves_the_cache_clean(engine: Engine) -> None:
    put(engine, "Berlin")
    engine.query_memory(AGENT, "user", "city")

    def work(batch: Batch) -> None:
        ingest(
            batch, parse.ingest_request(request("Paris")), "00000000-0000-4000-8000-0000000000aa"
        )
        raise RuntimeError("roll back")

    with pytest.raises(RuntimeError):
        engine.runner.write(AGENT, work)
    assert history_rows(engine) == [("Berlin", "Current")]


def test_the_cache_stays_within_its_budget(backend: Backend) -> None:
    engine = backend.open(cache_claims=50)
    engine.ingest_many([request(i, f"s{i}", "p") for i in range(120)])
    for i in range(120):
        put(engine, i, f"t{i}", "p")
    lines, claims = engine.lines.stats()
    assert claims <= 50 and lines <= 50
    assert engine.query_memory(AGENT, "s0", "p").value == 0  # an evicted line reads again
    assert engine.lines.stats()[1] <= 50
