"""Credential: a plain immutable class (no dataclass on a bot's path) that behaves as
the frozen dataclass it replaced: equal by value, immutable, unhashable, masked repr."""

from __future__ import annotations

import copy
import pickle
from datetime import date

import pytest

from vault.runtime.credential import Credential
from vault.secret import Secret

API_KEY = "k-4f1d9c2e8b7a"
SECRET = "s-9a8b7c6d5e4f"


def credential(secret: str = SECRET, **changes: object) -> Credential:
    values: dict[str, object] = {
        "name": "binance-main",
        "exchange": "binance",
        "permissions": ("read", "trade"),
        "ips": ("203.0.113.7",),
        "version": 3,
        "stage": "current",
        "issued_on": date(2024, 1, 1),
        "expires_on": None,
        "fields": {"api_key": Secret(API_KEY), "secret": Secret(secret)},
    }
    values.update(changes)
    return Credential(**values)  # type: ignore[arg-type]


def test_keyword_and_positional_construction_agree() -> None:
    cred = credential()
    again = Credential(
        "binance-main",
        "binance",
        ("read", "trade"),
        ("203.0.113.7",),
        3,
        "current",
        date(2024, 1, 1),
        None,
        {"api_key": Secret(API_KEY), "secret": Secret(SECRET)},
    )
    assert again == cred
    assert (cred.name, cred.version, cred.issued_on) == ("binance-main", 3, date(2024, 1, 1))
    assert cred.api_key.reveal() == API_KEY and cred.secret.reveal() == SECRET


def test_equal_by_value_and_unhashable() -> None:
    assert credential() == credential()
    assert credential() != credential(secret="another")
    assert credential() != credential(version=4)
    assert credential() != "binance-main"
    with pytest.raises(TypeError):
        hash(credential())


def test_immutable() -> None:
    cred = credential()
    with pytest.raises(AttributeError):
        cred.version = 4  # type: ignore[misc]
    with pytest.raises(AttributeError):
        del cred.name
    with pytest.raises(AttributeError):
        cred.extra = 1  # type: ignore[attr-defined]
    assert cred.version == 3
    assert copy.copy(cred) is cred and copy.deepcopy(cred) is cred


def test_repr_names_fields_never_values_and_no_pickle() -> None:
    text = repr(credential()) + str(credential())
    assert "api_key" in text and "binance-main" in text
    assert API_KEY not in text and SECRET not in text
    with pytest.raises(TypeError):
        pickle.dumps(credential())


def test_the_endpoint_is_live_unless_given_and_counts_for_equality() -> None:
    assert credential().endpoint == "live"
    assert credential(endpoint="testnet").endpoint == "testnet"
    assert credential(endpoint="testnet") != credential()
