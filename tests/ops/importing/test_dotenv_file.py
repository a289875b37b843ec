"""``.env`` files read by python-dotenv's parser: ccxt-style and freqtrade variables."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.conftest import (
    BINANCE_API_KEY,
    BINANCE_SECRET,
    KUCOIN_API_KEY,
    KUCOIN_PASSPHRASE,
    KUCOIN_SECRET,
)
from tests.import_sources import env_file
from vault.errors import InvalidInput
from vault.ops.importing import dotenv_file
from vault.ops.importing.plan import Source


def fields_of(source: Source) -> dict[str, dict[str, str]]:
    return {k.base_name: {f: v.reveal() for f, v in k.fields.items()} for k in source.keys}


def test_ccxt_style_variables_group_into_keys(tmp_path: Path) -> None:
    source = dotenv_file.read(env_file(tmp_path / ".env"))
    assert fields_of(source) == {
        "kucoin": {
            "api_key": KUCOIN_API_KEY,
            "secret": KUCOIN_SECRET,
            "passphrase": KUCOIN_PASSPHRASE,
        },
        "binance-sub1": {"api_key": BINANCE_API_KEY, "secret": BINANCE_SECRET},
    }
    assert [s.origin for s in source.skipped] == ["LOG_LEVEL"]
    (file,) = source.files
    assert not file.only_keys  # LOG_LEVEL would be lost with the file


@pytest.mark.parametrize(
    ("variable", "expected"),
    [
        ("BINANCE_API_KEY", ("binance", "", "api_key")),
        ("BINANCE_SECRET_KEY", ("binance", "", "secret")),
        ("OKX_MAIN_API_PASSPHRASE", ("okx", "main", "passphrase")),
        ("GATEIO_APIKEY", ("gate", "", "api_key")),
        ("huobi_uid", ("htx", "", "uid")),
        ("COINBASE_PRIVATE_KEY", ("coinbase", "", "private_key")),
        ("OPENAI_API_KEY", None),
        ("BINANCE_REGION", None),
        ("OTHER_API_KEY", None),
    ],
)
def test_variable_names(variable: str, expected: tuple[str, str, str] | None) -> None:
    assert dotenv_file._split(variable) == expected


def test_freqtrade_variables_are_one_key(tmp_path: Path) -> None:
    path = tmp_path / "freqtrade.env"
    path.write_text(
        "FREQTRADE__EXCHANGE__NAME=kucoin\n"
        f"FREQTRADE__EXCHANGE__KEY={KUCOIN_API_KEY}\n"
        f"FREQTRADE__EXCHANGE__SECRET={KUCOIN_SECRET}\n"
        f"FREQTRADE__EXCHANGE__PASSWORD={KUCOIN_PASSPHRASE}\n"
    )
    source = dotenv_file.read(path)
    assert fields_of(source) == {
        "kucoin": {
            "api_key": KUCOIN_API_KEY,
            "secret": KUCOIN_SECRET,
            "passphrase": KUCOIN_PASSPHRASE,
        }
    }
    assert source.files[0].only_keys


def test_freqtrade_settings_that_are_no_key_keep_the_file(tmp_path: Path) -> None:
    # --remove-source would otherwise delete the bot's ccxt_config with the key.
    path = tmp_path / "freqtrade.env"
    path.write_text(
        "FREQTRADE__EXCHANGE__NAME=binance\n"
        f"FREQTRADE__EXCHANGE__KEY={BINANCE_API_KEY}\n"
        f"FREQTRADE__EXCHANGE__SECRET={BINANCE_SECRET}\n"
        "FREQTRADE__EXCHANGE__CCXT_CONFIG__ENABLERATELIMIT=false\n"
    )
    source = dotenv_file.read(path)
    assert fields_of(source) == {"binance": {"api_key": BINANCE_API_KEY, "secret": BINANCE_SECRET}}
    assert [s.origin for s in source.skipped] == [
        "FREQTRADE__EXCHANGE__CCXT_CONFIG__ENABLERATELIMIT"
    ]
    assert not source.files[0].only_keys


def test_two_variables_for_one_field_make_the_key_a_problem(tmp_path: Path) -> None:
    path = tmp_path / ".env"
    path.write_text(
        f"BINANCE_API_KEY={BINANCE_API_KEY}\nBINANCE_APIKEY=other\nBINANCE_SECRET={BINANCE_SECRET}\n"
    )
    (key,) = dotenv_file.read(path).keys
    assert key.problem == "BINANCE_API_KEY and BINANCE_APIKEY both give its api_key"


def test_an_empty_variable_beside_a_full_one_is_no_problem(tmp_path: Path) -> None:
    path = tmp_path / ".env"
    path.write_text(f"BINANCE_APIKEY=\nBINANCE_API_KEY={BINANCE_API_KEY}\n")
    (key,) = dotenv_file.read(path).keys
    assert key.problem is None
    assert key.fields["api_key"].reveal() == BINANCE_API_KEY


def test_a_line_dotenv_cannot_parse_is_an_error_naming_the_line_only(tmp_path: Path) -> None:
    path = tmp_path / ".env"
    path.write_text(f'BINANCE_API_KEY=x\nBINANCE_SECRET="{BINANCE_SECRET}\n')
    with pytest.raises(InvalidInput) as caught:
        dotenv_file.read(path)
    assert "line 2 is not NAME=value" in str(caught.value)
    assert BINANCE_SECRET[:12] not in str(caught.value)


def test_no_interpolation_changes_a_secret(tmp_path: Path) -> None:
    path = tmp_path / ".env"
    path.write_text("HOME_X=1\nBINANCE_API_KEY=abc${HOME_X}\nBINANCE_SECRET='s$HOME_X'\n")
    assert fields_of(dotenv_file.read(path))["binance"] == {
        "api_key": "abc${HOME_X}",
        "secret": "s$HOME_X",
    }


# Values as people write them in .env files: any printable ASCII but quotes and
# backslashes, single-quoted (python-dotenv keeps a single-quoted value as it is).
VALUES = st.text(
    alphabet=st.characters(min_codepoint=0x21, max_codepoint=0x7E, exclude_characters="'\\\""),
    min_size=1,
    max_size=80,
)


@given(key=VALUES, secret=VALUES)
def test_any_quoted_value_comes_back_as_written(
    tmp_path_factory: pytest.TempPathFactory, key: str, secret: str
) -> None:
    path = tmp_path_factory.mktemp("env") / ".env"
    path.write_text(f"KRAKEN_API_KEY='{key}'\nexport KRAKEN_SECRET='{secret}' # note\n")
    assert fields_of(dotenv_file.read(path)) == {"kraken": {"api_key": key, "secret": secret}}
