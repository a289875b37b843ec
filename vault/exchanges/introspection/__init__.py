"""Asking an exchange what a key can really do: one module per exchange.

Each module holds an :class:`~vault.exchanges.introspection.answer.Introspection`:
the ccxt implicit method of the exchange's key-introspection endpoint and its
parameters, ``parse`` (answer -> :class:`~vault.exchanges.key_report.KeyReport` in
exvault's vocabulary), what the exchange's error codes mean and its receive window.
Pure data and functions: no ccxt, no I/O (the calls are made by
``vault.ops.exchange_api``).
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from vault.exchanges.introspection import (
    binance,
    bitget,
    bybit,
    coinbase,
    gate,
    htx,
    kraken,
    kucoin,
    okx,
)
from vault.exchanges.introspection.answer import Introspection

__all__ = ["INTROSPECTIONS", "RETIRED", "introspection_for"]

INTROSPECTIONS: Mapping[str, Introspection] = MappingProxyType(
    {
        module.INTROSPECTION.exchange: module.INTROSPECTION
        for module in (binance, kucoin, okx, bybit, htx, gate, bitget, kraken, coinbase)
    }
)
"""ccxt id -> how to ask that exchange about a key."""

RETIRED: Mapping[str, str] = MappingProxyType(
    {
        "ascendex": "ccxt no longer carries AscendEX, so exvault cannot sign a request to "
        "it; review the key on AscendEX's own API page",
    }
)
"""Exchanges exvault knows it cannot ask, with what to tell the user instead."""


def introspection_for(exchange: str) -> Introspection | None:
    """How to ask ``exchange`` (a ccxt id, any case) about a key; ``None`` if unknown."""
    return INTROSPECTIONS.get(exchange.strip().lower())
