"""Names and secret payloads: text that is not UTF-8 is refused, naming the field only."""

from __future__ import annotations

import json
from datetime import date

import pytest
from hypothesis import given
from hypothesis import strategies as st

from vault.errors import InvalidInput
from vault.format import encoding
from vault.format.model import (
    CredentialMetadata,
    encode_payload,
    lookup_name,
    parse_payload_json,
)

lone_surrogates = st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF)
# A JSON string value holding one lone surrogate somewhere: json.dumps writes it as a
# "\udXXX" escape, which json.loads turns back into the lone surrogate.
with_a_surrogate = st.tuples(st.text(max_size=20), lone_surrogates, st.text(max_size=20)).map(
    "".join
)
field_names = st.sampled_from(["api_key", "secret", "passphrase", "apiKey", "x"])


@given(field=field_names, value=with_a_surrogate)
def test_json_value_with_a_lone_surrogate_is_refused(field: str, value: str) -> None:
    text = json.dumps({field: value})
    with pytest.raises(InvalidInput) as info:
        parse_payload_json(text)
    message = str(info.value)
    at = next(i for i, c in enumerate(value) if "\ud800" <= c <= "\udfff") + 1
    assert message == f'field "{field}" in the JSON is not valid UTF-8 text (at character {at})'


@given(field=with_a_surrogate.filter(lambda s: len(s) <= 32))
def test_json_field_name_with_a_lone_surrogate_is_refused(field: str) -> None:
    with pytest.raises(InvalidInput, match=r"^the field name \".*\" in the JSON is not valid"):
        parse_payload_json(json.dumps({field: "value"}))


@given(st.dictionaries(st.text(max_size=10), st.text(max_size=40), max_size=4))
def test_json_of_valid_text_parses(payload: dict[str, str]) -> None:
    text = json.dumps(payload)
    try:
        parsed = parse_payload_json(text)
    except InvalidInput as exc:  # only a ccxt alias colliding with our name may fail
        assert "appears twice" in str(exc)
    else:
        assert sorted(parsed.values()) == sorted(payload.values())


def test_surrogate_pair_escape_is_one_character() -> None:
    """A pair of escapes is a whole character (here U+1F600), not two lone surrogates."""
    assert parse_payload_json('{"secret": "\\ud83d\\ude00"}') == {"secret": "\U0001f600"}


def test_surrogate_message_never_shows_the_value() -> None:
    secret = "Tr4d1ngB0t-" + "\udc80" + "-rest-of-the-secret"
    with pytest.raises(InvalidInput) as info:
        parse_payload_json(json.dumps({"secret": secret}))
    assert "Tr4d1" not in str(info.value)


@given(field=field_names, value=with_a_surrogate)
def test_encode_payload_refuses_a_lone_surrogate(field: str, value: str) -> None:
    """The library's last guard: a payload from code, not JSON, fails as input too,
    before anything is encoded."""
    with pytest.raises(InvalidInput, match=rf'^field "{field}" is not valid UTF-8 text'):
        encode_payload({field: value})


@pytest.mark.parametrize("name", ["binance-main", "any text, even with spaces", ""])
def test_lookup_name_takes_any_text(name: str) -> None:
    assert lookup_name(name) == name


def test_lookup_name_refuses_a_lone_surrogate() -> None:
    with pytest.raises(InvalidInput) as info:
        lookup_name("bot-\udc80", "client")
    assert str(info.value) == (
        'the client name "bot-\\udc80" is not valid UTF-8 text (at character 5)'
    )


# ---------------------------------------------------------------- endpoint


def _meta(endpoint: str = "live") -> CredentialMetadata:
    return CredentialMetadata(
        "k", "binance", ("read",), ("203.0.113.7",), date(2026, 1, 1), None, endpoint
    )


def test_a_live_endpoint_keeps_the_digest_of_before_endpoints() -> None:
    # The six fields every version written before endpoints existed was signed over.
    before = encoding.digest(
        b"exvault-metadata", "k", "binance", "read", "203.0.113.7", "2026-01-01", None
    )
    assert _meta().digest() == before
    assert _meta().stored_endpoint is None


@pytest.mark.parametrize("endpoint", ["testnet", "https://my.okx.com", "http://127.0.0.1:8080"])
def test_any_other_endpoint_is_bound_into_the_digest(endpoint: str) -> None:
    assert _meta(endpoint).digest() != _meta().digest()
    assert _meta(endpoint).stored_endpoint == endpoint


def test_two_endpoints_have_two_digests() -> None:
    assert _meta("testnet").digest() != _meta("https://testnet.example").digest()
