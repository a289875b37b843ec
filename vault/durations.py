"""Durations and dates as the user types them (``--max-age 90d``, ``--issued 2025-09-01``).

Durations are one whole number and one unit letter: ``45s``, ``30m``, ``12h``, ``90d``,
``2w``; a bare number means days, because key ages and rotation periods are thought of
in days. Compound forms (``1d12h``) and fractions are refused rather than guessed at.
Months and years are not units: their length varies, and a rotation period must mean
the same number of days every time it is checked.

Dates are ISO ``YYYY-MM-DD`` only: ``date.fromisoformat`` on Python 3.11 also takes
``20250901`` and ``2025-W35-1``, which are easy to mistype and hard to read back.
"""

from __future__ import annotations

import datetime
import re

from vault.errors import InvalidInput, quoted

__all__ = ["MAX_DURATION", "format_duration", "parse_date", "parse_duration"]

#: The longest duration accepted (100 years of 365.25 days); anything longer is a typo.
MAX_DURATION = datetime.timedelta(days=36525)

_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}

# ASCII digits only: \d would also take other scripts' digits, which int() accepts but
# nobody means in a command-line flag.
_DURATION = re.compile(r"([0-9]+)\s*([smhdw]?)", re.IGNORECASE | re.ASCII)
_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}", re.ASCII)

_DURATION_FORMS = "45s, 30m, 12h, 90d or 2w (a bare number means days)"

# Display units, largest first. Weeks are left out on purpose: "14d" reads better
# than "2w" next to other ages in days, and days round-trip through parse_duration.
_DISPLAY_UNITS = (("d", 86400), ("h", 3600), ("m", 60), ("s", 1))


def parse_duration(text: str) -> datetime.timedelta:
    """Parse a duration such as ``90d``, ``12h``, ``30m``, ``2w``, ``45s`` or ``90``.

    Surrounding whitespace and the case of the unit letter are ignored.

    :param text: the duration as typed.
    :returns: the duration, more than zero and at most :data:`MAX_DURATION`.
    :raises InvalidInput: the text is not one of the accepted forms, or the duration
        is zero or longer than 100 years.
    """
    if not isinstance(text, str):
        raise InvalidInput(f"bad duration {text!r}; use {_DURATION_FORMS}")
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


def parse_expiry(text: str, now: datetime.datetime) -> datetime.datetime:
    """An expiry given as a duration from ``now`` ("90d") or a date ("2027-01-01", 00:00 UTC).

    :raises InvalidInput: when it is neither.
    """
    try:
        return now + parse_duration(text)
    except InvalidInput:
        pass
    try:
        day = parse_date(text)
    except InvalidInput:
        raise InvalidInput(
            f"bad expiry {quoted(text)}: give a duration such as 90d, 12h, 2w, or a date YYYY-MM-DD"
        ) from None
    return datetime.datetime(day.year, day.month, day.day, tzinfo=datetime.timezone.utc)
