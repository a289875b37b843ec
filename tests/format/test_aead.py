"""AES-256-GCM sealing: round trips, and every damage or other AD refused (vault.format.aead)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from vault.errors import IntegrityError
from vault.format import aead


@given(st.binary(max_size=2048), st.binary(max_size=64))
def test_seal_round_trip(plaintext: bytes, ad: bytes) -> None:
    key = aead.random_key()
    nonce, ct = aead.seal(key, plaintext, ad)
    assert aead.unseal(key, nonce, ct, ad) == plaintext


@given(st.binary(min_size=1, max_size=256), st.data())
def test_unseal_refuses_any_flipped_bit(plaintext: bytes, data: st.DataObject) -> None:
    key = aead.random_key()
    nonce, ct = aead.seal(key, plaintext, b"ad")
    index = data.draw(st.integers(0, len(ct) - 1))
    bit = data.draw(st.integers(0, 7))
    damaged = bytearray(ct)
    damaged[index] ^= 1 << bit
    with pytest.raises(IntegrityError):
        aead.unseal(key, nonce, bytes(damaged), b"ad")


def test_unseal_refuses_other_associated_data() -> None:
    key = aead.random_key()
    nonce, ct = aead.seal(key, b"secret", b"context-a")
    with pytest.raises(IntegrityError):
        aead.unseal(key, nonce, ct, b"context-b")
    with pytest.raises(IntegrityError):
        aead.unseal(key, nonce, ct, b"")


def test_unseal_refuses_truncated_input() -> None:
    with pytest.raises(IntegrityError):
        aead.unseal(aead.random_key(), b"\0" * 12, b"short", b"")


def test_seal_with_nonce_is_the_same_aead_under_the_callers_nonce() -> None:
    key, nonce = aead.random_key(), b"\x07" * aead.NONCE_SIZE
    sealed = aead.seal_with_nonce(key, nonce, b"dek", b"ad")
    assert sealed == aead.seal_with_nonce(key, nonce, b"dek", b"ad")  # deterministic
    assert aead.unseal(key, nonce, sealed, b"ad") == b"dek"
    with pytest.raises(IntegrityError):
        aead.unseal(key, b"\0" * aead.NONCE_SIZE, sealed, b"ad")
