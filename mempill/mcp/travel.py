"""The MCP tools for time travel (snapshot, timeline, changes) and erasure (erase).

The three reads are served in read-only mode too. `erase` forgets for good, so the server
lists it only when started with `--allow-erase` (or `MEMPILL_ALLOW_ERASE=1`), and the
tool itself runs only with `confirm: true` and a `reason`.
"""

from __future__ import annotations

from typing import Annotated, Any

from mcp.server.mcpserver.exceptions import ToolError
from pydantic import Field

from mempill.cli import checks
from mempill.cli.checks import MAX_MCP_LIMIT
from mempill.core.limits import MAX_KEY_CHARS, MAX_SEQ
from mempill.core.model import LedgerEntry
from mempill.core.travel import Change, ErasureReceipt, Segment
from mempill.mcp.arguments import (
    After,
    AsOf,
    OptionalPredicate,
    OptionalSubject,
    Predicate,
    RangeFrom,
    RangeUntil,
    Since,
    Subject,
    Until,
    ValidAt,
)
from mempill.mcp.guards import ToolBase, compact, date_arg, guarded, keys, slot_dict

Reason = Annotated[
    str,
    Field(
        min_length=1,
        max_length=MAX_KEY_CHARS,
        description="Why the memory is erased (e.g. 'the user asked to forget it'); kept in "
        "the ledger, so put no personal data in it.",
    ),
]
Confirm = Annotated[
    bool,
    Field(
        description="Must be true: erasure cannot be undone. Set it only when the user has "
        "explicitly asked to forget this."
    ),
]


def _optional(value: str | None, what: str) -> str | None:
    return None if value is None else checks.text(value, what)


class TravelTools(ToolBase):
    """snapshot, timeline and changes (reads), and erase (only with the server's opt-in)."""

    READ: tuple[str, ...] = ("snapshot", "timeline", "changes")
    ERASE: tuple[str, ...] = ("erase",)

    @guarded
    def snapshot(self) -> dict[str, Any]:
        """Take a snapshot of memory now: a token naming exactly what has been recorded so far.

        Pass the token later as as_of (recall, history, query_memory, query_subject,
        timeline) to see memory exactly as it is now, or as after (changes) to list exactly
        what was recorded since. Cheap; it stores nothing.
        """
        return self.engine.snapshot(self.agent).to_dict()

    @guarded
    def timeline(
        self,
        subject: Subject,
        predicate: Predicate,
        valid_from: RangeFrom = None,
        valid_until: RangeUntil = None,
        as_of: AsOf = None,
    ) -> dict[str, Any]:
        """How the belief of one fact changes across valid time (world time), as segments.

        Each segment is a range [valid_from, valid_until) (null: open) with one status
        (Resolved, Contested, TimingUncertain, NoBelief) and its values, oldest first,
        e.g. lived in Paris from 2019 to 2024, then Lyon. Answers "when was X true?" and
        "what was X in 2021?" at once. Use as_of (a date or a snapshot token) for how
        mempill saw the timeline at that moment.
        """
        keys(subject, predicate)
        found = self.engine.query_timeline(
            self.agent,
            subject,
            predicate,
            valid_from=date_arg(valid_from, "valid_from"),
            valid_until=date_arg(valid_until, "valid_until"),
            as_of=_optional(as_of, "as_of"),
        )
        data = found.to_dict()
        data["segments"] = [_segment(s) for s in found.segments]
        return data

    @guarded
    def changes(
        self,
        since: Since = None,
        until: Until = None,
        after: After = None,
        subject: OptionalSubject = None,
        predicate: OptionalPredicate = None,
        valid_at: ValidAt = None,
        cursor: Annotated[
            int,
            Field(ge=0, le=MAX_SEQ, description="Pass the returned next_cursor for the next page."),
        ] = 0,
        limit: Annotated[
            int, Field(ge=1, le=MAX_MCP_LIMIT, description="At most this many facts a page.")
        ] = 50,
    ) -> dict[str, Any]:
        """What changed in memory between two moments (or since a snapshot): each fact
        that was written, ended or erased, with its ledger entries and its belief before
        and after.

        Use it to catch up ("what did I learn since yesterday?", or since a snapshot
        token passed as after). Facts are listed in the order they were first touched;
        page with cursor = next_cursor until it is null.
        """
        if subject is not None:
            checks.key(subject, "subject")
        if predicate is not None:
            checks.key(predicate, "predicate")
        page = self.engine.query_changes(
            self.agent,
            since=_optional(since, "since"),
            until=_optional(until, "until"),
            after=_optional(after, "after"),
            subject=subject,
            predicate=predicate,
            valid_at=date_arg(valid_at, "valid_at"),
            cursor=cursor,
            limit=limit,
        )
        return {
            "agent_id": page.agent_id,
            "from_seq": page.from_seq,
            "until_seq": page.until_seq,
            "changes": [_change(c) for c in page.changes],
            "next_cursor": page.next_cursor,
        }

    @guarded
    def erase(
        self,
        subject: Annotated[str, Field(description="The subject whose memory is erased.")],
        reason: Reason,
        confirm: Confirm,
        predicate: Annotated[
            str | None,
            Field(description="Only this predicate of the subject. Omit to erase the subject."),
        ] = None,
    ) -> dict[str, Any]:
        """Permanently forget every value stored about a subject (or one of its facts).

        Only when the user explicitly asks you to forget something (a right to erasure):
        it cannot be undone, and unlike end_fact it removes the values themselves from
        memory and history. The ledger keeps one LineErased entry per fact (when, and
        your reason) and no value. Requires confirm: true.
        """
        keys(subject, predicate)
        if confirm is not True:
            raise ToolError(
                "confirm: erasure cannot be undone, so it needs confirm: true; nothing was "
                "erased. Ask the user first, then call erase again with confirm: true."
            )
        receipt = self.engine.erase(self.agent, subject, predicate, reason=reason)
        return receipt.to_dict() | {"status_reason": _erased(receipt)}


def _segment(segment: Segment) -> dict[str, Any]:
    data = segment.to_dict()
    return {
        "valid_from": data["valid_from"],
        "valid_until": data["valid_until"],
        "status": data["status"],
        "value": data["value"],
        "values": [slot_dict(slot) for slot in segment.candidates],
    }


def _entry(entry: LedgerEntry) -> dict[str, Any]:
    data = entry.to_dict()
    return {
        "stream_seq": data["stream_seq"],
        "recorded_at": data["recorded_at"],
        "event_kind": data["event_kind"],
        "disposition": data["disposition"],
        "claim_ref": data["claim_ref"],
        "reason": entry.rationale.get("reason"),
    }


def _change(change: Change) -> dict[str, Any]:
    return {
        "subject": change.subject,
        "predicate": change.predicate,
        "entries": [_entry(e) for e in change.entries],
        "before": compact(change.before),
        "after": compact(change.after),
    }


def _erased(receipt: ErasureReceipt) -> str:
    if not receipt.lines:
        return "Nothing was stored about it, so nothing was erased."
    return (
        f"Erased {len(receipt.lines)} fact(s): {receipt.claims} claim(s) and {receipt.entries} "
        "ledger entries no longer hold their values. The ledger keeps one LineErased "
        "entry per fact (when and why), without any value."
    )
