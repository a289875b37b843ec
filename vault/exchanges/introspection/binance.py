"""Binance: ``GET /sapi/v1/account/apiRestrictions``, a flat object of flags.

It says whether an IP restriction is set (``ipRestrict``) but never which addresses:
``ips`` is always ``None``. ``tradingAuthorityExpirationTime`` is when the key's spot
and margin trading right lapses (0 or absent: it does not).
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
    envelope_code,
    integer,
    mapping,
    ms_time,
    normalized_permissions,
    rejected,
)
from vault.exchanges.key_report import KeyReport

#: Flags the profile's vocabulary lacks: FIX API access and portfolio margin.
_EXTRA_FLAGS = {
    "enableFixApiTrade": "trade",
    "enableFixReadOnly": "read",
    "enablePortfolioMarginTrading": "margin",
}
_FLAGS = (
    "enableReading",
    "enableSpotAndMarginTrading",
    "enableMargin",
    "enableFutures",
    "enableVanillaOptions",
    "enableWithdrawals",
    "enableInternalTransfer",
    "permitsUniversalTransfer",
    *_EXTRA_FLAGS,
)


def parse(answer: object, now: datetime) -> KeyReport:
    """The report in Binance's answer.

    :raises MalformedAnswer: not an object, ``ipRestrict`` missing, or a flag or time
        of the wrong type.
    """
    body = mapping(answer, "binance's answer")
    if "ipRestrict" not in body:
        raise MalformedAnswer("binance's answer has no 'ipRestrict'")
    granted = [flag for flag in _FLAGS if flag in body and boolean(body[flag], flag)]
    expiry = integer(
        body.get("tradingAuthorityExpirationTime", 0), "tradingAuthorityExpirationTime"
    )
    created = body.get("createTime")
    return KeyReport(
        permissions=normalized_permissions("binance", granted, _EXTRA_FLAGS),
        ip_restricted=boolean(body["ipRestrict"], "ipRestrict"),
        ips=None,
        expires_at=ms_time(expiry, "tradingAuthorityExpirationTime") if expiry else None,
        created_at=None if created is None else ms_time(created, "createTime"),
    )


INTROSPECTION = Introspection(
    exchange="binance",
    method="sapi_get_account_apirestrictions",
    parse=parse,
    # -2015 is one code for an unknown key, an IP off the whitelist and a missing
    # permission: Binance does not say which.
    classify=by_code(
        envelope_code("code", None),
        {
            "-2015": rejected("invalid-key"),
            "-2014": rejected("invalid-key"),
            "-2008": rejected("invalid-key"),
            "-1022": rejected("bad-signature"),
            "-1002": rejected("permission-denied"),
            "-1021": CLOCK,
            "-1003": BUSY,
            "-1001": BUSY,
        },
    ),
    receive_window_ms=5000,
)
