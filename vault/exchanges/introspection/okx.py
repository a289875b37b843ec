"""OKX: ``GET /api/v5/account/config``, ``{"code": "0", "data": [{...}]}``.

``perm`` and ``ip`` are comma-separated text (``ip`` empty: the key is not bound to
any address). No creation time or expiry is returned.
"""

from __future__ import annotations

from datetime import datetime

from vault.exchanges.introspection.answer import (
    BUSY,
    CLOCK,
    Introspection,
    by_code,
    comma_list,
    envelope_code,
    field,
    normalized_permissions,
    rejected,
    single,
)
from vault.exchanges.key_report import KeyReport


def parse(answer: object, now: datetime) -> KeyReport:
    """The report in OKX's answer.

    :raises MalformedAnswer: ``data`` is not a list of one object, or ``perm`` or
        ``ip`` is missing or not text.
    """
    config = single(field(answer, "data", "okx's answer"), "okx's data")
    ips = comma_list(field(config, "ip", "okx's config"), "ip")
    names = comma_list(field(config, "perm", "okx's config"), "perm")
    return KeyReport(
        permissions=normalized_permissions("okx", names),
        ip_restricted=bool(ips),
        ips=ips,
        expires_at=None,
        created_at=None,
    )


INTROSPECTION = Introspection(
    exchange="okx",
    method="private_get_account_config",
    parse=parse,
    classify=by_code(
        envelope_code("code", "0"),
        {
            "50111": rejected("invalid-key"),
            "50119": rejected("invalid-key"),
            "50100": rejected("invalid-key"),
            # The key belongs to the other environment (demo trading or live).
            "50101": rejected("invalid-key"),
            "50113": rejected("bad-signature"),
            "50105": rejected("wrong-passphrase"),
            "50110": rejected("ip-not-allowed"),
            "50120": rejected("permission-denied"),
            "50102": CLOCK,
            "50011": BUSY,
            "50001": BUSY,
        },
    ),
    receive_window_ms=30_000,
)
