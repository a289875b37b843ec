"""Durations and dates as the user types them (``--max-age 90d``, ``--issued 2025-09-01``):
the one grammar of every command-line option that takes a time.

Durations are one whole number and one unit letter: ``45s``, ``30m``, ``12h``, ``90d``,
``2w``; a bare number means days, because key ages and rotation periods are thought of
in days. Compound forms (``1d12h``) and fractions are refused rather than guessed at.
Months and years are not units: their length varies, and a rotation period must mean
the same number of days every time it is checked.

Dates are ISO ``YYYY-MM-DD`` only: ``date.fromisoformat`` on Python 3.11 also takes
``20250901`` and ``2025-W35-1``, which are easy to mistype and hard to read back.

Where a date is taken, a duration is taken too (:func:`parse_when`): ``--expires 90d``
means 90 days from now and ``--since 7d`` seven days back, so an option never accepts
one spelling that the next one refuses.
"""

from __future__ import annotations

import datetime
import re

from vault.errors import InvalidInput, quoted

__all__ = [
    "MAX_DURATION",
    "When",
    "day_of",
    "format_duration",
    "moment_of",
    "parse_date",
    "parse_duration",
    "parse_when",
]

#: The longest duration accepted (100 years of 365.25 days); anything longer is a typo.
MAX_DURATION = datetime.timedelta(days=36525)

_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}

# ASCII digits only: \d would also take other scripts' digits, which int() accepts but
# nobody means in a command-line flag.
_DURATION = re.compile(r"([0-9]+)\s*([smhdw]?)", re.IGNORECASE | re.ASCII)
_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}", re.ASCII)
_BASIC_DATE = re.compile(r"[0-9]{8}", re.ASCII)

_DURATION_FORMS = "45s, 30m, 12h, 90d or 2w (a bare number means days)"
_WHEN_FORMS = "a date YYYY-MM-DD (2027-03-01) or a duration such as 90d, 12h or 2w"

When = datetime.date | datetime.timedelta
"""What :func:`parse_when` returns: a calendar date, or a duration counted from now."""

# Display units, largest first. Weeks are left out on purpose: "14d" reads better
# than "2w" next to other ages in days, and days round-trip through parse_duration.
_DISPLAY_UNITS = (("d", 86400), ("h", 3600), ("m", 60), ("s", 1))


def parse_duration(text: str) -> datetime.timedelta:
    """Parse a duration such as ``90d``, ``12h``, ``30m``, ``2w``, ``45s`` or ``90``.

    Surrounding whitespace and the case of the unit letter are ignored.

    :param text: the duration as typed.
    :returns: the duration, more than zero and at most :data:`MAX_DURATION`.
    :raises InvalidInput: the text is not one of the accepted forms (a date among
        them), or the duration is zero or longer than 100 years.
    """
    if not isinstance(text, str):
        raise InvalidInput(f"bad duration {text!r}; use {_DURATION_FORMS}")
    if _DATE.fullmatch(text.strip()):
        # A date where a length of time is meant (--max-age 2027-03-01): say so plainly.
        raise InvalidInput(
            f"{quoted(text)} is a date; a duration is wanted here, such as 90d, 12h or 2w"
        )
    match = _DURATION.fullmatch(text.strip())
    if match is None:
        raise InvalidInput(f"bad duration {quoted(text)}; use {_DURATION_FORMS}")
    number, unit = match.groups()
    # Check the bound on integers before building a timedelta, which would overflow
    # (OverflowError, not InvalidInput) on a long run of digits.
    seconds = int(number) * _UNIT_SECONDS[(unit or "d").lower()]
    if seconds <= 0 or seconds > MAX_DURATION.total_seconds():
        raise InvalidInput(
            f"duration {quoted(text)} is out of range; "
            "it must be more than zero and at most 100 years"
        )
    return datetime.timedelta(seconds=seconds)


def format_duration(td: datetime.timedelta) -> str:
    """Format a duration for display in the largest unit that is exact.

    ``timedelta(days=90)`` gives ``"90d"``, ``timedelta(hours=3)`` gives ``"3h"``,
    ``timedelta(hours=36)`` gives ``"36h"``. For every value :func:`parse_duration`
    returns, ``parse_duration(format_duration(td)) == td``. Negative durations (e.g.
    "overdue by") get a leading ``-``; fractions of a second are dropped.

    :param td: the duration.
    :returns: the display form, ``"0s"`` for zero.
    :raises: nothing.
    """
    # Integer arithmetic on the parts, so long durations lose no precision to floats.
    total = td.days * 86400 + td.seconds
    if td.days < 0 and td.microseconds:
        # timedelta keeps microseconds positive: -0.5 s is days=-1, seconds=86399,
        # microseconds=500000. Truncate toward zero, as for positive values.
        total += 1
    if total == 0:
        return "0s"
    sign = "-" if total < 0 else ""
    total = abs(total)
    for unit, size in _DISPLAY_UNITS:
        if total % size == 0:
            return f"{sign}{total // size}{unit}"
    raise AssertionError("unreachable: every whole number of seconds is exact in 's'")


def parse_date(text: str) -> datetime.date:
    """Parse an ISO calendar date, ``YYYY-MM-DD`` (e.g. ``2025-09-01``).

    :param text: the date as typed; surrounding whitespace is ignored.
    :returns: the date.
    :raises InvalidInput: the text is not in that form, or names no real day.
    """
    if not isinstance(text, str):
        raise InvalidInput(f"bad date {text!r}; use YYYY-MM-DD, e.g. 2025-09-01")
    stripped = text.strip()
    if _DATE.fullmatch(stripped) is None:
        raise InvalidInput(f"bad date {quoted(text)}; use YYYY-MM-DD, e.g. 2025-09-01")
    try:
        return datetime.date.fromisoformat(stripped)
    except ValueError:
        raise InvalidInput(f"bad date {quoted(stripped)}: there is no such day") from None


def parse_when(text: str) -> When:
    """Parse a date or a duration: ``2027-03-01``, or ``90d`` (any form of
    :func:`parse_duration`, a bare number meaning days).

    What the duration counts from (now, forward or back) is the caller's: see
    :func:`moment_of` and :func:`day_of`.

    :param text: the value as typed; surrounding whitespace is ignored.
    :returns: a :class:`datetime.date` or a :class:`datetime.timedelta`.
    :raises InvalidInput: the text is neither, names no real day, or is a duration of
        zero or beyond 100 years.
    """
    if not isinstance(text, str):
        raise InvalidInput(f"bad date or duration {text!r}; give {_WHEN_FORMS}")
    stripped = text.strip()
    if _DATE.fullmatch(stripped):
        return parse_date(stripped)
    if _BASIC_DATE.fullmatch(stripped):
        # Eight digits are a date typed without dashes far more often than 20 million days.
        raise InvalidInput(f"bad date {quoted(text)}; a date is written YYYY-MM-DD (2027-03-01)")
    if _DURATION.fullmatch(stripped):
        return parse_duration(stripped)
    raise InvalidInput(f"bad date or duration {quoted(text)}; give {_WHEN_FORMS}")


def moment_of(when: When, now: datetime.datetime, *, back: bool = False) -> datetime.datetime:
    """The moment ``when`` names: a date at 00:00 UTC, a duration after ``now`` (or
    before it, with ``back``: ``--since 7d``).

    :raises: nothing.
    """
    if isinstance(when, datetime.timedelta):
        return now - when if back else now + when
    return datetime.datetime(when.year, when.month, when.day, tzinfo=datetime.timezone.utc)


def day_of(when: When, today: datetime.date, *, back: bool = False) -> datetime.date:
    """The calendar day ``when`` names: a date as it is, a duration in whole days after
    ``today`` (or before it, with ``back``: ``--issued 30d``).

    :raises InvalidInput: for a duration that is not a whole number of days (a day
        cannot be 12 hours from today).
    """
    if not isinstance(when, datetime.timedelta):
        return when
    if when % datetime.timedelta(days=1):
        raise InvalidInput(
            f"{quoted(format_duration(when))} is not a whole number of days; "
            "give days (90d, 2w) or a date YYYY-MM-DD"
        )
    return today - when if back else today + when
