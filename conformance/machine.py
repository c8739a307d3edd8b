"""Property-based differential testing: one engine per backend, the same operations.

A hypothesis `RuleBasedStateMachine` builds a claim stream step by step (few agents,
subjects and predicates so lines collide; windows that touch and overlap; every
provenance; oracle verdicts, bounds, reopens, invalidations; queries at `as_of` and
`valid_at` instants) and applies each step to every backend through
`conformance.session.HarnessSession`, asserting after every step that all backends
returned the same canonical record (with the ledger entries it appended) and hold the same
oracle outbox, and every few steps and at the end of each example that they hold ledgers
and stores with equal digests. Because the steps *are* a stream, a failing example is saved
to `build/regressions/`; copied into `data/regressions/` it is replayed by every test run
after.
"""

from __future__ import annotations

from collections import Counter
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import cache
from pathlib import Path
from typing import Any

import hypothesis.strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    initialize,
    multiple,
    precondition,
    rule,
)

from conformance.diff import explain
from conformance.engines import machine_engine
from conformance.machine_reads import (
    AGENT,
    AGENTS,
    BOOLEANS,
    DATE,
    PREDICATE,
    PREDICATES,
    SUBJECT,
    SUBJECTS,
    ReadRules,
)
from conformance.session import HarnessSession, OutboxState
from mempill.core.model import Receipt, ReconcileReport
from mempill.streams import Header, OpRecord, Stream, dump_stream

START = datetime(2026, 1, 1, tzinfo=UTC)
#: Failing examples are saved here; copy one into data/regressions/ to replay it forever.
REGRESSIONS = Path("build/regressions")
VALUES = ("x", "y", 1, 1.0, {"k": 1}, ["m"], None)
PROVENANCES = (
    "External:UserAsserted",
    "External:UserAsserted",
    "External:ExternalFirstHand",
    "ModelDerived",
    "RecallReEntry",
)
UNKNOWN_REF = "00000000-0000-4000-8000-000000000000"
#: Every backend's full ledger and content digests are compared after every DIGEST_EVERY-th
#: operation and at the end of each example, no longer after each operation (they re-read
#: and re-hash the whole store: the machine's cost grew with the square of an example's
#: length). This catches every divergence the per-step digests caught, at most
#: DIGEST_EVERY - 1 operations later: what one operation changes is still compared at once —
#: its record holds the ledger entries it appended, and the only columns a store ever updates
#: in place (an outbox row's status and notified flag) are compared after every operation —
#: and everything else is append-only (rows of the ledger, claims, assertions, edges and the
#: outbox, each stamped with the stream_seq or time of its write), so two backends whose
#: rows differ keep differing until the next comparison.
DIGEST_EVERY = 64


@dataclass
class Stats:
    """What the machine did, across every example of one run (for the report)."""

    backends: tuple[str, ...] = ()
    profile: str = ""
    examples: int = 0
    steps: int = 0
    operations: Counter[str] = field(default_factory=Counter)
    outcomes: Counter[str] = field(default_factory=Counter)
    divergences: int = 0
    seconds: float = 0.0
    regression: str | None = None

    def reset(self, backends: tuple[str, ...], profile: str) -> None:
        fresh = Stats(backends=backends, profile=profile)
        for name in self.__dataclass_fields__:
            setattr(self, name, getattr(fresh, name))

    def to_dict(self) -> dict[str, Any]:
        return {
            "backends": list(self.backends),
            "profile": self.profile,
            "examples": self.examples,
            "steps": self.steps,
            "operations": dict(sorted(self.operations.items())),
            "outcomes": dict(sorted(self.outcomes.items())),
            "divergences": self.divergences,
            "seconds": round(self.seconds, 3),
            "regression": self.regression,
        }


STATS = Stats()
LAST_FAILURE: list[Stream] = []

#: windows that touch ([2020,2021) and [2021,2022-03)), overlap, start in the future, have
#: no start (untrusted) or are incoherent (Q1)
WINDOWS: tuple[dict[str, str] | None, ...] = (
    None,
    {"start": "2020"},
    {"start": "2021"},
    {"start": "2020", "end": "2021"},
    {"start": "2021", "end": "2022-03"},
    {"start": "2020-07-01", "end": "2022-03"},
    {"start": "2022-03"},
    {"start": "2026-06"},
    {"end": "2021"},
    {"start": "2021", "end": "2020-07-01"},
)
window = st.sampled_from(WINDOWS)
#: Strategies drawn inside rules are built once, here: hypothesis builds and validates a
#: strategy on first use, which, repeated at every step, cost a tenth of the machine's time.
#: The same strategies draw the same values from the same choices.
claims = Bundle("claims")
VALUE = st.sampled_from(VALUES)
VERDICT = st.sampled_from(("Affirm", "Deny", "Unknown"))
PARENTS = st.lists(claims.map(lambda claim: claim[1]), max_size=2)
EIGHTHS = st.integers(0, 7)


@cache
def request_strategy(agent: str | None, hot: bool) -> st.SearchStrategy[dict[str, Any]]:
    """An ingest request on a few colliding lines (parents are added by `_request`)."""
    return st.fixed_dictionaries(
        {
            "agent_id": st.just(agent) if agent else AGENT,
            "subject": st.just(SUBJECTS[0]) if hot else SUBJECT,
            "predicate": st.just(PREDICATES[0]) if hot else PREDICATE,
            "value": VALUE,
            "provenance": st.sampled_from(PROVENANCES),
            "value_confidence": st.sampled_from((1.0, 0.9, 0.5, 0.1)),
            "valid_time": window,
        },
        optional={
            "cardinality": st.sampled_from(("Functional", "SetValued", "Unknown")),
            "criticality": st.sampled_from(("Low", "Medium", "High", "Critical")),
            "valid_time_confidence": st.sampled_from((0.9, 0.7, 0.4)),
        },
    )


class DifferentialMachine(ReadRules, RuleBasedStateMachine):
    """Every backend in `BACKENDS` gets the same operations; they must agree after each."""

    BACKENDS: tuple[str, ...] = ("sqlite-mem", "sqlite-file")

    def __init__(self) -> None:
        super().__init__()
        self.stack = ExitStack()
        self.sessions: dict[str, HarnessSession] = {}
        self.ops: list[dict[str, Any]] = []
        self.compared = 0  # operations when the digests were last compared
        self.clean = True  # False while an operation runs: it raised if still False after
        self.handles: list[str] = []
        self.written = 0  # claims written: reads and reconciles wait for the first one
        self.snapshots: dict[str, list[str]] = {}  # agent -> `$label`s of its snapshots
        self.header = Header(name="hypothesis", clock_start=START)
        STATS.examples += 1

    @initialize(
        oracle=st.sampled_from((None, "recording", "failing")),
        ttl=st.sampled_from((None, 90.0)),
        step=st.sampled_from((1.0, 0.0, 3600.0)),
    )
    def open_engines(self, oracle: str | None, ttl: float | None, step: float) -> None:
        config: dict[str, Any] = {"quarantine_burst_threshold": 3, "burst_window_seconds": 60}
        if ttl is not None:
            config["default_adjudication_ttl_seconds"] = ttl
        self.header = Header(
            name="hypothesis",
            clock_start=START,
            clock_step=timedelta(seconds=step),
            id_seed=7,
            config=config,
            oracle=oracle,
            agent_id="a1",
        )
        for backend in self.BACKENDS:
            header = self.header_for(backend)
            clock, lab_oracle = header.make_clock(), header.make_oracle()
            engine = self.stack.enter_context(
                machine_engine(
                    backend,
                    clock=clock,
                    ids=header.make_ids(),
                    oracle=lab_oracle,
                    config=header.make_config(),
                )
            )
            session = HarnessSession(engine, header, clock, lab_oracle, watch_outbox=True)
            self.sessions[backend] = session

    def header_for(self, backend: str) -> Header:
        """The header a backend's engine is built from: the same for all (tests skew it)."""
        return self.header

    def teardown(self) -> None:
        """The last digests of a completed example (see DIGEST_EVERY), then close."""
        try:
            if self.clean and self.compared < len(self.ops):
                self.compare_digests()
        finally:
            self.stack.close()

    # ------------------------------------------------------------ the differential step

    def run(self, op: dict[str, Any]) -> Any:
        """Apply `op` everywhere; fail (saving the stream) on any disagreement."""
        self.clean = False
        self.ops.append(op)
        STATS.steps += 1
        STATS.operations[op["op"]] += 1
        records = {name: session.apply(op) for name, session in self.sessions.items()}
        first_name, first = next(iter(records.items()))
        line = first.canonical()
        for name, other in records.items():
            if other is not first and other.canonical() != line:
                self._fail(first_name, first.to_json(), name, other.to_json())
            if "unexpected" in other.outcome:
                self._fail(name, other.to_json(), "expected", "a result or a MempillError")
        outbox = self.sessions[first_name].outboxes
        for name, session in self.sessions.items():
            if session.outboxes != outbox:
                self._fail(first_name, _outbox(outbox), name, _outbox(session.outboxes))
        if len(self.ops) % DIGEST_EVERY == 0:
            self.compare_digests()
        _count_outcome(first)
        self.clean = True
        return self.sessions[first_name].results[-1]

    def compare_digests(self) -> None:
        """Every tracked agent's ledger and content digests, equal on every backend; and no
        ledger entry that the records missed (see `HarnessSession`)."""
        for name, session in self.sessions.items():
            if unseen := session.unseen():
                missed = {agent: [e.to_dict() for e in rows] for agent, rows in unseen.items()}
                self._fail(name, missed, "expected", "no entry outside the records")
        digests = {name: (s.digests(), s.content_digests()) for name, s in self.sessions.items()}
        first_name, first = next(iter(digests.items()))
        for name, found in digests.items():
            if found != first:
                since = f"(compared last after operation {self.compared})"
                self._fail(first_name, first, name, found, since)
        self.compared = len(self.ops)

    def _fail(self, left: str, a: Any, right: str, b: Any, since: str = "") -> None:
        STATS.divergences += 1
        stream = Stream(self.header, tuple(self.ops))
        LAST_FAILURE[:] = [stream]
        raise AssertionError(
            f"backends disagree at operation {len(self.ops)}{' ' if since else ''}{since}: "
            f"{self.ops[-1]}\n{explain(left, a, right, b)}\nstream so far:\n{dump_stream(stream)}"
        )

    def _label(self) -> str:
        return f"${len(self.ops)}"

    # ------------------------------------------------------------ writes

    def _request(
        self, data: st.DataObject, agent: str | None = None, hot: bool = False
    ) -> dict[str, Any]:
        """A request on a few colliding lines; parents are earlier claims (rarely unknown)."""
        request: dict[str, Any] = data.draw(request_strategy(agent, hot))
        if request["provenance"] != PROVENANCES[0] and data.draw(BOOLEANS):
            parents = data.draw(PARENTS)
            rare_unknown: int = data.draw(EIGHTHS)
            request["derived_from"] = parents + ([UNKNOWN_REF] if rare_unknown == 0 else [])
        return request

    @rule(target=claims, data=st.data(), hot=st.booleans())
    def ingest(self, data: st.DataObject, hot: bool) -> Any:
        request = self._request(data, "a1" if hot else None, hot)
        result = self.run({"op": "ingest", "request": request})
        return self._claims(result, self._label(), request["agent_id"])

    @rule(target=claims, data=st.data())
    def ingest_hot(self, data: st.DataObject) -> Any:
        """A second ingest rule: writes are drawn more often, on the hot line a1/s1/p1."""
        return self.ingest(data, True)

    @rule(target=claims, data=st.data(), count=st.integers(1, 3))
    def ingest_many(self, data: st.DataObject, count: int) -> Any:
        agent = data.draw(AGENT)
        requests = [self._request(data, agent) for _ in range(count)]
        result = self.run({"op": "ingest_many", "requests": requests})
        if not isinstance(result, tuple):
            return multiple()
        found = [self._claims(r, f"{self._label()}.{i}", agent) for i, r in enumerate(result)]
        return multiple(*(claim for group in found for claim in group.values))

    def _claims(self, result: Any, label: str, agent: str) -> Any:
        """Bundle entries are (agent, label): later steps mostly address the right agent."""
        if not isinstance(result, Receipt):
            return multiple()
        if result.handle_id is not None:
            self.handles.append(label)
        self.written += 1
        return multiple((agent, label))

    @staticmethod
    def _agent(claim: tuple[str, str], cross: bool) -> str:
        """The claim's own agent, or (when `cross`) the other one, to test isolation."""
        return next(a for a in AGENTS if a != claim[0]) if cross else claim[0]

    @rule(
        claim=claims,
        cross=st.sampled_from((False, False, False, True)),
        at=DATE,
        provenance=st.sampled_from(("External:UserAsserted",) * 3 + ("ModelDerived",)),
        whole_line=st.sampled_from((False, False, False, True)),
    )
    def end(
        self, claim: tuple[str, str], cross: bool, at: str, provenance: str, whole_line: bool
    ) -> None:
        """`end(claim, at)`, or now and then `end_fact` on a hot line."""
        agent = self._agent(claim, cross)
        if whole_line:
            op = {"op": "end_fact", "agent_id": agent, "subject": SUBJECTS[0]}
            self.run({**op, "predicate": PREDICATES[0], "at": at})
            return
        op = {"op": "end", "agent_id": agent, "claim_ref": claim[1]}
        self.run({**op, "at": at, "provenance": provenance})

    @rule(
        claim=claims, cross=st.sampled_from((False, False, False, True)), invalidate=st.booleans()
    )
    def reopen_or_invalidate(self, claim: tuple[str, str], cross: bool, invalidate: bool) -> None:
        name = "invalidate" if invalidate else "reopen"
        self.run({"op": name, "agent_id": self._agent(claim, cross), "claim_ref": claim[1]})

    @rule(
        target=claims,
        data=st.data(),
        agent=st.sampled_from(AGENTS),
        children=st.integers(1, 3),
        action=st.sampled_from(("end", "invalidate", "challenge", "none")),
    )
    def family(self, data: st.DataObject, agent: str, children: int, action: str) -> Any:
        """A derived family: an External root, model claims derived from it and from each
        other, then the root ended, invalidated or challenged (an oracle verdict when there is
        one) — the PendingReview cascade and the derivation anchors, step by step."""
        line = {"agent_id": agent, "subject": SUBJECTS[1], "predicate": PREDICATES[1]}
        root = {
            **line,
            "value": data.draw(VALUE),
            "valid_time": {"start": "2020"},
        }
        self.run({"op": "ingest", "request": root})
        labels = [self._label()]
        for _ in range(children):
            parents = data.draw(
                st.lists(st.sampled_from(labels), min_size=1, max_size=2, unique=True)
            )
            child = {
                "agent_id": agent,
                "subject": data.draw(SUBJECT),
                "predicate": data.draw(PREDICATE),
                "value": data.draw(VALUE),
                "provenance": "ModelDerived",
                "derived_from": parents,
            }
            self.run({"op": "ingest", "request": child})
            labels.append(self._label())
        if action == "end":
            self.run({"op": "end", "agent_id": agent, "claim_ref": labels[0], "at": "2022-03"})
        elif action == "invalidate":
            self.run({"op": "invalidate", "agent_id": agent, "claim_ref": labels[0]})
        elif action == "challenge":
            rival = {**line, "value": "rival", "valid_time": {"start": "2021"}}
            receipt = self.run({"op": "ingest", "request": rival})
            if isinstance(receipt, Receipt) and receipt.handle_id is not None:
                verdict = data.draw(VERDICT)
                self.run(
                    {"op": "submit_adjudication", "handle_id": self._label(), "verdict": verdict}
                )
        for label in labels[1:]:  # the dependents' lines, after the cascade
            self.run({"op": "query_audit", "agent_id": agent, "claim_ref": label, "limit": 10})
        self.run({"op": "query_memory", **line})
        self.written += 1
        return multiple(*((agent, label) for label in labels))

    # ------------------------------------------------------------ the oracle loop

    @precondition(lambda self: bool(self.handles))
    @rule(
        data=st.data(),
        verdict=st.sampled_from(("Affirm", "Deny", "Unknown")),
        evidence=st.sampled_from(("External:UserAsserted", "External:ExternalFirstHand")),
    )
    def submit(self, data: st.DataObject, verdict: str, evidence: str) -> None:
        handle = data.draw(st.sampled_from(self.handles))
        op = {"op": "submit_adjudication", "handle_id": handle, "verdict": verdict}
        self.run({**op, "evidence_provenance": evidence})

    @precondition(lambda self: self.written > 0)
    @rule(
        kind=st.sampled_from(
            ("advance", "advance", "sweep", "notify", "list_pending", "oracle_down", "oracle_up")
        ),
        seconds=st.sampled_from((30, 120, 3600, 31 * 86400, 95 * 86400)),
    )
    def time_and_outbox(self, kind: str, seconds: int) -> None:
        """Let time pass (ageing, expiry), work the outbox, or break and mend the oracle."""
        if kind.startswith("oracle"):
            if self.header.oracle is not None:
                self.run({"op": "oracle", "fail": kind == "oracle_down"})
            return
        self.run({"op": kind, "seconds": seconds} if kind == "advance" else {"op": kind})

    @precondition(lambda self: self.written > 0)
    @rule(agent=AGENT, subject=SUBJECT, predicate=st.none() | PREDICATE, rare=EIGHTHS)
    def erase(self, agent: str, subject: str, predicate: str | None, rare: int) -> None:
        """Erase a line or a subject (one draw in eight): the one write that changes rows in
        place, so the digests are compared right after it (see DIGEST_EVERY)."""
        if rare:
            return
        op: dict[str, Any] = {"op": "erase", "agent_id": agent, "subject": subject}
        self.run(
            {**op, "reason": "machine"}
            if predicate is None
            else {**op, "predicate": predicate, "reason": "machine"}
        )
        self.compare_digests()

    @precondition(lambda self: self.written > 0)
    @rule(agent=st.sampled_from(AGENTS), one_line=st.booleans())
    def reconcile(self, agent: str, one_line: bool) -> None:
        op: dict[str, Any] = {"op": "reconcile", "agent_id": agent}
        if one_line:
            op["lines"] = [[SUBJECTS[0], PREDICATES[0]]]
        result = self.run(op)
        if isinstance(result, ReconcileReport):
            label = self._label()
            found = [f"{label}.{i}" for i, line in enumerate(result.lines) if line.handle_id]
            self.handles.extend(found)

    # ------------------------------------------------------------ reads (more in machine_reads.py)

    @precondition(lambda self: self.written > 0)
    @rule(
        agent=st.sampled_from(AGENTS),
        claim=st.none() | claims,
        after_seq=st.integers(0, 6),
        limit=st.integers(1, 4),
    )
    def audit(self, agent: str, claim: tuple[str, str] | None, after_seq: int, limit: int) -> None:
        op: dict[str, Any] = {"op": "query_audit", "agent_id": claim[0] if claim else agent}
        op.update({"after_seq": after_seq, "limit": limit})
        self.run({**op, **({"claim_ref": claim[1]} if claim else {})})


def _outbox(outboxes: dict[str, OutboxState]) -> dict[str, Any]:
    """Outbox states as JSON, for `explain`."""
    keys = ("handle_id", "status", "notified")
    return {
        agent: [dict(zip(keys, row, strict=True)) for row in rows]
        for agent, rows in outboxes.items()
    }


def _count_outcome(record: OpRecord) -> None:
    outcome = record.outcome
    if "error" in outcome:
        STATS.outcomes[f"error/{outcome['error']}"] += 1
        return
    result = outcome["result"]
    for item in result if isinstance(result, list) else [result]:
        if isinstance(item, dict) and "disposition" in item:
            STATS.outcomes[f"disposition/{item['disposition']}"] += 1
        if isinstance(item, dict) and "status" in item and record.op.startswith("query"):
            reason = f"/{item['reason']}" if item.get("reason") else ""
            STATS.outcomes[f"status/{item['status']}{reason}"] += 1


def machine_for(backends: tuple[str, ...]) -> type[DifferentialMachine]:
    """The machine class for a set of backends (hypothesis instantiates it per example)."""
    return type("DifferentialMachine", (DifferentialMachine,), {"BACKENDS": backends})
