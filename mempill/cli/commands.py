"""The memory commands of the command line: remember, recall, history, end, audit, subject
(`travel` has snapshot, timeline, changes and erase).

Each takes the open session and the parsed arguments and returns an `Output`: the
JSON-ready data printed by `--json`, the text printed otherwise, and the exit status.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from typing import Any

from mempill.cli import checks, tables
from mempill.cli.explain import (
    belief_reason,
    receipt_reason,
    stored_claim,
    stored_validity,
    validity_reason,
)
from mempill.cli.target import Target
from mempill.core import parse
from mempill.core.enums import Disposition
from mempill.core.model import EndFactReceipt, Projection, ValidityReceipt
from mempill.engine import Engine
from mempill.errors import ConfigError, NotFoundError

#: The keys a read or `end` looks up (writes are judged by the engine: rule V).
READ_KEYS = {
    "recall": ("subject", "predicate"),
    "subject": ("subject",),
    "history": ("subject", "predicate"),
    "end": ("subject", "predicate"),
    "timeline": ("subject", "predicate"),
    "erase": ("subject",),
}
#: Free-text flags: checked to be valid text whatever the command.
TEXT_FLAGS = (
    ("as_of", "--as-of"),
    ("valid_at", "--valid-at"),
    ("valid_from", "--from"),
    ("valid_until", "--until"),
    ("at", "--at"),
    ("claim", "--claim"),
    ("ref", "--ref"),
    ("provenance", "--provenance"),
    ("cardinality", "--cardinality"),
    ("criticality", "--criticality"),
    ("since", "--since"),
    ("until", "--until"),
    ("after", "--after"),
)


@dataclass(frozen=True, slots=True)
class Output:
    """What a command produced; a non-zero `exit_code` comes with a one-line `error`."""

    data: Any
    text: str
    exit_code: int = 0
    error: str | None = None


@dataclass(frozen=True, slots=True)
class Session:
    """An open engine and the agent the command acts for (None if none was given)."""

    engine: Engine
    target: Target
    agent_id: str | None

    @property
    def agent(self) -> str:
        if self.agent_id is None:
            raise ConfigError("--agent is required (or set MEMPILL_AGENT_ID)")
        return self.agent_id


def check_arguments(args: argparse.Namespace) -> None:
    """Refuse, before the store is opened, what no store can answer (see `checks`)."""
    for name in READ_KEYS.get(args.command, ()):
        checks.key(getattr(args, name), name)
    for name, flag in TEXT_FLAGS:
        value = getattr(args, name, None)
        if isinstance(value, str):
            checks.text(value, flag)
    if getattr(args, "ref", None) is not None:
        args.ref = parse.claim_ref(args.ref, "--ref")
    if getattr(args, "claim", None) is not None:
        args.claim = parse.claim_ref(args.claim, "--claim")


def parse_value(text: str, as_string: bool, what: str = "value") -> Any:
    """A command-line value: JSON when it parses as JSON, else the text itself.

    NaN and Infinity are not JSON (they stay text); see `checks.json_value`.
    """
    if as_string:
        return text
    is_json, value = checks.json_value(text, what)
    return value if is_json else text


def remember(session: Session, args: argparse.Namespace) -> Output:
    options: dict[str, Any] = {
        "valid_from": args.valid_from,
        "valid_until": args.valid_until,
        "confidence": args.confidence,
        "provenance": args.provenance,
        "cardinality": args.cardinality,
        "criticality": args.criticality,
    }
    receipt = session.engine.remember(
        session.agent,
        args.subject,
        args.predicate,
        parse_value(args.value, args.string),
        **{k: v for k, v in options.items() if v is not None},
    )
    reason = receipt_reason(receipt, session.engine.config, tables.END)
    data = receipt.to_dict() | {"committed": stored_claim(receipt), "status_reason": reason}
    text = tables.receipt_text(receipt)
    if receipt.disposition is Disposition.REJECTED:
        return Output(data, text, 1, data["status_reason"])
    return Output(data, text)


def _projection_data(p: Projection) -> dict[str, Any]:
    return p.to_dict() | {"status_reason": belief_reason(p, tables.END)}


def recall(session: Session, args: argparse.Namespace) -> Output:
    p = session.engine.recall(
        session.agent, args.subject, args.predicate, as_of=args.as_of, valid_at=args.valid_at
    )
    return Output(_projection_data(p), tables.projection_text(p))


def subject(session: Session, args: argparse.Namespace) -> Output:
    rows = session.engine.query_subject(session.agent, args.subject, args.as_of, args.valid_at)
    data = {"subject": args.subject, "facts": [_projection_data(p) for p in rows]}
    return Output(data, tables.subject_text(args.subject, rows))


def history(session: Session, args: argparse.Namespace) -> Output:
    h = session.engine.history(session.agent, args.subject, args.predicate, as_of=args.as_of)
    return Output(h.to_dict(), tables.history_text(h))


def end(session: Session, args: argparse.Namespace) -> Output:
    """End a claim by ref, or the single believed value of a line (or the one given)."""
    engine, agent = session.engine, session.agent
    at = args.at if args.at is not None else engine.clock()
    ended: EndFactReceipt | None = None
    if args.ref is not None:
        if args.value is not None:
            raise ConfigError("give --ref or --value, not both")
        refs = {e.claim_ref for e in engine.history(agent, args.subject, args.predicate)}
        if args.ref not in refs:
            raise NotFoundError(
                f"--ref {args.ref} is not a claim of ({args.subject!r}, {args.predicate!r})"
            )
        receipts: tuple[ValidityReceipt, ...] = (engine.end(agent, args.ref, at),)
    else:
        chosen: dict[str, Any] = {}
        if args.value is not None:
            chosen["value"] = parse_value(args.value, args.string, "--value")
        ended = engine.end_fact(agent, args.subject, args.predicate, at, **chosen)
        receipts = ended.receipts
    data = {
        "subject": args.subject,
        "predicate": args.predicate,
        "receipts": [
            r.to_dict() | {"committed": stored_validity(r), "status_reason": validity_reason(r)}
            for r in receipts
        ],
    }
    text = tables.end_text(receipts, ended)
    rejected = [r for r in receipts if r.disposition is Disposition.REJECTED]
    if rejected:
        return Output(data, text, 1, validity_reason(rejected[0]))
    return Output(data, text)


def audit(session: Session, args: argparse.Namespace) -> Output:
    page = session.engine.query_audit(session.agent, args.claim, args.after, args.limit)
    return Output(page.to_dict(), tables.audit_text(page))
