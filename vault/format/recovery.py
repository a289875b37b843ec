"""Recovery keys of vault format v1: generation, printed form, parsing and their KEK
(docs/format.md section 12).

A recovery key is 256 random bits printed once at ``init``; it opens the recovery
keyslot when the passphrase is lost.

Why HKDF-SHA256 and not Argon2 for its KEK: the key is already uniformly random and
far beyond guessing, so stretching it would only slow the owner down; HKDF with the
slot's salt and a label of its own gives each slot an independent key.

Why base32 in groups of four with a 16-bit checksum: base32 has no characters that
look alike and survives being read aloud or copied by hand; the checksum lets us say
"mistyped recovery key" instead of the vague integrity error when a character is wrong.
It is a function of the typed text alone, so it reveals nothing about any vault.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from vault.errors import InvalidInput
from vault.format.aead import KEY_SIZE

_RECOVERY_CHECK_SIZE = 2


def new_recovery_key() -> bytes:
    """A random 256-bit recovery key."""
    return os.urandom(KEY_SIZE)


def format_recovery_key(key: bytes) -> str:
    """Show a recovery key as base32 groups of four with a 16-bit checksum.

    The checksum lets us say "mistyped recovery key" instead of the vague integrity
    error when a character is wrong; it reveals nothing about the key.
    """
    text = base64.b32encode(key + _check(key)).decode("ascii").rstrip("=")
    return "-".join(text[i : i + 4] for i in range(0, len(text), 4))


def parse_recovery_key(text: str) -> bytes:
    """Parse a recovery key as printed by :func:`format_recovery_key`.

    :raises InvalidInput: when it is malformed or its checksum does not match.
    """
    compact = "".join(text.split()).replace("-", "").upper()
    padded = compact + "=" * (-len(compact) % 8)
    try:
        raw = base64.b32decode(padded)
    except (ValueError, binascii.Error):
        raise InvalidInput(
            "the recovery key is malformed (expected groups of A-Z and 2-7)"
        ) from None
    if len(raw) != KEY_SIZE + _RECOVERY_CHECK_SIZE:
        raise InvalidInput("the recovery key has the wrong length")
    key, check = raw[:KEY_SIZE], raw[KEY_SIZE:]
    if not hmac.compare_digest(check, _check(key)):
        raise InvalidInput("the recovery key is mistyped (its checksum does not match)")
    return key


def _check(key: bytes) -> bytes:
    # The one definition of the checksum that both the printed and the parsed form use.
    return hashlib.sha256(b"exvault-recovery-check" + key).digest()[:_RECOVERY_CHECK_SIZE]


def derive_recovery_kek(recovery_key: bytes, salt: bytes) -> bytes:
    """HKDF-SHA256 of a recovery key: it is already uniformly random, so no Argon2."""
    return HKDF(
        algorithm=hashes.SHA256(), length=KEY_SIZE, salt=salt, info=b"exvault-v1 recovery keyslot"
    ).derive(recovery_key)
