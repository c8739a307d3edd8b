"""SQL shared by both backends, and the session that implements the Reader/Writer ports.

Queries are written once with `?` placeholders; a `Dialect` rewrites placeholders and
converts timestamps (fixed-width text on SQLite, `timestamptz` on PostgreSQL). Text is
never ordered in SQL: collations differ between backends, so ordering is done in Python.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any, TypeVar

from mempill.core.canonical import canonical_json
from mempill.core.dates import END_OF_TIME
from mempill.core.enums import (
    AssertionKind,
    Cardinality,
    Criticality,
    Disposition,
    EdgeKind,
    EventKind,
    Granularity,
    PendingStatus,
    Provenance,
)
from mempill.core.limits import MAX_SEQ
from mempill.core.model import (
    AssertionRow,
    ClaimRow,
    EdgeRow,
    LedgerEntry,
    LineRows,
    PendingAdjudication,
    WriteStat,
)
from mempill.core.travel import Cut
from mempill.stores.driver import Cursor, Dialect
from mempill.stores.queries import (
    ASSERTION_COLUMNS,
    CLAIM_COLUMNS,
    ENTRY_COLUMNS,
    PENDING_COLUMNS,
    SQL,
    STATS_COLUMNS,
)
from mempill.stores.schema import embedded_migrations, split_statements

__all__ = [
    "ASSERTION_COLUMNS",
    "CLAIM_COLUMNS",
    "ENTRY_COLUMNS",
    "PENDING_COLUMNS",
    "SQL",
    "STATS_COLUMNS",
    "SqlSession",
    "embedded_migrations",
    "split_statements",
]

E = TypeVar("E", bound=StrEnum)


def _opt(convert: Callable[[Any], Any], value: Any) -> Any:
    return None if value is None else convert(value)


def _lookup(kind: type[E]) -> Callable[[str], E]:
    """A fast value -> member decoder for a string enum (rows decode many of them)."""
    members: dict[str, E] = {m.value: m for m in kind}
    return members.__getitem__


CARDINALITY = _lookup(Cardinality)
PROVENANCE = _lookup(Provenance)
CRITICALITY = _lookup(Criticality)
GRANULARITY = _lookup(Granularity)
EVENT_KIND = _lookup(EventKind)
DISPOSITION = _lookup(Disposition)
ASSERTION_KIND = _lookup(AssertionKind)
EDGE_KIND = _lookup(EdgeKind)


def _refs(text: str) -> tuple[str, ...]:
    return () if text == "[]" else tuple(json.loads(text))


def _ref_list(refs: tuple[str, ...]) -> str:
    return json.dumps(list(refs)) if refs else "[]"


#: A line's version, then its rows after a stream_seq (the parameters of each: agent,
#: subject, predicate, and the stream_seq for the rows).
LINE_QUERIES = ("line_version", "line_claims", "line_entries", "line_assertions")
EMPTY_LINE = LineRows()

#: Appended rows are inserted table by table in this order (each refers only to claims).
INSERT_ORDER = (
    "insert_claim", "insert_terms", "insert_edge", "insert_assertion", "insert_entry",
    "insert_pending",
)  # fmt: skip


@dataclass
class SqlSession:
    """Reader and Writer of one agent over one open connection (and transaction).

    Appended rows are held back and inserted together (one `executemany` per table) just
    before the transaction's next statement of any other kind or its COMMIT (`flush`), so a
    call that appends many rows makes few driver calls; reads always see every row.
    """

    cursor: Cursor
    dialect: Dialect
    agent_id: str
    first_seq: int | None = None
    last_seq: int | None = None
    held: dict[str, list[tuple[Any, ...]]] = field(default_factory=dict)

    # ---- plumbing

    def _rows(self, key: str, *params: Any) -> list[Any]:
        if self.held:
            self.flush()
        self.cursor.execute(self.dialect.sql(key), params)
        return self.cursor.fetchall()

    def _exec(self, key: str, *params: Any) -> None:
        if self.held:
            self.flush()
        self.cursor.execute(self.dialect.sql(key), params)

    def _count(self, key: str, *params: Any) -> int:  # a statement; the rows it changed
        self._exec(key, *params)
        return int(self.cursor.rowcount)  # PostgreSQL's HeldCursor sends what it held first

    def _rows_of(self, *queries: tuple[str, tuple[Any, ...]]) -> list[list[Any]]:
        """The rows of several queries: one message on a cursor that can send them together
        (PostgreSQL's `HeldCursor.results`), else one after the other."""
        if self.held:
            self.flush()
        together = getattr(self.cursor, "results", None)
        if together is None:
            return [self._rows(key, *params) for key, params in queries]
        return list(together([(self.dialect.sql(k), p) for k, p in queries]))

    def _append(self, key: str, *params: Any) -> None:
        rows = self.held.get(key)
        if rows is None:
            self.held[key] = [params]
        else:
            rows.append(params)

    def flush(self) -> None:
        """Insert the appended rows held back (the store calls this before COMMIT)."""
        held, self.held = self.held, {}
        for key in INSERT_ORDER:
            rows = held.get(key)
            if rows is None:
                continue
            if key == "insert_terms":  # one statement: {claim_ref: [term, ...]} as JSON
                terms: dict[str, list[str]] = {}
                for ref, words in rows:
                    terms.setdefault(ref, []).extend(words)
                payload = json.dumps(terms, ensure_ascii=False)
                self.cursor.execute(self.dialect.sql(key), (self.agent_id, payload))
            elif len(rows) == 1:
                self.cursor.execute(self.dialect.sql(key), rows[0])
            elif one := self.dialect.many(key, rows):
                self.cursor.execute(*one)  # the rows as one parameter (PostgreSQL)
            else:
                self.cursor.executemany(self.dialect.sql(key), rows)

    def _t(self, moment: datetime | None) -> Any:
        return None if moment is None else self.dialect.time_param(moment)

    def _as_of(self, as_of: datetime | None) -> Any:
        return self.dialect.time_param(as_of or END_OF_TIME)

    # ---- row decoding

    def _claim(self, r: Sequence[Any]) -> ClaimRow:
        tv = self.dialect.time_value
        return ClaimRow(
            agent_id=r[0], claim_ref=r[1], subject=r[2], predicate=r[3], value=r[4],
            cardinality=CARDINALITY(r[5]), provenance=PROVENANCE(r[6]),
            value_confidence=float(r[7]), valid_time_confidence=float(r[8]),
            criticality=CRITICALITY(r[9]), valid_from=_opt(tv, r[10]),
            valid_from_granularity=_opt(GRANULARITY, r[11]), valid_until=_opt(tv, r[12]),
            valid_until_granularity=_opt(GRANULARITY, r[13]), tx_time=tv(r[14]),
            stream_seq=int(r[15]), derived_from=_refs(r[16]),
            derivation_depth=_opt(int, r[17]), external_anchor=r[18],
        )  # fmt: skip

    def _entry(self, r: Sequence[Any]) -> LedgerEntry:
        return LedgerEntry(
            agent_id=r[0], stream_seq=int(r[1]), entry_id=r[2], claim_ref=r[3],
            event_kind=EVENT_KIND(r[4]), disposition=DISPOSITION(r[5]),
            rationale=json.loads(r[6]), recorded_at=self.dialect.time_value(r[7]),
            subject=r[8], predicate=r[9], request_ref=r[10],
        )  # fmt: skip

    def _assertion(self, r: Sequence[Any]) -> AssertionRow:
        tv = self.dialect.time_value
        return AssertionRow(
            agent_id=r[0], assertion_ref=r[1], claim_ref=r[2], subject=r[3], predicate=r[4],
            kind=ASSERTION_KIND(r[5]), bound_at=_opt(tv, r[6]),
            bound_granularity=_opt(GRANULARITY, r[7]), provenance=PROVENANCE(r[8]),
            confidence=float(r[9]), tx_time=tv(r[10]), stream_seq=int(r[11]), handle_id=r[12],
        )  # fmt: skip

    def _pending(self, r: Sequence[Any]) -> PendingAdjudication:
        tv = self.dialect.time_value
        return PendingAdjudication(
            agent_id=r[0], handle_id=r[1], subject=r[2], predicate=r[3], challenger_ref=r[4],
            incumbent_refs=tuple(json.loads(r[5])), request=json.loads(r[6]),
            queued_at=tv(r[7]), expires_at=_opt(tv, r[8]), status=PendingStatus(r[9]),
            notified=bool(r[10]),
        )  # fmt: skip

    # ---- Reader

    def line_version(self, subject: str, predicate: str) -> int:
        """The stream_seq of the line's latest ledger entry (0 for an empty line)."""
        rows = self._rows("line_version", self.agent_id, subject, predicate)
        return int(rows[0][0]) if rows and rows[0][0] is not None else 0

    def line_since(self, subject: str, predicate: str, after_seq: int) -> LineRows:
        """The line's rows written after `after_seq`, in stream order."""
        args = (self.agent_id, subject, predicate, after_seq)
        return self.line_rows(*self._rows_of(*((key, args) for key in LINE_QUERIES[1:])))

    def line_rows(
        self, claims: Sequence[Any], entries: Sequence[Any], assertions: Sequence[Any]
    ) -> LineRows:
        """A line's rows from the rows of `line_claims`, `line_entries`, `line_assertions`."""
        return LineRows(
            claims=tuple(self._claim(r) for r in claims),
            entries=tuple(self._entry(r) for r in entries),
            assertions=tuple(self._assertion(r) for r in assertions),
        )

    def line_refresh(self, subject: str, predicate: str, after_seq: int) -> tuple[int, LineRows]:
        """The line's version and its rows after `after_seq` (none when it has no newer)."""
        version = self.line_version(subject, predicate)
        if version <= after_seq:
            return version, EMPTY_LINE
        return version, self.line_since(subject, predicate, after_seq)

    def line(self, subject: str, predicate: str, as_of: datetime | None = None) -> LineRows:
        rows = self.line_since(subject, predicate, 0)
        if as_of is None:
            return rows
        return LineRows(
            claims=tuple(c for c in rows.claims if c.tx_time <= as_of),
            entries=tuple(e for e in rows.entries if e.recorded_at <= as_of),
            assertions=tuple(a for a in rows.assertions if a.tx_time <= as_of),
        )

    def claim(self, claim_ref: str) -> ClaimRow | None:
        rows = self._rows("claim", self.agent_id, claim_ref)
        return self._claim(rows[0]) if rows else None

    def claim_entries(self, claim_ref: str) -> tuple[LedgerEntry, ...]:
        return tuple(self._entry(r) for r in self._rows("claim_entries", self.agent_id, claim_ref))

    def claim_assertions(self, claim_ref: str) -> tuple[AssertionRow, ...]:
        rows = self._rows("claim_assertions", self.agent_id, claim_ref)
        return tuple(self._assertion(r) for r in rows)

    def children(self, claim_ref: str) -> tuple[str, ...]:
        """The claims derived from `claim_ref`; an erased child is seen through: its own
        children stand in its place (it is found by no ref, docs/erasure.md)."""
        found: list[str] = []
        for ref, erased in self._rows("children", self.agent_id, claim_ref, "DerivedFrom"):
            found.extend(self.children(ref) if erased else (ref,))
        return tuple(dict.fromkeys(found))

    def predicates(self, subject: str, cut: Cut | None = None) -> tuple[str, ...]:
        at, seq = (None, None) if cut is None else (cut.at, cut.seq)
        rows = self._rows(
            "predicates", self.agent_id, subject, self._as_of(at), MAX_SEQ if seq is None else seq
        )
        return tuple(r[0] for r in rows)

    def seq_at(self, moment: datetime) -> int:
        """The stream_seq of the last entry recorded at or before `moment` (0: none)."""
        rows = self._rows("seq_at", self.agent_id, self.dialect.time_param(moment))
        return int(rows[0][0]) if rows else 0

    def window(self, after_seq: int, until_seq: int) -> tuple[LedgerEntry, ...]:
        """The entries with `after_seq < stream_seq <= until_seq`, in stream order."""
        rows = self._rows("window", self.agent_id, after_seq, until_seq)
        return tuple(self._entry(r) for r in rows)

    def lines(self) -> tuple[tuple[str, str], ...]:
        return tuple((r[0], r[1]) for r in self._rows("lines", self.agent_id))

    def term_lines(self, low: str, high: str) -> tuple[tuple[str, str, str], ...]:
        rows = self._rows("term_lines", self.agent_id, low, high)
        return tuple((r[0], r[1], r[2]) for r in rows)

    def recorded_claims(self, low: int, high: int) -> tuple[tuple[str, str, str, str], ...]:
        rows = self._rows("recorded_claims", self.agent_id, low, high)
        return tuple((r[0], r[1], r[2], r[3]) for r in rows)

    def audit(self, claim_ref: str | None, after_seq: int, limit: int) -> tuple[LedgerEntry, ...]:
        if claim_ref is None:
            rows = self._rows("audit", self.agent_id, after_seq, limit)
        else:
            rows = self._rows("audit_claim", self.agent_id, claim_ref, after_seq, limit)
        return tuple(self._entry(r) for r in rows)

    def ledger(self) -> Iterator[LedgerEntry]:
        if self.held:
            self.flush()
        self.cursor.execute(self.dialect.sql("ledger"), (self.agent_id,))
        while True:
            row = self.cursor.fetchone()
            if row is None:
                return
            yield self._entry(row)

    def all_claims(self) -> tuple[ClaimRow, ...]:
        """Every claim row of the agent, in stream order."""
        return tuple(self._claim(r) for r in self._rows("all_claims", self.agent_id))

    def all_assertions(self) -> tuple[AssertionRow, ...]:
        """Every validity assertion of the agent, in stream order."""
        return tuple(self._assertion(r) for r in self._rows("all_assertions", self.agent_id))

    def all_edges(self) -> tuple[EdgeRow, ...]:
        """Every edge of the agent, ordered by (tx time, kind, from, to) in Python (collations
        differ between backends, so text is never ordered in SQL)."""
        tv = self.dialect.time_value
        edges = (
            EdgeRow(
                agent_id=r[0], kind=EDGE_KIND(r[1]), from_ref=r[2], to_ref=r[3], tx_time=tv(r[4])
            )
            for r in self._rows("all_edges", self.agent_id)
        )
        return tuple(sorted(edges, key=lambda e: (e.tx_time, e.kind.value, e.from_ref, e.to_ref)))

    def request_entries(self, request_ref: str) -> tuple[LedgerEntry, ...]:
        rows = self._rows("request_entries", self.agent_id, request_ref)
        return tuple(self._entry(r) for r in rows)

    def pending(self, status: PendingStatus | None = None) -> tuple[PendingAdjudication, ...]:
        if status is None:
            rows = self._rows("pending_all", self.agent_id)
        else:
            rows = self._rows("pending_status", self.agent_id, status.value)
        found = (self._pending(r) for r in rows)
        return tuple(sorted(found, key=lambda p: (p.queued_at, p.handle_id)))

    def pending_for_line(self, subject: str, predicate: str) -> tuple[PendingAdjudication, ...]:
        rows = self._rows("pending_line", self.agent_id, subject, predicate)
        return tuple(
            sorted((self._pending(r) for r in rows), key=lambda p: (p.queued_at, p.handle_id))
        )

    def pending_by_handle(self, handle_id: str) -> PendingAdjudication | None:
        rows = self._rows("pending_handle", self.agent_id, handle_id)
        return self._pending(rows[0]) if rows else None

    def write_stats(self) -> tuple[WriteStat, ...]:
        tv = self.dialect.time_value
        return tuple(
            WriteStat(
                agent_id=r[0],
                first_seq=r[1],
                last_seq=r[2],
                lock_wait_us=int(r[3]),
                txn_us=int(r[4]),
                backend=r[5],
                pid=int(r[6]),
                recorded_at=tv(r[7]),
            )
            for r in self._rows("stats", self.agent_id)
        )

    # ---- Writer

    def head(self) -> tuple[int, datetime | None]:
        rows = self._rows("head", self.agent_id)
        if not rows:
            return 0, None
        return int(rows[0][0]), self.dialect.time_value(rows[0][1])

    def line_versions(self, lines: Sequence[tuple[str, str]]) -> dict[tuple[str, str], int]:
        """`line_version` of each of `lines` in one statement (0 for an empty line)."""
        subjects = json.dumps(sorted({s for s, _ in lines}), ensure_ascii=False)
        found = {
            (r[0], r[1]): int(r[2]) for r in self._rows("line_versions", self.agent_id, subjects)
        }
        return {line: found.get(line, 0) for line in lines}

    def head_and_line(self, subject: str, predicate: str) -> tuple[int, datetime | None, int]:
        """`head()` and `line_version(subject, predicate)` in one statement."""
        agent = self.agent_id
        ((seq, recorded, line),) = self._rows("head_line", agent, agent, agent, subject, predicate)
        if seq is None:
            return 0, None, 0
        return int(seq), self.dialect.time_value(recorded), 0 if line is None else int(line)

    def erasable(self, subject: str) -> tuple[str, ...]:
        """The predicates of the subject's lines that hold anything but erasure records."""
        rows = self._rows("erasable", self.agent_id, subject, self.agent_id, subject)
        return tuple(r[0] for r in rows)

    def erase_line(self, subject: str, predicate: str, marker_seq: int) -> tuple[int, int]:
        """Scrub the line's claims, entries, assertions and outbox rows in place (the
        entries' rationale becomes `{"erased": marker_seq}`); (claims, entries) scrubbed."""
        line = (self.agent_id, subject, predicate)
        self._exec("erase_terms", self.agent_id, *line)
        claims = self._count("erase_claims", self.agent_id, *line)
        marker = canonical_json({"erased": marker_seq})
        entries = self._count("erase_entries", marker, self.agent_id, *line)
        self._exec("erase_assertions", self.agent_id, *line)
        self._exec("erase_pending", self.agent_id, *line)
        return claims, entries

    def append_claim(self, row: ClaimRow) -> None:
        self._append(
            "insert_claim",
            row.agent_id, row.claim_ref, row.subject, row.predicate, row.value,
            row.cardinality.value, row.provenance.value, row.value_confidence,
            row.valid_time_confidence, row.criticality.value, self._t(row.valid_from),
            _opt(str, row.valid_from_granularity), self._t(row.valid_until),
            _opt(str, row.valid_until_granularity), self._t(row.tx_time), row.stream_seq,
            _ref_list(row.derived_from), row.derivation_depth, row.external_anchor,
        )  # fmt: skip

    def append_terms(self, claim_ref: str, terms: Sequence[str]) -> None:
        """The word index rows of one claim (docs/search.md), held back like the claim."""
        if terms:
            self._append("insert_terms", claim_ref, terms)

    def delete_terms(self) -> None:
        """Drop the agent's whole word index (`reindex` writes it again)."""
        self._exec("delete_terms", self.agent_id)

    def append_entry(self, entry: LedgerEntry) -> None:
        self._append(
            "insert_entry",
            entry.agent_id, entry.stream_seq, entry.entry_id, entry.claim_ref,
            entry.event_kind.value, entry.disposition.value, canonical_json(entry.rationale),
            self._t(entry.recorded_at), entry.subject, entry.predicate, entry.request_ref,
        )  # fmt: skip
        if self.first_seq is None:
            self.first_seq = entry.stream_seq
        self.last_seq = entry.stream_seq

    def append_assertion(self, row: AssertionRow) -> None:
        self._append(
            "insert_assertion",
            row.agent_id, row.assertion_ref, row.claim_ref, row.subject, row.predicate,
            row.kind.value, self._t(row.bound_at), _opt(str, row.bound_granularity),
            row.provenance.value, row.confidence, self._t(row.tx_time), row.stream_seq,
            row.handle_id,
        )  # fmt: skip

    def append_edge(self, row: EdgeRow) -> None:
        self._append(
            "insert_edge",
            row.agent_id,
            row.kind.value,
            row.from_ref,
            row.to_ref,
            self._t(row.tx_time),
        )

    def append_pending(self, row: PendingAdjudication) -> None:
        self._append(
            "insert_pending",
            row.agent_id, row.handle_id, row.subject, row.predicate, row.challenger_ref,
            json.dumps(list(row.incumbent_refs)), canonical_json(row.request),
            self._t(row.queued_at), self._t(row.expires_at), row.status.value, int(row.notified),
        )  # fmt: skip

    def set_pending_status(self, handle_id: str, status: PendingStatus) -> None:
        self._exec("set_pending_status", status.value, self.agent_id, handle_id)

    def set_pending_notified(self, handle_id: str) -> None:
        self._exec("set_pending_notified", self.agent_id, handle_id)

    def record_stats(self, lock_wait_us: int, txn_us: int, recorded_at: datetime) -> None:
        """One write_stats row per transaction that appended ledger entries."""
        if self.first_seq is None:
            return
        self._exec(
            "insert_stats",
            self.agent_id, self.first_seq, self.last_seq, lock_wait_us, txn_us,
            self.dialect.name, os.getpid(), self._t(recorded_at),
        )  # fmt: skip
