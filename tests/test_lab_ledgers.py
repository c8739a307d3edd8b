"""Ledgers as data frames and DuckDB tables, on every backend (mempill.lab.ledgers)."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pandas.testing as pdt
import pytest
from conftest import START, Backend, RecordingOracle
from matplotlib.image import imread

import mempill
from mempill import Engine, SeededIds, SteppingClock
from mempill.lab import ledgers, plots, sqlviews
from mempill.lab.servers import fresh_schema
from mempill.openers import open_postgres


def populate(engine: Engine) -> dict[str, str]:
    """A small history on two agents touching every table; returns named claim refs."""
    refs: dict[str, str] = {}
    refs["lisbon"] = engine.remember("alice", "alice", "city", "Lisbon").claim_ref
    refs["porto"] = engine.remember("alice", "alice", "city", "Porto").claim_ref  # contested
    refs["acme"] = engine.remember(
        "alice", "alice", "employer", "Acme", valid_from="0001", valid_until="2022"
    ).claim_ref
    refs["globex"] = engine.remember(
        "alice", "alice", "employer", "Globex", valid_from="2022"
    ).claim_ref
    engine.end("alice", refs["globex"], "9999-12-31T23:59:59.999999Z")
    refs["doubt"] = engine.remember("bob", "bob", "pet", "cat", confidence=0.1).claim_ref
    refs["dog"] = engine.remember("bob", "bob", "pet", "dog", criticality="High").claim_ref
    engine.invalidate("bob", refs["dog"])
    refs["fish"] = engine.remember("bob", "bob", "diet", {"fish": [1, 2.5]}).claim_ref
    return refs


def deterministic_engine(opener: object, *args: object, **options: object) -> Engine:
    clock = SteppingClock(START, timedelta(seconds=1))
    options.setdefault("record_write_stats", True)  # the lab's frames include write_stats
    engine: Engine = opener(*args, clock=clock, ids=SeededIds(11), **options)  # type: ignore[operator]
    return engine


@pytest.fixture
def populated(backend: Backend, oracle: RecordingOracle) -> tuple[Engine, dict[str, str]]:
    engine = backend.open(oracle=oracle, record_write_stats=True)
    refs = populate(engine)
    engine.remember("alice", "alice", "city", "Braga")  # queued for the oracle: a pending row
    return engine, refs


def test_frames_have_typed_columns(populated: tuple[Engine, dict[str, str]]) -> None:
    engine, _ = populated
    frames = ledgers.load_all(engine)
    assert set(frames) == {"ledger", "claims", "assertions", "pending_adjudications", "write_stats"}
    ledger, claims = frames["ledger"], frames["claims"]
    assert str(ledger["recorded_at"].dtype) == "datetime64[us, UTC]"
    assert str(claims["valid_from"].dtype) == "datetime64[us, UTC]"
    assert ledger["disposition"].dtype == "category"
    assert list(ledger["disposition"].cat.categories) == [d.value for d in mempill.Disposition]
    assert claims["criticality"].cat.ordered
    assert list(claims["criticality"].cat.categories) == ["Low", "Medium", "High", "Critical"]
    assert str(claims["derivation_depth"].dtype) == "Int64"
    assert str(frames["write_stats"]["first_seq"].dtype) == "Int64"
    assert frames["pending_adjudications"]["notified"].dtype == bool
    assert str(ledger["route"].dtype) == "string"


def test_frames_match_the_engine(populated: tuple[Engine, dict[str, str]]) -> None:
    """Every ledger entry, claim, pending row and write stat the engine reports is loaded."""
    engine, refs = populated
    frames = ledgers.load_all(engine)
    for agent in ("alice", "bob"):
        audit = engine.query_audit(agent, limit=1000).entries
        rows = frames["ledger"][frames["ledger"]["agent_id"] == agent]
        assert list(rows["stream_seq"]) == [e.stream_seq for e in audit]
        assert list(rows["disposition"].astype(str)) == [e.disposition.value for e in audit]
        assert [t.to_pydatetime() for t in rows["recorded_at"]] == [e.recorded_at for e in audit]
        stats = frames["write_stats"][frames["write_stats"]["agent_id"] == agent]
        assert list(stats["last_seq"]) == [s.last_seq for s in engine.write_stats(agent)]
    claims = frames["claims"].set_index("claim_ref")
    assert claims.loc[refs["fish"], "value"] == '{"fish":[1,2.5]}'  # canonical JSON text
    assert claims.loc[refs["acme"], "valid_from"] == pd.Timestamp("0001-01-01", tz="UTC")
    bound = frames["assertions"].set_index("claim_ref").loc[refs["globex"], "bound_at"]
    assert bound == pd.Timestamp("9999-12-31 23:59:59.999999", tz="UTC")
    pending = engine.list_pending(status=None)
    assert list(frames["pending_adjudications"]["handle_id"]) == [p.handle_id for p in pending]
    assert set(frames["assertions"]["kind"].astype(str)) == {"Bound", "Invalidate"}


def test_filters_select_agents_and_a_half_open_tx_range(
    populated: tuple[Engine, dict[str, str]],
) -> None:
    engine, _ = populated
    everything = ledgers.ledger(engine)
    only_bob = ledgers.ledger(engine, agents="bob")
    assert set(only_bob["agent_id"]) == {"bob"}
    assert len(only_bob) == (everything["agent_id"] == "bob").sum()
    times = sorted(set(everything["recorded_at"]))
    start, end = times[2], times[5]
    window = ledgers.ledger(engine, tx_from=start.to_pydatetime(), tx_until=end.to_pydatetime())
    inside = everything[(everything["recorded_at"] >= start) & (everything["recorded_at"] < end)]
    pdt.assert_frame_equal(window, inside.reset_index(drop=True))
    assert set(window["recorded_at"]) == set(times[2:5])
    claims = ledgers.claims(engine, agents=["alice"], tx_until=end.to_pydatetime())
    assert (claims["tx_time"] < end).all() and set(claims["agent_id"]) == {"alice"}
    assert ledgers.ledger(engine, agents=[]).empty


def test_bad_filters_and_tables_are_refused(populated: tuple[Engine, dict[str, str]]) -> None:
    engine, _ = populated
    with pytest.raises(mempill.ValidationError, match="agent_id"):
        ledgers.ledger(engine, agents="../etc")
    with pytest.raises(ValueError, match="tx_until"):
        ledgers.ledger(engine, tx_from="2026-02", tx_until="2026-01")
    with pytest.raises(mempill.ValidationError, match="tx_from"):
        ledgers.ledger(engine, tx_from="last tuesday")
    with pytest.raises(ValueError, match="unknown table"):
        ledgers.load(engine, "edges")


def test_duckdb_sees_the_frames(populated: tuple[Engine, dict[str, str]]) -> None:
    engine, _ = populated
    con = ledgers.connect(engine)
    counted = dict(con.sql("select disposition, count(*) from ledger group by all").fetchall())
    expected = ledgers.ledger(engine)["disposition"].astype(str).value_counts().to_dict()
    assert counted == expected
    lines = con.sql("select agent_id, subject, predicate, status from belief_at(NULL, NULL)")
    assert ("alice", "alice", "city", "Contested") in lines.fetchall()  # the SQL views
    con.close()
    bare = ledgers.connect(engine, views=False)
    assert not bare.sql("select * from duckdb_views() where view_name = 'line_log'").fetchall()
    bare.close()
    ledgers.connect(engine, default=True, agents="bob")
    try:
        relation = duckdb.sql("select distinct agent_id from ledger")
        assert relation is not None and relation.fetchall() == [("bob",)]
        assert duckdb.sql("select count(*) from line_log").fetchall() == [
            (len(ledgers.ledger(engine, agents="bob")),)
        ]
    finally:
        sqlviews.drop(duckdb.default_connection())
        for name in ledgers.TABLES:
            duckdb.default_connection().unregister(name)


@pytest.fixture
def cross_backend(postgres_server: str) -> Iterator[tuple[Engine, Engine, str]]:
    """The same history on SQLite (in memory) and PostgreSQL, deterministic clock and ids."""
    with fresh_schema(postgres_server) as dsn:
        sqlite = deterministic_engine(mempill.open_default_in_memory)
        postgres = deterministic_engine(open_postgres, dsn)
        populate(sqlite)
        populate(postgres)
        try:
            yield sqlite, postgres, dsn
        finally:
            sqlite.close()
            postgres.close()


def test_sqlite_and_postgres_load_identical_frames(
    cross_backend: tuple[Engine, Engine, str],
) -> None:
    sqlite, postgres, dsn = cross_backend
    left, right = ledgers.load_all(sqlite), ledgers.load_all(postgres)
    from_conninfo = ledgers.load_all(dsn)
    for name in ("ledger", "claims", "assertions", "pending_adjudications"):
        pdt.assert_frame_equal(left[name], right[name])
        pdt.assert_frame_equal(right[name], from_conninfo[name])
    structure = ["agent_id", "first_seq", "last_seq"]
    pdt.assert_frame_equal(
        left["write_stats"][structure].sort_values(structure).reset_index(drop=True),
        right["write_stats"][structure].sort_values(structure).reset_index(drop=True),
    )
    assert set(right["write_stats"]["backend"].astype(str)) == {"postgres"}
    digests = ledgers.digests({"sqlite": sqlite, "postgres": postgres})
    assert list(digests["agent_id"]) == ["alice", "bob"] and digests["equal"].all()


def test_digests_notice_a_different_ledger(cross_backend: tuple[Engine, Engine, str]) -> None:
    sqlite, postgres, _ = cross_backend
    postgres.remember("bob", "bob", "pet", "hamster")
    digests = ledgers.digests({"sqlite": sqlite, "postgres": postgres}).set_index("agent_id")
    assert bool(digests.loc["alice", "equal"]) and not bool(digests.loc["bob", "equal"])
    with pytest.raises(ValueError, match="at least one engine"):
        ledgers.digests({})


@pytest.mark.sqlite_only
def test_sqlite_paths_load_like_the_engine(tmp_path: Path) -> None:
    """A directory of agent files, and a single-file store, read by path (read-only)."""
    with deterministic_engine(mempill.open_directory, tmp_path / "agents") as engine:
        populate(engine)
        from_engine = ledgers.load_all(engine)
        from_directory = ledgers.load_all(tmp_path / "agents")
        only_bob = ledgers.claims(str(tmp_path / "agents"), agents="bob")
    for name in ("ledger", "claims", "assertions"):
        pdt.assert_frame_equal(from_engine[name], from_directory[name])
    assert set(only_bob["agent_id"]) == {"bob"}
    with deterministic_engine(mempill.open_default, tmp_path / "one.db") as single:
        single.remember("carol", "carol", "city", "Rome")
    from_file = ledgers.ledger(tmp_path / "one.db")
    assert list(from_file["agent_id"]) == ["carol"]


def test_sources_that_are_not_stores_fail_clearly(tmp_path: Path, postgres_server: str) -> None:
    with pytest.raises(FileNotFoundError, match="no SQLite store"):
        ledgers.ledger(tmp_path / "missing")
    other = tmp_path / "other.db"
    sqlite3.connect(other).close()
    with pytest.raises(ValueError, match="not a mempill store"):
        ledgers.ledger(other)
    with fresh_schema(postgres_server) as empty, pytest.raises(ValueError, match="not a mempill"):
        ledgers.ledger(empty)
    with pytest.raises(TypeError, match="unsupported store"):
        ledgers.ledger(object())  # type: ignore[arg-type]


def test_is_conninfo_tells_dsns_from_paths() -> None:
    assert ledgers.is_conninfo("postgresql://u@h/db")
    assert ledgers.is_conninfo("host=localhost dbname=test")
    assert not ledgers.is_conninfo("/var/lib/agents")
    assert not ledgers.is_conninfo("agents/host=1.db")


# ---------------------------------------------------------------- the bitemporal timeline


def story(engine: Engine) -> dict[str, str]:
    acme = engine.remember("a", "bob", "job", "Acme", valid_from="2019", valid_until="2022")
    globex = engine.remember("a", "bob", "job", "Globex", valid_from="2022")
    rumour = engine.remember("a", "bob", "job", "Initech")  # untrusted: contests both
    engine.end("a", globex.claim_ref, "2024")
    engine.invalidate("a", rumour.claim_ref)
    return {"acme": acme.claim_ref, "globex": globex.claim_ref, "rumour": rumour.claim_ref}


def test_bitemporal_spans_follow_the_fold(backend: Backend) -> None:
    engine = backend.open()
    refs = story(engine)
    spans = plots.bitemporal_spans(engine, "a", "bob", "job")
    globex = spans[spans["claim_ref"] == refs["globex"]].reset_index(drop=True)
    assert globex["valid_from"].tolist() == [pd.Timestamp("2022-01-01", tz="UTC")] * len(globex)
    assert pd.isna(globex["valid_until"].iloc[0])  # open until the bound arrives
    assert globex["valid_until"].iloc[-1] == pd.Timestamp("2024-01-01", tz="UTC")
    assert globex["state"].iloc[-1] == "Superseded" and pd.isna(globex["tx_until"].iloc[-1])
    assert (globex["tx_from"].iloc[1:].to_numpy() == globex["tx_until"].iloc[:-1].to_numpy()).all()
    rumour = spans[spans["claim_ref"] == refs["rumour"]]
    assert rumour["valid_from"].isna().all() and rumour["valid_until"].isna().all()
    assert list(rumour["state"].astype(str)) == ["Contested", "Contested", "Invalidated"]
    acme = spans[spans["claim_ref"] == refs["acme"]]
    assert len(acme) == 1 and acme["state"].iloc[0] == "CommittedCheap"  # never changed


def test_bitemporal_spans_are_equal_across_backends(postgres_server: str) -> None:
    with fresh_schema(postgres_server) as dsn, deterministic_engine(open_postgres, dsn) as postgres:
        story(postgres)
        on_postgres = plots.bitemporal_spans(postgres, "a", "bob", "job")
    with deterministic_engine(mempill.open_default_in_memory) as sqlite:
        story(sqlite)
        on_sqlite = plots.bitemporal_spans(sqlite, "a", "bob", "job")
    pdt.assert_frame_equal(on_sqlite, on_postgres)


def assert_image(path: Path) -> None:
    """A saved figure is a real, non-blank image."""
    assert path.stat().st_size > 1000
    pixels = imread(path)
    assert pixels.ndim == 3 and pixels.shape[0] > 100 and pixels.shape[1] > 100
    assert len(np.unique(pixels.reshape(-1, pixels.shape[2]), axis=0)) > 10


@pytest.mark.sqlite_only
def test_bitemporal_timeline_is_a_labelled_figure(tmp_path: Path) -> None:
    with deterministic_engine(mempill.open_default_in_memory) as engine:
        story(engine)
        segments = plots.bitemporal_segments(engine, "a", "bob", "job")
        events = plots.line_events(engine, "a", "bob", "job")
    figure = plots.bitemporal_timeline(segments, events, title="bob / job")
    ax = figure.axes[0]
    assert figure.get_suptitle() == "bob / job"
    assert "valid time" in ax.get_xlabel() and "transaction time" in ax.get_ylabel()
    figure.savefig(tmp_path / "timeline.png")
    assert_image(tmp_path / "timeline.png")
    with pytest.raises(ValueError, match="no segments"):
        plots.bitemporal_timeline(segments.iloc[0:0])


def test_times_keep_microseconds_and_the_full_year_range() -> None:
    moments = [datetime(1, 1, 1, tzinfo=UTC), None, "2026-03-04T05:06:07.000008Z"]
    series = ledgers.times(moments)
    assert str(series.dtype) == "datetime64[us, UTC]"
    assert series.iloc[0].year == 1 and pd.isna(series.iloc[1])
    assert series.iloc[2].microsecond == 8
