"""Coinbase Advanced: ``GET /api/v3/brokerage/key_permissions``,
``{"can_view", "can_trade", "can_transfer", "portfolio_uuid", "portfolio_type"}``.

``can_transfer`` lets the key send funds out: exvault's ``withdraw``. Coinbase does
not report an IP allowlist, an expiry or a creation time.
"""

from __future__ import annotations

from datetime import datetime

from vault.exchanges.introspection.answer import (
    Introspection,
    boolean,
    by_code,
    field,
    normalized_permissions,
    rejected,
)
from vault.exchanges.key_report import KeyReport

_RIGHTS = {"can_view": "read", "can_trade": "trade", "can_transfer": "withdraw"}


def _error(answer: object) -> str | None:
    if isinstance(answer, dict) and isinstance(answer.get("error"), str):
        return str(answer["error"])
    return None


def parse(answer: object, now: datetime) -> KeyReport:
    """The report in Coinbase's answer.

    :raises MalformedAnswer: not an object, or a right missing or not a boolean.
    """
    granted = [
        right for right in _RIGHTS if boolean(field(answer, right, "coinbase's answer"), right)
    ]
    return KeyReport(
        permissions=normalized_permissions("coinbase", granted, _RIGHTS),
        ip_restricted=None,
        ips=None,
        expires_at=None,
        created_at=None,
    )


INTROSPECTION = Introspection(
    exchange="coinbase",
    method="v3_private_get_brokerage_key_permissions",
    parse=parse,
    classify=by_code(
        _error,
        {
            "UNAUTHENTICATED": rejected("invalid-key"),
            "PERMISSION_DENIED": rejected("permission-denied"),
        },
    ),
    # A CDP request carries a JWT valid for two minutes from the local clock.
    receive_window_ms=120_000,
)
