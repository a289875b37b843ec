"""KeePass databases made by pykeepass, read back into keys."""

from __future__ import annotations

import hashlib
import shutil
import struct
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


def with_kdf_parameter(database: Path, name: str, value: int) -> Path:
    """``database`` with its KDBX 4 header's KDF parameter ``name`` (a UInt64) set to
    ``value``, and the header's SHA-256 made to match, as a crafted file would be."""
    from pykeepass.kdbx_parsing import KDBX

    data = bytearray(database.read_bytes())
    length = len(KDBX.subcons[0].parse(bytes(data)).data)
    entry = b"\x05" + struct.pack("<I", 1) + name.encode() + struct.pack("<I", 8)
    at = data.index(entry) + len(entry)
    data[at : at + 8] = struct.pack("<Q", value)
    data[length : length + 32] = hashlib.sha256(bytes(data[:length])).digest()
    database.write_bytes(bytes(data))
    return database


@pytest.mark.parametrize(
    ("name", "value", "asked"),
    [
        ("I", 2**32 - 1, "4294967295 Argon2 iterations over 8 MiB"),
        ("M", 64 << 30, "1 Argon2 iterations over 65536 MiB"),
        ("I", 40_000, "40000 Argon2 iterations over 8 MiB"),
    ],
)
def test_a_crafted_argon2_cost_is_refused_before_it_runs(
    database: Path, name: str, value: int, asked: str
) -> None:
    with_kdf_parameter(database, name, value)
    with pytest.raises(InvalidInput, match=f"too costly to run \\({asked}\\)"):
        keepass.read(database, KEEPASS_PASSWORD)


def test_a_crafted_kdbx3_aes_kdf_cost_is_refused_before_it_runs(tmp_path: Path) -> None:
    # A KDBX 3.1 header: signatures, version 3.1, transform_rounds (id 6), end (id 0).
    path = tmp_path / "old.kdbx"
    path.write_bytes(
        bytes.fromhex("03d9a29a67fb4bb5")
        + struct.pack("<HH", 1, 3)
        + b"\x06"
        + struct.pack("<HQ", 8, 2**40)
        + b"\x00"
        + struct.pack("<H", 4)
        + b"\r\n\r\n"
    )
    with pytest.raises(InvalidInput, match=r"too costly to run \(1099511627776 AES-KDF rounds\)"):
        keepass.read(path, KEEPASS_PASSWORD)


def test_the_default_cost_of_keepassxc_is_read(database: Path) -> None:
    # KeePassXC's default Argon2 memory, 64 MiB, at 100 iterations (seconds) still opens.
    keepass.refuse_costly_kdf(with_kdf_parameter(database, "M", 64 << 20))
    keepass.refuse_costly_kdf(with_kdf_parameter(database, "I", 100))
