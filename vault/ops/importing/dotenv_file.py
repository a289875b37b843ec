"""Reading ``.env`` files: ccxt-style variables and freqtrade's.

The file is parsed by python-dotenv's own parser (quotes, escapes, comments,
``export``), without interpolation (a ``$`` in a secret stays as it is). Two kinds of
variables are exchange keys:

* ``<EXCHANGE>[_<LABEL>]_<FIELD>``, the names ccxt scripts use (``BINANCE_API_KEY``,
  ``BINANCE_SECRET``, ``KUCOIN_SUB1_PASSPHRASE``): the first word is an exchange id
  exvault knows, the words before the field name a label, and the field is one of
  :data:`SUFFIXES`. The credential is named ``<exchange>[-<label>]`` in lower case.
* ``FREQTRADE__EXCHANGE__<FIELD>`` (freqtrade's variables, ``FREQTRADE__EXCHANGE__NAME``
  for the exchange): one key, named like freqtrade's configuration's.

Every other variable is reported as skipped, by name.
"""

from __future__ import annotations

import io
from collections.abc import Mapping
from pathlib import Path

from vault.errors import InvalidInput, VaultUnavailable, printable
from vault.exchanges.profiles import get_profile
from vault.ops.importing import freqtrade
from vault.ops.importing.plan import IMPORT_EXTRA, FoundKey, Skipped, Source, SourceFile
from vault.ops.text_file import read_text
from vault.secret import Secret

#: The end of a variable's name -> exvault's field, longest first where one ends another.
SUFFIXES: Mapping[str, str] = {
    "API_SECRET_KEY": "secret",
    "API_SECRET": "secret",
    "SECRET_KEY": "secret",
    "SECRET": "secret",
    "API_KEY": "api_key",
    "APIKEY": "api_key",
    "API_PASSPHRASE": "passphrase",
    "PASSPHRASE": "passphrase",
    "API_PASSWORD": "passphrase",
    "PASSWORD": "passphrase",
    "PRIVATE_KEY": "private_key",
    "USER_ID": "uid",
    "UID": "uid",
}

FREQTRADE_PREFIX = "FREQTRADE__EXCHANGE__"


def read_variables(path: Path) -> dict[str, str]:
    """The variables of a ``.env`` file (a variable without a value is left out).

    :raises InvalidInput: for a file that cannot be read or is not UTF-8, or a line
        python-dotenv cannot parse (its number only: the line may hold a secret).
    :raises VaultUnavailable: when python-dotenv is not installed.
    """
    try:
        from dotenv.parser import parse_stream  # the optional `import` extra
    except ImportError:
        raise VaultUnavailable(f"reading .env files needs: {IMPORT_EXTRA}") from None
    text = read_text(path, ".env file")
    variables: dict[str, str] = {}
    for binding in parse_stream(io.StringIO(text)):
        if binding.error:
            raise InvalidInput(
                f".env file {printable(path)}: line {binding.original.line} is not "
                "NAME=value (quotes not closed?)"
            )
        if binding.key is not None and binding.value is not None:
            variables[binding.key] = binding.value
    return variables


def _split(variable: str) -> tuple[str, str, str] | None:
    """``(exchange id, label, field)`` of a ccxt-style variable, None for another."""
    upper = variable.upper()
    for suffix, field in SUFFIXES.items():
        if upper.endswith("_" + suffix):
            words = upper[: -len(suffix) - 1].split("_")
            try:
                exchange = get_profile(words[0]).id
            except InvalidInput:
                return None
            if exchange == "other":
                return None
            return exchange, "-".join(w for w in words[1:] if w).lower(), field
    return None


def read(path: Path) -> Source:
    """The exchange keys of the ``.env`` file ``path``.

    :raises InvalidInput: as :func:`read_variables`.
    :raises VaultUnavailable: when python-dotenv is not installed.
    """
    variables = read_variables(path)
    groups: dict[tuple[str, str], dict[str, Secret]] = {}
    names: dict[tuple[str, str], list[str]] = {}
    given_by: dict[tuple[str, str, str], str] = {}
    problems: dict[tuple[str, str], str] = {}
    freqtrade_section: dict[str, object] = {}
    others: list[str] = []
    for variable, value in variables.items():
        if variable.upper().startswith(FREQTRADE_PREFIX):
            setting = variable[len(FREQTRADE_PREFIX) :].lower()
            freqtrade_section[setting] = value
            if setting not in freqtrade.FIELDS and setting != "name":
                others.append(variable)  # a setting of the bot's (ccxt_config...): kept
            continue
        parts = _split(variable)
        if parts is None:
            others.append(variable)
            continue
        exchange, label, field = parts
        group = (exchange, label)
        if value:
            earlier = given_by.setdefault((exchange, label, field), variable)
            if earlier != variable:
                # Which one the script reads depends on the script: neither is guessed.
                problems.setdefault(group, f"{earlier} and {variable} both give its {field}")
            groups.setdefault(group, {})[field] = Secret(value)
        names.setdefault(group, []).append(variable)
    keys = [
        FoundKey(
            origin=", ".join(names[group]),
            base_name=group[0] + (f"-{group[1]}" if group[1] else ""),
            exchange=group[0],
            fields=groups.get(group, {}),
            path=path,
            problem=problems.get(group),
        )
        for group in names
    ]
    if freqtrade_section:
        found = freqtrade.exchange_key(freqtrade_section, "FREQTRADE__EXCHANGE__*", path, None)
        if found is not None:
            keys.append(found)
        else:
            others.extend(
                k for k in variables if k.upper().startswith(FREQTRADE_PREFIX) and k not in others
            )
    skipped = (Skipped(", ".join(others), "not exchange keys"),) if others else ()
    what = f"other variables ({', '.join(others[:3])})"
    return Source(
        kind="env",
        keys=tuple(keys),
        skipped=skipped,
        files=(SourceFile(path, not others, what),) if keys else (),
    )
