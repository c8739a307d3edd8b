"""Time travel over the ledger: snapshots, a line's timeline, and the changes feed.

Every read here runs in one read snapshot of one agent, like the point queries; a
`Snapshot` (or its token) stands wherever a transaction time may (`as_of`, `since`,
`until`) and then bounds the read by stream position, not only by time.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from mempill.core import parse
from mempill.core.limits import MAX_SEQ
from mempill.core.model import LedgerEntry
from mempill.core.timeline import segments
from mempill.core.travel import Change, ChangesPage, Cut, Snapshot, Timeline, cut_of, snapshot_of
from mempill.engine.oracle import read_snapshot
from mempill.engine.runner import TransactionRunner
from mempill.errors import ValidationError
from mempill.ports import Reader


def read_cut(value: Any, agent_id: str, what: str) -> Cut | None:
    """`as_of` as given: None, a Snapshot or its token, or a moment (ValidationError)."""
    if value is None:
        return None
    found = snapshot_of(value, agent_id, what)
    if found is not None:
        return cut_of(found)
    return Cut(at=parse.moment(value, what))


def snapshot(runner: TransactionRunner, agent_id: str) -> Snapshot:
    runner.clock()
    seq, at = read_snapshot(runner, agent_id, lambda r: r.head())
    return Snapshot(agent_id=agent_id, stream_seq=seq, tx_time=at)


def timeline(
    runner: TransactionRunner,
    agent_id: Any,
    subject: Any,
    predicate: Any,
    valid_from: Any,
    valid_until: Any,
    as_of: Any,
) -> Timeline:
    agent = parse.agent_id(agent_id)
    subject, predicate = parse.key(subject, "subject"), parse.key(predicate, "predicate")
    start = parse.optional_moment(valid_from, "valid_from")
    end = parse.optional_moment(valid_until, "valid_until")
    if start is not None and end is not None and start >= end:
        raise ValidationError("valid_from: must be before valid_until")
    cut = read_cut(as_of, agent, "as_of")
    now = runner.clock()
    at = None if cut is None else cut.at

    def read(reader: Reader) -> Timeline:
        with runner.line(reader, agent, subject, predicate, cut) as line:
            found = segments(
                line,
                agent_id=agent,
                subject=subject,
                predicate=predicate,
                as_of=at,
                valid_from=start,
                valid_until=end,
                now=now,
                config=runner.config,
            )
        return Timeline(
            agent_id=agent,
            subject=subject,
            predicate=predicate,
            as_of=at,
            valid_from=start,
            valid_until=end,
            segments=found,
        )

    return read_snapshot(runner, agent, read)


def changes(
    runner: TransactionRunner,
    agent_id: Any,
    since: Any,
    until: Any,
    after: Any,
    subject: Any,
    predicate: Any,
    valid_at: Any,
    cursor: Any,
    limit: Any,
) -> ChangesPage:
    agent = parse.agent_id(agent_id)
    if after is not None and since is not None:
        raise ValidationError("after: give either since or after, not both")
    if after is not None and snapshot_of(after, agent, "after") is None:
        raise ValidationError("after: expected a Snapshot or a snapshot token")
    lower = _bound(since if after is None else after, agent, "after" if after else "since")
    upper = _bound(until, agent, "until")
    subject = None if subject is None else parse.key(subject, "subject")
    predicate = None if predicate is None else parse.key(predicate, "predicate")
    if predicate is not None and subject is None:
        raise ValidationError("predicate: give the subject too")
    valid = parse.optional_moment(valid_at, "valid_at")
    cursor = 0 if cursor is None else parse.count(cursor, "cursor", 0)
    limit = parse.count(limit, "limit", 1)
    now = runner.clock()

    def read(reader: Reader) -> ChangesPage:
        lo, lo_at = lower(reader, 0)
        head = reader.head()[0]
        hi, hi_at = upper(reader, head)
        hi = max(lo, hi)
        touched: dict[tuple[str, str], list[LedgerEntry]] = {}
        for entry in reader.window(lo, hi):
            if not entry.subject or entry.predicate is None:
                continue  # not about a line (or about an erased one)
            if subject is not None and entry.subject != subject:
                continue
            if predicate is not None and entry.predicate != predicate:
                continue
            touched.setdefault((entry.subject, entry.predicate), []).append(entry)
        pending = [(e[0].stream_seq, line, e) for line, e in touched.items()]
        pending = [item for item in pending if item[0] > cursor]
        page, more = pending[:limit], len(pending) > limit
        before, after_cut = Cut(at=lo_at, seq=lo), Cut(at=hi_at, seq=hi)
        found = tuple(
            Change(
                subject=s,
                predicate=p,
                entries=tuple(entries),
                before=runner.project(reader, agent, s, p, before, valid, now),
                after=runner.project(reader, agent, s, p, after_cut, valid, now),
            )
            for _, (s, p), entries in page
        )
        return ChangesPage(
            agent_id=agent,
            from_seq=lo,
            until_seq=hi,
            changes=found,
            next_cursor=page[-1][0] if more else None,
        )

    return read_snapshot(runner, agent, read)


Bound = Callable[[Reader, int], tuple[int, "datetime | None"]]


def _bound(value: Any, agent: str, what: str) -> Bound:
    """A window edge as a function of the read: (stream_seq, tx time of the cut).

    None is the default (`since`: the start of the ledger; `until`: its head, read now);
    a snapshot is its position; a moment, the last entry recorded at or before it."""
    if value is None:
        return lambda reader, default: (default, None)
    found = snapshot_of(value, agent, what)
    if found is not None:
        position = found
        return lambda reader, default: (position.stream_seq, position.tx_time)
    moment = parse.moment(value, what)
    return lambda reader, default: (min(reader.seq_at(moment), MAX_SEQ), moment)
