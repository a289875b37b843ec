"""Kraken: ``POST /0/private/GetApiKeyInfo``, ``{"error": [], "result": {...}}``.

Errors are text in the ``error`` list (``EAPI:Invalid key``). Kraken orders requests
by a nonce rather than a clock, so it has no receive window; ``EAPI:Invalid nonce``
still means the request's stamp was refused. Kraken answers an address off the
whitelist with ``EGeneral:Permission denied``, the same words as a missing right.
"""

from __future__ import annotations

from datetime import datetime

from vault.exchanges.introspection.answer import (
    BUSY,
    CLOCK,
    Introspection,
    by_code,
    field,
    integer,
    normalized_permissions,
    rejected,
    seconds_time,
    text_list,
)
from vault.exchanges.key_report import KeyReport


def _error(answer: object) -> str | None:
    if not isinstance(answer, dict):
        return None
    errors = answer.get("error")
    if isinstance(errors, list) and errors:
        return str(errors[0])
    return None


def parse(answer: object, now: datetime) -> KeyReport:
    """The report in Kraken's answer.

    :raises MalformedAnswer: no ``result`` object, or a field of the wrong type.
    """
    result = field(answer, "result", "kraken's answer")
    ips = text_list(field(result, "ipAllowlist", "kraken's result"), "ipAllowlist")
    names = text_list(field(result, "permissions", "kraken's result"), "permissions")
    valid_until = integer(field(result, "validUntil", "kraken's result"), "validUntil")
    return KeyReport(
        permissions=normalized_permissions("kraken", names),
        ip_restricted=bool(ips),
        ips=ips,
        expires_at=seconds_time(valid_until, "validUntil") if valid_until else None,
        created_at=seconds_time(field(result, "createdTime", "kraken's result"), "createdTime"),
    )


INTROSPECTION = Introspection(
    exchange="kraken",
    method="private_post_getapikeyinfo",
    parse=parse,
    classify=by_code(
        _error,
        {
            "EAPI:Invalid key": rejected("invalid-key"),
            "EAPI:Invalid signature": rejected("bad-signature"),
            "EGeneral:Permission denied": rejected("permission-denied"),
            "EAPI:Invalid nonce": CLOCK,
            "EAPI:Rate limit exceeded": BUSY,
            "EService:Unavailable": BUSY,
            "EService:Busy": BUSY,
        },
    ),
    receive_window_ms=None,
    time_resolution_ms=1000,
)
