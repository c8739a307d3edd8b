"""Issue 22, finding 1: every request is bounded where it is parsed, on every backend.

`derived_from` (entries, length of each), keys on reads as on writes, adjudication
handles, `reconcile(lines=...)`, and what one request can make the store keep for ever,
whatever its disposition (a quarantined claim, a rejected request's echo). The limits are
the named constants of `mempill.core.limits`; the ledger digests stay equal across
backends.
"""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest
from conftest import Backend, RecordingOracle
from support import AGENT, request

import mempill
from mempill import Disposition, Engine, ValidationError
from mempill.core.canonical import canonical_json
from mempill.core.limits import (
    MAX_HANDLE_CHARS,
    MAX_KEY_CHARS,
    MAX_PARENTS,
    MAX_RECONCILE_LINES,
    MAX_REF_CHARS,
)
from mempill.ports import Reader

MAX_VALUE = 65536  # EngineConfig().max_value_bytes


def stored_bytes(engine: Engine, agent: str = AGENT) -> int:
    """The canonical size of everything stored for an agent (ledger, claims, assertions,
    edges, outbox): what an append-only store keeps for ever."""

    def size(reader: Reader) -> int:
        rows: list[Any] = [e.to_dict() for e in reader.ledger()]
        rows += [c.to_dict() for c in reader.all_claims()]
        rows += [a.to_dict() for a in reader.all_assertions()]
        rows += [e.to_dict() for e in reader.all_edges()]
        rows += [p.to_dict() for p in reader.pending(None)]
        return sum(len(canonical_json(r).encode("utf-8")) for r in rows)

    return engine.read(agent, size)


def refused(engine: Engine, call: Any, match: str) -> None:
    """`call` raises ValidationError naming the limit, and nothing is stored."""
    before = engine.content_digest(AGENT)
    with pytest.raises(ValidationError, match=match):
        call()
    assert engine.content_digest(AGENT) == before


# ---------------------------------------------------------------- derived_from


def test_derived_from_is_bounded_in_entries_and_length(backend: Backend) -> None:
    engine = backend.open()
    engine.ingest(request("Paris"))
    parents = [str(uuid.UUID(int=i)) for i in range(MAX_PARENTS + 1)]
    recall = {"provenance": "RecallReEntry", "valid_from": "2021", "valid_until": "2020"}
    for fields in ({}, recall):
        too_many = request("x", derived_from=parents, **fields)
        refused(engine, lambda r=too_many: engine.ingest(r), f"at most {MAX_PARENTS} parents")
        long_ref = request("x", derived_from=["r" * (MAX_REF_CHARS + 1)], **fields)
        refused(engine, lambda r=long_ref: engine.ingest(r), f"limited to {MAX_REF_CHARS}")
        megabyte = request("x", derived_from=["p" * 2**20] * 8, **fields)
        refused(engine, lambda r=megabyte: engine.ingest(r), "is not a claim ref")
        batch = [request("y"), long_ref]
        refused(engine, lambda b=batch: engine.ingest_many(b), "is not a claim ref")
    # at the limits: parsed, and decided by the rules (these parents are unknown)
    receipt = engine.ingest(request("x", derived_from=parents[:MAX_PARENTS]))
    assert (receipt.disposition, receipt.reason) == (Disposition.REJECTED, "unknown_parent")
    receipt = engine.ingest(request("x", derived_from=["n" * MAX_REF_CHARS]))
    assert receipt.reason == "unknown_parent"
    hyphens = "-".join("0" * 32)  # 63 characters that spell a UUID: normalised, not refused
    receipt = engine.ingest(request("x", derived_from=[hyphens]))
    assert receipt.reason == "unknown_parent"


def test_a_quarantined_claim_cannot_store_megabytes(backend: Backend) -> None:
    """The issue's exploit: a recall re-entry with an incoherent window is quarantined
    before its parents are looked at, so its derived_from was stored as given. Everything
    at its limit now stores less than the value limit plus 64 KiB."""
    engine = backend.open()
    fields = {
        "provenance": "RecallReEntry",
        "valid_from": "2021",
        "valid_until": "2020",
        "derived_from": [f"{i:0{MAX_REF_CHARS}d}" for i in range(MAX_PARENTS)],
    }
    value = "v" * (MAX_VALUE - 2)  # canonical text: the quotes make it MAX_VALUE bytes
    key = "\u4e2d" * MAX_KEY_CHARS
    receipt = engine.ingest(request(value, key, key, **fields))
    assert (receipt.disposition, receipt.reason) == (Disposition.QUARANTINED, "incoherent_window")
    assert stored_bytes(engine) < MAX_VALUE + 64 * 1024
    too_big = request("v" * MAX_VALUE, key, key, **fields)
    assert engine.ingest(too_big).reason == "value_too_large"


def test_a_rejected_request_echoes_no_more_than_a_claim_could_hold(backend: Backend) -> None:
    """A request rejected for its keys is not measured first: its echo in the ledger left
    out the value only when the value was too large, so an empty key carried 20 MB in."""
    engine = backend.open()
    wide: Any = ["w" * 1024] * 16
    for _ in range(3):
        wide = [wide] * 16  # 16**4 strings of 1 KiB: 64 MiB of echo before this fix
    receipt = engine.ingest(request(wide, subject=""))
    assert (receipt.disposition, receipt.reason) == (Disposition.REJECTED, "empty_key")
    entry = engine.query_audit(AGENT).entries[-1]
    assert "value" not in entry.rationale["request"]
    assert stored_bytes(engine) < MAX_VALUE
    small = engine.ingest(request({"k": [1, 2]}, subject=""))
    assert small.reason == "empty_key"
    assert engine.query_audit(AGENT).entries[-1].rationale["request"]["value"] == {"k": [1, 2]}


# ---------------------------------------------------------------- reads


def test_reads_bound_keys_as_writes_do(backend: Backend) -> None:
    engine = backend.open(oracle=RecordingOracle())
    engine.ingest(request("Paris"))
    long = "k" * (MAX_KEY_CHARS + 1)
    cases = {
        "subject": [
            lambda k: engine.query_memory(AGENT, k, "city"),
            lambda k: engine.recall(AGENT, k, "city"),
            lambda k: engine.query_subject(AGENT, k),
            lambda k: engine.query_history(AGENT, k, "city"),
            lambda k: engine.end_fact(AGENT, k, "city", "2030"),
            lambda k: engine.reconcile(AGENT, [(k, "city")]),
        ],
        "predicate": [
            lambda k: engine.query_memory(AGENT, "user", k),
            lambda k: engine.query_history(AGENT, "user", k),
            lambda k: engine.reconcile(AGENT, [("user", k)]),
        ],
    }
    for what, calls in cases.items():
        for call in calls:
            refused(engine, lambda c=call: c(long), f"{MAX_KEY_CHARS + 1} characters; keys are")
            refused(engine, lambda c=call: c(""), "must not be empty")
            refused(engine, lambda c=call: c(long * 1024), what)
    edge = "\u4e2d" * MAX_KEY_CHARS  # the longest key a claim can have is still a key
    assert engine.query_memory(AGENT, edge, edge).status.value == "NoBelief"
    assert engine.ingest(request(1, edge, edge)).disposition is Disposition.COMMITTED_CHEAP
    assert engine.query_memory(AGENT, edge, edge).value == 1
    for handle in ("", "h" * (MAX_HANDLE_CHARS + 1)):
        refused(engine, lambda h=handle: engine.submit_adjudication(h, "Affirm"), "handle")
    with pytest.raises(mempill.NotFoundError):
        engine.submit_adjudication("h" * MAX_HANDLE_CHARS, "Affirm")


def test_reconcile_names_a_bounded_number_of_lines(backend: Backend) -> None:
    engine = backend.open(oracle=RecordingOracle())
    engine.ingest(request("Paris"))
    over = [("user", f"p{i}") for i in range(MAX_RECONCILE_LINES + 1)]
    refused(engine, lambda: engine.reconcile(AGENT, over), "more than 10,000 lines")

    def endless() -> Iterator[tuple[str, str]]:
        for i in itertools.count():
            yield ("user", f"p{i}")

    refused(engine, lambda: engine.reconcile(AGENT, endless()), "more than 10,000 lines")
    assert engine.reconcile(AGENT).lines[0].status.value == "TimingUncertain"  # no window


def test_reconcile_takes_exactly_the_limit(tmp_path: Path) -> None:
    with mempill.open_directory(tmp_path) as engine:
        lines = [("user", f"p{i}") for i in range(MAX_RECONCILE_LINES)]
        report = engine.reconcile(AGENT, lines)
        assert len(report.lines) == MAX_RECONCILE_LINES


# ---------------------------------------------------------------- every backend alike


def limit_stream(engine: Engine) -> list[str]:
    """The limit cases in one stream: outcomes, as text, for comparison across backends."""
    seen = []
    parents = [str(uuid.UUID(int=i)) for i in range(MAX_PARENTS + 1)]
    bodies = [
        request("Paris"),
        request("x", derived_from=parents),
        request("x", derived_from=parents[:MAX_PARENTS]),
        request("x", derived_from=["r" * (MAX_REF_CHARS + 1)]),
        request("x", derived_from=["n" * MAX_REF_CHARS], provenance="RecallReEntry"),
        request(
            "x",
            derived_from=["n" * MAX_REF_CHARS],
            provenance="RecallReEntry",
            valid_from="2021",
            valid_until="2020",
        ),
        request([["w" * 1024] * 16] * 16, subject=""),
        request("y", "k" * (MAX_KEY_CHARS + 1)),
    ]
    for body in bodies:
        try:
            receipt = engine.ingest(body)
            seen.append(f"{receipt.disposition.value}/{receipt.reason}")
        except ValidationError as e:
            seen.append(f"ValidationError: {e}")
    for key in ("", "k" * (MAX_KEY_CHARS + 1)):
        try:
            engine.query_memory(AGENT, key, "city")
        except ValidationError as e:
            seen.append(f"ValidationError: {e}")
    seen.append(engine.ledger_digest(AGENT))
    seen.append(engine.content_digest(AGENT))
    return seen


@pytest.mark.postgres_only
def test_the_limits_leave_equal_ledgers_on_every_backend(
    tmp_path: Path, postgres_server: str
) -> None:
    from mempill.lab.servers import fresh_schema

    outcomes = []
    with fresh_schema(postgres_server) as dsn, ExitStack() as stack:
        for name in ("sqlite-mem", "sqlite-file", "postgres"):
            backend = Backend(name=name, tmp_path=tmp_path / name, stack=stack, dsn=dsn)
            outcomes.append(limit_stream(backend.open()))
    assert outcomes[0] == outcomes[1] == outcomes[2]
    assert sum(o.startswith("ValidationError") for o in outcomes[0]) == 4
