"""ccxt clients for the key-management calls, and what their failures mean.

ccxt is the optional ``exchanges`` extra: it is imported when a call is made, so that
the keyless commands sharing a module with automated rotation never load it.

A failed call becomes an :class:`~vault.errors.ExchangeError` (the exchange refused:
nothing happened) or an :class:`~vault.errors.ExchangeUnreachable` (a network error, a
5xx, a timeout: the call may or may not have acted). The message holds the exchange,
the call and the exchange's error code only: ccxt's exception text quotes the answer
body (Bybit's echoes the signed request, a create's holds its passphrase) and request
URLs with signatures.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from vault.errors import (
    ExchangeError,
    ExchangeUnreachable,
    VaultError,
    VaultUnavailable,
    printable,
)
from vault.exchanges.fields import CCXT_CREDENTIAL_NAMES

DEFAULT_TIMEOUT_MS = 10_000
T = TypeVar("T")


def _ccxt() -> Any:
    try:
        import ccxt  # type: ignore[import-untyped]
    except ImportError:
        raise VaultUnavailable(
            "rotating keys at the exchange needs ccxt: pip install 'exvault[exchanges]'"
        ) from None
    return ccxt


def connect(
    exchange: str, fields: Mapping[str, str], *, timeout_ms: int = DEFAULT_TIMEOUT_MS
) -> Any:
    """A ccxt client of ``exchange`` holding the credential ``fields`` (payload names).

    :raises VaultUnavailable: when ccxt is not installed.
    """
    ccxt = _ccxt()
    config: dict[str, Any] = {
        CCXT_CREDENTIAL_NAMES[name]: value
        for name, value in fields.items()
        if name in CCXT_CREDENTIAL_NAMES
    }
    config.update(timeout=timeout_ms, enableRateLimit=True)
    return getattr(ccxt, exchange)(config)


def error_code(exc: BaseException) -> str | None:
    """The exchange's error code in a ccxt exception (its text is the exchange id, at
    times a sentence, and the answer body), or None. Only the code leaves here."""
    text = str(exc)
    start = text.find("{")
    try:
        answer, _ = json.JSONDecoder().raw_decode(text[start:]) if start >= 0 else (None, 0)
    except ValueError:
        return None
    if not isinstance(answer, dict):
        return None
    for name in ("code", "retCode", "ret_code", "label", "err-code"):
        value = answer.get(name)
        if isinstance(value, (str, int)) and not isinstance(value, bool):
            return printable(str(value)[:40])
    return None


def failure(exchange: str, what: str, exc: BaseException, *, unknown: bool = False) -> VaultError:
    """The error to raise for ``exc``, raised by the call ``what`` (``unknown``: any
    failure that is not a clear refusal leaves the outcome unknown, as for a create)."""
    ccxt = _ccxt()
    kind = type(exc).__name__
    if isinstance(exc, ccxt.NetworkError):
        return ExchangeUnreachable(
            f"{exchange} did not answer {what} ({kind}): whether it acted is unknown"
        )
    if isinstance(exc, ccxt.BaseError):
        code = error_code(exc)
        return ExchangeError(
            f"{exchange} refused {what} ({kind}" + (f", code {code})" if code else ")")
        )
    if unknown:
        return ExchangeUnreachable(
            f"{exchange} answered {what} in a shape exvault cannot read: "
            "whether it acted is unknown"
        )
    return ExchangeError(f"{exchange} answered {what} in a shape exvault cannot read")


def call(exchange: str, what: str, action: Callable[[], T], *, unknown: bool = False) -> T:
    """``action()``, with any failure turned into :func:`failure`'s error.

    The error is raised outside the ``except`` block, so it carries no ``__context__``:
    the original's text and its traceback's locals may hold secrets.
    """
    try:
        return action()
    except VaultError:
        raise
    except Exception as exc:  # ccxt's errors, and a malformed answer's KeyError/TypeError
        error = failure(exchange, what, exc, unknown=unknown)
    raise error
