"""Issue 16: snapshots, timelines and the changes feed, checked against the point queries.

The property tests drive random claim streams (the operations of `test_properties.py`) on
every selected backend and then hold each new call to the old ones it must agree with:
`query_memory` at any instant inside a timeline segment gives that segment's belief; a
query as of a snapshot gives, later, exactly what it gave when the snapshot was taken; a
changes feed's "before" and "after" are the point queries at its window's edges, and its
pages put together are the whole feed.
"""

from __future__ import annotations

import itertools
from datetime import timedelta
from typing import Any

import hypothesis.strategies as st
import pytest
from conftest import Backend
from hypothesis import given
from support import put
from test_properties import OPERATION, PROFILE, apply

from mempill import Engine, ValidationError
from mempill.core.canonical import canonical_json
from mempill.core.model import Projection, plain
from mempill.core.travel import Segment, Snapshot, token

_agents = itertools.count()
EDGES = st.sampled_from([None, "2009", "2011", "2014", "2017", "2030"])


def belief(p: Projection | Segment) -> str:
    return canonical_json(plain([p.status, p.value, p.candidates]))


def probes(segment: Segment) -> list[Any]:
    """Instants inside a segment: its start, its last microsecond, and between."""
    start, end = segment.valid_from, segment.valid_until
    found = []
    if start is not None:
        found.append(start)
    if end is not None:
        found.append(end - timedelta(microseconds=1))
    if start is not None and end is not None:
        found.append(start + (end - start) / 2)
    if start is None and end is not None:
        found.append(end - timedelta(days=400))
    if end is None and start is not None:
        found.append(start + timedelta(days=400))
    if start is None and end is None:
        found.append("2020-06-01")
    return found


@PROFILE
@given(
    operations=st.lists(OPERATION, min_size=1, max_size=20),
    window=st.tuples(EDGES, EDGES),
)
def test_query_memory_inside_each_segment_gives_its_belief(
    backend: Backend, operations: list[tuple[str, Any]], window: tuple[Any, Any]
) -> None:
    engine = backend.open()
    agent = f"tl-{next(_agents)}"
    refs: list[str] = []
    snapshots = []
    for op in operations:
        apply(engine, agent, op, refs)
        snapshots.append(engine.snapshot(agent))
    start, end = window
    if start is not None and end is not None and start >= end:
        with pytest.raises(ValidationError):
            engine.query_timeline(agent, "s", "p", valid_from=start, valid_until=end)
        return
    for as_of in (snapshots[-1], snapshots[len(snapshots) // 2]):
        timeline = engine.query_timeline(
            agent, "s", "p", valid_from=start, valid_until=end, as_of=as_of
        )
        segments = timeline.segments
        assert segments, "a range always has at least one segment"
        assert segments[0].valid_from == timeline.valid_from
        assert segments[-1].valid_until == timeline.valid_until
        for left, right in itertools.pairwise(segments):
            assert left.valid_until == right.valid_from, "segments tile the range"
            assert belief(left) != belief(right), "adjacent equal segments are merged"
        for segment in segments:
            for instant in probes(segment):
                point = engine.query_memory(agent, "s", "p", as_of=as_of, valid_at=instant)
                assert belief(point) == belief(segment), (segment, instant)


@PROFILE
@given(operations=st.lists(OPERATION, min_size=1, max_size=20))
def test_a_snapshot_reads_later_exactly_as_it_read_then(
    backend: Backend, operations: list[tuple[str, Any]]
) -> None:
    engine = backend.open()
    agent = f"snap-{next(_agents)}"
    refs: list[str] = []
    then: list[tuple[Snapshot, list[str]]] = []

    def reads(as_of: Any) -> list[str]:
        return [
            *(canonical_json(plain(p)) for p in engine.query_subject(agent, "s", as_of=as_of)),
            canonical_json(plain(engine.query_history(agent, "s", "p", as_of=as_of))),
            canonical_json(plain(engine.query_timeline(agent, "s", "q", as_of=as_of))),
        ]

    for op in operations:
        apply(engine, agent, op, refs)
        snap = engine.snapshot(agent)
        if snap.tx_time is not None:  # no two transactions share a tx time
            assert reads(snap) == reads(snap.tx_time), "at the head, position = time"
        then.append((snap, reads(snap)))
    for snap, seen in then:
        assert reads(snap) == seen
        assert reads(snap.token) == seen, "the token reads as the snapshot"


@PROFILE
@given(
    operations=st.lists(OPERATION, min_size=1, max_size=20),
    cut=st.integers(0, 20),
    limit=st.integers(1, 3),
)
def test_changes_are_the_point_queries_at_the_window_edges(
    backend: Backend, operations: list[tuple[str, Any]], cut: int, limit: int
) -> None:
    engine = backend.open()
    agent = f"chg-{next(_agents)}"
    refs: list[str] = []
    snapshots = [engine.snapshot(agent)]
    for op in operations:
        apply(engine, agent, op, refs)
        snapshots.append(engine.snapshot(agent))
    since = snapshots[min(cut, len(snapshots) - 1)]
    until = snapshots[-1]
    valid = "2013-06-01"  # explicit: before the first write a snapshot has no time to default to
    whole = engine.query_changes(agent, after=since, until=until, valid_at=valid, limit=10_000)
    assert whole.next_cursor is None
    window = [e for e in _audit(engine, agent) if since.stream_seq < e.stream_seq]
    assert sorted(e.stream_seq for c in whole for e in c.entries) == [
        e.stream_seq for e in window if e.subject
    ], "every entry of the window about a line is in the feed, once"
    firsts = [c.entries[0].stream_seq for c in whole]
    assert firsts == sorted(firsts), "lines in the order the window first touched them"
    for change in whole:
        for side, snap in ((change.before, since), (change.after, until)):
            point = engine.query_memory(
                agent, change.subject, change.predicate, as_of=snap, valid_at=valid
            )
            assert canonical_json(plain(side)) == canonical_json(plain(point))
    paged, cursor = [], None
    while True:
        page = engine.query_changes(
            agent, after=since, until=until, valid_at=valid, limit=limit, cursor=cursor
        )
        assert len(page) <= limit
        paged.extend(page.changes)
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
    assert canonical_json(plain(paged)) == canonical_json(plain(whole.changes))


def _audit(engine: Engine, agent: str) -> list[Any]:
    return list(engine.query_audit(agent, limit=100_000).entries)


def test_a_token_names_a_position_inside_one_transaction(engine: Engine) -> None:
    """end_fact bounds every claim of the belief in one transaction: its entries share one
    tx time, and only a position tells them apart."""
    for _ in range(2):  # a corroborated belief: two claims
        put(engine, "baker", "s", "job", agent_id="a", valid_from="2010")
    engine.end_fact("a", "s", "job", "2020")
    head = engine.snapshot("a")
    entries = engine.query_audit("a").entries
    assert [e.stream_seq for e in entries] == [1, 2, 3, 4]
    assert entries[2].recorded_at == entries[3].recorded_at == head.tx_time
    inside = Snapshot(agent_id="a", stream_seq=3, tx_time=head.tx_time)
    for as_of in (inside, token(inside)):
        assert engine.query_memory("a", "s", "job", as_of=as_of, valid_at="2022").value == "baker"
    for as_of in (head, head.tx_time):
        late = engine.query_memory("a", "s", "job", as_of=as_of, valid_at="2022")
        assert late.status.value == "NoBelief"


def test_snapshot_tokens_are_checked(engine: Engine) -> None:
    put(engine, "Paris", agent_id="a")
    snap = engine.snapshot("a")
    assert str(snap) == snap.token and snap.token.startswith("snapshot:1@")
    assert snap.to_dict()["token"] == snap.token
    for bad in (
        snap.token.replace("#", "#0"),  # malformed
        snap.token[:-12] + "0" * 12,  # another agent's tag
        "snapshot:",
        Snapshot(agent_id="b", stream_seq=1, tx_time=snap.tx_time),
    ):
        with pytest.raises(ValidationError):
            engine.query_memory("a", "user", "city", as_of=bad)
    with pytest.raises(ValidationError):
        engine.query_changes("a", after="2026-01-01")  # `after` takes a snapshot only
    with pytest.raises(ValidationError):
        engine.query_changes("a", limit=0)
