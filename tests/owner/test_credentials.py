"""Credential operations: names, validation, edit, remove, what add returns."""

from __future__ import annotations

from datetime import date

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.conftest import (
    BINANCE_SECRET,
    db_exec,
    store_location,
)
from vault.errors import (
    AlreadyExists,
    InvalidInput,
    NotFound,
)
from vault.owner.admin import AdminVault

BACKENDS = ("sqlite", "postgresql")


def test_duplicate_name(stocked: AdminVault, binance_payload: dict[str, str]) -> None:
    with pytest.raises(AlreadyExists):
        stocked.add("binance-main", "binance", binance_payload)
    assert stocked.get("binance-main").version == 1


@pytest.mark.parametrize("op", ["get", "describe", "history", "remove"])
def test_unknown_name(admin: AdminVault, op: str) -> None:
    with pytest.raises(NotFound, match="nope"):
        getattr(admin, op)("nope")


@pytest.mark.parametrize(
    "call",
    [
        lambda a: a.get("binance-\udc80"),
        lambda a: a.describe("\udc80"),
        lambda a: a.history("\udcff"),
        lambda a: a.remove("x\udc80"),
        lambda a: a.grant("\udc80", ["binance-main"]),
        lambda a: a.grant("grid-bot", ["\udc80"]),
        lambda a: a.client("\udc80"),
        lambda a: a.revoke_client("\udc80"),
    ],
    ids=["get", "describe", "history", "remove", "grant-client", "grant-name", "client", "revoke"],
)
def test_name_that_is_not_utf8_is_refused(stocked: AdminVault, call: object) -> None:
    """A name with bytes that were not UTF-8 (a lone surrogate) is invalid input, not a
    UnicodeEncodeError from the database driver."""
    stocked.add_client("grid-bot", max_scope="trade")
    with pytest.raises(InvalidInput, match=r"name .* is not valid UTF-8 text \(at character"):
        call(stocked)  # type: ignore[operator]
    assert stocked.names() == ["binance-main", "kucoin-sub1"]


def test_secret_field_that_is_not_utf8_is_refused(admin: AdminVault) -> None:
    payload = {"api_key": "k" * 20 + "\ud800", "secret": "s" * 32}
    with pytest.raises(InvalidInput, match='field "api_key" is not valid UTF-8') as info:
        admin.add("x", "other", payload)
    assert "kkkk" not in str(info.value)
    assert admin.names() == []


def test_risk_reason_that_is_not_utf8_is_refused(stocked: AdminVault) -> None:
    with pytest.raises(InvalidInput, match="the reason is not valid UTF-8"):
        stocked.accept_risk("binance-main", "withdraw-enabled", "ok\udc80")
    assert stocked.policy("binance-main").accepted == {}


def test_unknown_stage(stocked: AdminVault) -> None:
    with pytest.raises(InvalidInput):
        stocked.get("binance-main", "latest")
    with pytest.raises(NotFound, match="no pending version"):
        stocked.get("binance-main", "pending")


@given(st.text(max_size=80))
def test_name_validation_never_crashes(name: str) -> None:
    from vault.format.model import NAME_PATTERN, validate_name

    if NAME_PATTERN.fullmatch(name):
        assert validate_name(name) == name
    else:
        with pytest.raises(InvalidInput):
            validate_name(name)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"exchange": "nosuchx"}, "unknown exchange"),
        ({"ips": ["300.1.1.1"]}, "bad IP"),
        ({"permissions": "read,fly"}, "fly"),
        ({"issued_on": date(2026, 1, 2), "expires_on": date(2026, 1, 1)}, "before"),
        ({"payload": {"api_key": "k" * 20}}, "secret"),
        ({"payload": {"api_key": "k" * 20, "secret": " padded-secret-value "}}, "whitespace"),
        (
            {"exchange": "kucoin", "payload": {"api_key": "k" * 20, "secret": "s" * 30}},
            "passphrase",
        ),
    ],
)
def test_bad_input_stores_nothing(admin: AdminVault, kwargs: dict[str, object], match: str) -> None:
    args: dict[str, object] = {
        "exchange": "binance",
        "payload": {"api_key": "k" * 20, "secret": "s" * 32},
        **kwargs,
    }
    with pytest.raises(InvalidInput, match=match):
        admin.add("x", args.pop("exchange"), args.pop("payload"), **args)  # type: ignore[arg-type]
    assert admin.names() == []


def test_error_messages_never_contain_the_secret(admin: AdminVault) -> None:
    with pytest.raises(InvalidInput) as info:
        admin.add("x", "kraken", {"api_key": "k" * 20, "secret": "not-base64-secret!!"})
    assert "not-base64-secret" not in str(info.value)


def test_edit_writes_a_new_version(stocked: AdminVault) -> None:
    info = stocked.edit(
        "binance-main", permissions="read", ips=["203.0.113.8"], expires_on=date(2027, 3, 1)
    )
    assert info.version == 2
    cred = stocked.get("binance-main")
    assert cred.permissions == ("read",) and cred.ips == ("203.0.113.8",)
    assert cred.expires_on == date(2027, 3, 1)
    assert cred.secret.reveal() == BINANCE_SECRET
    history = stocked.history("binance-main")
    assert [(v.version, v.stages, v.readable) for v in history] == [
        (2, ("current",), True),
        (1, (), False),
    ]
    assert history[1].metadata.permissions == ("read", "trade")


def test_edit_can_clear_expiry_and_replace_secrets(stocked: AdminVault) -> None:
    stocked.edit("binance-main", expires_on=date(2027, 1, 1))
    stocked.edit("binance-main", expires_on=None, payload={"api_key": "n" * 20, "secret": "m" * 32})
    cred = stocked.get("binance-main")
    assert cred.expires_on is None and cred.secret.reveal() == "m" * 32 and cred.version == 3


def test_remove(stocked: AdminVault) -> None:
    stocked.remove("binance-main")
    assert stocked.names() == ["kucoin-sub1"]
    url = store_location(stocked.store)
    assert db_exec(url, "SELECT count(*) FROM credential_versions") == [(1,)]
    assert db_exec(url, "SELECT count(*) FROM dek_wraps") == [(1,)]


def _key(i: int) -> dict[str, str]:
    return {"api_key": f"batch-key-{i:010d}", "secret": f"batch-secret-{i:020d}"}


def test_add_returns_what_describe_reads(admin: AdminVault) -> None:
    info = admin.add("a", "binance", _key(1), permissions="read,trade", ips=["203.0.113.7"])
    assert info == admin.describe("a")
    with admin.batch():
        info = admin.add("b", "kucoin", {**_key(2), "passphrase": "p4ss!word"}, ips="10.0.0.0/8")
    assert info == admin.describe("b")
