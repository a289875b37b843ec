"""Bybit: ``GET /v5/user/query-api``, ``{"retCode": 0, "result": {...}}``.

Permissions are groups of named rights (``{"Spot": ["SpotTrade"], "Wallet":
["AccountTransfer", "Withdraw"]}``); a group with no right grants nothing. ``ips`` is
``["*"]`` for a key bound to no address. The expiry is ``expiredAt``, or else
``deadlineDay`` (days left, for a key without an IP binding).
"""

from __future__ import annotations

from datetime import datetime

from vault.errors import MalformedAnswer
from vault.exchanges.introspection.answer import (
    BUSY,
    CLOCK,
    Introspection,
    boolean,
    by_code,
    days_from,
    envelope_code,
    field,
    integer,
    iso_time,
    mapping,
    normalized_permissions,
    rejected,
    text,
    text_list,
)
from vault.exchanges.key_report import KeyReport

#: Groups whose rights are told apart one by one (a wallet right may be a withdrawal).
_BY_RIGHT = frozenset({"Wallet"})
#: Groups the profile's vocabulary lacks.
_EXTRA_GROUPS: dict[str, str | None] = {
    "BlockTrade": "trade",
    "NFT": "trade",
    "Affiliate": None,
}
_UNBOUND = "*"


def _permissions(result: object) -> tuple[str, ...]:
    groups = mapping(field(result, "permissions", "bybit's result"), "permissions")
    names: list[str] = ["read"]  # every Bybit key can read
    for group, rights in groups.items():
        granted = text_list(rights, "a group of permissions")
        if not granted:
            continue
        names.extend(granted if group in _BY_RIGHT else (group,))
    return normalized_permissions("bybit", names, _EXTRA_GROUPS)


def _expiry(result: object, now: datetime) -> datetime | None:
    expired_at = text(mapping(result, "bybit's result").get("expiredAt", ""), "expiredAt")
    if expired_at:
        return iso_time(expired_at, "expiredAt")
    days = integer(mapping(result, "bybit's result").get("deadlineDay", -1), "deadlineDay")
    return days_from(now, days, "deadlineDay") if days >= 0 else None


def parse(answer: object, now: datetime) -> KeyReport:
    """The report in Bybit's answer.

    :raises MalformedAnswer: no ``result`` object, or a field of the wrong type.
    """
    result = field(answer, "result", "bybit's answer")
    read_only = boolean(field(result, "readOnly", "bybit's result"), "readOnly")
    listed = text_list(field(result, "ips", "bybit's result"), "ips")
    if _UNBOUND in listed and len(listed) > 1:
        raise MalformedAnswer("bybit's ips mixes '*' with addresses")
    ips = () if _UNBOUND in listed else listed
    created = mapping(result, "bybit's result").get("createdAt")
    return KeyReport(
        permissions=("read",) if read_only else _permissions(result),
        ip_restricted=bool(ips),
        ips=ips,
        expires_at=_expiry(result, now),
        created_at=None if created in (None, "") else iso_time(created, "createdAt"),
    )


INTROSPECTION = Introspection(
    exchange="bybit",
    method="private_get_v5_user_query_api",
    parse=parse,
    classify=by_code(
        envelope_code("retCode", 0),
        {
            "10003": rejected("invalid-key"),
            "10004": rejected("bad-signature"),
            "10010": rejected("ip-not-allowed"),
            "10005": rejected("permission-denied"),
            "33004": rejected("expired"),
            "10002": CLOCK,
            "10006": BUSY,
            "10016": BUSY,
        },
    ),
    receive_window_ms=5000,
)
