"""Results in a notebook: `_repr_html_` puts the answer first and shows a list as one table
with a row per entry; `to_frame()` gives the same rows as a typed pandas DataFrame.

Everything runs on a real in-memory SQLite engine with an injected clock and ids."""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pandas as pd
import pytest

import mempill
from mempill import (
    BeliefStatus,
    Engine,
    HistoryStatus,
    Receipt,
    SeededIds,
    SteppingClock,
    compat,
)
from mempill.core import display, tables
from mempill.core.enums import Disposition, EventKind

A = "agent-1"
START = datetime(2026, 1, 1, tzinfo=UTC)
UTC_US = "datetime64[us, UTC]"
HOSTILE = "<script>alert('x')</script>"


@pytest.fixture
def engine() -> Iterator[Engine]:
    with mempill.open_default_in_memory(
        clock=SteppingClock(START, timedelta(seconds=1)), ids=SeededIds(7)
    ) as opened:
        yield opened


def put(
    engine: Engine, value: Any, subject: str = "user", predicate: str = "city", **kw: Any
) -> Receipt:
    return engine.remember(A, subject, predicate, value, **kw)


def body_rows(html: str) -> int:
    """Rows of the first table's body."""
    return html.split("<tbody>", 1)[1].split("</tbody>", 1)[0].count("<tr>")


def cells(html: str) -> list[str]:
    """The visible text of every cell of the first table's body, unescaped markup kept."""
    body = html.split("<tbody>", 1)[1].split("</tbody>", 1)[0]
    return re.findall(r"<td[^>]*>(.*?)</td>", body)


# ---------------------------------------------------------------- a belief


def test_a_belief_starts_with_its_answer_and_folds_the_details(engine: Engine) -> None:
    receipt = put(engine, "Berlin", valid_from="2020-03", valid_until="2030")
    html = engine.query_memory(A, "user", "city")._repr_html_()
    fold = html.index("<details>")
    answer = html[:fold]
    assert html.startswith("<table>") and answer.count("<table>") == 1
    assert body_rows(answer) == 1
    assert cells(answer)[:4] == ["Resolved", "Berlin", "2020-03", "2030"]
    assert cells(answer)[4] == "now"  # as of: a read now
    # the ids and the provenance are in the folded part only
    assert receipt.claim_ref not in answer and receipt.claim_ref in html[fold:]
    assert "External/UserAsserted" not in answer and "External/UserAsserted" in html[fold:]
    # the stored instants stay one hover away
    assert "title='2020-03-01T00:00:00.000000Z'" in answer


def test_a_contest_shows_every_side_and_no_belief_its_reason(engine: Engine) -> None:
    put(engine, "Berlin")
    put(engine, "Paris")
    belief = engine.query_memory(A, "user", "city")
    assert belief.status is BeliefStatus.CONTESTED
    answer = belief._repr_html_().split("<details>")[0]
    assert cells(answer)[:2] == ["Contested", "Berlin | Paris"]
    none = engine.query_memory(A, "user", "employer")._repr_html_().split("<details>")[0]
    assert cells(none)[:2] == ["NoBelief (no_claims)", ""]


def test_a_belief_as_a_frame_one_row_or_a_row_per_slot(engine: Engine) -> None:
    for value in ("fr", "en"):
        put(engine, value, predicate="languages", cardinality="SetValued")
    belief = engine.query_memory(A, "user", "languages", as_of=START + timedelta(hours=1))
    row = belief.to_frame()
    assert len(row) == 1 and list(row.columns) == [c.name for c in tables.BELIEF]
    assert row.at[0, "value"] == belief.value and row.at[0, "candidates"] == 2
    assert row.at[0, "as_of"] == START + timedelta(hours=1)
    assert {str(row["as_of"].dtype), str(row["valid_from"].dtype)} == {UTC_US}
    assert row["valid_from"].isna().all()  # an open window
    assert row["status"].dtype == "category"
    assert list(row["status"].cat.categories) == [s.value for s in BeliefStatus]
    slots = belief.to_frame(candidates=True)
    assert list(slots["role"]) == ["member", "primary"] and list(slots["value"]) == ["fr", "en"]
    assert list(slots["claim_ref"]) == [s.claim_ref for s in belief.members]
    assert slots["claim_ref"].dtype == "string" and slots["tx_time"].dtype == UTC_US


# ---------------------------------------------------------------- lists: one table


def test_a_history_is_one_table_with_a_row_per_entry(engine: Engine) -> None:
    first = put(engine, "Berlin", valid_from="2020-03-15")
    engine.end(A, first.claim_ref, "2022-07")
    put(engine, "Munich", valid_from="2022-07")
    found = engine.history(A, "user", "city")
    html = found._repr_html_()
    assert html.count("<table") == 1 and body_rows(html) == len(found) == 2
    assert "<b>History</b> user · city: 2 entries" in html
    assert cells(html)[:6] == [
        "1",
        "2026-01-01 00:00:00Z",
        "Ended",
        "Berlin",
        "2020-03-15",
        "2022-07",
    ]
    frame = found.to_frame()
    assert len(frame) == 2 and list(frame.columns) == [c.name for c in tables.HISTORY_ENTRY]
    assert list(frame["stream_seq"]) == [e.stream_seq for e in found]
    assert list(frame["tx_time"]) == [e.tx_time for e in found]
    assert list(frame["valid_until"])[1] is pd.NaT
    assert list(frame["status"]) == ["Ended", "Current"]
    assert list(frame["status"].cat.categories) == [s.value for s in HistoryStatus]
    assert frame["criticality"].cat.ordered and not frame["status"].cat.ordered
    assert {str(frame[c].dtype) for c in ("tx_time", "valid_from", "valid_until")} == {UTC_US}
    assert (str(frame["stream_seq"].dtype), str(frame["value_confidence"].dtype)) == (
        "int64",
        "float64",
    )
    assert frame["value"].dtype == object and frame["claim_ref"].dtype == "string"


def test_an_empty_history_is_a_table_of_headers_and_a_typed_empty_frame(engine: Engine) -> None:
    found = engine.history(A, "nobody", "city")
    assert body_rows(found._repr_html_()) == 0 and "0 entries" in found._repr_html_()
    frame = found.to_frame()
    assert len(frame) == 0 and frame["tx_time"].dtype == UTC_US
    assert frame["status"].dtype == "category"


def test_an_audit_page_is_one_table_and_says_where_the_next_page_starts(engine: Engine) -> None:
    for value in ("Berlin", "Munich", "Rome"):
        put(engine, value, subject=value.lower())
    page = engine.query_audit(A, limit=2)
    html = page._repr_html_()
    assert html.count("<table") == 1 and body_rows(html) == 2
    assert "2 entries; next page: cursor=2" in html
    assert "; last page" in engine.query_audit(A, after_seq=2)._repr_html_()
    frame = page.to_frame()
    assert list(frame["stream_seq"]) == [1, 2] and frame["recorded_at"].dtype == UTC_US
    assert list(frame["event_kind"]) == [EventKind.CLAIM_COMMITTED.value] * 2
    assert list(frame["disposition"].cat.categories) == [d.value for d in Disposition]
    assert frame.at[0, "rationale"] == page.entries[0].rationale  # a dict stays one value


def test_a_long_table_shows_its_first_rows_and_the_frame_has_them_all(engine: Engine) -> None:
    many = display.ROWS + 3
    engine.ingest_many(
        [{"agent_id": A, "subject": f"s{i}", "predicate": "p", "value": i} for i in range(many)]
    )
    page = engine.query_audit(A, limit=1000)
    html = page._repr_html_()
    assert body_rows(html) == display.ROWS + 1 and "… 3 more rows" in html
    assert len(page.to_frame()) == many


def test_search_subjects_timeline_changes_and_reconcile_are_tables_too(engine: Engine) -> None:
    put(engine, "Berlin", subject="alice", valid_from="2020")
    put(engine, "Paris", subject="bob")
    put(engine, "Oslo", subject="bob")  # contests Paris
    hits = engine.search(A, "berlin")
    assert body_rows(hits._repr_html_()) == len(hits) == 1
    frame = hits.to_frame()
    assert list(frame[["subject", "status", "value"]].itertuples(index=False, name=None)) == [
        ("alice", "Resolved", "Berlin")
    ]
    assert frame["score"].dtype == "float64" and frame["as_of"].isna().all()
    subjects = engine.list_subjects(A, limit=1)
    assert "1 subject; next page: cursor=alice" in subjects._repr_html_()
    assert list(subjects.to_frame()["subject"]) == ["alice"]
    line = engine.query_timeline(A, "alice", "city")
    assert body_rows(line._repr_html_()) == len(line) == 2  # before 2020, then Berlin
    segments = line.to_frame()
    assert list(segments["status"]) == ["NoBelief", "Resolved"]
    assert segments["valid_from"].isna().tolist() == [True, False]
    changes = engine.query_changes(A, since=START)
    assert body_rows(changes._repr_html_()) == len(changes) == 1  # bob's line
    assert "Contested: Paris | Oslo" in changes._repr_html_()
    assert list(changes.to_frame()["after_status"]) == ["Contested"]
    report = engine.reconcile(A, [("bob", "city")])
    assert body_rows(report._repr_html_()) == len(report.to_frame()) == 1


def test_the_compat_history_is_a_table_and_a_frame() -> None:
    engine = compat.open_in_memory(
        clock=SteppingClock(START, timedelta(seconds=1)), ids=SeededIds(7)
    )
    for value, start, end in (("Alice", "2010", "2018"), ("Bob", "2018", None)):
        compat.remember(engine, A, "acme", "ceo", value, compat.RememberOptions(start, end))
    found = compat.history(engine, A, "acme", "ceo")
    html = found._repr_html_()
    assert html.count("<table") == 1 and body_rows(html) == 2
    assert cells(html)[:4] == ["Ended", "Alice", "2010", "2018"]
    frame = found.to_frame()
    assert list(frame["valid_from"]) == [datetime(2010, 1, 1, tzinfo=UTC), START.replace(2018)]
    assert frame["valid_from"].dtype == UTC_US and list(frame["status"]) == ["Ended", "Current"]
    assert list(frame["valid_from_granularity"]) == ["year", "year"]


# ---------------------------------------------------------------- caller data is escaped


def test_values_and_keys_are_escaped_and_long_ones_cut_with_the_whole_in_the_title(
    engine: Engine,
) -> None:
    sneaky = "' onmouseover='alert(1)" + "x" * 60
    put(engine, HOSTILE, subject="<b>user</b>")
    put(engine, sneaky, subject="<b>user</b>", predicate="note")
    shown = [
        engine.query_memory(A, "<b>user</b>", "city")._repr_html_(),
        engine.history(A, "<b>user</b>", "note")._repr_html_(),
        engine.query_audit(A)._repr_html_(),
        engine.search(A, "user")._repr_html_(),
        engine.query_changes(A, since=START)._repr_html_(),
    ]
    for html in shown:
        assert "<script>" not in html and "<b>user</b>" not in html
        assert "onmouseover='" not in html and "' onmouseover" not in html
    assert "&lt;script&gt;" in shown[0] and "&lt;b&gt;user&lt;/b&gt;" in shown[0]
    escaped = sneaky.replace("'", "&#x27;")
    cut = sneaky[: tables.WIDTH - 1].replace("'", "&#x27;") + "…"
    assert f"title='{escaped}'>{cut}</td>" in shown[1]  # the cell cut, its title whole


# ---------------------------------------------------------------- pandas stays optional


def test_without_pandas_to_frame_names_the_extra_and_html_still_works(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    put(engine, "Berlin")
    found = engine.history(A, "user", "city")
    monkeypatch.setitem(sys.modules, "pandas", None)  # as if it were not installed
    with pytest.raises(ImportError, match=r"to_frame\(\) needs the notebooks extra"):
        found.to_frame()
    assert body_rows(found._repr_html_()) == 1


def test_importing_mempill_does_not_import_pandas() -> None:
    code = (
        "import sys, mempill, mempill.compat, mempill.core.frames, mempill.core.display\n"
        "assert 'pandas' not in sys.modules and 'numpy' not in sys.modules, 'pandas loaded'"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr
