"""Shape checks of secret payloads: PEM keys, HMAC secrets, base64 keys, passphrases.

These checks catch paste errors at ``exvault add`` time (a truncated key, the public
key instead of the private one, a passphrase that the exchange would never have
accepted) instead of at 3 a.m. when a bot first signs a request. They do not prove a
key works: only the exchange can tell that.

Every message names the exchange and the field, never the value, and every exception
is raised ``from None`` so that no library error about the key material is chained
into a traceback.
"""

from __future__ import annotations

import base64
import binascii
import re
import string
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING

from cryptography.hazmat.primitives.asymmetric import ed25519

from vault.errors import InvalidInput

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes

__all__ = [
    "PayloadCheck",
    "coinbase_api_key",
    "coinbase_secret",
    "key_kind",
    "kraken_secret",
    "load_private_pem",
    "looks_like_pem",
    "normalize_payload",
    "normalize_pem",
    "okx_passphrase",
    "passphrase_length",
    "secret_hmac_or_pem",
]

#: A payload check: ``check(payload, exchange_id)`` raises :class:`InvalidInput`.
#: It receives the payload after :func:`normalize_payload`.
PayloadCheck = Callable[[Mapping[str, str], str], None]

_PEM_MARKER = "-----BEGIN"
_PEM_BLOCK = re.compile(r"-----BEGIN ([A-Z0-9 ]+)-----(.*?)-----END \1-----", re.DOTALL)
_BASE64_BODY = re.compile(r"[A-Za-z0-9+/]*={0,2}")

# HMAC secrets as exchanges hand them out: printable ASCII without spaces. The bounds
# are loose (Binance gives 64 characters, Bybit 36) and only catch a truncated or
# doubled paste.
_HMAC_SECRET = re.compile(r"[\x21-\x7e]{16,128}")

# Coinbase Developer Platform (CDP) key names. Two forms are current: the full resource
# name "organizations/{org_id}/apiKeys/{key_id}" (ECDSA keys) and the bare key id, a
# UUID (Ed25519 keys are shown that way). ccxt signs with either.
_CDP_KEY_NAME = re.compile(r"organizations/[^/\s]+/apiKeys/[^/\s]+")
_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")


def looks_like_pem(value: str) -> bool:
    """Tell whether a field value is meant as PEM (holds a ``-----BEGIN`` line).

    :raises: nothing.
    """
    return _PEM_MARKER in value


def _rewrap(match: re.Match[str]) -> str:
    label, body = match.group(1), match.group(2)
    compact = "".join(body.split())
    if not _BASE64_BODY.fullmatch(compact):
        # Headers such as "Proc-Type:" (legacy encrypted PEM) or junk: leave the block
        # as it is and let the loader judge it.
        return match.group(0)
    lines = [compact[i : i + 64] for i in range(0, len(compact), 64)]
    return "\n".join([f"-----BEGIN {label}-----", *lines, f"-----END {label}-----"])


def normalize_pem(value: str) -> str:
    """Put a pasted PEM text back into canonical shape.

    Exchanges' web pages, JSON downloads and ``.env`` files often give a PEM key with
    literal ``\\n`` sequences instead of newlines, with CRLF line ends, or collapsed
    onto one line with spaces; all are turned back into plain PEM with 64-character
    lines. Surrounding whitespace is removed (PEM readers ignore it, and the payload
    rule "no surrounding whitespace" then holds). Applying this twice changes nothing.

    :param value: a PEM-looking value (see :func:`looks_like_pem`).
    :returns: the canonical text.
    :raises: nothing.
    """
    # Base64 has no backslash, so a literal "\n" in a PEM text can only be an escaped
    # newline.
    text = value.replace("\\r\\n", "\n").replace("\\n", "\n")
    text = text.replace("\r\n", "\n").replace("\r", "\n").strip()
    return _PEM_BLOCK.sub(_rewrap, text)


def normalize_payload(payload: Mapping[str, str]) -> dict[str, str]:
    """Return the payload as it should be stored and validated.

    * PEM-looking values go through :func:`normalize_pem` (literal ``\\n`` -> newline,
      etc.);
    * fields with an empty value are dropped: an empty field carries nothing, and a
      form or CLI that offers optional fields sends them empty;
    * every other value is kept exactly: surrounding whitespace in an HMAC secret or an
      API key is reported by validation rather than silently trimmed, since it is the
      sign of a bad copy.

    Applying it twice gives the same result as once.

    :param payload: field name -> value.
    :returns: a new dict.
    :raises InvalidInput: a value is not text (the message names the field only).
    """
    result: dict[str, str] = {}
    for name, value in payload.items():
        if not isinstance(value, str):
            raise InvalidInput(f'field "{name}" must be text, not {type(value).__name__}')
        if looks_like_pem(value):
            value = normalize_pem(value)
        if value:
            result[name] = value
    return result


def load_private_pem(value: str, *, exchange: str, field: str) -> PrivateKeyTypes:
    """Load an unencrypted PEM private key.

    :param value: the PEM text (normalized).
    :param exchange: exchange id, for the message.
    :param field: field name, for the message.
    :returns: the private key object.
    :raises InvalidInput: the text is a public key or certificate, is encrypted, or
        does not load.
    """
    # cryptography's PEM loader and its RSA and EC key types load with the first PEM
    # key checked, not with this module: every owner command imports it (through the
    # exchange profiles), and they cost a command through the unlock agent a tenth of
    # its time (docs/benchmarks.md, the unlock agent's section).
    from cryptography.exceptions import UnsupportedAlgorithm
    from cryptography.hazmat.primitives.serialization import load_pem_private_key

    if "PRIVATE KEY-----" not in value and (
        "PUBLIC KEY-----" in value or "CERTIFICATE-----" in value
    ):
        raise InvalidInput(
            f"{exchange} {field} is a public key or certificate; paste the private key"
        )
    try:
        return load_pem_private_key(value.encode("utf-8"), password=None)
    except TypeError:
        # cryptography raises TypeError for "encrypted but no password given".
        raise InvalidInput(
            f"{exchange} {field} is a password-protected PEM key; "
            "export it without a password (exvault encrypts it)"
        ) from None
    except (ValueError, UnsupportedAlgorithm):
        raise InvalidInput(
            f"{exchange} {field} is not a readable PEM private key (truncated or damaged?)"
        ) from None


def key_kind(key: PrivateKeyTypes) -> str:
    """Name a private key's type: ``"rsa"``, ``"ed25519"``, ``"ec-p256"``, ``"ec"``,
    or the class name for anything else.

    :raises: nothing.
    """
    # Loaded already by load_private_pem, which made ``key`` (see there).
    from cryptography.hazmat.primitives.asymmetric import ec, rsa

    if isinstance(key, rsa.RSAPrivateKey):
        return "rsa"
    if isinstance(key, ed25519.Ed25519PrivateKey):
        return "ed25519"
    if isinstance(key, ec.EllipticCurvePrivateKey):
        return "ec-p256" if isinstance(key.curve, ec.SECP256R1) else "ec"
    return type(key).__name__


_KIND_NAMES = {"rsa": "RSA", "ed25519": "Ed25519", "ec-p256": "EC P-256"}


def secret_hmac_or_pem(*kinds: str) -> PayloadCheck:
    """Build a check: ``secret`` is an HMAC secret or a PEM private key of ``kinds``.

    Binance (RSA or Ed25519) and Bybit (RSA) accept self-generated key pairs; ccxt
    picks the signing method by looking for ``PRIVATE KEY`` in the secret, so any
    PEM-looking secret must load as one of those kinds.

    :param kinds: accepted :func:`key_kind` names.
    :returns: the check.
    :raises: nothing (the check raises :class:`InvalidInput`).
    """
    wanted = " or ".join(_KIND_NAMES.get(kind, kind) for kind in kinds)

    def check(payload: Mapping[str, str], exchange: str) -> None:
        secret = payload.get("secret", "")
        if looks_like_pem(secret):
            key = load_private_pem(secret, exchange=exchange, field="secret")
            kind = key_kind(key)
            if kind not in kinds:
                shown = _KIND_NAMES.get(kind, kind)
                raise InvalidInput(
                    f"{exchange} secret holds a key of type {shown}; {exchange} takes {wanted}"
                )
            return
        if not _HMAC_SECRET.fullmatch(secret):
            raise InvalidInput(
                f"{exchange} secret must be an HMAC secret (16-128 printable characters, "
                f"no spaces) or a PEM private key ({wanted})"
            )

    return check


def passphrase_length(low: int, high: int) -> PayloadCheck:
    """Build a check: ``passphrase``, when present, has ``low``..``high`` characters.

    :raises: nothing (the check raises :class:`InvalidInput`).
    """

    def check(payload: Mapping[str, str], exchange: str) -> None:
        passphrase = payload.get("passphrase")
        if passphrase is not None and not low <= len(passphrase) <= high:
            raise InvalidInput(f"{exchange} passphrase must be {low} to {high} characters")

    return check


def okx_passphrase(payload: Mapping[str, str], exchange: str) -> None:
    """OKX passphrases: 8-32 characters with a digit, an upper-case letter, a
    lower-case letter and a special character (OKX refuses to create a key otherwise,
    so anything else is a typo).

    :raises InvalidInput: the passphrase breaks the rule.
    """
    passphrase = payload.get("passphrase")
    if passphrase is None:
        return
    classes = (string.digits, string.ascii_uppercase, string.ascii_lowercase, string.punctuation)
    if not 8 <= len(passphrase) <= 32 or not all(
        any(char in chars for char in passphrase) for chars in classes
    ):
        raise InvalidInput(
            f"{exchange} passphrase must be 8 to 32 characters with a digit, an upper-case "
            "letter, a lower-case letter and a special character"
        )


def _strict_base64(value: str) -> bytes | None:
    try:
        return base64.b64decode(value.encode("ascii"), validate=True)
    except (ValueError, binascii.Error):  # UnicodeEncodeError is a ValueError
        return None


def kraken_secret(payload: Mapping[str, str], exchange: str) -> None:
    """Kraken's "private key" is base64 of 64 bytes (ccxt decodes it before HMAC-SHA512).

    :raises InvalidInput: the secret is not strict base64 of 64 bytes.
    """
    decoded = _strict_base64(payload.get("secret", ""))
    if decoded is None or len(decoded) != 64:
        raise InvalidInput(
            f"{exchange} secret must be the base64 private key Kraken shows "
            "(88 characters, 64 bytes once decoded)"
        )


def coinbase_api_key(payload: Mapping[str, str], exchange: str) -> None:
    """Coinbase CDP key names: ``organizations/{org}/apiKeys/{id}`` or a key id (UUID).

    Legacy (pre-CDP) Coinbase keys are refused on purpose: Coinbase has moved Advanced
    Trade to CDP keys, and an api_key of another shape is far more often a paste error
    (the public key, the key nickname) than a working legacy key. A user who really
    holds a legacy key can store it with ``--exchange other``.

    :raises InvalidInput: the api_key has neither shape.
    """
    api_key = payload.get("api_key", "")
    if not (_CDP_KEY_NAME.fullmatch(api_key) or _UUID.fullmatch(api_key)):
        raise InvalidInput(
            f'{exchange} api_key must be a CDP key name "organizations/{{org_id}}/apiKeys/'
            '{key_id}" or a CDP key id (UUID); legacy keys: use --exchange other'
        )


def coinbase_secret(payload: Mapping[str, str], exchange: str) -> None:
    """Coinbase CDP secrets: an EC P-256 PEM key (SEC1 ``BEGIN EC PRIVATE KEY`` or
    PKCS#8) for ES256, or an Ed25519 key as 88 base64 characters.

    The Ed25519 form is 64 bytes: the 32-byte seed then the 32-byte public key
    (libsodium's layout, which Coinbase uses). The public half is checked against the
    seed, which catches a damaged key that would otherwise only fail at the exchange.

    :raises InvalidInput: the secret is neither form, or is damaged.
    """
    secret = payload.get("secret", "")
    if looks_like_pem(secret):
        key = load_private_pem(secret, exchange=exchange, field="secret")
        if key_kind(key) != "ec-p256":
            raise InvalidInput(f"{exchange} secret PEM key must be an EC P-256 (ES256) key")
        return
    decoded = _strict_base64(secret)
    if decoded is None or len(decoded) != 64:
        raise InvalidInput(
            f"{exchange} secret must be an EC P-256 PEM private key or an Ed25519 key "
            "(88 base64 characters)"
        )
    public = ed25519.Ed25519PrivateKey.from_private_bytes(decoded[:32]).public_key()
    if public.public_bytes_raw() != decoded[32:]:
        raise InvalidInput(
            f"{exchange} secret is not a consistent Ed25519 key (damaged or mistyped?)"
        )
