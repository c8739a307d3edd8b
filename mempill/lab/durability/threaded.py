"""Multi-threaded trials: N writer threads on one Engine, killed or power-cut, then every
agent of the store checked.

The writer (`writer --threads N --agents M --opener O`) runs N threads on one engine made
by `open_directory` (one file per agent) or `open_default` (one file, M = 1); thread i
writes its own stream into agent `workload.agent_name(i, M)` and acknowledges each
receipt, with its agent and disposition, only after `ingest` returned it. Whether the
engine serializes the threads on the agent's lock or commits many callers' claims with one
transaction and one fsync (group commit), a receipt is a promise: after a SIGKILL or a
power cut, every agent must hold every claim acknowledged for it, at its acknowledged
stream_seq and with its receipt's disposition, with a gap-free ledger, a clean
`PRAGMA integrity_check`, a ledger digest its replay rebuilds, and beliefs equal to a
replay of the survivors (`check.check`, agent by agent).
"""

from __future__ import annotations

import random
import sqlite3
import time
from collections.abc import Sequence
from dataclasses import fields
from pathlib import Path

from mempill.engine import Engine
from mempill.errors import MempillError
from mempill.lab.durability import check as checks
from mempill.lab.durability import procs, workload
from mempill.lab.durability.harness import VARIANTS, Configuration, HarnessError, Writer
from mempill.lab.durability.mount import PowerMount, arm, cut_detail, mount_options
from mempill.stores.sqlite import SQLiteStore

FILE_NAME = "store.db"  # the one file of an `open_default` store, under the trial's `agents`
SUMMED = (
    "acked", "lost", "surviving_claims", "ledger_entries", "orphan_claims", "lines_checked",
    "belief_mismatches", "replay_mismatches", "digest_mismatches", "disposition_mismatches",
    "commits",
)  # fmt: skip
FLAGS = ("ledger_gap_free", "integrity_ok", "integrity_detail")


def agents(config: Configuration) -> list[str]:
    """The agents the configuration's threads write into."""
    return [workload.agent_name(i, config.agents) for i in range(config.agents)]


def location(config: Configuration, base: Path) -> Path:
    """What the writer opens under `base`: the directory, or the one file (`file`)."""
    return base / FILE_NAME if config.opener == "file" else base


def writer_options(config: Configuration) -> tuple[str, ...]:
    return (
        "--threads", str(config.threads), "--agents", str(config.agents),
        "--opener", config.opener, *VARIANTS[config.variant],
    )  # fmt: skip


def combine(results: Sequence[tuple[str, checks.CheckResult]]) -> checks.CheckResult:
    """One result for the whole store: counts summed over the agents, flags all-of."""
    sums = {name: sum(getattr(r, name) for _, r in results) for name in SUMMED}
    failed = [f"{agent}: {r.integrity_detail}" for agent, r in results if not r.integrity_ok]
    result = checks.CheckResult(
        **sums,
        ledger_gap_free=all(r.ledger_gap_free for _, r in results),
        integrity_ok=not failed,
        integrity_detail="; ".join(failed)[:500] if failed else "ok",
    )
    assert {f.name for f in fields(result)} == {*SUMMED, *FLAGS}, "a field is not combined"
    return result


def _check_agent(
    engine: Engine,
    agent: str,
    acked: list[checks.Ack],
    integrity: tuple[bool, str],
    told: dict[str, str],
) -> checks.CheckResult:
    return checks.check(engine, acked, lambda: integrity, agent=agent, dispositions=told)


def check_store(
    config: Configuration, where: Path, receipts: Sequence[checks.AgentAck]
) -> checks.CheckResult:
    """Recover the store at `where` (directory or file) and check each of its agents
    against the acknowledgements `(agent, claim_ref, stream_seq, disposition)`."""
    names = agents(config)
    unknown = {a for a, *_ in receipts} - set(names)
    if unknown:
        raise HarnessError(f"acknowledgements for agents outside the trial: {sorted(unknown)}")
    acked = {a: [(ref, seq) for b, ref, seq, _ in receipts if b == a] for a in names}
    if config.opener == "file":
        integrity = dict.fromkeys(names, checks.sqlite_integrity(where))
    else:
        integrity = {a: checks.sqlite_integrity(where / f"{a}.db") for a in names}
    results = []
    try:
        store = SQLiteStore(path=where) if config.opener == "file" else SQLiteStore(directory=where)
        with Engine(store, clock=checks.ManualClock(workload.CHECK_AT)) as engine:
            for agent in names:
                told = {ref: d for b, ref, _, d in receipts if b == agent}
                result = _check_agent(engine, agent, acked[agent], integrity[agent], told)
                results.append((agent, result))
    except (MempillError, sqlite3.Error) as e:
        flat = [ack for a in names for ack in acked[a]]
        return checks.unreadable(flat, f"the recovered store cannot be read: {e}")
    return combine(results)


def _thread_failures(writer: Writer, config: Configuration, seed: int) -> None:
    """A writer thread that raised (an unexpected receipt, an error from `ingest`) ends the
    experiment: a kill or a frozen cut never makes a thread raise, the engine did. The
    trial is named before and after the log's tail (whichever end a reader keeps)."""
    log = writer.log_path.read_text(errors="replace")
    if "writer thread" in log:
        parts = (config.kind, config.sync, config.role, config.variant, f"seed {seed}")
        name = " ".join(part for part in parts if part)
        first = log[log.index("writer thread") :][:1500]
        raise HarnessError(
            f"a writer thread failed ({name}); its first error:\n{first}\n"
            f"the writer's log ends:\n{log[-1500:]}\n(trial: {name})"
        )


def trial(
    config: Configuration, root: Path, seed: int, delay: float
) -> tuple[checks.CheckResult, int, int, str]:
    """Run the threaded writer, SIGKILL it (or cut the power under it) `delay` seconds
    after its first acknowledgement, and check the store; also the discarded bytes, the
    failed ingest calls and what the crash model did."""
    extra = writer_options(config)
    if config.kind == "process-kill":
        base = root / "agents"
        writer = Writer(root, "sqlite", str(location(config, base)), config.sync, seed, extra)
        writer.wait_first_ack()
        time.sleep(delay)
        writer.kill()
        _thread_failures(writer, config, seed)
        result = check_store(config, location(config, base), writer.acks.receipts)
        return result, 0, writer.acks.errors, ""
    rng = random.Random(seed)
    options = mount_options(config.kind, rng)
    with PowerMount(root / "backing", root / "mnt", **options) as mount:
        target = location(config, mount.mountpoint / "agents")
        writer = Writer(root, "sqlite", str(target), config.sync, seed, extra)
        try:
            writer.wait_first_ack()
            arm(mount, config, writer, rng)
            time.sleep(delay)
            procs.freeze([writer.pid])  # every thread stopped: no acknowledgement after this
            report = mount.cut()
        finally:
            writer.kill()
    _thread_failures(writer, config, seed)
    recovered = location(config, mount.backing / "agents")
    result = check_store(config, recovered, writer.acks.receipts)
    return result, int(report["discarded_bytes"]), writer.acks.errors, cut_detail(report)
