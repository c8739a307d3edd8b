"""One trial of one configuration: run the writer, crash it, recover and check."""

from __future__ import annotations

import random
import sqlite3
import time
from pathlib import Path
from typing import Any

from mempill.engine import Engine
from mempill.errors import MempillError
from mempill.lab.durability import check as checks
from mempill.lab.durability import procs, workload
from mempill.lab.durability.harness import (
    KILL_WINDOW,
    VARIANTS,
    Configuration,
    HarnessError,
    TrialResult,
    Writer,
    trial_directory,
)
from mempill.lab.durability.mount import PowerMount, arm, cut_detail, mount_options
from mempill.stores.sqlite import SQLiteStore


def check_sqlite(directory: Path, acked: list[checks.Ack]) -> checks.CheckResult:
    """Recover the agent's SQLite database in `directory` and check it."""
    path = directory / f"{workload.AGENT}.db"
    integrity = checks.sqlite_integrity(path)
    engine = Engine(SQLiteStore(directory=directory), clock=checks.ManualClock(workload.CHECK_AT))
    try:
        return checks.check(engine, acked, lambda: integrity)
    except (MempillError, sqlite3.Error) as e:
        return checks.unreadable(acked, f"the recovered store cannot be read: {e}")
    finally:
        engine.close()


def _sqlite_trial(
    config: Configuration, root: Path, seed: int, delay: float, rng: random.Random
) -> tuple[Any, int, int, str]:
    extra = VARIANTS[config.variant]
    if config.kind == "process-kill":
        target = root / "agents"
        writer = Writer(root, "sqlite", str(target), config.sync, seed, extra)
        writer.wait_first_ack()
        time.sleep(delay)
        acked = writer.kill()
        return check_sqlite(target, acked), 0, writer.acks.errors, ""
    options = mount_options(config.kind, rng)
    with PowerMount(root / "backing", root / "mnt", **options) as mount:
        target = mount.mountpoint / "agents"
        writer = Writer(root, "sqlite", str(target), config.sync, seed, extra)
        try:
            writer.wait_first_ack()
            arm(mount, config, writer, rng)
            time.sleep(delay)
            procs.freeze([writer.pid])
            report = mount.cut()
        finally:
            acked = writer.kill()
    result = check_sqlite(mount.backing / "agents", acked)
    return result, int(report["discarded_bytes"]), writer.acks.errors, cut_detail(report)


def run_trial(
    config: Configuration, trial: int, seed: int, pg_template: Path | None = None
) -> TrialResult:
    """One trial of one configuration; `seed` fixes the workload and the kill moment."""
    rng = random.Random(seed)
    delay = rng.uniform(*KILL_WINDOW)
    started = time.perf_counter()
    with trial_directory() as root:
        if config.threaded:
            from mempill.lab.durability import threaded

            result, discarded, errors, cut = threaded.trial(config, root, seed, delay)
        elif config.backend == "sqlite":
            result, discarded, errors, cut = _sqlite_trial(config, root, seed, delay, rng)
        else:
            from mempill.lab.durability import postgres as pg_trials

            if pg_template is None:
                raise HarnessError("PostgreSQL trials need a template cluster")
            result, discarded, errors, cut = pg_trials.trial(
                config, root, pg_template, seed, delay, rng
            )
    return TrialResult(
        configuration=config,
        trial=trial,
        seed=seed,
        kill_after_s=round(delay, 4),
        result=result,
        discarded_bytes=discarded,
        seconds=round(time.perf_counter() - started, 3),
        write_errors=errors,
        cut=cut,
    )
