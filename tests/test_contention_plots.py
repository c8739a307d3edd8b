"""The contention figures (mempill.lab.contention.plots): each is a non-empty image, titled,
with labelled axes that name their units and scale, its legend outside the data, and
grouped so that no line mixes two modes or two configurations.

The data are synthetic and built so that every value drawn tells which group it came
from: a mode's values lie in its own decade, so a line pooling both modes would hold
values from two decades.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.collections import LineCollection, PathCollection, PolyCollection
from matplotlib.figure import Figure
from matplotlib.image import imread
from matplotlib.lines import Line2D

from mempill.lab.contention import plots

#: Every value of a mode lies in its range: threads under 1, processes from 10 up.
RANGE = {"threads": (0.01, 0.99), "processes": (10.0, 99.0)}
CONFIGS = ("sqlite-agent-lock", "postgres")
LAYOUTS = ("one agent", "agent per writer")
WRITERS = (1, 2, 4)


def per_run(repeats: int = 3, seed: int = 1) -> pd.DataFrame:
    """`per_run` rows: 2 modes x 2 configs x 2 layouts x 3 writer counts x `repeats`."""
    rng = np.random.default_rng(seed)
    cells = itertools.product(RANGE, CONFIGS, LAYOUTS, WRITERS, range(repeats))
    frame = pd.DataFrame(
        [{"run_id": "-".join(map(str, cell)), "mode": cell[0], "config": cell[1],
          "layout": cell[2], "writers": cell[3], "claims_per_writer": 100} for cell in cells]
    )  # fmt: skip
    low = frame["mode"].map(lambda m: RANGE[m][0]).to_numpy()
    half = frame["mode"].map(lambda m: RANGE[m][1] / 2).to_numpy()
    for metric in ("writes_per_s", "wait_p50_ms", "latency_p50_ms", "fairness"):
        frame[metric] = rng.uniform(low, half)
    for metric in ("wait_p99_ms", "latency_p99_ms"):
        frame[metric] = rng.uniform(low, half) + half
    frame.loc[frame.index[::7], "wait_p50_ms"] = 0.0  # no wait: drawn at the floor
    return frame


def transactions(writers: int = 4) -> pd.DataFrame:
    """Transaction rows of one writer count, every group's waits (µs) in its mode's range."""
    rng = np.random.default_rng(2)
    parts = []
    for mode, (low, high) in RANGE.items():
        for config in CONFIGS:
            for layout in LAYOUTS:
                for repeat in range(2):
                    n = 40
                    parts.append(pd.DataFrame({
                        "run_id": f"{mode}-{config}-{layout}-{repeat}", "config": config,
                        "mode": mode, "layout": layout, "writers": writers,
                        "claims_per_writer": 100,
                        "lock_wait_us": rng.uniform(low, high, n) * 1000,
                        "t_us": np.sort(rng.integers(0, 2_000_000, n)), "claims": 1,
                    }))  # fmt: skip
    return pd.concat(parts, ignore_index=True)


def group_of(artist: Any) -> dict[str, str]:
    return dict(part.split("=", 1) for part in artist.get_gid().split("|"))


def drawn_values(artist: Any, axis: int) -> np.ndarray:
    """The data coordinates an artist holds along `axis` (0: x, 1: y)."""
    if isinstance(artist, Line2D):
        return np.asarray(artist.get_xdata() if axis == 0 else artist.get_ydata(), dtype=float)
    if isinstance(artist, PathCollection):  # scatter: its paths are the marker's shape
        points = [np.asarray(artist.get_offsets())]
    elif isinstance(artist, LineCollection):  # error bars
        points = [np.asarray(segment) for segment in artist.get_segments()]
    else:  # a band
        assert isinstance(artist, PolyCollection), artist
        points = [np.asarray(path.vertices) for path in artist.get_paths()]
    return np.concatenate([p[:, axis] for p in points if len(p)])


def grouped_artists(figure: Figure) -> list[tuple[Any, Any]]:
    """(axes, artist) for every artist that carries its group as its gid."""
    found = []
    for ax in figure.axes:
        for artist in [*ax.lines, *ax.collections]:
            if artist.get_gid():
                found.append((ax, artist))
    return found


def assert_one_mode_per_line(figure: Figure, measured_axis: int) -> None:
    """Each drawn group names exactly one mode and holds values from that mode alone (the
    floor stands for values under it, in threads' range)."""
    artists = grouped_artists(figure)
    assert artists, "no grouped artists drawn"
    for ax, artist in artists:
        group = group_of(artist)
        low, high = RANGE[group["mode"]]
        values = drawn_values(artist, measured_axis)
        values = values[np.isfinite(values) & (values > plots.ZERO_WAIT_MS)]
        assert len(values), (group, "nothing drawn")
        assert values.min() >= low * 0.999 and values.max() <= high * 1.001, (group, values)
        assert group["mode"] in ax.get_title() or group["mode"] in artist.get_label(), group


def assert_figure(figure: Figure, path: Path) -> None:
    """Titled, labelled with units and scales, legend outside every axes, a real image."""
    assert figure.get_suptitle()
    for ax in figure.axes:
        assert ax.get_title() and ax.get_xlabel() and ax.get_ylabel()
        for label, scale in (
            (ax.get_xlabel(), ax.get_xscale()),
            (ax.get_ylabel(), ax.get_yscale()),
        ):
            assert "(" in label and f"{scale} scale" in label.replace("log₂", "log"), label
        assert ax.get_legend() is None  # one legend, for the figure, outside the axes
    (legend,) = figure.legends
    canvas = FigureCanvasAgg(figure)
    canvas.draw()  # lays the figure out
    renderer = canvas.get_renderer()
    box = legend.get_window_extent(renderer)
    for ax in figure.axes:
        assert not box.overlaps(ax.get_window_extent(renderer)), "the legend covers data"
    figure.savefig(path)
    pixels = imread(path)
    assert pixels.shape[0] > 100 and pixels.shape[1] > 100
    assert len(np.unique(pixels.reshape(-1, pixels.shape[2]), axis=0)) > 10


def floor_stated(figure: Figure) -> bool:
    (legend,) = figure.legends
    return any(text.get_text() == plots.FLOOR for text in legend.get_texts())


PER_RUN: dict[str, Callable[..., Figure]] = {
    "throughput": plots.throughput_vs_writers,
    "fairness": plots.fairness_vs_writers,
    "lock wait": plots.lock_wait_vs_writers,
    "latency": plots.latency_vs_writers,
}


@pytest.mark.parametrize("name", PER_RUN)
def test_figures_against_writers_keep_modes_apart(name: str, tmp_path: Path) -> None:
    runs = per_run()
    figure = PER_RUN[name](runs)
    assert_figure(figure, tmp_path / "figure.png")
    assert_one_mode_per_line(figure, measured_axis=1)
    # the default grouping: a line per (config, mode, layout), none missing, none pooled
    lines = {artist.get_gid() for _, artist in grouped_artists(figure)}
    assert len(lines) == len(RANGE) * len(CONFIGS) * len(LAYOUTS)
    for _, artist in grouped_artists(figure):
        if isinstance(artist, Line2D) and artist.get_marker() == "o":
            assert list(artist.get_xdata()) == list(WRITERS)  # each writer count, in order
    assert floor_stated(figure) == (name == "lock wait")  # only waits of 0 are clipped


def test_the_median_line_and_its_band_are_the_runs_median_and_range() -> None:
    runs = per_run(repeats=5)
    figure = plots.throughput_vs_writers(runs)
    for _, artist in grouped_artists(figure):
        group = group_of(artist)
        rows = runs[(runs["mode"] == group["mode"]) & (runs["config"] == group["config"])
                    & (runs["layout"] == group["layout"])]  # fmt: skip
        per_writers = rows.groupby("writers")["writes_per_s"]
        if isinstance(artist, Line2D):
            assert list(artist.get_ydata()) == pytest.approx(list(per_writers.median()))
        elif isinstance(artist, PolyCollection):  # the band
            band = drawn_values(artist, 1)
            assert band.min() == pytest.approx(per_writers.min().min())
            assert band.max() == pytest.approx(per_writers.max().max())


def test_distributions_and_time_series_keep_modes_apart(tmp_path: Path) -> None:
    rows = transactions()
    ecdf = plots.lock_wait_ecdf(rows)
    assert_figure(ecdf, tmp_path / "ecdf.png")
    assert_one_mode_per_line(ecdf, measured_axis=0)
    assert len(grouped_artists(ecdf)) == len(RANGE) * len(CONFIGS) * len(LAYOUTS)
    assert "4 writers" in ecdf.get_suptitle()  # what the figure holds constant
    one_layout = rows[rows["layout"] == "one agent"]
    over_time = plots.wait_over_time(one_layout)
    assert_figure(over_time, tmp_path / "time.png")
    assert_one_mode_per_line(over_time, measured_axis=1)
    assert len(over_time.axes) == len(RANGE) * len(CONFIGS)  # a panel per (config, mode)
    assert len(grouped_artists(over_time)) == one_layout["run_id"].nunique()  # a cloud per run
    assert not floor_stated(over_time)


def test_zero_waits_are_drawn_at_the_stated_floor(tmp_path: Path) -> None:
    rows = transactions()
    rows.loc[rows.index[:5], "lock_wait_us"] = 0
    rows = rows[(rows["mode"] == "threads") & (rows["layout"] == "one agent")]
    figure = plots.wait_over_time(rows)
    assert floor_stated(figure)
    lowest = min(drawn_values(a, 1).min() for _, a in grouped_artists(figure))
    assert lowest == plots.ZERO_WAIT_MS
    ecdf = plots.lock_wait_ecdf(rows)
    assert floor_stated(ecdf)
    assert min(drawn_values(a, 0).min() for _, a in grouped_artists(ecdf)) == plots.ZERO_WAIT_MS


@pytest.mark.parametrize(
    ("helper", "frame", "grouping"),
    [
        (plots.throughput_vs_writers, per_run, {"panels": ("config",), "by": ("layout",)}),
        (plots.lock_wait_vs_writers, per_run, {"panels": ("config",), "by": ("layout",)}),
        (plots.fairness_vs_writers, per_run, {"panels": ("layout",), "by": ("config",)}),
        (plots.lock_wait_ecdf, transactions, {"panels": ("config",), "by": ("layout",)}),
        (plots.wait_over_time, transactions, {"panels": ("config", "layout"), "by": ("run_id",)}),
    ],
)
def test_a_grouping_that_would_pool_modes_is_refused(
    helper: Callable[..., Figure], frame: Callable[[], pd.DataFrame], grouping: dict[str, Any]
) -> None:
    with pytest.raises(ValueError, match=r"mode takes 2 values .* one line would mix them"):
        helper(frame(), **grouping)


def test_other_distinguishing_keys_are_refused_too() -> None:
    runs = per_run()
    mixed = pd.concat([runs, runs.assign(claims_per_writer=10, run_id=runs["run_id"] + "b")])
    with pytest.raises(ValueError, match="claims_per_writer takes 2 values"):
        plots.throughput_vs_writers(mixed)
    figure = plots.throughput_vs_writers(mixed, by=("config", "layout", "claims_per_writer"))
    assert len({a.get_gid() for _, a in grouped_artists(figure)}) == 16
    with pytest.raises(ValueError, match="writers takes 2 values"):
        plots.lock_wait_ecdf(pd.concat([transactions(2), transactions(4)]))
    with pytest.raises(ValueError, match="nothing to draw"):
        plots.throughput_vs_writers(runs.iloc[0:0])


def test_a_size_note_is_part_of_the_title() -> None:
    note = "small size: 10 claims per writer, 1 run: too small for a verdict"
    figure = plots.fairness_vs_writers(per_run(repeats=1), note=note)
    assert figure.get_suptitle().endswith(note)
    assert "1 run per point" in figure.get_suptitle()
