"""Round trips to PostgreSQL per call (issue 14), counted from libpq's own protocol trace.

A write is pipelined: BEGIN, the scope and the agent's advisory lock travel with the
write's first read (the head and the line's version), the inserts with COMMIT; a line
the engine has not cached costs one more (its rows). A point query is one message: its
snapshot, scope, the line's version, the rows the cache lacks and COMMIT.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from pghelpers import POSTGRES_ONLY, START, fetch, request

import mempill
from mempill import Disposition, SeededIds, SteppingClock
from mempill.lab.pgtrace import Trace, round_trips, traced_store
from mempill.lab.servers import fresh_schema
from mempill.openers import open_postgres

pytestmark = POSTGRES_ONLY


@pytest.fixture
def dsn(postgres_server: str) -> Iterator[str]:
    with fresh_schema(postgres_server) as schema_dsn:
        yield schema_dsn


_seeds = iter(range(1, 1_000))


def one_connection(dsn: str, **options: object) -> mempill.Engine:
    """An engine whose pool holds one connection (traced), with ids of its own."""
    return open_postgres(
        dsn,
        pool_min_size=1,
        pool_max_size=1,
        clock=SteppingClock(START),
        ids=SeededIds(next(_seeds)),
        **options,  # type: ignore[arg-type]
    )


def test_the_counter_counts_waits_for_the_server() -> None:
    assert round_trips([]) == 0
    assert round_trips([("F", "Query"), ("B", "CommandComplete"), ("B", "ReadyForQuery")]) == 1
    pipelined = [("F", "Parse"), ("F", "Execute"), ("F", "Flush"), ("B", "DataRow")]
    assert round_trips([*pipelined, ("F", "Sync"), ("B", "ReadyForQuery")]) == 2
    trace = Trace(['F\t10\tQuery\t "BEGIN; SELECT 1; COMMIT"', "B\t5\tReadyForQuery\t I"])
    assert trace.round_trips == 1
    assert trace.statements() == 3


def gist(belief: mempill.Projection) -> tuple[object, ...]:
    return belief.status, belief.value, len(belief.alternatives), len(belief.pending)


def test_an_ingest_takes_two_round_trips_and_three_on_a_line_not_cached(dsn: str) -> None:
    with one_connection(dsn) as writer, one_connection(dsn) as other:
        other.ingest(request("a", "elsewhere", 0))  # a line `writer` never read
        steps = (("new", 2), ("new", 2), ("elsewhere", 3), ("elsewhere", 2))
        for value, (subject, trips) in enumerate(steps, start=1):
            with traced_store(writer) as trace:
                receipt = writer.ingest(request("a", subject, value))
            assert receipt.disposition is not Disposition.REJECTED
            assert trace.round_trips == trips, (subject, trace.lines)
    values = fetch(dsn, "SELECT subject, count(*) FROM claims GROUP BY 1 ORDER BY 1")
    assert values == [("elsewhere", 3), ("new", 2)]


def test_a_point_query_is_one_round_trip_cached_or_not(dsn: str) -> None:
    with one_connection(dsn) as writer, one_connection(dsn) as reader:
        writer.ingest(request("a", "carol", "Rome"))
        writer.ingest(request("a", "carol", "Paris"))
        for _ in range(2):  # first not cached, then cached
            with traced_store(reader) as trace:
                belief = reader.query_memory("a", "carol", "p")
            assert trace.round_trips == 1
            assert gist(belief) == gist(writer.query_memory("a", "carol", "p"))
        writer.ingest(request("a", "carol", "Oslo"))  # the reader's cache is behind now
        with traced_store(reader) as trace:
            belief = reader.query_memory("a", "carol", "p")
        assert trace.round_trips == 1
        assert gist(belief) == gist(writer.query_memory("a", "carol", "p"))
        with traced_store(reader) as trace:
            absent = reader.query_memory("a", "nobody", "p")
        assert trace.round_trips == 1 and absent.primary is None


def test_a_batch_is_three_round_trips_whatever_its_size(dsn: str) -> None:
    with one_connection(dsn) as engine:
        for size in (3, 30):
            batch = [request("a", f"s{size}-{i}", i) for i in range(size)]
            with traced_store(engine) as trace:
                receipts = engine.ingest_many(batch)
            assert all(r.disposition is Disposition.COMMITTED_CHEAP for r in receipts)
            assert trace.round_trips == 3, size


def test_measured_lock_waits_cost_one_round_trip_more(dsn: str) -> None:
    with one_connection(dsn, record_write_stats=True) as engine:
        engine.ingest(request("a", "s", 0))
        with traced_store(engine) as trace:
            engine.ingest(request("a", "s", 1))
        assert trace.round_trips == 3  # the try-lock is read before the head
        assert len(engine.write_stats("a")) == 2


TRICKY_VALUES = [
    0.1,
    1e-300,
    -2.5e300,
    2**62,
    "quote ' double \" backslash \\ percent %s %% dollar $1",
    "naïve café — 東京 🙂 e\u0301",
    {"nested": [1, 2.5, None, True, "x"], "": "empty key"},
    [],
    None,
]


def test_many_rows_as_one_parameter_store_what_single_rows_store(dsn: str) -> None:
    """A batch's rows go to the server as one JSON parameter (more than one row of a table),
    a single ingest's as literals: the stored rows agree, to the microsecond."""
    with one_connection(dsn) as engine:
        window = {"valid_from": "2020-01-02T03:04:05.123456Z", "valid_until": "2021-06-07"}
        for agent in ("single", "batch"):
            requests = [
                {
                    "agent_id": agent,
                    "subject": f"s{i} ünï'code",
                    "predicate": "p",
                    "value": value,
                    "value_confidence": 0.3 + i / 100,
                    "valid_time": window,
                }
                for i, value in enumerate(TRICKY_VALUES)
            ]
            if agent == "single":
                receipts = tuple(engine.ingest(r) for r in requests)
            else:
                receipts = engine.ingest_many(requests)
            assert all(r.disposition is Disposition.COMMITTED_CHEAP for r in receipts)
        columns = "subject, value, value_confidence, valid_from, valid_until, stream_seq"
        rows = {
            agent: fetch(
                dsn,
                f"SELECT {columns} FROM claims WHERE agent_id = %s ORDER BY stream_seq",
                (agent,),
            )
            for agent in ("single", "batch")
        }
        assert rows["single"] == rows["batch"]
        assert len(rows["batch"]) == len(TRICKY_VALUES)
        assert rows["batch"][0][3].microsecond == 123456
