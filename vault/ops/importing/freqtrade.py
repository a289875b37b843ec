"""Reading freqtrade's configuration files: the ``exchange`` section's key fields.

freqtrade reads its configuration as JSON with comments and trailing commas
(python-rapidjson's parse modes); several files (``-c config.json -c
config-private.json``) are merged, a later file's values winning. This reader does the
same, with the same library, and maps the exchange section's fields to exvault's:
``key`` -> api_key, ``secret`` -> secret, ``password`` -> passphrase, ``uid`` -> uid,
and, for exchanges signed with a wallet, ``walletAddress`` and ``privateKey``. The
credential is named after the exchange (``name``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from vault.errors import InvalidInput, VaultUnavailable, printable, quoted
from vault.ops.importing.plan import IMPORT_EXTRA, FoundKey, Source, SourceFile
from vault.ops.text_file import read_text
from vault.secret import Secret

#: freqtrade's exchange section field -> exvault's field.
FIELDS: Mapping[str, str] = {
    "key": "api_key",
    "secret": "secret",
    "password": "passphrase",
    "uid": "uid",
    "walletaddress": "wallet_address",
    "privatekey": "private_key",
}

#: Exchange section settings that are no secret and do not stop a file from counting
#: as holding only keys.
_NOT_SECRET = ("name",)


def _parse(path: Path) -> dict[str, Any]:
    """One configuration file, parsed as freqtrade parses it.

    :raises InvalidInput: naming the file and the position of the error (never the
        text there, which may be a secret).
    """
    try:
        import rapidjson  # the optional `import` extra; freqtrade's own parser
    except ImportError:
        raise VaultUnavailable(f"reading freqtrade configurations needs: {IMPORT_EXTRA}") from None
    text = read_text(path, "freqtrade configuration")
    try:
        value = rapidjson.loads(
            text, parse_mode=rapidjson.PM_COMMENTS | rapidjson.PM_TRAILING_COMMAS
        )
    except (rapidjson.JSONDecodeError, ValueError, RecursionError) as exc:
        # rapidjson's message says "Parse error at offset N: <what>", no input text
        # (a RecursionError too: arrays nested past its depth limit).
        detail = str(exc).split(":", 1)
        where = detail[0].replace("Parse error at ", "").strip()
        raise InvalidInput(
            f"freqtrade configuration {printable(path)} is not valid JSON ({where})"
        ) from None
    if not isinstance(value, dict):
        raise InvalidInput(f"freqtrade configuration {printable(path)} is not a JSON object")
    return value


MAX_INCLUDE_DEPTH = 5
"""How deep ``add_config_files`` may nest, as freqtrade allows (a loop is an error)."""


def _in_merge_order(path: Path, depth: int = 0) -> list[tuple[Path, dict[str, Any]]]:
    """``path`` and the files its ``add_config_files`` names (relative to its folder,
    recursively), parsed, in the order freqtrade merges them: the added files first,
    in their order, then ``path``, whose own values win over theirs.

    :raises InvalidInput: for a file that does not parse, an ``add_config_files`` that
        is not a list of file names, or files that include each other.
    """
    if depth > MAX_INCLUDE_DEPTH:
        raise InvalidInput(
            f"freqtrade configuration {printable(path)}: add_config_files nest too deep (a loop?)"
        )
    config = _parse(path)
    added = config.get("add_config_files", [])
    if not isinstance(added, list) or not all(isinstance(name, str) for name in added):
        raise InvalidInput(f'"add_config_files" in {printable(path)} is not a list of file names')
    merged: list[tuple[Path, dict[str, Any]]] = []
    for name in added:
        merged.extend(_in_merge_order(path.resolve().parent / name, depth + 1))
    return [*merged, (path, config)]


def exchange_key(
    section: Mapping[str, object], origin: str, path: Path, exchange: str | None
) -> FoundKey | None:
    """The key of a freqtrade exchange section (field names compared case-insensitively,
    as freqtrade's variables are), None when it holds no key field at all.

    ``exchange`` is used when the section names none.
    """
    fields: dict[str, Secret] = {}
    problem = None
    for name, value in section.items():
        ours = FIELDS.get(name.lower())
        if ours is None:
            continue
        if not isinstance(value, str):
            problem = f"its {quoted(name)} is not text"
        elif value:
            fields[ours] = Secret(value)
    if not fields and problem is None:
        return None
    named = section.get("name")
    if named is not None and not isinstance(named, str):
        problem = "its exchange name is not text"
        named = None
    exchange = named or exchange
    return FoundKey(
        origin=origin,
        base_name=(exchange or "freqtrade").lower(),
        exchange=exchange,
        fields=fields,
        path=path,
        problem=problem,
    )


def read(paths: Sequence[Path], exchange: str | None = None) -> Source:
    """The key of freqtrade's configuration ``paths``, merged in order as freqtrade
    merges them (``config.json`` then ``config-private.json``), with the files each
    names in ``add_config_files``.

    :param exchange: the exchange when no file names one.
    :raises InvalidInput: for a file that cannot be read or is not a JSON object, an
        ``exchange`` entry that is not an object, or ``add_config_files`` as
        :func:`_in_merge_order` refuses them.
    :raises VaultUnavailable: when python-rapidjson is not installed.
    """
    merged: dict[str, object] = {}
    holder: Path | None = None
    files: list[SourceFile] = []
    in_order = [pair for path in paths for pair in _in_merge_order(path)]
    for path, config in in_order:
        section = config.get("exchange", {})
        if not isinstance(section, dict):
            raise InvalidInput(f'"exchange" in {printable(path)} is not a JSON object')
        secrets = [k for k, v in section.items() if k.lower() in FIELDS and v]
        if secrets:
            holder = path
        others = [k for k in config if k != "exchange"] + [
            k for k in section if k.lower() not in FIELDS and k not in _NOT_SECRET
        ]
        if secrets:
            files.append(SourceFile(path, not others, f"other settings ({', '.join(others[:3])})"))
        merged.update(section)
    origin = "exchange section of " + ", ".join(printable(p.name) for p, _ in in_order)
    found = exchange_key(merged, origin, holder or paths[-1], exchange)
    return Source(
        kind="freqtrade",
        keys=(found,) if found is not None else (),
        files=tuple(files),
    )
