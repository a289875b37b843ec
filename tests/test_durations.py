"""Tests of vault.durations: durations and ISO dates as typed by users."""

from __future__ import annotations

import contextlib
import datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vault.durations import (
    MAX_DURATION,
    day_of,
    format_duration,
    moment_of,
    parse_date,
    parse_duration,
    parse_when,
)
from vault.errors import InvalidInput

td = datetime.timedelta


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("90d", td(days=90)),
        ("12h", td(hours=12)),
        ("30m", td(minutes=30)),
        ("2w", td(weeks=2)),
        ("45s", td(seconds=45)),
        ("90", td(days=90)),
        (" 7D ", td(days=7)),
        ("3 h", td(hours=3)),
        ("36525d", MAX_DURATION),
    ],
)
def test_parse_duration_accepted_forms(text: str, expected: datetime.timedelta) -> None:
    assert parse_duration(text) == expected


@pytest.mark.parametrize(
    "text",
    ["", "abc", "d", "1.5d", "-1d", "+1d", "1y", "3mo", "1d12h", "P90D", "\u0669\u0660d", "9 0d"],
)
def test_parse_duration_bad_form_names_accepted_forms(text: str) -> None:
    with pytest.raises(InvalidInput) as info:
        parse_duration(text)
    message = str(info.value)
    assert message.startswith("bad duration")
    for form in ("45s", "30m", "12h", "90d", "2w", "days"):
        assert form in message


@pytest.mark.parametrize("text", ["0", "0d", "0s", "36526d", "5218w", "9" * 40 + "d"])
def test_parse_duration_out_of_range(text: str) -> None:
    with pytest.raises(InvalidInput, match="more than zero and at most 100 years"):
        parse_duration(text)


def test_parse_duration_non_text_refused() -> None:
    with pytest.raises(InvalidInput):
        parse_duration(90)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (td(days=90), "90d"),
        (td(hours=3), "3h"),
        (td(hours=36), "36h"),
        (td(weeks=2), "14d"),
        (td(minutes=90), "90m"),
        (td(seconds=61), "61s"),
        (td(0), "0s"),
        (td(hours=-3), "-3h"),
        (td(days=-2), "-2d"),
        (td(seconds=1, microseconds=500), "1s"),
        (td(seconds=-1.5), "-1s"),
    ],
)
def test_format_duration(value: datetime.timedelta, expected: str) -> None:
    assert format_duration(value) == expected


@settings(deadline=None)
@given(st.integers(1, int(MAX_DURATION.total_seconds())))
def test_format_then_parse_round_trips(seconds: int) -> None:
    value = td(seconds=seconds)
    assert parse_duration(format_duration(value)) == value


@settings(deadline=None)
@given(
    st.integers(1, 5_000),  # 5000w is still under 100 years
    st.sampled_from(["s", "m", "h", "d", "w", "", "D", "H"]),
)
def test_parse_format_parse_is_stable(number: int, unit: str) -> None:
    value = parse_duration(f"{number}{unit}")
    assert parse_duration(format_duration(value)) == value


@settings(deadline=None)
@given(st.text(max_size=20))
def test_duration_junk_parses_or_raises_invalid_input(text: str) -> None:
    try:
        value = parse_duration(text)
    except InvalidInput:
        return
    assert td(0) < value <= MAX_DURATION


def test_parse_date_iso() -> None:
    assert parse_date("2025-09-01") == datetime.date(2025, 9, 1)
    assert parse_date(" 2024-02-29\n") == datetime.date(2024, 2, 29)


@pytest.mark.parametrize(
    "text", ["20250901", "2025-W35-1", "2025/09/01", "01-09-2025", "2025-9-1", "", "today"]
)
def test_parse_date_only_iso_calendar_form(text: str) -> None:
    with pytest.raises(InvalidInput, match="YYYY-MM-DD"):
        parse_date(text)


@pytest.mark.parametrize("text", ["2025-02-30", "2025-13-01", "2023-02-29", "0000-01-01"])
def test_parse_date_no_such_day(text: str) -> None:
    with pytest.raises(InvalidInput, match="no such day"):
        parse_date(text)


def test_parse_date_non_text_refused() -> None:
    with pytest.raises(InvalidInput):
        parse_date(datetime.date(2025, 1, 1))  # type: ignore[arg-type]


@settings(deadline=None)
@given(st.dates())
def test_any_date_round_trips(day: datetime.date) -> None:
    assert parse_date(day.isoformat()) == day


@settings(deadline=None)
@given(st.text(max_size=20))
def test_date_junk_parses_or_raises_invalid_input(text: str) -> None:
    with contextlib.suppress(InvalidInput):
        parse_date(text)


@pytest.mark.parametrize("text", ["2027-03-01", " 2027-03-01 ", "2024-02-29"])
def test_a_date_where_a_duration_is_meant_is_named_a_date(text: str) -> None:
    with pytest.raises(InvalidInput, match="is a date; a duration is wanted here"):
        parse_duration(text)


# ------------------------------------------------------------------ dates or durations

UTC = datetime.timezone.utc
NOW = datetime.datetime(2026, 12, 6, 23, 30, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2027-03-01", datetime.date(2027, 3, 1)),
        (" 2027-03-01\n", datetime.date(2027, 3, 1)),
        ("90d", td(days=90)),
        ("12h", td(hours=12)),
        ("2W", td(weeks=2)),
        ("90", td(days=90)),  # a bare number means days, as everywhere
    ],
)
def test_parse_when_takes_a_date_or_a_duration(
    text: str, expected: datetime.date | datetime.timedelta
) -> None:
    assert parse_when(text) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("yesterday", "bad date or duration"),
        ("1d12h", "bad date or duration"),
        ("2027/03/01", "bad date or duration"),
        ("", "bad date or duration"),
        ("20270301", "a date is written YYYY-MM-DD"),
        ("2027-02-30", "no such day"),
        ("0d", "more than zero"),
        ("36526d", "at most 100 years"),
    ],
)
def test_parse_when_refuses_with_one_clear_message(text: str, message: str) -> None:
    with pytest.raises(InvalidInput, match=message):
        parse_when(text)


def test_parse_when_non_text_refused() -> None:
    with pytest.raises(InvalidInput):
        parse_when(datetime.date(2027, 3, 1))  # type: ignore[arg-type]


@settings(deadline=None)
@given(st.dates())
def test_parse_when_round_trips_every_date(day: datetime.date) -> None:
    assert parse_when(day.isoformat()) == day


@settings(deadline=None)
@given(st.integers(1, int(MAX_DURATION.total_seconds())))
def test_parse_when_round_trips_every_duration(seconds: int) -> None:
    value = td(seconds=seconds)
    assert parse_when(format_duration(value)) == value


@settings(deadline=None)
@given(st.text(max_size=20))
def test_parse_when_agrees_with_the_date_and_duration_parsers(text: str) -> None:
    """One grammar: what parse_when takes is exactly what one of the two others takes
    (but eight digits, a date without dashes, which neither reads as a date)."""
    try:
        value = parse_when(text)
    except InvalidInput:
        with contextlib.suppress(InvalidInput):
            parse_date(text)
            raise AssertionError(f"parse_date takes {text!r}") from None
        if text.strip().isascii() and text.strip().isdigit() and len(text.strip()) == 8:
            return
        with contextlib.suppress(InvalidInput):
            parse_duration(text)
            raise AssertionError(f"parse_duration takes {text!r}") from None
        return
    if isinstance(value, datetime.timedelta):
        assert parse_duration(text) == value
    else:
        assert parse_date(text) == value


def test_moment_of_a_date_is_midnight_utc() -> None:
    moment = moment_of(datetime.date(2027, 3, 1), NOW)
    assert moment == datetime.datetime(2027, 3, 1, tzinfo=UTC)
    assert moment_of(datetime.date(2027, 3, 1), NOW, back=True) == moment


def test_moment_of_a_duration_counts_from_now() -> None:
    assert moment_of(td(days=90), NOW) == NOW + td(days=90)
    assert moment_of(td(hours=12), NOW, back=True) == NOW - td(hours=12)


@settings(deadline=None)
@given(st.integers(1, MAX_DURATION.days), st.booleans())
def test_day_of_whole_days_counts_from_today(days: int, back: bool) -> None:
    today = NOW.date()
    expected = today - td(days=days) if back else today + td(days=days)
    assert day_of(td(days=days), today, back=back) == expected


def test_day_of_a_date_is_that_date() -> None:
    assert day_of(datetime.date(2027, 3, 1), NOW.date()) == datetime.date(2027, 3, 1)


@pytest.mark.parametrize("value", [td(hours=12), td(hours=36), td(minutes=30), td(seconds=1)])
def test_day_of_a_part_of_a_day_is_refused(value: datetime.timedelta) -> None:
    with pytest.raises(InvalidInput, match="not a whole number of days"):
        day_of(value, NOW.date())
