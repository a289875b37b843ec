"""Authenticated encryption of vault format v1: AES-256-GCM (docs/format.md sections 3,
6 and 13). The hazardous layer: easy to misuse, so only :mod:`vault.format.records`,
:mod:`vault.format.keywrap` and :mod:`vault.db.keyslots` call it, each with the fixed
associated data of :func:`vault.format.encoding.associated_data`.

Why AES-256-GCM, and not ChaCha20-Poly1305 as age uses, nor XChaCha20-Poly1305 and its
192-bit random nonces: it is the AEAD that ``cryptography`` (OpenSSL) ships everywhere
(it has no XChaCha), fast with AES-NI, and standard (NIST SP 800-38D), so a second
reader in any language has it. Its one weakness is its 96-bit nonce: a random nonce
repeated under one key breaks it. That is safe here because no
key seals many messages: a DEK seals one payload, a keyslot KEK one identity, and a
wrap key one DEK (:mod:`vault.format.keywrap`); even a vault's lifetime of a few
million random nonces stays far from the 2^32 messages per key that NIST allows.

Why one opaque :class:`~vault.errors.IntegrityError` for every failure, and never a
retry with another or an empty AD: saying which check failed, or trying again, would
be an oracle (docs/format.md section 23).
"""

from __future__ import annotations

import os

# hmac.compare_digest is this C function, re-exported: imported from where it lives, it
# spares a bot's new process hmac's import of hashlib and a second OpenSSL beside
# cryptography's (docs/benchmarks.md, figure 2). cryptography's constant_time.bytes_eq
# is no way round: it calls hmac.compare_digest too.
from _operator import _compare_digest

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from vault.errors import IntegrityError

KEY_SIZE = 32
"""Bytes of every symmetric key: DEK, KEK, wrap key, fingerprint key, token seed."""
NONCE_SIZE = 12
TAG_SIZE = 16


def random_key() -> bytes:
    """A fresh random 256-bit key (a DEK) from the OS CSPRNG."""
    return os.urandom(KEY_SIZE)


def seal(key: bytes, plaintext: bytes, ad: bytes) -> tuple[bytes, bytes]:
    """Encrypt with AES-256-GCM under a fresh random 96-bit nonce.

    :returns: ``(nonce, ciphertext_with_tag)``
    """
    nonce = os.urandom(NONCE_SIZE)
    return nonce, AESGCM(key).encrypt(nonce, plaintext, ad)


def seal_with_nonce(key: bytes, nonce: bytes, plaintext: bytes, ad: bytes) -> bytes:
    """Encrypt with AES-256-GCM under a nonce the caller guarantees is never reused with
    ``key`` (a key used once, as :mod:`vault.format.keywrap`'s wrap keys are).

    :returns: the ciphertext with its tag.
    """
    return AESGCM(key).encrypt(nonce, plaintext, ad)


def unseal(key: bytes, nonce: bytes, ciphertext: bytes, ad: bytes) -> bytes:
    """Decrypt and authenticate an AES-256-GCM ciphertext.

    Never retried without ``ad``: a failure is final.

    :raises IntegrityError: when the key, nonce, ciphertext or associated data is wrong.
    """
    if len(key) != KEY_SIZE or len(nonce) != NONCE_SIZE or len(ciphertext) < TAG_SIZE:
        raise IntegrityError()
    try:
        return AESGCM(key).decrypt(nonce, ciphertext, ad)
    except InvalidTag:
        raise IntegrityError() from None


def constant_time_equal(a: bytes, b: bytes) -> bool:
    """Compare two byte strings in time independent of where they differ."""
    return _compare_digest(a, b)
