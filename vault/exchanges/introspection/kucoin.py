"""KuCoin: ``GET /api/v1/user/api-key``, ``{"code": "200000", "data": {...}}``.

Permissions and the IP whitelist are comma-separated text; KuCoin masks the middle
octets of each address (``203.**.7``), so ``ips`` is what it shows, not a list to
compare address by address. No expiry is returned.
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
    ms_time,
    normalized_permissions,
    rejected,
)
from vault.exchanges.key_report import KeyReport

_EXTRA_PERMISSIONS = {"Transfer": "transfer", "Earn": "trade", "LeverageToken": "trade"}


def parse(answer: object, now: datetime) -> KeyReport:
    """The report in KuCoin's answer.

    :raises MalformedAnswer: no ``data`` object, or a field of the wrong type.
    """
    data = field(answer, "data", "kucoin's answer")
    ips = comma_list(field(data, "ipWhitelist", "kucoin's data"), "ipWhitelist")
    created = field(data, "createdAt", "kucoin's data")
    names = comma_list(field(data, "permission", "kucoin's data"), "permission")
    return KeyReport(
        permissions=normalized_permissions("kucoin", names, _EXTRA_PERMISSIONS),
        ip_restricted=bool(ips),
        ips=ips,
        expires_at=None,
        created_at=ms_time(created, "createdAt"),
    )


INTROSPECTION = Introspection(
    exchange="kucoin",
    method="private_get_user_api_key",
    parse=parse,
    classify=by_code(
        envelope_code("code", "200000"),
        {
            "400003": rejected("invalid-key"),
            "400004": rejected("wrong-passphrase"),
            "400005": rejected("bad-signature"),
            "400006": rejected("ip-not-allowed"),
            "400007": rejected("permission-denied"),
            "400002": CLOCK,
            "429000": BUSY,
            "503000": BUSY,
        },
    ),
    receive_window_ms=5000,
)
