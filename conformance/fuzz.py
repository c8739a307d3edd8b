"""Running the differential state machine: budgets, statistics, saved regressions.

`HYPOTHESIS_PROFILE` picks the budget: `ci` (the default; derandomized, so CI explores
the same examples every time), `dev` (seconds) or `deep` (long, random, with the example
database). Profiles are plain settings objects, never registered globally, so the other
property tests of the suite keep their own settings.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, Phase, settings
from hypothesis.stateful import run_state_machine_as_test

from conformance.engines import kept_stores
from conformance.machine import (
    LAST_FAILURE,
    REGRESSIONS,
    STATS,
    DifferentialMachine,
    Stats,
    machine_for,
)
from mempill.streams import Header, Stream, dump_stream, write_stream

BASE = settings(
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    phases=(Phase.explicit, Phase.reuse, Phase.generate, Phase.shrink),  # no explain phase:
    report_multiple_bugs=False,  # the last failing run is then the shrunk example
)
#: HYPOTHESIS_PROFILE picks one (default `ci`); never registered globally, so the other
#: property tests of the suite keep their own settings.
PROFILES = {
    "dev": settings(BASE, max_examples=15, stateful_step_count=25, derandomize=True),
    "ci": settings(BASE, max_examples=260, stateful_step_count=40, derandomize=True, database=None),
    "deep": settings(BASE, max_examples=2000, stateful_step_count=80),
}


def profile(name: str | None = None) -> tuple[str, settings]:
    chosen = name or os.environ.get("HYPOTHESIS_PROFILE") or "ci"
    if chosen not in PROFILES:
        raise ValueError(f"HYPOTHESIS_PROFILE={chosen!r}: choose one of {', '.join(PROFILES)}")
    return chosen, PROFILES[chosen]


def save_regression(stream: Stream, directory: Path = REGRESSIONS) -> Path:
    """Write a failing example as a named stream; the regression tests replay it."""
    digest = hashlib.sha256(dump_stream(stream).encode()).hexdigest()[:10]
    name = f"hypothesis-{digest}"
    header = Header(**{**_fields(stream.header), "name": name, "description": "found by fuzz"})
    return write_stream(Stream(header, stream.ops), directory / f"{name}.jsonl")


def _fields(header: Header) -> dict[str, Any]:
    return {name: getattr(header, name) for name in Header.__dataclass_fields__}


def run_machine(
    backends: tuple[str, ...],
    profile_name: str | None = None,
    regressions: Path = REGRESSIONS,
    *,
    machine: type[DifferentialMachine] | None = None,
    budget: settings | None = None,
) -> Stats:
    """Run the machine under a profile; on failure save the shrunk stream, then re-raise.

    `machine` and `budget` replace the machine class and the profile's settings (tests).
    """
    if len(set(backends)) < 2:
        raise ValueError(
            f"the differential machine compares backends: give at least two (got {backends})"
        )
    name, chosen = profile(profile_name)
    STATS.reset(backends, name)
    LAST_FAILURE.clear()
    started = time.perf_counter()
    try:
        with kept_stores():
            run_state_machine_as_test(machine or machine_for(backends), settings=budget or chosen)
    except BaseException:
        if LAST_FAILURE:
            STATS.regression = str(save_regression(LAST_FAILURE[0], regressions))
        raise
    finally:
        STATS.seconds = time.perf_counter() - started
    return STATS


def fuzz(
    backends: tuple[str, ...], profile_name: str | None, out: Path, examples: int | None = None
) -> int:
    """`python -m conformance fuzz`: run the machine, write its statistics, say what it found.

    `examples` overrides the profile's number of examples (a bounded random run: use it
    with the `deep` profile).
    """
    if len(set(backends)) < 2:
        print(f"fuzz: the machine compares backends; give at least two (got {', '.join(backends)})")
        return 2
    name, chosen = profile(profile_name)
    budget = chosen if examples is None else settings(chosen, max_examples=examples)
    print(f"hypothesis state machine on {', '.join(backends)} ({name})")
    failed = False
    try:
        run_machine(backends, profile_name, budget=budget)
    except Exception as e:  # the falsifying example is already reported by hypothesis
        failed = True
        print(f"FAILED: {type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}")
    out.mkdir(parents=True, exist_ok=True)
    stats = STATS.to_dict()
    (out / "hypothesis.json").write_text(json.dumps(stats, indent=1) + "\n", encoding="utf-8")
    print(
        f"{stats['examples']} examples, {stats['steps']} steps, "
        f"{stats['divergences']} divergences in {stats['seconds']:.1f}s"
    )
    if STATS.regression:
        print(f"the failing stream is saved as {STATS.regression}; to replay it in every test")
        print(f"run from now on, keep it: cp {STATS.regression} data/regressions/")
    return 1 if failed else 0
