"""Gate: ``GET /api/v4/account/detail``, ``{"user_id", "ip_whitelist": [...], ...}``.

Gate returns the IP whitelist but not the key's permissions: ``permissions`` is
always ``None``, and no finding is ever drawn from it.
"""

from __future__ import annotations

from datetime import datetime

from vault.exchanges.introspection.answer import (
    BUSY,
    CLOCK,
    Introspection,
    by_code,
    field,
    rejected,
    text_list,
)
from vault.exchanges.key_report import KeyReport


def _label(answer: object) -> str | None:
    if isinstance(answer, dict) and "label" in answer and "user_id" not in answer:
        return str(answer["label"])
    return None


def parse(answer: object, now: datetime) -> KeyReport:
    """The report in Gate's answer.

    :raises MalformedAnswer: not an object, or ``ip_whitelist`` missing or not a list
        of text.
    """
    ips = text_list(field(answer, "ip_whitelist", "gate's answer"), "ip_whitelist")
    return KeyReport(
        permissions=None,
        ip_restricted=bool(ips),
        ips=ips,
        expires_at=None,
        created_at=None,
    )


INTROSPECTION = Introspection(
    exchange="gate",
    method="private_account_get_detail",
    parse=parse,
    classify=by_code(
        _label,
        {
            "INVALID_KEY": rejected("invalid-key"),
            "INVALID_CREDENTIALS": rejected("invalid-key"),
            "INVALID_SIGNATURE": rejected("bad-signature"),
            "IP_FORBIDDEN": rejected("ip-not-allowed"),
            "FORBIDDEN": rejected("permission-denied"),
            "READ_ONLY": rejected("permission-denied"),
            "REQUEST_EXPIRED": CLOCK,
            "TOO_MANY_REQUESTS": BUSY,
            "SERVER_ERROR": BUSY,
        },
    ),
    receive_window_ms=60_000,
)
