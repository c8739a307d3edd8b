"""Erasure (docs/erasure.md): `engine.erase` forgets a subject (or one line) in place; no
read, audit, export or loader returns an erased value afterwards, the ledger records the
erasure without values, other subjects are untouched, digests stay equal across backends;
on SQLite the bytes are gone from the database and WAL files when erase returns, on
PostgreSQL from every live row."""

from __future__ import annotations

import json
import sqlite3
import uuid
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import psycopg
import pytest
from conftest import Backend, RecordingOracle, selected_backends
from pghelpers import with_params
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict
from support import AGENT, ledger, put

import mempill
from mempill import (
    BeliefStatus,
    Disposition,
    Engine,
    EventKind,
    NotFoundError,
    PermissionDeniedError,
    ValidationError,
)
from mempill.cli.exports import _claims, claim_row, ledger_row
from mempill.core.search import INDEX_BLOCK
from mempill.lab.servers import fresh_schema
from mempill.stores.pgaccess import grant_script, revoke_script

SECRET = "ERASE-ME-7f3a"
NUMBER = 918273645546372819  # a big unique number, stored as JSON text
ACCENTED = f"{SECRET}-zoë"  # non-ASCII: its UTF-8 and its JSON-escaped form are checked
MARKS = (SECRET, str(NUMBER), "zoë", "zo\\u00eb")
REASON = "GDPR art. 17 request #12"
INDEXED = b"xylophonequark"  # a value word as the word index holds it (case-folded)
TABLES = ("claims", "ledger", "assertions", "edges", "pending_adjudications", "write_stats")


def feed(engine: Engine) -> dict[str, str]:
    """Values of the subject `bob` on five lines (a contested pair with a pending
    adjudication when the engine has an oracle, an end, an invalidate, a rejected request
    echoing its value), claims of `carol` derived from bob's and of `alice`."""
    refs: dict[str, str] = {}
    refs["ssn"] = put(engine, f"{SECRET}-ssn-1", "bob", "ssn").claim_ref
    refs["ssn2"] = put(engine, f"{SECRET}-ssn-2", "bob", "ssn").claim_ref
    city = {"street": ACCENTED, "n": NUMBER}
    refs["city"] = put(engine, city, "bob", "city", valid_from="2020", valid_until="2024").claim_ref
    refs["phone"] = put(engine, f"{SECRET}-phone", "bob", "phone").claim_ref
    engine.end(AGENT, refs["phone"], "2025-01-01")
    refs["mail"] = put(engine, f"{SECRET}-mail", "bob", "mail").claim_ref
    engine.invalidate(AGENT, refs["mail"])
    rejected = put(
        engine, f"{SECRET}-nick", "bob", "nick", provenance="ModelDerived", derived_from=["nope"]
    )
    assert (rejected.disposition, rejected.reason) == (Disposition.REJECTED, "unknown_parent")
    refs["alice"] = put(engine, "Paris", "alice", "city").claim_ref
    refs["carol"] = put(
        engine, "kept", "carol", "guess", provenance="ModelDerived", derived_from=[refs["ssn"]]
    ).claim_ref
    return refs


BOB_LINES = tuple(("bob", p) for p in ("city", "mail", "nick", "phone", "ssn"))


def reads(engine: Engine) -> str:
    """Everything the public reads return about the agent, as text."""
    found: list[Any] = [engine.query_subject(AGENT, s) for s in ("bob", "alice", "carol")]
    for subject, predicate in (*BOB_LINES, ("alice", "city"), ("carol", "guess")):
        found.append(engine.query_memory(AGENT, subject, predicate))
        found.append(engine.query_history(AGENT, subject, predicate))
    found += [ledger(engine), engine.list_pending(AGENT, status=None)]
    found.append(engine.query_changes(AGENT, limit=1000))
    with engine.store.read(AGENT) as reader:  # what `mempill export` writes
        found += [claim_row(c) for c in _claims(reader)]
        found += [ledger_row(e) for e in reader.ledger()]
        found += [reader.all_claims(), reader.all_assertions(), reader.pending(None)]
    return repr(found)


def belief_of_others(engine: Engine) -> list[Any]:
    """The projections (but the reading time) and histories of the subjects kept."""
    found: list[Any] = []
    for subject, predicate in (("alice", "city"), ("carol", "guess")):
        belief = engine.query_memory(AGENT, subject, predicate, valid_at="2026-01-01")
        found += [belief.status, belief.primary, belief.alternatives, belief.markers]
        found.append([e.to_dict() for e in engine.query_history(AGENT, subject, predicate)])
    return found


def stored(backend: Backend, engine: Engine) -> str:
    """Every column of every row of every mempill table, as text."""
    texts: list[str] = []
    if backend.is_postgres:
        assert backend.dsn is not None
        with psycopg.connect(backend.dsn, autocommit=True) as conn:
            for table in TABLES:
                texts += [r[0] for r in conn.execute(f"SELECT t::text FROM {table} t")]
    else:
        conn = engine.store.connection_for(AGENT)  # type: ignore[attr-defined]
        for table in (*TABLES, "store_meta"):
            texts += [repr(r) for r in conn.execute(f"SELECT * FROM {table}")]
    return "\n".join(texts)


def assert_absent(text: str) -> None:
    for mark in MARKS:
        assert mark not in text, mark


def assert_present(text: str) -> None:
    assert SECRET in text and str(NUMBER) in text


def test_erase_forgets_a_subject_everywhere(backend: Backend, oracle: RecordingOracle) -> None:
    engine = backend.open(oracle=oracle)
    refs = feed(engine)
    assert engine.list_pending(AGENT)[0].subject == "bob"  # the contested pair is queued
    assert_present(reads(engine))
    assert_present(stored(backend, engine))
    others = belief_of_others(engine)
    head = ledger(engine)[-1].stream_seq

    receipt = engine.erase(AGENT, "bob", reason=REASON)

    assert (receipt.subject, receipt.predicate, receipt.lines) == ("bob", None, BOB_LINES)
    assert (receipt.first_seq, receipt.last_seq) == (head + 1, head + len(BOB_LINES))
    assert receipt.claims == 5  # ssn ×2, city, phone, mail; the rejection had no claim
    assert_absent(reads(engine))
    assert_absent(stored(backend, engine))
    assert engine.list_pending(AGENT) == ()  # the line's request is expired, and blank
    for subject, predicate in BOB_LINES:
        assert engine.query_memory(AGENT, subject, predicate).status is BeliefStatus.NO_BELIEF
        assert len(engine.query_history(AGENT, subject, predicate)) == 0
    assert engine.query_subject(AGENT, "bob") == ()
    with engine.store.read(AGENT) as reader:
        assert reader.lines() == (("alice", "city"), ("carol", "guess")) or sorted(
            reader.lines()
        ) == [("alice", "city"), ("carol", "guess")]
    # The other subjects: unchanged (carol's claim was derived from an erased one).
    assert belief_of_others(engine) == others
    # The ledger: one LineErased entry per line, with the reason and no value.
    marks = [e for e in ledger(engine) if e.event_kind is EventKind.LINE_ERASED]
    assert [(e.subject, e.predicate) for e in marks] == list(BOB_LINES)
    assert {e.disposition for e in marks} == {Disposition.INVALIDATED}
    assert {e.rationale["reason"] for e in marks} == {REASON}
    assert {e.claim_ref for e in marks} == {None} and len({e.request_ref for e in marks}) == 1
    assert sum(e.rationale["claims"] for e in marks) == receipt.claims
    assert sum(e.rationale["entries"] for e in marks) == receipt.entries
    scrubbed = [e for e in ledger(engine) if e.subject == ""]
    assert len(scrubbed) == receipt.entries and all("erased" in e.rationale for e in scrubbed)
    # An erased claim is found by no ref; the digests stay defined.
    with pytest.raises(NotFoundError):
        engine.invalidate(AGENT, refs["ssn"])
    orphan = put(
        engine, "x", "dave", "guess", provenance="ModelDerived", derived_from=[refs["ssn"]]
    )
    assert (orphan.disposition, orphan.reason) == (Disposition.REJECTED, "unknown_parent")
    assert len(engine.ledger_digest(AGENT)) == len(engine.content_digest(AGENT)) == 64


def test_erase_one_line_leaves_the_subjects_other_lines(engine: Engine) -> None:
    put(engine, f"{SECRET}-a", "bob", "ssn")
    put(engine, "Lyon", "bob", "city")
    history = engine.query_history(AGENT, "bob", "city")
    receipt = engine.erase(AGENT, "bob", "ssn", reason=REASON)
    assert (receipt.predicate, receipt.lines, receipt.claims) == ("ssn", (("bob", "ssn"),), 1)
    assert engine.query_memory(AGENT, "bob", "city").value == "Lyon"
    assert engine.query_history(AGENT, "bob", "city") == history
    assert [b.predicate for b in engine.query_subject(AGENT, "bob")] == ["city"]
    assert SECRET not in repr(ledger(engine))


def test_the_erased_line_takes_new_writes(engine: Engine) -> None:
    put(engine, f"{SECRET}-old", "bob", "ssn")
    assert engine.query_memory(AGENT, "bob", "ssn").value == f"{SECRET}-old"  # cached
    engine.erase(AGENT, "bob", reason=REASON)
    fresh = put(engine, "new", "bob", "ssn")
    assert fresh.disposition is Disposition.COMMITTED_CHEAP
    assert engine.query_memory(AGENT, "bob", "ssn").value == "new"
    assert [e.value for e in engine.query_history(AGENT, "bob", "ssn")] == ["new"]
    again = engine.erase(AGENT, "bob", reason="again")
    assert again.lines == (("bob", "ssn"),) and again.claims == 1
    assert engine.query_memory(AGENT, "bob", "ssn").status is BeliefStatus.NO_BELIEF
    erased = [e for e in ledger(engine) if e.event_kind is EventKind.LINE_ERASED]
    assert [e.rationale["reason"] for e in erased] == [REASON, "again"]  # both kept


def test_erasing_nothing_writes_nothing(engine: Engine) -> None:
    receipt = engine.erase("nobody-here", "bob", reason=REASON)  # no such agent
    assert (receipt.lines, receipt.claims, receipt.first_seq) == ((), 0, None)
    assert engine.store.agents() == ()
    put(engine, "Lyon", "bob", "city")
    before = (ledger(engine), engine.content_digest(AGENT))
    for predicate in (None, "ssn"):
        receipt = engine.erase(AGENT, "carol", predicate, reason=REASON)
        assert (receipt.lines, receipt.entries, receipt.last_seq) == ((), 0, None)
    assert engine.erase(AGENT, "bob", "ssn", reason=REASON).lines == ()
    engine.erase(AGENT, "bob", reason=REASON)
    assert engine.erase(AGENT, "bob", reason=REASON).lines == ()  # already erased
    assert len(ledger(engine)) == len(before[0]) + 1


@pytest.mark.parametrize(
    ("args", "reason", "match"),
    [
        (("bob",), "", "reason"),
        (("bob",), "   ", "reason"),
        (("bob",), "x" * 1025, "reason"),
        (("bob",), 17, "reason"),
        (("bob",), "a\x00b", "reason"),
        (("",), REASON, "subject"),
        (("bob", ""), REASON, "predicate"),
        (("bob", 3), REASON, "predicate"),
    ],
)
def test_erase_validates_its_arguments(
    engine: Engine, args: tuple[Any, ...], reason: Any, match: str
) -> None:
    put(engine, f"{SECRET}-a", "bob", "ssn")
    with pytest.raises(ValidationError, match=match):
        engine.erase(AGENT, *args, reason=reason)
    with pytest.raises(ValidationError, match="agent"):
        engine.erase("bad agent!", "bob", reason=REASON)
    assert engine.query_memory(AGENT, "bob", "ssn").value == f"{SECRET}-a"


def test_a_dependent_of_an_erased_claim_is_still_flagged(engine: Engine) -> None:
    root = put(engine, "Berlin", "alice", "city").claim_ref
    middle = put(engine, "DE", "bob", "country", provenance="ModelDerived", derived_from=[root])
    leaf = put(
        engine, "EU", "carol", "zone", provenance="ModelDerived", derived_from=[middle.claim_ref]
    )
    engine.erase(AGENT, "bob", reason=REASON)
    engine.invalidate(AGENT, root)
    flagged = [
        e for e in ledger(engine) if e.event_kind is EventKind.DEPENDENT_FLAGGED_PENDING_REVIEW
    ]
    assert [e.claim_ref for e in flagged] == [leaf.claim_ref]  # through the erased middle
    assert engine.query_memory(AGENT, "carol", "zone").status is not BeliefStatus.NO_BELIEF


def test_another_engine_with_the_line_cached_forgets_it(backend: Backend) -> None:
    if backend.name == "sqlite-mem":
        pytest.skip("an in-memory store is not shared by two engines")
    first, second = backend.open(), backend.open()
    put(first, f"{SECRET}-a", "bob", "ssn")
    put(first, f"{SECRET}-b", "bob", "ssn", valid_from="2020")
    assert f"{SECRET}-a" in repr(second.query_history(AGENT, "bob", "ssn"))  # now cached
    first.erase(AGENT, "bob", reason=REASON)
    assert second.query_memory(AGENT, "bob", "ssn").status is BeliefStatus.NO_BELIEF
    assert len(second.query_history(AGENT, "bob", "ssn")) == 0
    put(second, "new", "bob", "ssn")  # the second engine writes on from the erased state
    assert first.query_memory(AGENT, "bob", "ssn").value == "new"
    assert second.query_memory(AGENT, "bob", "ssn").value == "new"


def test_a_read_only_engine_refuses_to_erase(backend: Backend) -> None:
    if backend.name == "sqlite-mem":
        pytest.skip("an in-memory store cannot be read-only")
    writer = backend.open()
    put(writer, f"{SECRET}-a", "bob", "ssn")
    if backend.is_postgres:
        assert backend.dsn is not None
        reader = mempill.open_postgres(backend.dsn, read_only=True, pool_min_size=0)
    else:
        reader = mempill.open_directory(backend.tmp_path / "agents", read_only=True)
    backend.stack.callback(reader.close)
    with pytest.raises(ValidationError, match="read-only"):
        reader.erase(AGENT, "bob", reason=REASON)
    assert writer.query_memory(AGENT, "bob", "ssn").value == f"{SECRET}-a"


# ---------------------------------------------------------------- SQLite files


def file_bytes(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file()}


def has_secret(data: bytes) -> bool:
    forms = [m.encode("utf-8") for m in MARKS] + [json.dumps(ACCENTED).encode("ascii")]
    return any(form in data for form in forms)


@pytest.mark.sqlite_only
@pytest.mark.parametrize("checkpointed", [False, True])
@pytest.mark.parametrize("topology", ["directory", "file"])
def test_sqlite_files_hold_no_erased_byte_when_erase_returns(
    tmp_path: Path, oracle: RecordingOracle, topology: str, checkpointed: bool
) -> None:
    """The values sit in the WAL, or (checkpointed) in the main file, some on overflow
    pages; with secure_delete off the UPDATE alone would leave them in freed pages."""
    folder = tmp_path / "store"
    if topology == "directory":
        engine = mempill.open_directory(folder, oracle=oracle)
    else:
        engine = mempill.open_default(folder / "agent.db", oracle=oracle)
    with ExitStack() as stack:
        stack.callback(engine.close)
        reader = mempill.open_directory(folder) if topology == "directory" else None
        refs = feed(engine)
        for i in range(300):  # enough rows that pages split, are freed, move in the WAL
            put(engine, f"{SECRET}-bulk-{i}", "bob", f"bulk{i % 7}")
            put(engine, f"keep-{i}", "alice", f"bulk{i % 7}")
        for i in range(20):
            put(engine, f"{SECRET}-big-{i}" + "x" * 5000, "bob", "big")
        # Its folded form (lower case) is only in the word index (`terms`), which goes too.
        put(engine, "Xylophonequark motto", "bob", "motto")
        for i in range(INDEX_BLOCK):  # the motto's block complete: its words in the index
            put(engine, f"keep-more-{i}", "alice", f"filler{i}")
        if checkpointed:
            conn = engine.store.connection_for(AGENT)  # type: ignore[attr-defined]
            assert conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()[0] == 0
            conn.execute("PRAGMA secure_delete = OFF")  # as some builds have it
        if reader is not None:  # another engine's idle read connections do not block it
            stack.callback(reader.close)
            assert reader.query_memory(AGENT, "alice", "city").value == "Paris"
        before = file_bytes(folder)
        assert any(has_secret(b) for b in before.values()), "the values were on disk"
        assert any(INDEXED in b for b in before.values()), "the word index was on disk"
        engine.erase(AGENT, "bob", reason=REASON)
        after = file_bytes(folder)
        assert {n for n in after if n.endswith(("-wal", ".db"))} >= {
            n for n in before if n.endswith((".db",))
        }
        for name, data in after.items():
            assert not has_secret(data), name
            assert INDEXED not in data, name
        assert after.get(next(n for n in after if n.endswith(".db")) + "-wal", b"") == b""
        assert engine.query_memory(AGENT, "alice", "city").value == "Paris"
        assert engine.query_memory(AGENT, "carol", "guess").value == "kept"
        del refs


@pytest.mark.sqlite_only
def test_sqlite_erase_says_when_a_reader_keeps_the_wal(tmp_path: Path) -> None:
    engine = mempill.open_directory(tmp_path)
    try:
        put(engine, f"{SECRET}-a", "bob", "ssn")
        held = sqlite3.connect(tmp_path / f"{AGENT}.db", isolation_level=None, timeout=0.1)
        held.execute("BEGIN")
        held.execute("SELECT count(*) FROM ledger").fetchone()  # an open read snapshot
        conn = engine.store.connection_for(AGENT)  # type: ignore[attr-defined]
        conn.execute("PRAGMA busy_timeout = 100")
        with pytest.raises(mempill.StorageError, match=r"WAL .* could not be emptied"):
            engine.erase(AGENT, "bob", reason=REASON)
        assert engine.query_memory(AGENT, "bob", "ssn").status is BeliefStatus.NO_BELIEF
        held.execute("COMMIT")
        held.close()
        assert engine.erase(AGENT, "bob", reason=REASON).lines == ()  # the purge completes
        wal = tmp_path / f"{AGENT}.db-wal"
        assert not wal.exists() or wal.read_bytes() == b""
        assert not has_secret((tmp_path / f"{AGENT}.db").read_bytes())
    finally:
        engine.close()


# ---------------------------------------------------------------- across backends, PostgreSQL


def test_digests_after_erase_are_equal_across_backends(
    tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    digests: dict[str, tuple[str, str]] = {}
    with ExitStack() as stack:
        for name in selected_backends():
            dsn = None
            if name == "postgres":
                server = request.getfixturevalue("postgres_server")
                dsn = stack.enter_context(fresh_schema(server))
            backend = Backend(name=name, tmp_path=tmp_path / name, stack=stack, dsn=dsn)
            engine = backend.open(oracle=RecordingOracle())
            feed(engine)
            engine.erase(AGENT, "bob", "ssn", reason=REASON)
            engine.erase(AGENT, "bob", reason=REASON)
            put(engine, "new", "bob", "ssn")
            digests[name] = (engine.ledger_digest(AGENT), engine.content_digest(AGENT))
    assert len(digests) == len(selected_backends())
    assert len(set(digests.values())) == 1, digests


@pytest.mark.postgres_only
def test_postgres_erase_needs_the_erase_grant(postgres_server: str) -> None:
    made: list[str] = []
    try:
        with fresh_schema(postgres_server) as owner:
            schema = conninfo_to_dict(owner)["options"].split("=", 1)[1]
            seeded = mempill.open_postgres(owner, pool_min_size=0)
            put(seeded, f"{SECRET}-a", "bob", "ssn")
            put(seeded, "Lyon", "alice", "city")
            before = seeded.content_digest(AGENT)
            seeded.close()
            dsns = {}
            for erase in (False, True):
                role = f"erase_{uuid.uuid4().hex[:8]}"
                made.append(role)
                with psycopg.connect(owner, autocommit=True) as conn:
                    for q in grant_script(
                        schema, role, AGENT, create=True, password=None, erase=erase
                    ):
                        conn.execute(q)
                dsns[erase] = with_params(owner, user=role)
            plain = mempill.open_postgres(dsns[False], pool_min_size=0)
            try:
                with pytest.raises(PermissionDeniedError):
                    plain.erase(AGENT, "bob", reason=REASON)
                assert plain.query_memory(AGENT, "bob", "ssn").value == f"{SECRET}-a"
                assert plain.content_digest(AGENT) == before  # nothing changed
            finally:
                plain.close()
            granted = mempill.open_postgres(dsns[True], pool_min_size=0)
            try:
                assert granted.erase(AGENT, "bob", reason=REASON).claims == 1
                assert granted.query_memory(AGENT, "bob", "ssn").status is BeliefStatus.NO_BELIEF
            finally:
                granted.close()
            with psycopg.connect(owner, autocommit=True) as conn:
                for table in TABLES:
                    texts = [r[0] for r in conn.execute(f"SELECT t::text FROM {table} t")]
                    assert SECRET not in "\n".join(texts), table
                # revoking the role's last grant takes the erase columns back too
                can = "SELECT has_column_privilege(%s, 'claims', 'value', 'UPDATE')"
                assert conn.execute(can, (made[1],)).fetchone() == (True,)
                for q in revoke_script(schema, made[1], AGENT, last=True):
                    conn.execute(q)
                assert conn.execute(can, (made[1],)).fetchone() == (False,)
                assert conn.execute(can, (made[0],)).fetchone() == (False,)
    finally:
        with psycopg.connect(postgres_server, autocommit=True) as conn:
            for role in made:
                conn.execute(sql.SQL("DROP OWNED BY {}").format(sql.Identifier(role)))
                conn.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(role)))
