"""The canonical encoding: injective, byte-exact, typed (vault.format.encoding)."""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from vault.format import encoding

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
def test_encode_fields_is_injective(a: list[encoding.Field], b: list[encoding.Field]) -> None:
    def normal(xs: list[encoding.Field]) -> list[tuple[str, object]]:
        return [(type(x).__name__, x) for x in xs]

    if normal(a) != normal(b):
        assert encoding.encode_fields(*a) != encoding.encode_fields(*b)
    else:
        assert encoding.encode_fields(*a) == encoding.encode_fields(*b)


def test_encode_fields_layout() -> None:
    assert encoding.encode_fields(b"\x01", "é", 1, None) == (
        b"b\x00\x00\x00\x01\x01"
        + b"s\x00\x00\x00\x02\xc3\xa9"
        + b"i\x00\x00\x00\x08\x00\x00\x00\x00\x00\x00\x00\x01"
        + b"n\x00\x00\x00\x00"
    )


def test_encode_fields_refuses_bool() -> None:
    with pytest.raises(TypeError):
        encoding.encode_fields(True)


def test_sha256_is_sha256() -> None:
    # FIPS 180-4's "abc" example, and the standard library's digest of a longer input.
    abc = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    assert encoding.sha256(b"abc").hex() == abc
    data = bytes(range(256)) * 5
    assert encoding.sha256(data) == hashlib.sha256(data).digest()
    assert encoding.digest(b"x", 1) == hashlib.sha256(encoding.encode_fields(b"x", 1)).digest()
