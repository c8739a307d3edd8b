"""`mempill.compat` as the 0.4 wheel's whole public surface: its names, `types`, ergonomic
functions and errors, the two granularity gaps of issue 19, and openers that never let an
`OSError` escape. The wheel's own suite runs in test_compat_peer.py."""

from __future__ import annotations

import dataclasses
import typing
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

import mempill
from mempill import SeededIds, SteppingClock, compat
from mempill.compat import CompatEngine, ergonomic, shapes, types
from mempill.compat import requests as compat_requests

A = "agent-1"
NOW = datetime(2026, 6, 1, tzinfo=UTC)

#: The wheel's `mempill.__all__` (0.4.0) and the names of `mempill._mempill` its tests import.
WHEEL_NAMES = {
    *("__version__", "open_for_agent", "open_in_memory", "open_oracle_for_agent"),
    *("open_oracle_in_memory", "Engine", "PyEngine", "OracleEngine", "PyOracleEngine"),
    *("MempillError", "ValidationError", "NotFoundError", "ConflictError", "StorageError"),
    *("ConfigError", "InternalError", "Disposition", "ProvenanceLabel", "date_granularity_of"),
    *("ConfidenceDict", "ValidTimeDict", "FactDict", "BeliefSlot", "BeliefProjection"),
    *("IngestClaimRequest", "IngestClaimResponse", "QueryMemoryRequest", "QueryMemoryResponse"),
    *("ReconcileRequest", "ReconcileResponse", "AuditQueryRequest", "AuditQueryResponse"),
    *("remember", "recall", "RememberOptions", "RememberReceipt", "BeliefDetail"),
    *("ContestCandidate", "RecallResult", "UnparsableDateError", "history", "History"),
    *("HistoryEntry", "end_fact", "EndFactReceipt", "open_default_for_agent"),
    *("open_with_oracle_for_agent", "open_with_oracle_in_memory"),
}
WHEEL_METHODS = {
    *("ingest_claim", "query_memory", "query_subject", "query_history", "query_audit"),
    *("reconcile", "assert_validity", "resolve_live_claim_for_line", "submit_adjudication"),
    *("list_pending_adjudications", "sweep_expired_adjudications"),
}


@pytest.fixture
def engine() -> CompatEngine:
    return compat.open_in_memory(clock=SteppingClock(NOW, timedelta(seconds=1)), ids=SeededIds(19))


class Oracle:
    def __init__(self) -> None:
        self.handles: list[str] = []

    def request_adjudication(self, agent_id: str, request: dict[str, Any]) -> str:
        self.handles.append(f"oracle-{len(self.handles)}")
        return self.handles[-1]


# ---------------------------------------------------------------- names and types


def test_every_public_name_of_the_wheel_is_in_compat() -> None:
    assert WHEEL_NAMES - set(compat.__all__) == set()
    assert all(hasattr(compat, name) for name in compat.__all__)
    assert compat.__version__ and compat.__version__ != "0.0.0+unknown"
    for name in ("Engine", "PyEngine", "OracleEngine", "PyOracleEngine"):
        assert getattr(compat, name) is CompatEngine
    assert all(callable(getattr(CompatEngine, m)) for m in WHEEL_METHODS)
    assert compat.open_with_oracle_in_memory is compat.open_oracle_in_memory


def test_types_and_ergonomic_list_what_they_define() -> None:
    for module in (types, ergonomic):
        assert all(getattr(module, name).__module__ == module.__name__ for name in module.__all__)


def test_disposition_has_the_wheels_spelling_and_the_engines_values() -> None:
    D = types.Disposition
    assert {d.value for d in D} == {d.value for d in mempill.Disposition}
    assert all(d.name == d.value and isinstance(d, str) for d in D)
    assert D.CommittedCheap == "CommittedCheap" == mempill.Disposition.COMMITTED_CHEAP


def test_provenance_labels_are_the_wire_shapes_compat_reads_back() -> None:
    P = types.ProvenanceLabel
    assert P.external_user_asserted() == {"type": "External", "kind": P.USER_ASSERTED}
    assert P.external_first_hand() == {"type": "External", "kind": P.EXTERNAL_FIRST_HAND}
    assert P.recall_re_entry() == {"type": "RecallReEntry"}
    assert P.model_derived() == {"type": "ModelDerived"}


def keys(kind: Any) -> tuple[set[str], set[str]]:
    return set(kind.__required_keys__), set(kind.__optional_keys__)


def test_the_typeddicts_describe_the_dicts_compat_takes_and_returns(engine: CompatEngine) -> None:
    required, optional = keys(types.IngestClaimRequest)
    assert required == set(compat_requests.INGEST_REQUIRED)
    assert optional == {"valid_time", "claim_ref"}
    assert keys(types.ValidTimeDict) == (
        {"valid_time_confidence"},
        set(compat_requests.WINDOW_KEYS),
    )
    receipt = engine.ingest_claim(request("Berlin", valid_time=window(start="2020", end="2030")))
    required, optional = keys(types.IngestClaimResponse)
    assert required == set(receipt) and optional == {"handle_id", "oracle_notified"}
    belief = engine.query_memory({"agent_id": A, "subject": "user", "predicate": "city"})
    assert set(belief) == set(keys(types.QueryMemoryResponse)[0])
    assert set(belief["belief"]) == set(typing.get_type_hints(types.BeliefProjection))
    assert set(belief["belief"]["primary"]) == set(typing.get_type_hints(types.BeliefSlot))
    audit = engine.query_audit({"agent_id": A, "limit": 5})
    assert set(audit) == keys(types.AuditQueryResponse)[0]
    done = engine.reconcile({"agent_id": A, "subject_lines": []})
    assert set(done) == keys(types.ReconcileResponse)[0]


def test_errors_keep_the_wheels_names() -> None:
    assert compat.InternalError is mempill.IntegrityError
    assert issubclass(compat.InternalError, compat.StorageError)
    for name in (
        "ValidationError",
        "NotFoundError",
        "ConflictError",
        "StorageError",
        "ConfigError",
    ):
        assert getattr(compat, name) is getattr(mempill, name)
        assert issubclass(getattr(compat, name), compat.MempillError)
    assert issubclass(compat.UnparsableDateError, compat.ValidationError)
    assert issubclass(compat.UnparsableDateError, ValueError)


def test_the_quickstart_runs(capsys: pytest.CaptureFixture[str]) -> None:
    from mempill.compat import quickstart

    quickstart.main()
    assert capsys.readouterr().out == "quickstart passed\n"


# ---------------------------------------------------------------- the ergonomic layer


def window(**ends: str) -> dict[str, Any]:
    return {"valid_time_confidence": 0.9, **ends}


def request(value: Any, predicate: str = "city", **extra: Any) -> dict[str, Any]:
    return {
        "agent_id": A,
        "subject": "user",
        "predicate": predicate,
        "value": value,
        "provenance": types.ProvenanceLabel.external_user_asserted(),
        "cardinality": "Functional",
        "confidence": {"value_confidence": 0.9, "valid_time_confidence": 0.9},
        "criticality": "Medium",
        "derived_from": [],
        **extra,
    }


def test_remember_and_recall_with_the_wheels_defaults(engine: CompatEngine) -> None:
    receipt = compat.remember(engine, A, "user", "age", 42)
    assert receipt == compat.RememberReceipt(
        receipt.claim_ref, "CommittedCheap", [], "first_authoritative"
    )
    got = compat.recall(engine, A, "user", "age")
    assert (got.value, got.status, got.as_str(), got.candidates) == (
        42,
        "TimingUncertain",
        "42",
        [],
    )
    assert not got.is_contested() and not got.is_empty() and not got.is_stale
    assert got.primary == compat.BeliefDetail(
        receipt.claim_ref, 42, None, None, 1.0, "External/UserAsserted", 0
    )
    derived = compat.RememberOptions(derived_from=[receipt.claim_ref], confidence=0.75)
    assert compat.remember(engine, A, "user", "note", "x", derived).disposition == "CommittedCheap"
    assert compat.recall(engine, A, "user", "note").primary.value_confidence == 0.75  # type: ignore[union-attr]


def test_a_contest_has_no_value_and_every_candidate(engine: CompatEngine) -> None:
    first = compat.remember(engine, A, "acme", "ceo", "Alice")
    second = compat.remember(engine, A, "acme", "ceo", "Bob")
    assert (second.disposition, second.contested_with) == ("Contested", [first.claim_ref])
    got = compat.recall(engine, A, "acme", "ceo")
    assert got.is_contested() and not got.is_empty()
    assert (got.value, got.primary) == (None, None)
    assert sorted(c.value for c in got.candidates) == ["Alice", "Bob"]
    assert all(
        c.detail.value == c.value and c.detail.claim_ref == c.claim_ref for c in got.candidates
    )
    assert compat.ContestCandidate("v", "r", None).detail.claim_ref == ""  # the wheel's default


def test_dates_keep_their_precision_and_bad_ones_are_unparsable(engine: CompatEngine) -> None:
    for n, (text, granularity, shown) in enumerate(
        [
            ("2021", "year", "2021"),
            ("2021-04", "month", "2021-04"),
            (" 2021-04-15 ", "day", "2021-04-15"),
            ("2021-04-15T10:30:00Z", "instant", "2021-04-15"),
        ]
    ):
        compat.remember(engine, A, "s", f"p{n}", "v", compat.RememberOptions(valid_from=text))
        entry = compat.history(engine, A, "s", f"p{n}").entries[0]
        assert (entry.valid_from_granularity, entry.valid_from_display) == (granularity, shown)
    for bad in ("March 2020", "", "2021-13", 2021):
        with pytest.raises(compat.UnparsableDateError) as caught:
            compat.remember(engine, A, "s", "bad", "v", compat.RememberOptions(valid_from=bad))  # type: ignore[arg-type]
        assert caught.value.input == bad and "YYYY" in str(caught.value)
    assert compat.history(engine, A, "s", "bad").is_empty()


def test_recall_is_evaluated_at_now_unless_told_otherwise(engine: CompatEngine) -> None:
    """D18: the window [2020, 2025) has ended by NOW (2026-06-01)."""
    window = compat.RememberOptions(valid_from="2020", valid_until="2025")
    receipt = compat.remember(engine, A, "user", "city", "Berlin", window)
    ended = compat.recall(engine, A, "user", "city")
    assert ended.is_empty() and (ended.value, ended.reason) == (None, "window_ended")
    then = compat.recall(engine, A, "user", "city", valid_at="2022-06")
    assert (then.value, then.status, then.reason) == ("Berlin", "Resolved", None)
    assert then.primary is not None and then.primary.claim_ref == receipt.claim_ref
    assert (then.primary.valid_from, then.primary.valid_until) == (
        "2020-01-01T00:00:00Z",
        "2025-01-01T00:00:00Z",
    )
    assert [e.status for e in compat.history(engine, A, "user", "city")] == ["Ended"]


def test_history_is_a_timeline_that_agrees_with_recall(engine: CompatEngine) -> None:
    for value, start, end in (
        ("Alice", "2010", "2018"),
        ("John", "2018", "2023"),
        ("Bob", "2023", None),
    ):
        compat.remember(engine, A, "acme", "ceo", value, compat.RememberOptions(start, end))
    found = compat.history(engine, A, "acme", "ceo")
    assert [(e.value, e.status) for e in found] == [
        ("Alice", "Ended"),
        ("John", "Ended"),
        ("Bob", "Current"),
    ]
    assert len(found) == 3 and not found.is_empty() and repr(found).startswith("History(")
    current = found.current()
    assert current is not None and current.value == compat.recall(engine, A, "acme", "ceo").value
    assert (found.entries[0].valid_until_display, found.entries[0].valid_until_granularity) == (
        "2018",
        "year",
    )
    assert compat.history(engine, A, "nobody", "nothing").current() is None


def test_end_fact_bounds_the_one_live_claim_or_refuses(engine: CompatEngine) -> None:
    with pytest.raises(compat.NotFoundError):
        compat.end_fact(engine, A, "user", "city", "2024")
    compat.remember(engine, A, "user", "city", "Austin", compat.RememberOptions("2021-04-01"))
    with pytest.raises(compat.UnparsableDateError):
        compat.end_fact(engine, A, "user", "city", "last September")
    with pytest.raises(compat.ValidationError, match="refused"):
        compat.end_fact(engine, A, "user", "city", "2020")
    with pytest.raises(compat.ValidationError, match="refused"):
        compat.end_fact(engine, A, "user", "city", "2024", provenance="ModelDerived")
    ended = compat.end_fact(engine, A, "user", "city", "2024-09")
    assert (ended.disposition, ended.no_op) == ("Superseded", False)
    assert ended.effective_at == "2024-09-01T00:00:00Z"
    entry = compat.history(engine, A, "user", "city").entries[0]
    assert (entry.status, entry.valid_until_display, entry.valid_until_granularity) == (
        "Ended",
        "2024-09",
        "month",
    )
    compat.remember(engine, A, "acme", "ceo", "Alice")
    compat.remember(engine, A, "acme", "ceo", "Bob")
    with pytest.raises(compat.ValidationError, match="2 live claims"):
        compat.end_fact(engine, A, "acme", "ceo", "2024")


def test_the_ergonomic_dataclasses_have_the_wheels_fields() -> None:
    fields = {
        compat.RememberOptions: "valid_from valid_until confidence cardinality provenance "
        "criticality derived_from",
        compat.BeliefDetail: "claim_ref value valid_from valid_until value_confidence provenance "
        "corroboration_count",
        compat.HistoryEntry: "claim_ref value valid_from valid_until status provenance "
        "value_confidence valid_from_display valid_until_display valid_from_granularity "
        "valid_until_granularity",
        compat.EndFactReceipt: "claim_ref disposition effective_at no_op",
    }
    for kind, names in fields.items():
        assert [f.name for f in dataclasses.fields(kind)] == names.split()
    assert compat.RememberOptions().derived_from == []


# ---------------------------------------------------------------- the granularity gaps


def test_an_untagged_rfc3339_start_is_an_instant(engine: CompatEngine) -> None:
    """D17 (deliberate): the engine keeps the precision a date was written with."""
    engine.ingest_claim(request("v", valid_time=window(start="2020-03-15T00:00:00Z")))
    slot = engine.query_memory({"agent_id": A, "subject": "user", "predicate": "city"})
    primary = slot["belief"]["primary"]
    assert (primary["valid_time"]["start_granularity"], primary["valid_from_display"]) == (
        "instant",
        "2020-03-15",
    )
    entry = engine.query_history({"agent_id": A, "subject": "user", "predicate": "city"})
    assert entry["entries"][0]["valid_from_granularity"] == "instant"


def test_an_end_set_by_an_oracle_is_reported_as_a_day() -> None:
    """Issue 19, gap 2: after an Affirm the replaced claim's end has a display and a granularity."""
    oracle = Oracle()
    engine = compat.open_oracle_in_memory(oracle, clock=SteppingClock(NOW), ids=SeededIds(2))
    engine.ingest_claim(
        request("Diane", valid_time=window(start="2021-04-01", start_granularity="day"))
    )
    engine.ingest_claim(request("Linda", valid_time=window(start="2024-09", end="2026-01-24")))
    outcome = engine.submit_adjudication(
        {
            "handle_id": oracle.handles[0],
            "verdict": "Affirm",
            "evidence_provenance": "External:UserAsserted",
        }
    )
    assert outcome["disposition"] == "CommittedCheap" and len(outcome["superseded"]) == 1
    entries = engine.query_history({"agent_id": A, "subject": "user", "predicate": "city"})[
        "entries"
    ]
    diane = entries[0]
    assert (diane["value"], diane["status"], diane["valid_until"]) == (
        "Diane",
        "Superseded",
        "2024-09-01T00:00:00Z",
    )
    assert (diane["valid_until_display"], diane["valid_until_granularity"]) == ("2024-09-01", "day")
    assert compat.history(engine, A, "user", "city").entries[0].valid_until_granularity == "day"
    assert shapes.valid_text(None) is None


# ---------------------------------------------------------------- openers: no raw OSError


def test_open_for_agent_needs_an_existing_directory_as_the_wheel_did(tmp_path: Path) -> None:
    missing = tmp_path / "missing"
    with pytest.raises(compat.StorageError, match="not an existing directory"):
        compat.open_for_agent(missing, A)
    assert not missing.exists()
    (tmp_path / "a-file").write_text("x")
    for where in (tmp_path / "a-file", tmp_path / ("x" * 5000), tmp_path / "a-file" / "below"):
        with pytest.raises(compat.StorageError):
            compat.open_for_agent(where, A)
    with pytest.raises(compat.ValidationError):  # D3
        compat.open_for_agent(tmp_path, "../escape")
    (tmp_path / f"{A}.db").mkdir()  # a directory where the agent's file belongs
    with pytest.raises(compat.StorageError):
        compat.open_for_agent(tmp_path, A)


def test_openers_turn_os_errors_into_storage_errors(tmp_path: Path) -> None:
    (tmp_path / "a-file").write_text("x")
    for opener in (
        lambda: mempill.open_directory(tmp_path / "a-file"),  # a file in the way
        lambda: mempill.open_default(tmp_path),  # a directory where the file belongs
        lambda: mempill.open_directory(tmp_path / ("x" * 5000)),  # a name too long
        lambda: mempill.open_default(tmp_path / ("x" * 5000) / "memory.db"),
    ):
        with pytest.raises(mempill.StorageError):
            opener()


@pytest.mark.skipif(not Path("/proc/self").is_dir(), reason="needs Linux /proc")
def test_a_folder_or_file_the_system_refuses_is_a_storage_error() -> None:
    """Nothing can be created in /proc, not even by root (the wheel's peer test used a path
    at `/`, which root may create)."""
    for opener in (
        lambda: mempill.open_directory("/proc/mempill-refused/agents"),
        lambda: mempill.open_default("/proc/mempill-refused/memory.db"),
        lambda: mempill.open_default("/proc/memory.db"),
        lambda: compat.open_for_agent("/proc", A),
    ):
        with pytest.raises(mempill.StorageError, match="/proc"):
            opener()
