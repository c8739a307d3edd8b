"""The SQL views over loaded ledgers (mempill.lab.sqlviews): the fold in SQL answers like
the engine, and the summaries agree with the rows they summarise."""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pytest
from conftest import START, Backend
from test_lab_ledgers import assert_image

import mempill
from mempill import Engine
from mempill.core.config import EngineConfig
from mempill.lab import ledgers, sqlcheck, sqlviews, storeplots, workload
from mempill.lab.backends import SINGLE_FILE, open_engine
from mempill.streams import LabOracle, Session, read_stream

ROOT = Path(__file__).resolve().parents[1]
STREAMS = sorted(
    p
    for p in (ROOT / "data" / "scenarios").glob("*.jsonl")
    if not p.name.endswith(".expected.jsonl")
)
DOC = ROOT / "docs" / "duckdb.md"
TRIALS = ROOT / "data" / "durability" / "trials.csv"


@pytest.fixture(scope="module")
def connections() -> Iterator[dict[EngineConfig, duckdb.DuckDBPyConnection]]:
    """One DuckDB connection per engine configuration: the macros bind the registered tables
    by name when they run, so each stream's frames replace the last ones."""
    found: dict[EngineConfig, duckdb.DuckDBPyConnection] = {}
    yield found
    for con in found.values():
        con.close()


def connection(
    cache: dict[EngineConfig, duckdb.DuckDBPyConnection],
    frames: dict[str, pd.DataFrame],
    config: EngineConfig,
) -> duckdb.DuckDBPyConnection:
    con = cache.get(config)
    if con is None:
        con = cache[config] = ledgers.register(frames, config=config)
        return con
    return ledgers.register(frames, con, views=False)


def replay(path: Path) -> Iterator[Engine]:
    """The stream on a fresh SQLite store with its header's clock, ids, oracle and config."""
    stream = read_stream(path)
    header = stream.header
    clock, oracle = header.make_clock(), header.make_oracle()
    backend = "sqlite-file" if header.topology == SINGLE_FILE else "sqlite-mem"
    with open_engine(
        backend,
        clock=clock,
        ids=header.make_ids(),
        oracle=oracle,
        config=header.make_config(),
        topology=header.topology,
    ) as engine:
        session = Session(engine, header, clock, oracle)
        for op in stream.ops:
            session.apply(op)
        yield engine


def assert_all_match(found: pd.DataFrame, what: str) -> None:
    wrong = found[~found["match"]]
    assert wrong.empty, f"{what}: {len(wrong)} of {len(found)} differ:\n{wrong.head(8).to_string()}"


@pytest.mark.sqlite_only
@pytest.mark.parametrize("path", STREAMS, ids=lambda p: p.stem)
def test_the_fold_in_sql_answers_like_the_engine_on_the_corpus(
    path: Path, connections: dict[EngineConfig, duckdb.DuckDBPyConnection]
) -> None:
    """`belief_over` = `query_memory` and `history_over` = `query_history` for every line of
    the stream, at every ledger tx time it has (up to 8) and None, and at its valid-time
    boundaries and the instants just before them (up to 10)."""
    for engine in replay(path):
        frames = ledgers.load_all(engine)
        con = connection(connections, frames, engine.config)
        points = sqlcheck.grid(frames, as_of=8, valid_at=10)
        lines = sqlcheck.lines_of(frames)
        assert_all_match(sqlcheck.compare_belief(engine, con, points, lines), "belief")
        txs = sorted({t.to_pydatetime() for t in points["as_of"].dropna()})
        assert_all_match(sqlcheck.compare_history(engine, con, txs, lines), "history")


#: Streams that between them show every belief status, no-belief reason, marker, currency
#: and history status (so the comparisons above are not vacuous).
SHOWCASE = (
    "e3_succession_out_of_order", "e2_set_member", "e4_then_oracle", "provenance_forms",
    "r1_recall_echo", "cascade_denied", "derivation_depth_anchor", "cascade_invalidated",
    "history_statuses", "cascade_via_affirm",
)  # fmt: skip


@pytest.mark.sqlite_only
def test_the_corpus_shows_every_status_reason_and_marker() -> None:
    seen: set[str] = set()
    history: set[str] = set()
    for name in SHOWCASE:
        for engine in replay(ROOT / "data" / "scenarios" / f"{name}.jsonl"):
            frames = ledgers.load_all(engine)
            con = ledgers.register(frames, config=engine.config)
            con.register("points", sqlcheck.grid(frames, as_of=8, valid_at=10))
            query = "SELECT status, reason, currency, markers FROM belief_over('points')"
            for status, reason, currency, markers in con.sql(query).fetchall():
                seen |= {status, reason, currency, *markers} - {None}
            history |= {
                s for (s,) in con.sql("SELECT status FROM history_over('points')").fetchall()
            }
            con.close()
    expected = {s.value for s in mempill.BeliefStatus} | {m.value for m in mempill.Marker}
    expected |= {c.value for c in mempill.Currency}
    expected |= {"no_claims", "window_gap", "not_yet_valid", "window_ended"}
    assert seen == expected
    assert history == {s.value for s in mempill.HistoryStatus}


@pytest.mark.sqlite_only
def test_stacked_bounds_and_reopens_fold_like_the_engine() -> None:
    """An end, an oracle's earlier bound over it, two reopens (each pops the latest bound),
    a new end: the active bound at each step, and every answer, as the engine has them."""
    oracle = LabOracle()
    with mempill.open_default_in_memory(oracle=oracle, **deterministic()) as engine:
        acme = engine.remember("x", "bob", "job", "Acme", valid_from="2019").claim_ref
        engine.end("x", acme, "2025")
        globex = engine.remember("x", "bob", "job", "Globex", valid_from="2022")
        engine.submit_adjudication(str(globex.handle_id), "Affirm", agent_id="x")
        engine.reopen("x", acme)
        engine.reopen("x", acme)
        engine.end("x", acme, "2024")
        frames = ledgers.load_all(engine)
        con = ledgers.connect(engine)
        points = sqlcheck.grid(frames, as_of=20, valid_at=20)
        lines = sqlcheck.lines_of(frames)
        assert_all_match(sqlcheck.compare_belief(engine, con, points, lines), "belief")
        txs = sorted({t.to_pydatetime() for t in points["as_of"].dropna()})
        assert_all_match(sqlcheck.compare_history(engine, con, txs, lines), "history")
    kinds = list(frames["assertions"]["kind"].astype(str))
    assert kinds == ["Bound", "Bound", "Reopen", "Reopen", "Bound"]
    moments = list(frames["assertions"]["tx_time"])
    con.register("at_each", pd.DataFrame({"as_of": moments, "valid_at": ledgers.times([None] * 5)}))
    bounds = con.sql(
        "SELECT year(active_bound) FROM claim_views_over('at_each') "
        "WHERE value = '\"Acme\"' ORDER BY as_of"
    )
    assert [b for (b,) in bounds.fetchall()] == [2025, 2022, 2025, None, 2024]


# ---------------------------------------------------------------- a generated workload


@pytest.fixture
def demo(backend: Backend) -> tuple[Engine, dict[str, int]]:
    """The generated workload on the current backend, with a burst of concurrent writers."""
    engine = backend.open(**workload.demo_options())
    counts = workload.run(engine, steps=120, seed=3)
    workload.burst(engine, writers=3, claims=4)
    return engine, dict(counts)


def test_the_fold_in_sql_answers_like_the_engine_on_a_workload(
    demo: tuple[Engine, dict[str, int]],
) -> None:
    engine, counts = demo
    assert counts["QueuedForAdjudication"] and counts["verdict Affirm"] and counts["end"]
    con = ledgers.connect(engine)  # folds with the engine's configuration
    frames = ledgers.load_all(engine)
    lines = [line for line in sqlcheck.lines_of(frames) if line[0] != "burst"]
    points = sqlcheck.grid(frames, as_of=5, valid_at=8)
    found = sqlcheck.compare_belief(engine, con, points, lines)
    assert_all_match(found, "belief")
    assert {"Resolved", "Contested", "TimingUncertain", "NoBelief"} <= set(found["sql_status"])
    txs = sorted({t.to_pydatetime() for t in points["as_of"].dropna()})
    assert_all_match(sqlcheck.compare_history(engine, con, txs, lines), "history")


@pytest.mark.sqlite_only
def test_the_comparison_catches_a_fold_with_another_configuration() -> None:
    """`connect` folds with the engine's own configuration; folding with another one (a
    stricter trust threshold, shorter ageing) gives answers the comparison rejects."""
    config = EngineConfig(valid_time_confidence_threshold=0.85)
    with mempill.open_default_in_memory(config=config, **deterministic()) as engine:
        engine.remember("a", "bob", "city", "Lisbon", valid_from="2019", valid_until="2021")
        engine.remember("a", "bob", "city", "Porto", valid_from="2021", confidence=0.8)
        frames = ledgers.load_all(engine)
        points, lines = sqlcheck.grid(frames), sqlcheck.lines_of(frames)
        assert_all_match(
            sqlcheck.compare_belief(engine, ledgers.connect(engine), points, lines), ""
        )
        other = ledgers.register(frames, config=EngineConfig(aging_unconfirmed_threshold_days=1))
        wrong = sqlcheck.compare_belief(engine, other, points, lines)
    assert not wrong["match"].all()
    differs = ", ".join(wrong.loc[~wrong["match"], "differs"])
    assert "status" in differs and "currency" in differs  # the trust threshold, the ageing


def deterministic() -> dict[str, object]:
    return {"clock": mempill.SteppingClock(START, workload.STEP), "ids": mempill.SeededIds(5)}


# ---------------------------------------------------------------- the summaries


def test_oracle_latency_joins_each_request_to_its_verdict_or_expiry(
    demo: tuple[Engine, dict[str, int]],
) -> None:
    engine, counts = demo
    latency = ledgers.connect(engine).sql("SELECT * FROM oracle_latency").df()
    pending = engine.list_pending(status=None)
    assert sorted(latency["handle_id"]) == sorted(p.handle_id for p in pending)
    outcomes = latency["outcome"].value_counts().to_dict()
    for verdict in ("Affirm", "Deny", "Unknown"):
        assert outcomes.get(verdict, 0) == counts.get(f"verdict {verdict}", 0)
    expired = sum(p.status is mempill.PendingStatus.EXPIRED for p in pending)
    assert outcomes["Expired"] == expired > 0
    open_rows = latency[latency["status"] == "pending"]
    assert open_rows["outcome"].isna().all() and open_rows["decided_at"].isna().all()
    decided = latency.dropna(subset=["decided_at"])
    assert (decided["decided_at"] > decided["queued_at"]).all()
    seconds = (decided["decided_at"] - decided["queued_at"]).dt.total_seconds()
    assert np.allclose(decided["latency_s"], seconds)
    step = workload.STEP.total_seconds()
    assert ((decided["latency_s"] % step) == 0).all()  # whole clock steps apart


def test_write_latency_is_the_quantiles_of_write_stats(demo: tuple[Engine, dict[str, int]]) -> None:
    engine, _ = demo
    stats = ledgers.write_stats(engine)
    found = ledgers.connect(engine).sql("SELECT * FROM write_latency").df()
    overall = found[found["agent_id"].isna()].iloc[0]
    assert overall["writes"] == len(stats)
    for agent, rows in [(None, stats), *stats.groupby("agent_id")]:
        row = overall if agent is None else found[found["agent_id"] == agent].iloc[0]
        for column, name in (("lock_wait_us", "lock_wait"), ("txn_us", "txn")):
            values = rows[column].to_numpy()
            expected = np.quantile(values, [0.5, 0.9, 0.99])  # linear: quantile_cont
            got = [row[f"{name}_p50_us"], row[f"{name}_p90_us"], row[f"{name}_p99_us"]]
            assert np.allclose(got, expected)
            assert row[f"{name}_max_us"] == values.max()
    assert set(found["agent_id"].dropna()) == set(stats["agent_id"])


def test_dispositions_by_counts_entries_per_bucket(demo: tuple[Engine, dict[str, int]]) -> None:
    engine, _ = demo
    ledger = ledgers.ledger(engine)
    found = ledgers.connect(engine).sql("SELECT * FROM dispositions_by('1 hour')").df()
    expected = (
        ledger.assign(
            bucket=ledger["recorded_at"].dt.floor("h"), d=ledger["disposition"].astype(str)
        )
        .groupby(["bucket", "agent_id", "d"], observed=True)
        .size()
    )
    got = found.set_index(["bucket", "agent_id", "disposition"])["entries"]
    assert got.to_dict() == expected.to_dict()
    assert got.sum() == len(ledger)


def test_contested_lines_and_the_line_log(demo: tuple[Engine, dict[str, int]]) -> None:
    engine, _ = demo
    con = ledgers.connect(engine)
    ledger = ledgers.ledger(engine)
    disposition = ledger["disposition"].astype(str)
    marked = ledger[disposition.isin(["Contested", "QueuedForAdjudication"])]
    found = con.sql("SELECT * FROM contested_lines").df()
    keys = {tuple(k) for k in found[["agent_id", "subject", "predicate"]].to_numpy()}
    assert {tuple(k) for k in marked[["agent_id", "subject", "predicate"]].to_numpy()} <= keys
    now = datetime.now(UTC)
    for row in found.itertuples():
        contested = ledger[
            (ledger["agent_id"] == row.agent_id)
            & (ledger["subject"] == row.subject)
            & (ledger["predicate"] == row.predicate)
            & (disposition == "Contested")
        ]
        assert row.contested_entries == len(contested)
        belief = engine.query_memory(row.agent_id, row.subject, row.predicate, valid_at=now)
        assert row.status_now == belief.status.value
    log = con.sql("SELECT * FROM line_log").df()
    assert len(log) == len(ledger)
    with_claims = log.dropna(subset=["claim_ref"])
    assert with_claims["value"].notna().all()


def test_durability_summary_reads_the_trials_csv() -> None:
    con = ledgers.register({})  # no store: empty ledger tables
    found = con.sql(f"SELECT * FROM durability_summary('{TRIALS}')").df()
    trials = pd.read_csv(TRIALS)
    assert found["trials"].sum() == len(trials) and found["lost"].sum() == trials["lost"].sum()
    keys = ["backend", "kind", "sync", "role"]
    expected = trials.groupby(keys).size()
    assert found.set_index(keys)["trials"].to_dict() == expected.to_dict()


def contention_recording(engine: Engine, directory: Path) -> Path:
    """A contention recording (runs.csv, transactions.csv.gz) made of a store's writes."""
    stats = ledgers.write_stats(engine)
    directory.mkdir(parents=True, exist_ok=True)
    runs = pd.DataFrame(
        {"run_id": ["r1"], "config": ["sqlite-store-lock"], "mode": ["threads"],
         "layout": ["one agent"], "writers": [3]}
    )  # fmt: skip
    runs.to_csv(directory / "runs.csv", index=False)
    transactions = stats[["lock_wait_us", "txn_us"]].assign(run_id="r1")
    transactions.to_csv(directory / "transactions.csv.gz", index=False)
    return directory


def test_contention_percentiles_join_runs_and_transactions(
    demo: tuple[Engine, dict[str, int]], tmp_path: Path
) -> None:
    engine, _ = demo
    directory = contention_recording(engine, tmp_path / "contention")
    con = ledgers.register({})
    row = con.sql(f"SELECT * FROM contention_percentiles('{directory}')").df().iloc[0]
    waits = ledgers.write_stats(engine)["lock_wait_us"].to_numpy()
    assert row["transactions"] == len(waits) and row["lock_wait_max_us"] == waits.max()
    assert np.isclose(row["lock_wait_p99_us"], np.quantile(waits, 0.99))


# ---------------------------------------------------------------- installing, the docs


@pytest.mark.sqlite_only
def test_text_instants_are_utc_whatever_the_connection_zone() -> None:
    with mempill.open_default_in_memory(**deterministic()) as engine:
        engine.remember("a", "bob", "city", "Lisbon", valid_from="2019-06-01")
        con = duckdb.connect()
        con.execute("SET TimeZone = 'Asia/Tokyo'")
        ledgers.register(ledgers.load_all(engine), con)
        before, at = (
            con.sql(f"SELECT status FROM belief_at(NULL, '{t}')").fetchall()
            for t in ("2019-05-31 23:59:59.999999", "2019-06-01")
        )
    assert before == [("NoBelief",)] and at == [("Resolved",)]


def test_drop_removes_every_object() -> None:
    with pytest.raises(ValueError, match="register the ledger tables first"):
        sqlviews.install(duckdb.connect())
    con = ledgers.register({})
    names = {o.name for o in sqlviews.OBJECTS}
    found = {r[0] for r in con.sql("SELECT function_name FROM duckdb_functions()").fetchall()}
    found |= {r[0] for r in con.sql("SELECT view_name FROM duckdb_views()").fetchall()}
    assert names <= found
    sqlviews.drop(con)
    found = {r[0] for r in con.sql("SELECT function_name FROM duckdb_functions()").fetchall()}
    found |= {r[0] for r in con.sql("SELECT view_name FROM duckdb_views()").fetchall()}
    assert not names & found
    assert list(sqlviews.catalog()["name"]) == [o.name for o in sqlviews.OBJECTS]


def test_the_docs_describe_every_object() -> None:
    text = DOC.read_text(encoding="utf-8")
    headings = set(re.findall(r"^### `(\w+)", text, re.M))
    assert headings == {o.name for o in sqlviews.OBJECTS}


@pytest.mark.sqlite_only
def test_every_sql_example_in_the_docs_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each ```sql block of docs/duckdb.md, run from a checkout-like directory (the trials
    CSV, a contention recording) on the demo store, returns rows."""
    (tmp_path / "data" / "durability").mkdir(parents=True)
    shutil.copy(TRIALS, tmp_path / "data" / "durability" / "trials.csv")
    with workload.open_demo(tmp_path / "agents") as engine:
        workload.run(engine, steps=150)
        workload.burst(engine, writers=3, claims=4)
        contention_recording(engine, tmp_path / "data" / "contention")
        con = ledgers.connect(engine)
    monkeypatch.chdir(tmp_path)
    blocks = re.findall(r"^```sql\n(.*?)^```", DOC.read_text(encoding="utf-8"), re.M | re.S)
    assert len(blocks) >= 10
    for block in blocks:
        for statement in filter(str.strip, block.split(";")):
            relation = con.sql(statement)  # None for a statement without a result (CREATE)
            assert relation is None or relation.fetchall(), f"no rows from:\n{statement}"


# ---------------------------------------------------------------- the store's figures


@pytest.mark.sqlite_only
def test_store_figures_are_labelled_or_say_why_not(tmp_path: Path) -> None:
    with workload.open_demo(tmp_path / "agents") as engine:
        workload.run(engine, steps=150)
        workload.burst(engine, writers=3, claims=4)
        con = ledgers.connect(engine)
        stats = ledgers.write_stats(engine)
    ledger = con.sql("SELECT min(recorded_at), max(recorded_at) FROM ledger").fetchall()[0]
    width = storeplots.bucket_width(ledger[1] - ledger[0])
    dispositions = con.sql(
        f"SELECT bucket, disposition, sum(entries) AS entries FROM dispositions_by('{width}') "
        "GROUP BY ALL"
    ).df()
    latency = con.sql("SELECT * FROM oracle_latency").df()
    figures = {
        "dispositions": storeplots.dispositions_over_time(dispositions, width, "D"),
        "latency": storeplots.oracle_latency(latency, "L"),
        "waits": storeplots.lock_waits(stats[["agent_id", "lock_wait_us"]], "W"),
    }
    for name, figure in figures.items():
        assert not isinstance(figure, storeplots.Note), figure
        ax = figure.axes[0]
        assert ax.get_title() and ax.get_xlabel() and ax.get_ylabel()
        assert "(" in ax.get_xlabel()  # units
        legend = ax.get_legend()
        assert legend is not None and legend.get_bbox_to_anchor().x0 > ax.bbox.x1  # outside
        figure.savefig(tmp_path / f"{name}.png")
        assert_image(tmp_path / f"{name}.png")
    assert "per 1 hour" in figures["dispositions"].axes[0].get_ylabel()
    few = storeplots.oracle_latency(latency.head(2), "L")
    assert isinstance(few, storeplots.Note) and "Too little data" in str(few)
    assert isinstance(storeplots.lock_waits(stats.head(3), "W"), storeplots.Note)
    assert isinstance(storeplots.dispositions_over_time(dispositions.head(1), width, "D"),
                      storeplots.Note)  # fmt: skip
    quiet = pd.DataFrame({"as_of": [ledger[0], ledger[1]], "contested": [0, 0], "believed": [1, 2]})
    assert "No line" in str(storeplots.contested_over_time(quiet, "C"))


def test_bucket_widths_keep_at_most_40_buckets() -> None:
    from datetime import timedelta

    assert storeplots.bucket_width(timedelta(hours=2)) == "5 minutes"
    assert storeplots.bucket_width(timedelta(days=40)) == "1 day"
    assert storeplots.bucket_width(timedelta(days=4000)) == "30 days"
