"""The 0.4 wheel's ergonomic layer — `remember`, `recall`, `history`, `end_fact` — written for
`mempill.compat`.

Plain functions over any engine with the wheel's dict methods (a `CompatEngine`), returning
the wheel's dataclasses. Dates are read as the engine reads them (`2020`, `2020-03`,
`2020-03-15`, RFC 3339) and keep the precision they were written with. Migrating code changes
`from mempill import remember, …` to `from mempill.compat import remember, …`.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol

from mempill.compat.types import ProvenanceLabel
from mempill.core import parse
from mempill.core.dates import parse_lenient
from mempill.core.enums import BeliefStatus, Disposition, Granularity, HistoryStatus, Provenance
from mempill.core.model import Listing
from mempill.core.tables import ID_WIDTH, Column, column, window_end
from mempill.errors import NotFoundError, ValidationError

__all__ = [
    "BeliefDetail",
    "ContestCandidate",
    "EndFactReceipt",
    "History",
    "HistoryEntry",
    "RecallResult",
    "RememberOptions",
    "RememberReceipt",
    "UnparsableDateError",
    "WheelEngine",
    "end_fact",
    "history",
    "recall",
    "remember",
]

#: Statuses with no single value; "Conflict" is a status name the wheel documented.
CONTESTED = frozenset({BeliefStatus.CONTESTED.value, "Conflict"})


class WheelEngine(Protocol):
    """What the functions here call: the wheel's dict methods, as `CompatEngine` has them."""

    def ingest_claim(self, request: Any) -> dict[str, Any]: ...

    def query_memory(self, request: Any) -> dict[str, Any]: ...

    def query_history(self, request: Any) -> dict[str, Any]: ...

    def assert_validity(self, request: Any) -> dict[str, Any]: ...

    def resolve_live_claim_for_line(
        self, agent_id: str, subject: str, predicate: str
    ) -> dict[str, Any]: ...


class UnparsableDateError(ValidationError):
    """A date that is not `YYYY`, `YYYY-MM`, `YYYY-MM-DD` or RFC 3339; `.input` is the text.

    A `ValidationError` (and so a `ValueError`, as in the wheel).
    """

    def __init__(self, text: object) -> None:
        self.input = text
        super().__init__(
            f"unparsable date {text!r}: use YYYY, YYYY-MM, YYYY-MM-DD or RFC 3339 "
            "(resolve a natural-language date such as 'March 2020' before passing it)"
        )


def _granularity(text: object) -> str:
    """The precision `text` was written with; UnparsableDateError when it is not a date."""
    if not isinstance(text, str):
        raise UnparsableDateError(text)
    try:
        return parse_lenient(text, "date")[1].value
    except ValidationError as e:
        raise UnparsableDateError(text) from e


# ---------------------------------------------------------------- remember


@dataclass
class RememberOptions:
    """What `remember` may be told besides the fact. With a date, `confidence` is also the
    window's confidence; without one the window is unknown (confidence 0)."""

    valid_from: str | None = None
    valid_until: str | None = None
    confidence: float = 1.0
    cardinality: str = "Functional"
    provenance: dict[str, str] | str | None = None  # None: External/UserAsserted
    criticality: str = "Medium"
    derived_from: list[str] = field(default_factory=list)


@dataclass
class RememberReceipt:
    claim_ref: str
    disposition: str
    contested_with: list[str] = field(default_factory=list)
    reason: str | None = None


def remember(
    engine: WheelEngine,
    agent_id: str,
    subject: str,
    predicate: str,
    value: Any,
    opts: RememberOptions | None = None,
) -> RememberReceipt:
    """Write one fact with the defaults a person's statement deserves (External/UserAsserted,
    confidence 1, Functional, Medium). UnparsableDateError for a date that does not parse."""
    opts = opts or RememberOptions()
    dated = opts.valid_from is not None or opts.valid_until is not None
    window: dict[str, Any] = {"valid_time_confidence": opts.confidence if dated else 0.0}
    for end, text in (("start", opts.valid_from), ("end", opts.valid_until)):
        if text is not None:
            window[f"{end}_granularity"] = _granularity(text)
            window[end] = text.strip()
    receipt = engine.ingest_claim(
        {
            "agent_id": agent_id,
            "subject": subject,
            "predicate": predicate,
            "value": value,
            "provenance": opts.provenance or ProvenanceLabel.external_user_asserted(),
            "cardinality": opts.cardinality,
            "valid_time": window,
            "confidence": {
                "value_confidence": opts.confidence,
                "valid_time_confidence": window["valid_time_confidence"],
            },
            "criticality": opts.criticality,
            "derived_from": list(opts.derived_from),
        }
    )
    return RememberReceipt(
        claim_ref=receipt["claim_ref"],
        disposition=receipt["disposition"],
        contested_with=list(receipt.get("contested_with") or ()),
        reason=receipt.get("reason"),
    )


# ---------------------------------------------------------------- recall


@dataclass
class BeliefDetail:
    """One side of a belief, flat. `valid_from`/`valid_until` are the stored window (RFC 3339)."""

    claim_ref: str
    value: Any
    valid_from: str | None
    valid_until: str | None
    value_confidence: float
    provenance: str  # "External/UserAsserted", "RecallReEntry", "ModelDerived", …
    corroboration_count: int


def _no_detail() -> BeliefDetail:
    return BeliefDetail("", None, None, None, 0.0, "", 0)


@dataclass
class ContestCandidate:
    value: Any
    claim_ref: str
    valid_from: str | None
    detail: BeliefDetail = field(default_factory=_no_detail)


@dataclass
class RecallResult:
    """A belief, flat. `value` is None unless one value holds: check `is_contested()` and
    `is_empty()` rather than `value is None`. `reason` says why (e.g. `window_ended`)."""

    value: Any | None
    status: str
    candidates: list[ContestCandidate] = field(default_factory=list)
    currency: str = "Fresh"
    is_stale: bool = False
    primary: BeliefDetail | None = None
    reason: str | None = None

    def as_str(self) -> str | None:
        return None if self.value is None else str(self.value)

    def is_contested(self) -> bool:
        return self.status in CONTESTED

    def is_empty(self) -> bool:
        return self.status == BeliefStatus.NO_BELIEF.value


def _detail(slot: Mapping[str, Any]) -> BeliefDetail:
    window = slot.get("valid_time") or {}
    return BeliefDetail(
        claim_ref=slot["claim_ref"],
        value=slot["fact"]["value"],
        valid_from=window.get("start"),
        valid_until=window.get("end"),
        value_confidence=float(slot["confidence"]["value_confidence"]),
        provenance=parse.provenance(slot["provenance"]).value,
        corroboration_count=int(slot["currency_signal"]["corroboration_count"]),
    )


def _candidate(slot: Mapping[str, Any]) -> ContestCandidate:
    detail = _detail(slot)
    return ContestCandidate(detail.value, detail.claim_ref, detail.valid_from, detail)


def recall(
    engine: WheelEngine,
    agent_id: str,
    subject: str,
    predicate: str,
    *,
    valid_at: str | None = None,
) -> RecallResult:
    """The belief in force now (or at `valid_at`). A Contested belief has no value and lists
    every side in `candidates`; a line without belief `is_empty()`."""
    request = {"agent_id": agent_id, "subject": subject, "predicate": predicate}
    answer = engine.query_memory(request if valid_at is None else {**request, "valid_at": valid_at})
    belief = answer["belief"]
    status = belief["status"]
    primary = belief.get("primary")
    sides = list(belief.get("alternatives") or ())
    if status in CONTESTED and primary is not None:
        sides.insert(0, primary)
    held = primary is not None and status not in CONTESTED
    return RecallResult(
        value=primary["fact"]["value"] if held else None,
        status=status,
        candidates=[_candidate(s) for s in sides],
        currency=primary["currency_signal"]["state"] if held else belief["currency"],
        is_stale=bool(belief["staleness"]["is_stale"]),
        primary=_detail(primary) if held else None,
        reason=belief.get("reason"),
    )


# ---------------------------------------------------------------- history


@dataclass
class HistoryEntry:
    """One claim of a line's timeline. `status` is Current, Ended, Superseded, Contested,
    Pending, Inferred, Quarantined, Invalidated or Denied (docs/compat.md §3)."""

    claim_ref: str
    value: Any
    valid_from: str | None
    valid_until: str | None
    status: str
    provenance: str
    value_confidence: float
    valid_from_display: str | None = None
    valid_until_display: str | None = None
    valid_from_granularity: str | None = None
    valid_until_granularity: str | None = None


#: `History`: a row per entry, its window ends as instants (None: open).
ENTRY = (
    column("status", "category", label="status", enum=HistoryStatus),
    column("value", "value", label="value"),
    window_end("from"),
    window_end("until"),
    column("provenance", "category", label="provenance", enum=Provenance),
    column("value_confidence", "float", label="confidence"),
    column("claim_ref", "text", label="claim", width=ID_WIDTH),
    column("valid_from_display", "text"),
    column("valid_until_display", "text"),
    column("valid_from_granularity", "category", enum=Granularity),
    column("valid_until_granularity", "category", enum=Granularity),
)


class History(Listing):
    """A line's timeline, oldest first; iterable. `current()` agrees with `recall`. In a
    notebook it is one table, a row per entry; `to_frame()` gives the rows as a DataFrame."""

    _columns: ClassVar[tuple[Column, ...]] = ENTRY

    def __init__(self, entries: list[HistoryEntry]) -> None:
        self.entries = entries

    def current(self) -> HistoryEntry | None:
        """The Current entry, or None (an empty, ended or contested line)."""
        return next((e for e in self.entries if e.status == HistoryStatus.CURRENT.value), None)

    def is_empty(self) -> bool:
        return not self.entries

    def __iter__(self) -> Iterator[HistoryEntry]:
        return iter(self.entries)

    def __len__(self) -> int:
        return len(self.entries)

    def __repr__(self) -> str:
        return f"History(entries={self.entries!r})"


def history(engine: WheelEngine, agent_id: str, subject: str, predicate: str) -> History:
    """Every claim of the line, oldest first, with its status and display dates."""
    found = engine.query_history({"agent_id": agent_id, "subject": subject, "predicate": predicate})
    return History(
        [
            HistoryEntry(
                claim_ref=e["claim_ref"],
                value=e["value"],
                valid_from=e["valid_from"],
                valid_until=e["valid_until"],
                status=e["status"],
                provenance=e["provenance"],
                value_confidence=float(e["value_confidence"]),
                valid_from_display=e.get("valid_from_display"),
                valid_until_display=e.get("valid_until_display"),
                valid_from_granularity=e.get("valid_from_granularity"),
                valid_until_granularity=e.get("valid_until_granularity"),
            )
            for e in found["entries"]
        ]
    )


# ---------------------------------------------------------------- end_fact


@dataclass
class EndFactReceipt:
    claim_ref: str
    disposition: str
    effective_at: str  # RFC 3339: where the fact's window now ends
    no_op: bool


def end_fact(
    engine: WheelEngine,
    agent_id: str,
    subject: str,
    predicate: str,
    at: str,
    provenance: dict[str, str] | str | None = None,
    confidence: float = 1.0,
) -> EndFactReceipt:
    """Bound the line's one live claim at `at` (kept at the precision it was written with).

    NotFoundError when no claim holds the belief, ValidationError when several do (a
    contest, a set, or a value stated twice: bound each with `engine.assert_validity`, or
    end them all with `engine.engine.end_fact`) and when the engine refuses the bound.
    """
    granularity = _granularity(at)
    found = engine.resolve_live_claim_for_line(agent_id, subject, predicate)
    line = f"(subject={subject!r}, predicate={predicate!r})"
    if found["status"] == "empty":
        raise NotFoundError(f"no live claim on {line}; nothing to end")
    if found["status"] != "single":
        raise ValidationError(
            f"{found['live_count']} live claims on {line}: end_fact does not guess; bound each "
            "with engine.assert_validity, or end them all with engine.engine.end_fact"
        )
    receipt = engine.assert_validity(
        {
            "agent_id": agent_id,
            "target": found["claim_ref"],
            "assertion": {
                "type": "Bound",
                "value": {"at": at.strip(), "at_granularity": granularity},
            },
            "provenance": provenance or ProvenanceLabel.external_user_asserted(),
            "confidence": {"value_confidence": confidence, "valid_time_confidence": confidence},
        }
    )
    if receipt["disposition"] == Disposition.REJECTED.value:
        raise ValidationError(f"end_fact on {line} at {at!r} was refused: {receipt['reason']}")
    return EndFactReceipt(
        claim_ref=receipt["claim_ref"],
        disposition=receipt["disposition"],
        effective_at=receipt["effective_at"],
        no_op=bool(receipt["no_op"]),
    )
