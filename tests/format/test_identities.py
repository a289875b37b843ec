"""The root identity, signatures and fingerprints (vault.format.identities)."""

from __future__ import annotations

import pickle

import pytest

from vault.errors import IntegrityError
from vault.format import identities


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
