"""Endpoints (vault/exchanges/endpoints.py): what --endpoint accepts, its stored form,
and refusals that never echo what may be a secret."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from vault.errors import InvalidInput
from vault.exchanges import endpoints
from vault.exchanges.endpoints import parse_endpoint
from vault.format import model


@pytest.mark.parametrize(
    ("typed", "stored"),
    [
        ("live", "live"),
        ("LIVE", "live"),
        (" testnet ", "testnet"),
        ("https://my.okx.com", "https://my.okx.com"),
        ("https://My.OKX.com/", "https://my.okx.com"),
        ("HTTPS://api.binance.us:8443", "https://api.binance.us:8443"),
        ("https://203.0.113.7", "https://203.0.113.7"),
        ("http://127.0.0.1:8080", "http://127.0.0.1:8080"),
        ("http://localhost", "http://localhost"),
        ("http://[::1]:9000", "http://[::1]:9000"),
        ("https://[2001:db8::1]", "https://[2001:db8::1]"),
    ],
)
def test_accepted_endpoints_and_their_stored_form(typed: str, stored: str) -> None:
    assert parse_endpoint(typed) == stored


@pytest.mark.parametrize(
    ("typed", "why"),
    [
        ("http://api.binance.com", "only for a server on this machine"),
        ("http://10.0.0.1", "only for a server on this machine"),
        ("ftp://api.binance.com", "not an https URL"),
        ("api.binance.com", "not live, testnet or a URL"),
        ("https://api.binance.com/api/v3", "the exchange's paths are kept"),
        ("https://", "no host"),
        ("https://bad_host.example", "not a host name"),
        ("https://x.example:99999", "valid port"),
        ("https://x.example:0", "port 0"),
        ("https://x .example", "spaces"),
        ("https://ex\u00e4mple.com", "non-ASCII"),
        ("", "not live, testnet or a URL"),
        ("mainnet", "not live, testnet or a URL"),
    ],
)
def test_refused_endpoints_say_why(typed: str, why: str) -> None:
    with pytest.raises(InvalidInput, match=why):
        parse_endpoint(typed)


@pytest.mark.parametrize(
    "typed",
    [
        "https://user:s3cr3tpw@api.example.com",
        "https://api.example.com/?apiKey=s3cr3tpw",
        "https://api.example.com#s3cr3tpw",
        "https://api.example.com/s3cr3tpw",
        "https://api.example.com:99999/s3cr3tpw",
        "https://" + "s3cr3tpw" * 40 + ".com",
    ],
)
def test_a_refusal_never_echoes_what_may_be_a_secret(typed: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        parse_endpoint(typed)
    assert "s3cr3tpw" not in str(caught.value)
    assert "\n" not in str(caught.value)


def test_the_format_and_the_exchanges_agree_on_live() -> None:
    assert model.LIVE == endpoints.LIVE


labels = st.from_regex(r"[a-z0-9]([a-z0-9-]{0,10}[a-z0-9])?", fullmatch=True)
hosts = st.lists(labels, min_size=1, max_size=4).map(".".join)
ports = st.none() | st.integers(1, 65535)


@given(hosts, ports, st.booleans())
def test_a_stored_endpoint_parses_to_itself(host: str, port: int | None, upper: bool) -> None:
    typed = f"https://{host.upper() if upper else host}" + (f":{port}" if port else "")
    stored = parse_endpoint(typed)
    assert parse_endpoint(stored) == stored
    assert stored == f"https://{host}" + (f":{port}" if port else "")


@given(st.text(max_size=80))
def test_any_text_is_accepted_or_refused_cleanly(text: str) -> None:
    try:
        stored = parse_endpoint(text)
    except InvalidInput as exc:
        assert "\n" not in str(exc)
    else:
        assert stored in ("live", "testnet") or stored.startswith(("https://", "http://"))
        assert len(stored) <= endpoints.MAX_LENGTH
