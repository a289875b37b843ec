"""HTX: ``GET /v2/user/api-key?uid=..&accessKey=..``, ``{"code": 200, "data": [...]}``.

The call needs the account's uid: the credential's ``uid`` field, or else HTX's
``GET /v2/user/uid``. ``validDays`` is the days left before the key expires (-1:
never). HTX answers every authentication failure with one code,
``api-signature-not-valid``; only its message tells which check failed.
"""

from __future__ import annotations

from datetime import datetime

from vault.exchanges.introspection.answer import (
    BUSY,
    CLOCK,
    Classified,
    Introspection,
    Verdict,
    comma_list,
    days_from,
    envelope_code,
    field,
    integer,
    ms_time,
    normalized_permissions,
    rejected,
    single,
)
from vault.exchanges.key_report import KeyReport

_SIGNATURE_NOT_VALID = "api-signature-not-valid"
#: Words of HTX's message for ``api-signature-not-valid`` -> what failed.
_SIGNATURE_DETAILS: tuple[tuple[str, Verdict], ...] = (
    ("Incorrect Access key", rejected("invalid-key")),
    ("Incorrect IP address", rejected("ip-not-allowed")),
    ("submission time", CLOCK),
    ("Verification failure", rejected("bad-signature")),
)
_CODES = {
    "base-request-exceed-frequency-limit": BUSY,
    "system-maintenance": BUSY,
    "api-key-expired": rejected("expired"),
    "forbidden-trade-for-api-key": rejected("permission-denied"),
}
_v2_code = envelope_code("code", 200)


def classify(answer: object) -> Classified | None:
    """The error in an HTX answer: its v1 ``err-code`` (refined by the message for
    ``api-signature-not-valid``) or its v2 ``code``."""
    if isinstance(answer, dict) and answer.get("status") == "error":
        code = str(answer.get("err-code"))
        if code == _SIGNATURE_NOT_VALID:
            message = str(answer.get("err-msg"))
            for words, verdict in _SIGNATURE_DETAILS:
                if words in message:
                    return Classified(code, verdict)
            return Classified(code, rejected("bad-signature"))
        return Classified(code, _CODES.get(code))
    v2_code = _v2_code(answer)
    return None if v2_code is None else Classified(v2_code, _CODES.get(v2_code))


def parse(answer: object, now: datetime) -> KeyReport:
    """The report in HTX's answer (a list of the one key asked for).

    :raises MalformedAnswer: ``data`` is not a list of one object, or a field of the
        wrong type.
    """
    entry = single(field(answer, "data", "htx's answer"), "htx's data")
    ips = comma_list(field(entry, "ipAddresses", "htx's key"), "ipAddresses")
    names = comma_list(field(entry, "permission", "htx's key"), "permission")
    days = integer(field(entry, "validDays", "htx's key"), "validDays")
    return KeyReport(
        permissions=normalized_permissions("htx", names),
        ip_restricted=bool(ips),
        ips=ips,
        expires_at=days_from(now, days, "validDays") if days >= 0 else None,
        created_at=ms_time(field(entry, "createTime", "htx's key"), "createTime"),
    )


def parse_account(answer: object) -> str:
    """The uid in HTX's ``/v2/user/uid`` answer.

    :raises MalformedAnswer: no integer ``data``.
    """
    return str(integer(field(answer, "data", "htx's uid answer"), "uid"))


INTROSPECTION = Introspection(
    exchange="htx",
    method="v2private_get_user_api_key",
    parse=parse,
    classify=classify,
    # HTX refuses a Timestamp more than 5 minutes from its clock.
    receive_window_ms=300_000,
    params=lambda api_key, uid: {"uid": uid or "", "accessKey": api_key},
    account_method="v2private_get_user_uid",
    parse_account=parse_account,
)
