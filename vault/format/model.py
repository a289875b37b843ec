"""What a credential is: names, metadata, secret payloads and their canonical forms.

A bot's process imports this module, so it defines no dataclass (see
:mod:`vault.format.schema`); the owner's and ``list``'s views of a credential,
:class:`~vault.format.credential_info.CredentialInfo` and
:class:`~vault.format.credential_info.VersionInfo`, live in their own module.
"""

# Annotations are not postponed here (no `from __future__ import annotations`):
# typing.NamedTuple compiles each postponed (string) field annotation when its class
# is built, about 10 µs each, and every command and bot builds these at start.
import functools
import json
import re
from collections.abc import Mapping
from datetime import date, datetime, timezone
from typing import NamedTuple

from vault.errors import IntegrityError, InvalidInput, check_utf8, quoted
from vault.format import encoding

NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
MAX_PAYLOAD_BYTES = 64 * 1024
LIVE = "live"
"""The endpoint of a credential that uses its exchange's production API."""


def lookup_name(name: str, what: str = "credential") -> str:
    """A name to look up: any text, for an unknown name is simply not found, but text
    that UTF-8 can carry (the database cannot compare a lone surrogate).

    :raises InvalidInput: when ``name`` holds bytes that were not UTF-8.
    """
    return check_utf8(name, f"the {what} name {quoted(name)}")


def validate_name(name: str, what: str = "credential") -> str:
    """Check a credential or client name: 1-64 of letters, digits, ``.``, ``_``, ``-``.

    :raises InvalidInput: for any other name; a lone surrogate (a byte that was not
        UTF-8) is one, as the pattern is ASCII.
    """
    if not isinstance(name, str) or not NAME_PATTERN.fullmatch(name):
        raise InvalidInput(
            f'bad {what} name {quoted(name)}: use 1-64 letters, digits, ".", "_" or "-", '
            "starting with a letter or digit"
        )
    return name


def utc_now() -> datetime:
    """The current time, UTC, to the second."""
    return datetime.now(timezone.utc).replace(microsecond=0)


def to_epoch(moment: datetime) -> int:
    """Seconds since the epoch (how the store keeps times)."""
    return int(moment.timestamp())


def from_epoch(seconds: int) -> datetime:
    """The UTC datetime of stored seconds."""
    return datetime.fromtimestamp(seconds, timezone.utc)


def join_list(items: tuple[str, ...]) -> str:
    """The stored form of a permission or IP list: comma-joined, already normalized."""
    return ",".join(items)


def split_list(text: str) -> tuple[str, ...]:
    """Inverse of :func:`join_list`."""
    return tuple(text.split(",")) if text else ()


class CredentialMetadata(NamedTuple):
    """Clear metadata of one credential version, bound into its AEAD and signature."""

    name: str
    exchange: str
    permissions: tuple[str, ...]
    ips: tuple[str, ...]
    issued_on: date
    expires_on: date | None
    endpoint: str = LIVE
    """Where the exchange is reached: ``live``, ``testnet`` or a base URL
    (:mod:`vault.exchanges.endpoints`)."""

    def digest(self) -> bytes:
        """SHA-256 over the canonical encoding of every field (docs/format.md).

        The endpoint is a field only when it is not ``live``: the digest of every
        version written before endpoints existed (all live) stays what it was.
        """
        fields: tuple[str | None, ...] = (
            self.name,
            self.exchange,
            join_list(self.permissions),
            join_list(self.ips),
            self.issued_on.isoformat(),
            self.expires_on.isoformat() if self.expires_on else None,
        )
        if self.endpoint != LIVE:
            fields += (self.endpoint,)
        return encoding.digest(b"exvault-metadata", *fields)

    @property
    def stored_endpoint(self) -> str | None:
        """The ``endpoint`` column: NULL for ``live``."""
        return None if self.endpoint == LIVE else self.endpoint


def check_field_text(name: str, value: str, where: str = "") -> None:
    """Check that a secret field's name and value are text UTF-8 can carry.

    Every field is UTF-8 encoded for its ciphertext and the API key for its keyed
    fingerprint, which a lone surrogate (a JSON ``"\\ud800"`` escape) would fail.
    ``where`` (e.g. ``" in the JSON"``) tells the user where the field came from.

    :raises InvalidInput: naming the field, never quoting its value.
    """
    check_utf8(name, f"the field name {quoted(name)}{where}")
    check_utf8(value, f"field {quoted(name)}{where}")


def encode_payload(payload: Mapping[str, str]) -> bytes:
    """The plaintext of a version: UTF-8 JSON object of field name -> value, keys sorted.

    :raises InvalidInput: when a value is not a string or not UTF-8 text, or the
        payload is too large.
    """
    for key, value in payload.items():
        if not isinstance(key, str) or not isinstance(value, str):
            raise InvalidInput(f"field {quoted(key)} must be a string")
        check_field_text(key, value)
    data = json.dumps(dict(payload), sort_keys=True, separators=(",", ":")).encode("utf-8")
    if len(data) > MAX_PAYLOAD_BYTES:
        raise InvalidInput(f"the secret fields are larger than {MAX_PAYLOAD_BYTES // 1024} KiB")
    return data


def decode_payload(data: bytes) -> dict[str, str]:
    """Inverse of :func:`encode_payload`.

    Only reached after the AEAD authenticated ``data``, so a malformed payload means
    a vault written by a buggy or foreign writer: an integrity failure.

    :raises IntegrityError: when ``data`` is not an object of strings.
    """
    try:
        value = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise IntegrityError() from None
    if not isinstance(value, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in value.items()
    ):
        raise IntegrityError()
    return value


@functools.cache
def _json_aliases() -> dict[str, str]:
    # ccxt's names for fields (apiKey, password, ...), accepted in imported JSON besides
    # ours. Looked up on first use: a bot's process never imports the exchange profiles.
    from vault.exchanges.fields import CCXT_CREDENTIAL_NAMES

    return {theirs: ours for ours, theirs in CCXT_CREDENTIAL_NAMES.items() if theirs != ours}


def parse_payload_json(text: str) -> dict[str, str]:
    """Secret fields from a JSON object such as ``{"api_key": ..., "secret": ...}``.

    ccxt's key names (``apiKey``, ``password``, ...) are accepted too. Error messages
    quote positions and field names, never values.

    :raises InvalidInput: for malformed JSON, a non-object, a non-string value, or a
        string holding a lone surrogate (``"\\ud800"``: JSON escapes can spell text
        that is not Unicode).
    """
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InvalidInput(
            f"malformed JSON at line {exc.lineno} column {exc.colno}: {exc.msg}"
        ) from None
    if not isinstance(value, dict):
        raise InvalidInput('the JSON must be an object like {"api_key": "...", "secret": "..."}')
    out: dict[str, str] = {}
    for key, item in value.items():
        name: str = _json_aliases().get(str(key), str(key))
        if not isinstance(item, str):
            raise InvalidInput(f"field {quoted(key)} in the JSON must be a string")
        check_field_text(key, item, " in the JSON")
        if name in out:
            raise InvalidInput(f"field {quoted(name)} appears twice in the JSON")
        out[name] = item
    return out
