"""hummingbot's connector files: YAML with eth-keyfile v3 values under its password."""

from __future__ import annotations

import binascii
import json
import subprocess
import sys
from pathlib import Path

import pytest
from eth_keyfile.keyfile import create_keyfile_json

from tests.conftest import (
    BINANCE_API_KEY,
    BINANCE_SECRET,
    KUCOIN_API_KEY,
    KUCOIN_PASSPHRASE,
    KUCOIN_SECRET,
)
from tests.import_sources import HUMMINGBOT_PASSWORD, SECRETS, hummingbot_conf, hummingbot_value
from vault.errors import IntegrityError, InvalidInput
from vault.ops.importing import hummingbot
from vault.ops.importing.plan import Source


def fields_of(source: Source) -> dict[str, dict[str, str]]:
    return {k.base_name: {f: v.reveal() for f, v in k.fields.items()} for k in source.keys}


def test_connector_files_decrypt_into_keys(tmp_path: Path) -> None:
    seen: list[tuple[int, int]] = []
    source = hummingbot.read(
        hummingbot_conf(tmp_path), HUMMINGBOT_PASSWORD, lambda d, t: seen.append((d, t))
    )
    assert fields_of(source) == {
        "binance": {"api_key": BINANCE_API_KEY, "secret": BINANCE_SECRET},
        "kucoin": {
            "api_key": KUCOIN_API_KEY,
            "secret": KUCOIN_SECRET,
            "passphrase": KUCOIN_PASSPHRASE,
        },
    }
    assert [k.exchange for k in source.keys] == ["binance", "kucoin"]
    assert seen[-1] == (7, 7)  # every setting of both files, the connector lines too
    assert all(f.only_keys for f in source.files)


@pytest.mark.parametrize("given", ["", "conf", "conf/connectors"])
def test_the_folder_may_be_hummingbot_its_conf_or_its_connectors(
    tmp_path: Path, given: str
) -> None:
    hummingbot_conf(tmp_path)
    assert len(hummingbot.read(tmp_path / given, HUMMINGBOT_PASSWORD).keys) == 2


def test_a_wrong_password_is_refused_by_the_verification_file(tmp_path: Path) -> None:
    with pytest.raises(IntegrityError, match="wrong hummingbot password"):
        hummingbot.read(hummingbot_conf(tmp_path), "not the password")


def test_a_wrong_password_without_verification_file_is_refused_too(tmp_path: Path) -> None:
    root = hummingbot_conf(tmp_path)
    (root / "conf" / ".password_verification").unlink()
    with pytest.raises(IntegrityError):
        hummingbot.read(root, "not the password")


def test_a_standard_keystore_made_by_create_keyfile_json_decrypts() -> None:
    value = b"0123456789abcdef0123456789abcdef"  # 32 bytes: what create_keyfile_json takes
    keystore = create_keyfile_json(value, b"pw", iterations=2)
    hexed = binascii.hexlify(json.dumps(keystore).encode()).decode()
    assert hummingbot.decrypt_value(hexed, "pw", "value") == value.decode()


def test_a_scrypt_keystore_within_the_cost_cap_decrypts() -> None:
    value = b"0123456789abcdef0123456789abcdef"
    keystore = create_keyfile_json(value, b"pw", kdf="scrypt", iterations=16)
    hexed = binascii.hexlify(json.dumps(keystore).encode()).decode()
    assert hummingbot.decrypt_value(hexed, "pw", "value") == value.decode()


def crafted(kdf: str = "pbkdf2", **kdfparams: object) -> str:
    """A cheap keystore whose KDF settings are changed to ``kdf`` and ``kdfparams``."""
    keystore = json.loads(binascii.unhexlify(hummingbot_value("x", "pw", iterations=1)))
    keystore["crypto"]["kdf"] = kdf
    keystore["crypto"]["kdfparams"].update(kdfparams)
    return binascii.hexlify(json.dumps(keystore).encode()).decode()


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("not-hex", "not an encrypted value"),
        # Each would run for minutes or exhaust the memory if its KDF ran.
        (crafted(dklen=10**9), "derived key length 1000000000 is out of range"),
        (crafted("scrypt", n=1024, r=2**30, p=1), "cost 1099511627776 is out of range"),
        (crafted("scrypt", n=1024, r=1, p=2**30), "cost 1099511627776 is out of range"),
        (crafted("scrypt", n=2**21, r=8, p=1), "cost 16777216 is out of range"),
        (crafted("scrypt", n=2**10, r=1, p=1, dklen=2**30), "length 1073741824 is out of range"),
        (crafted("argon2"), "not an encrypted value"),
        (binascii.hexlify(b'{"crypto": {}}').decode(), "not an encrypted value"),
        (hummingbot_value("x", "pw", iterations=100_000_000), "cost 100000000 is out of range"),
    ],
)
def test_a_bad_value_is_one_clear_error(value: str, message: str) -> None:
    with pytest.raises(InvalidInput, match=message):
        hummingbot.decrypt_value(value, "pw", "binance.yml")


def test_a_yaml_alias_bomb_is_refused_before_it_is_expanded(tmp_path: Path) -> None:
    # 381 bytes whose value, made text, is 9^9 strings: the import hung, eating memory.
    # The same shape three levels deep shows the refusal without the wait.
    root = hummingbot_conf(tmp_path)
    lines = ["connector: binance", "a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    for level, previous in zip("bc", "ab", strict=True):
        lines.append(f"{level}: &{level} [{', '.join([f'*{previous}'] * 9)}]")
    lines.append("binance_api_key: *c")
    (root / "conf" / "connectors" / "binance.yml").write_text("\n".join(lines) + "\n")
    with pytest.raises(InvalidInput, match='"binance_api_key" is not text'):
        hummingbot.read(root, HUMMINGBOT_PASSWORD)


def test_plaintext_where_a_keystore_belongs_is_refused_without_quoting_it(tmp_path: Path) -> None:
    root = hummingbot_conf(tmp_path)
    (root / "conf" / "connectors" / "binance.yml").write_text(
        f"connector: binance\nbinance_api_key: {BINANCE_API_KEY}\n"
    )
    with pytest.raises(InvalidInput) as caught:
        hummingbot.read(root, HUMMINGBOT_PASSWORD)
    assert "binance_api_key" in str(caught.value)
    assert not any(s[:12] in str(caught.value) for s in SECRETS)


def test_malformed_yaml_is_one_clear_error(tmp_path: Path) -> None:
    root = hummingbot_conf(tmp_path)
    (root / "conf" / "connectors" / "okx.yml").write_text("connector: okx\nokx_api_key: [\n")
    with pytest.raises(InvalidInput, match=r"okx.yml is not valid YAML \(line \d+\)"):
        hummingbot.read(root, HUMMINGBOT_PASSWORD)


def test_loading_eth_keyfile_leaves_the_recursion_limit_alone() -> None:
    # With py_ecc's 100,000, str() of a list nested 90,000 deep killed the interpreter.
    code = (
        "import sys; from vault.ops.importing import hummingbot; "
        "hummingbot._eth_keyfile(); print(sys.getrecursionlimit())"
    )
    ran = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert ran.stdout.strip() == "1000"


@pytest.mark.usefixtures("default_recursion_limit")
@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("x: " + "[" * 1000 + "]" * 1000, "nests too deep"),  # an internal error once
        ("x: " + "[" * 50_000 + "]" * 50_000, "is too large"),  # PyYAML took minutes
    ],
    ids=["deep", "large"],
)
def test_a_connector_file_too_deep_or_large_is_one_clear_error(
    tmp_path: Path, text: str, message: str
) -> None:
    root = hummingbot_conf(tmp_path)
    (root / "conf" / "connectors" / "binance.yml").write_text(f"connector: binance\n{text}\n")
    with pytest.raises(InvalidInput, match=message):
        hummingbot.read(root, HUMMINGBOT_PASSWORD)


def test_no_connectors_folder_is_one_clear_error(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match="no hummingbot connectors folder"):
        hummingbot.read(tmp_path, HUMMINGBOT_PASSWORD)


@pytest.mark.parametrize(
    ("connector", "exchange"),
    [
        ("binance_perpetual", "binance"),
        ("gate_io", "gate"),
        ("gate_io_paper_trade", "gate"),
        ("coinbase_advanced_trade", "coinbase"),
        ("okx", "okx"),
    ],
)
def test_connector_names_map_to_exchange_ids(connector: str, exchange: str) -> None:
    assert hummingbot.exchange_of(connector) == exchange


def test_settings_without_an_exvault_field_are_reported(tmp_path: Path) -> None:
    root = hummingbot_conf(tmp_path)
    with (root / "conf" / "connectors" / "binance.yml").open("a") as file:
        file.write("binance_sub_account: 'main'\n")
    source = hummingbot.read(root, HUMMINGBOT_PASSWORD)
    (key, _) = source.keys
    assert key.unmapped == ("binance_sub_account",)
    # --remove-source would delete the setting with the keys: that file is kept.
    assert [(f.path.name, f.only_keys) for f in source.files] == [
        ("binance.yml", False),
        ("kucoin.yml", True),
    ]
    assert "binance_sub_account" in source.files[0].why_kept
