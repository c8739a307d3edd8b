"""SQLite topology A (reference §8.1): PRAGMAs, non-blocking reads, binding, processes, plans."""

from __future__ import annotations

import multiprocessing
import sqlite3
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
from support import AGENT, put, request

import mempill
from mempill import Disposition, ValidationError
from mempill.core.dates import format_tx
from mempill.stores.sql import SQL
from mempill.stores.sqlite import SQLiteStore, migrations

pytestmark = pytest.mark.sqlite_only


def pragmas(conn: sqlite3.Connection) -> dict[str, object]:
    return {
        name: conn.execute(f"PRAGMA {name}").fetchone()[0]
        for name in ("journal_mode", "synchronous", "foreign_keys", "busy_timeout")
    }


def test_pragmas_on_every_connection(tmp_path: Path) -> None:
    store = SQLiteStore(directory=tmp_path)
    engine = mempill.Engine(store)
    put(engine, "Berlin")
    writer = store.connection_for(AGENT)
    assert writer is not None
    expected = {"journal_mode": "wal", "synchronous": 2, "foreign_keys": 1, "busy_timeout": 30000}
    assert pragmas(writer) == expected
    with store.read(AGENT) as session:  # a separate read connection
        conn = session.cursor.connection
        assert conn is not writer
        assert pragmas(conn) == expected
    memory = SQLiteStore()
    mempill.Engine(memory).remember(AGENT, "user", "city", "Berlin")
    in_memory = memory.connection_for(AGENT)
    assert in_memory is not None
    assert pragmas(in_memory) == {**expected, "journal_mode": "memory"}
    engine.close()
    memory.close()


def test_migrations_recorded_once(tmp_path: Path) -> None:
    path = tmp_path / "one.db"
    mempill.open_default(path).close()
    mempill.open_default(path).close()
    with sqlite3.connect(path) as conn:
        rows = conn.execute("SELECT version, name FROM schema_migrations").fetchall()
    assert rows == [(v, n) for v, n, _ in migrations()]


def test_reads_never_wait_for_an_open_write(tmp_path: Path) -> None:
    store = SQLiteStore(directory=tmp_path)
    engine = mempill.Engine(store)
    put(engine, "Berlin")
    holding, release = threading.Event(), threading.Event()

    def hold_a_write() -> None:
        with store.write(AGENT) as txn:
            txn.head()
            holding.set()
            release.wait(10)

    writer = threading.Thread(target=hold_a_write)
    writer.start()
    try:
        assert holding.wait(5)
        started = time.monotonic()
        belief = engine.query_memory(AGENT, "user", "city")
        history = engine.query_history(AGENT, "user", "city")
        elapsed = time.monotonic() - started
        assert belief.value == "Berlin" and len(history) == 1
        assert elapsed < 5, "a read waited for the open write transaction"
        assert writer.is_alive()  # the write was still open while we read
    finally:
        release.set()
        writer.join()
    engine.close()


def test_single_file_is_bound_to_its_first_writer(tmp_path: Path) -> None:
    path = tmp_path / "agent.db"
    engine = mempill.open_default(path)
    assert put(engine, "Berlin").disposition is Disposition.COMMITTED_CHEAP
    other = engine.ingest(request("x", agent_id="intruder"))
    assert (other.disposition, other.reason) == (Disposition.REJECTED, "write_authority")
    assert engine.query_memory("intruder", "user", "city").reason == "no_claims"
    engine.close()
    again = mempill.open_default(path)  # the binding is stored in the file
    assert again.ingest(request("y", agent_id="intruder")).reason == "write_authority"
    assert again.query_memory(AGENT, "user", "city").value == "Berlin"
    again.close()


@pytest.mark.parametrize("name", [":memory:", "./:memory:"])
def test_a_file_called_memory_is_a_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str
) -> None:
    """SQLite reads the exact name ":memory:" as an in-memory database; a store asked for
    a file of that name (which `Path` spells the same for both forms) keeps its claims."""
    monkeypatch.chdir(tmp_path)
    engine = mempill.open_default(name)
    assert put(engine, "Berlin").disposition is Disposition.COMMITTED_CHEAP
    engine.close()
    assert (tmp_path / ":memory:").is_file()
    again = mempill.open_default(name)
    assert again.query_memory(AGENT, "user", "city").value == "Berlin"
    again.close()


def test_directory_keeps_one_file_per_agent_and_validates_ids(tmp_path: Path) -> None:
    engine = mempill.open_directory(tmp_path / "agents")
    put(engine, "a", agent_id="alice")
    put(engine, "b", agent_id="bob.smith")
    assert sorted(p.name for p in (tmp_path / "agents").glob("*.db")) == [
        "alice.db",
        "bob.smith.db",
    ]
    for bad in ("../x", "a/b", ".hidden", "", "x" * 129, "sp ace"):
        with pytest.raises(ValidationError):
            engine.ingest(request("v", agent_id=bad))
        with pytest.raises(ValidationError):
            engine.query_memory(bad, "user", "city")
    assert sorted(p.name for p in tmp_path.rglob("*") if p.is_file() and "-" not in p.name) == [
        "alice.db",
        "bob.smith.db",
    ]
    assert engine.query_memory("carol", "user", "city").reason == "no_claims"
    assert not (tmp_path / "agents" / "carol.db").exists()  # reads create nothing
    engine.close()


def _writer_process(path: str, tag: str, count: int) -> None:
    engine = mempill.open_default(path, record_write_stats=True)
    for i in range(count):
        engine.ingest(request(f"{tag}-{i}", predicate=f"{tag}-{i % 7}"))
    engine.close()


@pytest.mark.slow
def test_two_processes_write_one_file(tmp_path: Path) -> None:
    path = str(tmp_path / "shared.db")
    mempill.open_default(path).close()
    context = multiprocessing.get_context("spawn")
    workers = [context.Process(target=_writer_process, args=(path, tag, 200)) for tag in ("p", "q")]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(120)
        assert worker.exitcode == 0
    with sqlite3.connect(path) as conn:
        seqs = [r[0] for r in conn.execute("SELECT stream_seq FROM ledger ORDER BY stream_seq")]
        assert seqs == list(range(1, 401))
        assert conn.execute("SELECT count(*) FROM claims").fetchone()[0] == 400
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        pids = {r[0] for r in conn.execute("SELECT pid FROM write_stats")}
        assert len(pids) == 2


# query -> (parameters, the index constraint its plan must show beyond agent_id)
HOT_QUERIES = {
    "head": ((AGENT,), "agent_id=?"),  # the primary key, newest first, LIMIT 1
    "line_version": ((AGENT, "s", "p"), "subject=? AND predicate=?"),
    "line_claims": ((AGENT, "s", "p", 0), "subject=? AND predicate=? AND stream_seq>?"),
    "line_entries": ((AGENT, "s", "p", 0), "subject=? AND predicate=? AND stream_seq>?"),
    "line_assertions": ((AGENT, "s", "p", 0), "subject=? AND predicate=? AND stream_seq>?"),
    "claim": ((AGENT, "r"), "claim_ref=?"),
    "claim_entries": ((AGENT, "r"), "claim_ref=?"),
    "claim_assertions": ((AGENT, "r"), "claim_ref=?"),
    "children": ((AGENT, "r", "DerivedFrom"), "to_ref=?"),
    "request_entries": ((AGENT, "r"), "request_ref=?"),
    "predicates": ((AGENT, "s", "t", 99), "subject=?"),
    "audit": ((AGENT, 0, 10), "stream_seq>?"),
    "audit_claim": ((AGENT, "r", 0, 10), "claim_ref=?"),
    "pending_line": ((AGENT, "s", "p"), "subject=? AND predicate=?"),
    "pending_handle": ((AGENT, "h"), "handle_id=?"),
    "pending_status": ((AGENT, "pending"), "status=?"),
}


def test_hot_queries_use_indexes(tmp_path: Path) -> None:
    """Writes and reads touch only their line's rows: no query scans a whole table."""
    engine = mempill.open_default(tmp_path / "plans.db")
    for i in range(300):  # enough rows for the planner to prefer indexes
        put(engine, f"v{i % 3}", f"s{i % 10}", f"p{i % 4}")
    engine.close()
    conn = sqlite3.connect(tmp_path / "plans.db")  # no ANALYZE: production stores have none
    stamp = format_tx(datetime.now(UTC))
    plans = {}
    for key, (params, _) in HOT_QUERIES.items():
        args = tuple(stamp if p == "t" else p for p in params)
        rows = conn.execute(f"EXPLAIN QUERY PLAN {SQL[key]}", args).fetchall()
        plans[key] = [r[3] for r in rows]
    conn.close()
    for key, details in plans.items():
        scans = [d for d in details if d.startswith("SCAN")]
        assert not scans, f"{key} scans: {details}"
        constraint = HOT_QUERIES[key][1]
        assert any(
            f"agent_id=? AND {constraint}" in d
            or (constraint == "agent_id=?" and "(agent_id=?)" in d)
            for d in details
        ), f"{key} does not seek its rows: {details}"
