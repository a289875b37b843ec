"""Each exchange's request-signing recipe, written from the exchanges' documentation with
the standard library only (never with ccxt's code), so that the mock checks ccxt
instead of agreeing with it by construction.

Every function returns the signature exactly as the exchange expects it in its header
or parameter (hex or base64 text). The mock recomputes it from the request it
received and compares in constant time (:func:`same`).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Iterable
from urllib.parse import quote


def same(expected: str, received: str) -> bool:
    """True when two signatures are equal, compared in constant time."""
    return hmac.compare_digest(expected.encode(), received.encode())


def _hmac_sha256(secret: str, message: str) -> bytes:
    return hmac.new(secret.encode(), message.encode(), hashlib.sha256).digest()


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


def binance(secret: str, total_params: str) -> str:
    """Binance SIGNED endpoints: hex HMAC-SHA256 of the query string followed by the
    request body (``totalParams``), everything but the ``signature`` parameter."""
    return _hmac_sha256(secret, total_params).hex()


def kucoin(secret: str, timestamp: str, method: str, path_and_query: str, body: str) -> str:
    """KuCoin ``KC-API-SIGN``: base64 HMAC-SHA256 of timestamp + METHOD + path (with
    ``?query`` when there is one) + body."""
    return _b64(_hmac_sha256(secret, timestamp + method + path_and_query + body))


def kucoin_passphrase(secret: str, passphrase: str) -> str:
    """KuCoin ``KC-API-PASSPHRASE`` for key versions 2 and 3: the passphrase signed
    with the secret (base64 HMAC-SHA256)."""
    return _b64(_hmac_sha256(secret, passphrase))


def okx(secret: str, timestamp: str, method: str, path_and_query: str, body: str) -> str:
    """OKX ``OK-ACCESS-SIGN``: base64 HMAC-SHA256 of the ISO 8601 millisecond timestamp
    + METHOD + request path (with ``?query`` for GET) + body."""
    return _b64(_hmac_sha256(secret, timestamp + method + path_and_query + body))


def bitget(secret: str, timestamp: str, method: str, path_and_query: str, body: str) -> str:
    """Bitget ``ACCESS-SIGN``: base64 HMAC-SHA256 of timestamp (ms) + METHOD + request
    path (with ``?query`` when there is one) + body; the same recipe as OKX's."""
    return _b64(_hmac_sha256(secret, timestamp + method + path_and_query + body))


def bybit(secret: str, timestamp: str, api_key: str, recv_window: str, payload: str) -> str:
    """Bybit v5 ``X-BAPI-SIGN``: hex HMAC-SHA256 of timestamp + api key + recv window +
    the query string (GET) or the JSON body (POST)."""
    return _hmac_sha256(secret, timestamp + api_key + recv_window + payload).hex()


def htx_canonical_query(params: Iterable[tuple[str, str]]) -> str:
    """HTX signature version 2's parameter string: every parameter but ``Signature``,
    sorted by name (ASCII order), each name and value URL-encoded with upper-case hex
    escapes, joined with ``&``."""
    pairs = sorted((name, value) for name, value in params if name != "Signature")
    return "&".join(f"{quote(name, safe='')}={quote(value, safe='')}" for name, value in pairs)


def htx(secret: str, method: str, host: str, path: str, params: Iterable[tuple[str, str]]) -> str:
    """HTX (Huobi) ``Signature``: base64 HMAC-SHA256 of ``METHOD\\nhost\\npath\\n`` + the
    canonical parameter string; host is the lower-cased host the client addressed."""
    payload = "\n".join([method, host.lower(), path, htx_canonical_query(params)])
    return _b64(_hmac_sha256(secret, payload))


def kraken(secret_b64: str, path: str, nonce: str, post_data: str) -> str:
    """Kraken ``API-Sign``: base64 HMAC-SHA512, keyed with the base64-decoded secret, of
    the URI path followed by SHA256(nonce + POST data).

    :raises binascii.Error: when the secret is not base64.
    """
    digest = hashlib.sha256((nonce + post_data).encode()).digest()
    key = base64.b64decode(secret_b64, validate=True)
    return _b64(hmac.new(key, path.encode() + digest, hashlib.sha512).digest())
