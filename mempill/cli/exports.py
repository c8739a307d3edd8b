"""`mempill export`: an agent's ledger or claims as CSV, JSON lines or Parquet.

Every format carries the same columns; structured fields (a claim's value, its
derived_from list, an entry's rationale) are canonical JSON text, so a value keeps its
identity (`1` vs `1.0`) and pandas reads the three formats into equal frames. Times
are the fixed-width UTC text of reference §8.1. Parquet needs pyarrow (`mempill[lab]`).

CSV cells that a spreadsheet would run as a formula are neutralised (`spreadsheet_cell`);
a file is written 0600 through a temporary file and a rename, never through a link
(`files.write_private`); to a terminal, control characters are escaped (`terminal`).
"""

from __future__ import annotations

import argparse
import csv
import io
import re
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import IO, Any

from mempill import extras
from mempill.cli.commands import Output, Session
from mempill.cli.files import write_private
from mempill.cli.terminal import json_text, visible
from mempill.core.canonical import canonical_json
from mempill.core.dates import format_tx
from mempill.core.model import ClaimRow, LedgerEntry
from mempill.errors import ConfigError
from mempill.ports import Reader

FORMATS = ("csv", "jsonl", "parquet")
#: What a spreadsheet may read as the start of a formula (OWASP's list for CSV injection).
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
NUMBER = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?")
SUFFIXES = {".csv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl", ".parquet": "parquet"}

# (column, arrow type) in output order; the arrow types keep Parquet schemas stable.
LEDGER_COLUMNS = (
    ("agent_id", "string"),
    ("stream_seq", "int64"),
    ("entry_id", "string"),
    ("claim_ref", "string"),
    ("event_kind", "string"),
    ("disposition", "string"),
    ("reason", "string"),
    ("rationale", "string"),
    ("recorded_at", "string"),
    ("subject", "string"),
    ("predicate", "string"),
    ("request_ref", "string"),
)
CLAIM_COLUMNS = (
    ("agent_id", "string"),
    ("stream_seq", "int64"),
    ("claim_ref", "string"),
    ("subject", "string"),
    ("predicate", "string"),
    ("value", "string"),
    ("cardinality", "string"),
    ("provenance", "string"),
    ("value_confidence", "float64"),
    ("valid_time_confidence", "float64"),
    ("criticality", "string"),
    ("valid_from", "string"),
    ("valid_from_granularity", "string"),
    ("valid_until", "string"),
    ("valid_until_granularity", "string"),
    ("tx_time", "string"),
    ("derived_from", "string"),
    ("derivation_depth", "int64"),
    ("external_anchor", "string"),
)


def ledger_row(e: LedgerEntry) -> dict[str, Any]:
    return {
        "agent_id": e.agent_id,
        "stream_seq": e.stream_seq,
        "entry_id": e.entry_id,
        "claim_ref": e.claim_ref,
        "event_kind": e.event_kind.value,
        "disposition": e.disposition.value,
        "reason": e.rationale.get("reason"),
        "rationale": canonical_json(e.rationale),
        "recorded_at": format_tx(e.recorded_at),
        "subject": e.subject,
        "predicate": e.predicate,
        "request_ref": e.request_ref,
    }


def claim_row(c: ClaimRow) -> dict[str, Any]:
    row = c.to_dict()
    row["derived_from"] = canonical_json(list(c.derived_from))
    for name in ("valid_from", "valid_until", "tx_time"):
        moment = getattr(c, name)
        row[name] = None if moment is None else format_tx(moment)
    return {name: row[name] for name, _ in CLAIM_COLUMNS}


def _claims(reader: Reader) -> list[ClaimRow]:
    found = [c for s, p in reader.lines() for c in reader.line(s, p).claims]
    return sorted(found, key=lambda c: c.stream_seq)


def rows(session: Session, what: str) -> Iterator[dict[str, Any]]:
    """The rows of every selected agent, each agent read from one snapshot."""
    store = session.engine.store
    agents = (session.agent_id,) if session.agent_id else store.agents()
    for agent in agents:
        with store.read(agent) as reader:
            if what == "ledger":
                batch = [ledger_row(e) for e in reader.ledger()]
            else:
                batch = [claim_row(c) for c in _claims(reader)]
        yield from batch


def choose_format(given: str | None, out: str | None) -> str:
    if given is not None:
        return given
    if out is not None and out != "-":
        suffix = Path(out).suffix.lower()
        if suffix in SUFFIXES:
            return SUFFIXES[suffix]
    return "jsonl"


def spreadsheet_cell(value: Any) -> Any:
    """A CSV cell a spreadsheet will not run: text starting with = + - @ TAB or CR (and
    not a plain number) gets a leading `'`, the usual neutralisation of formula injection."""
    if isinstance(value, str) and value.startswith(FORMULA_START) and not NUMBER.fullmatch(value):
        return "'" + value
    return value


def write_text(
    fmt: str,
    columns: Sequence[str],
    data: list[dict[str, Any]],
    out: IO[str],
    terminal: bool = False,
) -> None:
    """CSV (cells neutralised; control characters escaped too when `terminal`) or JSON
    lines (valid JSON without raw control characters, `terminal.json_text`)."""
    if fmt == "csv":
        writer = csv.DictWriter(out, fieldnames=list(columns), lineterminator="\r\n")
        writer.writeheader()
        for row in data:
            cells = {k: spreadsheet_cell(v) for k, v in row.items()}
            if terminal:
                cells = {k: visible(v) if isinstance(v, str) else v for k, v in cells.items()}
            writer.writerow(cells)
    else:
        for row in data:
            out.write(json_text(row) + "\n")


def write_parquet(
    columns: Sequence[tuple[str, str]], data: list[dict[str, Any]], out: IO[bytes]
) -> None:
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError as e:
        raise ConfigError(extras.missing("Parquet export", "lab")) from e
    schema = pa.schema([(name, getattr(pa, kind)()) for name, kind in columns])
    pq.write_table(pa.Table.from_pylist(data, schema=schema), out)


def export(session: Session, args: argparse.Namespace) -> Output:
    fmt = choose_format(args.format, args.out)
    spec = LEDGER_COLUMNS if args.what == "ledger" else CLAIM_COLUMNS
    data = list(rows(session, args.what))
    names = [name for name, _ in spec]
    to_stdout = args.out is None or args.out == "-"
    if fmt == "parquet" and to_stdout:
        raise ConfigError("Parquet is binary: give --out FILE.parquet")
    if to_stdout:
        write_text(fmt, names, data, sys.stdout, terminal=sys.stdout.isatty())
    elif fmt == "parquet":
        write_private(args.out, lambda out: write_parquet(spec, data, out))
    else:
        buffer = io.StringIO()
        write_text(fmt, names, data, buffer)
        write_private(args.out, lambda out: out.write(buffer.getvalue().encode("utf-8")))
    summary = {"what": args.what, "format": fmt, "rows": len(data), "out": args.out or "-"}
    where = visible(args.out or "-")
    text = "" if to_stdout else f"exported {len(data)} {args.what} rows to {where} ({fmt})"
    return Output(None if to_stdout else summary, text)
