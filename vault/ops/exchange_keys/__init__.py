"""Sub-account API keys managed through the exchanges' APIs (automated rotation).

One module per exchange that allows it (:mod:`.okx`, :mod:`.bybit`, :mod:`.kucoin`,
:mod:`.gate`), each a :class:`~.model.SubAccountKeys`; :func:`for_exchange` picks it or
says why an exchange cannot be automated (:data:`UNSUPPORTED`).
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from vault.errors import InvalidInput, quoted
from vault.ops.exchange_keys.bybit import BybitKeys
from vault.ops.exchange_keys.gate import GateKeys
from vault.ops.exchange_keys.kucoin import KucoinKeys
from vault.ops.exchange_keys.model import ListedKey, NewKey, SubAccountKeys
from vault.ops.exchange_keys.okx import OkxKeys

__all__ = ["SUPPORTED", "UNSUPPORTED", "ListedKey", "NewKey", "SubAccountKeys", "for_exchange"]

SUPPORTED: Mapping[str, SubAccountKeys] = MappingProxyType(
    {keys.exchange: keys for keys in (OkxKeys(), BybitKeys(), KucoinKeys(), GateKeys())}
)

UNSUPPORTED: Mapping[str, str] = MappingProxyType(
    {
        "htx": "HTX creates a sub-account's key only with the parent account's one-time "
        "password (otpToken), which no unattended process has",
        "binance": "Binance creates sub-account keys through its API for broker accounts "
        "only; an ordinary master account creates them in the web interface",
    }
)
"""Exchanges whose sub-account keys cannot be rotated by exvault, and why."""


def for_exchange(exchange: str) -> SubAccountKeys:
    """The key management of ``exchange``.

    :raises InvalidInput: for an exchange that cannot be automated, saying why.
    """
    if exchange in SUPPORTED:
        return SUPPORTED[exchange]
    reason = UNSUPPORTED.get(exchange, "its API offers no sub-account key management exvault uses")
    raise InvalidInput(
        f"keys of {quoted(exchange)} cannot be rotated at the exchange: {reason}; "
        f"supported: {', '.join(SUPPORTED)}"
    )
