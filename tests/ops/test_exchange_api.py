"""vault.ops.exchange_api against the mock exchanges: each exchange's answer becomes
a KeyReport; each way a key is refused, each network failure and each bad answer
becomes the right ProbeError; and no secret reaches an error, a repr or a log line."""

from __future__ import annotations

import gzip
import json
import logging
import pickle
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar

import pytest

from tests.mock_exchange.registry import ApiKey, Fault
from tests.mock_exchange.server import MockExchange, MockExchanges
from tests.mock_exchange.test_ccxt_against_mock import (
    KEYS,
    OTHER_IP,
    OTHER_KRAKEN_SECRET,
    WHITELISTED_IP,
    register,
)
from vault.errors import ExchangeError, ExchangeUnreachable, InvalidInput
from vault.exchanges.key_report import KeyReport, ProbeError
from vault.ops import exchange_api
from vault.ops.exchange_api import ask_key, check_endpoint, server_skew
from vault.secret import Secret

NOW = datetime(2026, 3, 1, tzinfo=timezone.utc)
HOUR_MS = 3_600_000


def fields_of(key: ApiKey, **changes: str) -> dict[str, Secret]:
    values = {"api_key": key.api_key, "secret": key.secret}
    if key.passphrase is not None:
        values["passphrase"] = key.passphrase
    values.update(changes)
    return {name: Secret(value) for name, value in values.items()}


def ask(mock: MockExchange, fields: dict[str, Secret], timeout: float = 3.0) -> Any:
    return ask_key(mock.name, fields, mock.url, now=NOW, timeout=timeout)


@pytest.mark.parametrize("name", list(KEYS))
def test_a_good_key_is_reported(mock_exchanges: MockExchanges, name: str) -> None:
    mock = mock_exchanges[name]
    key = register(mock)
    report = ask(mock, fields_of(key))
    assert isinstance(report, KeyReport)
    assert report.permissions is not None and "trade" in report.permissions
    assert report.ip_restricted is True
    assert report.ips == (None if name == "binance" else (WHITELISTED_IP,))
    # Exactly the introspection call, signed with this key (HTX first asks for the uid).
    assert [r.outcome for r in mock.requests()] == ["ok"] * (2 if name == "htx" else 1)
    assert {r.api_key for r in mock.requests()} == {key.api_key}


def test_htx_uses_the_credential_uid_when_it_has_one(mock_exchanges: MockExchanges) -> None:
    mock = mock_exchanges["htx"]
    key = register(mock)
    assert isinstance(ask(mock, fields_of(key, uid=key.account.uid)), KeyReport)
    assert [r.path for r in mock.requests()] == ["/v2/user/api-key"]


def test_expiry_and_creation_come_through(mock_exchanges: MockExchanges) -> None:
    mock = mock_exchanges["bybit"]
    expires = datetime.now(timezone.utc).replace(microsecond=0) + timedelta(days=30)
    key = register(mock, expires_at=expires)
    report = ask(mock, fields_of(key))
    assert isinstance(report, KeyReport)
    assert report.expires_at == expires
    assert report.created_at == key.created_at


# exchange -> case -> (reason, code) of the ProbeError (skewed_clock: kind clock-skew)
EXPECTED: dict[str, dict[str, tuple[str | None, str]]] = {
    "binance": {
        "wrong_secret": ("bad-signature", "-1022"),
        "unknown_key": ("invalid-key", "-2015"),
        "ip_not_allowed": ("invalid-key", "-2015"),  # Binance's one code for both
        "skewed_clock": (None, "-1021"),
    },
    "kucoin": {
        "wrong_secret": ("bad-signature", "400005"),
        "wrong_passphrase": ("wrong-passphrase", "400004"),
        "unknown_key": ("invalid-key", "400003"),
        "ip_not_allowed": ("ip-not-allowed", "400006"),
        "skewed_clock": (None, "400002"),
    },
    "okx": {
        "wrong_secret": ("bad-signature", "50113"),
        "wrong_passphrase": ("wrong-passphrase", "50105"),
        "unknown_key": ("invalid-key", "50111"),
        "ip_not_allowed": ("ip-not-allowed", "50110"),
        "skewed_clock": (None, "50102"),
    },
    "bybit": {
        "wrong_secret": ("bad-signature", "10004"),
        "unknown_key": ("invalid-key", "10003"),
        "ip_not_allowed": ("ip-not-allowed", "10010"),
        "skewed_clock": (None, "10002"),
    },
    "htx": {
        "wrong_secret": ("bad-signature", "api-signature-not-valid"),
        "unknown_key": ("invalid-key", "api-signature-not-valid"),
        "ip_not_allowed": ("ip-not-allowed", "api-signature-not-valid"),
        "skewed_clock": (None, "api-signature-not-valid"),
    },
    "kraken": {
        "wrong_secret": ("bad-signature", "EAPI:Invalid signature"),
        "unknown_key": ("invalid-key", "EAPI:Invalid key"),
        "ip_not_allowed": ("permission-denied", "EGeneral:Permission denied"),
        "skewed_clock": (None, "EAPI:Invalid nonce"),
    },
    "bitget": {
        "wrong_secret": ("bad-signature", "40009"),
        "wrong_passphrase": ("wrong-passphrase", "40012"),
        "unknown_key": ("invalid-key", "40006"),
        "ip_not_allowed": ("ip-not-allowed", "40018"),
        "skewed_clock": (None, "40008"),
    },
}
CASES = [(name, case) for name in EXPECTED for case in EXPECTED[name]]


def refused_fields(mock: MockExchange, key: ApiKey, case: str) -> dict[str, Secret]:
    """The key's fields with ``case`` wrong (or the mock set up to refuse it)."""
    if case == "wrong_secret":
        return fields_of(
            key, secret=OTHER_KRAKEN_SECRET if mock.name == "kraken" else key.secret[::-1]
        )
    if case == "wrong_passphrase":
        return fields_of(key, passphrase=f"{key.passphrase}-wrong")
    if case == "unknown_key":
        return fields_of(key, api_key=KEYS[mock.name]["unknown"])
    if case == "ip_not_allowed":
        mock.state.client_ip = OTHER_IP
        return fields_of(key)
    mock.state.clock_offset_ms = HOUR_MS  # the exchange's clock is an hour ahead
    key.highest_nonce = 10**20  # Kraken: a nonce beyond any this host will send
    return fields_of(key)


@pytest.mark.parametrize(("name", "case"), CASES, ids=[f"{n}-{c}" for n, c in CASES])
def test_each_refusal_has_its_reason(mock_exchanges: MockExchanges, name: str, case: str) -> None:
    mock = mock_exchanges[name]
    key = register(mock)
    error = ask(mock, refused_fields(mock, key, case))
    reason, code = EXPECTED[name][case]
    assert isinstance(error, ProbeError)
    kind = "clock-skew" if case == "skewed_clock" else "rejected-key"
    assert (error.kind, error.reason, error.code) == (kind, reason, code)
    assert code in error.message and "\n" not in error.message


def test_server_skew_measures_the_exchange_clock(mock_exchanges: MockExchanges) -> None:
    for name in ("okx", "kraken"):
        mock = mock_exchanges[name]
        mock.state.clock_offset_ms = 7_000
        skew = server_skew(name, mock.url, timeout=3)
        # Kraken's clock is read in whole seconds: its skew is certain to 1 s only.
        assert isinstance(skew, int) and abs(skew - 7_000) <= (1_100 if name == "kraken" else 100)


def test_a_slow_answer_is_no_clock_skew(mock_exchanges: MockExchanges) -> None:
    mock = mock_exchanges["okx"]
    mock.inject(Fault.delay(0.8, path="/api/v5/public/time"))
    skew = server_skew("okx", mock.url, timeout=5)
    # The clocks agree; the answer took 0.8 s, so its middle is off by up to 0.4 s.
    assert isinstance(skew, int) and abs(skew) < 150


def test_a_stopped_exchange_is_unreachable(mock_exchanges: MockExchanges) -> None:
    mock = mock_exchanges["okx"]
    key = register(mock)
    mock.stop()
    for error in (ask(mock, fields_of(key)), server_skew("okx", mock.url, timeout=3)):
        assert isinstance(error, ProbeError)
        assert (error.kind, error.reason) == ("unreachable", None)


@pytest.mark.parametrize("name", ["okx", "binance", "bybit", "htx", "kucoin"])
def test_429_is_unreachable_with_its_retry_after(mock_exchanges: MockExchanges, name: str) -> None:
    mock = mock_exchanges[name]
    key = register(mock)
    mock.inject(Fault.too_many_requests(retry_after=2.5))
    error = ask(mock, fields_of(key))
    assert isinstance(error, ProbeError)
    assert (error.kind, error.retry_after) == ("unreachable", 2.5)


@pytest.mark.parametrize(
    "fault", [Fault.server_error(502), Fault.server_error(503), Fault.maintenance()]
)
@pytest.mark.parametrize("name", ["okx", "bybit", "htx", "kraken", "kucoin", "binance"])
def test_5xx_and_maintenance_are_unreachable(
    mock_exchanges: MockExchanges, name: str, fault: Fault
) -> None:
    mock = mock_exchanges[name]
    key = register(mock)
    mock.inject(fault)
    error = ask(mock, fields_of(key))
    assert isinstance(error, ProbeError) and error.kind == "unreachable"


def test_a_timeout_is_unreachable_and_bounded(mock_exchanges: MockExchanges) -> None:
    import time

    mock = mock_exchanges["okx"]
    key = register(mock)
    mock.inject(Fault.delay(5.0, times=1))
    started = time.monotonic()
    error = ask(mock, fields_of(key), timeout=0.3)
    assert time.monotonic() - started < 2.0
    assert isinstance(error, ProbeError) and error.kind == "unreachable"
    assert "in time" in error.message


def test_a_malformed_body_is_malformed(mock_exchanges: MockExchanges) -> None:
    mock = mock_exchanges["okx"]
    key = register(mock)
    mock.inject(Fault.malformed())
    error = ask(mock, fields_of(key))
    assert isinstance(error, ProbeError) and error.kind == "malformed"


def test_an_oversized_body_is_malformed_and_not_read(mock_exchanges: MockExchanges) -> None:
    mock = mock_exchanges["okx"]
    key = register(mock)
    mock.inject(Fault.oversized(exchange_api.BODY_LIMIT + 10))
    error = ask(mock, fields_of(key))
    assert isinstance(error, ProbeError) and error.kind == "malformed"
    assert "larger than" in error.message


def test_an_oversized_body_without_a_length_is_cut(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(exchange_api, "BODY_LIMIT", 10)
    session = exchange_api._CappedSession()

    class Raw:
        def read(self, size: int, decode_content: bool = False) -> bytes:
            return b"x" * size

    class Response:
        status_code = 200
        headers: ClassVar[dict[str, str]] = {}
        raw = Raw()

        def close(self) -> None:
            pass

    monkeypatch.setattr("requests.Session.request", lambda *args, **kwargs: Response())
    with pytest.raises(exchange_api._AnswerTooLarge):
        session.request("GET", "http://127.0.0.1:9/")


@pytest.mark.parametrize(
    ("endpoint", "problem"),
    [
        ("live", False),
        ("testnet", False),
        (None, False),
        ("https://my.okx.com", False),
        ("http://127.0.0.1:8080/", False),
        ("http://localhost:9000", False),
        ("http://[::1]:9000", False),
        ("http://my.okx.com", True),  # the passphrase header would travel in clear
        ("ftp://host", True),
        ("https://host/api", True),
        ("https://user:pw@host", True),
        ("https://host?x=1", True),
        ("https://host:99999", True),
        ("not a url", True),
    ],
)
def test_endpoints(endpoint: str | None, problem: bool) -> None:
    assert (check_endpoint(endpoint) is not None) is problem


def test_a_bad_endpoint_or_unknown_exchange_is_unsupported() -> None:
    fields = {"api_key": Secret("k"), "secret": Secret("s")}
    error = ask_key("okx", fields, "https://host/path", now=NOW)
    assert isinstance(error, ProbeError) and error.kind == "unsupported"
    error = ask_key("ascendex", fields, None, now=NOW)
    assert isinstance(error, ProbeError) and error.kind == "unsupported"
    assert "no longer" in error.message
    error = ask_key("nosuchexchange", fields, None, now=NOW)
    assert isinstance(error, ProbeError) and error.kind == "unsupported"


def test_testnet_switches_ccxt_to_its_sandbox(monkeypatch: pytest.MonkeyPatch) -> None:
    client = exchange_api._new_client("bybit", "testnet")
    assert "testnet" in str(client.urls["api"])
    client = exchange_api._new_client("okx", "https://my.okx.com")
    assert all(
        url.startswith("https://my.okx.com/") or url == "https://my.okx.com"
        for url in client.urls["api"].values()
    )
    assert client.hostname == "my.okx.com"


@pytest.mark.parametrize("name", ["binance", "htx", "okx", "kucoin"])
def test_no_secret_in_errors_or_logs(
    mock_exchanges: MockExchanges, name: str, caplog: pytest.LogCaptureFixture
) -> None:
    mock = mock_exchanges[name]
    key = register(mock)
    caplog.set_level(logging.DEBUG)
    outcomes: list[Any] = [ask(mock, fields_of(key))]
    for case in EXPECTED[name]:
        outcomes.append(ask(mock, refused_fields(mock, key, case)))
    mock.state.clock_offset_ms = 0
    mock.state.client_ip = WHITELISTED_IP
    for fault in (Fault.server_error(502), Fault.too_many_requests(), Fault.malformed()):
        mock.inject(fault)
        outcomes.append(ask(mock, fields_of(key)))
        mock.state.clear_faults()
    mock.stop()
    outcomes.append(ask(mock, fields_of(key)))
    seen = " ".join(repr(o) for o in outcomes) + caplog.text
    signatures = [r for r in mock.requests() if r.api_key]  # sanity: it did sign requests
    assert signatures
    for secret in (key.secret, key.secret[::-1], key.passphrase, "Signature=", "signature="):
        if secret:
            assert secret not in seen
    assert "X-MBX-APIKEY" not in seen and "OK-ACCESS-SIGN" not in seen
    assert key.api_key not in seen


def test_a_thread_client_holds_no_credential_between_keys(mock_exchanges: MockExchanges) -> None:
    mock = mock_exchanges["okx"]
    key = register(mock)
    assert isinstance(ask(mock, fields_of(key)), KeyReport)
    client = exchange_api._client("okx", mock.url, 3.0)
    assert (client.apiKey, client.secret, client.password) == ("", "", "")
    assert client.session.sent == []  # nor the headers it sent (key, passphrase)
    # The next key lent the same client signs with its own secret, not the last one's.
    error = ask(mock, fields_of(key, secret=key.secret[::-1]))
    assert isinstance(error, ProbeError) and error.reason == "bad-signature"


def test_tls_and_dns_failures_are_unreachable(mock_exchanges: MockExchanges) -> None:
    mock = mock_exchanges["okx"]
    key = register(mock)
    # TLS spoken to a plain HTTP server: the handshake fails.
    error = ask_key("okx", fields_of(key), f"https://127.0.0.1:{mock.port}", now=NOW, timeout=3)
    assert isinstance(error, ProbeError) and error.kind == "unreachable"
    assert error.message == "could not reach okx: TLS failed"
    error = ask_key("okx", fields_of(key), "https://no-such-host.invalid", now=NOW, timeout=3)
    assert isinstance(error, ProbeError) and error.kind == "unreachable"


@contextmanager
def _local_server(reply: Callable[[BaseHTTPRequestHandler], None]) -> Iterator[str]:
    """An HTTP server on 127.0.0.1 answering every GET with ``reply``: its base URL,
    for the block's duration (a stand-in for an exchange behaving in one odd way)."""
    handler = type("Reply", (BaseHTTPRequestHandler,), {"do_GET": reply, "log_message": _quiet})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
    ).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def _echoing(
    echo: Callable[[Mapping[str, str]], str], status: int
) -> Callable[[BaseHTTPRequestHandler], None]:
    """An OKX stand-in's answer: every request gets an error whose code is a value the
    request carried (a header, or the secret the exchange itself stores): what a
    careless or hostile exchange could echo back."""

    def reply(handler: BaseHTTPRequestHandler) -> None:
        if handler.path.endswith("/public/time"):
            body = {"code": "0", "msg": "", "data": [{"ts": str(int(time.time() * 1000))}]}
        else:
            code = "x" * 30 + echo(dict(handler.headers.items()))
            body = {"code": code, "msg": "", "data": []}
        raw = json.dumps(body).encode()
        handler.send_response(status)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(len(raw)))
        handler.end_headers()
        handler.wfile.write(raw)

    return reply


def _quiet(*_args: object) -> None:
    pass


OKX_FIELDS = {
    "api_key": "0b6e5a4c-1f2d-4e3a-9b8c-7d6e5f4a3b2c",
    "secret": "9F3C2B1A0E9D8C7B6A5F4E3D2C1B0A99",
    "passphrase": "Okx#Trade2024",
}


@pytest.mark.parametrize(
    ("echoed", "status"),
    [
        (lambda headers: headers["OK-ACCESS-PASSPHRASE"], 401),
        (lambda headers: headers["OK-ACCESS-KEY"], 401),
        (lambda headers: headers["OK-ACCESS-SIGN"], 401),
        (lambda headers: headers["OK-ACCESS-SIGN"], 429),
        (lambda headers: OKX_FIELDS["secret"], 200),
    ],
    ids=["passphrase", "key", "signature", "signature-429", "secret"],
)
def test_an_echoed_secret_is_not_kept_as_the_code(
    echoed: Callable[[Mapping[str, str]], str], status: int
) -> None:
    seen: list[str] = []

    def echo(headers: Mapping[str, str]) -> str:
        seen.append(echoed(headers))
        return seen[-1]

    with _local_server(_echoing(echo, status)) as url:
        fields = {name: Secret(value) for name, value in OKX_FIELDS.items()}
        error = ask_key("okx", fields, url, now=NOW, timeout=3)
    assert isinstance(error, ProbeError) and seen
    shown = f"{error.code} {error.message}"
    for value in (*seen, *OKX_FIELDS.values()):
        for cut in range(0, len(value) - 5):  # not even a part of it
            assert value[cut : cut + 6] not in shown, value


def _gzipped(padding: int = 0) -> Callable[[BaseHTTPRequestHandler], None]:
    """An OKX stand-in's answer: the server time gzip-compressed, as exchanges send JSON
    to a client that accepts it (requests always does); ``padding`` bytes of blanks
    inflate it (a compression bomb: a few KiB on the wire)."""

    def reply(handler: BaseHTTPRequestHandler) -> None:
        now = str(int(time.time() * 1000))
        body = json.dumps({"code": "0", "msg": "", "data": [{"ts": now}]})
        raw = gzip.compress((body + " " * padding).encode())
        handler.send_response(200)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Encoding", "gzip")
        handler.send_header("Content-Length", str(len(raw)))
        handler.end_headers()
        handler.wfile.write(raw)

    return reply


def test_a_compressed_answer_is_read() -> None:
    with _local_server(_gzipped()) as url:
        skew = server_skew("okx", url, timeout=3)
    assert isinstance(skew, int) and abs(skew) < 5000


def test_a_compression_bomb_is_cut_at_the_limit() -> None:
    with _local_server(_gzipped(padding=exchange_api.BODY_LIMIT * 8)) as url:
        error = server_skew("okx", url, timeout=3)
    assert isinstance(error, ProbeError) and error.kind == "malformed"
    assert "larger than" in error.message


def test_an_answer_sent_a_byte_at_a_time_is_cut_at_the_timeout() -> None:
    # Each byte comes well within the socket's timeout, the whole far beyond it.
    def reply(handler: BaseHTTPRequestHandler) -> None:
        body = json.dumps({"code": "0", "msg": "", "data": [{"ts": "1"}]}).encode()
        handler.send_response(200)
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        for byte in body:
            try:
                handler.wfile.write(bytes([byte]))
                handler.wfile.flush()
            except OSError:
                return
            time.sleep(0.3)

    with _local_server(reply) as url:
        started = time.monotonic()
        error = server_skew("okx", url, timeout=1)
        elapsed = time.monotonic() - started
    assert elapsed < 3
    assert isinstance(error, ProbeError) and error.kind == "unreachable"
    assert error.message == "okx did not answer in time"


def test_a_redirect_is_not_followed_with_the_key() -> None:
    # Custom headers (the key, the signature, OKX's passphrase) survive a redirect to
    # another host in requests: a redirect must not carry them anywhere.
    received: list[Mapping[str, str]] = []

    def record(handler: BaseHTTPRequestHandler) -> None:
        received.append(dict(handler.headers.items()))
        handler.send_response(200)
        handler.end_headers()

    with _local_server(record) as elsewhere:

        def redirect(handler: BaseHTTPRequestHandler) -> None:
            handler.send_response(302)
            handler.send_header("Location", f"{elsewhere}/steal")
            handler.send_header("Content-Length", "0")
            handler.end_headers()

        with _local_server(redirect) as url:
            fields = {name: Secret(value) for name, value in OKX_FIELDS.items()}
            error = ask_key("okx", fields, url, now=NOW, timeout=3)
    assert received == []
    assert isinstance(error, ProbeError) and error.kind == "unreachable"
    assert error.message == "could not reach okx: redirected elsewhere"


# ------------------------------------------------------------ KeyClient (rotation's calls)


def test_a_key_client_is_built_at_the_credentials_endpoint() -> None:
    fields = {"api_key": Secret("k"), "secret": Secret("s"), "passphrase": Secret("p")}
    regional = exchange_api.KeyClient("okx", fields, "https://my.okx.com")
    client = regional._client
    assert all(str(url).startswith("https://my.okx.com") for url in client.urls["api"].values())
    assert client.logger.disabled  # ccxt's request log (headers, passphrase) is silenced
    sandbox = exchange_api.KeyClient("bybit", fields, "testnet", timeout=2.5)
    assert "testnet" in str(sandbox._client.urls["api"]) and sandbox._client.timeout == 2500


@pytest.mark.parametrize("endpoint", ["https://host/path", "http://example.com"])
def test_a_key_client_refuses_an_unusable_endpoint(endpoint: str) -> None:
    with pytest.raises(InvalidInput):
        exchange_api.KeyClient("okx", {"api_key": Secret("k")}, endpoint)


def test_a_key_client_shows_and_pickles_no_secret() -> None:
    client = exchange_api.KeyClient(
        "okx", {"api_key": Secret("k"), "secret": Secret("s3cr3t")}, None
    )
    assert "s3cr3t" not in repr(client)
    with pytest.raises(TypeError):
        pickle.dumps(client)


def test_a_key_client_failure_holds_no_ccxt_text(mock_exchanges: MockExchanges) -> None:
    mock = mock_exchanges["okx"]
    key = register(mock)
    fields = fields_of(key, secret="wrong-secret")
    client = exchange_api.KeyClient("okx", fields, mock.url, timeout=2)
    with pytest.raises(ExchangeError) as caught:
        client.request("the key listing", "private_get_users_subaccount_apikey", {"subAcct": "x"})
    assert not isinstance(caught.value, ExchangeUnreachable)
    assert "signature" in str(caught.value) and "code" in str(caught.value)
    assert '"msg"' not in str(caught.value)  # ccxt's text quotes the answer's body
    assert "wrong-secret" not in str(caught.value) and "127.0.0.1" not in str(caught.value)
    assert caught.value.__context__ is None and caught.value.__cause__ is None


@pytest.mark.parametrize(
    ("error", "unknown", "raised"),
    [
        (
            ProbeError("unreachable", None, "502", "okx answered HTTP 502"),
            False,
            ExchangeUnreachable,
        ),
        (
            ProbeError("malformed", None, None, "okx's answer is unreadable"),
            True,
            ExchangeUnreachable,
        ),
        (ProbeError("malformed", None, None, "okx's answer is unreadable"), False, ExchangeError),
        (
            ProbeError("malformed", None, "59004", "an error exvault does not know"),
            True,
            ExchangeError,
        ),
        (ProbeError("rejected-key", "invalid-key", "50111", "refused"), True, ExchangeError),
    ],
)
def test_a_call_failure_is_a_refusal_only_with_the_exchanges_code(
    error: ProbeError, unknown: bool, raised: type[Exception]
) -> None:
    failure = exchange_api.call_failure("the key creation", error, unknown=unknown)
    assert type(failure) is raised
    assert ("whether it acted is unknown" in str(failure)) == (
        raised is ExchangeUnreachable and unknown
    )
