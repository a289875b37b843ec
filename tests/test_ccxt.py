"""ccxt integration: a credential loaded by a client feeds ccxt's constructors, and
ccxt's own ``sign()`` of a private request works with it (pure: no network).

Each signature ccxt produces is recomputed here from the loaded secret, following the
exchange's signing recipe, so the test proves that ccxt
signed with exactly the stored values. Binance and Kraken are also checked against
their published test vectors.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from datetime import date
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

import vault
from tests.conftest import (
    BINANCE_API_KEY,
    BINANCE_SECRET,
    KUCOIN_API_KEY,
    KUCOIN_PASSPHRASE,
    KUCOIN_SECRET,
)
from vault.owner.admin import AdminVault
from vault.runtime.credential import Credential
from vault.secret import Secret

ccxt = pytest.importorskip("ccxt")

# Published test vectors (Binance API docs, Kraken REST authentication docs).
BINANCE_VECTOR_PAYLOAD = (
    "symbol=LTCBTC&side=BUY&type=LIMIT&timeInForce=GTC&quantity=1&price=0.1"
    "&recvWindow=5000&timestamp=1499827319559"
)
BINANCE_VECTOR_SIGNATURE = "c8db56825ae71d6d79447849e617115f4a920fa2acdcab2b053c4b2838bd6b71"
KRAKEN_SECRET = (
    "kQH5HW/8p1uGOVjbgWA7FunAmGO8lsSUXNsu3eow76sz84Q18fWxnyRzBHCd3pd5nE9qa99HAZtuZuj6F1huXg=="
)
KRAKEN_VECTOR_NONCE = 1616492376594
KRAKEN_VECTOR_PATH = "/0/private/AddOrder"
KRAKEN_VECTOR_PARAMS = {
    "ordertype": "limit",
    "pair": "XBTUSD",
    "price": "37500",
    "type": "buy",
    "volume": "1.25",
}
KRAKEN_VECTOR_BODY = (
    "nonce=1616492376594&ordertype=limit&pair=XBTUSD&price=37500&type=buy&volume=1.25"
)
KRAKEN_VECTOR_SIGNATURE = (
    "4/dpxb3iT4tp/ZCVEwSnEsLxx0bqyhLpdfOpc6fn7OR8+UClSV5n9E6aSS8MPtnRfp32bAb0nmbRn6H8ndwLUQ=="
)

PAYLOADS: dict[str, dict[str, str]] = {
    "binance": {"api_key": BINANCE_API_KEY, "secret": BINANCE_SECRET},
    "kucoin": {"api_key": KUCOIN_API_KEY, "secret": KUCOIN_SECRET, "passphrase": KUCOIN_PASSPHRASE},
    "okx": {
        "api_key": "0b6e5a4c-1f2d-4e3a-9b8c-7d6e5f4a3b2c",
        "secret": "9F3C2B1A0E9D8C7B6A5F4E3D2C1B0A99",
        "passphrase": "Okx#Trade2024",  # 8-32 chars, digit, upper, lower, special
    },
    "bybit": {"api_key": "XBz7Qw3Lk9Rt2Yp5Vn", "secret": "Hj4Kd8Fs2Lq6Wz9Xc3Vb7Nm1Pa5Se0RtYuIo"},
    "kraken": {
        "api_key": "Kr4kEnPubl1cK3yAbCdEfGhIjKlMnOpQrStUvWxYz0123456789+/abcd",
        "secret": KRAKEN_SECRET,
        "uid": "AA12 N84H ZZSC 7YVZ",
    },
}
CREDENTIAL_NAMES = {exchange: f"{exchange}-bot" for exchange in PAYLOADS}


@pytest.fixture
def creds(admin: AdminVault, vault_path: Path) -> dict[str, Credential]:
    """Each exchange's credential, stored by the admin and loaded back by a client
    "ccxt-bot" granted them, through ``vault.load`` with its token."""
    for exchange, payload in PAYLOADS.items():
        admin.add(CREDENTIAL_NAMES[exchange], exchange, payload, permissions="read,trade")
    _, token = admin.add_client("ccxt-bot", max_scope="trade")
    admin.grant("ccxt-bot", list(CREDENTIAL_NAMES.values()))
    return {
        exchange: vault.load(name, where=vault_path, token=token)
        for exchange, name in CREDENTIAL_NAMES.items()
    }


def construct(exchange: str, creds: dict[str, Credential]) -> Any:
    """``ccxt.<exchange>(cred.ccxt())``, checking the object holds the stored values."""
    ex = getattr(ccxt, exchange)(creds[exchange].ccxt())
    payload = PAYLOADS[exchange]
    assert ex.apiKey == payload["api_key"]
    assert ex.secret == payload["secret"]
    assert ex.password == payload.get("passphrase")
    assert ex.uid == payload.get("uid")
    return ex


def hmac_sha256(secret: str, message: str) -> bytes:
    return hmac.new(secret.encode(), message.encode(), hashlib.sha256).digest()


def path_and_query(url: str) -> str:
    parts = urlsplit(url)
    return parts.path + (f"?{parts.query}" if parts.query else "")


# ------------------------------------------------------------------ constructors


def test_ccxt_exchanges_take_the_loaded_credentials(creds: dict[str, Credential]) -> None:
    for exchange in PAYLOADS:
        assert creds[exchange].exchange == exchange
        ex = construct(exchange, creds)
        # ccxt's own view of what this exchange needs is satisfied.
        ex.check_required_credentials()


# ------------------------------------------------------------------ ccxt's sign()


def test_binance_sign_private_request(creds: dict[str, Credential]) -> None:
    ex = construct("binance", creds)
    request = ex.sign("account", ["private"], "GET", {})
    assert request["url"].startswith("https://api.binance.com/api/v3/account?")
    assert request["headers"]["X-MBX-APIKEY"] == BINANCE_API_KEY
    query = urlsplit(request["url"]).query
    signed, _, signature = query.rpartition("&signature=")
    assert signed.startswith("timestamp=") and signature
    assert signature == hmac_sha256(BINANCE_SECRET, signed).hex()
    # The published vector, with the loaded secret and with ccxt's HMAC helper.
    assert hmac_sha256(creds["binance"].secret.reveal(), BINANCE_VECTOR_PAYLOAD).hex() == (
        BINANCE_VECTOR_SIGNATURE
    )
    assert (
        ex.hmac(ex.encode(BINANCE_VECTOR_PAYLOAD), ex.encode(ex.secret), hashlib.sha256)
        == BINANCE_VECTOR_SIGNATURE
    )


def test_kucoin_sign_private_request(creds: dict[str, Credential]) -> None:
    ex = construct("kucoin", creds)
    request = ex.sign("accounts", ["private"], "GET", {"type": "trade"})
    headers = request["headers"]
    assert headers["KC-API-KEY"] == KUCOIN_API_KEY
    assert headers["KC-API-KEY-VERSION"] == "2"
    # Key version 2: the passphrase travels HMAC'ed with the secret.
    assert (
        headers["KC-API-PASSPHRASE"]
        == base64.b64encode(hmac_sha256(KUCOIN_SECRET, KUCOIN_PASSPHRASE)).decode()
    )
    endpoint = path_and_query(request["url"])
    assert endpoint == "/api/v1/accounts?type=trade"
    prehash = headers["KC-API-TIMESTAMP"] + "GET" + endpoint
    assert headers["KC-API-SIGN"] == base64.b64encode(hmac_sha256(KUCOIN_SECRET, prehash)).decode()


def test_okx_sign_private_request(creds: dict[str, Credential]) -> None:
    payload = PAYLOADS["okx"]
    ex = construct("okx", creds)
    request = ex.sign("account/balance", ["private"], "GET", {"ccy": "BTC"})
    headers = request["headers"]
    assert headers["OK-ACCESS-KEY"] == payload["api_key"]
    assert headers["OK-ACCESS-PASSPHRASE"] == payload["passphrase"]
    endpoint = path_and_query(request["url"])
    assert endpoint == "/api/v5/account/balance?ccy=BTC"
    prehash = headers["OK-ACCESS-TIMESTAMP"] + "GET" + endpoint
    assert (
        headers["OK-ACCESS-SIGN"]
        == base64.b64encode(hmac_sha256(payload["secret"], prehash)).decode()
    )


def test_bybit_v5_sign_private_request(creds: dict[str, Credential]) -> None:
    payload = PAYLOADS["bybit"]
    ex = construct("bybit", creds)
    request = ex.sign("v5/account/wallet-balance", ["private"], "GET", {"accountType": "UNIFIED"})
    headers = request["headers"]
    assert headers["X-BAPI-API-KEY"] == payload["api_key"]
    query = urlsplit(request["url"]).query
    assert query == "accountType=UNIFIED"
    prehash = (
        headers["X-BAPI-TIMESTAMP"] + payload["api_key"] + headers["X-BAPI-RECV-WINDOW"] + query
    )
    assert headers["X-BAPI-SIGN"] == hmac_sha256(payload["secret"], prehash).hex()


def kraken_signature(secret_b64: str, path: str, nonce: str, body: str) -> str:
    """HMAC-SHA512(base64-decoded secret, path + SHA256(nonce + body)), base64."""
    message = path.encode() + hashlib.sha256((nonce + body).encode()).digest()
    mac = hmac.new(base64.b64decode(secret_b64), message, hashlib.sha512)
    return base64.b64encode(mac.digest()).decode()


def test_kraken_sign_private_requests(creds: dict[str, Credential]) -> None:
    # The published vector, recomputed with the loaded secret...
    assert (
        kraken_signature(
            creds["kraken"].secret.reveal(),
            KRAKEN_VECTOR_PATH,
            str(KRAKEN_VECTOR_NONCE),
            KRAKEN_VECTOR_BODY,
        )
        == KRAKEN_VECTOR_SIGNATURE
    )
    # ...and reproduced by ccxt's sign() given the vector's nonce instead of the clock.
    ex = construct("kraken", creds)
    ex.incrementing_nonce = lambda: KRAKEN_VECTOR_NONCE
    request = ex.sign("AddOrder", ["private"], "POST", dict(KRAKEN_VECTOR_PARAMS))
    assert urlsplit(request["url"]).path == KRAKEN_VECTOR_PATH
    assert request["body"] == KRAKEN_VECTOR_BODY
    assert request["headers"]["API-Key"] == PAYLOADS["kraken"]["api_key"]
    assert request["headers"]["API-Sign"] == KRAKEN_VECTOR_SIGNATURE
    # A balance request with a real nonce.
    ex = construct("kraken", creds)
    request = ex.sign("Balance", ["private"], "POST", {})
    assert request["url"] == "https://api.kraken.com/0/private/Balance"
    nonce = request["body"].removeprefix("nonce=")
    assert nonce.isdigit()
    assert request["headers"]["API-Key"] == PAYLOADS["kraken"]["api_key"]
    assert request["headers"]["API-Sign"] == kraken_signature(
        KRAKEN_SECRET, "/0/private/Balance", nonce, request["body"]
    )


def test_sign_without_credentials_fails_in_ccxt() -> None:
    """The control: ccxt refuses to sign a private request with no key at all."""
    with pytest.raises(ccxt.AuthenticationError):
        ccxt.kucoin({}).sign("accounts", ["private"], "GET", {})


# ------------------------------------------------------------------ Credential.ccxt()


def credential(**fields: str) -> Credential:
    return Credential(
        name="c",
        exchange="other",
        permissions=("read",),
        ips=(),
        version=1,
        stage="current",
        issued_on=date(2024, 1, 1),
        expires_on=None,
        fields={k: Secret(v) for k, v in fields.items()},
    )


def test_ccxt_dict_of_loaded_credentials(creds: dict[str, Credential]) -> None:
    # Fields the credential lacks are left out.
    assert creds["binance"].ccxt() == {"apiKey": BINANCE_API_KEY, "secret": BINANCE_SECRET}
    # Our passphrase is ccxt's password.
    assert creds["kucoin"].ccxt() == {
        "apiKey": KUCOIN_API_KEY,
        "secret": KUCOIN_SECRET,
        "password": KUCOIN_PASSPHRASE,
    }
    # A stored uid is included.
    assert creds["kraken"].ccxt() == {
        "apiKey": PAYLOADS["kraken"]["api_key"],
        "secret": KRAKEN_SECRET,
        "uid": PAYLOADS["kraken"]["uid"],
    }
    # The credential itself shows none of it.
    cred = creds["kucoin"]
    shown = repr(cred) + str(cred.secret) + repr(cred.passphrase) + f"{cred.api_key}"
    for value in PAYLOADS["kucoin"].values():
        assert value not in shown


def test_ccxt_dict_names_and_plain_strings() -> None:
    cred = credential(
        api_key="k" * 20,
        secret="s" * 20,
        passphrase="p" * 10,
        uid="42",
        private_key="0xabc",
        wallet_address="0xdef",
        account_id="acc",
        note="not a ccxt field",
    )
    out = cred.ccxt()
    assert out == {
        "apiKey": "k" * 20,
        "secret": "s" * 20,
        "password": "p" * 10,
        "uid": "42",
        "privateKey": "0xabc",
        "walletAddress": "0xdef",
        "accountId": "acc",
    }
    assert all(type(v) is str for v in out.values())
    # A fresh dict each time: ccxt may keep (or mutate) it without touching the credential.
    out["apiKey"] = "changed"
    assert cred.ccxt()["apiKey"] == "k" * 20


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"api_key": "k" * 20, "secret": "s" * 20}, {"apiKey", "secret"}),
        ({"api_key": "k" * 20, "secret": "s" * 20, "uid": "7"}, {"apiKey", "secret", "uid"}),
        ({"api_key": "k" * 20}, {"apiKey"}),
    ],
)
def test_ccxt_dict_keys(fields: dict[str, str], expected: set[str]) -> None:
    assert set(credential(**fields).ccxt()) == expected
