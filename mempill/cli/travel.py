"""The time-travel and erasure commands: snapshot, timeline, changes, erase.

`snapshot` prints the agent's ledger position as a token that `--as-of` (of every read)
and `changes --since/--until/--after` accept, so a later read sees exactly the writes up
to it. `erase` forgets for good, so it runs only with `--yes`: without it the command
stops before the store is opened (`confirm`).
"""

from __future__ import annotations

import argparse
from collections import Counter
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from mempill.cli import checks
from mempill.cli.commands import Output, Session
from mempill.cli.explain import value_text
from mempill.cli.tables import line, table
from mempill.cli.terminal import visible
from mempill.core.dates import format_tx
from mempill.core.enums import BeliefStatus
from mempill.core.model import Projection
from mempill.core.travel import Change, ChangesPage, ErasureReceipt, Timeline
from mempill.errors import ConfigError

COMMANDS = frozenset({"snapshot", "timeline", "changes", "erase"})
#: Half a table cell: each side of `before → after` is cut to it.
SIDE = 28


def check_travel_arguments(args: argparse.Namespace) -> None:
    """The optional keys of `changes` and `erase`, and erase's confirmation."""
    if args.command == "changes":
        for name in ("subject", "predicate"):
            if getattr(args, name) is not None:
                checks.key(getattr(args, name), f"--{name}")
    if args.command == "erase":
        if args.predicate is not None:
            checks.key(args.predicate, "predicate")
        checks.text(args.reason, "--reason")
        confirm(args)


def confirm(args: argparse.Namespace) -> None:
    """`erase` without `--yes`: a ConfigError (exit 2) before anything is opened."""
    if not args.yes:
        what = visible(
            args.subject if args.predicate is None else f"{args.subject} {args.predicate}"
        )
        raise ConfigError(
            f"erase forgets every value stored about {what} for good (it cannot be undone); "
            "nothing was erased: run it again with --yes to confirm"
        )


# ---------------------------------------------------------------- commands


def snapshot(session: Session, args: argparse.Namespace) -> Output:
    found = session.engine.snapshot(session.agent)
    return Output(found.to_dict(), found.token)


def timeline(session: Session, args: argparse.Namespace) -> Output:
    found = session.engine.query_timeline(
        session.agent,
        args.subject,
        args.predicate,
        valid_from=args.valid_from,
        valid_until=args.valid_until,
        as_of=args.as_of,
    )
    return Output(found.to_dict(), timeline_text(found))


def changes(session: Session, args: argparse.Namespace) -> Output:
    """One page, or with `--all` every page (following `next_cursor`) as one."""
    pages: list[ChangesPage] = []
    cursor = args.cursor
    while True:
        page = session.engine.query_changes(
            session.agent,
            since=args.since,
            until=args.until,
            after=args.after,
            subject=args.subject,
            predicate=args.predicate,
            valid_at=args.valid_at,
            cursor=cursor,
            limit=args.limit,
        )
        pages.append(page)
        if not args.all or page.next_cursor is None:
            break
        cursor = page.next_cursor
    found = [change for page in pages for change in page.changes]
    data: dict[str, Any] = pages[-1].to_dict()
    data["from_seq"] = pages[0].from_seq
    data["changes"] = [change.to_dict() for change in found]
    return Output(data, changes_text(pages[0].from_seq, pages[-1], found))


def erase(session: Session, args: argparse.Namespace) -> Output:
    confirm(args)  # checked before the store was opened too; never erase without it
    receipt = session.engine.erase(session.agent, args.subject, args.predicate, reason=args.reason)
    return Output(receipt.to_dict(), erase_text(receipt))


# ---------------------------------------------------------------- text


def moment_text(moment: datetime | None) -> str:
    """A valid-time edge: `…` when open, the date alone at midnight UTC, else to the second
    (or microsecond when it has one)."""
    if moment is None:
        return "…"
    text = format_tx(moment)
    if text.endswith("T00:00:00.000000Z"):
        return text[:10]
    return text.replace(".000000Z", "Z")


def values_text(slots: Sequence[Any]) -> str:
    """The values of a belief's candidates, `-` when none."""
    return " | ".join(value_text(slot.value) for slot in slots) or "-"


def belief_text(p: Projection) -> str:
    """A belief in a cell: the value when Resolved, else its status and values."""
    if p.status is BeliefStatus.NO_BELIEF or not p.candidates:
        return p.status.value
    values = values_text(p.candidates)
    return values if p.status is BeliefStatus.RESOLVED else f"{p.status.value} {values}"


def timeline_text(t: Timeline) -> str:
    head = line(t.subject, t.predicate)
    if t.as_of is not None:
        head += f" (as of {format_tx(t.as_of)})"
    if not t.segments:
        return f"{head}: no belief in that range"
    rows = [
        (
            moment_text(s.valid_from),
            moment_text(s.valid_until),
            s.status.value,
            values_text(s.candidates),
        )
        for s in t.segments
    ]
    headers = ("VALID FROM", "VALID UNTIL", "STATUS", "VALUE")
    return f"{head}\n" + "\n".join("  " + row for row in table(headers, rows).splitlines())


def _side(text: str) -> str:
    shown = visible(text)
    return shown if len(shown) <= SIDE else shown[: SIDE - 1] + "…"


def _dispositions(change: Change) -> str:
    counted = Counter(entry.disposition.value for entry in change.entries)
    return ", ".join(name if n == 1 else f"{name} ×{n}" for name, n in counted.items())


def changes_text(from_seq: int, last: ChangesPage, found: Sequence[Change]) -> str:
    if last.until_seq > from_seq:
        window = f"in stream_seq {from_seq + 1}..{last.until_seq}"
    else:
        window = f"after stream_seq {from_seq}"
    if not found:
        text = f"no changes {window}"
    else:
        rows = [
            (
                c.subject,
                c.predicate,
                len(c.entries),
                _dispositions(c),
                f"{_side(belief_text(c.before))} → {_side(belief_text(c.after))}",
            )
            for c in found
        ]
        headers = ("SUBJECT", "PREDICATE", "ENTRIES", "DISPOSITIONS", "BELIEF BEFORE → AFTER")
        text = f"changes {window}\n" + table(headers, rows)
    if last.next_cursor is not None:
        text += f"\n(more: --cursor {last.next_cursor}, or --all)"
    return text


def erase_text(r: ErasureReceipt) -> str:
    if not r.lines:
        what = r.subject if r.predicate is None else f"{r.subject} {r.predicate}"
        return f"nothing stored about {visible(what)}: nothing was erased"
    parts = [f"erased {len(r.lines)} fact(s):"]
    parts += [f"  {line(s, p)}" for s, p in r.lines]
    parts.append(f"claims scrubbed: {r.claims}; ledger entries scrubbed: {r.entries}")
    if r.first_seq is not None:
        seqs = f"{r.first_seq}" if r.first_seq == r.last_seq else f"{r.first_seq}..{r.last_seq}"
        parts.append(f"recorded as LineErased at stream_seq {seqs} ({format_tx(r.tx_time)})")
    return "\n".join(parts)
