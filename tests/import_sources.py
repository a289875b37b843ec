"""Sample sources for ``exvault import``, written at test time by the programs' own
libraries or as the programs document them: a freqtrade configuration split into
config.json and config-private.json, a .env file, hummingbot's conf folder (values
encrypted with eth-keyfile as hummingbot encrypts them) and a KeePass database made by
pykeepass. Their secret values are the distinctive ones of tests/conftest.py, so leak
tests can look for them in any output."""

from __future__ import annotations

import binascii
import json
import os
from pathlib import Path

from eth_keyfile.keyfile import DKLEN, _pbkdf2_hash, encrypt_aes_ctr
from eth_utils import big_endian_to_int, keccak

from tests.conftest import (
    BINANCE_API_KEY,
    BINANCE_SECRET,
    KUCOIN_API_KEY,
    KUCOIN_PASSPHRASE,
    KUCOIN_SECRET,
)

HUMMINGBOT_PASSWORD = "hummingbot-test-password"
KEEPASS_PASSWORD = "keepass-test-password"
TEST_ITERATIONS = 1000
"""PBKDF2 iterations of the test keystores (hummingbot uses 1,000,000): cheap tests."""

SECRETS = (BINANCE_API_KEY, BINANCE_SECRET, KUCOIN_API_KEY, KUCOIN_SECRET, KUCOIN_PASSPHRASE)


def freqtrade_config(folder: Path) -> tuple[Path, Path]:
    """freqtrade's documented split: settings in config.json (with a comment and a
    trailing comma, which freqtrade's parser accepts), the key in config-private.json."""
    public = folder / "config.json"
    public.write_text(
        "{\n"
        "    // freqtrade reads comments and trailing commas\n"
        '    "max_open_trades": 3,\n'
        '    "stake_currency": "USDT",\n'
        '    "exchange": {\n'
        '        "name": "binance",\n'
        '        "key": "",\n'
        '        "secret": "",\n'
        '        "ccxt_config": {},\n'
        '        "pair_whitelist": ["BTC/USDT", "ETH/USDT"],\n'
        "    },\n"
        "}\n"
    )
    private = folder / "config-private.json"
    private.write_text(
        json.dumps({"exchange": {"key": BINANCE_API_KEY, "secret": BINANCE_SECRET}}, indent=4)
    )
    return public, private


def env_file(path: Path) -> Path:
    """A .env with ccxt-style names, quoting, comments, ``export`` and other variables."""
    path.write_text(
        "# exchange keys of my ccxt scripts\n"
        f"export KUCOIN_API_KEY={KUCOIN_API_KEY}\n"
        f'KUCOIN_SECRET="{KUCOIN_SECRET}"  # comment after a quoted value\n'
        f"KUCOIN_PASSPHRASE='{KUCOIN_PASSPHRASE}'\n"
        "\n"
        f"BINANCE_SUB1_API_KEY = {BINANCE_API_KEY}\n"
        f'BINANCE_SUB1_SECRET="{BINANCE_SECRET}"\n'
        "LOG_LEVEL=debug\n"
    )
    return path


def hummingbot_value(plain: str, password: str, iterations: int = TEST_ITERATIONS) -> str:
    """A secret as hummingbot stores it: an eth-keyfile v3 keystore (PBKDF2-SHA256,
    AES-128-CTR, keccak MAC, built from eth-keyfile's own primitives exactly as
    hummingbot's config_crypt does, since create_keyfile_json takes only 32-byte
    private keys), as JSON, hex-encoded."""
    salt = os.urandom(16)
    derived = _pbkdf2_hash(
        password.encode(), hash_name="sha256", salt=salt, iterations=iterations, dklen=DKLEN
    )
    iv = os.urandom(16)
    ciphertext = encrypt_aes_ctr(plain.encode(), derived[:16], big_endian_to_int(iv))
    keystore = {
        "crypto": {
            "cipher": "aes-128-ctr",
            "cipherparams": {"iv": iv.hex()},
            "ciphertext": ciphertext.hex(),
            "kdf": "pbkdf2",
            "kdfparams": {
                "c": iterations,
                "dklen": DKLEN,
                "prf": "hmac-sha256",
                "salt": salt.hex(),
            },
            "mac": keccak(derived[16:32] + ciphertext).hex(),
        },
        "version": 3,
    }
    return binascii.hexlify(json.dumps(keystore).encode()).decode()


def hummingbot_conf(root: Path, password: str = HUMMINGBOT_PASSWORD) -> Path:
    """hummingbot's folder: conf/.password_verification and two connector files."""
    conf = root / "conf"
    (conf / "connectors").mkdir(parents=True)
    (conf / ".password_verification").write_text(hummingbot_value("HummingBot", password))
    (conf / "connectors" / "binance.yml").write_text(
        "connector: binance\n"
        f"binance_api_key: {hummingbot_value(BINANCE_API_KEY, password)}\n"
        f"binance_api_secret: {hummingbot_value(BINANCE_SECRET, password)}\n"
    )
    (conf / "connectors" / "kucoin.yml").write_text(
        "connector: kucoin\n"
        f"kucoin_api_key: {hummingbot_value(KUCOIN_API_KEY, password)}\n"
        f"kucoin_secret_key: {hummingbot_value(KUCOIN_SECRET, password)}\n"
        f"kucoin_passphrase: {hummingbot_value(KUCOIN_PASSPHRASE, password)}\n"
    )
    return root


def keepass_database(path: Path, password: str = KEEPASS_PASSWORD) -> Path:
    """A KeePass database made by pykeepass: Exchanges/binance-main (exchange from the
    title), Exchanges/KuCoin bot (exchange and passphrase as custom properties), and an
    entry of another group that is no exchange key."""
    from pykeepass.pykeepass import BLANK_DATABASE_LOCATION, BLANK_DATABASE_PASSWORD, PyKeePass

    # What pykeepass.create_database does (open its blank database, save it under a new
    # name and password), with a cheap Argon2 set explicitly before the save: its
    # default costs seconds per open. Every reader obeys the database's own parameters.
    kp = PyKeePass(BLANK_DATABASE_LOCATION, BLANK_DATABASE_PASSWORD)
    kdf = kp.kdbx.header.value.dynamic_header.kdf_parameters.data.dict
    kdf["I"].value, kdf["M"].value = 1, 8 * 1024 * 1024
    kp.filename, kp.password = str(path), password
    group = kp.add_group(kp.root_group, "Exchanges")
    kp.add_entry(group, "binance-main", BINANCE_API_KEY, BINANCE_SECRET)
    kucoin = kp.add_entry(group, "KuCoin bot", KUCOIN_API_KEY, KUCOIN_SECRET)
    kucoin.set_custom_property("exchange", "kucoin")
    kucoin.set_custom_property("passphrase", KUCOIN_PASSPHRASE, protect=True)
    mail = kp.add_group(kp.root_group, "Mail")
    kp.add_entry(mail, "webmail", "me@example.org", "not-an-exchange-secret")
    kp.save()
    return path
