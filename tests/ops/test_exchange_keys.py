"""vault.ops.exchange_keys against the mock exchanges, with real ccxt clients: create,
list and delete sub-account keys, labels, generated passphrases, permissions, and
what a failed call becomes (never with a secret in its text)."""

from __future__ import annotations

import pickle
import string
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.mock_exchange import subaccount_keys as sk
from tests.mock_exchange.fixtures import mock_exchanges
from tests.mock_exchange.registry import ApiKey, Fault
from tests.mock_exchange.server import MockExchange, MockExchanges
from tests.ops.exchange_setup import key_client
from vault.errors import ExchangeError, ExchangeUnreachable, InvalidInput
from vault.exchanges.key_report import KeyReport
from vault.format.model import utc_now
from vault.ops import exchange_api, exchange_keys
from vault.ops.exchange_keys import model
from vault.secret import Secret

__all__ = ["mock_exchanges"]

MASTER, SUB, IP = sk.SAMPLE_MASTER, sk.SAMPLE_SUB, sk.SAMPLE_IP
MASTER_RIGHT, GRANTS = sk.SAMPLE_MASTER_RIGHTS, sk.SAMPLE_GRANTS
EXCHANGES = list(GRANTS)
PASS = {name: exchange_keys.for_exchange(name).passphrase(b"seed") for name in GRANTS}


def sub_id(exchange: str) -> str:
    return SUB.uid if exchange_keys.for_exchange(exchange).sub_account_by == "uid" else SUB.name


def master(mock: MockExchange, permissions: tuple[str, ...] | None = None, **fields: str) -> Any:
    mock.add_account(MASTER)
    mock.add_account(SUB)
    mock.state.client_ip = IP
    key = mock.add_key(
        ApiKey(
            "master-" + mock.name,
            "master-secret-" + mock.name,
            MASTER,
            passphrase="Master-Pass1",
            permissions=MASTER_RIGHT[mock.name] if permissions is None else permissions,
            ip_whitelist=(IP,),
        )
    )
    held = {"api_key": key.api_key, "secret": key.secret, "passphrase": "Master-Pass1"}
    return key_client(mock, {**held, **fields})


@pytest.mark.parametrize("exchange", EXCHANGES)
def test_create_list_use_and_delete(mock_exchanges: MockExchanges, exchange: str) -> None:
    mock = mock_exchanges[exchange]
    keys = exchange_keys.for_exchange(exchange)
    client = master(mock)
    label = model.label_for("grid-bot", "0123abcd")
    new = keys.create_key(
        client, sub_id(exchange), label, GRANTS[exchange], (IP,), keys.passphrase(b"seed")
    )
    stored = mock.state.key(new.api_key)
    assert stored is not None and stored.secret == new.secret.reveal()
    assert stored.ip_whitelist == (IP,) and stored.account == SUB
    assert (new.passphrase is not None) == (keys.passphrase_rules is not None)
    if new.passphrase is not None:
        assert stored.passphrase == new.passphrase.reveal()
    listed = keys.list_keys(client, sub_id(exchange))
    assert listed == [model.ListedKey(new.api_key, label, tuple(sorted(GRANTS[exchange])), (IP,))]
    # The new key works on its own: the probe's introspection, signed with it.
    fields = {name: Secret(value) for name, value in new.payload().items()}
    report = exchange_api.ask_key(exchange, fields, mock.url, now=utc_now(), timeout=2)
    assert isinstance(report, KeyReport), report
    assert report.ips is None or report.ips == (IP,) or exchange == "kucoin"
    keys.delete_key(client, sub_id(exchange), new.api_key, new.passphrase)
    assert keys.list_keys(client, sub_id(exchange)) == []


@pytest.mark.parametrize("exchange", EXCHANGES)
def test_no_key_is_created_without_an_ip_whitelist(
    mock_exchanges: MockExchanges, exchange: str
) -> None:
    mock = mock_exchanges[exchange]
    with pytest.raises(InvalidInput, match="IP whitelist"):
        exchange_keys.for_exchange(exchange).create_key(
            master(mock), sub_id(exchange), "exvault 0123abcd x", GRANTS[exchange], (), None
        )
    assert mock.requests() == []


@pytest.mark.parametrize("exchange", EXCHANGES)
def test_a_refusal_is_an_exchange_error_with_the_code_and_no_secret(
    mock_exchanges: MockExchanges, exchange: str
) -> None:
    mock = mock_exchanges[exchange]
    client = master(mock, permissions=("nothing",))
    with pytest.raises(ExchangeError) as caught:
        exchange_keys.for_exchange(exchange).create_key(
            client, sub_id(exchange), "exvault 0123abcd x", GRANTS[exchange], (IP,), PASS[exchange]
        )
    assert not isinstance(caught.value, ExchangeUnreachable)
    text = str(caught.value)
    assert exchange in text and "code" in text
    assert "master-secret" not in text and "Master-Pass1" not in text
    assert caught.value.__cause__ is None and caught.value.__context__ is None
    assert mock.state.keys_of(SUB.uid) == []


@pytest.mark.parametrize("exchange", EXCHANGES)
def test_a_5xx_on_create_is_unreachable(mock_exchanges: MockExchanges, exchange: str) -> None:
    mock = mock_exchanges[exchange]
    client = master(mock)
    path = sk.create_path(exchange, SUB)
    mock.inject(Fault.server_error(502, path=path, times=1))
    with pytest.raises(ExchangeUnreachable, match="unknown"):
        exchange_keys.for_exchange(exchange).create_key(
            client, sub_id(exchange), "exvault 0123abcd x", GRANTS[exchange], (IP,), PASS[exchange]
        )


def test_a_malformed_create_answer_leaves_the_outcome_unknown(
    mock_exchanges: MockExchanges,
) -> None:
    mock = mock_exchanges["okx"]
    client = master(mock)
    mock.inject(Fault.malformed(path=sk.OKX_CREATE, times=1))
    with pytest.raises(ExchangeUnreachable):
        exchange_keys.OkxKeys().create_key(
            client, SUB.name, "exvault 0123abcd x", ("trade",), (IP,), PASS["okx"]
        )


def test_bybit_secret_echoing_refusal_never_reaches_the_message(
    mock_exchanges: MockExchanges,
) -> None:
    # Bybit's bad-signature answer quotes the signed request: the create's body.
    mock = mock_exchanges["bybit"]
    client = master(mock, secret="wrong")
    with pytest.raises(ExchangeError) as caught:
        exchange_keys.BybitKeys().create_key(
            client, SUB.uid, "exvault 0123abcd x", ("Spot:SpotTrade",), (IP,), None
        )
    assert "origin_string" not in str(caught.value) and "master-bybit" not in str(caught.value)


def test_htx_and_binance_are_unsupported_with_the_reason() -> None:
    with pytest.raises(InvalidInput, match="one-time password"):
        exchange_keys.for_exchange("htx")
    with pytest.raises(InvalidInput, match="broker accounts only"):
        exchange_keys.for_exchange("binance")
    with pytest.raises(InvalidInput, match="supported: okx, bybit, kucoin, gate"):
        exchange_keys.for_exchange("kraken")


@given(st.text(alphabet=string.ascii_lowercase + string.digits + "-_.", min_size=1, max_size=64))
def test_labels_fit_every_exchange_and_give_back_the_rotation_id(name: str) -> None:
    label = model.label_for(name, "89abcdef")
    assert len(label) <= model.LABEL_MAX == sk.KUCOIN_REMARK_MAX
    assert model.rotation_id_of(label) == "89abcdef"


@pytest.mark.parametrize("label", ["mock key", "exvault", "exvault 0123abc x", "Exvault 0123abcd"])
def test_other_labels_have_no_rotation_id(label: str) -> None:
    assert model.rotation_id_of(label) is None


def test_a_malformed_rotation_id_is_refused() -> None:
    with pytest.raises(InvalidInput):
        model.label_for("x", "../../")


@given(st.integers(min_value=8, max_value=32))
def test_generated_passphrases_meet_okx_and_kucoin_rules(length: int) -> None:
    okx = model.new_passphrase(length, specials="-_.").reveal()
    kucoin = model.new_passphrase(length).reveal()
    assert sk.okx_passphrase_ok(okx) and sk.kucoin_passphrase_ok(kucoin)
    assert len(okx) == len(kucoin) == length
    assert kucoin.isalnum()  # safe unencoded in a query string


def test_a_seeded_passphrase_is_the_same_for_the_same_seed_only() -> None:
    okx = exchange_keys.OkxKeys()
    first = okx.passphrase(b"rotation 0123abcd")
    again = okx.passphrase(b"rotation 0123abcd")
    other = okx.passphrase(b"rotation 4567cdef")
    assert first is not None and again is not None and other is not None
    assert first.reveal() == again.reveal() != other.reveal()
    assert exchange_keys.GateKeys().passphrase(b"x") is None


def test_a_new_key_never_shows_its_secret() -> None:
    new = model.NewKey("AK", model.Secret("the-secret"), model.Secret("the-pass"), "label")
    assert "the-secret" not in repr(new) and "the-pass" not in repr(new)
    with pytest.raises(TypeError):
        pickle.dumps(new)
    assert new.payload() == {"api_key": "AK", "secret": "the-secret", "passphrase": "the-pass"}


@pytest.mark.parametrize(
    ("exchange", "grants", "permissions"),
    [
        ("okx", ("read_only", "trade"), ("read", "trade")),
        ("bybit", ("Spot:SpotTrade", "Wallet:Withdraw"), ("read", "trade", "withdraw")),
        ("bybit", ("Spot:SpotTrade", "readOnly"), ("read",)),
        ("kucoin", ("General", "Futures"), ("read", "futures")),
        ("gate", ("spot", "wallet"), ("read", "trade", "withdraw")),
        ("gate", ("spot:read", "wallet:read"), ("read",)),
    ],
)
def test_permissions_normalize_the_exchanges_grants(
    exchange: str, grants: tuple[str, ...], permissions: tuple[str, ...]
) -> None:
    assert exchange_keys.for_exchange(exchange).permissions(grants) == permissions
