"""Wrapping a data key for one recipient in vault format v1 (docs/format.md section 14),
and :class:`Recipient`, who a wrap is for.

Every credential version has its own random data key (DEK); it is wrapped once per
recipient allowed to read the version: the vault's root key, and each client granted
the credential. The construction is age's X25519 recipient stanza: a fresh ephemeral
X25519 key agreement with the recipient's public key, HKDF-SHA256 over the shared
secret salted with both public keys, and an AEAD seal of the DEK under the result.

Why public-key wrapping and not one shared secret key per client: wrapping for a
reader needs only its public key (stored in its client row), so the owner wraps each
new version for every grantee without holding any client's secret, and a wrap for one
reader reveals nothing to another; ungranting is deleting its wraps. Why an all-zero
nonce is safe:
each wrap key derives from a fresh ephemeral key and seals exactly one DEK, so no
(key, nonce) pair is ever used twice (age does the same with ChaCha20-Poly1305; here
AES-256-GCM, as everywhere in the format, :mod:`vault.format.aead`). Why refuse an
all-zero shared secret: a low-order public key makes the X25519 output zero whatever
the private key, so the wrap key would be known to everyone (RFC 7748 section 6.1).

Why the recipient's name is in the AD: a wrap made for one client does not open as
another's, even with that client's key and the same DEK.
"""

# Annotations are not postponed here (no `from __future__ import annotations`):
# typing.NamedTuple compiles each postponed (string) field annotation when its class
# is built, about 10 µs each, and every command and bot builds these at start.
from typing import NamedTuple

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from vault.errors import IntegrityError
from vault.format import aead, x25519

# Public keys are taken with ``public_bytes_raw()`` here rather than through
# vault.format.identities: the root identity unwraps with this module, so this module
# must not import it.

_ROOT_COLUMN = "root"


class Recipient(NamedTuple):
    """Who a data key is wrapped for: the vault's root key, or one client.

    Made by :meth:`root`, :meth:`client` or, for a wrap row read back, :meth:`stored`;
    :attr:`column` is the one place it becomes the text stored in
    ``dek_wraps.recipient`` and bound into the wrap's AD. (Named tuples here, not
    dataclasses: a bot's process imports this module; see :mod:`vault.format.schema`.)
    """

    column: str
    """``root`` for the vault's root key, else the client's id (32 hex digits)."""

    @classmethod
    def root(cls) -> "Recipient":
        """The vault's root key: every version is wrapped for it."""
        return _ROOT

    @classmethod
    def client(cls, client_id: str) -> "Recipient":
        """The client of id ``client_id``.

        :raises ValueError: for the root's name (a programming error: client ids are
            random hex).
        """
        if client_id == _ROOT_COLUMN:
            raise ValueError("a client cannot be named as the root recipient")
        return cls(client_id)

    @classmethod
    def stored(cls, column: str) -> "Recipient":
        """The recipient a ``dek_wraps.recipient`` value names."""
        return _ROOT if column == _ROOT_COLUMN else cls(column)

    @property
    def is_root(self) -> bool:
        """True for the vault's root key."""
        return self.column == _ROOT_COLUMN


_ROOT = Recipient(_ROOT_COLUMN)


class WrappedKey(NamedTuple):
    """A data key wrapped for one X25519 recipient: ephemeral share and AEAD body."""

    ephemeral_public: bytes
    body: bytes


_ZERO_NONCE = b"\0" * aead.NONCE_SIZE


def _wrap_key(shared: bytes, ephemeral_public: bytes, recipient_public: bytes) -> bytes:
    # An all-zero shared secret means a low-order point was supplied: refuse it, as age does.
    if aead.constant_time_equal(shared, b"\0" * aead.KEY_SIZE):
        raise IntegrityError()
    return HKDF(
        algorithm=hashes.SHA256(),
        length=aead.KEY_SIZE,
        salt=ephemeral_public + recipient_public,
        info=b"exvault-v1 X25519 wrap",
    ).derive(shared)


def wrap_for_recipient(dek: bytes, recipient_public: bytes, ad: bytes) -> WrappedKey:
    """Wrap ``dek`` so that only the holder of ``recipient_public``'s private key opens it.

    :raises IntegrityError: for a low-order recipient public key.
    """
    ephemeral = x25519.generate()
    ephemeral_public = ephemeral.public_key().public_bytes_raw()
    try:
        shared = ephemeral.exchange(x25519.public_key(recipient_public))
    except ValueError:  # malformed or low-order key (OpenSSL refuses it before we can)
        raise IntegrityError() from None
    key = _wrap_key(shared, ephemeral_public, recipient_public)
    # Each wrap key is derived from a fresh ephemeral key and used once: a zero nonce is safe.
    return WrappedKey(ephemeral_public, aead.seal_with_nonce(key, _ZERO_NONCE, dek, ad))


def unwrap_from_recipient(
    wrapped: WrappedKey, recipient_private: X25519PrivateKey, ad: bytes
) -> bytes:
    """Recover a data key wrapped by :func:`wrap_for_recipient`.

    :raises IntegrityError: when the wrap was not made for this key or was altered.
    """
    try:
        peer = x25519.public_key(wrapped.ephemeral_public)
        shared = recipient_private.exchange(peer)
    except ValueError:
        raise IntegrityError() from None
    key = _wrap_key(
        shared, wrapped.ephemeral_public, recipient_private.public_key().public_bytes_raw()
    )
    dek = aead.unseal(key, _ZERO_NONCE, wrapped.body, ad)
    if len(dek) != aead.KEY_SIZE:
        raise IntegrityError()
    return dek
