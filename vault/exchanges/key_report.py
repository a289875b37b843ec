"""What an exchange says about one API key, in exvault's vocabulary.

The exchange-facing code (``exvault probe``, automated rotation) turns each exchange's
key-introspection answer into a :class:`KeyReport`, and each way a call can fail into a
:class:`ProbeError`; the rules that compare them with the declared metadata, and the
stored observations, read only these two types. Plain data, no I/O, no ccxt: the
keyless ``check`` imports this module.

``None`` always means "the exchange does not say", never "none": Binance does not
return its IP list (``ips`` is ``None``, ``ip_restricted`` is known), Gate does not
return permissions (``permissions`` is ``None``). Rules never infer from ``None``.
"""

from __future__ import annotations

from datetime import datetime
from typing import NamedTuple

__all__ = ["ERROR_KINDS", "REJECTION_REASONS", "KeyReport", "ProbeError", "ProbeOutcome"]


class KeyReport(NamedTuple):
    """A key as its exchange reports it.

    ``permissions`` are normalized names of :data:`vault.exchanges.fields.PERMISSIONS`
    in canonical order; ``ips`` the whitelist as the exchange shows it (KuCoin masks
    middle octets: compare with care); datetimes are timezone-aware UTC.
    """

    permissions: tuple[str, ...] | None
    ip_restricted: bool | None
    ips: tuple[str, ...] | None
    expires_at: datetime | None
    created_at: datetime | None


ERROR_KINDS: tuple[str, ...] = (
    "rejected-key",  # the exchange refused this key: a verdict about the key
    "clock-skew",  # the exchange refused the request's timestamp: a verdict about the clock
    "unreachable",  # DNS, refused, timeout, TLS, 5xx, maintenance, 429: no verdict at all
    "malformed",  # an answer exvault cannot read (bad JSON, wrong shape, too large)
    "unsupported",  # the exchange has no introspection endpoint exvault can call
)
"""The kinds of :class:`ProbeError`. Only ``rejected-key`` says something about the
key; ``unreachable`` and ``malformed`` never replace an earlier observation."""

REJECTION_REASONS: tuple[str, ...] = (
    "invalid-key",  # unknown or deleted key
    "bad-signature",  # the secret does not match the key
    "wrong-passphrase",
    "ip-not-allowed",  # this host is not on the key's whitelist
    "expired",
    "permission-denied",  # the key exists but may not call the introspection endpoint
)
"""Why an exchange rejected a key (``ProbeError.reason`` of a ``rejected-key``)."""


class ProbeError(NamedTuple):
    """Why a probe got no :class:`KeyReport`.

    ``kind`` is one of :data:`ERROR_KINDS`; ``reason`` one of
    :data:`REJECTION_REASONS` for ``rejected-key`` (else ``None``); ``code`` the
    exchange's own error code as text (``"-2015"``, ``"50111"``), or the HTTP status,
    or ``None``; ``message`` one line that never holds a secret, a signature or a
    request URL with its query (exception texts of HTTP libraries do).
    ``retry_after`` is the seconds a 429 or maintenance answer asked to wait.
    """

    kind: str
    reason: str | None
    code: str | None
    message: str
    retry_after: float | None = None


class ProbeOutcome(NamedTuple):
    """One probe of one key: when, what the exchange said, and the clock skew.

    Exactly one of ``report`` and ``error`` is set. ``skew_ms`` is the exchange's
    server time minus the local clock at the middle of the time request (``None`` if
    the time endpoint could not be read); ``receive_window_ms`` is how far the exchange
    lets a request's timestamp stray (Binance's ``recvWindow``, OKX's 30 s...), used by
    the clock-skew rule.
    """

    observed_at: datetime
    report: KeyReport | None
    error: ProbeError | None
    skew_ms: int | None
    receive_window_ms: int | None

    @property
    def ok(self) -> bool:
        """Whether the exchange answered with a report on the key."""
        return self.report is not None
