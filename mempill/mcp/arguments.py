"""The argument types of the MCP tools: each one's JSON schema and the words an agent reads.

The SDK derives every tool's input schema from these annotations with pydantic, so
the descriptions here are what an agent sees when it decides how to call a tool.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field

DATES = "YYYY, YYYY-MM, YYYY-MM-DD or RFC 3339 (e.g. 2024-05-01T12:00:00Z)"
Subject = Annotated[
    str, Field(description="What the fact is about, e.g. 'user', 'user.sister', 'project:apollo'.")
]
Predicate = Annotated[
    str, Field(description="Which property of the subject, e.g. 'home_city', 'employer'.")
]
Value = Annotated[
    Any,
    Field(
        description="The value: any JSON (string, number, boolean, null, array, object). "
        "Two values are the same when their canonical JSON is the same (1 and 1.0 differ)."
    ),
]
ValidFrom = Annotated[
    str | None,
    Field(description=f"When the fact started being true in the world ({DATES}). Omit if unknown."),
]
ValidUntil = Annotated[
    str | None,
    Field(description=f"When it stopped being true ({DATES}); exclusive. Omit if still true."),
]
AsOf = Annotated[
    str | None,
    Field(
        description=f"Transaction time ({DATES}), or a snapshot token from the snapshot tool: "
        "answer with what mempill believed at that moment (or snapshot), ignoring everything "
        "recorded later. Omit for now."
    ),
]
ValidAt = Annotated[
    str | None,
    Field(
        description=f"Valid time ({DATES}): which value was true in the world at that moment. "
        "Omit for the same instant as as_of (default now)."
    ),
]
Confidence = Annotated[
    float, Field(ge=0.0, le=1.0, description="How sure the source is of the value, 0 to 1.")
]
CardinalityArg = Annotated[
    Literal["Functional", "SetValued", "Unknown"],
    Field(
        description="Functional: one value at a time (a new different value contradicts). "
        "SetValued: many values at once (e.g. 'speaks_language'). Unknown: treated as Functional."
    ),
]
CriticalityArg = Annotated[
    Literal["Low", "Medium", "High", "Critical"],
    Field(
        description="How costly a wrong value would be. High and Critical values are only "
        "overturned by claims at least as confident."
    ),
]
TimeConfidence = Annotated[
    float | None,
    Field(
        ge=0.0,
        le=1.0,
        description="How sure the source is of valid_from/valid_until, 0 to 1 (default 1 when "
        "a window is given). Below 0.7 the window is not trusted.",
    ),
]
DerivedFrom = Annotated[
    list[str] | None,
    Field(description="claim_refs this claim was derived from (ModelDerived, RecallReEntry)."),
]
EndAt = Annotated[
    str | None, Field(description=f"When the fact stopped being true ({DATES}). Omit for now.")
]
EndValue = Annotated[
    Any, Field(description="Which believed value to end, when several are (Contested or a set).")
]
EndRef = Annotated[
    str | None,
    Field(description="Or the claim_ref (from recall or history) of the claim to end."),
]
ProvenanceArg = Annotated[
    str | dict[str, str],
    Field(
        description="Where the claim comes from: 'External:UserAsserted' (the user said it), "
        "'External:ExternalFirstHand' (a document, tool or sensor saw it first-hand), "
        "'ModelDerived' (your own inference; list its sources in derived_from), "
        "'RecallReEntry' (a value you recalled from mempill and are writing back; derived_from "
        "must name the recalled claim). The dict form {'type': 'External', 'kind': "
        "'UserAsserted'} is accepted too."
    ),
]
RangeFrom = Annotated[
    str | None,
    Field(
        description=f"Start of the valid-time range to describe ({DATES}). Omit: from the "
        "beginning of time."
    ),
]
RangeUntil = Annotated[
    str | None,
    Field(description=f"End of the valid-time range, exclusive ({DATES}). Omit: open-ended."),
]
Since = Annotated[
    str | None,
    Field(
        description=f"Only changes recorded after this transaction time ({DATES}) or after this "
        "snapshot token. Omit (and omit after) for every change since the first write."
    ),
]
Until = Annotated[
    str | None,
    Field(
        description=f"Only changes recorded up to this transaction time ({DATES}) or snapshot "
        "token, inclusive. Omit for up to now."
    ),
]
After = Annotated[
    str | None,
    Field(
        description="A snapshot token (from the snapshot tool): only changes recorded after it. "
        "Use instead of since to catch up exactly from where you took the snapshot."
    ),
]
OptionalSubject = Annotated[
    str | None, Field(description="Only changes to this subject. Omit for every subject.")
]
OptionalPredicate = Annotated[
    str | None,
    Field(description="Only changes to this predicate of the subject (give subject too)."),
]
