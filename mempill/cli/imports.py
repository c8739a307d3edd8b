"""`mempill import`: replay a claim stream (`mempill.streams`, JSONL) into a store.

A stream (see `mempill.streams`) is a header (clock, id seed, config, oracle,
default agent) and one operation per line. By default it is replayed exactly as the
conformance lab replays it, with the header's clock, ids and oracle, so importing a
stream into an empty store yields the lab's ledger digest. Into a store that already
holds the stream's agents, seeded ids would collide with the first import, so that
needs `--append`: the system clock and random ids, results no longer reproducible.
With an agent (`--agent`, `MEMPILL_AGENT_ID`) the stream may act on that agent only
(`as_one_agent`): one that names another is refused before anything is written.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import Counter
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any, NoReturn

from mempill.cli.commands import Output
from mempill.cli.tables import table
from mempill.cli.target import Target, open_target
from mempill.clock import system_clock
from mempill.core.parse import show
from mempill.engine import Engine
from mempill.errors import ConfigError, ValidationError
from mempill.ids import time_ordered_ids
from mempill.streams import (
    LabOracle,
    OpRecord,
    Session,
    Stream,
    StreamClock,
    StreamError,
    read_stream,
)

PROGRESS_EVERY_S = 2.0
#: Operations that act on every agent unless they name one; `import --agent` scopes them.
SCOPED = frozenset({"notify", "list_pending", "submit_adjudication"})


class LiveClock(StreamClock):
    """The system clock, remembering readings as a stream's `@label` instants need."""

    def __init__(self) -> None:
        super().__init__(system_clock(), timedelta(0))

    def __call__(self) -> datetime:
        moment = system_clock()
        self.readings.append(moment)
        return moment


def stream_agents(stream: Stream) -> set[str]:
    """Every agent id a stream names (header default, operations, requests)."""
    found = {stream.header.agent_id} if stream.header.agent_id else set()
    for op in stream.ops:
        requests = op.get("requests") or [op.get("request")]
        for item in [op, *requests]:
            if isinstance(item, dict) and isinstance(item.get("agent_id"), str):
                found.add(item["agent_id"])
    return found


def as_one_agent(stream: Stream, agent: str) -> Stream:
    """The stream replayed as `agent` (`import --agent`), or a ConfigError before anything
    is written: `agent` becomes the default agent, operations that would act on every
    agent when they name none (`SCOPED`) act on `agent` only, and an operation or request
    that names another agent, or a `sweep` (it acts on every agent), is refused."""
    ops = []
    for number, op in enumerate(stream.ops, 1):
        name = str(op["op"])  # a known operation: checked when the stream was read
        if name == "sweep":
            _refuse(agent, number, name, "acts on every agent of the store")
        requests = op.get("requests")
        for item in [op, op.get("request"), *(requests if isinstance(requests, list) else ())]:
            if isinstance(item, dict) and item.get("agent_id", agent) != agent:
                _refuse(agent, number, name, f"is for agent {show(item['agent_id'])}")
        ops.append({**op, "agent_id": agent} if name in SCOPED else op)
    return replace(stream, header=replace(stream.header, agent_id=agent), ops=tuple(ops))


def _refuse(agent: str, number: int, name: str, why: str) -> NoReturn:
    raise ConfigError(
        f"import as agent {agent!r}: operation {number} ({name}) {why}; nothing was imported "
        "(a stream imported with --agent / MEMPILL_AGENT_ID may act on that agent only; "
        "import it without them to replay every agent it names)"
    )


def _refuse_overlap(engine: Engine, agents: set[str]) -> None:
    present = set(engine.store.agents())
    for agent in sorted(agents & present):
        with engine.store.read(agent) as reader:
            if reader.audit(None, 0, 1):
                raise ConfigError(
                    f"the store already holds agent {agent!r}; replaying this stream again "
                    "would reuse its seeded ids: pass --append (system clock, random ids)"
                )


def replay(
    engine: Engine, stream: Stream, clock: StreamClock, oracle: LabOracle | None, quiet: bool
) -> tuple[list[OpRecord], dict[str, str]]:
    """Apply every operation in order (progress on stderr for long streams); the digests.

    `oracle` must be the engine's own, so the stream's oracle operations reach it.
    """
    session = Session(engine, stream.header, clock, oracle)
    records: list[OpRecord] = []
    total = len(stream.ops)
    last = time.monotonic()
    for number, op in enumerate(stream.ops, 1):
        records.append(session.apply(op))
        if not quiet and time.monotonic() - last >= PROGRESS_EVERY_S:
            last = time.monotonic()
            print(f"import: {number}/{total} operations", file=sys.stderr, flush=True)
    return records, session.digests()


def summarize(stream: Stream, records: list[OpRecord]) -> dict[str, Any]:
    ops: Counter[str] = Counter(r.op for r in records)
    dispositions: Counter[str] = Counter()
    errors: Counter[str] = Counter()
    unexpected = 0
    for r in records:
        result = r.outcome.get("result")
        for item in result if isinstance(result, list) else [result]:
            if r.op.startswith("ingest") and isinstance(item, dict) and "disposition" in item:
                dispositions[str(item["disposition"])] += 1
        if "error" in r.outcome:
            errors[str(r.outcome["error"])] += 1
            unexpected += bool(r.outcome.get("unexpected"))
    return {
        "stream": stream.name,
        "source": stream.source,
        "operations": len(records),
        "ops": dict(sorted(ops.items())),
        "dispositions": dict(sorted(dispositions.items())),
        "errors": dict(sorted(errors.items())),
        "unexpected_errors": unexpected,
    }


def load_stream(path: str) -> Stream:
    """The stream in a file; a file that is not one is a ValidationError naming it."""
    try:
        return read_stream(path)
    except StreamError as e:
        raise ValidationError(str(e)) from e
    except UnicodeDecodeError as e:
        raise ValidationError(f"{path}: not UTF-8 text ({e.reason} at byte {e.start})") from e
    except OSError as e:
        raise ConfigError(f"cannot read {path!r}: {e.strerror or e}") from e
    except (ValueError, TypeError, KeyError, AttributeError, RecursionError) as e:
        detail = "nested too deeply" if isinstance(e, RecursionError) else str(e)
        raise ValidationError(f"{path}: not a mempill-stream/1 file ({detail})") from e


def import_stream(target: Target, agent: str | None, args: argparse.Namespace) -> Output:
    stream = load_stream(args.file)
    if agent is not None:
        stream = as_one_agent(stream, agent)
    header = stream.header
    clock: StreamClock = LiveClock() if args.append else header.make_clock()
    ids = time_ordered_ids if args.append else header.make_ids()
    oracle = header.make_oracle()
    engine = open_target(target, clock=clock, ids=ids, config=header.make_config(), oracle=oracle)
    with engine:
        if not args.append:
            _refuse_overlap(engine, stream_agents(stream))
        records, digests = replay(engine, stream, clock, oracle, args.quiet)
    summary = summarize(stream, records) | {"digests": digests}
    failed = summary["unexpected_errors"]
    if failed:
        message = f"{failed} operation(s) failed unexpectedly (an engine bug; see --json)"
        return Output(summary, summary_text(summary), 1, message)
    return Output(summary, summary_text(summary))


def summary_text(summary: dict[str, Any]) -> str:
    lines = [f"imported {summary['operations']} operations of {summary['stream']!r}"]
    counts = [("op", k, v) for k, v in summary["ops"].items()]
    counts += [("disposition", k, v) for k, v in summary["dispositions"].items()]
    counts += [("error", k, v) for k, v in summary["errors"].items()]
    if counts:
        lines.append(table(("KIND", "NAME", "COUNT"), counts))
    for agent, digest in summary["digests"].items():
        lines.append(f"ledger digest {agent}: {digest}")
    return "\n".join(lines)
