"""`python -m mempill.lab crash`: crash and power-loss durability experiments (issue 5).

    python -m mempill.lab crash --backend sqlite --kind power-loss --sync FULL --trials 50

Each trial runs a writer through the real engine, kills it (or cuts the power under its
files), recovers and checks: every acknowledged claim present, the ledger gap-free, the
store's integrity check, and the belief of every touched line equal to a replay of the
surviving claims. `--kind` and `--sync` take comma-separated lists. Every run also
carries the backend's positive control (SQLite NORMAL under power loss; PostgreSQL
synchronous_commit=off), which must lose acknowledged writes or the harness proves
nothing. One JSON object per configuration goes to stdout, a tidy row per trial is
appended to `--out` (CSV, `build/durability/trials.csv` by default; the run's revision,
machine and seed go to `runs.jsonl` beside it), and a progress bar runs on stderr, with a
progress line every half minute and at the end of each configuration.

    python -m mempill.lab crash --backend sqlite --kind all --threads 16 --agents 1

runs the multi-threaded writer instead (`threaded`): N threads on one Engine into M agents
(1 <= M <= N; thread i into agent i mod M), opened by `open_directory` and, for M = 1,
also by `open_default` (`--opener directory,file`); its control is SQLite NORMAL under a
power cut with the same threads, agents and opener. Its rows (with `threads`, `agents`,
`opener` and the digest and disposition checks) go to `build/durability/threads.csv` by
default, never into a CSV of the single writer's rows.

Exit status: 0 when every safe mode (SQLite FULL, PostgreSQL on) lost nothing and was
sound and every control lost something; 1 when a safe mode failed; 3 when a control
lost nothing; 2 on bad arguments or when the experiment itself could not run.
"""

from __future__ import annotations

import argparse
import csv
import json
import random
import shutil
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from mempill.lab import runs
from mempill.lab.durability import procs
from mempill.lab.durability.harness import (
    BACKENDS,
    KINDS,
    OPENERS,
    Configuration,
    HarnessError,
    TrialResult,
)
from mempill.lab.durability.mount import unavailable_reason
from mempill.lab.durability.trials import run_trial

DEFAULT_OUT = runs.BUILD / "durability" / "trials.csv"
DEFAULT_THREADS_OUT = runs.BUILD / "durability" / "threads.csv"
PROGRESS_EVERY = 30.0  # seconds between progress lines on stderr
COLUMNS = (
    "run_id", "revision", "recorded_at", "backend", "kind", "sync", "role", "variant", "trial",
    "seed", "kill_after_s", "acked", "lost", "surviving_claims", "ledger_entries",
    "ledger_gap_free", "orphan_claims", "integrity_ok", "integrity_detail", "lines_checked",
    "belief_mismatches", "replay_mismatches", "discarded_bytes", "seconds", "write_errors", "cut",
)  # fmt: skip
THREAD_COLUMNS = (
    *COLUMNS[:8], "threads", "agents", "opener", *COLUMNS[8:22],
    "digest_mismatches", "disposition_mismatches", "commits", *COLUMNS[22:],
)  # fmt: skip
THREAD_KINDS = KINDS  # the threaded writer (group commit) goes through every model too
#: The positive control of each kind: (sync, variant) that must lose acknowledged claims.
CONTROLS = {
    "sqlite": {
        "process-kill": ("power-loss", "NORMAL", ""),  # a kill loses nothing even there
        "power-loss": ("power-loss", "NORMAL", ""),
        "reorder": ("reorder", "NORMAL", ""),
        "torn-write": ("torn-write", "NORMAL", ""),
        "lost-dirent": ("lost-dirent", "FULL", "no-dirsync"),
        "fsync-error": ("fsync-error", "FULL", "ack-on-error"),
    },
    "postgres": {kind: (kind, "off", "") for kind in KINDS},
}
FAILURES = (
    "lost", "integrity_failures", "ledger_gap_failures", "orphan_claims", "belief_mismatches",
    "digest_mismatches", "disposition_mismatches",
)  # fmt: skip


def _list(text: str, allowed: Sequence[str], what: str) -> list[str]:
    """Parse a comma-separated choice list case-insensitively, in the allowed spelling."""
    spelled = {a.lower(): a for a in allowed}
    chosen = [t.strip() for t in text.split(",") if t.strip()]
    if chosen == ["all"]:
        return list(allowed)
    unknown = [c for c in chosen if c.lower() not in spelled]
    if unknown or not chosen:
        raise argparse.ArgumentTypeError(
            f"{what}: {', '.join(unknown) or 'nothing'} is not one of {', '.join(allowed)}"
        )
    return [spelled[c.lower()] for c in chosen]


def parse(argv: Sequence[str]) -> argparse.Namespace:
    """The command line; `kinds` and `syncs` are the parsed lists."""
    parser = argparse.ArgumentParser(
        prog="python -m mempill.lab crash",
        description="Crash and power-loss durability experiments on SQLite and PostgreSQL.",
    )
    parser.add_argument("--backend", choices=tuple(BACKENDS), required=True)
    parser.add_argument("--kind", default="process-kill", help=f"{','.join(KINDS)} | all")
    parser.add_argument("--sync", default=None, help="SQLite FULL,NORMAL,OFF | PostgreSQL on,off")
    parser.add_argument("--trials", type=int, default=10, help="trials per configuration")
    parser.add_argument("--control-trials", type=int, default=None, help="default: --trials")
    parser.add_argument("--no-control", action="store_true", help="skip the positive control")
    parser.add_argument(
        "--threads", type=int, default=1, help="N > 1: N writer threads, one Engine"
    )
    parser.add_argument("--agents", type=int, default=1, help="with --threads: 1 <= M <= N agents")
    parser.add_argument(
        "--opener",
        default=None,
        help="with --threads: directory (open_directory), file (open_default; M = 1) | all; "
        "default all for M = 1, else directory",
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", action="store_true", help="print only the JSON summaries")
    parser.add_argument(
        "--out",
        type=Path,
        default=None,
        help=f"CSV the trials are appended to (default {DEFAULT_OUT}, with --threads "
        f"{DEFAULT_THREADS_OUT}; the curated set is data/durability/trials.csv); the run's "
        "metadata goes to runs.jsonl beside it",
    )
    args = parser.parse_args(argv)
    try:
        threaded_all = args.threads > 1 and args.kind.strip().lower() == "all"
        args.kinds = list(THREAD_KINDS) if threaded_all else _list(args.kind, KINDS, "--kind")
        args.syncs = _list(args.sync or BACKENDS[args.backend][0], BACKENDS[args.backend], "--sync")
        default_openers = "directory" if args.agents > 1 else "all"
        args.openers = _list(args.opener or default_openers, OPENERS, "--opener")
    except argparse.ArgumentTypeError as e:
        parser.error(str(e))
    if args.trials < 1 or (args.control_trials is not None and args.control_trials < 0):
        parser.error("--trials must be >= 1 and --control-trials >= 0")
    problem = _threads_problem(args)
    if problem:
        parser.error(problem)
    if args.out is None:
        args.out = DEFAULT_THREADS_OUT if args.threads > 1 else DEFAULT_OUT
    return args


def _threads_problem(args: argparse.Namespace) -> str | None:
    """Why --threads, --agents and --opener do not fit together, or None."""
    if args.threads < 1 or not 1 <= args.agents <= args.threads:
        return "--threads must be >= 1 and 1 <= --agents <= --threads"
    if args.threads == 1:
        return "--opener needs --threads N > 1" if args.opener else None
    if args.backend != "sqlite":
        return "--threads is for --backend sqlite (the multi-threaded writer)"
    if any(k not in THREAD_KINDS for k in args.kinds):
        return f"--threads runs the kinds {', '.join(THREAD_KINDS)}"
    if "file" in args.openers and args.agents != 1:
        return "--opener file (open_default: one file, one agent) needs --agents 1"
    return None


def columns(args: argparse.Namespace) -> tuple[str, ...]:
    """The CSV columns of this run's rows: the threaded writer's rows have more."""
    return THREAD_COLUMNS if args.threads > 1 else COLUMNS


def out_problem(path: Path, wanted: Sequence[str]) -> str | None:
    """Why the run's rows cannot be appended to `path` (its header differs), or None."""
    if not path.exists() or path.stat().st_size == 0:
        return None
    with open(path, newline="", encoding="utf-8") as handle:
        header = next(csv.reader(handle), [])
    if tuple(header) == tuple(wanted):
        return None
    kind = "multi-threaded" if "threads" in header else "single-writer"
    return f"{path} holds {kind} trials with other columns; give another --out"


def plan(args: argparse.Namespace) -> list[tuple[Configuration, int]]:
    """The measured configurations and the backend's positive controls, with trial counts."""
    shape: dict[str, Any] = {"threads": args.threads, "agents": args.agents}
    openers = args.openers if args.threads > 1 else ["directory"]
    measured = [
        Configuration(backend=args.backend, kind=k, sync=s, opener=o, **shape)
        for o in openers
        for k in args.kinds
        for s in args.syncs
    ]
    controls: list[Configuration] = []
    for kind in args.kinds:
        control_kind, sync, variant = CONTROLS[args.backend][kind]
        for opener in openers:
            control = Configuration(
                backend=args.backend, kind=control_kind, sync=sync, variant=variant,
                opener=opener, **shape,
            )  # fmt: skip
            if control not in controls:
                controls.append(control)
    control_trials = args.trials if args.control_trials is None else args.control_trials
    chosen: list[tuple[Configuration, int]] = []
    for config in measured:
        role = "control" if config in controls else "measured"
        chosen.append((Configuration(**{**asdict(config), "role": role}), args.trials))
    if not args.no_control and control_trials:
        for control in controls:
            if control not in measured:
                as_control = Configuration(**{**asdict(control), "role": "control"})
                chosen.append((as_control, control_trials))
    return chosen


def trial_seeds(seed: int, config: Configuration, count: int) -> list[int]:
    """Per-trial seeds that depend only on the run seed and the configuration."""
    name = f"{seed}/{config.backend}/{config.kind}/{config.sync}/{config.role}"
    name += f"/{config.variant}" if config.variant else ""
    if config.threaded:
        name += f"/{config.threads}x{config.agents}/{config.opener}"
    rng = random.Random(name)
    return [rng.randrange(2**31) for _ in range(count)]


def row(run: tuple[str, str], trial: TrialResult) -> dict[str, Any]:
    """The tidy CSV row of one trial; `run` is (run_id, revision)."""
    config, result = trial.configuration, trial.result
    return {
        "run_id": run[0],
        "revision": run[1],
        "recorded_at": datetime.now(UTC).isoformat(timespec="seconds"),
        **{k: getattr(config, k) for k in ("backend", "kind", "sync", "role", "variant")},
        **{k: getattr(config, k) for k in ("threads", "agents", "opener")},
        "trial": trial.trial,
        "seed": trial.seed,
        "kill_after_s": trial.kill_after_s,
        **asdict(result),
        "discarded_bytes": trial.discarded_bytes,
        "seconds": trial.seconds,
        "write_errors": trial.write_errors,
        "cut": trial.cut,
    }


def append_rows(
    path: Path, rows: Sequence[dict[str, Any]], wanted: Sequence[str] = COLUMNS
) -> None:
    """Append tidy rows to the CSV, writing the header when the file is new."""
    path.parent.mkdir(parents=True, exist_ok=True)
    new = not path.exists() or path.stat().st_size == 0
    with open(path, "a", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=wanted)
        if new:
            writer.writeheader()
        writer.writerows({k: r[k] for k in wanted} for r in rows)


def summarize(
    config: Configuration, rows: Sequence[dict[str, Any]], seconds: float
) -> dict[str, Any]:
    """One JSON object per configuration, with a verdict a reader can act on."""
    summary: dict[str, Any] = {
        **{k: getattr(config, k) for k in ("backend", "kind", "sync", "role", "variant")},
        **(
            {k: getattr(config, k) for k in ("threads", "agents", "opener")}
            if config.threaded
            else {}
        ),
        "safe_mode": config.safe,
        "trials": len(rows),
        "acked": sum(r["acked"] for r in rows),
        "lost": sum(r["lost"] for r in rows),
        "trials_with_loss": sum(1 for r in rows if r["lost"]),
        "integrity_failures": sum(1 for r in rows if not r["integrity_ok"]),
        "ledger_gap_failures": sum(1 for r in rows if not r["ledger_gap_free"]),
        "orphan_claims": sum(r["orphan_claims"] for r in rows),
        "belief_mismatches": sum(r["belief_mismatches"] for r in rows),
        "replay_mismatches": sum(r["replay_mismatches"] for r in rows),
        "digest_mismatches": sum(r.get("digest_mismatches", 0) for r in rows),
        "disposition_mismatches": sum(r.get("disposition_mismatches", 0) for r in rows),
        "discarded_bytes": sum(r["discarded_bytes"] for r in rows),
        "write_errors": sum(r.get("write_errors", 0) for r in rows),
        "seconds": round(seconds, 1),
    }
    if config.threaded:  # how many claims one surviving commit covered (group commit: > 1)
        summary["commits"] = commits = sum(r["commits"] for r in rows)
        claims = sum(r["surviving_claims"] for r in rows)
        summary["claims_per_commit"] = round(claims / commits, 2) if commits else None
    failures = sum(summary[k] for k in FAILURES)
    if config.role == "control":
        summary["verdict"] = "control lost writes" if summary["lost"] else "INERT CONTROL"
    elif config.safe:
        summary["verdict"] = "FAILED" if failures else "ok"
    else:
        summary["verdict"] = "lost writes (unsafe mode)" if summary["lost"] else "no loss seen"
    return summary


def run_configuration(
    config: Configuration,
    count: int,
    args: argparse.Namespace,
    run: tuple[str, str],
    template: Path | None,
    bar: Any,
) -> dict[str, Any]:
    """All trials of one configuration; each row is appended as soon as its trial ends."""
    started = spoke = time.perf_counter()
    rows: list[dict[str, Any]] = []
    acked = lost = 0
    for trial, seed in enumerate(trial_seeds(args.seed, config, count)):
        result = run_trial(config, trial, seed, template)
        rows.append(row(run, result))
        append_rows(args.out, rows[-1:], columns(args))
        acked += result.result.acked
        lost += result.result.lost
        bar.set_postfix_str(f"{config.name}: lost {lost}")
        bar.update(1)
        now = time.perf_counter()
        if now - spoke >= PROGRESS_EVERY or trial + 1 == count:
            spoke = now
            bar.write(
                f"# {config.name} ({config.role}): trial {trial + 1}/{count}, acked {acked}, "
                f"lost {lost}, {now - started:.0f} s",
                file=sys.stderr,
            )
    return summarize(config, rows, time.perf_counter() - started)


def exit_status(summaries: Sequence[dict[str, Any]]) -> int:
    if any(s["verdict"] == "FAILED" for s in summaries):
        return 1
    if any(s["verdict"] == "INERT CONTROL" for s in summaries):
        return 3
    return 0


def feasible(
    chosen: list[tuple[Configuration, int]],
) -> tuple[list[tuple[Configuration, int]], list[dict[str, Any]], str | None]:
    """Drop the controls that need the FUSE mount where FUSE is missing (reported as
    skipped); a measured configuration that needs it is then an error (the third item
    says why)."""
    reason = unavailable_reason()
    if reason is None or not any(c.mounted for c, _ in chosen):
        return chosen, [], None
    if any(c.mounted and c.role == "measured" for c, _ in chosen):
        return (
            [],
            [],
            f"cannot run {', '.join(sorted({c.kind for c, _ in chosen if c.mounted}))} "
            f"trials: {reason}",
        )
    runnable = [(c, n) for c, n in chosen if not c.mounted]
    skipped = [
        {**summarize(c, [], 0.0), "verdict": f"control skipped: {reason}"}
        for c, _ in chosen
        if c.mounted
    ]
    return runnable, skipped, None


def execute(
    chosen: list[tuple[Configuration, int]], args: argparse.Namespace, run: tuple[str, str]
) -> list[dict[str, Any]]:
    """Run every configuration (with one template cluster for PostgreSQL)."""
    from tqdm.auto import tqdm

    workdir = Path(tempfile.mkdtemp(prefix="mp-dur-run-"))
    try:
        template = None
        if args.backend == "postgres":
            from mempill.lab.durability.postgres import make_template

            workdir.chmod(0o711)  # the server's user must reach the template (not list it)
            template = make_template(workdir)
        total = sum(n for _, n in chosen)
        with tqdm(total=total, desc="trials", unit="trial", file=sys.stderr) as bar:
            return [
                run_configuration(config, count, args, run, template, bar)
                for config, count in chosen
            ]
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the planned configurations, print one JSON summary each, return the status."""
    args = parse(sys.argv[1:] if argv is None else argv)
    chosen, skipped, problem = feasible(plan(args))
    problem = problem or out_problem(args.out, columns(args))
    if problem is not None:
        print(f"crash: {problem}", file=sys.stderr)
        return 2
    procs.become_subreaper()
    run_id = runs.new_run_id()
    run = runs.describe_run(
        run_id,
        "python -m mempill.lab crash " + " ".join(sys.argv[1:] if argv is None else argv),
        args.seed,
        trials=args.trials,
        out=str(args.out),
    )
    runs.record_run(args.out, run)
    try:
        summaries = execute(chosen, args, (run_id, run["revision"])) + skipped
    except HarnessError as e:
        print(f"crash: the experiment failed: {e}", file=sys.stderr)
        return 2
    for summary in summaries:
        if not args.json:
            name = " ".join(
                str(summary[k]) for k in ("backend", "kind", "sync", "variant") if summary[k]
            )
            if "threads" in summary:
                name += f" {summary['threads']}x{summary['agents']} {summary['opener']}"
            print(f"# {name} ({summary['role']}): {summary['verdict']}")
        print(json.dumps(summary))
    if not args.json:
        print(
            f"# {sum(n for _, n in chosen)} trials appended to {args.out} (run {run_id}; "
            f"its revision, machine and seed in {args.out.parent / 'runs.jsonl'})"
        )
    inert = [s for s in summaries if s["verdict"] == "INERT CONTROL"]
    if any(s["trials"] < 6 for s in inert):
        print(
            "# a control lost nothing in fewer than 6 trials: about one control trial in 12 "
            "is cut just after a checkpoint; rerun with --control-trials 6 or more",
            file=sys.stderr,
        )
    return exit_status(summaries)


if __name__ == "__main__":
    raise SystemExit(main())
