"""A real ccxt client per exchange, pointed at the mock: the key-introspection call
answers in the documented shape, and every way of getting the credentials wrong gets
the exchange's own error, which ccxt maps to its exception class."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import pytest

from tests.mock_exchange.clients import ccxt_client
from tests.mock_exchange.registry import Account, ApiKey
from tests.mock_exchange.server import MockExchange, MockExchanges

ccxt = pytest.importorskip("ccxt")

KRAKEN_SECRET = (
    "kQH5HW/8p1uGOVjbgWA7FunAmGO8lsSUXNsu3eow76sz84Q18fWxnyRzBHCd3pd5nE9qa99HAZtuZuj6F1huXg=="
)
OTHER_KRAKEN_SECRET = (
    "Zm9yZ2VkLXNlY3JldC1mb3ItdGhlLW1vY2stZXhjaGFuZ2Utb25seS0wMTIzNDU2Nzg5YWJjZGVmZ2hpams="
)
MAIN = Account("1001", "main")
SUB = Account("2002", "grid-sub", parent="1001")
WHITELISTED_IP = "203.0.113.7"
OTHER_IP = "198.51.100.23"

# One key per exchange, in the exchange's own formats and permission vocabulary.
KEYS: dict[str, dict[str, Any]] = {
    "binance": {
        "api_key": "vmPUZE6mv9SD5VNHk4HlWFsOr6aKE2zvsw0MuIgwCIPy6utIco14y7Ju91duEh8A",
        "secret": "NhqPtmdSJYdKjVHjA7PZj4Mge3R5YNiP1e3UZjInClVN65XAbvqqM6A7H5fATj0j",
        "permissions": ("enableReading", "enableSpotAndMarginTrading"),
        "unknown": "Zz" * 32,
    },
    "kucoin": {
        "api_key": "64f1c0ffee5ca1ab1e00d1e5",
        "secret": "3b1f9c2e-7d4a-4e8b-9f6c-0a1b2c3d4e5f",
        "passphrase": "Tr4d1ngB0t!pass",
        "permissions": ("General", "Spot"),
        "unknown": "64f1c0ffee5ca1ab1e00d1e6",
    },
    "okx": {
        "api_key": "0b6e5a4c-1f2d-4e3a-9b8c-7d6e5f4a3b2c",
        "secret": "9F3C2B1A0E9D8C7B6A5F4E3D2C1B0A99",
        "passphrase": "Okx#Trade2024",
        "permissions": ("read_only", "trade"),
        "account": SUB,
        "unknown": "0b6e5a4c-1f2d-4e3a-9b8c-7d6e5f4a3b2d",
    },
    "bybit": {
        "api_key": "XBz7Qw3Lk9Rt2Yp5Vn",
        "secret": "Hj4Kd8Fs2Lq6Wz9Xc3Vb7Nm1Pa5Se0RtYuIo",
        "permissions": ("Spot:SpotTrade", "Wallet:AccountTransfer"),
        "account": SUB,
        "unknown": "XBz7Qw3Lk9Rt2Yp5Vm",
    },
    "htx": {
        "api_key": "e2a1b3c4-5d6e7f80-91a2b3c4-d5e6f",
        "secret": "7c8d9e0f-1a2b3c4d-5e6f7a8b-9c0d1",
        "permissions": ("readOnly", "trade"),
        "unknown": "e2a1b3c4-5d6e7f80-91a2b3c4-d5e60",
    },
    "kraken": {
        "api_key": "Kr4kEnPubl1cK3yAbCdEfGhIjKlMnOpQrStUvWxYz0123456789+/abcd",
        "secret": KRAKEN_SECRET,
        "permissions": ("query-funds", "query-open-trades", "modify-trades"),
        "unknown": "Kr4kEnPubl1cK3yAbCdEfGhIjKlMnOpQrStUvWxYz0123456789+/abce",
    },
    "bitget": {
        "api_key": "bg_5f0c1d2e3a4b5c6d7e8f9a0b1c2d3e4f",
        "secret": "c0ffee00112233445566778899aabbccddeeff00112233445566778899aabbcc",
        "passphrase": "Bitget2024pass",
        "permissions": ("readonly", "trade"),
        "unknown": "bg_5f0c1d2e3a4b5c6d7e8f9a0b1c2d3e40",
    },
}
EXCHANGES = list(KEYS)
WITH_PASSPHRASE = [name for name in EXCHANGES if "passphrase" in KEYS[name]]


def register(mock: MockExchange, **changes: Any) -> ApiKey:
    """The exchange's sample key, registered in the mock."""
    sample = KEYS[mock.name]
    key = ApiKey(
        api_key=sample["api_key"],
        secret=sample["secret"],
        passphrase=sample.get("passphrase"),
        account=sample.get("account", MAIN),
        permissions=sample["permissions"],
        ip_whitelist=(WHITELISTED_IP,),
        label=f"{mock.name}-bot",
        **changes,
    )
    if key.account.parent is not None:
        mock.add_account(MAIN)
    mock.state.client_ip = WHITELISTED_IP
    return mock.add_key(key)


def introspect(client: Any, key: ApiKey) -> Any:
    """The exchange's key-introspection call, through ccxt's implicit API."""
    calls: dict[str, Callable[[], Any]] = {
        "binance": lambda: client.sapiGetAccountApiRestrictions(),
        "kucoin": lambda: client.privateGetUserApiKey(),
        "okx": lambda: client.privateGetAccountConfig(),
        "bybit": lambda: client.privateGetV5UserQueryApi(),
        "htx": lambda: client.v2PrivateGetUserApiKey({"uid": key.account.uid}),
        "kraken": lambda: client.privatePostGetApiKeyInfo(),
        "bitget": lambda: client.privateSpotGetV2SpotAccountInfo(),
    }
    return calls[client.id]()


def server_time(client: Any) -> int:
    """The exchange's server time in ms, through ccxt's implicit public API."""
    name = client.id
    if name == "binance":
        return int(client.publicGetTime()["serverTime"])
    if name == "kucoin":
        answer = client.publicGetTimestamp()
        assert answer["code"] == "200000"
        return int(answer["data"])
    if name == "okx":
        answer = client.publicGetPublicTime()
        assert answer["code"] == "0"
        return int(answer["data"][0]["ts"])
    if name == "bybit":
        answer = client.publicGetV5MarketTime()
        assert answer["retCode"] == 0
        return int(answer["result"]["timeNano"]) // 1_000_000
    if name == "htx":
        answer = client.publicGetCommonTimestamp()
        assert answer["status"] == "ok"
        return int(answer["data"])
    if name == "kraken":
        answer = client.publicGetTime()
        assert answer["error"] == []
        return int(answer["result"]["unixtime"]) * 1000
    answer = client.publicCommonGetV2PublicTime()
    assert answer["code"] == "00000"
    return int(answer["data"]["serverTime"])


def check_shape(name: str, answer: Any, key: ApiKey) -> None:
    """The introspection answer has the documented envelope and fields, and reports the
    key's permissions, IP whitelist and account as the exchange words them."""
    ip = WHITELISTED_IP
    if name == "binance":
        assert answer["ipRestrict"] is True
        assert answer["enableReading"] is True and answer["enableSpotAndMarginTrading"] is True
        assert answer["enableWithdrawals"] is False
        assert answer["createTime"] == key.created_ms()
    elif name == "kucoin":
        assert answer["code"] == "200000"
        data = answer["data"]
        assert data["apiKey"] == key.api_key and data["permission"] == "General,Spot"
        assert data["ipWhitelist"] == ip and data["isMaster"] is True and data["uid"] == 1001
    elif name == "okx":
        assert answer["code"] == "0"
        (config,) = answer["data"]
        assert config["perm"] == "read_only,trade" and config["ip"] == ip
        assert config["label"] == "okx-bot"
        assert (config["uid"], config["mainUid"]) == ("2002", "1001")  # a sub-account
    elif name == "bybit":
        assert answer["retCode"] == 0
        result = answer["result"]
        assert result["apiKey"] == key.api_key and result["secret"] == ""
        assert result["permissions"]["Spot"] == ["SpotTrade"]
        assert result["permissions"]["Wallet"] == ["AccountTransfer"]
        assert result["ips"] == [ip] and result["readOnly"] == 0
        assert result["isMaster"] is False and result["parentUid"] == "1001"
    elif name == "htx":
        assert answer["code"] == 200
        (entry,) = answer["data"]
        assert entry["accessKey"] == key.api_key and entry["permission"] == "readOnly,trade"
        assert entry["ipAddresses"] == ip and entry["status"] == "normal"
    elif name == "kraken":
        assert answer["error"] == []
        result = answer["result"]
        assert result["apiKey"] == key.api_key and result["apiKeyName"] == "kraken-bot"
        assert result["permissions"] == ["query-funds", "query-open-trades", "modify-trades"]
        assert result["ipAllowlist"] == [ip]
        assert int(result["nonce"]) == key.highest_nonce > 0
    else:
        assert answer["code"] == "00000"
        data = answer["data"]
        assert data["authorities"] == ["readonly", "trade"] and data["ips"] == ip
        assert data["userId"] == "1001"


# ------------------------------------------------------------------ the good path


@pytest.mark.parametrize("name", EXCHANGES)
def test_introspection_answers_in_the_documented_shape(
    mock_exchanges: MockExchanges, name: str
) -> None:
    mock = mock_exchanges[name]
    key = register(mock)
    answer = introspect(ccxt_client(mock, key), key)
    check_shape(name, answer, key)
    (record,) = mock.requests()
    assert (record.api_key, record.status, record.outcome) == (key.api_key, 200, "ok")


@pytest.mark.parametrize("name", EXCHANGES)
def test_server_time_is_the_mock_clock(mock_exchanges: MockExchanges, name: str) -> None:
    mock = mock_exchanges[name]
    mock.state.clock_offset_ms = 7 * 86_400_000  # a week ahead: unmistakably the mock's
    client = ccxt_client(mock, register(mock))
    assert abs(server_time(client) - mock.state.clock_ms()) < 5_000


# ------------------------------------------------------------------ refusals

# exchange -> case -> (the exact ccxt exception class, the code in its message)
REFUSALS: dict[str, dict[str, tuple[type[Exception], str]]] = {
    "binance": {
        "wrong_secret": (ccxt.AuthenticationError, '"code":-1022'),
        "unknown_key": (ccxt.AuthenticationError, '"code":-2015'),
        "ip_not_allowed": (ccxt.AuthenticationError, '"code":-2015'),
        "skewed_clock": (ccxt.InvalidNonce, '"code":-1021'),
    },
    "kucoin": {
        "wrong_secret": (ccxt.AuthenticationError, '"code":"400005"'),
        "wrong_passphrase": (ccxt.AuthenticationError, '"code":"400004"'),
        "unknown_key": (ccxt.AuthenticationError, '"code":"400003"'),
        "ip_not_allowed": (ccxt.AuthenticationError, '"code":"400006"'),
        "skewed_clock": (ccxt.InvalidNonce, '"code":"400002"'),
    },
    "okx": {
        "wrong_secret": (ccxt.AuthenticationError, '"code":"50113"'),
        "wrong_passphrase": (ccxt.AuthenticationError, '"code":"50105"'),
        "unknown_key": (ccxt.AuthenticationError, '"code":"50111"'),
        "ip_not_allowed": (ccxt.PermissionDenied, '"code":"50110"'),
        "skewed_clock": (ccxt.InvalidNonce, '"code":"50102"'),
    },
    "bybit": {
        "wrong_secret": (ccxt.AuthenticationError, '"retCode":10004'),
        "unknown_key": (ccxt.AuthenticationError, '"retCode":10003'),
        "ip_not_allowed": (ccxt.PermissionDenied, '"retCode":10010'),
        "skewed_clock": (ccxt.InvalidNonce, '"retCode":10002'),
    },
    # HTX words every authentication failure as one code; the message tells them apart.
    "htx": {
        "wrong_secret": (ccxt.AuthenticationError, "Verification failure"),
        "unknown_key": (ccxt.AuthenticationError, "Incorrect Access key"),
        "ip_not_allowed": (ccxt.AuthenticationError, "Incorrect IP address"),
        "skewed_clock": (ccxt.AuthenticationError, "Invalid submission time"),
    },
    # ccxt maps no class for Kraken's "EAPI:Invalid signature": its base ExchangeError.
    "kraken": {
        "wrong_secret": (ccxt.ExchangeError, "EAPI:Invalid signature"),
        "unknown_key": (ccxt.AuthenticationError, "EAPI:Invalid key"),
        "ip_not_allowed": (ccxt.PermissionDenied, "EGeneral:Permission denied"),
        "skewed_clock": (ccxt.InvalidNonce, "EAPI:Invalid nonce"),
    },
    "bitget": {
        "wrong_secret": (ccxt.AuthenticationError, '"code":"40009"'),
        "wrong_passphrase": (ccxt.AuthenticationError, '"code":"40012"'),
        "unknown_key": (ccxt.AuthenticationError, '"code":"40006"'),
        "ip_not_allowed": (ccxt.PermissionDenied, '"code":"40018"'),
        "skewed_clock": (ccxt.InvalidNonce, '"code":"40008"'),
    },
}
# case -> the outcome the mock logs for it
OUTCOMES = {
    "wrong_secret": "bad_signature",
    "wrong_passphrase": "bad_passphrase",
    "unknown_key": "unknown_key",
    "ip_not_allowed": "ip_not_allowed",
    "skewed_clock": "stale_timestamp",
}
CASES = [(name, case) for name in EXCHANGES for case in REFUSALS[name]]
HOUR_MS = 3_600_000


def refused_client(mock: MockExchange, key: ApiKey, case: str) -> Any:
    """A client that gets ``case`` wrong, everything else right."""
    if case == "wrong_secret":
        other = OTHER_KRAKEN_SECRET if mock.name == "kraken" else key.secret[::-1]
        return ccxt_client(mock, key, secret=other)
    if case == "wrong_passphrase":
        return ccxt_client(mock, key, passphrase=f"{key.passphrase}-wrong")
    if case == "unknown_key":
        return ccxt_client(mock, key, api_key=KEYS[mock.name]["unknown"])
    if case == "ip_not_allowed":
        mock.state.client_ip = OTHER_IP
        return ccxt_client(mock, key)
    # skewed_clock: the client's clock runs an hour late. Kraken's nonce need not be a
    # time, only larger than the last one accepted: an earlier call sets that bar.
    introspect(ccxt_client(mock, key), key)
    client = ccxt_client(mock, key)
    client.options["timeDifference"] = HOUR_MS
    return client


@pytest.mark.parametrize(("name", "case"), CASES, ids=[f"{n}-{c}" for n, c in CASES])
def test_wrong_credentials_get_the_exchange_error(
    mock_exchanges: MockExchanges, name: str, case: str
) -> None:
    mock = mock_exchanges[name]
    key = register(mock)
    client = refused_client(mock, key, case)
    error_class, code = REFUSALS[name][case]
    with pytest.raises(error_class) as raised:
        introspect(client, key)
    assert type(raised.value) is error_class
    assert code in str(raised.value)
    # Secrets never travel back in an answer.
    assert key.secret not in str(raised.value)
    refused = mock.requests()[-1]
    assert (refused.api_key, refused.outcome) == (None, OUTCOMES[case])


def test_an_expired_key_is_an_unknown_key(mock_exchanges: MockExchanges) -> None:
    mock = mock_exchanges["binance"]
    key = register(mock, expires_at=datetime(2026, 1, 6, tzinfo=timezone.utc))
    mock.state.clock_offset_ms = 0
    with pytest.raises(ccxt.AuthenticationError, match='"code":-2015'):
        introspect(ccxt_client(mock, key), key)
    assert mock.requests()[-1].outcome == "unknown_key"


def test_x_forwarded_for_is_the_client_ip_only_when_trusted(mock_exchanges: MockExchanges) -> None:
    mock = mock_exchanges["okx"]
    key = register(mock)
    mock.state.client_ip = None  # what the socket says: 127.0.0.1, not whitelisted
    client = ccxt_client(mock, key)
    client.headers = {"X-Forwarded-For": f"{WHITELISTED_IP}, 10.0.0.1"}
    with pytest.raises(ccxt.PermissionDenied, match=r"Your IP 127\.0\.0\.1 is not included"):
        introspect(client, key)
    mock.state.trust_forwarded_for = True
    assert introspect(client, key)["data"][0]["ip"] == WHITELISTED_IP


def test_htx_master_key_lists_its_sub_account_keys(mock_exchanges: MockExchanges) -> None:
    mock = mock_exchanges["htx"]
    master = register(mock)
    sub_key = mock.add_key(
        ApiKey("f1e2d3c4-sub0key0-aa11bb22-cc33d", "s3cr3t-sub", SUB, permissions=("readOnly",))
    )
    answer = ccxt_client(mock, master).v2PrivateGetUserApiKey({"uid": SUB.uid})
    assert [entry["accessKey"] for entry in answer["data"]] == [sub_key.api_key]
    # A sub-account's key cannot list its master's keys.
    refused = ccxt_client(mock, sub_key).v2PrivateGetUserApiKey({"uid": MAIN.uid})
    assert (refused["code"], refused["data"]) == (2002, None)


# ------------------------------------------------------------------ tampering

# Where each exchange carries the signature: ("header", name) or ("query", name).
SIGNATURE_AT = {
    "binance": ("query", "signature"),
    "kucoin": ("header", "KC-API-SIGN"),
    "okx": ("header", "OK-ACCESS-SIGN"),
    "bybit": ("header", "X-BAPI-SIGN"),
    "htx": ("query", "Signature"),
    "kraken": ("header", "API-Sign"),
    "bitget": ("header", "ACCESS-SIGN"),
}


def flip(signature: str) -> str:
    """The signature with its first character changed (still a valid hex/base64 digit)."""
    return ("1" if signature[0] != "1" else "2") + signature[1:]


def tamper(client: Any, name: str) -> None:
    """Make ``client`` send every signature with one character changed."""
    where, field = SIGNATURE_AT[name]
    sign = client.sign

    def tampered(*args: Any, **kwargs: Any) -> dict[str, Any]:
        request = sign(*args, **kwargs)
        if where == "header":
            request["headers"][field] = flip(request["headers"][field])
        else:
            parts = urlsplit(request["url"])
            params = [(k, flip(v) if k == field else v) for k, v in parse_qsl(parts.query)]
            request["url"] = urlunsplit(parts._replace(query=urlencode(params)))
        return dict(request)

    client.sign = tampered


@pytest.mark.parametrize("name", EXCHANGES)
def test_a_tampered_signature_is_refused(mock_exchanges: MockExchanges, name: str) -> None:
    mock = mock_exchanges[name]
    key = register(mock)
    client = ccxt_client(mock, key)
    tamper(client, name)
    error_class, code = REFUSALS[name]["wrong_secret"]
    with pytest.raises(error_class) as raised:
        introspect(client, key)
    assert code in str(raised.value)
    assert [r.outcome for r in mock.requests()] == ["bad_signature"]


def test_htx_signature_covers_the_host_the_client_addressed(
    mock_exchanges: MockExchanges,
) -> None:
    mock = mock_exchanges["htx"]
    key = register(mock)
    client = ccxt_client(mock, key)
    client.hostname = "api.huobi.pro"  # signs for the real host, sends to the mock
    with pytest.raises(ccxt.AuthenticationError, match="Verification failure"):
        introspect(client, key)
