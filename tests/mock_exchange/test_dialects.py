"""How each dialect reads the credentials of a request, on hand-built requests for
the cases ccxt's introspection calls do not reach (bodies, JSON, bad formats)."""

from __future__ import annotations

import json

import pytest

from tests.mock_exchange import signing
from tests.mock_exchange.exchanges import Binance, Kraken, Okx, Refused, Request, ip_allowed
from tests.mock_exchange.registry import Account, ApiKey
from tests.mock_exchange.test_signing import (
    BINANCE_PAYLOAD,
    BINANCE_SECRET,
    BINANCE_SIGNATURE,
    KRAKEN_SECRET,
)

BINANCE_KEY = ApiKey(
    "vmPUZE6mv9SD5VNHk4HlWFsOr6aKE2zvsw0MuIgwCIPy6utIco14y7Ju91duEh8A", BINANCE_SECRET, Account("1")
)


def request(method: str, path: str, query: str = "", body: str = "", **headers: str) -> Request:
    return Request(
        method=method,
        path=path,
        raw_query=query,
        headers={name.lower().replace("_", "-"): value for name, value in headers.items()},
        body=body.encode(),
        client_ip="127.0.0.1",
    )


def test_binance_signature_in_the_body_covers_the_body() -> None:
    # The published vector, sent as a form body (Binance's "example 2").
    body = f"{BINANCE_PAYLOAD}&signature={BINANCE_SIGNATURE}"
    claim = Binance().claim(
        request("POST", "/api/v3/order", body=body, X_MBX_APIKEY=BINANCE_KEY.api_key)
    )
    assert claim.signature_ok(BINANCE_KEY)
    tampered = body.replace("quantity=1", "quantity=9")
    claim = Binance().claim(
        request("POST", "/api/v3/order", body=tampered, X_MBX_APIKEY=BINANCE_KEY.api_key)
    )
    assert not claim.signature_ok(BINANCE_KEY)


def test_binance_signature_split_between_query_and_body() -> None:
    # Binance's published "example 3": totalParams is the query string followed by the
    # body, with no separator between them.
    query = "symbol=LTCBTC&side=BUY&type=LIMIT&timeInForce=GTC"
    body = "quantity=1&price=0.1&recvWindow=5000&timestamp=1499827319559"
    signature = "0fd168b8ddb4876a0358a8d14d0c9f3da0e9b20c5d52b2a00fcf7d1c602f9a77"
    claim = Binance().claim(
        request(
            "POST",
            "/api/v3/order",
            query=query,
            body=f"{body}&signature={signature}",
            X_MBX_APIKEY=BINANCE_KEY.api_key,
        )
    )
    assert claim.signature_ok(BINANCE_KEY)
    swapped = Binance().claim(
        request(
            "POST",
            "/api/v3/order",
            query=f"{query}&{body}&signature={signature}",
            X_MBX_APIKEY=BINANCE_KEY.api_key,
        )
    )
    assert not swapped.signature_ok(BINANCE_KEY)  # one "&" more: another payload


def test_binance_malformed_key_is_refused_as_format_invalid() -> None:
    with pytest.raises(Refused) as refused:
        Binance().claim(request("GET", "/sapi/v1/account/apiRestrictions", X_MBX_APIKEY="short"))
    assert refused.value.reason == "missing_credentials"


def test_binance_missing_timestamp_is_a_bad_request() -> None:
    with pytest.raises(Refused) as refused:
        Binance().claim(
            request(
                "GET",
                "/sapi/v1/account/apiRestrictions",
                query="signature=00",
                X_MBX_APIKEY=BINANCE_KEY.api_key,
            )
        )
    assert (refused.value.reason, refused.value.context) == ("bad_request", {"name": "timestamp"})


def test_kraken_json_body_is_signed_as_sent() -> None:
    key = ApiKey("kraken-key", KRAKEN_SECRET, Account("AA12 N84H ZZSC 7YVZ"))
    body = json.dumps({"nonce": "1616492376594", "pair": "XBTUSD"})
    sign = signing.kraken(KRAKEN_SECRET, "/0/private/AddOrderBatch", "1616492376594", body)
    claim = Kraken().claim(
        request(
            "POST",
            "/0/private/AddOrderBatch",
            body=body,
            API_Key=key.api_key,
            API_Sign=sign,
            Content_Type="application/json",
        )
    )
    assert claim.signature_ok(key) and claim.fresh(key, 0)
    key.highest_nonce = 1616492376594  # the same nonce again is stale
    assert not claim.fresh(key, 0)


def test_kraken_secret_that_is_not_base64_never_verifies() -> None:
    key = ApiKey("kraken-key", "not base64!", Account("1"))
    claim = Kraken().claim(
        request(
            "POST",
            "/0/private/GetApiKeyInfo",
            body="nonce=1",
            API_Key="kraken-key",
            API_Sign="AAAA",
        )
    )
    assert not claim.signature_ok(key)


def test_okx_timestamp_not_iso8601_is_invalid() -> None:
    headers = {
        "OK_ACCESS_KEY": "k",
        "OK_ACCESS_SIGN": "s",
        "OK_ACCESS_PASSPHRASE": "p",
        "OK_ACCESS_TIMESTAMP": "1616492376594",
    }
    with pytest.raises(Refused) as refused:
        Okx().claim(request("GET", "/api/v5/account/config", **headers))
    assert (refused.value.reason, refused.value.detail) == ("stale_timestamp", "format")


def test_okx_missing_passphrase_header_is_named() -> None:
    headers = {"OK_ACCESS_KEY": "k", "OK_ACCESS_SIGN": "s", "OK_ACCESS_TIMESTAMP": "t"}
    with pytest.raises(Refused) as refused:
        Okx().claim(request("GET", "/api/v5/account/config", **headers))
    assert refused.value.detail == "OK-ACCESS-PASSPHRASE"


def test_ip_whitelist_takes_addresses_and_ranges() -> None:
    key = ApiKey("k", "s", Account("1"), ip_whitelist=("203.0.113.7", "10.1.0.0/16"))
    assert ip_allowed(key, "203.0.113.7") and ip_allowed(key, "10.1.200.3")
    assert not ip_allowed(key, "203.0.113.8")
    assert not ip_allowed(key, "not-an-ip")
    assert ip_allowed(ApiKey("k", "s", Account("1")), "198.51.100.1")  # no whitelist
