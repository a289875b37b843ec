"""What every exchange's introspection module shares: the description of the call
(:class:`Introspection`), what an exchange error code means (:class:`Verdict`) and the
strict readers of an answer's fields.

Readers accept only the exact JSON types the exchange documents and raise
:class:`~vault.errors.MalformedAnswer` for anything else, naming the field, never its
value: an answer from a hostile or broken server must neither crash a probe nor be
mistaken for a key that looks fine.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from datetime import datetime, timedelta, timezone
from typing import NamedTuple

from vault.errors import InvalidInput, MalformedAnswer
from vault.exchanges.fields import PERMISSIONS
from vault.exchanges.key_report import KeyReport
from vault.exchanges.profiles import get_profile

__all__ = [
    "BUSY",
    "CLOCK",
    "Classified",
    "Introspection",
    "Verdict",
    "boolean",
    "by_code",
    "comma_list",
    "days_from",
    "envelope_code",
    "field",
    "integer",
    "iso_time",
    "mapping",
    "ms_time",
    "normalized_permissions",
    "rejected",
    "seconds_time",
    "single",
    "text",
    "text_list",
]

# Bounds of a datetime Python can hold, with room: a timestamp beyond them is malformed.
_EARLIEST_MS = 0
_LATEST_MS = 253_402_300_799_000  # 9999-12-31T23:59:59Z


class Verdict(NamedTuple):
    """What an exchange's error code says: a ``kind`` of
    :data:`~vault.exchanges.key_report.ERROR_KINDS` and, for ``rejected-key``, the
    reason (:data:`~vault.exchanges.key_report.REJECTION_REASONS`)."""

    kind: str
    reason: str | None = None


def rejected(reason: str) -> Verdict:
    """The verdict of a code meaning the exchange refused the key for ``reason``."""
    return Verdict("rejected-key", reason)


CLOCK = Verdict("clock-skew")
"""The request's timestamp was outside the exchange's receive window."""

BUSY = Verdict("unreachable")
"""Rate limited or under maintenance: no verdict about the key."""


class Classified(NamedTuple):
    """An error in an exchange's answer: its own code (as text) and what it means
    (``None``: a code exvault does not know)."""

    code: str
    verdict: Verdict | None


def by_code(
    code_of: Callable[[object], str | None], codes: Mapping[str, Verdict]
) -> Callable[[object], Classified | None]:
    """A ``classify`` function for an exchange whose error code alone says what went
    wrong: ``code_of`` finds the code in an answer (``None`` on success), ``codes``
    says what each means."""

    def classify(answer: object) -> Classified | None:
        code = code_of(answer)
        return None if code is None else Classified(code, codes.get(code))

    return classify


def envelope_code(name: str, success: object) -> Callable[[object], str | None]:
    """The ``code_of`` of an exchange that wraps every answer in an object whose
    member ``name`` is ``success`` on success and the error code otherwise."""

    def code_of(answer: object) -> str | None:
        if not isinstance(answer, dict) or name not in answer:
            return None
        code = answer[name]
        if code == success or isinstance(code, (dict, list)):
            return None
        return str(code)

    return code_of


class Introspection(NamedTuple):
    """How to ask one exchange about the key a request is signed with.

    :param exchange: the ccxt id.
    :param method: ccxt's implicit method of the introspection endpoint.
    :param parse: the answer (decoded JSON) and the time it was observed -> the report.
    :param classify: the error in an answer (decoded JSON, of a success or a failure),
        or ``None`` when it carries none.
    :param receive_window_ms: how far a request's timestamp may stray from the
        exchange's clock before it is refused (``None``: not time-based, Kraken's
        nonce, or not documented).
    :param params: the API key and the account id (``uid``) -> the call's parameters.
    :param account_method: a call that returns the account id, for an exchange whose
        introspection needs it (HTX) when the credential holds no ``uid``.
    :param parse_account: reads that call's answer.
    :param time_resolution_ms: the unit of the exchange's server time (Kraken's is
        whole seconds: its clock is anywhere in the second it names).
    """

    exchange: str
    method: str
    parse: Callable[[object, datetime], KeyReport]
    classify: Callable[[object], Classified | None]
    receive_window_ms: int | None
    params: Callable[[str, str | None], dict[str, str]] = lambda api_key, uid: {}
    account_method: str | None = None
    parse_account: Callable[[object], str] | None = None
    time_resolution_ms: int = 1


# ------------------------------------------------------------------ readers


def mapping(value: object, what: str) -> Mapping[str, object]:
    """``value`` as a JSON object.

    :raises MalformedAnswer: it is not one.
    """
    if not isinstance(value, dict):
        raise MalformedAnswer(f"{what} is not a JSON object")
    return value


def field(value: object, name: str, what: str) -> object:
    """The member ``name`` of the JSON object ``value``.

    :raises MalformedAnswer: ``value`` is not an object or lacks ``name``.
    """
    members = mapping(value, what)
    if name not in members:
        raise MalformedAnswer(f"{what} has no {name!r}")
    return members[name]


def single(value: object, what: str) -> object:
    """The only element of the JSON array ``value``.

    :raises MalformedAnswer: it is not an array of exactly one element.
    """
    if not isinstance(value, list) or len(value) != 1:
        raise MalformedAnswer(f"{what} is not a list of one entry")
    return value[0]


def boolean(value: object, what: str) -> bool:
    """A JSON boolean (or the 0/1 some exchanges send instead).

    :raises MalformedAnswer: anything else.
    """
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    raise MalformedAnswer(f"{what} is not a boolean")


def integer(value: object, what: str) -> int:
    """A JSON integer, or decimal digits in a string (exchanges send both).

    :raises MalformedAnswer: anything else (floats, booleans, other text).
    """
    if isinstance(value, bool):
        raise MalformedAnswer(f"{what} is not an integer")
    if isinstance(value, int):
        return value
    if isinstance(value, str) and 0 < len(value) <= 20 and value.lstrip("-").isdecimal():
        return int(value)
    raise MalformedAnswer(f"{what} is not an integer")


def text(value: object, what: str) -> str:
    """A JSON string.

    :raises MalformedAnswer: anything else.
    """
    if not isinstance(value, str):
        raise MalformedAnswer(f"{what} is not text")
    return value


def comma_list(value: object, what: str) -> tuple[str, ...]:
    """Comma-separated text as its non-empty, stripped items (``""`` is no item).

    :raises MalformedAnswer: ``value`` is not text.
    """
    return tuple(item.strip() for item in text(value, what).split(",") if item.strip())


def text_list(value: object, what: str) -> tuple[str, ...]:
    """A JSON array of strings, as a tuple.

    :raises MalformedAnswer: not an array, or an element is not text.
    """
    if not isinstance(value, list):
        raise MalformedAnswer(f"{what} is not a list")
    return tuple(text(item, f"an entry of {what}") for item in value)


def ms_time(value: object, what: str) -> datetime:
    """A time in milliseconds since the epoch, as an aware UTC datetime.

    :raises MalformedAnswer: not an integer, or outside years 1970 to 9999.
    """
    ms = integer(value, what)
    if not _EARLIEST_MS <= ms <= _LATEST_MS:
        raise MalformedAnswer(f"{what} is out of range")
    return datetime.fromtimestamp(ms / 1000, tz=timezone.utc)


def seconds_time(value: object, what: str) -> datetime:
    """A time in seconds since the epoch (integer or digits), as an aware UTC datetime.

    :raises MalformedAnswer: as :func:`ms_time`.
    """
    return ms_time(integer(value, what) * 1000, what)


def iso_time(value: object, what: str) -> datetime:
    """An ISO 8601 time (``2026-01-05T09:30:00Z``); a time without a zone is UTC.

    :raises MalformedAnswer: not text or not ISO 8601.
    """
    raw = text(value, what).strip()
    if raw.endswith(("Z", "z")):
        raw = raw[:-1] + "+00:00"
    try:
        moment = datetime.fromisoformat(raw)
    except ValueError:
        raise MalformedAnswer(f"{what} is not an ISO 8601 time") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(timezone.utc)


def days_from(now: datetime, days: int, what: str) -> datetime:
    """``now`` plus ``days`` whole days (an exchange's "days left").

    :raises MalformedAnswer: ``days`` is beyond what a datetime holds.
    """
    try:
        return now + timedelta(days=days)
    except OverflowError:
        raise MalformedAnswer(f"{what} is out of range") from None


def normalized_permissions(
    exchange: str, names: Iterable[str], extra: Mapping[str, str | None] = {}
) -> tuple[str, ...]:
    """The exchange's permission names in exvault's vocabulary, canonical order.

    ``extra`` maps names the exchange's profile does not know (matched exactly first,
    then case-insensitively): to a permission, or to ``None`` for a name that grants
    nothing exvault tracks. A name known to neither is dropped: the report lists what
    exvault can name, and the exchange's own page stays the authority for the rest.
    """
    profile = get_profile(exchange)
    lowered = {name.lower(): permission for name, permission in extra.items()}
    found: set[str] = set()
    for name in names:
        if name in extra or name.lower() in lowered:
            permission = extra.get(name, lowered.get(name.lower()))
            if permission is not None:
                found.add(permission)
            continue
        try:
            found.update(profile.normalize_permissions((name,)))
        except InvalidInput:
            continue
    return tuple(permission for permission in PERMISSIONS if permission in found)
