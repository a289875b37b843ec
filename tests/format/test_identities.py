"""The root identity, signatures and fingerprints (vault.format.identities)."""

from __future__ import annotations

import pickle

import pytest

from vault.errors import IntegrityError
from vault.format import aead, identities, keywrap


def test_fingerprint_display() -> None:
    fp = identities.fingerprint(b"\x01" * 32)
    assert len(fp) == 32
    shown = identities.format_fingerprint(fp)
    assert shown.count(":") == 7 and shown.replace(":", "") == fp[:16].hex()


def test_signature_verification() -> None:
    identity = identities.RootIdentity.generate()
    sig = identity.sign(b"message")
    identities.verify_signature(identity.verify_public, b"message", sig)
    with pytest.raises(IntegrityError):
        identities.verify_signature(identity.verify_public, b"messagE", sig)
    other = identities.RootIdentity.generate()
    with pytest.raises(IntegrityError):
        identities.verify_signature(other.verify_public, b"message", sig)


def test_root_identity_serialization_and_repr() -> None:
    identity = identities.RootIdentity.generate()
    again = identities.RootIdentity.from_bytes(identity.to_bytes())
    assert again.verify_public == identity.verify_public
    assert again.encryption_public == identity.encryption_public
    assert identity.to_bytes().hex() not in repr(identity)
    assert "fingerprint" in repr(identity)
    with pytest.raises(TypeError):
        pickle.dumps(identity)


def test_root_identity_unwraps_only_what_was_wrapped_for_it() -> None:
    identity = identities.RootIdentity.generate()
    dek = aead.random_key()
    wrapped = keywrap.wrap_for_recipient(dek, identity.encryption_public, b"ad")
    assert identity.unwrap(wrapped, b"ad") == dek
    with pytest.raises(IntegrityError):
        identity.unwrap(wrapped, b"other ad")
    with pytest.raises(IntegrityError):
        identities.RootIdentity.generate().unwrap(wrapped, b"ad")


def test_root_identity_keyed_fingerprint_is_under_its_fingerprint_key() -> None:
    identity = identities.RootIdentity.generate()
    mine = identity.keyed_fingerprint("api_key", "AK")
    assert mine == identities.keyed_fingerprint(identity.fingerprint_key(), "api_key", "AK")
    assert mine != identities.RootIdentity.generate().keyed_fingerprint("api_key", "AK")
