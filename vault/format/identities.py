"""Who signs and who decrypts in vault format v1: the root identity, client keys,
Ed25519 signatures and fingerprints (docs/format.md sections 10, 15 and 19.2).

Why two key pairs per identity, X25519 to decrypt and Ed25519 to sign, rather than one
key for both: each is used only for what it was designed for, and the signing key
never takes part in a key agreement. Why Ed25519 signatures over every record, and not
a MAC: the public key is enough to check a record, so ``check``, ``list`` and a bot
verify without any secret, while only the holder of the passphrase can produce one;
knowing the public keys is not enough to slip a forged credential in. Ed25519 is
deterministic (RFC 8032), so the test vectors of docs/format.md section 24 are exact.

Why a client's two keys derive from one 32-byte seed by HKDF with distinct labels: a
token stays short, and neither key reveals the other. Why the API key fingerprint is
keyed by a key derived from the root private key: ``check`` can still find one API key
stored under two names, but someone who has only the vault file cannot test a guessed
API key against it.
"""

from __future__ import annotations

import functools
from typing import Protocol

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, hmac
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from vault.errors import IntegrityError
from vault.format import x25519
from vault.format.aead import KEY_SIZE
from vault.format.encoding import encode_fields, sha256
from vault.format.keywrap import WrappedKey, unwrap_from_recipient


def x25519_public_bytes(key: X25519PrivateKey) -> bytes:
    """Raw 32-byte public key of an X25519 private key."""
    return key.public_key().public_bytes_raw()


def x25519_private_bytes(key: X25519PrivateKey) -> bytes:
    """Raw 32-byte X25519 private key."""
    return key.private_bytes_raw()


def ed25519_public_bytes(key: Ed25519PrivateKey) -> bytes:
    """Raw 32-byte public key of an Ed25519 private key."""
    return key.public_key().public_bytes_raw()


class RootKeys(Protocol):
    """What the owner's code does with the vault's root private keys, wherever they live.

    :class:`RootIdentity` holds the keys in this process; an unlock agent's stand-in
    (:class:`vault.agent.client.AgentIdentity`) asks the agent process, which keeps
    them, to perform each operation. Nothing here hands a private key out.
    """

    @property
    def encryption_public(self) -> bytes:
        """Raw X25519 public key (the root recipient)."""
        ...

    @property
    def verify_public(self) -> bytes:
        """Raw Ed25519 public key."""
        ...

    def sign(self, message: bytes) -> bytes:
        """Ed25519 signature of ``message`` with the root signing key."""
        ...

    def unwrap(self, wrapped: WrappedKey, ad: bytes) -> bytes:
        """A data key wrapped for the root recipient (:func:`unwrap_from_recipient`).

        :raises IntegrityError: when the wrap was not made for the root key or was altered.
        """
        ...

    def keyed_fingerprint(self, label: str, value: str) -> bytes:
        """:func:`keyed_fingerprint` of ``value`` under the root key's fingerprint key."""
        ...


class RootIdentity:
    """The vault's X25519 (decryption) and Ed25519 (signing) private keys.

    Satisfies :class:`RootKeys`; the private keys are used only by the methods below
    and by :meth:`to_bytes` (for a keyslot, or to hand them to an unlock agent).

    Its ``repr`` shows only the fingerprint.
    """

    __slots__ = ("_fingerprint_key", "decryption_key", "signing_key")

    def __init__(self, decryption_key: X25519PrivateKey, signing_key: Ed25519PrivateKey) -> None:
        self.decryption_key = decryption_key
        self.signing_key = signing_key
        self._fingerprint_key: bytes | None = None

    @classmethod
    def generate(cls) -> RootIdentity:
        """A new random identity."""
        return cls(x25519.generate(), Ed25519PrivateKey.generate())

    @classmethod
    def from_bytes(cls, raw: bytes) -> RootIdentity:
        """Load the 64-byte serialization (X25519 private || Ed25519 seed).

        :raises IntegrityError: for a wrong length (only reached after an AEAD passed).
        """
        if len(raw) != 2 * KEY_SIZE:
            raise IntegrityError()
        return cls(
            x25519.private_key(raw[:KEY_SIZE]),
            Ed25519PrivateKey.from_private_bytes(raw[KEY_SIZE:]),
        )

    def to_bytes(self) -> bytes:
        """The 64-byte serialization that keyslots encrypt."""
        return x25519_private_bytes(self.decryption_key) + self.signing_key.private_bytes_raw()

    @property
    def encryption_public(self) -> bytes:
        """Raw X25519 public key (the root recipient)."""
        return x25519_public_bytes(self.decryption_key)

    @property
    def verify_public(self) -> bytes:
        """Raw Ed25519 public key."""
        return ed25519_public_bytes(self.signing_key)

    def sign(self, message: bytes) -> bytes:
        """Ed25519 signature of ``message``."""
        return self.signing_key.sign(message)

    def unwrap(self, wrapped: WrappedKey, ad: bytes) -> bytes:
        """A data key wrapped for this identity's X25519 key.

        :raises IntegrityError: when the wrap was not made for this key or was altered.
        """
        return unwrap_from_recipient(wrapped, self.decryption_key, ad)

    def keyed_fingerprint(self, label: str, value: str) -> bytes:
        """:func:`keyed_fingerprint` of ``value`` under :meth:`fingerprint_key`."""
        return keyed_fingerprint(self.fingerprint_key(), label, value)

    def fingerprint_key(self) -> bytes:
        """The HMAC key of :func:`keyed_fingerprint`, derived from the private key.

        Derived once per identity: every new version needs it, and the identity holds
        the private key it comes from anyway, so keeping it adds no exposure.
        """
        if self._fingerprint_key is None:
            self._fingerprint_key = HKDF(
                algorithm=hashes.SHA256(),
                length=KEY_SIZE,
                salt=None,
                info=b"exvault-v1 fingerprint key",
            ).derive(x25519_private_bytes(self.decryption_key))
        return self._fingerprint_key

    def __repr__(self) -> str:
        return f"RootIdentity(fingerprint={format_fingerprint(fingerprint(self.verify_public))})"

    def __reduce__(self) -> tuple[object, ...]:
        raise TypeError("a RootIdentity cannot be pickled")


def fingerprint(verify_public: bytes) -> bytes:
    """32-byte fingerprint of a vault's Ed25519 public key (pinned in client tokens)."""
    return sha256(b"exvault-v1 fingerprint" + verify_public)


def format_fingerprint(fp: bytes) -> str:
    """Human form of a fingerprint: first 16 bytes, hex, groups of four."""
    text = fp[:16].hex()
    return ":".join(text[i : i + 4] for i in range(0, len(text), 4))


def verify_signature(verify_public: bytes, message: bytes, signature: bytes) -> None:
    """Check an Ed25519 signature.

    :raises IntegrityError: when it does not verify.
    """
    try:
        _ed25519_public(verify_public).verify(signature, message)
    except (InvalidSignature, ValueError):
        raise IntegrityError() from None


@functools.lru_cache(maxsize=1024)
def _ed25519_public(verify_public: bytes) -> Ed25519PublicKey:
    # Parsed once per key: ``check`` verifies a read entry of every credential, signed
    # by a handful of clients. Public keys only; an invalid one raises (never cached).
    return Ed25519PublicKey.from_public_bytes(verify_public)


def keyed_fingerprint(key: bytes, label: str, value: str) -> bytes:
    """16-byte HMAC-SHA256 fingerprint of an identifier (an API key) under ``key``.

    Stored in clear so that ``exvault check`` can find one API key stored under two
    names without any key: equal values give equal fingerprints. The key derives from
    the vault's private key (:meth:`RootIdentity.fingerprint_key`), so someone with the
    vault file cannot test a guessed API key against it.
    """
    mac = hmac.HMAC(key, hashes.SHA256())
    mac.update(encode_fields(b"exvault-fp", label, value))
    return mac.finalize()[:16]


def derive_client_keys(seed: bytes) -> tuple[X25519PrivateKey, Ed25519PrivateKey]:
    """A client's X25519 (decryption) and Ed25519 (audit signing) keys from its 32-byte seed.

    One seed in the token, two independent keys by HKDF with distinct labels, so a
    token stays short and neither key reveals the other.
    """

    def expand(label: bytes) -> bytes:
        return HKDF(algorithm=hashes.SHA256(), length=KEY_SIZE, salt=None, info=label).derive(seed)

    return (
        x25519.private_key(expand(b"exvault-v1 client x25519")),
        Ed25519PrivateKey.from_private_bytes(expand(b"exvault-v1 client ed25519")),
    )
