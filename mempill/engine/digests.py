"""The digests of reference §9: the ledger digest, and the content digest of every row."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from typing import Any

from mempill.core.canonical import canonical_json
from mempill.core.dates import format_tx
from mempill.core.model import LedgerEntry
from mempill.ports import Reader


def ledger_digest(reader: Reader) -> str:
    """SHA-256 over the agent's ledger entries in stream order."""
    return _digest(entry_item(e) for e in reader.ledger())


def content_digest(reader: Reader) -> str:
    """SHA-256 over the ledger, claim rows, assertions, edges and the oracle outbox."""
    return _digest(_content(reader))


def _digest(items: Iterable[Any]) -> str:
    digest = hashlib.sha256()
    for item in items:
        digest.update(canonical_json(item).encode("utf-8"))
        digest.update(b"\n")
    return digest.hexdigest()


def _content(reader: Reader) -> list[list[Any]]:
    """What the content digest covers, in its order (reference §9)."""
    items: list[list[Any]] = [["ledger", *entry_item(e)] for e in reader.ledger()]
    items += [["claim", c.to_dict()] for c in reader.all_claims()]
    items += [["assertion", a.to_dict()] for a in reader.all_assertions()]
    items += [["edge", e.to_dict()] for e in reader.all_edges()]
    pending = sorted(reader.pending(None), key=lambda p: p.handle_id)
    items += [["pending", p.to_dict()] for p in pending]
    return items


def entry_item(e: LedgerEntry) -> list[Any]:
    """A ledger entry as the digests serialize it (reference §9)."""
    return [
        e.stream_seq,
        e.entry_id,
        e.claim_ref,
        e.event_kind.value,
        e.disposition.value,
        e.rationale,
        format_tx(e.recorded_at),
    ]
