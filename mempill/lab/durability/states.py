"""`python -m mempill.lab crash-states`: every crash state a persistence model allows.

    python -m mempill.lab crash-states --backend sqlite --model all

Records the file operations of a short real workload (the lab's writer ingesting
`--claims` claims through the real engine into an empty folder, under strace; see
`recorder`), then checks the crash states a model allows, recovering each one with the
real engine and the lab's checks (every acknowledged claim present, the ledger gap-free,
integrity_check, the belief of every touched line equal to a replay of the survivors).

A crash point is a position in the recorded operations: the crash happens just before
operation k+1 (after the first k; after the last one for the final point), and the claims
acknowledged there are the `ack` lines the writer wrote before operation k+1. The durable
image at a crash point is the initial image (an empty root folder) plus every operation
made durable by an fsync/fdatasync completed before the point; the model decides what
may happen to the rest:

* `reorder`: each pending (not yet synced) write or truncate of each file is
  independently persisted or dropped, applied in recorded order. Directory operations
  (create, mkdir, rename, unlink) are durable at once.
* `torn-write`: each pending write is cut at `--sector` boundaries of the file offset;
  each piece is persisted, dropped or filled with garbage (seeded random bytes); a
  pending truncate is persisted or dropped. Directory operations are durable at once.
* `lost-dirent`: pending data is dropped and synced data kept (the plain power cut), but
  a directory operation is durable only once its folder is fsynced (an fsync of the
  folder's descriptor); until then each pending one is independently persisted or
  dropped. A file whose entry is not durable is absent, and a folder whose entry is not
  durable takes all its contents with it.

Every crash state just before a pending-only operation (a data write, or under
lost-dirent an entry operation) is also a state just after it, with the same or more
acknowledged claims, so only the maximal points are checked: just before each
operation that makes something durable, wherever acks were written, and at the end.
When all their states fit in `--max-states` they are all checked (`exhaustive`);
otherwise the budget is spread over the points (a point with few states gets them all),
and a sampled point gets its all-dropped and all-persisted states, then random prefixes
and random combinations drawn with `--seed`. Identical images with the same acks are
recovered once (`duplicate_states` counts the others). SQLite's `-shm` file is never
part of an image (SQLite rebuilds it from the WAL).

Each model's measured configuration is the store as shipped (synchronous=FULL, folder
syncs on); its control must fail: `reorder` and `torn-write` run the writer with
synchronous=NORMAL (a commit is acknowledged before its WAL frames are synced: any
dropped or torn frame of an acknowledged commit loses it; NORMAL is the mistake one can
actually make, OFF loses even more), `lost-dirent` runs FULL with `--no-dirsync` (the
store's folder is created without syncing its parent, so the whole store can vanish).

Exit status: 0 when every measured configuration has no failing state and every control
has one; 1 when a measured configuration failed; 3 when a control found nothing; 2 on bad
arguments or when the experiment could not run (strace missing, the writer failed).
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import random
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mempill.lab.durability import recorder
from mempill.lab.durability.check import CheckResult
from mempill.lab.durability.crash import exit_status
from mempill.lab.durability.harness import HarnessError
from mempill.lab.durability.images import MODELS, CrashPoint, Replay, Vector, digest, write_image
from mempill.lab.durability.trials import check_sqlite

DEFAULT_CLAIMS = 20
DEFAULT_MAX_STATES = 300  # per configuration: all six take a couple of minutes
FAILURES_KEPT = 5
CONTROLS = {
    "reorder": ("NORMAL", True),
    "torn-write": ("NORMAL", True),
    "lost-dirent": ("FULL", False),
}


@dataclass(frozen=True, slots=True)
class Configuration:
    model: str
    role: str  # "measured" (the store as shipped) or "control" (must fail)
    sync: str
    dirsync: bool


def configurations(models: Sequence[str], controls: bool) -> list[Configuration]:
    chosen = [Configuration(m, "measured", "FULL", True) for m in models]
    if controls:
        chosen += [Configuration(m, "control", *CONTROLS[m]) for m in models]
    return chosen


def parse(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m mempill.lab crash-states",
        description="Check every crash state of a recorded workload a persistence model allows.",
    )
    parser.add_argument("--backend", choices=("sqlite",), required=True)
    parser.add_argument("--model", choices=(*MODELS, "all"), required=True)
    parser.add_argument("--claims", type=int, default=DEFAULT_CLAIMS, help="claims written")
    parser.add_argument(
        "--max-states", type=int, default=DEFAULT_MAX_STATES, help="states per configuration"
    )
    parser.add_argument("--seed", type=int, default=0, help="workload, sampling and garbage")
    parser.add_argument("--sector", type=int, choices=(512, 4096), default=512)
    parser.add_argument("--json", action="store_true", help="print only the JSON summaries")
    parser.add_argument("--no-control", action="store_true", help="skip the controls")
    args = parser.parse_args(argv)
    if args.claims < 1 or args.max_states < 1:
        parser.error("--claims and --max-states must be >= 1")
    args.models = list(MODELS) if args.model == "all" else [args.model]
    return args


# ---------------------------------------------------------------- which states


def _sampled(point: CrashPoint, count: int, rng: random.Random) -> list[Vector]:
    """`count` distinct states of a point with more: all dropped, all persisted, then
    alternately a random prefix persisted (the rest dropped) and a random combination."""
    units = point.units
    chosen = dict.fromkeys([tuple(0 for _ in units), tuple(1 for _ in units)])
    for attempt in range(count * 20):
        if len(chosen) >= count:
            break
        if attempt % 2:
            cut = rng.randrange(len(units) + 1)
            vector = tuple(1 if i < cut else 0 for i in range(len(units)))
        else:
            vector = tuple(rng.randrange(u.arity) for u in units)
        chosen[vector] = None
    return list(chosen)[:count]


def plan(
    points: Sequence[CrashPoint], budget: int, rng: random.Random
) -> tuple[list[tuple[CrashPoint, list[Vector]]], bool]:
    """The states to check and whether they are all the model allows."""
    sizes = [p.size for p in points]
    if sum(sizes) <= budget:
        every = [list(itertools.product(*(range(u.arity) for u in p.units))) for p in points]
        return list(zip(points, every, strict=True)), True
    if budget < len(points):
        kept = sorted(rng.sample(range(len(points)), budget))
        return [(points[i], [tuple(0 for _ in points[i].units)]) for i in kept], False
    allotted: dict[int, int] = {}
    remaining = budget
    for n, i in enumerate(sorted(range(len(points)), key=lambda i: sizes[i])):
        allotted[i] = min(sizes[i], remaining // (len(points) - n))
        remaining -= allotted[i]
    chosen = []
    for i, point in enumerate(points):
        if sizes[i] <= allotted[i]:
            vectors = list(itertools.product(*(range(u.arity) for u in point.units)))
        else:
            vectors = _sampled(point, allotted[i], rng)
        chosen.append((point, vectors))
    return chosen, False


# ---------------------------------------------------------------- checking


def problems(result: CheckResult) -> list[str]:
    """What failed in one recovered state (empty: sound)."""
    if result.integrity_detail.startswith("the recovered store cannot be read"):
        return [f"unreadable: {result.integrity_detail}"]
    found = []
    if result.lost:
        found.append(f"lost {result.lost} of {result.acked} acked claims")
    if not result.integrity_ok:
        found.append(f"integrity: {result.integrity_detail}")
    if not result.ledger_gap_free or result.orphan_claims:
        found.append(f"ledger: gap-free {result.ledger_gap_free}, orphans {result.orphan_claims}")
    if result.belief_mismatches or result.digest_mismatches:
        found.append(
            f"belief mismatch on {result.belief_mismatches} lines, "
            f"digest mismatches {result.digest_mismatches}"
        )
    return found


def describe(replay: Replay, point: CrashPoint, vector: Vector) -> dict[str, Any]:
    """A failing state for a reader: where the crash was and what it kept."""
    ops = replay.ops
    before = ops[point.index].describe() if point.index < len(ops) else "the end of the workload"
    counts = [sum(1 for c in vector if c == k) for k in (0, 1, 2)]
    choice = f"{len(vector)} pending units: {counts[1]} persisted, {counts[0]} dropped"
    torn = replay.model == "torn-write"
    if torn:
        choice += f", {counts[2]} garbage"
    picked = [
        f"{ops[u.op].describe()}{f' [{u.start}:{u.end}]' if torn else ''} "
        + ("dropped", "persisted", "garbage")[c]
        for u, c in zip(point.units, vector, strict=True)
        if c != 1
    ]
    return {
        "crash_point": point.index,
        "before": before,
        "acked": point.acked,
        "choice": choice,
        "not_as_written": picked[:4] + ([f"... {len(picked) - 4} more"] if len(picked) > 4 else []),
    }


def states(
    config: Configuration, recording: recorder.Recording, args: argparse.Namespace
) -> tuple[Replay, list[CrashPoint], list[tuple[CrashPoint, list[Vector]]], bool]:
    replay = Replay(recording.ops, config.model, args.sector)
    points = replay.points([position for position, _ in recording.acks])
    rng = random.Random(f"{args.seed}/{config.model}/{config.role}")
    chosen, exhaustive = plan(points, args.max_states, rng)
    return replay, points, chosen, exhaustive


def check_all(
    replay: Replay,
    chosen: list[tuple[CrashPoint, list[Vector]]],
    recording: recorder.Recording,
    args: argparse.Namespace,
    workdir: Path,
    bar: Any,
) -> Iterator[tuple[CrashPoint, Vector, list[str] | None]]:
    """Recover and check each state; None for a state whose image was already checked."""
    seen: set[tuple[str, int]] = set()
    for point, vectors in chosen:
        acked = recording.acked(point.acked)
        for vector in vectors:
            rng = random.Random(f"{args.seed}/{point.index}/{vector}")
            image = replay.image(point, vector, rng.randbytes)
            key = (digest(image), point.acked)
            bar.update(1)
            if key in seen:
                yield point, vector, None
                continue
            seen.add(key)
            root = Path(tempfile.mkdtemp(prefix="state-", dir=workdir))
            try:
                write_image(image, root)
                yield point, vector, problems(check_sqlite(root / recorder.STORE, acked))
            finally:
                shutil.rmtree(root, ignore_errors=True)


def run_configuration(
    config: Configuration, recording: recorder.Recording, args: argparse.Namespace, workdir: Path
) -> dict[str, Any]:
    """Check one (model, role) and summarize it as one JSON object."""
    from tqdm.auto import tqdm

    started = time.perf_counter()
    replay, points, chosen, exhaustive = states(config, recording, args)
    planned = sum(len(v) for _, v in chosen)
    checked = failed = duplicates = 0
    failures: list[dict[str, Any]] = []
    name = f"{config.model} {config.sync}{'' if config.dirsync else ' no-dirsync'} ({config.role})"
    with tqdm(total=planned, desc=name, unit="state", file=sys.stderr, mininterval=1) as bar:
        for point, vector, found in check_all(replay, chosen, recording, args, workdir, bar):
            if found is None:
                duplicates += 1
                continue
            checked += 1
            if found:
                failed += 1
                if len(failures) < FAILURES_KEPT:
                    failures.append({**describe(replay, point, vector), "failed": found})
            bar.set_postfix_str(f"failed {failed}", refresh=False)
    space = sum(p.size for p in points)
    summary: dict[str, Any] = {
        "backend": "sqlite",
        "model": config.model,
        "role": config.role,
        "sync": config.sync,
        "dirsync": config.dirsync,
        "claims": recording.claims,
        "seed": args.seed,
        "sector": args.sector if config.model == "torn-write" else None,
        "operations": len(recording.ops),
        "acks": len(recording.acks),
        "crash_points": len(recording.ops) + 1,
        "maximal_points": len(points),
        "state_space_log2": round(math.log2(space), 1),
        "states_planned": planned,
        "states_checked": checked,
        "duplicate_states": duplicates,
        "states_failed": failed,
        "exhaustive": exhaustive,
        "failures": failures,
        "record_seconds": recording.seconds,
        "seconds": round(time.perf_counter() - started, 1),
    }
    if config.role == "control":
        summary["verdict"] = "control found failures" if failed else "INERT CONTROL"
    else:
        summary["verdict"] = "FAILED" if failed else "ok"
    return summary


def execute(args: argparse.Namespace) -> Iterator[dict[str, Any]]:
    """Record once per writer setting, then check each configuration in turn."""
    workdir = Path(tempfile.mkdtemp(prefix="mp-crash-states-"))
    recordings: dict[tuple[str, bool], recorder.Recording] = {}
    try:
        for config in configurations(args.models, not args.no_control):
            key = (config.sync, config.dirsync)
            if key not in recordings:
                where = workdir / f"record-{len(recordings)}"
                where.mkdir()
                recordings[key] = recorder.record(
                    where, config.sync, args.claims, args.seed, dirsync=config.dirsync
                )
            yield run_configuration(config, recordings[key], args, workdir)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def main(argv: Sequence[str] | None = None) -> int:
    """Run every configuration, print one JSON object each, return the exit status."""
    args = parse(sys.argv[1:] if argv is None else argv)
    reason = recorder.unavailable()
    if reason is not None:
        print(f"crash-states: {reason}", file=sys.stderr)
        return 2
    summaries = []
    try:
        for summary in execute(args):
            summaries.append(summary)
            if not args.json:
                name = f"{summary['model']} {summary['sync']}"
                name += "" if summary["dirsync"] else " no-dirsync"
                print(
                    f"# {name} ({summary['role']}): {summary['states_checked']} states checked, "
                    f"{summary['states_failed']} failed, exhaustive {summary['exhaustive']}: "
                    f"{summary['verdict']}"
                )
            print(json.dumps(summary), flush=True)
    except HarnessError as e:
        print(f"crash-states: the experiment failed: {e}", file=sys.stderr)
        return 2
    return exit_status(summaries)


if __name__ == "__main__":
    raise SystemExit(main())
