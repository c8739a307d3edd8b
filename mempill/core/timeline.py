"""A line's belief across valid time (pure): the fold at one instant of each range.

The fold's belief at a valid instant changes only where some claim's effective window
starts or ends (its containment tests are the only place the instant enters). So the
range is cut at every window edge inside it, each piece is folded at one instant of it,
and neighbours with equal beliefs (status and candidates) are merged.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from mempill.core.canonical import canonical_json
from mempill.core.config import EngineConfig
from mempill.core.fold import project
from mempill.core.line import Line
from mempill.core.model import plain
from mempill.core.travel import Segment

MICROSECOND = timedelta(microseconds=1)


def segments(
    line: Line,
    *,
    agent_id: str,
    subject: str,
    predicate: str,
    as_of: datetime | None,
    valid_from: datetime | None,
    valid_until: datetime | None,
    now: datetime,
    config: EngineConfig,
) -> tuple[Segment, ...]:
    """The segments of `[valid_from, valid_until)` (None: open), in order, merged."""
    edges = sorted(
        {
            edge
            for view in line.views()
            for edge in (view.window_from, view.window_until)
            if edge is not None
            and (valid_from is None or edge > valid_from)
            and (valid_until is None or edge < valid_until)
        }
    )
    found: list[Segment] = []
    keys: list[str] = []
    for start, end in zip([valid_from, *edges], [*edges, valid_until], strict=True):
        if start is not None:
            probe = start
        elif end is not None:
            if end == datetime.min.replace(tzinfo=end.tzinfo):
                continue  # nothing is valid before the first representable instant
            probe = end - MICROSECOND
        else:
            probe = as_of or now
        belief = project(
            line,
            agent_id=agent_id,
            subject=subject,
            predicate=predicate,
            as_of=as_of,
            valid_at=probe,
            now=now,
            config=config,
        )
        key = canonical_json(plain([belief.status, belief.candidates]))
        if found and keys[-1] == key:
            last = found[-1]
            found[-1] = Segment(
                valid_from=last.valid_from,
                valid_until=end,
                status=last.status,
                value=last.value,
                candidates=last.candidates,
            )
            continue
        keys.append(key)
        found.append(
            Segment(
                valid_from=start,
                valid_until=end,
                status=belief.status,
                value=belief.value,
                candidates=belief.candidates,
            )
        )
    return tuple(found)
