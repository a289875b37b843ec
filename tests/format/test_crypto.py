"""The hazardous layer: encodings, AEAD, KDF limits, recovery keys, recipient wraps."""

from __future__ import annotations

import contextlib

import pytest
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from hypothesis import given
from hypothesis import strategies as st

from vault.errors import IntegrityError, InvalidInput, UnsupportedFormat
from vault.format import crypto
from vault.format.crypto import KdfParams

fields = st.lists(
    st.one_of(
        st.none(),
        st.binary(max_size=40),
        st.text(max_size=20),
        st.integers(min_value=-(2**63), max_value=2**63 - 1),
    ),
    max_size=6,
)


@given(fields, fields)
def test_encode_fields_is_injective(a: list[crypto.Field], b: list[crypto.Field]) -> None:
    def normal(xs: list[crypto.Field]) -> list[tuple[str, object]]:
        return [(type(x).__name__, x) for x in xs]

    if normal(a) != normal(b):
        assert crypto.encode_fields(*a) != crypto.encode_fields(*b)
    else:
        assert crypto.encode_fields(*a) == crypto.encode_fields(*b)


def test_encode_fields_layout() -> None:
    assert crypto.encode_fields(b"\x01", "é", 1, None) == (
        b"b\x00\x00\x00\x01\x01"
        + b"s\x00\x00\x00\x02\xc3\xa9"
        + b"i\x00\x00\x00\x08\x00\x00\x00\x00\x00\x00\x00\x01"
        + b"n\x00\x00\x00\x00"
    )


def test_encode_fields_refuses_bool() -> None:
    with pytest.raises(TypeError):
        crypto.encode_fields(True)


@given(st.binary(max_size=2048), st.binary(max_size=64))
def test_seal_round_trip(plaintext: bytes, ad: bytes) -> None:
    key = crypto.random_key()
    nonce, ct = crypto.seal(key, plaintext, ad)
    assert crypto.unseal(key, nonce, ct, ad) == plaintext


@given(st.binary(min_size=1, max_size=256), st.data())
def test_unseal_refuses_any_flipped_bit(plaintext: bytes, data: st.DataObject) -> None:
    key = crypto.random_key()
    nonce, ct = crypto.seal(key, plaintext, b"ad")
    index = data.draw(st.integers(0, len(ct) - 1))
    bit = data.draw(st.integers(0, 7))
    damaged = bytearray(ct)
    damaged[index] ^= 1 << bit
    with pytest.raises(IntegrityError):
        crypto.unseal(key, nonce, bytes(damaged), b"ad")


def test_unseal_refuses_other_associated_data() -> None:
    key = crypto.random_key()
    nonce, ct = crypto.seal(key, b"secret", b"context-a")
    with pytest.raises(IntegrityError):
        crypto.unseal(key, nonce, ct, b"context-b")
    with pytest.raises(IntegrityError):
        crypto.unseal(key, nonce, ct, b"")


def test_unseal_refuses_truncated_input() -> None:
    with pytest.raises(IntegrityError):
        crypto.unseal(crypto.random_key(), b"\0" * 12, b"short", b"")


def test_wrap_round_trip_and_wrong_recipient() -> None:
    alice, bob = X25519PrivateKey.generate(), X25519PrivateKey.generate()
    dek = crypto.random_key()
    wrapped = crypto.wrap_for_recipient(dek, crypto.x25519_public_bytes(alice), b"ad")
    assert crypto.unwrap_from_recipient(wrapped, alice, b"ad") == dek
    with pytest.raises(IntegrityError):
        crypto.unwrap_from_recipient(wrapped, bob, b"ad")
    with pytest.raises(IntegrityError):
        crypto.unwrap_from_recipient(wrapped, alice, b"other ad")


def test_wraps_for_the_same_recipient_differ() -> None:
    alice = X25519PrivateKey.generate()
    dek = crypto.random_key()
    a = crypto.wrap_for_recipient(dek, crypto.x25519_public_bytes(alice), b"ad")
    b = crypto.wrap_for_recipient(dek, crypto.x25519_public_bytes(alice), b"ad")
    assert a.ephemeral_public != b.ephemeral_public and a.body != b.body


def test_wrap_refuses_low_order_recipient() -> None:
    with pytest.raises((IntegrityError, ValueError)):
        crypto.wrap_for_recipient(crypto.random_key(), b"\0" * 32, b"ad")


def test_unwrap_refuses_low_order_ephemeral_key() -> None:
    alice = X25519PrivateKey.generate()
    forged = crypto.WrappedKey(ephemeral_public=b"\0" * 32, body=b"\0" * 48)
    with pytest.raises(IntegrityError):
        crypto.unwrap_from_recipient(forged, alice, b"ad")


@given(st.binary(min_size=32, max_size=32))
def test_recovery_key_round_trip(key: bytes) -> None:
    text = crypto.format_recovery_key(key)
    assert crypto.parse_recovery_key(text) == key
    assert crypto.parse_recovery_key(text.lower().replace("-", " ")) == key


def test_recovery_key_typo_is_reported() -> None:
    text = crypto.format_recovery_key(bytes(range(32)))
    typo = ("B" if text[0] != "B" else "C") + text[1:]
    with pytest.raises(InvalidInput, match="mistyped"):
        crypto.parse_recovery_key(typo)


@given(st.text(max_size=80))
def test_recovery_key_parser_never_crashes(text: str) -> None:
    with contextlib.suppress(InvalidInput):
        crypto.parse_recovery_key(text)


def test_passphrase_is_nfc_normalized() -> None:
    params = KdfParams(1, 64, 1)
    salt = b"s" * 16
    composed, decomposed = "caf\u00e9", "cafe\u0301"
    assert crypto.derive_passphrase_kek(composed, salt, params) == crypto.derive_passphrase_kek(
        decomposed, salt, params
    )
    assert crypto.derive_passphrase_kek("cafe", salt, params) != crypto.derive_passphrase_kek(
        composed, salt, params
    )


def test_empty_passphrase_refused() -> None:
    with pytest.raises(InvalidInput):
        crypto.normalize_passphrase("")


@pytest.mark.parametrize(
    ("passphrase", "at"), [("pass\udc80word", 5), ("\ud800", 1), ("caf\u00e9\udcff", 5)]
)
def test_passphrase_that_is_not_utf8_refused(passphrase: str, at: int) -> None:
    """A passphrase read under a C locale carries bytes that were not UTF-8 as lone
    surrogates: refused as input, saying where and never what."""
    with pytest.raises(InvalidInput) as info:
        crypto.normalize_passphrase(passphrase)
    assert str(info.value) == f"the passphrase is not valid UTF-8 text (at character {at})"


@pytest.mark.parametrize(
    "params",
    [
        KdfParams(crypto.KDF_CAP.time_cost + 1, 64 * 1024, 4),
        KdfParams(3, crypto.KDF_CAP.memory_kib + 1, 4),
        KdfParams(3, 64 * 1024, crypto.KDF_CAP.parallelism + 1),
        KdfParams(0, 64 * 1024, 4),
        KdfParams(3, 4, 1),
    ],
)
def test_kdf_params_outside_caps_refused_before_hashing(params: KdfParams) -> None:
    with pytest.raises(UnsupportedFormat):
        crypto.derive_passphrase_kek("pw", b"s" * 16, params)


def test_calibration_never_goes_below_the_floor(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(crypto, "_time_one_pass", lambda m, p: 10.0)  # a very slow machine
    params = crypto.calibrate_kdf(0.5)
    assert params.at_least(crypto.KDF_FLOOR)
    assert params.memory_kib == crypto.KDF_DEFAULT_MEMORY_KIB


def test_calibration_on_a_fast_machine_grows_memory(monkeypatch: pytest.MonkeyPatch) -> None:
    # Time per pass proportional to memory: 1 ms per 256 MiB.
    monkeypatch.setattr(crypto, "_time_one_pass", lambda m, p: m / (256 * 1024) / 1000)
    params = crypto.calibrate_kdf(0.5)
    assert params.memory_kib == 1024 * 1024
    assert params.time_cost == 8
    crypto.check_kdf_params(params)


def test_calibration_hits_the_target(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(crypto, "_time_one_pass", lambda m, p: 0.1)
    assert crypto.calibrate_kdf(0.5) == KdfParams(5, 256 * 1024, 4)


def test_fingerprint_display() -> None:
    fp = crypto.fingerprint(b"\x01" * 32)
    assert len(fp) == 32
    shown = crypto.format_fingerprint(fp)
    assert shown.count(":") == 7 and shown.replace(":", "") == fp[:16].hex()


def test_signature_verification() -> None:
    identity = crypto.RootIdentity.generate()
    sig = identity.sign(b"message")
    crypto.verify_signature(identity.verify_public, b"message", sig)
    with pytest.raises(IntegrityError):
        crypto.verify_signature(identity.verify_public, b"messagE", sig)
    other = crypto.RootIdentity.generate()
    with pytest.raises(IntegrityError):
        crypto.verify_signature(other.verify_public, b"message", sig)


def test_root_identity_serialization_and_repr() -> None:
    identity = crypto.RootIdentity.generate()
    again = crypto.RootIdentity.from_bytes(identity.to_bytes())
    assert again.verify_public == identity.verify_public
    assert again.encryption_public == identity.encryption_public
    assert identity.to_bytes().hex() not in repr(identity)
    assert "fingerprint" in repr(identity)
    import pickle

    with pytest.raises(TypeError):
        pickle.dumps(identity)
