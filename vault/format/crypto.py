"""Cryptographic primitives of vault format v1: the hazardous layer.

Pure functions over bytes: no I/O, no database, no knowledge of rows. Everything
here is easy to misuse (a wrong associated data, a reused nonce), so the rest of
exvault calls it only from :mod:`vault.format.records` and :mod:`vault.db.keyslots`, which give
each call its fixed context. ``docs/format.md`` specifies every construction below
byte for byte.

Choices, and why:

* AES-256-GCM everywhere (``cryptography``'s AESGCM): fast with AES-NI, standard,
  and 96-bit random nonces are safe for the few million messages a vault ever seals.
* Argon2id for passphrases (RFC 9106), calibrated once at ``init``; parameters live
  in the keyslot and are capped on open so a crafted header cannot make us burn
  minutes or gigabytes.
* X25519 + HKDF-SHA256 + AEAD to wrap a data key for a recipient: the pattern of
  age's X25519 stanza. Each wrap uses a fresh ephemeral key, hence a fresh AEAD key,
  so a fixed all-zero nonce is safe (as in age).
* Ed25519 signatures over every record, so that knowing the public keys is not
  enough to slip a forged credential into the database.
* One :class:`~vault.errors.IntegrityError` for every authentication failure.
"""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib
import hmac
import os
import struct
import unicodedata
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature, InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)
from cryptography.hazmat.primitives.asymmetric.x25519 import (
    X25519PrivateKey,
    X25519PublicKey,
)
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from vault.errors import IntegrityError, InvalidInput, UnsupportedFormat, check_utf8

FORMAT_VERSION = 1
"""Version of the vault format these functions implement; bound into every AD."""

KEY_SIZE = 32
NONCE_SIZE = 12
SALT_SIZE = 16
TAG_SIZE = 16

# --------------------------------------------------------------------------------------
# Canonical encoding
# --------------------------------------------------------------------------------------

Field = bytes | str | int | None

_TAG_BYTES = b"b"
_TAG_TEXT = b"s"
_TAG_INT = b"i"
_TAG_NONE = b"n"


_PACK_LENGTH = struct.Struct(">I").pack
_PACK_INT = struct.Struct(">q").pack
_INT_HEADER = _TAG_INT + _PACK_LENGTH(8)
_NONE_FIELD = _TAG_NONE + _PACK_LENGTH(0)


def encode_fields(*fields: Field) -> bytes:
    """Encode a sequence of fields unambiguously (the input to every AD, MAC and signature).

    Each field is one type byte (``b`` bytes, ``s`` UTF-8 text, ``i`` signed 64-bit
    integer, ``n`` none), a 4-byte big-endian length, and the value. Length prefixes
    make the encoding injective: no two field lists share an encoding, so a value
    cannot be shifted from one field into the next.

    :raises TypeError: for a field of another type (a programming error).
    """
    # Every write hashes and signs several of these: precompiled structs, one join.
    out: list[bytes] = []
    for field in fields:
        if isinstance(field, str):
            data = field.encode("utf-8")
            out += (_TAG_TEXT, _PACK_LENGTH(len(data)), data)
        elif isinstance(field, bytes):
            out += (_TAG_BYTES, _PACK_LENGTH(len(field)), field)
        elif field is None:
            out.append(_NONE_FIELD)
        elif isinstance(field, bool):
            raise TypeError("bool is not a canonical field type")
        elif isinstance(field, int):
            out += (_INT_HEADER, _PACK_INT(field))
        else:
            raise TypeError(f"unsupported canonical field type {type(field).__name__}")
    return b"".join(out)


def associated_data(purpose: str, vault_id: bytes, *fields: Field) -> bytes:
    """The associated data of one AEAD call: format version, purpose, vault id, context.

    Binding the purpose and the vault id means a ciphertext cannot be moved to another
    kind of record, or into another vault, without failing authentication.
    """
    return encode_fields(b"exvault-ad", FORMAT_VERSION, purpose, vault_id, *fields)


def signed_message(kind: str, vault_id: bytes, *fields: Field) -> bytes:
    """The exact bytes an Ed25519 signature of a record of ``kind`` covers."""
    return encode_fields(b"exvault-sig", FORMAT_VERSION, kind, vault_id, *fields)


def digest(*fields: Field) -> bytes:
    """SHA-256 of the canonical encoding of ``fields`` (e.g. the metadata digest)."""
    return hashlib.sha256(encode_fields(*fields)).digest()


# --------------------------------------------------------------------------------------
# AEAD
# --------------------------------------------------------------------------------------


def random_key() -> bytes:
    """A fresh random 256-bit key (a DEK) from the OS CSPRNG."""
    return os.urandom(KEY_SIZE)


def seal(key: bytes, plaintext: bytes, ad: bytes) -> tuple[bytes, bytes]:
    """Encrypt with AES-256-GCM under a fresh random 96-bit nonce.

    :returns: ``(nonce, ciphertext_with_tag)``
    """
    nonce = os.urandom(NONCE_SIZE)
    return nonce, AESGCM(key).encrypt(nonce, plaintext, ad)


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


# --------------------------------------------------------------------------------------
# Argon2id passphrase KDF
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class KdfParams:
    """Argon2id cost parameters: passes, memory in KiB, lanes."""

    time_cost: int
    memory_kib: int
    parallelism: int

    def __str__(self) -> str:
        memory = (
            f"{self.memory_kib // 1024} MiB"
            if self.memory_kib >= 1024
            else f"{self.memory_kib} KiB"
        )
        return f"Argon2id t={self.time_cost} m={memory} p={self.parallelism}"

    def at_least(self, other: KdfParams) -> bool:
        """True when every parameter is at least ``other``'s."""
        return (
            self.time_cost >= other.time_cost
            and self.memory_kib >= other.memory_kib
            and self.parallelism >= other.parallelism
        )


KDF_FLOOR = KdfParams(time_cost=3, memory_kib=64 * 1024, parallelism=4)
"""RFC 9106 section 4, second recommended option: never calibrate below this."""

KDF_DEFAULT_MEMORY_KIB = 256 * 1024
KDF_DEFAULT_TARGET_SECONDS = 0.5

# The hard cap on open: just above the most exvault's calibration ever chooses
# (1 GiB, 8 passes), so a keyslot crafted by someone with write access to the vault
# cannot make an unlock burn more than about ten seconds and one gigabyte.
KDF_CAP = KdfParams(time_cost=10, memory_kib=1024 * 1024, parallelism=16)
_CALIBRATION_MAX_MEMORY_KIB = 1024 * 1024


def check_kdf_params(params: KdfParams) -> None:
    """Refuse parameters above the cap or below what Argon2 itself accepts.

    Parameters below :data:`KDF_FLOOR` are accepted on open (a vault made for tests
    has them); ``exvault check`` reports them as a finding.

    :raises UnsupportedFormat: when a parameter is outside the accepted range.
    """
    if not (1 <= params.parallelism <= KDF_CAP.parallelism):
        raise UnsupportedFormat("vault KDF parallelism is outside the accepted range (cap 16)")
    if not (1 <= params.time_cost <= KDF_CAP.time_cost):
        raise UnsupportedFormat(
            f"vault KDF time cost is outside the safety cap (1-{KDF_CAP.time_cost})"
        )
    if not (8 * params.parallelism <= params.memory_kib <= KDF_CAP.memory_kib):
        raise UnsupportedFormat(
            "vault KDF memory is outside the safety cap (8 KiB per lane to 1 GiB)"
        )


def normalize_passphrase(passphrase: str) -> bytes:
    """NFC-normalize and UTF-8 encode, so the same passphrase typed on another OS matches.

    :raises InvalidInput: for an empty passphrase, or one holding bytes that were not
        UTF-8 (a lone surrogate: read under a C locale, or from argv).
    """
    if not passphrase:
        raise InvalidInput("the passphrase must not be empty")
    return check_utf8(unicodedata.normalize("NFC", passphrase), "the passphrase").encode("utf-8")


def derive_passphrase_kek(passphrase: str, salt: bytes, params: KdfParams) -> bytes:
    """Argon2id(passphrase, salt) -> 32-byte key-encryption key.

    :raises UnsupportedFormat: for parameters above the cap.
    """
    check_kdf_params(params)
    # Imported here: a client process (a bot) never runs a KDF and need not load it.
    from argon2.low_level import Type, hash_secret_raw

    return bytes(
        hash_secret_raw(
            secret=normalize_passphrase(passphrase),
            salt=salt,
            time_cost=params.time_cost,
            memory_cost=params.memory_kib,
            parallelism=params.parallelism,
            hash_len=KEY_SIZE,
            type=Type.ID,
            version=19,
        )
    )


def calibrate_kdf(
    target_seconds: float = KDF_DEFAULT_TARGET_SECONDS,
    memory_kib: int = KDF_DEFAULT_MEMORY_KIB,
    parallelism: int = KDF_FLOOR.parallelism,
) -> KdfParams:
    """Choose Argon2id parameters that take about ``target_seconds`` on this machine.

    Memory is fixed first (memory hardness is what hurts GPU attackers most), then
    passes are added up to the target; on a machine so fast that more than 8 passes
    would be needed, memory doubles instead (up to 1 GiB). Never returns less than
    :data:`KDF_FLOOR`.
    """
    memory_kib = max(memory_kib, KDF_FLOOR.memory_kib)
    parallelism = max(parallelism, KDF_FLOOR.parallelism)
    while True:
        per_pass = _time_one_pass(memory_kib, parallelism)
        passes = round(target_seconds / per_pass) if per_pass > 0 else KDF_CAP.time_cost
        if passes <= 8 or memory_kib * 2 > _CALIBRATION_MAX_MEMORY_KIB:
            break
        memory_kib *= 2
    passes = min(max(passes, KDF_FLOOR.time_cost), 8)
    return KdfParams(time_cost=passes, memory_kib=memory_kib, parallelism=parallelism)


def _time_one_pass(memory_kib: int, parallelism: int) -> float:
    import time

    from argon2.low_level import Type, hash_secret_raw

    best = float("inf")
    for _ in range(2):  # the first run also pays for page faults; keep the faster
        start = time.perf_counter()
        hash_secret_raw(b"calibration", b"\0" * SALT_SIZE, 1, memory_kib, parallelism, 32, Type.ID)
        best = min(best, time.perf_counter() - start)
    return best


# --------------------------------------------------------------------------------------
# Recovery keys
# --------------------------------------------------------------------------------------

_RECOVERY_CHECK_SIZE = 2


def new_recovery_key() -> bytes:
    """A random 256-bit recovery key."""
    return os.urandom(KEY_SIZE)


def format_recovery_key(key: bytes) -> str:
    """Show a recovery key as base32 groups of four with a 16-bit checksum.

    The checksum lets us say "mistyped recovery key" instead of the vague integrity
    error when a character is wrong; it reveals nothing about the key.
    """
    check = hashlib.sha256(b"exvault-recovery-check" + key).digest()[:_RECOVERY_CHECK_SIZE]
    text = base64.b32encode(key + check).decode("ascii").rstrip("=")
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
    expected = hashlib.sha256(b"exvault-recovery-check" + key).digest()[:_RECOVERY_CHECK_SIZE]
    if not hmac.compare_digest(check, expected):
        raise InvalidInput("the recovery key is mistyped (its checksum does not match)")
    return key


def derive_recovery_kek(recovery_key: bytes, salt: bytes) -> bytes:
    """HKDF-SHA256 of a recovery key: it is already uniformly random, so no Argon2."""
    return HKDF(
        algorithm=hashes.SHA256(), length=KEY_SIZE, salt=salt, info=b"exvault-v1 recovery keyslot"
    ).derive(recovery_key)


# --------------------------------------------------------------------------------------
# Root identity, signatures, recipient wrapping
# --------------------------------------------------------------------------------------


def x25519_public_bytes(key: X25519PrivateKey) -> bytes:
    """Raw 32-byte public key of an X25519 private key."""
    return key.public_key().public_bytes_raw()


def x25519_private_bytes(key: X25519PrivateKey) -> bytes:
    """Raw 32-byte X25519 private key."""
    return key.private_bytes_raw()


class RootIdentity:
    """The vault's X25519 (decryption) and Ed25519 (signing) private keys.

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
        return cls(X25519PrivateKey.generate(), Ed25519PrivateKey.generate())

    @classmethod
    def from_bytes(cls, raw: bytes) -> RootIdentity:
        """Load the 64-byte serialization (X25519 private || Ed25519 seed).

        :raises IntegrityError: for a wrong length (only reached after an AEAD passed).
        """
        if len(raw) != 2 * KEY_SIZE:
            raise IntegrityError()
        return cls(
            X25519PrivateKey.from_private_bytes(raw[:KEY_SIZE]),
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
    return hashlib.sha256(b"exvault-v1 fingerprint" + verify_public).digest()


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


@dataclass(frozen=True)
class WrappedKey:
    """A data key wrapped for one X25519 recipient: ephemeral share and AEAD body."""

    ephemeral_public: bytes
    body: bytes


_ZERO_NONCE = b"\0" * NONCE_SIZE


def _wrap_key(shared: bytes, ephemeral_public: bytes, recipient_public: bytes) -> bytes:
    # An all-zero shared secret means a low-order point was supplied: refuse it, as age does.
    if hmac.compare_digest(shared, b"\0" * KEY_SIZE):
        raise IntegrityError()
    return HKDF(
        algorithm=hashes.SHA256(),
        length=KEY_SIZE,
        salt=ephemeral_public + recipient_public,
        info=b"exvault-v1 X25519 wrap",
    ).derive(shared)


def wrap_for_recipient(dek: bytes, recipient_public: bytes, ad: bytes) -> WrappedKey:
    """Wrap ``dek`` so that only the holder of ``recipient_public``'s private key opens it.

    :raises IntegrityError: for a low-order recipient public key.
    """
    ephemeral = X25519PrivateKey.generate()
    ephemeral_public = x25519_public_bytes(ephemeral)
    try:
        shared = ephemeral.exchange(X25519PublicKey.from_public_bytes(recipient_public))
    except ValueError:  # malformed or low-order key (OpenSSL refuses it before we can)
        raise IntegrityError() from None
    key = _wrap_key(shared, ephemeral_public, recipient_public)
    # Each wrap key is derived from a fresh ephemeral key and used once: a zero nonce is safe.
    return WrappedKey(ephemeral_public, AESGCM(key).encrypt(_ZERO_NONCE, dek, ad))


def unwrap_from_recipient(
    wrapped: WrappedKey, recipient_private: X25519PrivateKey, ad: bytes
) -> bytes:
    """Recover a data key wrapped by :func:`wrap_for_recipient`.

    :raises IntegrityError: when the wrap was not made for this key or was altered.
    """
    try:
        peer = X25519PublicKey.from_public_bytes(wrapped.ephemeral_public)
        shared = recipient_private.exchange(peer)
    except ValueError:
        raise IntegrityError() from None
    key = _wrap_key(shared, wrapped.ephemeral_public, x25519_public_bytes(recipient_private))
    dek = unseal(key, _ZERO_NONCE, wrapped.body, ad)
    if len(dek) != KEY_SIZE:
        raise IntegrityError()
    return dek


def constant_time_equal(a: bytes, b: bytes) -> bool:
    """Compare two byte strings in time independent of where they differ."""
    return hmac.compare_digest(a, b)


def keyed_fingerprint(key: bytes, label: str, value: str) -> bytes:
    """16-byte HMAC-SHA256 fingerprint of an identifier (an API key) under ``key``.

    Stored in clear so that ``exvault check`` can find one API key stored under two
    names without any key: equal values give equal fingerprints. The key derives from
    the vault's private key (:meth:`RootIdentity.fingerprint_key`), so someone with the
    vault file cannot test a guessed API key against it.
    """
    return hmac.new(key, encode_fields(b"exvault-fp", label, value), hashlib.sha256).digest()[:16]


def derive_client_keys(seed: bytes) -> tuple[X25519PrivateKey, Ed25519PrivateKey]:
    """A client's X25519 (decryption) and Ed25519 (audit signing) keys from its 32-byte seed.

    One seed in the token, two independent keys by HKDF with distinct labels, so a
    token stays short and neither key reveals the other.
    """

    def expand(label: bytes) -> bytes:
        return HKDF(algorithm=hashes.SHA256(), length=KEY_SIZE, salt=None, info=label).derive(seed)

    return (
        X25519PrivateKey.from_private_bytes(expand(b"exvault-v1 client x25519")),
        Ed25519PrivateKey.from_private_bytes(expand(b"exvault-v1 client ed25519")),
    )


def ed25519_public_bytes(key: Ed25519PrivateKey) -> bytes:
    """Raw 32-byte public key of an Ed25519 private key."""
    return key.public_key().public_bytes_raw()
