"""Wrapping a data key for a recipient, and who a recipient is (vault.format.keywrap)."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from vault.errors import IntegrityError
from vault.format import aead, identities, keywrap
from vault.format.keywrap import Recipient


def test_wrap_round_trip_and_wrong_recipient() -> None:
    alice, bob = X25519PrivateKey.generate(), X25519PrivateKey.generate()
    dek = aead.random_key()
    wrapped = keywrap.wrap_for_recipient(dek, identities.x25519_public_bytes(alice), b"ad")
    assert keywrap.unwrap_from_recipient(wrapped, alice, b"ad") == dek
    with pytest.raises(IntegrityError):
        keywrap.unwrap_from_recipient(wrapped, bob, b"ad")
    with pytest.raises(IntegrityError):
        keywrap.unwrap_from_recipient(wrapped, alice, b"other ad")


def test_wraps_for_the_same_recipient_differ() -> None:
    alice = X25519PrivateKey.generate()
    dek = aead.random_key()
    a = keywrap.wrap_for_recipient(dek, identities.x25519_public_bytes(alice), b"ad")
    b = keywrap.wrap_for_recipient(dek, identities.x25519_public_bytes(alice), b"ad")
    assert a.ephemeral_public != b.ephemeral_public and a.body != b.body


def test_wrap_refuses_low_order_recipient() -> None:
    with pytest.raises((IntegrityError, ValueError)):
        keywrap.wrap_for_recipient(aead.random_key(), b"\0" * 32, b"ad")


def test_unwrap_refuses_low_order_ephemeral_key() -> None:
    alice = X25519PrivateKey.generate()
    forged = keywrap.WrappedKey(ephemeral_public=b"\0" * 32, body=b"\0" * 48)
    with pytest.raises(IntegrityError):
        keywrap.unwrap_from_recipient(forged, alice, b"ad")


def test_recipient_column_values() -> None:
    """The stored ``dek_wraps.recipient`` values are unchanged: ``root``, or the client id."""
    client_id = "0123456789abcdef0123456789abcdef"
    assert Recipient.root().column == "root" and Recipient.root().is_root
    assert Recipient.client(client_id).column == client_id
    assert not Recipient.client(client_id).is_root
    assert Recipient.client(client_id) != Recipient.root()


def test_recipient_read_back_from_its_column() -> None:
    client_id = "0123456789abcdef0123456789abcdef"
    assert Recipient.stored("root") == Recipient.root()
    assert Recipient.stored(client_id) == Recipient.client(client_id)


def test_a_client_cannot_take_the_roots_name() -> None:
    with pytest.raises(ValueError, match="root"):
        Recipient.client("root")
