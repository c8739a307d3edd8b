"""Time handling: the fixed-width tx-time text, the lenient date parser, display strings."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta

from mempill.core.enums import Granularity
from mempill.errors import ValidationError

MICROSECOND = timedelta(microseconds=1)
#: Upper sentinel for "no tx-time filter": later than any storable instant.
END_OF_TIME = datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC)
BEGINNING_OF_TIME = datetime(1, 1, 1, tzinfo=UTC)

_PARTIAL = re.compile(r"^(\d{4})(?:-(\d{2})(?:-(\d{2}))?)?$")
_RFC3339 = re.compile(
    r"^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}(?::\d{2})?(?:\.\d+)?(?:[Zz]|[+-]\d{2}:?\d{2})$"
)


def utc(moment: datetime, what: str) -> datetime:
    """An aware datetime converted to UTC; a naive one is a ValidationError, and so is one
    whose time zone misbehaves (its `utcoffset` raises or is not a valid offset) or that
    leaves years 1-9999 in UTC."""
    if not isinstance(moment, datetime):
        raise ValidationError(f"{what}: expected a datetime, got {type(moment).__name__}")
    shown = moment.replace(tzinfo=None).isoformat()
    try:
        offset = None if moment.tzinfo is None else moment.utcoffset()
        if offset is None:
            raise ValidationError(f"{what}: {shown} has no time zone")
        converted = moment.astimezone(UTC)
    except OverflowError as e:
        raise ValidationError(f"{what}: {shown} is out of range in UTC") from e
    except ValidationError:
        raise
    except Exception as e:  # the caller's tzinfo code: whatever it raises, the input is bad
        raise ValidationError(f"{what}: the time zone of {shown} failed: {e!r}"[:300]) from e
    if type(converted) is not datetime:  # a subclass may carry behaviour of its own
        c = converted
        converted = datetime(
            c.year, c.month, c.day, c.hour, c.minute, c.second, c.microsecond, tzinfo=UTC
        )
    return converted


def format_tx(moment: datetime) -> str:
    """Fixed-width UTC text `YYYY-MM-DDTHH:MM:SS.ffffffZ` (sorts chronologically)."""
    if moment.tzinfo is not UTC:
        moment = moment.astimezone(UTC)
    return moment.isoformat(timespec="microseconds")[:-6] + "Z"  # drops "+00:00"


def parse_tx(text: str) -> datetime:
    """Inverse of `format_tx` (fromisoformat is fast and reads the `Z`)."""
    return datetime.fromisoformat(text)


def parse_lenient(value: str | date | datetime, what: str) -> tuple[datetime, Granularity]:
    """`2020`, `2020-03`, `2020-03-15`, RFC 3339 text, a date or an aware datetime.

    Partial dates snap to the start of their period; the granularity remembers the
    precision the caller wrote, for display only.
    """
    if isinstance(value, datetime):
        return utc(value, what), Granularity.INSTANT
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day, tzinfo=UTC), Granularity.DAY
    if not isinstance(value, str):
        raise ValidationError(f"{what}: expected a date string, got {type(value).__name__}")
    text = value.strip()
    shown = _show(value)
    partial = _PARTIAL.match(text) if len(text) <= 64 else None
    if partial is None and (len(text) > 64 or _RFC3339.match(text) is None):
        raise ValidationError(
            f"{what}: {shown} is not a date; use YYYY, YYYY-MM, YYYY-MM-DD or RFC 3339"
        )
    try:
        if partial:
            year, month, day = partial.groups()
            moment = datetime(int(year), int(month or 1), int(day or 1), tzinfo=UTC)
            granularity = (
                Granularity.DAY if day else Granularity.MONTH if month else Granularity.YEAR
            )
            return moment, granularity
        # the pattern has vouched for the shape; ISO parsing cuts digits beyond the µs
        parsed = datetime.fromisoformat(text.upper())
    except ValueError as e:
        raise ValidationError(f"{what}: {shown} is not a valid date ({e})") from e
    return utc(parsed, what), Granularity.INSTANT


def _show(value: str) -> str:
    """Caller text for an error message, cut short."""
    return repr(value if len(value) <= 60 else value[:60] + "…")


def display(moment: datetime | None, granularity: Granularity | None) -> str | None:
    """`2020` for a year, `2020-03` for a month, `2020-03-15` for a day or an instant."""
    if moment is None:
        return None
    if granularity is Granularity.YEAR:
        return f"{moment.year:04d}"
    if granularity is Granularity.MONTH:
        return f"{moment.year:04d}-{moment.month:02d}"
    return f"{moment.year:04d}-{moment.month:02d}-{moment.day:02d}"


def rfc3339(moment: datetime | None) -> str | None:
    """RFC 3339 text with a `Z` suffix, microsecond precision."""
    return None if moment is None else format_tx(moment)


def earlier(moment: datetime, seconds: float) -> datetime:
    """`moment` minus `seconds`, or the first instant when that lies before year 1 (an
    injected clock in antiquity): a window reaching back that far covers everything."""
    try:
        return moment - timedelta(seconds=seconds)
    except OverflowError:
        return BEGINNING_OF_TIME
