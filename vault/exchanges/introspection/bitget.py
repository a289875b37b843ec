"""Bitget: ``GET /api/v2/spot/account/info``, ``{"code": "00000", "data": {...}}``.

``authorities`` lists the key's rights, ``ips`` the whitelist as comma-separated
text. ``regisTime`` is the account's registration, not the key's creation: no
creation time is reported.
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
    text_list,
)
from vault.exchanges.key_report import KeyReport

_AUTHORITIES: dict[str, str | None] = {
    "readonly": "read",
    "read": "read",
    "trade": "trade",
    "spot_trade": "trade",
    "contract_trade": "futures",
    "margin_trade": "margin",
    "withdraw": "withdraw",
    "transfer": "transfer",
}


def parse(answer: object, now: datetime) -> KeyReport:
    """The report in Bitget's answer.

    :raises MalformedAnswer: no ``data`` object, or a field of the wrong type.
    """
    data = field(answer, "data", "bitget's answer")
    ips = comma_list(field(data, "ips", "bitget's data"), "ips")
    names = text_list(field(data, "authorities", "bitget's data"), "authorities")
    return KeyReport(
        permissions=normalized_permissions("bitget", names, _AUTHORITIES),
        ip_restricted=bool(ips),
        ips=ips,
        expires_at=None,
        created_at=None,
    )


INTROSPECTION = Introspection(
    exchange="bitget",
    method="private_spot_get_v2_spot_account_info",
    parse=parse,
    classify=by_code(
        envelope_code("code", "00000"),
        {
            "40006": rejected("invalid-key"),
            "40037": rejected("invalid-key"),
            "40009": rejected("bad-signature"),
            "40012": rejected("wrong-passphrase"),
            "40018": rejected("ip-not-allowed"),
            "40014": rejected("permission-denied"),
            "40008": CLOCK,
            "429": BUSY,
            "40200": BUSY,
        },
    ),
    receive_window_ms=30_000,
)
