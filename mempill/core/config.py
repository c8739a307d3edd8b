"""Engine configuration (reference §3): frozen, validated, every field used."""

from __future__ import annotations

import reprlib
from dataclasses import dataclass

from mempill.core.enums import Criticality
from mempill.errors import ConfigError

#: Durations are capped at a century, so every date the engine computes from one (an
#: expiry, the start of a burst window, an ageing threshold doubled) stays within years
#: 1-9999 and the arithmetic cannot overflow.
MAX_DAYS = 36_525
MAX_SECONDS = MAX_DAYS * 86_400
#: The largest `max_value_bytes`: a value (and the adjudication request that quotes it)
#: must stay far below PostgreSQL's 1 GB field and 256 MB jsonb limits.
MAX_VALUE_BYTES_CAP = 16 * 1024 * 1024


@dataclass(frozen=True, slots=True, kw_only=True)
class EngineConfig:
    valid_time_confidence_threshold: float = 0.7
    low_confidence_threshold: float = 0.3
    criticality_overturn_floor: Criticality = Criticality.HIGH
    corroboration_count_for_currency_boost: int = 2
    aging_unconfirmed_threshold_days: float = 30
    decayed_threshold_days: float = 90
    quarantine_burst_threshold: int = 10
    burst_window_seconds: float = 60
    derivation_depth_cap_for_overturning: int = 2
    derivation_depth_cap_for_currency_boost: int = 3
    default_adjudication_ttl_seconds: float | None = None
    max_value_bytes: int = 65536

    def __post_init__(self) -> None:
        for name in ("valid_time_confidence_threshold", "low_confidence_threshold"):
            value = getattr(self, name)
            number = isinstance(value, (int, float)) and not isinstance(value, bool)
            if not (number and 0.0 <= value <= 1.0):
                raise ConfigError(f"{name} must be a number in [0, 1], got {_show(value)}")
        floor = self.criticality_overturn_floor
        if not isinstance(floor, str) or floor not in {c.value for c in Criticality}:
            raise ConfigError(
                f"criticality_overturn_floor must be a Criticality, got {_show(floor)}"
            )
        object.__setattr__(self, "criticality_overturn_floor", Criticality(floor))
        positive_ints = (
            "corroboration_count_for_currency_boost",
            "quarantine_burst_threshold",
            "max_value_bytes",
        )
        for name in positive_ints:
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(f"{name} must be an integer >= 1, got {_show(value)}")
        if self.max_value_bytes > MAX_VALUE_BYTES_CAP:
            raise ConfigError(
                f"max_value_bytes must be at most {MAX_VALUE_BYTES_CAP:,}, "
                f"got {_show(self.max_value_bytes)}"
            )
        for name in (
            "derivation_depth_cap_for_overturning",
            "derivation_depth_cap_for_currency_boost",
        ):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ConfigError(f"{name} must be an integer >= 0, got {_show(value)}")
        for name in ("aging_unconfirmed_threshold_days", "decayed_threshold_days"):
            _duration(name, getattr(self, name), MAX_DAYS, "days")
        _duration("burst_window_seconds", self.burst_window_seconds, MAX_SECONDS, "seconds")
        if self.decayed_threshold_days < self.aging_unconfirmed_threshold_days:
            raise ConfigError("decayed_threshold_days must be >= aging_unconfirmed_threshold_days")
        if self.default_adjudication_ttl_seconds is not None:
            _duration(
                "default_adjudication_ttl_seconds",
                self.default_adjudication_ttl_seconds,
                MAX_SECONDS,
                "seconds",
            )


def _duration(name: str, value: object, most: int, unit: str) -> None:
    """A finite number > 0 and at most a century (in `unit`)."""
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float))
        or not 0 < value <= most  # NaN fails it; a huge int too, without overflowing a float
    ):
        raise ConfigError(
            f"{name} must be a finite number > 0 and at most {most:,} {unit} (a century), "
            f"got {_show(value)}"
        )


def _show(value: object) -> str:
    """A short repr of a configured value (a huge integer is not written out)."""
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > 64:
        return f"an integer of {value.bit_length()} bits"
    try:
        text = reprlib.repr(value)  # bounded in length and depth
    except Exception:  # a repr that fails (or recurses) is no reason to fail differently
        return f"a {type(value).__name__}"
    return text if len(text) <= 80 else text[:80] + "…"
