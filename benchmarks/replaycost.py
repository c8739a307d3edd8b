"""The conformance corpus replayed on `sqlite-mem`: microseconds per operation.

Every stream under `data/` (the scenarios and the regressions) is read once, untimed;
then each round times `conformance.replay.replay` of every stream on the `sqlite-mem`
backend, as `python -m conformance replay` does it: a fresh engine per stream, every
operation, the ledger digests and the comparison with the recorded expectations. The
operations are counted from the streams that ran (a stream the backend skips for its
topology counts none). `engine_us_per_op` is the engine calls' own share (the harness's
per-operation timings), for comparison.
"""

from __future__ import annotations

import logging
import math
import time
from collections import Counter
from pathlib import Path
from typing import Any

from benchmarks import replayfloor
from benchmarks.context import Bench
from benchmarks.timing import finite, median
from conformance.expected import expected_path, read_expected
from conformance.replay import SKIP, replay, stream_paths
from mempill.streams import Stream, read_stream

BACKEND = "sqlite-mem"
DATA = Path(__file__).resolve().parents[1] / "data"


#: The folders of `data/` that hold claim streams (others hold recorded runs' metadata).
STREAM_FOLDERS = ("regressions", "scenarios")


def corpus(data: Path = DATA) -> list[Path]:
    """Stream files of the stream folders under `data` (`STREAM_FOLDERS`)."""
    folders = [data / name for name in STREAM_FOLDERS if (data / name).is_dir()]
    return stream_paths(folders)


def loaded_corpus(data: Path = DATA) -> list[tuple[Stream, list[str] | None]]:
    """Every stream of the corpus with its recorded expectations (read once, untimed)."""
    return [(read_stream(p), read_expected(expected_path(p))) for p in corpus(data)]


def replay_round(loaded: list[tuple[Stream, list[str] | None]]) -> dict[str, Any]:
    cells: Counter[str] = Counter()
    operations = 0
    engine_s = 0.0
    started = time.perf_counter()
    for stream, expected in loaded:
        verdict = replay(stream, [BACKEND], expected=expected)
        cell = verdict.cells[BACKEND]
        cells[cell] += 1
        if cell != SKIP:
            operations += len(stream.ops)
            engine_s += sum(r.elapsed_s for r in verdict.runs[BACKEND].records)
    seconds = time.perf_counter() - started
    return {
        "seconds": seconds,
        "operations": operations,
        "us_per_op": 1e6 * seconds / operations if operations else None,
        "engine_us_per_op": 1e6 * engine_s / operations if operations else None,
        "cells": dict(cells),
    }


def run(bench: Bench, data: Path = DATA) -> dict[str, Any]:
    """The replay's µs per operation, and its floor (`replayfloor`: the same sqlite3 calls
    alone) in rounds interleaved with it, the order alternating round by round."""
    sizes = bench.sizes
    paths = corpus(data)
    loaded = loaded_corpus(data)
    quiet = logging.getLogger("mempill")
    level = quiet.level
    quiet.setLevel(logging.ERROR)  # streams make the oracle fail on purpose: noise here
    rounds = []
    floors: list[dict[str, float]] = []
    floor: replayfloor.Floor | None = None
    floor_error = None
    try:
        bench.progress.say(f"conformance replay on {BACKEND}: capturing its sqlite3 calls")
        replay_round(loaded)  # warm: the engine's template database, caches, imports
        try:
            captured = replayfloor.capture(lambda: int(replay_round(loaded)["operations"]))
            floor = replayfloor.Floor(captured)
            floor.check()  # refuses a floor that does other work than the engine did
        except RuntimeError as e:  # the replay is still measured, without its floor
            floor_error = str(e)
            bench.progress.say(f"conformance replay: no floor ({e})")
        for number in range(sizes.replay_rounds):
            bench.progress.say(
                f"conformance replay on {BACKEND}: {len(loaded)} streams, "
                f"round {number + 1}/{sizes.replay_rounds}"
            )
            if floor is not None and number % 2:
                floors.append(floor.run())
            rounds.append(replay_round(loaded))
            if floor is not None and not number % 2:
                floors.append(floor.run())
    finally:
        quiet.setLevel(level)
        if floor is not None:
            floor.close()

    def middle(key: str) -> float | None:
        return finite(median([r[key] for r in rounds if r[key] is not None]))

    return {
        "backend": BACKEND,
        "folders": sorted({str(p.parent.relative_to(data.parent)) for p in paths}),
        "streams": len(loaded),
        "operations": rounds[-1]["operations"] if rounds else 0,
        "cells": rounds[-1]["cells"] if rounds else {},
        "rounds": rounds,
        "us_per_op": middle("us_per_op"),
        "engine_us_per_op": middle("engine_us_per_op"),
        "floor": {} if floor is None else _floor(floor.captured, floors),
        **({} if floor_error is None else {"floor_error": floor_error}),
    }


def _floor(captured: replayfloor.Capture, floors: list[dict[str, float]]) -> dict[str, Any]:
    per_op = 1e6 / captured.operations if captured.operations else math.nan
    return {
        "statements": captured.statements,
        "stores": captured.stores,
        "rounds": floors,
        "us_per_op": finite(median([f["seconds"] * per_op for f in floors])),
        "stores_us_per_op": finite(median([f["stores_seconds"] * per_op for f in floors])),
    }
