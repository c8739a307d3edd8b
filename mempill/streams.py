"""Claim streams: the JSONL format the conformance lab replays on every backend.

A stream is one JSON object per line: a header (clock start and step, id seed, config
overrides, oracle behaviour, default agent), then one operation per line. Operations
name earlier results symbolically — `"$paris"` is the claim ref (or handle, or snapshot
token) of the operation labelled `"as": "paris"`, `"$3"` that of operation 3, `"$3.1"` the second
receipt of an `ingest_many`, `"@paris"` the instant the clock gave that operation — so
scenarios stay readable and replay byte-identically. Every result, error and ledger
entry an operation produces serializes to canonical JSON, the unit of comparison.
"""

from __future__ import annotations

import contextlib
import json
import re
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from mempill.clock import SteppingClock
from mempill.core import parse
from mempill.core.canonical import canonical_json
from mempill.core.config import EngineConfig
from mempill.core.dates import parse_lenient, rfc3339
from mempill.core.enums import PendingStatus
from mempill.core.model import AdjudicationRequest, ReconcileReport, plain
from mempill.engine import Engine
from mempill.errors import MempillError
from mempill.ids import SeededIds

FORMAT = "mempill-stream/1"
DEFAULT_START = "2026-01-01T00:00:00Z"
SINGLE_FILE = "single-file"  # a header topology: one SQLite file bound to its first agent
_REF = re.compile(r"^\$([A-Za-z0-9_-]+)(?:\.(\d+))?$")
_COMMON = frozenset({"op", "as", "note", "expect"})  # `expect`: see conformance/declared.py
INSTANT_KEYS = ("at", "as_of", "valid_at", "valid_from", "valid_until", "since", "until", "after")
#: operation -> (engine method, positional arguments, keyword arguments). A positional
#: `agent_id` defaults to the header's agent; operations without a method act on the lab
#: itself (the clock, the oracle).
CALLS: dict[str, tuple[str, str, str]] = {
    "ingest": ("ingest", "request", ""),
    "ingest_many": ("ingest_many", "requests", ""),
    "end": ("end", "agent_id claim_ref at", "provenance confidence"),
    "end_fact": ("end_fact", "agent_id subject predicate at", "value provenance confidence"),
    "reopen": ("reopen", "agent_id claim_ref", "provenance"),
    "invalidate": ("invalidate", "agent_id claim_ref", "provenance"),
    "submit_adjudication": (
        "submit_adjudication",
        "handle_id verdict",
        "evidence_provenance agent_id",
    ),
    "sweep": ("sweep_expired", "", ""),
    "notify": ("notify_pending", "", "agent_id"),
    "reconcile": ("reconcile", "agent_id", "lines"),
    "query_memory": ("query_memory", "agent_id subject predicate", "as_of valid_at"),
    "query_subject": ("query_subject", "agent_id subject", "as_of valid_at"),
    "query_history": ("query_history", "agent_id subject predicate", "as_of"),
    "query_audit": ("query_audit", "agent_id", "claim_ref after_seq limit"),
    "snapshot": ("snapshot", "agent_id", ""),
    "query_timeline": (
        "query_timeline",
        "agent_id subject predicate",
        "valid_from valid_until as_of",
    ),
    "query_changes": (
        "query_changes",
        "agent_id",
        "since until after subject predicate valid_at cursor limit",
    ),
    "erase": ("erase", "agent_id subject", "predicate reason"),
    "search": ("search", "agent_id text", "limit as_of valid_at include_history"),
    "list_subjects": ("list_subjects", "agent_id", "prefix limit after"),
    "list_predicates": ("list_predicates", "agent_id", "subject"),
    "list_pending": ("list_pending", "", "agent_id status"),
    "digest": ("ledger_digest", "agent_id", ""),
    "advance": ("", "", "seconds days"),
    "oracle": ("", "fail", ""),
    "oracle_requests": ("", "", ""),
}
_AGENT_OPS = frozenset(name for name, (_, args, _) in CALLS.items() if "agent_id" in args.split())
OPS: dict[str, tuple[frozenset[str], frozenset[str]]] = {
    name: (
        frozenset(args.split()) - {"agent_id"},
        frozenset(kwargs.split()) | ({"agent_id"} if name in _AGENT_OPS else set()),
    )
    for name, (_, args, kwargs) in CALLS.items()
}


class StreamError(ValueError):
    """A stream that does not follow the format; the message names the file and line."""


# ---------------------------------------------------------------- the oracle of a stream


class LabOracle:
    """An oracle that records what it is asked and can be told to fail (reference §6 outbox)."""

    def __init__(self, fail: bool = False) -> None:
        self.fail = fail
        self.requests: list[AdjudicationRequest] = []

    def request_adjudication(self, handle_id: str, request: AdjudicationRequest) -> None:
        if self.fail:
            raise RuntimeError("lab oracle is told to fail")
        self.requests.append(request)


class StreamClock(SteppingClock):
    """The stepping clock of a stream, remembering every reading (for `@label` instants)."""

    def __init__(self, start: datetime, step: timedelta) -> None:
        super().__init__(start, step)
        self.readings: list[datetime] = []

    def __call__(self) -> datetime:
        moment = super().__call__()
        self.readings.append(moment)
        return moment


# ---------------------------------------------------------------- header and stream


@dataclass(frozen=True, slots=True, kw_only=True)
class Header:
    """How to build a stream's engine: the same on every backend, so results must match."""

    name: str
    description: str = ""
    clock_start: datetime
    clock_step: timedelta = timedelta(seconds=1)
    id_seed: int | str = 42
    config: Mapping[str, Any] = field(default_factory=dict)
    oracle: str | None = None  # None, "recording" or "failing"
    agent_id: str | None = None
    topology: str = "default"

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"stream": FORMAT, "name": self.name}
        if self.description:
            data["description"] = self.description
        data["clock"] = {
            "start": rfc3339(self.clock_start),
            "step_seconds": self.clock_step.total_seconds(),
        }
        data["ids"] = {"seed": self.id_seed}
        data.update({"config": dict(self.config)} if self.config else {})
        data.update({"oracle": self.oracle} if self.oracle else {})
        data.update({"agent_id": self.agent_id} if self.agent_id else {})
        data.update({"topology": self.topology} if self.topology != "default" else {})
        return data

    def make_clock(self) -> StreamClock:
        return StreamClock(self.clock_start, self.clock_step)

    def make_ids(self) -> SeededIds:
        return SeededIds(self.id_seed)

    def make_config(self) -> EngineConfig:
        return EngineConfig(**self.config)

    def make_oracle(self) -> LabOracle | None:
        return None if self.oracle is None else LabOracle(fail=self.oracle == "failing")


@dataclass(frozen=True, slots=True)
class Stream:
    header: Header
    ops: tuple[dict[str, Any], ...]
    source: str = "<memory>"

    @property
    def name(self) -> str:
        return self.header.name


def parse_header(data: Mapping[str, Any], where: str) -> Header:
    """The first line of a stream; unknown keys and bad values raise StreamError."""
    known = {"stream", "name", "description", "clock", "ids", "config", "oracle", "agent_id"}
    unknown = sorted(set(data) - known - {"topology"})
    if data.get("stream") != FORMAT or unknown:
        raise StreamError(f"{where}: expected a header with 'stream': {FORMAT!r} (got {unknown})")
    clock = data.get("clock") or {}
    try:
        start = parse_lenient(clock.get("start", DEFAULT_START), "clock.start")[0]
        step = timedelta(seconds=float(clock.get("step_seconds", 1)))
        header = Header(
            name=str(data["name"]),
            description=str(data.get("description", "")),
            clock_start=start,
            clock_step=step,
            id_seed=(data.get("ids") or {}).get("seed", 42),
            config=dict(data.get("config") or {}),
            oracle=data.get("oracle"),
            agent_id=data.get("agent_id"),
            topology=data.get("topology", "default"),
        )
        header.make_config()
    except (KeyError, TypeError, ValueError) as e:
        raise StreamError(f"{where}: bad header: {e!r}") from e
    if header.oracle not in (None, "recording", "failing"):
        raise StreamError(f"{where}: oracle must be null, 'recording' or 'failing'")
    if header.topology not in ("default", SINGLE_FILE):
        raise StreamError(f"{where}: topology must be 'default' or {SINGLE_FILE!r}")
    return header


def check_op(op: Any, index: int, labels: Mapping[str, int], header: Header, where: str) -> None:
    """Static checks of one operation: known name and keys, references to earlier ops only."""
    if not isinstance(op, dict) or op.get("op") not in OPS:
        raise StreamError(f"{where}: expected an operation, one of {', '.join(OPS)}")
    required, optional = OPS[op["op"]]
    missing, extra = required - set(op), set(op) - required - optional - _COMMON
    if missing or extra:
        raise StreamError(
            f"{where}: {op['op']}: missing {sorted(missing)}, unknown {sorted(extra)}"
        )
    if op["op"] in _AGENT_OPS and "agent_id" not in op and header.agent_id is None:
        raise StreamError(f"{where}: {op['op']} needs agent_id (or a default in the header)")
    if op["op"].startswith("oracle") and header.oracle is None:
        raise StreamError(f"{where}: {op['op']} needs an oracle in the header")
    for text in _references(op):
        target = _REF.match("$" + text[1:])
        if target is None:
            raise StreamError(f"{where}: {text!r} is not a reference ($label, $3, $3.1, @label)")
        label = target.group(1)
        if not label.isdigit() and label not in labels:
            raise StreamError(f"{where}: unknown label in {text!r}")
        if (int(label) if label.isdigit() else labels[label]) >= index:
            raise StreamError(f"{where}: {text!r} refers to this or a later operation")


def _references(op: Mapping[str, Any]) -> Iterable[str]:
    """The symbolic strings of an operation: only keys that may hold refs or instants."""
    candidates: list[Any] = [op.get(k) for k in ("claim_ref", "handle_id", *INSTANT_KEYS)]
    requests = op.get("requests") or [op.get("request")]
    for request in requests if isinstance(requests, list) else ():
        if isinstance(request, dict) and isinstance(request.get("derived_from"), list):
            candidates.extend(request["derived_from"])
    return [c for c in candidates if isinstance(c, str) and c[:1] in ("$", "@")]


def parse_stream(lines: Iterable[str], source: str = "<memory>") -> Stream:
    """Parse JSONL text: a header line, then operations numbered from 1."""
    header: Header | None = None
    ops: list[dict[str, Any]] = []
    labels: dict[str, int] = {}
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        where = f"{source}:{number}"
        try:
            data = json.loads(line)
        except json.JSONDecodeError as e:
            raise StreamError(f"{where}: not JSON: {e}") from e
        if header is None:
            header = parse_header(data, where)
            continue
        check_op(data, len(ops) + 1, labels, header, where)
        ops.append(data)
        if "as" in data:
            if data["as"] in labels or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_-]*", data["as"]):
                raise StreamError(f"{where}: label {data['as']!r} is reused or not a name")
            labels[data["as"]] = len(ops)
    if header is None:
        raise StreamError(f"{source}: empty stream (no header line)")
    return Stream(header, tuple(ops), source)


def read_stream(path: str | Path) -> Stream:
    path = Path(path)
    return parse_stream(path.read_text(encoding="utf-8").splitlines(), str(path))


def dump_stream(stream: Stream) -> str:
    """JSONL text of a stream: readable key order, non-ASCII kept."""
    lines = [stream.header.to_dict(), *stream.ops]
    return "".join(json.dumps(item, ensure_ascii=False) + "\n" for item in lines)


def write_stream(stream: Stream, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(dump_stream(stream), encoding="utf-8")
    return path


# ---------------------------------------------------------------- applying operations


@dataclass(frozen=True, slots=True)
class OpRecord:
    """What one operation did on one backend: its result or error, and its new ledger rows."""

    index: int
    op: str
    outcome: dict[str, Any]  # {"result": …} or {"error": "ClassName"[, "unexpected": true]}
    ledger: tuple[dict[str, Any], ...]
    elapsed_s: float

    def to_json(self) -> dict[str, Any]:
        return {"i": self.index, "op": self.op, **self.outcome, "ledger": list(self.ledger)}

    def canonical(self) -> str:
        return canonical_json(self.to_json())


@dataclass
class Session:
    """One stream running on one engine: resolves references, applies operations in order."""

    engine: Engine
    header: Header
    clock: StreamClock
    oracle: LabOracle | None
    results: list[Any] = field(default_factory=list)
    readings: list[datetime | None] = field(default_factory=list)
    labels: dict[str, int] = field(default_factory=dict)
    agents: set[str] = field(default_factory=set)
    seen_seq: dict[str, int] = field(default_factory=dict)

    def apply(self, op: Mapping[str, Any]) -> OpRecord:
        """Run the next operation; engine errors become `{"error": …}`, never exceptions."""
        index = len(self.results) + 1
        call = self._call(op)  # resolves references first: a StreamError escapes
        before = len(self.clock.readings)
        started = time.perf_counter()
        try:
            result: Any = call()
            outcome = {"result": plain(result)}
        except MempillError as e:
            result, outcome = e, {"error": type(e).__name__}
        except Exception as e:  # an engine bug: recorded so that it shows, never hidden
            result, outcome = e, {"error": type(e).__name__, "unexpected": True}
        elapsed = time.perf_counter() - started
        self.results.append(result)
        readings = self.clock.readings
        self.readings.append(readings[before] if len(readings) > before else None)
        if "as" in op:
            self.labels[op["as"]] = index
        return OpRecord(index, op["op"], outcome, self._new_entries(), elapsed)

    def _new_entries(self) -> tuple[dict[str, Any], ...]:
        found: list[dict[str, Any]] = []
        for agent in sorted(self.agents):
            after = self.seen_seq.get(agent, 0)
            with self.engine.store.read(agent) as reader:
                entries = reader.audit(None, after, 1_000_000_000)
            if entries:
                self.seen_seq[agent] = entries[-1].stream_seq
            found.extend(e.to_dict() for e in entries)
        return tuple(found)

    def digests(self) -> dict[str, str]:
        return {agent: self.engine.ledger_digest(agent) for agent in sorted(self.agents)}

    def content_digests(self) -> dict[str, str]:
        """Digests of every stored row (claims, assertions, edges, outbox), not only the ledger."""
        return {agent: self.engine.content_digest(agent) for agent in sorted(self.agents)}

    # ------------------------------------------------------------ calls and references

    def _call(self, op: Mapping[str, Any]) -> Callable[[], Any]:
        """The engine call an operation stands for, its arguments resolved (see CALLS)."""
        method, positional, keywords = CALLS[op["op"]]
        if not method:
            return self._lab_call(op)
        args = [
            self.argument(k, op.get(k, self.header.agent_id) if k == "agent_id" else op[k])
            for k in positional.split()
        ]
        kwargs = {k: self.argument(k, op[k]) for k in keywords.split() if k in op}
        bound = getattr(self.engine, method)
        return lambda: bound(*args, **kwargs)

    def _lab_call(self, op: Mapping[str, Any]) -> Callable[[], Any]:
        """Operations on the lab itself: move the clock, break or mend the oracle."""
        oracle = self.oracle
        if op["op"] == "advance":
            delta = timedelta(days=op.get("days", 0), seconds=op.get("seconds", 0))
            return lambda: self.clock.advance(delta)
        assert oracle is not None  # checked when the stream was parsed
        if op["op"] == "oracle":
            return lambda: setattr(oracle, "fail", bool(op["fail"]))
        return lambda: tuple(oracle.requests)

    def argument(self, key: str, value: Any) -> Any:
        """Resolve one argument: references, instants, default agents, the outbox status."""
        if key in ("claim_ref", "handle_id"):
            return self.ref(value, key)
        if key in INSTANT_KEYS:
            return self.instant(value)
        if key == "request":
            return self.request(value)
        if key == "requests":
            return [self.request(r) for r in value] if isinstance(value, list) else value
        if key == "status":
            try:
                return None if value is None else PendingStatus(value)
            except ValueError as e:
                raise StreamError(f"status: {value!r} is not an outbox status") from e
        if key == "agent_id":
            self.agent({"agent_id": value})
        return value

    def agent(self, data: Mapping[str, Any]) -> Any:
        """The operation's agent (or the header's); valid ones are tracked for ledger reads."""
        agent = data.get("agent_id", self.header.agent_id)
        with contextlib.suppress(MempillError):  # an invalid one: the engine call raises
            self.agents.add(parse.agent_id(agent))
        return agent

    def _target(self, text: str) -> tuple[Any, int | None]:
        found = _REF.match(text)
        assert found is not None
        label, sub = found.groups()
        index = int(label) if label.isdigit() else self.labels.get(label)
        if index is None or not 1 <= index <= len(self.results):
            raise StreamError(f"{text!r}: no such earlier operation")
        return self.results[index - 1], None if sub is None else int(sub)

    def ref(self, value: Any, attribute: str = "claim_ref") -> Any:
        """`$label[.k]` → that result's claim_ref (or handle_id); anything else as written."""
        if not isinstance(value, str) or not _REF.match(value):
            return value
        result, sub = self._target(value)
        if sub is not None:
            items = result.lines if isinstance(result, ReconcileReport) else result
            if not isinstance(items, tuple) or sub >= len(items):
                raise StreamError(f"{value!r}: that operation has no item {sub}")
            result = items[sub]
        found = getattr(result, attribute, None)
        if found is None:
            raise StreamError(f"{value!r}: that operation produced no {attribute}")
        return found

    def instant(self, value: Any) -> Any:
        """`@label` → the first clock reading of that operation; `$label` → the token of the
        snapshot that operation took; anything else as written."""
        if isinstance(value, str) and _REF.match(value):
            return self.ref(value, "token")
        if not isinstance(value, str) or not value.startswith("@"):
            return value
        found = _REF.match("$" + value[1:])
        label = found.group(1) if found else ""
        index = int(label) if label.isdigit() else self.labels.get(label, 0)
        moment = self.readings[index - 1] if 1 <= index <= len(self.readings) else None
        if moment is None:
            raise StreamError(f"{value!r}: that operation did not read the clock")
        return rfc3339(moment)

    def request(self, data: Any) -> Any:
        """An ingest request with the default agent filled in and parent references resolved."""
        if not isinstance(data, dict):
            return data
        request = dict(data)
        if "agent_id" not in request and self.header.agent_id is not None:
            request["agent_id"] = self.header.agent_id
        self.agent(request)
        if isinstance(request.get("derived_from"), list):
            request["derived_from"] = [self.ref(p) for p in request["derived_from"]]
        return request
