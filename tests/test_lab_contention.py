"""Lock-contention experiments (mempill.lab.contention): runs on real stores, the per-run
and over-repeats reductions on known data, recordings saved and loaded with provenance."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mempill.lab import contention, ledgers
from mempill.lab.contention import data, runner

SQLITE = ("sqlite-store-lock", "sqlite-agent-lock")


def assert_serialized(frame: pd.DataFrame) -> None:
    """No two transactions in `frame` held the lock at once: ordered by construction, so
    no slack, across threads and processes alike.

    The store reads `txn_us` (monotonic clock, since it took the lock), then `recorded_at`
    (wall clock), each cut to whole µs, then writes the row and COMMITs; the next
    transaction takes the lock after that COMMIT. So `recorded_at - txn_us` is less than
    1 µs before the real start (reading `recorded_at` late only moves it later), and each
    `recorded_at` precedes the next start: as whole µs, start - previous end >= 0. The
    only assumption is that the wall clock is not stepped during the run (both clocks run
    at the same rate; NTP slews them together).
    """
    ends = frame["recorded_at"].astype("int64").to_numpy()  # µs since the epoch
    starts = ends - frame["txn_us"].to_numpy()
    order = np.argsort(ends, kind="stable")
    gaps = starts[order][1:] - ends[order][:-1]
    assert (gaps >= 0).all(), f"overlapping transactions: min gap {gaps.min()} µs"


def assert_within_the_run(frame: pd.DataFrame) -> None:
    """Each writer's transactions (lock wait then hold) follow one another inside its own
    span of the run, so their total cannot exceed writers x the run's wall time."""
    run_us = frame["elapsed_s"].iloc[0] * 1e6
    spent_us = (frame["lock_wait_us"] + frame["txn_us"]).sum()
    assert 0 < spent_us <= frame["writers"].iloc[0] * run_us, (spent_us, run_us)


def assert_gap_free(frame: pd.DataFrame, per_agent: int) -> None:
    """Every agent's stream_seq runs 1..per_agent, each in exactly one transaction."""
    for agent, rows in frame.groupby("agent_id"):
        spans = zip(rows["first_seq"], rows["last_seq"], strict=True)
        seqs = sorted(seq for first, last in spans for seq in range(first, last + 1))
        assert seqs == list(range(1, per_agent + 1)), agent


def test_the_serialization_check_refuses_a_one_microsecond_overlap() -> None:
    """With no slack, a start 1 µs before the previous `recorded_at` is an overlap."""
    ends = pd.Series([1_000, 1_100]).astype("datetime64[us]").dt.tz_localize("UTC")
    frame = pd.DataFrame({"recorded_at": ends, "txn_us": [50, 100]})
    assert_serialized(frame)  # the second starts as the first ends
    with pytest.raises(AssertionError, match="min gap -1 µs"):
        assert_serialized(frame.assign(txn_us=[50, 101]))


def assert_writers(experiment: contention.Experiment) -> None:
    """A row per writer, each with all its claims, the first finisher with all of them by
    its finish and nobody with more; latencies ordered; spans inside the run."""
    rows, run = experiment.writers, experiment.run
    assert list(rows["writer"]) == list(range(run["writers"]))
    assert (rows["claims"] == run["claims_per_writer"]).all()
    assert rows["claims_by_first_finish"].max() == run["claims_per_writer"]
    assert (rows["claims_by_first_finish"] <= rows["claims"]).all()
    assert (rows["latency_p50_us"] <= rows["latency_p99_us"]).all()
    assert (rows["latency_p99_us"] <= rows["latency_max_us"]).all()
    assert (rows["start_us"] >= 0).all() and rows["start_us"].min() == 0
    assert rows["end_us"].max() == pytest.approx(run["elapsed_s"] * 1e6, abs=1)


@pytest.mark.sqlite_only
@pytest.mark.parametrize("config", SQLITE)
def test_threads_on_one_agent_are_serialized(config: str, tmp_path: Path) -> None:
    found = contention.run(config, 3, 1, 8, "threads", directory=str(tmp_path), seed=5)
    frame = found.transactions
    # one row per transaction; a group commit may carry the claims of several writers
    assert frame["claims"].sum() == 24
    assert set(frame["agent_id"]) == {"c5-a00"} and set(frame["pid"]) == {os.getpid()}
    assert (frame["txn_us"] > 0).all()
    assert frame["writer"].isna().all()  # group committed: the writer is not known
    assert_within_the_run(frame)
    assert frame[["config", "mode", "layout", "writers", "agents"]].drop_duplicates().to_dict(
        "records"
    ) == [{"config": config, "mode": "threads", "layout": "one agent", "writers": 3, "agents": 1}]
    assert_gap_free(frame, 24)
    assert_serialized(frame)
    assert_writers(found)
    assert set(found.writers["pid"]) == {os.getpid()}
    ledger = ledgers.ledger(tmp_path, agents="c5-a00")  # the store itself is left in place
    assert list(ledger["stream_seq"]) == list(range(1, 25))


@pytest.mark.sqlite_only
def test_the_store_wide_lock_serializes_different_agents(tmp_path: Path) -> None:
    found = contention.run("sqlite-store-lock", 4, 4, 6, "threads", directory=str(tmp_path))
    frame = found.transactions
    assert frame["agent_id"].nunique() == 4 and frame["layout"].iloc[0] == "agent per writer"
    assert_gap_free(frame, 6)
    assert_serialized(frame)  # across agents: one store, one write lock
    # an agent each: every transaction is its writer's
    assert (frame["writer"] == frame["agent"]).all()
    assert frame.groupby("writer")["claims"].sum().to_dict() == {0: 6, 1: 6, 2: 6, 3: 6}
    assert (frame["t_us"] > 0).all() and frame["t_us"].max() <= found.run["elapsed_s"] * 1e6
    assert_writers(found)


@pytest.mark.sqlite_only
def test_processes_write_from_their_own_interpreters(tmp_path: Path) -> None:
    found = contention.run("sqlite-agent-lock", 2, 1, 5, "processes", directory=str(tmp_path))
    frame = found.transactions
    assert len(frame) == 10 and frame["pid"].nunique() == 2
    assert os.getpid() not in set(frame["pid"])
    assert_gap_free(frame, 10)
    assert_serialized(frame)  # SQLite's own lock (BEGIN IMMEDIATE) serializes the processes
    assert_within_the_run(frame)
    assert_writers(found)
    # each transaction is attributed to the process that wrote it
    pids = dict(zip(found.writers["writer"], found.writers["pid"], strict=True))
    assert (frame["pid"] == frame["writer"].map(pids)).all()
    assert frame.groupby("writer")["claims"].sum().to_dict() == {0: 5, 1: 5}


@pytest.mark.sqlite_only
def test_a_failing_writer_process_is_reported_with_its_error(tmp_path: Path) -> None:
    not_a_directory = tmp_path / "file"
    not_a_directory.write_text("")
    with pytest.raises(RuntimeError, match=r"failed before its start:[\s\S]*Error"):
        contention.run("sqlite-agent-lock", 2, 1, 1, "processes", directory=str(not_a_directory))


@pytest.mark.postgres_only
def test_postgres_advisory_locks(postgres_server: str) -> None:
    one = contention.run("postgres", 3, 1, 5, "threads", dsn=postgres_server, seed=1)
    frame = one.transactions
    assert frame["claims"].sum() == 15  # group commits: fewer rows
    assert set(frame["backend"].astype(str)) == {"postgres"}
    assert_gap_free(frame, 15)
    assert_serialized(frame)
    assert_writers(one)
    separate = contention.run("postgres", 2, 2, 4, "processes", dsn=postgres_server)
    frame = separate.transactions
    assert frame["agent_id"].nunique() == 2 and frame["pid"].nunique() == 2
    assert_gap_free(frame, 4)
    assert (frame["writer"] == frame["agent"]).all()  # process w writes agent w
    assert_writers(separate)


def test_bad_parameters_are_refused() -> None:
    with pytest.raises(ValueError, match="backend 'mysql'"):
        contention.run("mysql", 1, 1, 1)
    with pytest.raises(ValueError, match="mode 'fibers'"):
        contention.run("sqlite-agent-lock", 1, 1, 1, "fibers")
    with pytest.raises(ValueError, match="writers: expected an integer >= 1"):
        contention.run("sqlite-agent-lock", 0, 1, 1)
    with pytest.raises(ValueError, match="layouts"):
        contention.sweep(["sqlite-agent-lock"], [1], 1, layouts=["diagonal"])
    with pytest.raises(ValueError, match="repeats"):
        contention.sweep(["sqlite-agent-lock"], [1], 1, repeats=0)
    with pytest.raises(ValueError, match="backend 'oracle'"):
        runner.grid(["oracle"], [1], ["threads"], ["one agent"], 1, None)  # before any run


def test_the_grid_is_shuffled_by_its_seed_and_complete() -> None:
    args = (["postgres", "sqlite-agent-lock"], [1, 2, 4], list(contention.MODES),
            list(contention.LAYOUTS), 3)  # fmt: skip
    ordered = runner.grid(*args, seed=None)
    assert len(ordered) == 2 * 3 * 2 * 2 * 3 and len(set(ordered)) == len(ordered)
    assert ordered[0] == ("postgres", "threads", "one agent", 1, 0)
    shuffled = runner.grid(*args, seed=11)
    assert sorted(shuffled) == sorted(ordered) and shuffled != ordered
    assert runner.grid(*args, seed=11) == shuffled and runner.grid(*args, seed=12) != shuffled


def test_jain_index() -> None:
    assert contention.jain([5, 5, 5, 5]) == 1.0
    assert contention.jain([8, 0, 0, 0]) == 0.25  # one writer took everything: 1/n
    assert contention.jain([3, 1]) == pytest.approx(16 / 20)
    assert np.isnan(contention.jain([])) and np.isnan(contention.jain([0, 0]))


def synthetic() -> contention.Recording:
    """Two runs of one cell (100 transactions: waits 0..99 ms) and one run of another."""
    params = {"config": "x", "mode": "threads", "layout": "one agent", "writers": 2,
              "agents": 1, "claims_per_writer": 50}  # fmt: skip
    runs = pd.DataFrame(
        [
            {"run_id": "r1", **params, "elapsed_s": 2.0},
            {"run_id": "r2", **params, "elapsed_s": 3.0},
            {"run_id": "r3", **params, "config": "y", "writers": 1, "claims_per_writer": 2,
             "elapsed_s": 1.0},
        ]
    )  # fmt: skip
    waits = np.arange(100) * 1000
    transactions = pd.DataFrame(
        {"run_id": ["r1"] * 50 + ["r2"] * 50 + ["r3"] * 2,
         "lock_wait_us": [*waits[:50], *waits[50:], 0, 50], "txn_us": [500] * 100 + [100, 300],
         "claims": [2] * 100 + [1, 1]}
    )  # fmt: skip
    writers = pd.DataFrame(
        {"run_id": ["r1", "r1", "r2", "r2", "r3"], "claims_by_first_finish": [50, 10, 50, 50, 2],
         "latency_p50_us": [1000, 3000, 1000, 1000, 10],
         "latency_p99_us": [4000, 9000, 2000, 5000, 30]}
    )  # fmt: skip
    return contention.Recording(runs, transactions.merge(runs, on="run_id"), writers)


def test_per_run_and_over_repeats_are_exact_on_known_data() -> None:
    runs = contention.per_run(synthetic()).set_index("run_id")
    r1, r2, r3 = runs.loc["r1"], runs.loc["r2"], runs.loc["r3"]
    assert r1["wait_p50_ms"] == pytest.approx(24.5) and r2["wait_p50_ms"] == pytest.approx(74.5)
    assert r1["wait_p99_ms"] == pytest.approx(48.51) and r1["wait_max_ms"] == 49.0
    assert r1["waited_share"] == pytest.approx(49 / 50)  # every transaction but the 0 µs one
    assert r1["writes"] == 100 and r1["writes_per_s"] == pytest.approx(50.0)
    assert r2["writes_per_s"] == pytest.approx(100 / 3)
    assert r1["fairness"] == pytest.approx(60**2 / (2 * (50**2 + 10**2)))
    assert r2["fairness"] == 1.0 and r3["fairness"] == 1.0
    assert r1["latency_p50_ms"] == 2.0 and r1["latency_p99_ms"] == 9.0  # median; worst
    assert r3["waited_share"] == 0.0 and r3["txn_p50_ms"] == pytest.approx(0.2)
    cells = contention.over_repeats(runs.reset_index()).set_index("config")
    x = cells.loc["x"]
    assert x["runs"] == 2 and x["wait_p50_ms"] == pytest.approx(49.5)  # median of 24.5, 74.5
    assert (x["wait_p50_ms_lo"], x["wait_p50_ms_hi"]) == pytest.approx((24.5, 74.5))
    assert x["writes_per_s_lo"] == pytest.approx(100 / 3) and x["writes_per_s_hi"] == 50.0
    assert cells.loc["y", "runs"] == 1
    shown = contention.table(cells.reset_index())
    assert list(shown["writes/s"]) == ["42 [33–50]", "2 [2–2]"]


def test_transactions_pooled_per_group() -> None:
    pooled = contention.lock_wait_percentiles(synthetic().transactions, by=("config",))
    x = pooled.set_index("config").loc["x"]
    assert x["transactions"] == 100 and x["wait_p50_ms"] == pytest.approx(49.5)
    assert x["wait_p99_ms"] == pytest.approx(98.01) and x["wait_max_ms"] == 99.0


@pytest.mark.sqlite_only
def test_sweep_record_and_load(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    found = contention.sweep(["sqlite-agent-lock"], [1, 2], 3, repeats=2, seed=4, progress=False)
    grid = found.transactions.groupby(["layout", "writers"]).agg(
        writes=("claims", "sum"), runs=("run_id", "nunique")
    )
    assert grid.to_dict("index") == {
        ("agent per writer", 1): {"writes": 6, "runs": 2},
        ("agent per writer", 2): {"writes": 12, "runs": 2},
        ("one agent", 1): {"writes": 6, "runs": 2},
        ("one agent", 2): {"writes": 12, "runs": 2},
    }
    assert sorted(found.runs["order"]) == list(range(8))
    assert sorted(found.runs["repeat"]) == [0] * 4 + [1] * 4
    assert len(found.writers) == 2 * (1 + 2 + 1 + 2)
    out = tmp_path / "rec"
    args = "record --backends sqlite-agent-lock --mode threads --writers 1,2 --claims 2 --repeats 2"
    assert contention.main([*args.split(), "--quiet", "--out", str(out), "--note", "test"]) == 0
    printed = capsys.readouterr().out
    assert "sqlite-agent-lock" in printed and "wait p99 ms" in printed and "fairness" in printed
    assert "too small for a verdict" in printed  # 2 claims per writer
    assert sorted(p.name for p in out.iterdir()) == [
        "recordings.jsonl", "runs.csv", "transactions.csv.gz", "writers.csv.gz",
    ]  # fmt: skip
    loaded = contention.load(out)
    assert len(loaded.runs) == 8 and loaded.transactions["claims"].sum() == 2 * 2 * (2 + 4)
    assert set(loaded.transactions.columns) >= {*runner.TRANSACTION_COLUMNS, "mode", "writers"}
    (described,) = loaded.provenance
    assert described["recording"] == loaded.runs["recording"].iloc[0]
    assert described["command"].startswith("python -m mempill.lab contention record ")
    assert len(described["commit"]) == 40 and described["load_note"] == "test"
    assert described["sqlite"]["version"] and described["postgres"] is None  # not measured
    assert described["machine"]["cpu"]["logical_cores"] >= 1 and described["runs"] == 8
    assert isinstance(described["seed"], int) and described["grid"]["repeats"] == 2
    with pytest.raises(FileExistsError, match="append"):
        contention.save(loaded, out)
    assert contention.main([*args.split(), "--quiet", "--out", str(out)]) == 2  # before any run
    assert "--append" in capsys.readouterr().err and len(contention.load(out).runs) == 8
    assert (
        contention.main([*args.split(), "--out", str(out), "--append", "--seed", "3", "--quiet"])
        == 0
    )
    again = contention.load(out)
    assert len(again.runs) == 16 and len(again.provenance) == 2
    assert json.loads((out / "recordings.jsonl").read_text().splitlines()[1])["seed"] == 3
    assert contention.main(["--backends", "oracle-db", "--quiet"]) == 2


def test_a_saved_recording_round_trips_and_a_broken_one_is_refused(tmp_path: Path) -> None:
    recording = synthetic()
    recording.runs = recording.runs.assign(
        recording="s", order=[0, 1, 2], repeat=[0, 1, 0], started_at="2026-01-01T00:00:00+00:00",
        start_unix_us=0, load_1min=1.0,
    )  # fmt: skip
    recording.transactions = recording.transactions.assign(agent=0, writer=pd.NA, first_seq=1,
                                                           t_us=1)  # fmt: skip
    recording.writers = recording.writers.assign(
        writer=0, agent=0, pid=1, start_us=0, end_us=1, claims=1, latency_max_us=1
    )
    data.save(recording, tmp_path)
    loaded = contention.load(tmp_path)
    for name in ("lock_wait_us", "txn_us", "claims"):
        assert list(loaded.transactions[name]) == list(recording.transactions[name])
    pd.testing.assert_frame_equal(
        contention.per_run(loaded)[["run_id", "wait_p99_ms", "fairness"]],
        contention.per_run(recording)[["run_id", "wait_p99_ms", "fairness"]],
    )
    frame = pd.read_csv(tmp_path / data.TRANSACTIONS).iloc[1:]  # a transaction lost
    frame.to_csv(tmp_path / data.TRANSACTIONS, index=False)
    with pytest.raises(ValueError, match="do not add up"):
        contention.load(tmp_path)
    with pytest.raises(FileNotFoundError, match="contention record"):
        contention.load(tmp_path / "nothing")


def test_a_small_size_says_it_is_too_small_for_a_verdict() -> None:
    runs = contention.per_run(synthetic())
    note = contention.size_note(runs)
    assert note is not None and note.startswith("2 claims per writer, 1 run per cell")
    assert "too small for a verdict" in note
    recorded = pd.concat(
        [runs.assign(claims_per_writer=100, run_id=runs["run_id"] + str(i)) for i in range(5)]
    )
    assert contention.size_note(recorded) is None
    fewer = recorded[recorded["run_id"] != "r30"]  # cell y: 4 runs
    assert "4 runs per cell" in str(contention.size_note(fewer))
