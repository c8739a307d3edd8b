"""Issue 12's acceptance test: every public call answers hostile input with a result or a
documented MempillError, the same on every backend, and leaves the engine usable.

Hypothesis drives each Engine method and each `mempill.compat` call with hostile values
for each argument (wrong types, U+0000, lone surrogates, huge and negative integers,
±inf/NaN, enormous cursors and limits, deep and large structures, odd dates and time
zones, ids with path characters), mixed with valid ones. The engines of every selected
backend live for the whole module and get the same calls in the same order, with the
same clock and ids, so after every call they must agree: on the outcome (the result, or
the error's class), on the content digest of every agent touched, and on a valid read and
write made right after. No call may raise anything but ValidationError, NotFoundError,
ConflictError or ConfigError (a StorageError here would mean bad input reached storage).

Examples per method: MEMPILL_HOSTILE_EXAMPLES (default 8, derandomized so CI is stable);
MEMPILL_HOSTILE_RANDOM=1 draws fresh examples each run.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, timezone, tzinfo
from pathlib import Path
from typing import Any

import hypothesis.strategies as st
import pytest
from conftest import RecordingOracle, selected_backends
from hypothesis import HealthCheck, given, settings

import mempill
from mempill import (
    ConfigError,
    ConflictError,
    Engine,
    EngineConfig,
    MempillError,
    NotFoundError,
    SeededIds,
    SteppingClock,
    ValidationError,
)
from mempill import compat as wheel
from mempill.core.model import plain

EXAMPLES = int(os.environ.get("MEMPILL_HOSTILE_EXAMPLES", "8"))
HOSTILE = settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=not os.environ.get("MEMPILL_HOSTILE_RANDOM"),
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    database=None,
)
START = datetime(2026, 1, 1, tzinfo=UTC)
DOCUMENTED = (ValidationError, NotFoundError, ConflictError, ConfigError)

# ---------------------------------------------------------------- hostile values


class Opaque:
    """Not JSON, with a repr that does not vary from run to run."""

    def __repr__(self) -> str:
        return "<opaque>"


class BrokenZone(tzinfo):
    def utcoffset(self, dt: datetime | None) -> timedelta:
        raise RuntimeError("this zone is broken")


class WideZone(tzinfo):
    def utcoffset(self, dt: datetime | None) -> timedelta:
        return timedelta(hours=30)


class NoZone(tzinfo):
    def utcoffset(self, dt: datetime | None) -> None:
        return None


class Deep(list[Any]):
    """Lists nested `depth` deep, printed short (printing them would recurse too deep)."""

    def __init__(self, depth: int) -> None:
        value: Any = "leaf"
        for _ in range(depth - 1):
            value = [value]
        super().__init__([value])
        self.depth = depth

    def __repr__(self) -> str:
        return f"<{self.depth} nested lists>"

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        printer.text(repr(self))


def deep(depth: int) -> Any:
    return Deep(depth)


CJK = "".join(chr(0x4E00 + (i * 7919) % 20_000) for i in range(1024))
TEXTS: list[Any] = [
    "", " ", "\x00", "a\x00b", "\ud800", "x\udfff", "x" * 1025, CJK, CJK + "x", "../etc/passwd",
    "a/b", "a\\b", "C:\\tmp\\x", "..", ".", "%s", "?", "$1", "'; DROP TABLE ledger; --", "😀",
    "\u2028", "é" * 300, "x" * 100_000,
]  # fmt: skip
NUMBERS: list[Any] = [
    -1, 0, 1, 2**31, 2**63 - 1, 2**63, -(2**63) - 1, 10**400, -(10**5000), 10**5000,
    math.nan, math.inf, -math.inf, -0.0, 1e308, 5e-324, 1.5, -0.5,
]  # fmt: skip
WRONG: list[Any] = [
    None, True, False, b"bytes", bytearray(b"x"), {1, 2}, frozenset(), Opaque(), 3 + 4j, [], {},
    (), [None], {"k": "v"}, ["a", "b", "c"], deep(100), deep(5000), list(range(20_000)),
    {f"k{i}": i for i in range(3000)}, {1: "int key"}, [math.nan], {"k": "\x00"},
]  # fmt: skip
DATES: list[Any] = [
    "not a date", "0000", "10000-01-01", "2020-02-30", "2020-13", "2020-01-01T25:00:00Z",
    "9999-12-31T23:59:59.999999Z", "9999-12-31T23:59:59-01:00", "0001-01-01T00:00:00+01:00",
    "0001", "2020-01-01T00:00:00.123456789Z", "２０２０", " 2020 ", "2020\n", "2020-01-01T00:00Z",
    datetime(2020, 1, 1), datetime(2020, 1, 1, tzinfo=BrokenZone()),
    datetime(2020, 1, 1, tzinfo=WideZone()), datetime(2020, 1, 1, tzinfo=NoZone()),
    datetime.max.replace(tzinfo=UTC), datetime.min.replace(tzinfo=UTC),
    datetime(1, 1, 1, tzinfo=timezone(timedelta(hours=14))),
    datetime(9999, 12, 31, 23, tzinfo=timezone(timedelta(hours=-23, minutes=-59))),
    date(1, 1, 1), date.max, datetime(2020, 6, 1, 12, tzinfo=timezone(timedelta(hours=5))),
]  # fmt: skip
IDS: list[Any] = [
    "../x", "a/b", "a\\b", "a b", "a" * 129, ".hidden", "x.db", "-", "_", "CON", "a\x00", "é",
    "alice copy", "a" * 128,
]  # fmt: skip
EVERYTHING = TEXTS + NUMBERS + WRONG + DATES + IDS
#: Valid agent ids the calls may use: their content digests are compared after each call.
AGENTS = ["alice", "bob", "x.db", "-", "_", "CON", "a" * 128]
PROVENANCES: list[Any] = [
    "External:UserAsserted", "External/ExternalFirstHand", "RecallReEntry", "ModelDerived",
    {"type": "External", "kind": "UserAsserted"}, "modelderived",
]  # fmt: skip
VALUES: list[Any] = ["Paris", "Lyon", 1, 1.0, None, True, {"b": [1, 2], "a": "é"}, [], "x" * 200]
VALID_DATES: list[Any] = ["2020", "2021-03", "2024-09-15", "2025-01-01T00:00:00Z", date(2022, 1, 1)]


def one(values: list[Any]) -> st.SearchStrategy[Any]:
    """One of `values`, drawn by index (some cannot even be hashed: a broken time zone)."""
    return st.integers(0, len(values) - 1).map(values.__getitem__)


def hostile(valid: list[Any], *pools: list[Any]) -> st.SearchStrategy[Any]:
    """A valid value or a hostile one (from `pools`, else from everything hostile)."""
    bad = [v for pool in (pools or (EVERYTHING,)) for v in pool]
    return st.one_of(one(valid), one(bad))


def maybe(strategy: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """A keyword argument: left out (`...`) or drawn."""
    return st.one_of(st.just(...), strategy)


# ---------------------------------------------------------------- the engines


@dataclass
class Twin:
    """One backend's engine (with an oracle) and the compat layer over it."""

    name: str
    engine: Engine
    wheel: wheel.CompatEngine


@dataclass
class World:
    twins: list[Twin]
    refs: list[str]
    handles: list[str]


def open_twin(name: str, folder: Path, stack: ExitStack, request: pytest.FixtureRequest) -> Twin:
    options: dict[str, Any] = {
        "clock": SteppingClock(START, timedelta(minutes=1)),
        "ids": SeededIds(12),
        "oracle": RecordingOracle(),
        "config": EngineConfig(default_adjudication_ttl_seconds=3600),
    }
    if name == "sqlite-mem":
        engine = mempill.open_default_in_memory(**options)
    elif name == "sqlite-file":
        engine = mempill.open_directory(folder / "agents", **options)
    else:
        from mempill.lab.servers import fresh_schema

        dsn = stack.enter_context(fresh_schema(request.getfixturevalue("postgres_server")))
        engine = mempill.open_postgres(dsn, **options)
    stack.callback(engine.close)
    return Twin(name, engine, wheel.wrap(engine))


SEED: list[dict[str, Any]] = [
    {"agent_id": "alice", "subject": "s", "predicate": "city", "value": "Paris",
     "valid_time": {"start": "2020"}},
    {"agent_id": "alice", "subject": "s", "predicate": "city", "value": "Lyon"},
    {"agent_id": "alice", "subject": "s", "predicate": "age", "value": 41},
    {"agent_id": "bob", "subject": "s", "predicate": "city", "value": "Rome"},
]  # fmt: skip


@pytest.fixture(scope="module")
def world(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[World]:
    with ExitStack() as stack:
        folder = tmp_path_factory.mktemp("hostile")
        twins = [open_twin(name, folder, stack, request) for name in selected_backends()]
        assert same(twins, lambda t: [t.engine.ingest(r) for r in SEED])[0] == "ok"
        paris = each(twins, lambda t: t.engine.query_audit("alice")).entries[0].claim_ref
        derived = {"agent_id": "alice", "subject": "t", "predicate": "knows", "value": "x",
                   "provenance": "ModelDerived", "derived_from": [paris]}  # fmt: skip
        assert same(twins, lambda t: t.engine.ingest(derived))[0] == "ok"
        pending = each(twins, lambda t: t.engine.list_pending("alice"))
        handles = [p.handle_id for p in pending]
        assert handles, "the seed queues one adjudication"
        audit = each(twins, lambda t: t.engine.query_audit("alice"))
        refs = sorted({e.claim_ref for e in audit.entries} - {None})
        yield World(twins, refs, handles)
        for twin in twins:  # the pool never got a connection back inside a transaction
            pool = getattr(twin.engine.store, "pool", None)
            if pool is not None:
                assert pool.get_stats().get("returns_bad", 0) == 0


def each(twins: list[Twin], call: Callable[[Twin], Any]) -> Any:
    """Run `call` on every backend (so their clocks stay in step); return the first result,
    after checking that they all agree."""
    results = [call(t) for t in twins]
    assert all(plain(r) == plain(results[0]) for r in results), [t.name for t in twins]
    return results[0]


def outcome(twin: Twin, call: Callable[[Twin], Any]) -> tuple[str, str]:
    """("ok", the result as JSON) or ("error", its class); anything undocumented fails."""
    try:
        result = call(twin)
    except DOCUMENTED as e:
        return "error", type(e).__name__
    except MempillError as e:  # documented, but hostile input must never reach storage
        pytest.fail(f"{twin.name}: {type(e).__name__} leaked: {e}")
    except Exception as e:
        pytest.fail(f"{twin.name}: raw {type(e).__name__}: {str(e)[:300]}")
    return "ok", json.dumps(plain(result), sort_keys=True, default=repr)


def same(twins: list[Twin], call: Callable[[Twin], Any]) -> tuple[str, str]:
    """Run `call` on every backend; they must answer alike."""
    answers = {t.name: outcome(t, call) for t in twins}
    first = next(iter(answers.values()))
    assert all(a == first for a in answers.values()), answers
    return first


def check(world: World, call: Callable[[Twin], Any]) -> None:
    """The hostile call, then: equal stores, no reader left in a transaction, and a valid
    read and write that succeed everywhere."""
    same(world.twins, call)
    for agent in AGENTS:
        same(world.twins, lambda t, agent=agent: t.engine.content_digest(agent))
    for twin in world.twins:
        for database in getattr(twin.engine.store, "_agents", {}).values():
            assert not any(c.in_transaction for c in database.idle_readers), twin.name
    assert same(world.twins, lambda t: t.engine.query_memory("alice", "s", "age"))[0] == "ok"
    valid = {"agent_id": "bob", "subject": "after", "predicate": "p", "value": 1}
    assert same(world.twins, lambda t: t.engine.ingest(valid))[0] == "ok"


# ---------------------------------------------------------------- calls, one per method

Draw = st.DataObject
Build = Callable[[Draw, World], Callable[[Twin], Any]]


def agent(data: Draw) -> Any:
    return data.draw(hostile(AGENTS, IDS, TEXTS, NUMBERS, WRONG), "agent_id")


def key(data: Draw, valid: list[str], what: str) -> Any:
    return data.draw(hostile(valid, TEXTS, NUMBERS, WRONG), what)


def ref(data: Draw, world: World, what: str = "claim_ref") -> Any:
    made_up = [str(uuid.UUID(int=7)), "not-a-uuid", str(uuid.UUID(int=7)).upper()]
    return data.draw(hostile(world.refs, made_up, TEXTS, NUMBERS, WRONG), what)


def moment(data: Draw, what: str) -> Any:
    return data.draw(hostile([None, *VALID_DATES], DATES, NUMBERS, WRONG), what)


def kwargs(data: Draw, **strategies: st.SearchStrategy[Any]) -> dict[str, Any]:
    drawn = {name: data.draw(maybe(s), name) for name, s in strategies.items()}
    return {name: value for name, value in drawn.items() if value is not ...}


def dates(data: Draw, *names: str) -> dict[str, Any]:
    """Keyword date arguments, each left out or drawn valid or hostile."""
    return {n: moment(data, n) for n in names if data.draw(st.booleans(), f"pass {n}")}


def ingest_request(data: Draw, world: World) -> Any:
    """A request: every field valid or hostile, some left out, sometimes an unknown one."""
    fields: dict[str, st.SearchStrategy[Any]] = {
        "agent_id": hostile(AGENTS, IDS, NUMBERS, WRONG),
        "subject": hostile(["s", "t", CJK], TEXTS, NUMBERS, WRONG),
        "predicate": hostile(["city", "age"], TEXTS, NUMBERS, WRONG),
        "value": hostile(VALUES, NUMBERS, TEXTS, WRONG),
        "provenance": hostile(PROVENANCES),
        "cardinality": hostile(["Functional", "SetValued", "unknown"]),
        "criticality": hostile(["Low", "High", "critical"]),
        "value_confidence": hostile([0.9, 0.1, 1], NUMBERS, WRONG),
        "valid_time_confidence": hostile([0.9, 0.5, None], NUMBERS, WRONG),
        "valid_time": hostile(
            [None, {"start": "2020"}, {"start": "2021", "end": "2020"}, {"end": "2030-01"}],
            [{"start": d} for d in DATES] + [{"end": d} for d in DATES] + WRONG,
        ),
        "derived_from": hostile([[], world.refs[:1], ["not-a-uuid"]], [[v] for v in TEXTS] + WRONG),
        "claim_ref": hostile([None, str(uuid.UUID(int=9))], TEXTS, NUMBERS, WRONG),
        "confidence": hostile([{"value_confidence": 0.8}], NUMBERS, WRONG),
        "colour": st.just("red"),
    }
    required = ("agent_id", "subject", "predicate", "value")
    body = {k: data.draw(s, k) for k, s in fields.items() if k in required}
    body.update(kwargs(data, **{k: s for k, s in fields.items() if k not in required}))
    if data.draw(st.booleans(), "drop a required field"):
        body.pop(data.draw(st.sampled_from(required), "dropped"))
    return data.draw(st.one_of(st.just(body), one(WRONG + TEXTS)), "request")


def b_ingest(data: Draw, world: World) -> Callable[[Twin], Any]:
    request = ingest_request(data, world)
    return lambda t: t.engine.ingest(request)


def b_ingest_many(data: Draw, world: World) -> Callable[[Twin], Any]:
    many = data.draw(st.lists(st.builds(lambda: None), max_size=3), "how many")
    requests: Any = [ingest_request(data, world) for _ in many]
    requests = data.draw(st.one_of(st.just(requests), one(WRONG + TEXTS)), "requests")
    return lambda t: t.engine.ingest_many(requests)


def b_query_memory(data: Draw, world: World) -> Callable[[Twin], Any]:
    a, s, p = agent(data), key(data, ["s"], "subject"), key(data, ["city", "age"], "predicate")
    kw = dates(data, "as_of", "valid_at")
    method = data.draw(st.sampled_from(["query_memory", "recall"]), "method")
    return lambda t: getattr(t.engine, method)(a, s, p, **kw)


def b_query_subject(data: Draw, world: World) -> Callable[[Twin], Any]:
    a, s = agent(data), key(data, ["s", "t"], "subject")
    as_of, valid_at = moment(data, "as_of"), moment(data, "valid_at")
    return lambda t: t.engine.query_subject(a, s, as_of, valid_at)


def b_query_history(data: Draw, world: World) -> Callable[[Twin], Any]:
    a, s, p = agent(data), key(data, ["s"], "subject"), key(data, ["city"], "predicate")
    as_of = moment(data, "as_of")
    method = data.draw(st.sampled_from(["query_history", "history"]), "method")
    return lambda t: getattr(t.engine, method)(a, s, p, as_of=as_of)


CURSORS = [-1, 2**63 - 1, 2**63, 10**400, 10**5000, 1.0, True, "1", None, math.inf]
#: Snapshot tokens: the agent "alice"'s (valid shape, any position) and broken ones.
TOKENS: list[Any] = [
    "snapshot:0@-#2bd806c97f0e", "snapshot:2@2026-01-01T00:00:01.000000Z#2bd806c97f0e",
    "snapshot:99@2026-01-01T00:00:01.000000Z#2bd806c97f0e",
    "snapshot:1@2026-01-01T00:00:01.000000Z#000000000000", "snapshot:", "snapshot:-1@-#x",
    f"snapshot:{2**63}@2026-01-01T00:00:01.000000Z#2bd806c97f0e", "snapshot:0@2026#2bd806c97f0e",
    "snapshot:1@9999-12-31T23:59:59.999999Z#2bd806c97f0e", "SNAPSHOT:1@-#2bd806c97f0e",
]  # fmt: skip


def cut(data: Draw, what: str) -> Any:
    """An `as_of`-like argument: a moment or a snapshot token, valid or hostile."""
    return data.draw(hostile([None, *VALID_DATES, *TOKENS[:3]], TOKENS, DATES, WRONG), what)


def b_snapshot(data: Draw, world: World) -> Callable[[Twin], Any]:
    a = agent(data)
    return lambda t: t.engine.snapshot(a)


def b_query_timeline(data: Draw, world: World) -> Callable[[Twin], Any]:
    a, s, p = agent(data), key(data, ["s"], "subject"), key(data, ["city", "age"], "predicate")
    kw = dates(data, "valid_from", "valid_until")
    if data.draw(st.booleans(), "pass as_of"):
        kw["as_of"] = cut(data, "as_of")
    return lambda t: t.engine.query_timeline(a, s, p, **kw)


def b_search(data: Draw, world: World) -> Callable[[Twin], Any]:
    a = agent(data)
    text = data.draw(
        hostile(["city", "par", "Zürich s"], ["", " -- ", "x" * 10_001], TEXTS, NUMBERS, WRONG),
        "text",
    )
    kw = kwargs(
        data,
        limit=hostile([1, 20, 1000], [0, 1001, True, "3", *CURSORS]),
        valid_at=hostile([None, *VALID_DATES], DATES, WRONG),
        include_history=hostile([False, True], [1, "yes", None]),
        semantic=hostile([False], [1, "no", None]),
    )
    if data.draw(st.booleans(), "pass as_of"):
        kw["as_of"] = cut(data, "as_of")
    return lambda t: t.engine.search(a, text, **kw)


def b_list_subjects(data: Draw, world: World) -> Callable[[Twin], Any]:
    a = agent(data)
    kw = kwargs(
        data,
        prefix=hostile([None, "s", "t"], ["", "x" * 1025], TEXTS, NUMBERS, WRONG),
        limit=hostile([1, 100, 10_000], [0, 10_001, True, *CURSORS]),
        after=hostile([None, "s"], ["x" * 1025], TEXTS, NUMBERS, WRONG),
    )
    return lambda t: t.engine.list_subjects(a, **kw)


def b_list_predicates(data: Draw, world: World) -> Callable[[Twin], Any]:
    a = agent(data)
    subject = data.draw(hostile([None, "s", "nobody"], TEXTS, NUMBERS, WRONG), "subject")
    return lambda t: t.engine.list_predicates(a, subject)


def b_reindex(data: Draw, world: World) -> Callable[[Twin], Any]:
    a = agent(data)
    return lambda t: t.engine.reindex(a)


def b_erase(data: Draw, world: World) -> Callable[[Twin], Any]:
    a, s = agent(data), key(data, ["s", "t", "nobody"], "subject")
    kw = kwargs(
        data,
        predicate=hostile([None, "city", "age"], TEXTS, NUMBERS, WRONG),
        reason=hostile(["asked to forget", "x" * 1024], ["", " ", "x" * 1025], TEXTS, WRONG),
    )
    kw.setdefault("reason", "asked to forget")
    return lambda t: t.engine.erase(a, s, **kw)


def b_query_changes(data: Draw, world: World) -> Callable[[Twin], Any]:
    a = agent(data)
    kw = kwargs(
        data,
        since=hostile([None, *VALID_DATES, *TOKENS[:3]], TOKENS, DATES, WRONG),
        until=hostile([None, *VALID_DATES, *TOKENS[:3]], TOKENS, DATES, WRONG),
        after=hostile([None, *TOKENS[:3]], TOKENS, VALID_DATES, WRONG),
        subject=hostile([None, "s", "t"], TEXTS, NUMBERS, WRONG),
        predicate=hostile([None, "city"], TEXTS, NUMBERS, WRONG),
        valid_at=hostile([None, *VALID_DATES], DATES, WRONG),
        cursor=hostile([None, 0, 1, 3], CURSORS),
        limit=hostile([1, 2, 100], [*CURSORS, 0]),
    )
    return lambda t: t.engine.query_changes(a, **kw)


def b_query_audit(data: Draw, world: World) -> Callable[[Twin], Any]:
    a = agent(data)
    kw = kwargs(
        data, after_seq=hostile([0, 1, 3], CURSORS), limit=hostile([1, 2, 100], [*CURSORS, 0])
    )
    if data.draw(st.booleans(), "by claim"):
        kw["claim_ref"] = ref(data, world)
    return lambda t: t.engine.query_audit(a, **kw)


def validity_kwargs(data: Draw, confidence: bool = True) -> dict[str, Any]:
    extra = {"confidence": hostile([1.0, 0.5], NUMBERS, WRONG)} if confidence else {}
    return kwargs(data, provenance=hostile(PROVENANCES), **extra)


def b_end(data: Draw, world: World) -> Callable[[Twin], Any]:
    a, r, at = agent(data), ref(data, world), moment(data, "at")
    kw = validity_kwargs(data)
    kw.update(kwargs(data, granularity=hostile(["year", "Day", None], TEXTS, WRONG)))
    return lambda t: t.engine.end(a, r, at, **kw)


def b_reopen(data: Draw, world: World) -> Callable[[Twin], Any]:
    a, r, kw = agent(data), ref(data, world), validity_kwargs(data, confidence=False)
    method = data.draw(st.sampled_from(["reopen", "invalidate"]), "method")
    return lambda t: getattr(t.engine, method)(a, r, **kw)


def b_end_fact(data: Draw, world: World) -> Callable[[Twin], Any]:
    a, s, p = agent(data), key(data, ["s"], "subject"), key(data, ["city", "age"], "predicate")
    at = moment(data, "at")
    kw = validity_kwargs(data)
    kw.update(kwargs(data, value=hostile(["Paris", 41], NUMBERS, WRONG, TEXTS)))
    return lambda t: t.engine.end_fact(a, s, p, at, **kw)


def b_reconcile(data: Draw, world: World) -> Callable[[Twin], Any]:
    a = agent(data)
    pairs = [("s", "city"), ("s", "nope")]
    bad = [[(v, "p")] for v in TEXTS[:8] + NUMBERS[:4]] + [[("s",)], [("a", "b", "c")], "sp"]
    lines = data.draw(hostile([None, pairs, []], bad, WRONG), "lines")
    return lambda t: t.engine.reconcile(a, lines)


def b_submit(data: Draw, world: World) -> Callable[[Twin], Any]:
    handle = data.draw(hostile([*world.handles, str(uuid.UUID(int=5))], TEXTS, NUMBERS, WRONG))
    verdict = data.draw(hostile(["Affirm", "deny", "Unknown"], TEXTS, WRONG), "verdict")
    kw = kwargs(data, evidence_provenance=hostile(PROVENANCES),
                agent_id=hostile(["alice", "bob", None], IDS, WRONG))  # fmt: skip
    return lambda t: t.engine.submit_adjudication(handle, verdict, **kw)


def b_outbox(data: Draw, world: World) -> Callable[[Twin], Any]:
    method = data.draw(st.sampled_from(["list_pending", "notify_pending", "sweep_expired"]))
    if method == "sweep_expired":
        return lambda t: t.engine.sweep_expired()
    a = data.draw(hostile([None, "alice", "bob"], IDS, WRONG, TEXTS), "agent_id")
    kw = (
        {}
        if method != "list_pending"
        else kwargs(data, status=hostile([None, "pending", "resolved", "EXPIRED"], TEXTS, WRONG))
    )
    return lambda t: getattr(t.engine, method)(a, **kw)


def b_digests(data: Draw, world: World) -> Callable[[Twin], Any]:
    a = agent(data)
    method = data.draw(st.sampled_from(["ledger_digest", "content_digest", "write_stats"]))
    return lambda t: getattr(t.engine, method)(a)


def b_remember(data: Draw, world: World) -> Callable[[Twin], Any]:
    a, s, p = agent(data), key(data, ["s"], "subject"), key(data, ["city"], "predicate")
    value = data.draw(hostile(VALUES, NUMBERS, TEXTS, WRONG), "value")
    kw = dates(data, "valid_from", "valid_until")
    kw |= kwargs(
        data,
        confidence=hostile([0.9, 1], NUMBERS, WRONG),
        provenance=hostile(PROVENANCES),
        colour=st.just("red"),
    )
    return lambda t: t.engine.remember(a, s, p, value, **kw)


# ---- mempill.compat (the 0.4 wheel's dict API)


def wheel_fields(data: Draw, valid: dict[str, Any], bad: list[Any] | None = None) -> Any:
    """A wheel request dict: each field valid or hostile, one maybe dropped or added."""
    body = {k: data.draw(hostile([v], bad or EVERYTHING), k) for k, v in valid.items()}
    if data.draw(st.booleans(), "tamper"):
        body.pop(data.draw(st.sampled_from(sorted(body))), None)
        body[data.draw(st.sampled_from(["colour", "limit", "valid_tiem"]))] = 1
    return data.draw(st.one_of(st.just(body), one(WRONG + TEXTS)), "request")


WHEEL_PROVENANCE = {"type": "External", "kind": "UserAsserted"}
CONFIDENCE = {"value_confidence": 0.9, "valid_time_confidence": 0.8}


WHEEL_REQUEST: dict[str, Any] = {
    "agent_id": "alice", "subject": "w", "predicate": "city", "value": "Oslo",
    "provenance": WHEEL_PROVENANCE, "cardinality": "Functional", "confidence": CONFIDENCE,
    "criticality": "Medium", "derived_from": [],
    "valid_time": {"start": "2020", "valid_time_confidence": 0.9},
}  # fmt: skip


def b_wheel_ingest(data: Draw, world: World) -> Callable[[Twin], Any]:
    request = wheel_fields(data, WHEEL_REQUEST)
    return lambda t: t.wheel.ingest_claim(request)


def b_wheel_assert(data: Draw, world: World) -> Callable[[Twin], Any]:
    at = data.draw(hostile(VALID_DATES, DATES), "at")
    granularity = data.draw(hostile(["year", "instant", None], TEXTS, WRONG), "at_granularity")
    shape = data.draw(one([
        {"type": "Bound", "value": {"at": at, "at_granularity": granularity}},
        {"type": "Reopen"}, {"type": "Invalidate"}, {"type": "Bound"}, {"type": 3}, "Bound",
    ]), "assertion")  # fmt: skip
    request = wheel_fields(data, {
        "agent_id": "alice", "target": world.refs[0], "assertion": shape,
        "provenance": WHEEL_PROVENANCE, "confidence": CONFIDENCE,
    })  # fmt: skip
    return lambda t: t.wheel.assert_validity(request)


def b_wheel_query(data: Draw, world: World) -> Callable[[Twin], Any]:
    method = data.draw(st.sampled_from(["query_memory", "query_subject", "query_history"]))
    valid: dict[str, Any] = {"agent_id": "alice", "subject": "s", "predicate": "city",
                             "as_of_tx_time": "2027", "valid_at": "2026-06"}  # fmt: skip
    if method == "query_subject":
        del valid["predicate"]
    if method == "query_history":
        del valid["valid_at"]
    request = wheel_fields(data, valid)
    return lambda t: getattr(t.wheel, method)(request)


def b_wheel_audit(data: Draw, world: World) -> Callable[[Twin], Any]:
    request = wheel_fields(data, {"agent_id": "alice", "limit": 5, "after_seq": 1,
                                  "claim_ref": world.refs[0], "from_tx_time": "2026"})  # fmt: skip
    return lambda t: t.wheel.query_audit(request)


def b_wheel_oracle(data: Draw, world: World) -> Callable[[Twin], Any]:
    method = data.draw(st.sampled_from(
        ["reconcile", "submit_adjudication", "list_pending_adjudications",
         "sweep_expired_adjudications", "notify_pending", "resolve_live_claim_for_line"]
    ))  # fmt: skip
    if method == "reconcile":
        request = wheel_fields(data, {"agent_id": "alice", "subject_lines": [["s", "city"]]})
        return lambda t: t.wheel.reconcile(request)
    if method == "submit_adjudication":
        request = wheel_fields(data, {"handle_id": world.handles[0], "verdict": "Unknown",
                                      "evidence_provenance": WHEEL_PROVENANCE})  # fmt: skip
        return lambda t: t.wheel.submit_adjudication(request)
    if method == "sweep_expired_adjudications":
        return lambda t: t.wheel.sweep_expired_adjudications()
    if method == "resolve_live_claim_for_line":
        a, s, p = agent(data), key(data, ["s"], "subject"), key(data, ["city"], "predicate")
        return lambda t: t.wheel.resolve_live_claim_for_line(a, s, p)
    a = data.draw(hostile([None, "alice"], IDS, WRONG, TEXTS), "agent_id")
    return lambda t: getattr(t.wheel, method)(a)


BUILDERS: dict[str, Build] = {
    name[2:]: build for name, build in globals().items() if name.startswith("b_")
}


@pytest.mark.parametrize("method", sorted(BUILDERS))
@HOSTILE
@given(data=st.data())
def test_every_call_answers_alike_everywhere_and_leaves_the_engine_usable(
    world: World, method: str, data: Draw
) -> None:
    check(world, BUILDERS[method](data, world))


def test_the_methods_are_all_driven() -> None:
    """Every public Engine method and CompatEngine call is reached by some builder above."""
    engine_methods = {
        n for n in dir(Engine) if not n.startswith("_") and callable(getattr(Engine, n))
    }
    source = Path(__file__).read_text(encoding="utf-8")
    not_data = {"close", "read", "ignored_files"}  # no hostile argument (read takes a function)
    missing = sorted(n for n in engine_methods - not_data if f'"{n}"' not in source
                     and f".{n}(" not in source)  # fmt: skip
    assert missing == []
    wheel_methods = {n for n in dir(wheel.CompatEngine) if not n.startswith("_") and n != "close"}
    assert sorted(n for n in wheel_methods if f"{n}" not in source) == []


# ---------------------------------------------------------------- openers and settings

CONFIG_FIELDS = sorted(f for f in EngineConfig.__dataclass_fields__)


@HOSTILE
@given(field=st.sampled_from(CONFIG_FIELDS), value=one(NUMBERS + WRONG + TEXTS[:6]))
def test_engine_config_refuses_what_could_overflow_later(field: str, value: Any) -> None:
    try:
        config = EngineConfig(**{field: value})
    except ConfigError:
        return
    with mempill.open_default_in_memory(config=config) as engine:  # usable: no overflow
        engine.ingest({"agent_id": "a", "subject": "s", "predicate": "p", "value": 1})
        engine.ingest({"agent_id": "a", "subject": "s", "predicate": "p", "value": 2})
        engine.query_memory("a", "s", "p")


def opener_paths(tmp: Path) -> list[Any]:
    (tmp / "a-file").write_text("not a database")
    return [
        tmp / "a\x00b.db", tmp / ("x" * 5000), tmp / "a-file" / "below.db", tmp, tmp / "a-file",
        5, b"bytes", None, Opaque(), str(tmp / "\ud800.db"), ["x"],
    ]  # fmt: skip


@pytest.mark.parametrize("opener", ["open_default", "open_directory", "open_for_agent"])
def test_openers_refuse_bad_paths_with_documented_errors(opener: str, tmp_path: Path) -> None:
    for path in opener_paths(tmp_path):
        try:
            if opener == "open_for_agent":
                engine: Any = wheel.open_for_agent(path, "alice")
            else:
                engine = getattr(mempill, opener)(path)
        except (ConfigError, mempill.StorageError):
            continue
        with engine:  # it opened: it must work
            target = engine if opener != "open_for_agent" else engine.engine
            target.ingest({"agent_id": "alice", "subject": "s", "predicate": "p", "value": 1})


@HOSTILE
@given(
    name=st.sampled_from(["config", "clock", "ids", "retry", "cache_claims", "oracle", "vector"]),
    value=one([*WRONG, *NUMBERS[:8], *TEXTS[:4], lambda: 1]),
)
def test_engine_collaborators_of_the_wrong_kind_are_config_errors(name: str, value: Any) -> None:
    if name in ("clock", "ids") and callable(value):
        return  # a clock or id factory that answers nonsense is the integrator's bug
    try:
        engine = mempill.open_default_in_memory(**{name: value})
    except ConfigError:
        return
    with engine:
        engine.ingest({"agent_id": "a", "subject": "s", "predicate": "p", "value": 1})
        engine.query_memory("a", "s", "p")


@HOSTILE
@given(value=one(DATES + TEXTS + NUMBERS + WRONG))
def test_compat_module_functions(value: Any) -> None:
    assert wheel.date_granularity_of(value) in (None, "year", "month", "day", "instant")
    if value is None:
        return
    for call in (
        lambda: wheel.open_in_memory(config=value),
        lambda: wheel.open_oracle_in_memory(value),
        lambda: wheel.wrap(value),
        lambda: wheel.open_postgres("host=/nonexistent dbname=x", colour=value),
    ):
        with pytest.raises(ConfigError):
            call()
    with tempfile.TemporaryDirectory() as folder:
        try:
            opened = wheel.open_for_agent(folder, value)
        except (ValidationError, ConfigError):
            return
        with opened:  # a valid agent id: the store works
            opened.ingest_claim(WHEEL_REQUEST | {"agent_id": value})
