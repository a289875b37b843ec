"""Names shared by every exchange: permissions and secret payload fields.

These names are part of the stored format (they appear in credential metadata and in
decrypted payloads), so they are fixed here once and every layer imports them.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from types import MappingProxyType

from vault.errors import InvalidInput, quoted

__all__ = [
    "CCXT_CREDENTIAL_NAMES",
    "CORE_FIELDS",
    "EXTRA_FIELDS",
    "PERMISSIONS",
    "STANDARD_FIELDS",
    "validate_field_name",
]

#: Normalized permission names. This order is the canonical sort order: from the
#: harmless to the dangerous, then the account-wide ones, so listings read naturally.
PERMISSIONS: tuple[str, ...] = (
    "read",
    "trade",
    "margin",
    "futures",
    "withdraw",
    "transfer",
    "subaccount",
)

#: The payload fields most exchanges need (ccxt ``apiKey``, ``secret``, ``password``,
#: ``uid``, ``privateKey``). ``passphrase`` is what ccxt calls ``password``: the API
#: passphrase chosen when the key was made, not the account's login password.
CORE_FIELDS: tuple[str, ...] = ("api_key", "secret", "passphrase", "uid", "private_key")

#: Further optional fields with a meaning in ccxt.
EXTRA_FIELDS: tuple[str, ...] = ("account_id", "login", "twofa", "wallet_address", "token")

#: Every field name with a fixed meaning; any other name matching
#: :func:`validate_field_name` may be stored too, as an opaque extra field.
STANDARD_FIELDS: tuple[str, ...] = CORE_FIELDS + EXTRA_FIELDS

#: Our field name -> the ccxt credential attribute (``ccxt.<id>(config)`` keys).
CCXT_CREDENTIAL_NAMES: Mapping[str, str] = MappingProxyType(
    {
        "api_key": "apiKey",
        "secret": "secret",
        "passphrase": "password",
        "uid": "uid",
        "private_key": "privateKey",
        "account_id": "accountId",
        "login": "login",
        "twofa": "twofa",
        "wallet_address": "walletAddress",
        "token": "token",
    }
)

_FIELD_NAME = re.compile(r"[a-z][a-z0-9_]{0,63}", re.ASCII)


def validate_field_name(name: str) -> None:
    """Check that ``name`` may be used as a payload field name.

    Field names are lower-case ASCII identifiers of at most 64 characters
    (``^[a-z][a-z0-9_]{0,63}$``): they end up in JSON payloads, environment variable
    names and CLI flags, where anything fancier would need quoting.

    :param name: the proposed field name.
    :raises InvalidInput: the name does not match. Names longer than 64 characters are
        not quoted, in case a value was pasted where a name was expected.
    """
    if isinstance(name, str) and _FIELD_NAME.fullmatch(name):
        return
    shown = quoted(name) if isinstance(name, str) else f"of type {type(name).__name__}"
    raise InvalidInput(
        f"bad field name {shown}; use a lower-case letter then up to 63 lower-case "
        'letters, digits or "_"'
    )
