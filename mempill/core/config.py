"""Engine configuration (reference §3): frozen, validated, every field used."""

from __future__ import annotations

import math
from dataclasses import dataclass

from mempill.core.enums import Criticality
from mempill.errors import ConfigError


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
            if not (isinstance(value, (int, float)) and 0.0 <= value <= 1.0):
                raise ConfigError(f"{name} must be a number in [0, 1], got {value!r}")
        try:
            object.__setattr__(
                self, "criticality_overturn_floor", Criticality(self.criticality_overturn_floor)
            )
        except ValueError as e:
            raise ConfigError(
                "criticality_overturn_floor must be a Criticality, "
                f"got {self.criticality_overturn_floor!r}"
            ) from e
        positive_ints = (
            "corroboration_count_for_currency_boost",
            "quarantine_burst_threshold",
            "max_value_bytes",
        )
        for name in positive_ints:
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(f"{name} must be an integer >= 1, got {value!r}")
        for name in (
            "derivation_depth_cap_for_overturning",
            "derivation_depth_cap_for_currency_boost",
        ):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ConfigError(f"{name} must be an integer >= 0, got {value!r}")
        positive_numbers = (
            "aging_unconfirmed_threshold_days",
            "decayed_threshold_days",
            "burst_window_seconds",
        )
        for name in positive_numbers:
            _positive(name, getattr(self, name))
        if self.decayed_threshold_days < self.aging_unconfirmed_threshold_days:
            raise ConfigError("decayed_threshold_days must be >= aging_unconfirmed_threshold_days")
        if self.default_adjudication_ttl_seconds is not None:
            _positive("default_adjudication_ttl_seconds", self.default_adjudication_ttl_seconds)


def _positive(name: str, value: object) -> None:
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float))
        or not math.isfinite(value)
        or value <= 0
    ):
        raise ConfigError(f"{name} must be a finite number > 0, got {value!r}")
