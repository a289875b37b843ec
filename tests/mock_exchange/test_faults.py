"""Faults a test switches on per exchange, the rate limit and the request log, seen
both on the wire (urllib) and through ccxt's exception mapping."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from typing import Any

import pytest

from tests.mock_exchange.clients import ccxt_client
from tests.mock_exchange.registry import Account, ApiKey, Fault
from tests.mock_exchange.server import MockExchange, MockExchanges

ccxt = pytest.importorskip("ccxt")

TIME_PATHS = {
    "binance": "/api/v3/time",
    "kucoin": "/api/v1/timestamp",
    "okx": "/api/v5/public/time",
    "bybit": "/v5/market/time",
    "htx": "/v1/common/timestamp",
    "kraken": "/0/public/Time",
    "bitget": "/api/v2/public/time",
}
# ccxt's implicit method for each path above
TIME_CALLS = {
    "binance": "publicGetTime",
    "kucoin": "publicGetTimestamp",
    "okx": "publicGetPublicTime",
    "bybit": "publicGetV5MarketTime",
    "htx": "publicGetCommonTimestamp",
    "kraken": "publicGetTime",
    "bitget": "publicCommonGetV2PublicTime",
}
OKX_KEY = ApiKey(
    "0b6e5a4c-1f2d-4e3a-9b8c-7d6e5f4a3b2c",
    "9F3C2B1A0E9D8C7B6A5F4E3D2C1B0A99",
    Account("1001"),
    passphrase="Okx#Trade2024",
    permissions=("read_only",),
)
CONFIG = "/api/v5/account/config"


def get(url: str, timeout: float = 5.0) -> tuple[int, dict[str, str], bytes]:
    """Status, headers and body of a plain GET."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as answer:
            return answer.status, dict(answer.headers), answer.read()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read()


def okx(mock_exchanges: MockExchanges) -> tuple[MockExchange, Any]:
    mock = mock_exchanges["okx"]
    mock.add_key(OKX_KEY)
    return mock, ccxt_client(mock, OKX_KEY, timeout_ms=2000)


def test_server_error_is_a_gateway_page_until_cleared(mock_exchanges: MockExchanges) -> None:
    mock, client = okx(mock_exchanges)
    mock.inject(Fault.server_error(502))
    status, headers, body = get(mock.url + TIME_PATHS["okx"])
    assert (status, headers["Content-Type"]) == (502, "text/html")
    assert b"502" in body
    with pytest.raises(ccxt.ExchangeNotAvailable, match="502"):
        client.privateGetAccountConfig()
    mock.state.clear_faults()
    assert client.privateGetAccountConfig()["code"] == "0"


# exchange -> (ccxt's class for its maintenance answer, the code in the message)
MAINTENANCE = {
    "binance": (ccxt.OperationFailed, '"code":-1001'),
    "kucoin": (ccxt.ExchangeError, '"code":"503000"'),
    "okx": (ccxt.OnMaintenance, '"code":"50001"'),
    "bybit": (ccxt.ExchangeError, '"retCode":10016'),
    "htx": (ccxt.OnMaintenance, "system-maintenance"),
    "kraken": (ccxt.ExchangeNotAvailable, "EService:Unavailable"),
    "bitget": (ccxt.OnMaintenance, '"code":"40200"'),
}


@pytest.mark.parametrize("name", list(MAINTENANCE))
def test_maintenance_answer_is_the_exchange_own(mock_exchanges: MockExchanges, name: str) -> None:
    mock = mock_exchanges[name]
    mock.inject(Fault.maintenance(times=1))
    client = ccxt_client(mock, ApiKey("k", "s", Account("1")))
    error_class, code = MAINTENANCE[name]
    with pytest.raises(error_class) as raised:
        getattr(client, TIME_CALLS[name])()
    assert type(raised.value) is error_class
    assert code in str(raised.value)
    assert [r.outcome for r in mock.requests()] == ["maintenance"]


def test_too_many_requests_says_when_to_retry(mock_exchanges: MockExchanges) -> None:
    mock, client = okx(mock_exchanges)
    mock.inject(Fault.too_many_requests(retry_after=2, times=2))
    status, headers, body = get(mock.url + CONFIG)
    assert (status, headers["Retry-After"]) == (429, "2")
    assert json.loads(body)["code"] == "50011"
    with pytest.raises(ccxt.RateLimitExceeded, match="50011"):
        client.privateGetAccountConfig()
    assert client.privateGetAccountConfig()["code"] == "0"  # both uses spent


def test_a_delay_longer_than_the_client_timeout_times_out(mock_exchanges: MockExchanges) -> None:
    mock, client = okx(mock_exchanges)
    client.timeout = 300
    mock.inject(Fault.delay(3.0, times=1))
    started = time.monotonic()
    with pytest.raises(ccxt.RequestTimeout):
        client.privateGetAccountConfig()
    assert time.monotonic() - started < 2.0
    assert client.privateGetAccountConfig()["code"] == "0"


def test_a_malformed_body_is_not_json(mock_exchanges: MockExchanges) -> None:
    mock, client = okx(mock_exchanges)
    mock.inject(Fault.malformed(times=2))
    status, _, body = get(mock.url + CONFIG)
    assert status == 200
    with pytest.raises(json.JSONDecodeError):
        json.loads(body)
    # ccxt hands the undecodable text back as is: a probe must check the type.
    assert isinstance(client.privateGetAccountConfig(), str)


def test_an_oversized_body_has_the_size_asked(mock_exchanges: MockExchanges) -> None:
    mock, _ = okx(mock_exchanges)
    size = 3 * 1024 * 1024
    mock.inject(Fault.oversized(size, times=1))
    status, headers, body = get(mock.url + CONFIG)
    assert (status, int(headers["Content-Length"]), len(body)) == (200, size, size)
    assert set(json.loads(body)["padding"]) == {"x"}


def test_a_stopped_exchange_refuses_connections(mock_exchanges: MockExchanges) -> None:
    mock, client = okx(mock_exchanges)
    assert client.privateGetAccountConfig()["code"] == "0"
    mock.stop()
    with pytest.raises(urllib.error.URLError) as raised:
        get(mock.url + CONFIG)
    assert isinstance(raised.value.reason, ConnectionRefusedError)
    with pytest.raises(ccxt.NetworkError):
        client.privateGetAccountConfig()


def test_a_fault_can_target_one_path_for_some_requests(mock_exchanges: MockExchanges) -> None:
    mock, client = okx(mock_exchanges)
    mock.inject(Fault.server_error(503, path=CONFIG, times=2))
    assert client.publicGetPublicTime()["code"] == "0"  # another path: untouched
    for _ in range(2):
        with pytest.raises(ccxt.ExchangeNotAvailable):
            client.privateGetAccountConfig()
    assert client.privateGetAccountConfig()["code"] == "0"
    assert [r.outcome for r in mock.requests()] == ["ok", "server_error", "server_error", "ok"]


# exchange -> its rate-limit code, as it appears in the 429's body
RATE_LIMIT_CODES = {
    "binance": '"code":-1003',
    "kucoin": '"code":"429000"',
    "okx": '"code":"50011"',
    "bybit": '"retCode":10006',
    "htx": '"err-code":"base-request-exceed-frequency-limit"',
    "kraken": '"EAPI:Rate limit exceeded"',
    "bitget": '"code":"429"',
}


@pytest.mark.parametrize("name", list(RATE_LIMIT_CODES))
def test_rate_limit_answers_429_with_the_exchange_code(
    mock_exchanges: MockExchanges, name: str
) -> None:
    mock = mock_exchanges[name]
    mock.state.rate_limit_per_second = 3
    answers = [get(mock.url + TIME_PATHS[name]) for _ in range(5)]
    assert [status for status, _, _ in answers] == [200, 200, 200, 429, 429]
    _, headers, body = answers[-1]
    assert RATE_LIMIT_CODES[name] in body.decode()
    assert headers["Retry-After"] == "1"
    assert [r.outcome for r in mock.requests()][-2:] == ["rate_limited", "rate_limited"]


def test_rate_limit_lets_requests_through_again_after_a_second(
    mock_exchanges: MockExchanges,
) -> None:
    mock, client = okx(mock_exchanges)
    mock.state.rate_limit_per_second = 1
    assert client.publicGetPublicTime()["code"] == "0"
    with pytest.raises(ccxt.RateLimitExceeded):
        client.publicGetPublicTime()
    time.sleep(1.05)
    assert client.publicGetPublicTime()["code"] == "0"


def test_request_log_names_the_verified_key_only(mock_exchanges: MockExchanges) -> None:
    mock, client = okx(mock_exchanges)
    started = time.time()
    client.publicGetPublicTime()
    client.privateGetAccountConfig()
    with pytest.raises(ccxt.AuthenticationError):
        ccxt_client(mock, OKX_KEY, secret="not-the-secret").privateGetAccountConfig()
    status, _, _ = get(mock.url + "/api/v5/no/such/path")
    assert status == 404
    log = mock.requests()
    assert [(r.method, r.path, r.api_key, r.status, r.outcome) for r in log] == [
        ("GET", "/api/v5/public/time", None, 200, "ok"),
        ("GET", CONFIG, OKX_KEY.api_key, 200, "ok"),
        ("GET", CONFIG, None, 401, "bad_signature"),
        ("GET", "/api/v5/no/such/path", None, 404, "unknown_path"),
    ]
    assert all(started <= r.at <= time.time() for r in log)
    assert all(r.exchange == "okx" for r in log)


def test_api_key_repr_shows_no_secret() -> None:
    assert OKX_KEY.secret not in repr(OKX_KEY)
    assert "Okx#Trade2024" not in repr(OKX_KEY)
