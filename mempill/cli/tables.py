"""Human-readable output of the command line: aligned tables and short summaries.

Text from the store (subjects, predicates, values, reasons) is shown with its control
characters escaped (`terminal.visible`), so a heading or a cell stays one line.

Values are shown as compact JSON (so `"42"` and `42` stay distinguishable), times as
display strings, and claim refs in full so they can be pasted into `end --ref` or
`audit --claim`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from mempill.cli.explain import belief_reason, receipt_reason, validity_reason, value_text
from mempill.cli.terminal import visible
from mempill.core.dates import format_tx
from mempill.core.model import (
    AuditPage,
    BeliefSlot,
    EndFactReceipt,
    History,
    Projection,
    Receipt,
    ValidityReceipt,
)

MAX_CELL = 60
#: How status reasons name the way to end a fact, on the command line.
END = "end (mempill end)"


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """Left-aligned columns separated by two spaces; long cells are cut with `…`."""
    cells = [[_cell(c) for c in row] for row in rows]
    widths = [len(h) for h in headers]
    for row in cells:
        widths = [max(w, len(c)) for w, c in zip(widths, row, strict=True)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip()]
    lines += [
        "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in cells
    ]
    return "\n".join(lines)


def _cell(value: Any) -> str:
    text = "" if value is None else visible(str(value))
    return text if len(text) <= MAX_CELL else text[: MAX_CELL - 1] + "…"


def line(subject: str, predicate: str) -> str:
    """`subject predicate` for a heading, control characters escaped (`terminal`)."""
    return f"{visible(subject)} {visible(predicate)}"


def window(start: str | None, end: str | None) -> str:
    if start is None and end is None:
        return "-"
    return f"{start or '…'} → {end or '…'}"


def slots_table(slots: Sequence[BeliefSlot]) -> str:
    return table(
        ("VALUE", "VALID", "SOURCE", "CONF", "CURRENCY", "CLAIM"),
        [
            (
                value_text(s.value),
                window(s.valid_from_display, s.valid_until_display),
                s.provenance.value,
                f"{s.value_confidence:g}",
                s.currency.value,
                s.claim_ref,
            )
            for s in slots
        ],
    )


def projection_text(p: Projection) -> str:
    head = f"{line(p.subject, p.predicate)}: {p.status.value}"
    if p.primary is not None and not p.alternatives:
        head += f" = {value_text(p.primary.value)}"
    parts = [head]
    if p.candidates:
        parts.append(_indent(slots_table(p.candidates)))
    reason = belief_reason(p, END)
    if reason:
        parts.append(f"  {reason}")
    return "\n".join(parts)


def subject_text(subject: str, projections: Sequence[Projection]) -> str:
    if not projections:
        return f"{visible(subject)}: nothing remembered"
    rows = []
    for p in projections:
        values = " | ".join(value_text(s.value) for s in p.candidates) or "-"
        rows.append((p.predicate, p.status.value, values, belief_reason(p, END) or ""))
    return f"{visible(subject)}\n" + _indent(table(("PREDICATE", "STATUS", "VALUE", "NOTE"), rows))


def receipt_text(receipt: Receipt) -> str:
    lines = [
        f"{receipt.disposition.value}  {receipt.claim_ref}",
        f"  {receipt_reason(receipt, end=END)}",
    ]
    if receipt.contested_with:
        lines.append("  contested with: " + ", ".join(receipt.contested_with))
    return "\n".join(lines)


def end_text(receipts: Sequence[ValidityReceipt], ended: EndFactReceipt | None) -> str:
    head = (
        ""
        if ended is None
        else f"{line(ended.subject, ended.predicate)} {value_text(ended.value)}\n"
    )
    return head + "\n".join(
        f"{r.disposition.value}  {r.claim_ref}  {validity_reason(r)}" for r in receipts
    )


def history_text(h: History) -> str:
    if not h.entries:
        return f"{line(h.subject, h.predicate)}: no claims"
    rows = [
        (
            e.status.value,
            value_text(e.value),
            window(e.valid_from_display, e.valid_until_display),
            e.provenance.value,
            e.ingest_disposition.value,
            format_tx(e.tx_time),
            e.claim_ref,
        )
        for e in h.entries
    ]
    headers = ("STATUS", "VALUE", "VALID", "SOURCE", "INGEST", "RECORDED", "CLAIM")
    return f"{line(h.subject, h.predicate)}\n" + _indent(table(headers, rows))


def audit_text(page: AuditPage) -> str:
    rows = [
        (
            e.stream_seq,
            format_tx(e.recorded_at),
            e.event_kind.value,
            e.disposition.value,
            f"{e.subject or ''} {e.predicate or ''}".strip(),
            e.claim_ref or "-",
            e.rationale.get("reason", ""),
        )
        for e in page.entries
    ]
    text = table(("SEQ", "RECORDED", "EVENT", "DISPOSITION", "LINE", "CLAIM", "REASON"), rows)
    if page.next_cursor is not None:
        text += f"\n(more: --after {page.next_cursor})"
    return text


def _indent(text: str) -> str:
    return "\n".join("  " + line for line in text.splitlines())
