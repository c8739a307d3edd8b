"""The script floor: the SQL floor plus the Python no engine can skip.

The SQL floor (`sqlfloor`) times an ingest's sqlite3 calls with every parameter made
before the clock starts. A Python engine must also make those parameters from the
request, per claim: two ids (the claim's and its ledger entry's), the transaction time as
stored text, the value's canonical JSON, the entry's rationale as canonical JSON, the
claim's word-index terms and their JSON, the rows' parameter tuples, the head read's
answer turned into the next stream_seq, and a receipt to hand back. `Script` does exactly
that and nothing more — no parsing or checking of the request, no rule, no line state, no
cache, no retry — with the engine's own helpers (`random_ids`, `canonical_json`,
`claim_terms`, the SQLite dialect's time format), then replays the captured statements
with those parameters on the engine's schema. Its rate bounds any Python engine that
writes these rows: one that also decides something can only be slower.

Where each parameter of the captured calls comes from is found once, by value: a
captured parameter equal to the captured claim's ref, entry id, subject, predicate, value
text, time text, stream_seq, rationale text or terms JSON takes the new claim's; any other
is a constant (agent id, enum texts, confidences…).
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from benchmarks.sqlfloor import Call, Capture, Floor, insert_columns
from mempill.core.canonical import canonical_json
from mempill.core.enums import Disposition
from mempill.core.model import Receipt
from mempill.core.search import claim_terms
from mempill.ids import random_ids
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
    plan: list[tuple[Callable[..., sqlite3.Cursor], str, list[Slot], bool]] = field(init=False)

    def __post_init__(self) -> None:
        self.floor = Floor(self.captured, self.path)  # the engine's schema, a fresh database
        calls = self.captured.calls
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
            self.plan.append((target.execute, call.sql, slots, reads))

    def ingest(self, claim: dict[str, Any]) -> Receipt:
        """One claim: its parameters made, the statements run, a receipt made."""
        subject, predicate = claim["subject"], claim["predicate"]
        fields: Fields = {
            "ref": random_ids(),
            "entry": random_ids(),
            "subject": subject,
            "predicate": predicate,
            "time": DIALECT.time_param(datetime.now(UTC)),
            "rationale": canonical_json(self.rationale),
        }
        value = fields["value"] = canonical_json(claim["value"])
        terms = claim_terms(subject, predicate, value)
        fields["terms"] = json.dumps({fields["ref"]: terms}, ensure_ascii=False)
        for execute, sql, slots, reads in self.plan:
            params = tuple(fields[name] if name else const for name, const in slots)
            cursor = execute(sql, params)
            if reads:
                head = cursor.fetchall()[0][0]
                fields["seq"] = 1 if head is None else int(head) + 1
        return Receipt(
            claim_ref=fields["ref"], disposition=Disposition.COMMITTED_CHEAP, reason="new_line"
        )

    def rate(self, claims: list[dict[str, Any]]) -> float:
        """Claims per second over `claims` (each on a new line)."""
        ingest = self.ingest
        started = time.perf_counter()
        for claim in claims:
            ingest(claim)
        return len(claims) / (time.perf_counter() - started)

    def close(self) -> None:
        self.floor.close()
