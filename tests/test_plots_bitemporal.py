"""The bitemporal figures (mempill.lab.plots): belief segments from the engine's timeline at
every ledger position, coloured by belief status, with the ledger events beside them."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pandas.testing as pdt
import pytest
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.colors import to_rgba
from matplotlib.image import imread
from matplotlib.patches import Rectangle

import mempill
from mempill import Engine, SeededIds, Snapshot, SteppingClock
from mempill.lab import plots
from mempill.lab.servers import fresh_schema
from mempill.openers import open_postgres

AGENT, SUBJECT, PREDICATE = "hr-bot", "bob", "employer"
MICROSECOND = timedelta(microseconds=1)


def deterministic() -> dict[str, Any]:
    start = datetime(2026, 1, 1, tzinfo=UTC)
    return {"clock": SteppingClock(start, timedelta(hours=6)), "ids": SeededIds(7)}


def job(value: str, start: str, end: str | None = None) -> dict[str, Any]:
    valid = {"start": start, "end": end}
    body = {"agent_id": AGENT, "subject": SUBJECT, "predicate": PREDICATE, "value": value}
    return {**body, "valid_time": valid}


def story(engine: Engine) -> dict[str, str]:
    """The notebook's story, plus two jobs written in one batch (one clock reading)."""

    def remember(value: str, start: str | None = None, end: str | None = None, **o: Any) -> str:
        receipt = engine.remember(
            AGENT, SUBJECT, PREDICATE, value, valid_from=start, valid_until=end, **o
        )
        return receipt.claim_ref

    refs = {"acme": remember("Acme", "2015-02", "2018-09")}
    refs["globex"] = remember("Globex", "2018-09")
    refs["rumour"] = remember("Initech")  # no valid time: contests both
    engine.end(AGENT, refs["globex"], "2021-04")
    remember("Hooli", "2021-04", confidence=0.2, valid_time_confidence=0.9)  # pending
    engine.invalidate(AGENT, refs["rumour"])
    engine.ingest_many([job("Startup 1", "2022-01", "2023-01"), job("Startup 2", "2023-01")])
    return refs


@pytest.fixture
def engine() -> Iterator[Engine]:
    with mempill.open_default_in_memory(**deterministic()) as memory:
        story(memory)
        yield memory


def inside(row: Any) -> list[datetime]:
    """Instants of a row's valid range: its first, its last and one in the middle."""
    start, end = row.valid_from, row.valid_until
    if pd.isna(start) and pd.isna(end):
        return [datetime(2020, 6, 1, tzinfo=UTC)]
    if pd.isna(start):
        return [end.to_pydatetime() - MICROSECOND, end.to_pydatetime() - timedelta(days=400)]
    if pd.isna(end):
        return [start.to_pydatetime(), start.to_pydatetime() + timedelta(days=400)]
    first, last = start.to_pydatetime(), end.to_pydatetime() - MICROSECOND
    return [first, first + (last - first) / 2, last]


def believed(projection: mempill.Projection) -> tuple[str, str | None, list[str]]:
    values = sorted(str(c.value) for c in projection.candidates)
    return projection.status.value, projection.value, values


def test_segments_agree_with_query_memory(engine: Engine) -> None:
    segments = plots.bitemporal_segments(engine, AGENT, SUBJECT, PREDICATE)
    events = plots.line_events(engine, AGENT, SUBJECT, PREDICATE)
    positions = list(zip(events["stream_seq"], events["recorded_at"], strict=True))
    assert [int(s) for s, _ in positions] == list(range(1, 9))
    checked = 0
    for row in segments.itertuples(index=False):
        held = [
            (int(seq), at.to_pydatetime())
            for seq, at in positions
            if seq >= row.seq_from and (pd.isna(row.seq_until) or seq < row.seq_until)
        ]
        assert held and held[0][0] == row.seq_from  # a row starts at a position of the line
        for seq, at in held:
            cut = Snapshot(agent_id=AGENT, stream_seq=seq, tx_time=at)
            for instant in inside(row):
                got = engine.query_memory(
                    AGENT, SUBJECT, PREDICATE, as_of=cut.token, valid_at=instant
                )
                value = None if pd.isna(row.value) else row.value
                candidates = sorted(str(row.candidates).split(" | ")) if row.n_candidates else []
                assert believed(got) == (row.status, value, candidates), (row, seq, instant)
                checked += 1
    assert checked > 60


def test_each_position_is_a_partition_of_valid_time(engine: Engine) -> None:
    """At every position the rows that hold tile valid time: no gap, no overlap."""
    segments = plots.bitemporal_segments(engine, AGENT, SUBJECT, PREDICATE)
    for seq in range(1, 9):
        held = segments[
            (segments["seq_from"] <= seq)
            & (segments["seq_until"].isna() | (segments["seq_until"] > seq))
        ]
        held = held.sort_values("valid_from", na_position="first")
        assert held["valid_from"].isna().iloc[0] and held["valid_until"].isna().iloc[-1]
        starts, ends = held["valid_from"].iloc[1:].to_numpy(), held["valid_until"].iloc[:-1]
        assert (starts == ends.to_numpy()).all(), seq


def test_the_story_in_segments(engine: Engine) -> None:
    segments = plots.bitemporal_segments(engine, AGENT, SUBJECT, PREDICATE)
    globex = segments[segments["candidates"].str.contains("Globex")]
    summary = [
        (
            str(r.status),
            r.candidates,
            int(r.seq_from),
            None if pd.isna(r.seq_until) else r.seq_until,
        )
        for r in globex.itertuples(index=False)
    ]
    assert summary == [
        ("Resolved", "Globex", 2, 3),  # open-ended until the rumour
        ("Contested", "Globex | Initech", 3, 4),  # then contested, open-ended
        ("Contested", "Globex | Initech", 4, 6),  # bounded at 2021-04, until invalidated
        ("Resolved", "Globex", 6, None),  # and believed since
    ]
    acme = segments[segments["candidates"] == "Acme"]
    assert list(zip(acme["seq_from"], acme["seq_until"].astype(object), strict=True)) == [
        (1, 3),  # unchanged at position 2: one row, not two
        (6, pd.NA),
    ]


def test_line_events_name_what_each_entry_did(engine: Engine) -> None:
    events = plots.line_events(engine, AGENT, SUBJECT, PREDICATE)
    assert list(events["action"].astype(str)) == [
        "claim written", "claim written", "claim written", "end",
        "claim written", "invalidate", "claim written", "claim written",
    ]  # fmt: skip
    assert list(events["value"][:4]) == ["Acme", "Globex", "Initech", "Globex"]
    assert events["disposition"][2] == "Contested" and events["disposition"][5] == "Invalidated"
    batch = events["recorded_at"][7] - events["recorded_at"][6]
    assert batch < pd.Timedelta(milliseconds=1)  # one batch: tx times a microsecond apart


def legend_labels(legend: Any) -> list[str]:
    return [t.get_text() for t in legend.get_texts()]


def drawn_rows(segments: pd.DataFrame) -> pd.DataFrame:
    """The rows that get a rectangle: a belief, and a tx span of positive length."""
    real = segments["status"] != "NoBelief"
    positive = segments["tx_until"].isna() | (segments["tx_until"] > segments["tx_from"])
    return segments[real & positive]


def test_the_figure_colours_by_belief_status(engine: Engine, tmp_path: Path) -> None:
    segments = plots.bitemporal_segments(engine, AGENT, SUBJECT, PREDICATE)
    events = plots.line_events(engine, AGENT, SUBJECT, PREDICATE)
    figure = plots.bitemporal_timeline(segments, events, title="bob / employer")
    main, side = figure.axes
    assert figure.get_suptitle() == "bob / employer"
    assert "valid time" in main.get_xlabel() and "UTC" in main.get_xlabel()
    assert "transaction time" in main.get_ylabel() and "UTC" in main.get_ylabel()
    assert "ledger events" in side.get_title()
    rectangles = [p for p in main.patches if isinstance(p, Rectangle)]
    rows = drawn_rows(segments)
    assert len(rectangles) == len(rows) < len(segments)  # NoBelief and zero-height rows skipped
    for patch, status in zip(rectangles, rows["status"].astype(str), strict=True):
        colour, hatch = plots.STATUS_STYLE[status]
        assert patch.get_facecolor() == to_rgba(colour) and patch.get_hatch() == hatch
    # Globex was written CommittedCheap, yet its rectangles while the rumour stood are red
    red = to_rgba(plots.STATUS_STYLE["Contested"][0])
    contested = (rows["candidates"] == "Globex | Initech").to_numpy()
    assert contested.sum() == 2
    assert all(p.get_facecolor() == red for p, c in zip(rectangles, contested, strict=True) if c)
    assert set(rows["status"].astype(str)) == {"Resolved", "Contested", "TimingUncertain"}
    (legend,) = figure.legends
    assert legend_labels(legend) == [
        "Resolved", "TimingUncertain", "Contested", "claim written", "end", "invalidate",
    ]  # fmt: skip
    assert side.lines and len(side.lines) == len(events)  # a marker per entry
    figure.savefig(tmp_path / "timeline.png")
    assert_image(tmp_path / "timeline.png")
    canvas = FigureCanvasAgg(figure)
    canvas.draw()
    renderer = canvas.get_renderer()
    box = legend.get_window_extent(renderer)
    for axes in (main, side):
        assert not box.overlaps(axes.get_window_extent(renderer))  # the legend is outside
    with pytest.raises(ValueError, match="no segments"):
        plots.bitemporal_timeline(segments.iloc[0:0])


def test_no_colour_is_a_disposition_colour(engine: Engine) -> None:
    """Colours come from belief statuses only: the old disposition palette is gone."""
    assert not hasattr(plots, "DISPOSITION_COLOURS")
    segments = plots.bitemporal_segments(engine, AGENT, SUBJECT, PREDICATE)
    figure = plots.bitemporal_timeline(
        segments, plots.line_events(engine, AGENT, SUBJECT, PREDICATE)
    )
    allowed = {to_rgba(c) for c, _ in plots.STATUS_STYLE.values()}
    assert {p.get_facecolor() for p in figure.axes[0].patches} <= allowed


def test_belief_strip_is_the_latest_timeline(engine: Engine, tmp_path: Path) -> None:
    timeline = engine.query_timeline(AGENT, SUBJECT, PREDICATE)
    figure = plots.belief_strip(timeline, title="now")
    (ax,) = figure.axes
    assert ax.get_title() == "now" and "valid time" in ax.get_xlabel()
    frame = plots.timeline_frame(timeline)
    believed_now = frame[frame["status"] != "NoBelief"]
    assert list(believed_now["value"]) == ["Acme", "Globex", "Startup 1", "Startup 2"]
    assert len(ax.patches) == len(believed_now)
    assert legend_labels(ax.get_legend()) == ["Resolved"]
    figure.savefig(tmp_path / "strip.png")
    assert_image(tmp_path / "strip.png")
    rumour = Snapshot(agent_id=AGENT, stream_seq=3, tx_time=datetime(2026, 1, 1, 12, tzinfo=UTC))
    then = plots.belief_strip(engine.query_timeline(AGENT, SUBJECT, PREDICATE, as_of=rumour))
    assert legend_labels(then.axes[0].get_legend()) == ["TimingUncertain", "Contested"]
    assert "2026-01-01 12:00 UTC" in then.axes[0].get_ylabel()


def assert_image(path: Path) -> None:
    assert path.stat().st_size > 1000
    pixels = imread(path)
    assert pixels.ndim == 3 and min(pixels.shape[:2]) > 100
    assert len(np.unique(pixels.reshape(-1, pixels.shape[2]), axis=0)) > 10


def test_segments_are_equal_on_postgres(postgres_server: str) -> None:
    with fresh_schema(postgres_server) as dsn, open_postgres(dsn, **deterministic()) as pg:
        story(pg)
        on_postgres = plots.bitemporal_segments(pg, AGENT, SUBJECT, PREDICATE)
        events_pg = plots.line_events(pg, AGENT, SUBJECT, PREDICATE)
    with mempill.open_default_in_memory(**deterministic()) as sqlite:
        story(sqlite)
        on_sqlite = plots.bitemporal_segments(sqlite, AGENT, SUBJECT, PREDICATE)
        events_sqlite = plots.line_events(sqlite, AGENT, SUBJECT, PREDICATE)
    pdt.assert_frame_equal(on_sqlite, on_postgres)
    pdt.assert_frame_equal(events_sqlite, events_pg)
