"""Reading hummingbot's connector files (``conf/connectors/<connector>.yml``).

Each file is YAML (read with PyYAML) naming its ``connector`` and holding one value
per secret setting, ``<connector>_api_key`` and the like; each value is the hex form of
an Ethereum v3 keystore JSON (eth-keyfile's format: PBKDF2-SHA256 or scrypt, AES-128-CTR,
a MAC) encrypted under the hummingbot password, and decrypted here with eth-keyfile.
The password is checked first against ``conf/.password_verification`` when the
directory has one. A keystore's KDF cost is capped before it runs, so a crafted file
cannot make the import run for hours.

Connector names map to exchange ids (:data:`CONNECTORS`; ``_perpetual`` and
``_paper_trade`` variants to the same exchange); the setting's name, without the
connector's, to exvault's field (:data:`SETTINGS`). The credential is named after the
connector (``binance``, ``binance-perpetual``).
"""

from __future__ import annotations

import binascii
import json
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from vault.errors import IntegrityError, InvalidInput, VaultUnavailable, printable, quoted
from vault.ops.importing.plan import IMPORT_EXTRA, FoundKey, Progress, Skipped, Source, SourceFile
from vault.ops.text_file import read_text
from vault.secret import Secret

#: hummingbot connector -> exchange id, where they differ (else the connector's name
#: without its ``_perpetual`` or ``_paper_trade`` ending is taken as the exchange id).
CONNECTORS: Mapping[str, str] = {
    "gate_io": "gate",
    "huobi": "htx",
    "coinbase_advanced_trade": "coinbase",
}

#: The end of a setting's name (after ``<connector>_``) -> exvault's field.
SETTINGS: Mapping[str, str] = {
    "api_key": "api_key",
    "api_secret": "secret",
    "secret_key": "secret",
    "api_secret_key": "secret",
    "secret": "secret",
    "passphrase": "passphrase",
    "api_passphrase": "passphrase",
    "uid": "uid",
    "user_id": "uid",
}

PASSWORD_VERIFICATION = ".password_verification"  # noqa: S105 (a file name)
"""hummingbot's file, in its conf directory, holding the word "HummingBot" encrypted
under the password."""

MAX_CONNECTOR_FILE_BYTES = 64 * 1024
"""The largest connector file read: hummingbot's hold a few settings, a few KiB; PyYAML
takes minutes over a crafted file of a few hundred."""

MAX_PBKDF2_ITERATIONS = 10_000_000
"""Ten times hummingbot's own 1,000,000."""
MAX_SCRYPT_COST = 1 << 23
"""scrypt's n * r * p: its memory is 128 * n * r bytes (here at most 1 GiB), its time
grows with n * r * p. eth-keyfile's own setting (n 2^18, r 1, p 8) is 2^21."""
DERIVED_KEY_LENGTHS = range(32, 65)
"""The KDF output lengths accepted: the keystore uses its first 32 bytes, and a long
output costs time and memory of its own."""


def _eth_keyfile() -> Any:
    """eth-keyfile, loaded with the interpreter's recursion limit left as it was.

    :raises VaultUnavailable: when it is not installed.
    """
    limit = sys.getrecursionlimit()
    try:
        import eth_keyfile  # the optional `import` extra
    except ImportError:
        raise VaultUnavailable(f"reading hummingbot's files needs: {IMPORT_EXTRA}") from None
    finally:
        # py_ecc, which it loads, raises the limit to 100,000: deep input (nested YAML)
        # would then overflow the C stack, a crash, instead of raising RecursionError.
        sys.setrecursionlimit(limit)
    return eth_keyfile


def decrypt_value(value: object, password: str, what: str) -> str:
    """A hummingbot secret value: hex of a v3 keystore JSON, decrypted with ``password``.

    :raises InvalidInput: for a value that is not text, not such a keystore, or a KDF too costly
        (:data:`MAX_PBKDF2_ITERATIONS`, :data:`MAX_SCRYPT_COST`,
        :data:`DERIVED_KEY_LENGTHS`).
    :raises IntegrityError: for a wrong password (the keystore's MAC does not match).
    """
    eth_keyfile = _eth_keyfile()
    if not isinstance(value, str):
        # Not str(value): YAML aliases make a few bytes a list of billions of items.
        raise InvalidInput(f"{what} is not text, as hummingbot's encrypted values are")
    try:
        keystore = json.loads(binascii.unhexlify(value))
        crypto = keystore["crypto"]
        params = crypto["kdfparams"]
        if crypto["kdf"] == "pbkdf2":
            cost, limit = int(params["c"]), MAX_PBKDF2_ITERATIONS
        elif crypto["kdf"] == "scrypt":
            n, r, p = (int(params[name]) for name in ("n", "r", "p"))
            if min(n, r, p) < 1:
                raise ValueError("a scrypt factor below 1")
            cost, limit = n * r * p, MAX_SCRYPT_COST
        else:
            raise ValueError("no KDF eth-keyfile knows")
        length = int(params["dklen"])
    except (ValueError, TypeError, KeyError, binascii.Error):
        raise InvalidInput(f"{what} is not an encrypted value as hummingbot writes them") from None
    # Checked before the KDF runs: a crafted file could otherwise keep it busy for hours.
    if not 0 < cost <= limit:
        raise InvalidInput(f"{what}: its key derivation cost {cost} is out of range")
    if length not in DERIVED_KEY_LENGTHS:
        raise InvalidInput(f"{what}: its derived key length {length} is out of range")
    try:
        plain: bytes = eth_keyfile.decode_keyfile_json(keystore, password.encode())
    except ValueError as exc:
        if "MAC mismatch" in str(exc):
            raise IntegrityError("wrong hummingbot password (or a damaged file)") from None
        raise InvalidInput(f"{what} cannot be decrypted ({type(exc).__name__})") from None
    except (KeyError, TypeError):
        raise InvalidInput(f"{what} is not an encrypted value as hummingbot writes them") from None
    try:
        return plain.decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidInput(f"{what} is not UTF-8 text once decrypted") from None


def connectors_dir(directory: Path) -> tuple[Path, Path | None]:
    """The connectors folder of ``directory`` (hummingbot's ``conf`` folder, its parent,
    or the connectors folder itself) and the password verification file, if any.

    :raises InvalidInput: when none of them has a connectors folder.
    """
    for conf in (directory / "conf", directory, directory.parent):
        if (conf / "connectors").is_dir():
            check = conf / PASSWORD_VERIFICATION
            return conf / "connectors", check if check.is_file() else None
    if directory.is_dir() and any(directory.glob("*.yml")):
        check = directory.parent / PASSWORD_VERIFICATION
        return directory, check if check.is_file() else None
    raise InvalidInput(
        f"{printable(directory)} has no hummingbot connectors folder (conf/connectors)"
    )


def _load_yaml(path: Path) -> dict[str, Any]:
    try:
        import yaml  # the optional `import` extra
    except ImportError:
        raise VaultUnavailable(f"reading hummingbot's files needs: {IMPORT_EXTRA}") from None
    text = read_text(path, "hummingbot connector file", MAX_CONNECTOR_FILE_BYTES)
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}" if mark is not None else "syntax"
        raise InvalidInput(f"{printable(path)} is not valid YAML ({where})") from None
    except RecursionError:
        raise InvalidInput(f"{printable(path)} nests too deep for a connector file") from None
    if not isinstance(data, dict):
        raise InvalidInput(f"{printable(path)} is not a YAML mapping of settings")
    return data


def exchange_of(connector: str) -> str:
    """The exchange id of a hummingbot connector name."""
    base = connector.removesuffix("_paper_trade").removesuffix("_perpetual")
    return CONNECTORS.get(base, base)


def read(directory: Path, password: str, progress: Progress | None = None) -> Source:
    """The keys of hummingbot's connector files under ``directory``, decrypted.

    :raises InvalidInput: for a missing connectors folder, a file that is not YAML or a
        value that is not a keystore.
    :raises IntegrityError: for a wrong password.
    :raises VaultUnavailable: when PyYAML or eth-keyfile is not installed.
    """
    folder, check = connectors_dir(directory)
    _eth_keyfile()
    if check is not None:
        text = read_text(check, "password verification file").strip()
        decrypt_value(text, password, "the password verification file")
    files = sorted(p for p in folder.iterdir() if p.suffix in (".yml", ".yaml") and p.is_file())
    settings = [(path, _load_yaml(path)) for path in files]
    total = sum(len(data) for _, data in settings)
    done = 0
    keys: list[FoundKey] = []
    skipped: list[Skipped] = []
    for path, data in settings:
        connector = data.get("connector", path.stem)
        if not isinstance(connector, str):
            raise InvalidInput(f"{printable(path)}: its connector is not text")
        fields: dict[str, Secret] = {}
        unmapped: list[str] = []
        for key, value in data.items():
            setting = str(key)
            done += 1
            if setting == "connector":
                if progress is not None:
                    progress(done, total)
                continue
            field = SETTINGS.get(setting.removeprefix(connector + "_"))
            if field is None or value in (None, ""):
                unmapped.append(setting)
            else:
                what = f"{printable(path.name)}: {quoted(setting)}"
                fields[field] = Secret(decrypt_value(value, password, what))
            if progress is not None:
                progress(done, total)
        if not fields:
            skipped.append(Skipped(printable(path.name), "no exchange key in it"))
            continue
        keys.append(
            FoundKey(
                origin=printable(path.name),
                base_name=connector.replace("_", "-").lower(),
                exchange=exchange_of(connector),
                fields=fields,
                path=path,
                unmapped=tuple(unmapped),
            )
        )
    return Source(
        kind="hummingbot",
        keys=tuple(keys),
        skipped=tuple(skipped),
        files=tuple(
            SourceFile(k.path, not k.unmapped, f"other settings ({', '.join(k.unmapped[:3])})")
            for k in keys
        ),
    )
