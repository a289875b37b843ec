"""Argon2id: passphrase normalization, the cap, the floor and calibration
(vault.format.passphrase_kdf)."""

from __future__ import annotations

import pytest

from vault.errors import InvalidInput, UnsupportedFormat
from vault.format import kdf_params, passphrase_kdf
from vault.format.kdf_params import KdfParams


def test_passphrase_is_nfc_normalized() -> None:
    params = KdfParams(1, 64, 1)
    salt = b"s" * 16
    composed, decomposed = "caf\u00e9", "cafe\u0301"
    derive = passphrase_kdf.derive_passphrase_kek
    assert derive(composed, salt, params) == derive(decomposed, salt, params)
    assert derive("cafe", salt, params) != derive(composed, salt, params)


def test_empty_passphrase_refused() -> None:
    with pytest.raises(InvalidInput):
        passphrase_kdf.normalize_passphrase("")


@pytest.mark.parametrize(
    ("passphrase", "at"), [("pass\udc80word", 5), ("\ud800", 1), ("caf\u00e9\udcff", 5)]
)
def test_passphrase_that_is_not_utf8_refused(passphrase: str, at: int) -> None:
    """A passphrase read under a C locale carries bytes that were not UTF-8 as lone
    surrogates: refused as input, saying where and never what."""
    with pytest.raises(InvalidInput) as info:
        passphrase_kdf.normalize_passphrase(passphrase)
    assert str(info.value) == f"the passphrase is not valid UTF-8 text (at character {at})"


@pytest.mark.parametrize(
    "params",
    [
        KdfParams(kdf_params.KDF_CAP.time_cost + 1, 64 * 1024, 4),
        KdfParams(3, kdf_params.KDF_CAP.memory_kib + 1, 4),
        KdfParams(3, 64 * 1024, kdf_params.KDF_CAP.parallelism + 1),
        KdfParams(0, 64 * 1024, 4),
        KdfParams(3, 4, 1),
    ],
)
def test_kdf_params_outside_caps_refused_before_hashing(params: KdfParams) -> None:
    with pytest.raises(UnsupportedFormat):
        passphrase_kdf.derive_passphrase_kek("pw", b"s" * 16, params)


def test_calibration_never_goes_below_the_floor(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(passphrase_kdf, "_time_one_pass", lambda m, p: 10.0)  # a very slow machine
    params = passphrase_kdf.calibrate_kdf(0.5)
    assert params.at_least(kdf_params.KDF_FLOOR)
    assert params.memory_kib == kdf_params.KDF_DEFAULT_MEMORY_KIB


def test_calibration_on_a_fast_machine_grows_memory(monkeypatch: pytest.MonkeyPatch) -> None:
    # Time per pass proportional to memory: 1 ms per 256 MiB.
    monkeypatch.setattr(passphrase_kdf, "_time_one_pass", lambda m, p: m / (256 * 1024) / 1000)
    params = passphrase_kdf.calibrate_kdf(0.5)
    assert params.memory_kib == 1024 * 1024
    assert params.time_cost == 8
    kdf_params.check_kdf_params(params)


def test_calibration_hits_the_target(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(passphrase_kdf, "_time_one_pass", lambda m, p: 0.1)
    assert passphrase_kdf.calibrate_kdf(0.5) == KdfParams(5, 256 * 1024, 4)
