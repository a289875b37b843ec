"""Client tokens: ``exv1-...``, the one secret a bot holds.

A token carries the vault id and the vault signing key's fingerprint (so the client
trusts only records signed by *its* vault, whatever the database says), the client's
id, and a 32-byte seed from which the client's X25519 and Ed25519 keys derive. A
4-byte checksum turns a truncated or mistyped token into a clear error.
"""

from __future__ import annotations

import base64
import binascii
import os
from pathlib import Path
from typing import NoReturn

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from vault.errors import InvalidToken
from vault.format import aead, identities
from vault.format.encoding import sha256
from vault.runtime.secretfile import read_secret_file

PREFIX = "exv1-"
ENV_TOKEN = "EXVAULT_TOKEN"  # noqa: S105 (a variable name)
ENV_TOKEN_FILE = "EXVAULT_TOKEN_FILE"  # noqa: S105 (a variable name)
SYSTEMD_CREDENTIAL = "exvault-token"

_VAULT_ID, _FP, _CLIENT, _SEED, _CHECK = 16, 32, 16, 32, 4
_BODY = _VAULT_ID + _FP + _CLIENT + _SEED


class ClientToken:
    """A parsed client token. Its ``repr`` names the client id only; immutable, equal
    only to itself."""

    # A plain class, not a frozen dataclass: see vault.runtime.credential.Credential.
    __slots__ = ("_keys", "client_id", "fingerprint", "seed", "vault_id")

    vault_id: bytes
    fingerprint: bytes
    client_id: str
    seed: bytes
    _keys: tuple[X25519PrivateKey, Ed25519PrivateKey] | None

    def __init__(self, vault_id: bytes, fingerprint: bytes, client_id: str, seed: bytes) -> None:
        object.__setattr__(self, "vault_id", vault_id)
        object.__setattr__(self, "fingerprint", fingerprint)
        object.__setattr__(self, "client_id", client_id)
        object.__setattr__(self, "seed", seed)
        object.__setattr__(self, "_keys", None)

    def __setattr__(self, name: str, value: object) -> NoReturn:
        raise AttributeError(f"cannot assign to field {name!r}: a ClientToken is immutable")

    def __delattr__(self, name: str) -> NoReturn:
        raise AttributeError(f"cannot delete field {name!r}: a ClientToken is immutable")

    @classmethod
    def generate(cls, vault_id: bytes, fingerprint: bytes, client_id: str) -> ClientToken:
        """A new token with a fresh random seed."""
        return cls(vault_id, fingerprint, client_id, os.urandom(_SEED))

    @property
    def keys(self) -> tuple[X25519PrivateKey, Ed25519PrivateKey]:
        """The client's decryption and signing keys (derived once, on first use)."""
        keys = self._keys
        if keys is None:
            keys = identities.derive_client_keys(self.seed)
            object.__setattr__(self, "_keys", keys)
        return keys

    @property
    def encryption_public(self) -> bytes:
        """The client's X25519 public key (what the vault wraps data keys for)."""
        return identities.x25519_public_bytes(self.keys[0])

    @property
    def verify_public(self) -> bytes:
        """The client's Ed25519 public key (what its audit entries verify against)."""
        return identities.ed25519_public_bytes(self.keys[1])

    def encode(self) -> str:
        """The text form ``exv1-<base64url>``."""
        body = self.vault_id + self.fingerprint + bytes.fromhex(self.client_id) + self.seed
        check = sha256(b"exvault-token-check" + body)[:_CHECK]
        return PREFIX + base64.urlsafe_b64encode(body + check).decode("ascii").rstrip("=")

    def __repr__(self) -> str:
        return f"ClientToken(client_id={self.client_id!r})"

    def __reduce__(self) -> tuple[object, ...]:
        raise TypeError("a ClientToken cannot be pickled")

    def __copy__(self) -> ClientToken:
        return self  # immutable, and copy's default would pickle it

    def __deepcopy__(self, memo: object) -> ClientToken:
        return self


def parse_token(text: str) -> ClientToken:
    """Parse ``exv1-...``; surrounding whitespace is ignored.

    :raises InvalidToken: when it is malformed, truncated or mistyped (the message
        never repeats the token).
    """
    text = text.strip()
    if not text.startswith(PREFIX):
        raise InvalidToken('malformed client token (it should start with "exv1-")')
    data = text[len(PREFIX) :]
    try:
        raw = base64.urlsafe_b64decode(data + "=" * (-len(data) % 4))
    except (ValueError, binascii.Error):
        raise InvalidToken("malformed client token (not base64url)") from None
    if len(raw) != _BODY + _CHECK:
        raise InvalidToken("malformed client token (wrong length; was it cut off?)")
    body, check = raw[:_BODY], raw[_BODY:]
    expected = sha256(b"exvault-token-check" + body)[:_CHECK]
    if not aead.constant_time_equal(check, expected):
        raise InvalidToken("malformed client token (checksum mismatch; was it mistyped?)")
    i = 0
    parts = []
    for size in (_VAULT_ID, _FP, _CLIENT, _SEED):
        parts.append(body[i : i + size])
        i += size
    return ClientToken(parts[0], parts[1], parts[2].hex(), parts[3])


def token_in_environment(environ: dict[str, str] | None = None) -> ClientToken | None:
    """The client token of this process, from the first of:

    ``$EXVAULT_TOKEN``; the file named by ``$EXVAULT_TOKEN_FILE`` (refused unless
    0600); ``$CREDENTIALS_DIRECTORY/exvault-token`` (systemd ``LoadCredential=``).
    ``None`` when none of them is set (a command that also serves the owner).

    :raises InvalidToken: when one is set but malformed.
    :raises InsecureFile: when the token file is readable by others.
    """
    env = os.environ if environ is None else environ
    if env.get(ENV_TOKEN):
        return parse_token(env[ENV_TOKEN])
    if env.get(ENV_TOKEN_FILE):
        return parse_token(read_secret_file(env[ENV_TOKEN_FILE], "token file"))
    directory = env.get("CREDENTIALS_DIRECTORY")
    if directory and (Path(directory) / SYSTEMD_CREDENTIAL).exists():
        return parse_token(read_secret_file(Path(directory) / SYSTEMD_CREDENTIAL, "token file"))
    return None


def find_token(environ: dict[str, str] | None = None) -> ClientToken:
    """The client token of this process (see :func:`token_in_environment`).

    :raises InvalidToken: when there is none or it is malformed.
    :raises InsecureFile: when the token file is readable by others.
    """
    token = token_in_environment(environ)
    if token is not None:
        return token
    raise InvalidToken(
        f"no client token: set {ENV_TOKEN_FILE} to a 0600 file holding it, or {ENV_TOKEN}, "
        "or pass it with LoadCredential=exvault-token:... under systemd"
    )
