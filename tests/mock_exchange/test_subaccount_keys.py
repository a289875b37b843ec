"""The sub-account key endpoints of the mock, called by real ccxt clients with a master
key: create, list, change and delete, the exchanges' rules and refusals, and faults."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from tests.mock_exchange import subaccount_keys as sk
from tests.mock_exchange.clients import ccxt_client
from tests.mock_exchange.registry import Account, ApiKey, Fault
from tests.mock_exchange.server import MockExchange, MockExchanges

ccxt = pytest.importorskip("ccxt")

MASTER = Account("1001", "main")
SUB = Account("2002", "gridsub", parent="1001")
OTHER_SUB = Account("3003", "othersub", parent="9999")
IP = "203.0.113.7"
MASTER_RIGHT = {
    "okx": ("read_only", "trade"),
    "bybit": ("Wallet:AccountTransfer",),
    "kucoin": ("General",),
    "gate": ("account",),
}
EXCHANGES = list(MASTER_RIGHT)


def master_key(mock: MockExchange, permissions: tuple[str, ...] | None = None) -> ApiKey:
    mock.add_account(MASTER)
    mock.add_account(SUB)
    mock.add_account(OTHER_SUB)
    mock.state.client_ip = IP
    return mock.add_key(
        ApiKey(
            "master-key-" + mock.name,
            "master-secret-" + mock.name,
            MASTER,
            passphrase="Master#Pass1",
            permissions=MASTER_RIGHT[mock.name] if permissions is None else permissions,
            ip_whitelist=(IP,),
        )
    )


def create(client: Any, account: Account = SUB, **extra: Any) -> Any:
    """Create a trade key bound to IP for ``account`` through ccxt's implicit method."""
    calls: dict[str, Callable[[], Any]] = {
        "okx": lambda: client.private_post_users_subaccount_apikey(
            {
                "subAcct": account.name,
                "label": "exvault grid 1a2b3c4d",
                "passphrase": "Abc-12345",
                "perm": "read_only,trade",
                "ip": IP,
                **extra,
            }
        ),
        "bybit": lambda: client.private_post_v5_user_create_sub_api(
            {
                "subuid": int(account.uid),
                "note": "exvault grid 1a2b3c4d",
                "readOnly": 0,
                "ips": IP,
                "permissions": {"Spot": ["SpotTrade"]},
                **extra,
            }
        ),
        "kucoin": lambda: client.private_post_sub_api_key(
            {
                "subName": account.name,
                "remark": "exvault grid 1a2b3c4d",
                "passphrase": "Abc-12345",
                "permission": "General,Spot",
                "ipWhitelist": IP,
                **extra,
            }
        ),
        "gate": lambda: client.private_subaccounts_post_sub_accounts_user_id_keys(
            {
                "user_id": account.uid,
                "name": "exvault grid 1a2b3c4d",
                "perms": [{"name": "spot", "read_only": False}],
                "ip_whitelist": [IP],
                **extra,
            }
        ),
    }
    return calls[client.id]()


def created_key(exchange: str, answer: Any) -> tuple[str, str]:
    """(api key, secret) out of a create answer."""
    if exchange == "okx":
        return answer["data"][0]["apiKey"], answer["data"][0]["secretKey"]
    if exchange == "bybit":
        return answer["result"]["apiKey"], answer["result"]["secret"]
    if exchange == "kucoin":
        return answer["data"]["apiKey"], answer["data"]["apiSecret"]
    return answer["key"], answer["secret"]


def listed(client: Any, account: Account = SUB) -> list[dict[str, Any]]:
    if client.id == "okx":
        return list(client.private_get_users_subaccount_apikey({"subAcct": account.name})["data"])
    if client.id == "bybit":
        answer = client.private_get_v5_user_sub_apikeys({"subMemberId": account.uid})
        return list(answer["result"]["result"])
    if client.id == "kucoin":
        return list(client.private_get_sub_api_key({"subName": account.name})["data"])
    return list(client.private_subaccounts_get_sub_accounts_user_id_keys({"user_id": account.uid}))


def delete(client: Any, api_key: str, passphrase: str = "Abc-12345") -> Any:
    if client.id == "okx":
        return client.private_post_users_subaccount_delete_apikey(
            {"subAcct": SUB.name, "apiKey": api_key}
        )
    if client.id == "bybit":
        return client.private_post_v5_user_delete_sub_api({"apikey": api_key})
    if client.id == "kucoin":
        return client.private_delete_sub_api_key(
            {"subName": SUB.name, "apiKey": api_key, "passphrase": passphrase}
        )
    return client.private_subaccounts_delete_sub_accounts_user_id_keys_key(
        {"user_id": SUB.uid, "key": api_key}
    )


def label_of(exchange: str, row: dict[str, Any]) -> str:
    return str(row[{"okx": "label", "bybit": "note", "kucoin": "remark", "gate": "name"}[exchange]])


def key_of(exchange: str, row: dict[str, Any]) -> str:
    return str(row["key" if exchange == "gate" else "apiKey"])


@pytest.mark.parametrize("exchange", EXCHANGES)
def test_a_master_key_creates_lists_and_deletes_a_sub_account_key(
    mock_exchanges: MockExchanges, exchange: str
) -> None:
    mock = mock_exchanges[exchange]
    client = ccxt_client(mock, master_key(mock))
    api_key, secret = created_key(exchange, create(client))
    stored = mock.state.key(api_key)
    assert stored is not None and stored.secret == secret
    assert stored.account == SUB and stored.ip_whitelist == (IP,)
    assert stored.label == "exvault grid 1a2b3c4d"
    rows = listed(client)
    assert [key_of(exchange, row) for row in rows] == [api_key]
    assert label_of(exchange, rows[0]) == "exvault grid 1a2b3c4d"
    assert secret not in str(rows)  # a listing never shows a secret
    delete(client, api_key)
    assert mock.state.key(api_key) is None
    assert listed(client) == []


@pytest.mark.parametrize("exchange", ["okx", "bybit", "kucoin"])
def test_the_created_key_answers_its_own_introspection(
    mock_exchanges: MockExchanges, exchange: str
) -> None:
    mock = mock_exchanges[exchange]
    client = ccxt_client(mock, master_key(mock))
    api_key, _secret = created_key(exchange, create(client))
    new = ccxt_client(mock, mock.state.key(api_key))  # type: ignore[arg-type]
    if exchange == "okx":
        config = new.privateGetAccountConfig()["data"][0]
        assert (config["perm"], config["ip"], config["uid"]) == ("read_only,trade", IP, SUB.uid)
    elif exchange == "bybit":
        info = new.privateGetV5UserQueryApi()["result"]
        assert info["permissions"]["Spot"] == ["SpotTrade"] and info["ips"] == [IP]
    else:
        info = new.privateGetUserApiKey()["data"]
        assert (info["permission"], info["ipWhitelist"]) == ("General,Spot", IP)


@pytest.mark.parametrize("exchange", EXCHANGES)
def test_a_key_without_the_management_right_is_refused(
    mock_exchanges: MockExchanges, exchange: str
) -> None:
    mock = mock_exchanges[exchange]
    client = ccxt_client(mock, master_key(mock, permissions=("read_only",)))
    with pytest.raises(ccxt.ExchangeError):
        create(client)
    assert mock.state.keys_of(SUB.uid) == []
    assert mock.requests()[-1].outcome == "forbidden"


@pytest.mark.parametrize("exchange", EXCHANGES)
def test_a_sub_account_key_cannot_manage_keys(mock_exchanges: MockExchanges, exchange: str) -> None:
    mock = mock_exchanges[exchange]
    master_key(mock)
    sub_key = mock.add_key(
        ApiKey(
            "sub-key", "sub-secret", SUB, passphrase="Sub#Pass1", permissions=MASTER_RIGHT[exchange]
        )
    )
    with pytest.raises(ccxt.ExchangeError):
        create(ccxt_client(mock, sub_key))
    assert mock.state.keys_of(SUB.uid) == [sub_key]


@pytest.mark.parametrize("exchange", EXCHANGES)
def test_another_masters_sub_account_is_refused(
    mock_exchanges: MockExchanges, exchange: str
) -> None:
    mock = mock_exchanges[exchange]
    client = ccxt_client(mock, master_key(mock))
    with pytest.raises(ccxt.ExchangeError):
        create(client, OTHER_SUB)
    assert mock.state.keys_of(OTHER_SUB.uid) == []


@pytest.mark.parametrize("exchange", EXCHANGES)
def test_a_bad_signature_is_refused_before_anything_is_created(
    mock_exchanges: MockExchanges, exchange: str
) -> None:
    mock = mock_exchanges[exchange]
    client = ccxt_client(mock, master_key(mock), secret="not-the-secret")
    with pytest.raises(ccxt.AuthenticationError if exchange != "gate" else ccxt.ExchangeError):
        create(client)
    assert mock.state.keys_of(SUB.uid) == []
    assert mock.requests()[-1].outcome == "bad_signature"


def test_okx_refuses_a_master_key_not_bound_to_ips(mock_exchanges: MockExchanges) -> None:
    mock = mock_exchanges["okx"]
    master = master_key(mock)
    master.ip_whitelist = ()
    with pytest.raises(ccxt.ExchangeError, match="50030"):
        create(ccxt_client(mock, master))


@pytest.mark.parametrize(
    ("passphrase", "ok"),
    [
        ("Abc-12345", True),
        ("abc#12345", False),
        ("Abc12345x", False),
        ("Ab#1", False),
        ("Abc# 12345", False),
        ("A" * 30 + "b#1", False),
    ],
)
def test_okx_passphrase_rules(mock_exchanges: MockExchanges, passphrase: str, ok: bool) -> None:
    mock = mock_exchanges["okx"]
    client = ccxt_client(mock, master_key(mock))
    if ok:
        create(client, passphrase=passphrase)
    else:
        with pytest.raises(ccxt.ExchangeError, match="passphrase"):
            create(client, passphrase=passphrase)
    assert len(mock.state.keys_of(SUB.uid)) == int(ok)


@pytest.mark.parametrize(
    ("passphrase", "ok"),
    [
        ("abcdefg", True),
        ("x" * 32, True),
        ("abcdef", False),
        ("x" * 33, False),
        ("abc defg", False),
    ],
)
def test_kucoin_passphrase_rules(mock_exchanges: MockExchanges, passphrase: str, ok: bool) -> None:
    mock = mock_exchanges["kucoin"]
    client = ccxt_client(mock, master_key(mock))
    if ok:
        create(client, passphrase=passphrase)
    else:
        with pytest.raises(ccxt.ExchangeError, match="400100"):
            create(client, passphrase=passphrase)
    assert len(mock.state.keys_of(SUB.uid)) == int(ok)


@pytest.mark.parametrize(
    ("exchange", "field", "longest"), [("kucoin", "remark", 24), ("okx", "label", 50)]
)
def test_label_length_rules(
    mock_exchanges: MockExchanges, exchange: str, field: str, longest: int
) -> None:
    mock = mock_exchanges[exchange]
    client = ccxt_client(mock, master_key(mock))
    create(client, **{field: "x" * longest})
    with pytest.raises(ccxt.ExchangeError):
        create(client, **{field: "y" * (longest + 1)})
    with pytest.raises(ccxt.ExchangeError):
        create(client, **{field: ""})
    assert len(mock.state.keys_of(SUB.uid)) == 1


def test_okx_refuses_withdraw_for_a_sub_account_key(mock_exchanges: MockExchanges) -> None:
    mock = mock_exchanges["okx"]
    with pytest.raises(ccxt.ExchangeError, match="perm"):
        create(ccxt_client(mock, master_key(mock)), perm="read_only,withdraw")


def test_kucoin_deletes_only_with_the_keys_passphrase(mock_exchanges: MockExchanges) -> None:
    mock = mock_exchanges["kucoin"]
    client = ccxt_client(mock, master_key(mock))
    api_key, _ = created_key("kucoin", create(client))
    with pytest.raises(ccxt.ExchangeError):
        delete(client, api_key, passphrase="wrong-pass")
    assert mock.state.key(api_key) is not None


@pytest.mark.parametrize("exchange", ["okx", "bybit", "kucoin", "gate"])
def test_a_change_updates_ips_and_permissions(mock_exchanges: MockExchanges, exchange: str) -> None:
    mock = mock_exchanges[exchange]
    client = ccxt_client(mock, master_key(mock))
    api_key, _ = created_key(exchange, create(client))
    other = "198.51.100.9"
    if exchange == "okx":
        client.private_post_users_subaccount_modify_apikey(
            {"subAcct": SUB.name, "apiKey": api_key, "ip": other, "perm": "read_only"}
        )
    elif exchange == "bybit":
        client.private_post_v5_user_update_sub_api(
            {"apikey": api_key, "ips": other, "permissions": {"Wallet": ["AccountTransfer"]}}
        )
    elif exchange == "kucoin":
        client.private_post_sub_api_key_update(
            {
                "subName": SUB.name,
                "apiKey": api_key,
                "passphrase": "Abc-12345",
                "ipWhitelist": other,
                "permission": "General",
            }
        )
    else:
        client.private_subaccounts_put_sub_accounts_user_id_keys_key(
            {
                "user_id": SUB.uid,
                "key": api_key,
                "ip_whitelist": [other],
                "perms": [{"name": "spot", "read_only": True}],
            }
        )
    stored = mock.state.key(api_key)
    assert stored is not None and stored.ip_whitelist == (other,)
    assert (
        stored.permissions
        == {
            "okx": ("read_only",),
            "bybit": ("Wallet:AccountTransfer",),
            "kucoin": ("General",),
            "gate": ("spot:read",),
        }[exchange]
    )


@pytest.mark.parametrize("exchange", EXCHANGES)
def test_a_5xx_on_create_creates_nothing(mock_exchanges: MockExchanges, exchange: str) -> None:
    mock = mock_exchanges[exchange]
    client = ccxt_client(mock, master_key(mock))
    mock.inject(Fault.server_error(503, path=sk.create_path(exchange, SUB), times=1))
    with pytest.raises(ccxt.ExchangeNotAvailable):
        create(client)
    assert mock.state.keys_of(SUB.uid) == []
    create(client)  # the fault was for one request
    assert len(mock.state.keys_of(SUB.uid)) == 1


@pytest.mark.parametrize("exchange", EXCHANGES)
def test_a_timeout_on_create_still_creates_the_key(
    mock_exchanges: MockExchanges, exchange: str
) -> None:
    mock = mock_exchanges[exchange]
    client = ccxt_client(mock, master_key(mock), timeout_ms=100)
    mock.inject(Fault.delay(0.25, path=sk.create_path(exchange, SUB), times=1))
    with pytest.raises(ccxt.RequestTimeout):
        create(client)
    # The exchange created it after the client gave up: only its label finds it.
    for _ in range(100):
        if mock.state.keys_of(SUB.uid):
            break
        mock.stopping.wait(0.05)
    rows = listed(ccxt_client(mock, master_key(mock)))
    assert [label_of(exchange, row) for row in rows] == ["exvault grid 1a2b3c4d"]


@pytest.mark.parametrize("exchange", EXCHANGES)
def test_a_5xx_on_delete_keeps_the_key(mock_exchanges: MockExchanges, exchange: str) -> None:
    mock = mock_exchanges[exchange]
    client = ccxt_client(mock, master_key(mock))
    api_key, _ = created_key(exchange, create(client))
    path = sk.delete_path(exchange, SUB, api_key)
    mock.inject(Fault.server_error(502, path=path, times=1))
    with pytest.raises(ccxt.ExchangeNotAvailable):
        delete(client, api_key)
    assert mock.state.key(api_key) is not None
    delete(client, api_key)
    assert mock.state.key(api_key) is None
