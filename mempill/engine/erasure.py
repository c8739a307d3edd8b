"""Erasure: the one sanctioned exception to append-only (docs/erasure.md).

`erase` scrubs every row of the erased lines in place, in one write transaction of the
agent: the rows keep their refs, seqs, tx times and dispositions (so the ledger stays a
gap-free sequence and every digest stays defined), lose their key (set to '', which no
valid key is, so no query reaches them again) and every value (the claim's value becomes
`null`, its valid time and anchor NULL, an entry's rationale `{"erased": <seq>}`, an
assertion's bound NULL, an outbox row's request `{}`). One `LineErased` entry per line
records when, why and which line, without any value. After COMMIT the store purges what
its files may still hold (SQLite: VACUUM and a truncating WAL checkpoint). The word index
rows of the erased claims (`terms`, docs/search.md) are deleted in the same transaction,
before the claims lose their key; after COMMIT the vector port forgets them.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from mempill.core import parse
from mempill.core.enums import Disposition, EventKind
from mempill.core.limits import MAX_KEY_CHARS
from mempill.core.model import LedgerEntry
from mempill.core.travel import ErasureReceipt
from mempill.engine.batch import Batch
from mempill.engine.runner import TransactionRunner
from mempill.errors import ValidationError
from mempill.ports import VectorPort, Writer

#: The longest `reason` (characters); it is stored in the ledger as given.
MAX_REASON_CHARS = MAX_KEY_CHARS


def reason_text(value: Any) -> str:
    """Clean, non-blank text of at most MAX_REASON_CHARS characters."""
    found = parse.text(value, "reason")
    if not found.strip():
        raise ValidationError("reason: must not be empty (say why the line is erased)")
    if len(found) > MAX_REASON_CHARS:
        raise ValidationError(
            f"reason: {len(found):,} characters; a reason has at most {MAX_REASON_CHARS:,}"
        )
    return found


def erase(
    runner: TransactionRunner,
    agent_id: Any,
    subject: Any,
    predicate: Any,
    reason: Any,
    *,
    forget: VectorPort | None = None,
) -> ErasureReceipt:
    """Erase one line (`predicate` given) or every line of `subject` (None); after COMMIT,
    `forget` (the vector port) drops the erased claims."""
    runner.writable("erase")
    agent = parse.agent_id(agent_id)
    subj = parse.key(subject, "subject")
    pred = None if predicate is None else parse.key(predicate, "predicate")
    why = reason_text(reason)
    op_ref = runner.ids()
    erased: list[str] = []  # the erased claims' refs, for the vector port
    with runner.store.read(agent) as reader:
        unknown = reader.head()[0] == 0
    if unknown:  # no ledger at all: nothing to erase, and no agent database to create
        return _nothing(agent, subj, pred, runner.clock())

    def work(batch: Batch) -> ErasureReceipt:
        tx = batch.tick()
        found = batch.txn.erasable(subj)
        lines = sorted((subj, p) for p in found if pred is None or p == pred)
        if not lines:
            return _nothing(agent, subj, pred, tx)
        claims = entries = 0
        marks: list[int] = []
        erased.clear()  # a retried transaction starts over
        for line in lines:
            erased.extend(c.claim_ref for c in batch.txn.line(*line).claims)
            scrubbed = batch.txn.erase_line(*line, batch.seq + 1)
            entry = batch.entry(
                EventKind.LINE_ERASED,
                Disposition.INVALIDATED,
                {"reason": why, "claims": scrubbed[0], "entries": scrubbed[1]},
                claim_ref=None,
                line=line,
                request_ref=op_ref,
            )
            marks.append(entry.stream_seq)
            claims, entries = claims + scrubbed[0], entries + scrubbed[1]
        return ErasureReceipt(
            agent_id=agent,
            subject=subj,
            predicate=pred,
            lines=tuple(lines),
            claims=claims,
            entries=entries,
            tx_time=tx,
            first_seq=marks[0],
            last_seq=marks[-1],
        )

    def replay(txn: Writer) -> ErasureReceipt | None:
        return _receipt(agent, subj, pred, txn.request_entries(op_ref))

    receipt = runner.write(agent, work, replay=replay)[0]
    # The published states already start over at the erasure; forgetting them is cheap.
    runner.lines.forget((agent, s, p) for s, p in receipt.lines)
    drop = getattr(forget, "forget", None)  # a port with index_claim alone has none
    if callable(drop) and erased:
        drop(agent, tuple(erased))
    # Always, even when nothing was left to erase: calling erase again finishes a purge
    # an earlier call could not (a reader kept the SQLite WAL from being emptied).
    runner.store.purge(agent)
    return receipt


def _nothing(agent: str, subject: str, predicate: str | None, tx: datetime) -> ErasureReceipt:
    return ErasureReceipt(
        agent_id=agent, subject=subject, predicate=predicate, lines=(), claims=0, entries=0,
        tx_time=tx, first_seq=None, last_seq=None,
    )  # fmt: skip


def _receipt(
    agent: str, subject: str, predicate: str | None, entries: tuple[LedgerEntry, ...]
) -> ErasureReceipt | None:
    """The receipt of an erasure whose COMMIT landed though its connection was lost."""
    if not entries:
        return None
    return ErasureReceipt(
        agent_id=agent,
        subject=subject,
        predicate=predicate,
        lines=tuple((str(e.subject), str(e.predicate)) for e in entries),
        claims=sum(int(e.rationale.get("claims", 0)) for e in entries),
        entries=sum(int(e.rationale.get("entries", 0)) for e in entries),
        tx_time=entries[0].recorded_at,
        first_seq=entries[0].stream_seq,
        last_seq=entries[-1].stream_seq,
    )
