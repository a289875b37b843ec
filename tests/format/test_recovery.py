"""Recovery keys: printed form, checksum, parser (vault.format.recovery)."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from vault.errors import InvalidInput
from vault.format import recovery


@given(st.binary(min_size=32, max_size=32))
def test_recovery_key_round_trip(key: bytes) -> None:
    text = recovery.format_recovery_key(key)
    assert recovery.parse_recovery_key(text) == key
    assert recovery.parse_recovery_key(text.lower().replace("-", " ")) == key


def test_recovery_key_typo_is_reported() -> None:
    text = recovery.format_recovery_key(bytes(range(32)))
    typo = ("B" if text[0] != "B" else "C") + text[1:]
    with pytest.raises(InvalidInput, match="mistyped"):
        recovery.parse_recovery_key(typo)


@given(st.text(max_size=80))
def test_recovery_key_parser_never_crashes(text: str) -> None:
    with contextlib.suppress(InvalidInput):
        recovery.parse_recovery_key(text)
