"""The claim streams every engine is fed: deterministic, engine-neutral request dicts.

A claim is a plain dict in this engine's request shape (`agent_id`, `subject`,
`predicate`, `value`, optional `valid_time` and `valid_time_confidence`);
`to_reference` turns it into the published wheel's shape, so both engines get exactly
the same facts in the same order. Agent ids use only `[A-Za-z0-9_-]` because the wheel
refuses dots.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

Claim = dict[str, Any]

#: Valid-time windows of the long (succession) lines start here, one hour each.
WINDOW_BASE = datetime(2000, 1, 1, tzinfo=UTC)
WINDOW_STEP = timedelta(hours=1)
TRUSTED = 0.9
#: Filler lines spread over subjects with this many predicates each.
PREDICATES_PER_SUBJECT = 8
#: Bump when a stream changes: cached reference stores are keyed by it.
STREAM_VERSION = 1


def iso(moment: datetime) -> str:
    """RFC 3339 UTC with a `Z`, the form both engines accept."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def fact_value(index: int) -> dict[str, Any]:
    """A small JSON object (exercises canonical encoding, not just a scalar)."""
    return {"text": f"fact number {index}", "n": index}


def filler(agent: str, index: int) -> Claim:
    """Filler claim `index`: one claim per line, `PREDICATES_PER_SUBJECT` lines per subject."""
    return {
        "agent_id": agent,
        "subject": f"user{index // PREDICATES_PER_SUBJECT}",
        "predicate": f"attr{index % PREDICATES_PER_SUBJECT}",
        "value": fact_value(index),
    }


def fillers(agent: str, start: int, stop: int) -> Iterator[Claim]:
    for index in range(start, stop):
        yield filler(agent, index)


def fresh(agent: str, tag: str, index: int) -> Claim:
    """A claim on a new line (measured ingests that must not touch existing lines)."""
    return {
        "agent_id": agent,
        "subject": f"{tag}{index}",
        "predicate": "note",
        "value": fact_value(index),
    }


def window(position: int) -> tuple[datetime, datetime]:
    start = WINDOW_BASE + position * WINDOW_STEP
    return start, start + WINDOW_STEP


def succession(agent: str, line: int, position: int) -> Claim:
    """Claim `position` of long line `line`: a new value with the next trusted one-hour window.

    Each claim closes cleanly after the previous one (reference rule E3, succession), so a line
    can grow to any length without becoming Contested, in both engines.
    """
    start, end = window(position)
    return {
        "agent_id": agent,
        "subject": f"timeline{line}",
        "predicate": "location",
        "value": fact_value(position),
        "valid_time": {"start": iso(start), "end": iso(end)},
        "valid_time_confidence": TRUSTED,
    }


def line_query(agent: str, line: int, length: int) -> dict[str, Any]:
    """A query of long line `line` at the middle of its newest window."""
    start, _ = window(length - 1)
    return {
        "agent_id": agent,
        "subject": f"timeline{line}",
        "predicate": "location",
        "valid_at": iso(start + WINDOW_STEP / 2),
    }


def filler_query(agent: str, index: int) -> dict[str, Any]:
    """A query of the (one-claim) line of filler claim `index`, at now."""
    claim = filler(agent, index)
    return {
        "agent_id": agent,
        "subject": claim["subject"],
        "predicate": claim["predicate"],
        "valid_at": None,
    }


_USER = {"type": "External", "kind": "UserAsserted"}


def to_reference(claim: Claim) -> Claim:
    """The same claim in the published wheel's `ingest_claim` shape."""
    window_in = claim.get("valid_time")
    time_confidence = float(claim.get("valid_time_confidence", 0.0 if window_in is None else 1.0))
    window_out = None
    if window_in is not None:
        window_out = {
            "start": window_in.get("start"),
            "end": window_in.get("end"),
            "valid_time_confidence": time_confidence,
        }
    return {
        "agent_id": claim["agent_id"],
        "subject": claim["subject"],
        "predicate": claim["predicate"],
        "value": claim["value"],
        "provenance": _USER,
        "cardinality": "Functional",
        "valid_time": window_out,
        "confidence": {
            "value_confidence": float(claim.get("value_confidence", 1.0)),
            "valid_time_confidence": time_confidence,
        },
        "criticality": "Medium",
        "derived_from": [],
    }
