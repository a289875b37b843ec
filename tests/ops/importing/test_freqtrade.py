"""freqtrade's configuration files read as freqtrade reads them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import BINANCE_API_KEY, BINANCE_SECRET
from tests.import_sources import freqtrade_config
from vault.errors import InvalidInput
from vault.ops.importing import freqtrade


def test_config_and_private_config_merge_into_one_key(tmp_path: Path) -> None:
    public, private = freqtrade_config(tmp_path)
    source = freqtrade.read([public, private])
    (key,) = source.keys
    assert (key.base_name, key.exchange, key.path) == ("binance", "binance", private)
    assert {k: v.reveal() for k, v in key.fields.items()} == {
        "api_key": BINANCE_API_KEY,
        "secret": BINANCE_SECRET,
    }
    # config-private.json holds the key alone; config.json holds no secret at all.
    assert [(f.path, f.only_keys) for f in source.files] == [(private, True)]


def test_every_freqtrade_field_maps_to_ours(tmp_path: Path) -> None:
    path = tmp_path / "config.json"
    section = {
        "name": "okx",
        "key": "k",
        "secret": "s",
        "password": "p",
        "uid": "u",
        "walletAddress": "w",
        "privateKey": "x",
    }
    path.write_text(json.dumps({"exchange": section}))
    (key,) = freqtrade.read([path]).keys
    assert {k: v.reveal() for k, v in key.fields.items()} == {
        "api_key": "k",
        "secret": "s",
        "passphrase": "p",
        "uid": "u",
        "wallet_address": "w",
        "private_key": "x",
    }


def test_a_file_with_other_settings_is_not_only_keys(tmp_path: Path) -> None:
    path = tmp_path / "config.json"
    path.write_text(json.dumps({"dry_run": True, "exchange": {"name": "binance", "key": "k"}}))
    (file,) = freqtrade.read([path]).files
    assert not file.only_keys
    assert "dry_run" in file.why_kept


def test_the_exchange_option_names_an_unnamed_exchange(tmp_path: Path) -> None:
    path = tmp_path / "config-private.json"
    path.write_text(json.dumps({"exchange": {"key": "k", "secret": "s"}}))
    assert freqtrade.read([path]).keys[0].exchange is None
    assert freqtrade.read([path], "kraken").keys[0].exchange == "kraken"


def test_a_config_without_key_fields_has_no_key(tmp_path: Path) -> None:
    path = tmp_path / "config.json"
    path.write_text('{"exchange": {"name": "binance", "key": "", "secret": ""}}')
    assert freqtrade.read([path]).keys == ()


@pytest.mark.usefixtures("default_recursion_limit")  # rapidjson's depth limit
@pytest.mark.parametrize(
    ("text", "message"),
    [
        (f'{{"exchange": {{"key": "{BINANCE_SECRET}" "secret": 1}}}}', "not valid JSON (offset"),
        ("[1, 2]", "is not a JSON object"),
        ('{"exchange": "binance"}', '"exchange" in'),
        ("", "not valid JSON"),
        ("[" * 100_000 + "]" * 100_000, "not valid JSON (offset"),  # an internal error once
    ],
    ids=["syntax", "array", "exchange-text", "empty", "deep"],
)
def test_a_malformed_config_is_one_clear_error_without_its_text(
    tmp_path: Path, text: str, message: str
) -> None:
    path = tmp_path / "config.json"
    path.write_text(text)
    with pytest.raises(InvalidInput) as caught:
        freqtrade.read([path])
    assert message in str(caught.value)
    assert BINANCE_SECRET[:12] not in str(caught.value)


def test_a_value_that_is_not_text_is_a_problem_of_the_key(tmp_path: Path) -> None:
    path = tmp_path / "config.json"
    path.write_text(json.dumps({"exchange": {"name": "binance", "key": 12, "secret": "s"}}))
    (key,) = freqtrade.read([path]).keys
    assert key.problem is not None and '"key" is not text' in key.problem


def test_a_missing_or_non_utf8_file_is_one_clear_error(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match="cannot read freqtrade configuration"):
        freqtrade.read([tmp_path / "none.json"])
    path = tmp_path / "latin1.json"
    path.write_bytes(b'{"exchange": {"key": "\xe9"}}')
    with pytest.raises(InvalidInput, match="not valid UTF-8"):
        freqtrade.read([path])


def test_add_config_files_are_read_as_freqtrade_reads_them(tmp_path: Path) -> None:
    # freqtrade's documented alternative to several -c: the main file names the others,
    # relative to its folder; they are merged first, then the main file's own values.
    (tmp_path / "secrets").mkdir()
    private = tmp_path / "secrets" / "config-private.json"
    private.write_text(json.dumps({"exchange": {"key": BINANCE_API_KEY, "secret": "old"}}))
    main = tmp_path / "config.json"
    main.write_text(
        json.dumps(
            {
                "add_config_files": ["secrets/config-private.json"],
                "exchange": {"name": "binance", "secret": BINANCE_SECRET},
            }
        )
    )
    source = freqtrade.read([main])
    (key,) = source.keys
    assert (key.exchange, key.origin) == (
        "binance",
        "exchange section of config-private.json, config.json",
    )
    assert {k: v.reveal() for k, v in key.fields.items()} == {
        "api_key": BINANCE_API_KEY,
        "secret": BINANCE_SECRET,  # the main file's value wins, as in freqtrade
    }
    assert [(f.path.name, f.only_keys) for f in source.files] == [
        ("config-private.json", True),
        ("config.json", False),
    ]


@pytest.mark.parametrize(
    ("added", "message"),
    [
        (["config.json"], "add_config_files nest too deep"),
        ("config-private.json", "is not a list of file names"),
        (["none.json"], "cannot read freqtrade configuration"),
    ],
)
def test_bad_add_config_files_are_one_clear_error(
    tmp_path: Path, added: object, message: str
) -> None:
    main = tmp_path / "config.json"
    main.write_text(json.dumps({"add_config_files": added, "exchange": {"name": "binance"}}))
    with pytest.raises(InvalidInput, match=message):
        freqtrade.read([main])
