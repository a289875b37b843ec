"""KeePass databases made by pykeepass, read back into keys."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.conftest import (
    BINANCE_API_KEY,
    BINANCE_SECRET,
    KUCOIN_API_KEY,
    KUCOIN_PASSPHRASE,
    KUCOIN_SECRET,
)
from tests.import_sources import KEEPASS_PASSWORD
from vault.errors import IntegrityError, InvalidInput, NotFound
from vault.ops.importing import keepass


@pytest.fixture
def database(keepass_template: Path, tmp_path: Path) -> Path:
    return Path(shutil.copy(keepass_template, tmp_path / "keys.kdbx"))


def test_entries_map_to_keys_and_another_groups_entry_has_no_exchange(database: Path) -> None:
    source = keepass.read(database, KEEPASS_PASSWORD)
    found = {
        k.base_name: (k.exchange, {f: v.reveal() for f, v in k.fields.items()}) for k in source.keys
    }
    assert found == {
        "binance-main": ("binance", {"api_key": BINANCE_API_KEY, "secret": BINANCE_SECRET}),
        "KuCoin-bot": (
            "kucoin",
            {"api_key": KUCOIN_API_KEY, "secret": KUCOIN_SECRET, "passphrase": KUCOIN_PASSPHRASE},
        ),
        "webmail": (None, {"api_key": "me@example.org", "secret": "not-an-exchange-secret"}),
    }
    assert not source.removable


def test_group_limits_the_entries(database: Path) -> None:
    source = keepass.read(database, KEEPASS_PASSWORD, group="Exchanges")
    assert sorted(k.base_name for k in source.keys) == ["KuCoin-bot", "binance-main"]
    with pytest.raises(NotFound, match="no group"):
        keepass.read(database, KEEPASS_PASSWORD, group="Nope")


def test_a_wrong_password_is_an_integrity_error(database: Path) -> None:
    with pytest.raises(IntegrityError, match="wrong KeePass password"):
        keepass.read(database, "wrong")


def test_a_file_that_is_no_keepass_database_is_one_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "keys.kdbx"
    path.write_bytes(b"PK\x03\x04 not a database")
    with pytest.raises(InvalidInput, match="is not a KeePass database"):
        keepass.read(path, KEEPASS_PASSWORD)
    with pytest.raises(InvalidInput, match="no KeePass database"):
        keepass.read(tmp_path / "none.kdbx", KEEPASS_PASSWORD)


@pytest.mark.parametrize(
    ("title", "name", "exchange"),
    [
        ("Binance main", "Binance-main", "binance"),
        ("my keys!", "my-keys", None),
        ("   ", "entry", None),
    ],
)
def test_titles_give_names_and_exchanges(title: str, name: str, exchange: str | None) -> None:
    assert keepass.base_name(title) == name
    assert keepass.exchange_of_title(title) == exchange
