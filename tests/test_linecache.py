"""The line cache never shows uncommitted rows and forgets a rolled-back transaction."""

from __future__ import annotations

import threading
from datetime import timedelta
from typing import Any

import pytest
from conftest import START, Backend
from support import AGENT, history_rows, put, request

from mempill import (
    Cardinality,
    Criticality,
    Disposition,
    Engine,
    EngineConfig,
    EventKind,
    LedgerEntry,
    Projection,
    Provenance,
)
from mempill.core import parse
from mempill.core.linestate import LineState
from mempill.core.model import ClaimRow, LineRows
from mempill.core.travel import Cut
from mempill.engine.batch import Batch
from mempill.engine.ingest import ingest
from mempill.engine.linecache import LineCache


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


# ---------------------------------------------------------------- the contract, unit by unit


def rows_for(line: str, seqs: range, refs: dict[int, str] | None = None) -> LineRows:
    """Claim rows with one ClaimCommitted entry each, on the line `line`, at the given seqs."""
    claims, entries = [], []
    for seq in seqs:
        ref = (refs or {}).get(seq, f"00000000-0000-4000-8000-{seq:012d}")
        claims.append(
            ClaimRow(
                agent_id=AGENT, claim_ref=ref, subject=line, predicate="p", value=f'"{seq}"',
                cardinality=Cardinality.FUNCTIONAL, provenance=Provenance.USER_ASSERTED,
                value_confidence=1.0, valid_time_confidence=0.0, criticality=Criticality.MEDIUM,
                valid_from=None, valid_from_granularity=None, valid_until=None,
                valid_until_granularity=None, tx_time=START + timedelta(seconds=seq),
                stream_seq=seq, derived_from=(), derivation_depth=0, external_anchor=None,
            )
        )  # fmt: skip
        entries.append(
            LedgerEntry(
                agent_id=AGENT, stream_seq=seq, entry_id=f"e{seq}", claim_ref=ref,
                event_kind=EventKind.CLAIM_COMMITTED, disposition=Disposition.COMMITTED_CHEAP,
                rationale={}, recorded_at=START + timedelta(seconds=seq), subject=line,
                predicate="p",
            )
        )  # fmt: skip
    return LineRows(claims=tuple(claims), entries=tuple(entries))


def key(line: str) -> tuple[str, str, str]:
    return (AGENT, line, "p")


def test_a_state_applies_only_rows_newer_than_its_version() -> None:
    state = LineState(EngineConfig())
    state.apply(rows_for("a", range(1, 4)))
    assert state.version == 3 and state.size == 3
    state.apply(rows_for("a", range(1, 5)))  # 1..3 again: only 4 is new
    assert state.version == 4 and state.size == 4
    assert [len(state.entries[r]) for r in state.claims] == [1, 1, 1, 1]  # no entry twice
    assert [v.value for v in state.views()] == ['"1"', '"2"', '"3"', '"4"']  # stream order
    assert state.has_live() and state.index.live.keys() == state.claims.keys()
    assert state.rows(START + timedelta(seconds=2)).claims == rows_for("a", range(1, 3)).claims
    assert len(state.rows().entries) == 4


def test_refreshing_fetches_only_what_is_newer_and_never_a_dirty_state() -> None:
    cache = LineCache(EngineConfig(), max_claims=100)
    asked: list[int] = []

    def fetch(after: int) -> LineRows:
        asked.append(after)
        return rows_for("a", range(after + 1, 4))

    state = cache.refreshed(key("a"), 3, fetch)
    assert (asked, state.version) == ([0], 3)
    assert cache.refreshed(key("a"), 3, fetch) is state and asked == [0]  # current: no fetch
    assert cache.refreshed(key("a"), 2, fetch) is state and asked == [0]  # older asks: no fetch
    cache.mark_dirty(state)
    assert cache.refreshed(key("a"), 9, fetch) is state and asked == [0]  # a write holds it
    assert cache.rows(state, Cut(at=START)) is None
    with cache.reading(state) as held:
        assert held is None
    cache.publish(key("a"), state)
    assert not state.dirty and cache.rows(state, Cut(at=START)) is not None
    with cache.reading(state) as held:
        assert held is state
    assert cache.stats() == (1, 3)


def test_publishing_replaces_an_older_state_and_keeps_a_newer_one() -> None:
    cache = LineCache(EngineConfig(), max_claims=100)
    old = cache.refreshed(key("a"), 2, lambda after: rows_for("a", range(after + 1, 3)))
    newer = LineState(EngineConfig())
    newer.apply(rows_for("a", range(1, 5)))
    cache.publish(key("a"), newer)
    assert cache.refreshed(key("a"), 4, lambda after: LineRows()) is newer
    assert cache.stats() == (1, 4) and old.accounted == 0
    stale = LineState(EngineConfig())
    stale.apply(rows_for("a", range(1, 4)))
    cache.publish(key("a"), stale)  # older than what is cached: ignored
    assert cache.refreshed(key("a"), 4, lambda after: LineRows()) is newer
    assert cache.stats() == (1, 4)
    same = LineState(EngineConfig())
    same.apply(rows_for("a", range(1, 5)))
    cache.publish(key("a"), same)  # as new as the cached one: the cached one stays
    assert cache.refreshed(key("a"), 4, lambda after: LineRows()) is newer


def test_forgetting_and_the_claim_budget() -> None:
    cache = LineCache(EngineConfig(), max_claims=5)
    for line, count in (("a", 2), ("b", 2)):
        cache.refreshed(
            key(line),
            count,
            lambda after, line=line, count=count: rows_for(line, range(after + 1, count + 1)),
        )
    assert cache.stats() == (2, 4)
    cache.refreshed(key("a"), 2, lambda after: LineRows())  # touch a: b is now the oldest
    cache.refreshed(key("c"), 2, lambda after: rows_for("c", range(after + 1, 3)))
    assert cache.stats() == (2, 4)  # 6 > 5: the least recently used line (b) went
    fetched: list[int] = []
    cache.refreshed(
        key("b"), 2, lambda after: (fetched.append(after), rows_for("b", range(1, 3)))[1]
    )
    assert fetched == [0]  # b had to be read again, and a (now the oldest) went
    assert cache.stats() == (2, 4)
    cache.forget([key("b"), key("nope")])
    assert cache.stats() == (1, 2)  # forgetting b gave its claims back
    huge = LineCache(EngineConfig(), max_claims=1)
    huge.refreshed(key("x"), 3, lambda after: rows_for("x", range(1, 4)))
    assert huge.stats() == (1, 3)  # one line over budget stays: it is being read


def test_forgetting_gives_back_exactly_the_claims_a_line_held() -> None:
    cache = LineCache(EngineConfig(), max_claims=100)
    cache.refreshed(key("big"), 3, lambda after: rows_for("big", range(after + 1, 4)))
    small = cache.refreshed(key("small"), 1, lambda after: rows_for("small", range(after + 1, 2)))
    assert cache.stats() == (2, 4)
    cache.forget([key("small")])
    assert cache.stats() == (1, 3) and small.accounted == 0
    cache.publish(key("small"), small)  # the same state again: counted afresh, once
    assert cache.stats() == (2, 4)


def test_a_point_query_whose_cached_line_is_dropped_meanwhile_reads_nothing_under_its_lock(
    engine: Engine,
) -> None:
    """`query_memory` reads the rows after the version its cache held; when that state is
    dropped (evicted, erased) while the read is on its way, the query folds a whole
    snapshot of the line instead — read with no line state's lock held (a read under it
    could wait for a writer that waits for the lock)."""
    put(engine, "Berlin")
    assert engine.query_memory(AGENT, "user", "city").value == "Berlin"  # cached now
    put(engine, "Paris")  # the cached state is one version behind
    expected = engine.query_memory(AGENT, "user", "city")
    put(engine, "Rome")
    store: Any = engine.runner.store
    real = store.read_line
    reads: list[tuple[int, bool]] = []
    key = (AGENT, "user", "city")

    def read_line(agent: str, subject: str, predicate: str, after: int) -> Any:
        locked = any(state.lock.locked() for state in engine.runner.lines._lines.values())
        reads.append((after, locked))
        found = real(agent, subject, predicate, after)
        engine.runner.lines.forget([key])  # dropped while the read was on its way
        return found

    store.read_line = read_line
    try:
        belief = engine.query_memory(AGENT, "user", "city")
    finally:
        del store.read_line
    assert reads[0][0] > 0 and reads[-1][0] == 0  # a delta first, then the whole line
    assert not any(locked for _, locked in reads)
    again = engine.query_memory(AGENT, "user", "city")  # cached afresh, in the usual way
    assert (belief.status, belief.value) == (again.status, again.value)
    assert len(belief.alternatives) == len(again.alternatives) > len(expected.alternatives)
