"""Lock-contention experiments (mempill.lab.contention) and their figures, on real stores."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from matplotlib.image import imread

from mempill.lab import contention, ledgers, plots

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


@pytest.mark.sqlite_only
@pytest.mark.parametrize("config", SQLITE)
def test_threads_on_one_agent_are_serialized(config: str, tmp_path: Path) -> None:
    frame = contention.run(config, 3, 1, 8, "threads", directory=str(tmp_path), seed=5)
    # one row per transaction; a group commit may carry the claims of several writers
    assert (frame["last_seq"] - frame["first_seq"] + 1).sum() == 24
    assert set(frame["agent_id"]) == {"c5-a00"} and set(frame["pid"]) == {os.getpid()}
    assert (frame["txn_us"] > 0).all()
    assert_within_the_run(frame)
    assert frame[["config", "mode", "layout", "writers", "agents"]].drop_duplicates().to_dict(
        "records"
    ) == [{"config": config, "mode": "threads", "layout": "one agent", "writers": 3, "agents": 1}]
    assert_gap_free(frame, 24)
    assert_serialized(frame)
    ledger = ledgers.ledger(tmp_path, agents="c5-a00")  # the store itself is left in place
    assert list(ledger["stream_seq"]) == list(range(1, 25))


@pytest.mark.sqlite_only
def test_the_store_wide_lock_serializes_different_agents(tmp_path: Path) -> None:
    frame = contention.run("sqlite-store-lock", 4, 4, 6, "threads", directory=str(tmp_path))
    assert frame["agent_id"].nunique() == 4 and frame["layout"].iloc[0] == "agent per writer"
    assert_gap_free(frame, 6)
    assert_serialized(frame)  # across agents: one store, one write lock


@pytest.mark.sqlite_only
def test_processes_write_from_their_own_interpreters(tmp_path: Path) -> None:
    frame = contention.run("sqlite-agent-lock", 2, 1, 5, "processes", directory=str(tmp_path))
    assert len(frame) == 10 and frame["pid"].nunique() == 2
    assert os.getpid() not in set(frame["pid"])
    assert_gap_free(frame, 10)
    assert_serialized(frame)  # SQLite's own lock (BEGIN IMMEDIATE) serializes the processes
    assert_within_the_run(frame)


@pytest.mark.sqlite_only
def test_a_failing_writer_process_is_reported_with_its_error(tmp_path: Path) -> None:
    not_a_directory = tmp_path / "file"
    not_a_directory.write_text("")
    with pytest.raises(RuntimeError, match=r"failed before its start:[\s\S]*Error"):
        contention.run("sqlite-agent-lock", 2, 1, 1, "processes", directory=str(not_a_directory))


@pytest.mark.postgres_only
def test_postgres_advisory_locks(postgres_server: str) -> None:
    one = contention.run("postgres", 3, 1, 5, "threads", dsn=postgres_server, seed=1)
    assert (one["last_seq"] - one["first_seq"] + 1).sum() == 15  # group commits: fewer rows
    assert set(one["backend"].astype(str)) == {"postgres"}
    assert_gap_free(one, 15)
    assert_serialized(one)
    separate = contention.run("postgres", 2, 2, 4, "processes", dsn=postgres_server)
    assert separate["agent_id"].nunique() == 2 and separate["pid"].nunique() == 2
    assert_gap_free(separate, 4)


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


def synthetic() -> pd.DataFrame:
    """Two runs of one group (100 writes: waits 0..99 ms) and one run of another."""
    runs = (("r1", 60, 2.0), ("r2", 40, 3.0))
    rows = [
        {"run_id": run_id, "elapsed_s": elapsed, "config": "x", "writers": 2}
        for run_id, count, elapsed in runs
        for _ in range(count)
    ]
    frame = pd.DataFrame(rows)
    frame["lock_wait_us"] = np.arange(100) * 1000
    frame["txn_us"] = 500
    frame["claims"] = 1
    other = pd.DataFrame(
        {
            "run_id": "r3",
            "elapsed_s": 1.0,
            "config": "y",
            "writers": 1,
            "lock_wait_us": [0, 50],
            "txn_us": [100, 300],
            "claims": [1, 1],
        }
    )
    return pd.concat([frame, other], ignore_index=True)


def test_percentiles_and_throughput_are_exact_on_known_data() -> None:
    summary = contention.summary(synthetic(), by=("config", "writers")).set_index("config")
    x, y = summary.loc["x"], summary.loc["y"]
    assert x["writes"] == 100 and x["p50_ms"] == pytest.approx(49.5)
    assert x["p99_ms"] == pytest.approx(98.01) and x["max_ms"] == 99.0
    assert x["waited_share"] == pytest.approx(0.99)  # every write but the 0 µs one
    assert x["writes_per_s"] == pytest.approx(100 / 5.0)  # pooled over both runs
    assert x["txn_p50_ms"] == pytest.approx(0.5)
    assert y["waited_share"] == 0.0 and y["writes_per_s"] == pytest.approx(2.0)


@pytest.mark.sqlite_only
def test_sweep_and_command_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    frame = contention.sweep(["sqlite-agent-lock"], [1, 2], 3, repeats=2, progress=False)
    grid = frame.groupby(["layout", "writers"]).agg(
        writes=("claims", "sum"), runs=("run_id", "nunique")
    )
    assert grid.to_dict("index") == {
        ("agent per writer", 1): {"writes": 6, "runs": 2},
        ("agent per writer", 2): {"writes": 12, "runs": 2},
        ("one agent", 1): {"writes": 6, "runs": 2},
        ("one agent", 2): {"writes": 12, "runs": 2},
    }
    out = tmp_path / "stats.csv"
    args = "--backends sqlite-agent-lock --writers 1,2 --claims 2 --quiet --layouts one"
    code = contention.main([*args.split(), "--out", str(out)])
    assert code == 0
    printed = capsys.readouterr().out
    assert "sqlite-agent-lock" in printed and "p99_ms" in printed and "writes_per_s" in printed
    assert pd.read_csv(out)["claims"].sum() == 2 + 4
    assert contention.main(["--backends", "oracle-db", "--quiet"]) == 2


def assert_figure(figure: object, path: Path) -> None:
    axes = figure.axes  # type: ignore[attr-defined]
    assert axes and all(ax.get_title() and ax.get_xlabel() and ax.get_ylabel() for ax in axes)
    assert all("(" in ax.get_xlabel() and "(" in ax.get_ylabel() for ax in axes)  # units
    figure.savefig(path)  # type: ignore[attr-defined]
    pixels = imread(path)
    assert (
        pixels.shape[0] > 100 and len(np.unique(pixels.reshape(-1, pixels.shape[2]), axis=0)) > 10
    )


@pytest.mark.sqlite_only
def test_contention_figures(tmp_path: Path) -> None:
    frame = contention.sweep(SQLITE, [1, 2], 3, progress=False)
    summary = contention.summary(frame)
    ecdf = plots.lock_wait_ecdf(frame[frame["writers"] == 2])
    assert len(ecdf.axes[0].get_lines()) == 4  # 2 configs x 2 layouts
    assert_figure(ecdf, tmp_path / "ecdf.png")
    assert_figure(plots.lock_wait_vs_writers(summary), tmp_path / "waits.png")
    assert_figure(plots.throughput_vs_writers(summary), tmp_path / "throughput.png")
