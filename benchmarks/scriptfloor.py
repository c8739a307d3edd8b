"""The script floor: the SQL floor plus the Python no engine can skip.

The SQL floor (`sqlfloor`) times an ingest's sqlite3 calls with every parameter made
before the clock starts. A Python engine must also make those parameters from the
request, per claim: two ids (the claim's and its ledger entry's), the transaction time as
stored text, the value's canonical JSON, the entry's rationale as canonical JSON, the
claim's word-index terms and their JSON, the rows' parameter tuples, the head read's
answer turned into the next stream_seq, and a receipt to hand back. `Script` does exactly
that and nothing more — no parsing or checking of the request, no rule, no line state, no
cache, no retry — with the engine's own helpers (`time_ordered_ids`, `canonical_json`,
`claim_terms`, the SQLite dialect's time format), then replays the captured statements
with those parameters on the engine's schema. Its rate bounds any Python engine that
writes these rows: one that also decides something can only be slower.

Where each parameter of the captured calls comes from is found once, by value: a
captured parameter equal to the captured claim's ref, entry id, subject, predicate, value
text, time text, stream_seq, rationale text or terms JSON takes the new claim's; any other
is a constant (agent id, enum texts, confidences…).

When the engine writes the word index a block at a time (SQLite), the capture holds a
block of ingests: the script replays one that writes no terms for every claim, keeps each
claim's terms in memory, and writes them with the captured INSERT in the transaction that
completes the block — without the engine's read of the block's claims, which a script that
holds them needs not make.
"""

from __future__ import annotations

import json
import sqlite3
import time
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from benchmarks.sqlfloor import Call, Capture, Floor, insert_columns
from mempill.core.canonical import canonical_json
from mempill.core.enums import Disposition
from mempill.core.model import Receipt
from mempill.core.search import claim_terms, indexed_below
from mempill.ids import time_ordered_ids
from mempill.stores.sqlite.connections import DIALECT

Fields = dict[str, Any]
#: A parameter slot: the name of a per-claim field, or (None, a constant).
Slot = tuple[str | None, Any]


def _captured_fields(calls: list[Call]) -> Fields:
    """The per-claim values of the captured ingest, read off its two INSERT rows."""
    rows: dict[str, dict[str, Any]] = {}
    for call in calls:
        columns = insert_columns(call.sql)
        row = call.rows[0]
        if columns and not isinstance(row, dict) and len(row) == len(columns):
            table = call.sql.split()[2].lower()
            rows[table] = dict(zip(columns, row, strict=True))
    claim, entry = rows["claims"], rows["ledger"]
    return {
        "ref": claim["claim_ref"],
        "entry": entry["entry_id"],
        "subject": claim["subject"],
        "predicate": claim["predicate"],
        "value": claim["value"],
        "time": claim["tx_time"],
        "seq": claim["stream_seq"],
        "rationale": entry["rationale"],
    }


def _ingests(calls: list[Call]) -> list[list[Call]]:
    """The captured calls cut into ingests, each from its BEGIN."""
    found: list[list[Call]] = []
    for call in calls:
        if call.sql.lstrip().upper().startswith("BEGIN") or not found:
            found.append([])
        found[-1].append(call)
    return found


def _writes_terms(call: Call) -> bool:
    return insert_columns(call.sql) == ["agent_id", "term", "claim_ref"]


def _slot(value: Any, known: Fields) -> Slot:
    is_json = isinstance(value, str) and value.startswith("{")
    if is_json and known["ref"] in value and value not in (known["value"], known["rationale"]):
        return ("terms", None)
    for name, field_value in known.items():
        if value == field_value and type(value) is type(field_value):
            return (name, None)
    return (None, value)


@dataclass
class Script:
    """The captured ingest, re-made per claim by the least Python that can make it."""

    captured: Capture
    path: Path | None = None  # a file (WAL, synchronous=FULL); None: in memory
    floor: Floor = field(init=False)
    plan: list[tuple[sqlite3.Cursor | sqlite3.Connection, str, list[Slot], bool]] = field(
        init=False
    )

    def __post_init__(self) -> None:
        self.floor = Floor(self.captured, self.path)  # the engine's schema, a fresh database
        ingests = _ingests(self.captured.calls)
        self.block = self.captured.ingests if len(ingests) > 1 else 0
        calls = ingests[0]
        self.pending: dict[str, tuple[str, ...]] = {}
        if self.block:  # one ingest that writes no terms; the INSERT of a block's terms
            calls = next(i for i in ingests if not any(_writes_terms(c) for c in i))
            merge = next(c for i in ingests for c in i if _writes_terms(c))
            row = merge.rows[0]
            assert isinstance(row, tuple), merge.sql
            self.merge = (merge.sql, row[0])  # the INSERT, the agent id
        known = _captured_fields(calls)
        self.rationale = json.loads(known["rationale"])
        conn = self.floor.conn
        cursor = conn.cursor()
        self.plan = []
        for call in calls:
            if call.many or len(call.rows) != 1 or isinstance(call.rows[0], dict):
                raise ValueError(f"the script floor replays one-row calls only: {call.sql}")
            slots = [_slot(v, known) for v in call.rows[0]]
            target = cursor if call.via else conn
            reads = call.sql.lstrip().upper().startswith("SELECT")
            self.plan.append((target, call.sql, slots, reads))
        if not self.plan[-1][1].lstrip().upper().startswith("COMMIT"):
            raise ValueError(f"the captured ingest does not end with COMMIT: {self.plan[-1][1]}")

    def ingest(self, claim: dict[str, Any]) -> Receipt:
        """One claim: its parameters made, the statements run, a receipt made."""
        return self.run([self.fields(claim)])[0]

    def fields(self, claim: dict[str, Any]) -> Fields:
        """The per-claim parameters of one claim (all but its stream_seq), and its terms."""
        subject, predicate = claim["subject"], claim["predicate"]
        fields: Fields = {
            "ref": time_ordered_ids(),
            "entry": time_ordered_ids(),
            "subject": subject,
            "predicate": predicate,
            "time": DIALECT.time_param(datetime.now(UTC)),
            "rationale": canonical_json(self.rationale),
        }
        value = fields["value"] = canonical_json(claim["value"])
        terms = fields["claim_terms"] = claim_terms(subject, predicate, value)
        if not self.block:
            fields["terms"] = json.dumps({fields["ref"]: terms}, ensure_ascii=False)
        return fields

    def run(
        self, group: list[Fields], lock: AbstractContextManager[Any] | None = None
    ) -> list[Receipt]:
        """The claims of `group` in one transaction (one claim: exactly the captured
        ingest): BEGIN and the head read once, each claim's rows, then COMMIT. A group
        of several is what a group commit does — one fsync for every claim of it. `lock`
        (a store-wide lock) is held from BEGIN up to COMMIT, as `open_directory` does."""
        *statements, (commit_target, commit_sql, _, _) = self.plan
        with lock or nullcontext():
            for number, (target, sql, slots, reads) in enumerate(statements):
                if number == 0 or reads or len(group) == 1:
                    fields = group[0]
                    params = tuple(fields[name] if name else const for name, const in slots)
                    cursor = target.execute(sql, params)
                    if reads:
                        found = cursor.fetchall()[0][0]
                        head = 0 if found is None else int(found)
                        for offset, claim in enumerate(group, 1):
                            claim["seq"] = head + offset
                else:  # one row per claim of the group, in one driver call (as the engine)
                    rows = [tuple(f[n] if n else const for n, const in slots) for f in group]
                    target.executemany(sql, rows)
            if self.block:  # before COMMIT: the blocks completed?
                self._merge(group)
        commit_target.execute(commit_sql)
        return [
            Receipt(
                claim_ref=fields["ref"], disposition=Disposition.COMMITTED_CHEAP, reason="new_line"
            )
            for fields in group
        ]

    def _merge(self, group: list[Fields]) -> None:
        """Write the terms of every block the group's claims complete (SQLite's word index
        a block at a time), in one INSERT per completed block; keep the rest pending."""
        for fields in group:
            seq = fields["seq"]
            if indexed_below(seq, self.block) > indexed_below(seq - 1, self.block):
                payload = json.dumps(self.pending, ensure_ascii=False)
                self.floor.conn.execute(self.merge[0], (self.merge[1], payload))
                self.pending = {}
            self.pending[fields["ref"]] = fields["claim_terms"]

    def rate(self, claims: list[dict[str, Any]]) -> float:
        """Claims per second over `claims` (each on a new line)."""
        ingest = self.ingest
        started = time.perf_counter()
        for claim in claims:
            ingest(claim)
        return len(claims) / (time.perf_counter() - started)

    def close(self) -> None:
        self.floor.close()
