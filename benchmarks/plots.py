"""Figures of a results dict (the performance notebook draws these): titles, labels, units."""

from __future__ import annotations

from typing import Any

import matplotlib.pyplot as plt

from benchmarks.targets import _get

STYLE = {
    "ours": ("this engine (durable)", "tab:blue", "o-"),
    "ours_nosync": ("this engine, synchronous=OFF", "tab:cyan", "s--"),
    "reference": ("reference 0.4.0", "tab:red", "^-"),
}


def _done(figure: Any) -> Any:
    """Lay out and detach the figure: the caller (a notebook cell) shows it exactly once."""
    figure.tight_layout()
    plt.close(figure)
    return figure


def _series(results: dict[str, Any], axis: str, engine: str, *field: str) -> list[float | None]:
    points = _get(results, "flat", axis, "engines", engine) or []
    return [_get(p, *field) for p in points]


def _xs(results: dict[str, Any], axis: str) -> list[int]:
    key = "sizes" if axis == "store" else "lengths"
    return list(_get(results, "flat", axis, key) or [])


def latency(results: dict[str, Any], axis: str) -> Any:
    """query_memory latency (ms) against store size or line length, log-log."""
    figure, ax = plt.subplots(figsize=(7, 4.2))
    xs = _xs(results, axis)
    for engine in ("ours", "reference"):
        _, color, style = STYLE[engine]
        label = "this engine" if engine == "ours" else "reference 0.4.0"
        for kind, alpha, name in (
            ("query_cold", 1.0, "first read"),
            ("query_warm", 0.5, "repeated"),
        ):
            ys = _series(results, axis, engine, kind, "median_s")
            shown = [(x, y * 1000) for x, y in zip(xs, ys, strict=False) if y is not None]
            if shown:
                ax.plot(
                    *zip(*shown, strict=True),
                    style,
                    color=color,
                    alpha=alpha,
                    label=f"{label}, {name}",
                )
    ax.set_xscale("log")
    ax.set_yscale("log")
    what = "claims in the agent's store" if axis == "store" else "claims on the queried line"
    ax.set_xlabel(what)
    ax.set_ylabel("query_memory latency, median (ms)")
    subject = "a one-claim line vs store size" if axis == "store" else "line length"
    ax.set_title(f"Query latency against {subject}")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    return _done(figure)


def ingest(results: dict[str, Any], axis: str) -> Any:
    """Ingest rate (claims/s, one claim per call) against store size or line length."""
    figure, ax = plt.subplots(figsize=(7, 4.2))
    xs = _xs(results, axis)
    for engine, (label, color, style) in STYLE.items():
        ys = _series(results, axis, engine, "ingest_rate")
        shown = [(x, y) for x, y in zip(xs, ys, strict=False) if y is not None]
        if shown:
            ax.plot(*zip(*shown, strict=True), style, color=color, label=label)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("claims in the agent's store" if axis == "store" else "claims on the line")
    ax.set_ylabel("ingest rate, median (claims/s)")
    where = "store size" if axis == "store" else "length of the line written to"
    ax.set_title(f"Ingest rate (one claim per transaction) against {where}")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    return _done(figure)


def concurrency(results: dict[str, Any]) -> Any:
    """Aggregate claims/s against writer threads: a color per configuration, solid for one
    agent, dashed for many."""
    figure, ax = plt.subplots(figsize=(7, 4.2))
    colors = ("tab:blue", "tab:green", "tab:purple", "tab:orange")
    configs = _get(results, "concurrency", "configs") or {}
    for color, (config, points) in zip(colors, configs.items(), strict=False):
        for agents in sorted({p["agents"] for p in points}):
            mine = sorted((p["writers"], p["rate"]) for p in points if p["agents"] == agents)
            ax.plot(
                *zip(*mine, strict=True),
                "o-" if agents == 1 else "s--",
                color=color,
                label=f"{config}, {agents} agent(s)",
            )
    writers = _get(results, "sizes", "threads") or []
    ax.set_xscale("log", base=2)
    ax.set_xticks(writers, [str(w) for w in writers])
    ax.set_ylim(bottom=0)
    ax.set_xlabel("writer threads")
    ax.set_ylabel("aggregate ingest rate (claims/s)")
    ax.set_title("Concurrent writers sharing one engine")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    return _done(figure)


def durable(results: dict[str, Any]) -> Any:
    """Raw one-row commits/s next to durable ingest claims/s (same disk, same run)."""
    rates = _get(results, "durable", "rate") or {}
    names = [n for n in ("raw", "ours", "reference") if rates.get(n) is not None]
    labels = {"raw": "raw one-row txn", "ours": "this engine", "reference": "reference 0.4.0"}
    figure, ax = plt.subplots(figsize=(6, 3.6))
    ax.bar(
        [labels[n] for n in names],
        [rates[n] for n in names],
        color=["tab:gray", "tab:blue", "tab:red"][: len(names)],
    )
    ax.set_ylabel("commits per second (median)")
    ax.set_title("Durable ingest against the disk's limit (SQLite, WAL + FULL)")
    ax.grid(True, axis="y", alpha=0.3)
    return _done(figure)
