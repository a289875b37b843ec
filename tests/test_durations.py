"""Tests of vault.durations: durations and ISO dates as typed by users."""

from __future__ import annotations

import contextlib
import datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vault.durations import MAX_DURATION, format_duration, parse_date, parse_duration
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
