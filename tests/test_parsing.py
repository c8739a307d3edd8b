"""The pure parsers and the configuration, each accepted spelling and each boundary (reference §2,
§3): lenient dates, valid-time mappings, provenance forms, enum names, EngineConfig limits."""

from __future__ import annotations

import math
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any

import pytest

from mempill import (
    Cardinality,
    ConfigError,
    Criticality,
    EngineConfig,
    Granularity,
    Provenance,
    ValidationError,
)
from mempill.core import parse
from mempill.core.dates import display, format_tx, parse_lenient, parse_tx, rfc3339, utc

G = Granularity


# ---------------------------------------------------------------- lenient dates


@pytest.mark.parametrize(
    ("text", "moment", "granularity"),
    [
        ("2020", datetime(2020, 1, 1, tzinfo=UTC), G.YEAR),
        ("0001", datetime(1, 1, 1, tzinfo=UTC), G.YEAR),
        ("9999-12", datetime(9999, 12, 1, tzinfo=UTC), G.MONTH),
        ("2020-03", datetime(2020, 3, 1, tzinfo=UTC), G.MONTH),
        ("2020-03-15", datetime(2020, 3, 15, tzinfo=UTC), G.DAY),
        (" 2020-03-15 ", datetime(2020, 3, 15, tzinfo=UTC), G.DAY),
        ("2020-03-15T10:30Z", datetime(2020, 3, 15, 10, 30, tzinfo=UTC), G.INSTANT),
        ("2020-03-15T10:30:05Z", datetime(2020, 3, 15, 10, 30, 5, tzinfo=UTC), G.INSTANT),
        ("2020-03-15 10:30:05z", datetime(2020, 3, 15, 10, 30, 5, tzinfo=UTC), G.INSTANT),
        ("2020-03-15t10:30:05Z", datetime(2020, 3, 15, 10, 30, 5, tzinfo=UTC), G.INSTANT),
        ("2020-03-15T10:30:05.5Z", datetime(2020, 3, 15, 10, 30, 5, 500000, tzinfo=UTC), G.INSTANT),
        ("2020-03-15T10:30:05.000001Z", datetime(2020, 3, 15, 10, 30, 5, 1, tzinfo=UTC), G.INSTANT),
        (
            "2020-03-15T10:30:05.1234567Z",
            datetime(2020, 3, 15, 10, 30, 5, 123456, tzinfo=UTC),
            G.INSTANT,
        ),
        ("2020-03-15T12:30:05+02:00", datetime(2020, 3, 15, 10, 30, 5, tzinfo=UTC), G.INSTANT),
        ("2020-03-15T12:30:05+0200", datetime(2020, 3, 15, 10, 30, 5, tzinfo=UTC), G.INSTANT),
        ("2020-03-15T08:30:05-02:00", datetime(2020, 3, 15, 10, 30, 5, tzinfo=UTC), G.INSTANT),
    ],
)
def test_lenient_dates(text: str, moment: datetime, granularity: Granularity) -> None:
    parsed, written = parse_lenient(text, "at")
    assert (parsed, written) == (moment, granularity)
    assert parsed.tzinfo is UTC


@pytest.mark.parametrize(
    "text",
    ["0000", "2020-13", "2020-02-30", "2020-1", "20200", "2020-03-15T25:00Z", "2020-03-15T10:30",
     "yesterday", "", "2020-03-15T10:30:05.Z", "9999-12-31T23:59:59-01:00"],
)  # fmt: skip
def test_what_is_not_a_date_names_the_input(text: str) -> None:
    with pytest.raises(ValidationError, match=r"^when: "):
        parse_lenient(text, "when")


def test_dates_and_datetimes_are_taken_as_they_are() -> None:
    assert parse_lenient(date(2020, 3, 15), "at") == (datetime(2020, 3, 15, tzinfo=UTC), G.DAY)
    cet = timezone(timedelta(hours=1))
    assert parse_lenient(datetime(2020, 3, 15, 1, tzinfo=cet), "at") == (
        datetime(2020, 3, 15, tzinfo=UTC),
        G.INSTANT,
    )
    with pytest.raises(ValidationError, match=r"^at: 2020-03-15T00:00:00 has no time zone"):
        parse_lenient(datetime(2020, 3, 15), "at")
    with pytest.raises(ValidationError, match=r"^at: expected a date string, got int"):
        parse_lenient(2020, "at")  # type: ignore[arg-type]


def test_utc_refuses_what_it_cannot_place() -> None:
    assert utc(datetime(2020, 1, 1, tzinfo=UTC), "at") == datetime(2020, 1, 1, tzinfo=UTC)
    with pytest.raises(ValidationError, match=r"^x: expected a datetime, got str"):
        utc("2020", "x")  # type: ignore[arg-type]
    far = datetime(9999, 12, 31, 23, tzinfo=timezone(timedelta(hours=-2)))
    with pytest.raises(ValidationError, match=r"^x: .* is out of range"):
        utc(far, "x")


def test_tx_time_text_is_fixed_width_and_round_trips() -> None:
    moment = datetime(5, 1, 2, 3, 4, 5, 6, tzinfo=UTC)
    assert format_tx(moment) == "0005-01-02T03:04:05.000006Z"
    assert parse_tx(format_tx(moment)) == moment
    cet = timezone(timedelta(hours=1))
    assert format_tx(datetime(2020, 1, 1, 1, tzinfo=cet)) == "2020-01-01T00:00:00.000000Z"
    assert rfc3339(None) is None and rfc3339(moment) == format_tx(moment)


@pytest.mark.parametrize(
    ("granularity", "shown"),
    [
        (G.YEAR, "0999"),
        (G.MONTH, "0999-04"),
        (G.DAY, "0999-04-05"),
        (G.INSTANT, "0999-04-05"),
        (None, "0999-04-05"),
    ],
)
def test_display_follows_the_granularity(granularity: Granularity | None, shown: str) -> None:
    assert display(datetime(999, 4, 5, 6, tzinfo=UTC), granularity) == shown
    assert display(None, granularity) is None


# ---------------------------------------------------------------- valid-time mappings


def test_valid_time_spellings() -> None:
    start, end = datetime(2020, 1, 1, tzinfo=UTC), datetime(2021, 6, 1, tzinfo=UTC)
    long_names = parse.valid_time({"valid_from": "2020", "valid_until": "2021-06"})
    short_names = parse.valid_time({"start": "2020", "end": "2021-06"})
    assert long_names == short_names
    assert long_names is not None
    assert (long_names.valid_from, long_names.valid_until) == (start, end)
    assert (long_names.from_granularity, long_names.until_granularity) == (G.YEAR, G.MONTH)
    assert parse.valid_time({"valid_from": "2020", "start": "1999"}).valid_from == start  # type: ignore[union-attr]
    assert parse.valid_time(None) is None
    assert parse.valid_time({}) == parse.valid_time({"start": None, "end": None})


def test_granularities_given_beside_the_dates() -> None:
    told = parse.valid_time(
        {
            "start": "2020-03-15T00:00:00Z",
            "end": "2021",
            "start_granularity": "month",
            "end_granularity": "DAY",
        }
    )
    assert told is not None and (told.from_granularity, told.until_granularity) == (G.MONTH, G.DAY)
    other = parse.valid_time(
        {"start": "2020", "from_granularity": "day", "until_granularity": "year"}
    )
    assert other is not None and (other.from_granularity, other.until_granularity) == (G.DAY, None)
    preferred = parse.valid_time(
        {"end": "2021", "end_granularity": "year", "until_granularity": "day"}
    )
    assert preferred is not None and preferred.until_granularity is G.YEAR


# ---------------------------------------------------------------- provenance and enums


@pytest.mark.parametrize(
    ("written", "provenance"),
    [
        ("External:UserAsserted", Provenance.USER_ASSERTED),
        ("external/userasserted", Provenance.USER_ASSERTED),
        ("UserAsserted", Provenance.USER_ASSERTED),
        (" External : User Asserted ", Provenance.USER_ASSERTED),
        ("External:ExternalFirstHand", Provenance.EXTERNAL_FIRST_HAND),
        ("EXTERNAL/EXTERNALFIRSTHAND", Provenance.EXTERNAL_FIRST_HAND),
        ("ExternalFirstHand", Provenance.EXTERNAL_FIRST_HAND),
        ("RecallReEntry", Provenance.RECALL_RE_ENTRY),
        ("Model Derived", Provenance.MODEL_DERIVED),
        ({"type": "External", "kind": "UserAsserted"}, Provenance.USER_ASSERTED),
        ({"type": "External", "kind": "ExternalFirstHand"}, Provenance.EXTERNAL_FIRST_HAND),
        ({"type": "ModelDerived"}, Provenance.MODEL_DERIVED),
        ({"type": "RecallReEntry", "kind": None}, Provenance.RECALL_RE_ENTRY),
        (Provenance.MODEL_DERIVED, Provenance.MODEL_DERIVED),
    ],
)
def test_provenance_forms(written: Any, provenance: Provenance) -> None:
    assert parse.provenance(written) is provenance


@pytest.mark.parametrize(
    "written",
    ["External", "Gossip", "", {"type": "External"}, {"type": 1}, {"kind": "UserAsserted"},
     {"type": "External", "kind": 2}, {"type": "External", "kind": "Hearsay"}, None, 3],
)  # fmt: skip
def test_what_is_not_a_provenance(written: Any) -> None:
    with pytest.raises(ValidationError, match=r"^source: "):
        parse.provenance(written, "source")


def test_enums_by_value_or_name_any_case() -> None:
    assert parse.enum(Cardinality, "SetValued", "c") is Cardinality.SET_VALUED
    assert parse.enum(Cardinality, " set_valued ", "c") is Cardinality.SET_VALUED
    assert parse.enum(Criticality, "CRITICAL", "c") is Criticality.CRITICAL
    assert parse.enum(Criticality, Criticality.LOW, "c") is Criticality.LOW
    with pytest.raises(
        ValidationError, match=r"^c: 'Severe' is not one of Low, Medium, High, Critical$"
    ):
        parse.enum(Criticality, "Severe", "c")
    with pytest.raises(ValidationError, match=r"^c: 2 is not one of"):
        parse.enum(Criticality, 2, "c")


def test_ids_and_refs() -> None:
    ref = "A5E5C9D4-3B8F-4E2A-9C1D-7F6E5D4C3B2A"
    assert parse.claim_ref(ref) == ref.lower()
    assert parse.claim_ref("a5e5c9d43b8f4e2a9c1d7f6e5d4c3b2a") == ref.lower()
    assert parse.parent_ref(ref) == ref.lower()
    assert parse.parent_ref("not-a-uuid") == "not-a-uuid"  # only ever an unknown parent
    for good in ("a", "A-b_c.9", "x" * 128, "a.", "-a"):
        assert parse.agent_id(good) == good
    for bad in (".a", "x" * 129, "", "a b", "a/b", "ä", None):
        with pytest.raises(ValidationError, match=r"^agent_id: "):
            parse.agent_id(bad)
    assert parse.show("x" * 100) == "'" + "x" * 27 + "..." + "x" * 28 + "'"  # 60 characters


def test_numbers_refuse_booleans_and_text() -> None:
    assert parse.number(1, "n") == 1.0 and isinstance(parse.number(1, "n"), float)
    for bad in (True, "1", None, [1]):
        with pytest.raises(ValidationError, match=r"^n: expected a number"):
            parse.number(bad, "n")


# ---------------------------------------------------------------- configuration


@pytest.mark.parametrize("name", ["valid_time_confidence_threshold", "low_confidence_threshold"])
def test_thresholds_are_numbers_in_the_closed_unit_interval(name: str) -> None:
    for good in (0, 0.0, 0.5, 1, 1.0):
        assert getattr(EngineConfig(**{name: good}), name) == good
    for bad in (-0.01, 1.01, 2, math.nan, "0.5", None):
        with pytest.raises(ConfigError, match=rf"^{name} must be a number in"):
            EngineConfig(**{name: bad})


@pytest.mark.parametrize(
    ("name", "least"),
    [
        ("corroboration_count_for_currency_boost", 1),
        ("quarantine_burst_threshold", 1),
        ("max_value_bytes", 1),
        ("derivation_depth_cap_for_overturning", 0),
        ("derivation_depth_cap_for_currency_boost", 0),
    ],
)
def test_integer_settings_have_a_floor(name: str, least: int) -> None:
    assert getattr(EngineConfig(**{name: least}), name) == least
    assert getattr(EngineConfig(**{name: least + 5}), name) == least + 5
    for bad in (least - 1, True, 1.5, "3", None):
        with pytest.raises(ConfigError, match=rf"^{name} must be an integer >= {least}"):
            EngineConfig(**{name: bad})


@pytest.mark.parametrize(
    "name",
    [
        "aging_unconfirmed_threshold_days",
        "burst_window_seconds",
        "default_adjudication_ttl_seconds",
    ],
)
def test_durations_are_finite_and_positive(name: str) -> None:
    for good in (1e-9, 1, 0.5):
        extra = {"decayed_threshold_days": 1e-9} if name.startswith("aging") else {}
        if name.startswith("aging"):
            extra = {"decayed_threshold_days": good}
        assert getattr(EngineConfig(**{name: good, **extra}), name) == good
    for bad in (0, -1, math.inf, math.nan, True, "1"):
        with pytest.raises(ConfigError, match=rf"^{name} must be a finite number > 0"):
            EngineConfig(**{name: bad})


def test_decay_comes_no_sooner_than_ageing() -> None:
    same = EngineConfig(aging_unconfirmed_threshold_days=10, decayed_threshold_days=10)
    assert same.decayed_threshold_days == 10
    with pytest.raises(ConfigError, match=r"^decayed_threshold_days must be >= aging"):
        EngineConfig(aging_unconfirmed_threshold_days=10, decayed_threshold_days=9.99)
    with pytest.raises(ConfigError, match=r"^decayed_threshold_days must be a finite number"):
        EngineConfig(decayed_threshold_days=0)
    assert EngineConfig().default_adjudication_ttl_seconds is None


def test_the_criticality_floor_is_a_criticality() -> None:
    assert (
        EngineConfig(criticality_overturn_floor="Critical").criticality_overturn_floor
        is Criticality.CRITICAL
    )  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match=r"^criticality_overturn_floor must be a Criticality"):
        EngineConfig(criticality_overturn_floor="Severe")  # type: ignore[arg-type]
