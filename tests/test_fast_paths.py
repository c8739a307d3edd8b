"""The hot paths' hand-made shortcuts give exactly what the standard library gives.

`canonical_json` reuses one encoder made once; `format_tx` formats with `isoformat`;
`random_ids` formats 16 random bytes as a UUID. Each is checked against the slow, obvious
form on every value the contract allows (hypothesis), byte for byte.
"""

from __future__ import annotations

import json
import time
import uuid
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mempill.core.canonical import canonical_json
from mempill.core.dates import format_tx
from mempill.ids import random_ids, time_ordered_ids

TEXT = st.text(st.characters(codec="utf-8"))  # no lone surrogates (rule V refuses them)
JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**300), max_value=10**300)
    | st.floats(allow_nan=False, allow_infinity=False)
    | TEXT,
    lambda inner: st.lists(inner, max_size=6) | st.dictionaries(TEXT, inner, max_size=6),
    max_leaves=40,
)


def slow_canonical(value: object) -> str:
    return json.dumps(
        value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    )


@settings(max_examples=500, deadline=None)
@given(JSON)
def test_canonical_json_is_json_dumps_byte_for_byte(value: object) -> None:
    assert canonical_json(value) == slow_canonical(value)
    assert json.loads(canonical_json(value)) == value


@pytest.mark.parametrize(
    ("bad", "error"),
    [(float("nan"), ValueError), ([float("inf")], ValueError), ({1, 2}, TypeError)],
)
def test_canonical_json_refuses_what_json_dumps_refuses(bad: object, error: type) -> None:
    with pytest.raises(error):
        slow_canonical(bad)
    with pytest.raises(error):
        canonical_json(bad)


def slow_format(moment: datetime) -> str:
    moment = moment.astimezone(UTC)
    return f"{moment.year:04d}-{moment:%m-%dT%H:%M:%S}.{moment.microsecond:06d}Z"


@settings(max_examples=500, deadline=None)
@given(
    st.datetimes(
        min_value=datetime(2, 1, 1), max_value=datetime(9998, 12, 31), timezones=st.just(UTC)
    ),
    st.integers(min_value=-23 * 60, max_value=23 * 60),
)
def test_format_tx_is_the_fixed_width_formula(moment: datetime, offset_minutes: int) -> None:
    assert format_tx(moment) == slow_format(moment)
    shifted = moment.astimezone(timezone(timedelta(minutes=offset_minutes)))
    assert format_tx(shifted) == slow_format(moment)
    assert len(format_tx(moment)) == len("2026-01-01T00:00:00.000000Z")


def test_time_ordered_ids_are_uuid7_text_in_the_order_they_were_made() -> None:
    """RFC 9562 version 7: the Unix milliseconds, the sub-millisecond fraction in 12 bits,
    random bits; distinct, and ids made at least a microsecond apart sort in that order."""
    made = []
    for _ in range(2_000):
        before = time.time_ns()
        text = time_ordered_ids()
        after = time.time_ns()
        parsed = uuid.UUID(text)
        assert str(parsed) == text and parsed.version == 7 and parsed.variant == uuid.RFC_4122
        ms = parsed.int >> 80
        assert before // 1_000_000 <= ms <= after // 1_000_000
        fraction = (parsed.int >> 64) & 0xFFF  # rand_a: the sub-millisecond fraction
        if before // 1_000_000 == after // 1_000_000 == ms:
            below = (before % 1_000_000 * 4096 // 1_000_000, after % 1_000_000 * 4096 // 1_000_000)
            assert below[0] <= fraction <= below[1]
        made.append(text)
        end = time.perf_counter_ns() + 1_000
        while time.perf_counter_ns() < end:  # a microsecond apart: ≥ 4 steps of 1/4096 ms
            pass
    assert made == sorted(made) and len(set(made)) == len(made)


def test_random_ids_are_uuid4_text() -> None:
    seen = set()
    for _ in range(5_000):
        text = random_ids()
        parsed = uuid.UUID(text)
        assert str(parsed) == text and parsed.version == 4 and parsed.variant == uuid.RFC_4122
        seen.add(text)
    assert len(seen) == 5_000
