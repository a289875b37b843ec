"""The passphrase KDF of vault format v1: Argon2id, its parameters, floor, calibration
and cap (docs/format.md section 11).

The only module that imports ``argon2``, and only when a derivation or a calibration
runs: a bot's process (:mod:`vault.runtime.client`) never imports this module, and an
owner's command through the unlock agent imports it (with the keyslot code) but runs
no KDF, so neither loads Argon2.

Why Argon2id (RFC 9106): a passphrase is the one low-entropy secret of a vault, and
someone who copies the vault file can guess offline; Argon2id is memory-hard, so each
guess costs the attacker the memory it costs us, which hurts GPUs and ASICs far more
than a fast hash such as PBKDF2's. The id variant, which RFC 9106 recommends, makes its
first pass data-independent (as Argon2i, against side channels) and the rest
data-dependent (as Argon2d, against time-memory trade-offs).

Why these parameters:

* The floor (:data:`KDF_FLOOR`) is RFC 9106's second recommended option (section 4):
  t=3, m=64 MiB, p=4, for machines that cannot spare more. exvault never writes less,
  except through the explicit test-only flag.
* Calibration (:func:`calibrate_kdf`) fixes memory first at 256 MiB (memory hardness
  is what hurts an attacker most), then adds passes up to about 0.5 s on the machine
  that creates the vault; only a machine fast enough to need more than 8 passes
  doubles the memory instead, up to 1 GiB.
* The cap (:data:`KDF_CAP`) is checked before every derivation: the parameters live in
  the keyslot, which someone with write access to the database can edit, so a crafted
  slot must not make an unlock burn minutes and gigabytes. It sits just above the most
  the calibration ever chooses, so no vault exvault wrote is ever refused.

Why NFC before UTF-8: the same passphrase may arrive composed or decomposed (an é as one
code point, or as an e and a combining accent) depending on the operating system and the
input method; normalizing makes both derive the same key.
"""

from __future__ import annotations

import time
import unicodedata
from types import ModuleType

from vault.errors import InvalidInput, check_utf8
from vault.format import kdf_params
from vault.format.aead import KEY_SIZE
from vault.format.kdf_params import KdfParams

_CALIBRATION_MAX_MEMORY_KIB = 1024 * 1024


def _argon2() -> ModuleType:
    # Imported at the first derivation, not with this module: loading argon2 costs an
    # owner's command through the unlock agent a third of its time and it runs no KDF
    # (docs/benchmarks.md). The module, not its functions: Argon2 is looked up at each
    # call, so that the tests' spies on argon2.low_level.hash_secret_raw see every one.
    from argon2 import low_level

    return low_level


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
    :raises InvalidInput: as :func:`normalize_passphrase`.
    """
    kdf_params.check_kdf_params(params)
    low_level = _argon2()
    return bytes(
        low_level.hash_secret_raw(
            secret=normalize_passphrase(passphrase),
            salt=salt,
            time_cost=params.time_cost,
            memory_cost=params.memory_kib,
            parallelism=params.parallelism,
            hash_len=KEY_SIZE,
            type=low_level.Type.ID,
            version=19,
        )
    )


def calibrate_kdf(
    target_seconds: float = kdf_params.KDF_DEFAULT_TARGET_SECONDS,
    memory_kib: int = kdf_params.KDF_DEFAULT_MEMORY_KIB,
    parallelism: int = kdf_params.KDF_FLOOR.parallelism,
) -> KdfParams:
    """Choose Argon2id parameters that take about ``target_seconds`` on this machine.

    Memory is fixed first (memory hardness is what hurts GPU attackers most), then
    passes are added up to the target; on a machine so fast that more than 8 passes
    would be needed, memory doubles instead (up to 1 GiB). Never returns less than
    :data:`kdf_params.KDF_FLOOR`.
    """
    memory_kib = max(memory_kib, kdf_params.KDF_FLOOR.memory_kib)
    parallelism = max(parallelism, kdf_params.KDF_FLOOR.parallelism)
    while True:
        per_pass = _time_one_pass(memory_kib, parallelism)
        passes = round(target_seconds / per_pass) if per_pass > 0 else kdf_params.KDF_CAP.time_cost
        if passes <= 8 or memory_kib * 2 > _CALIBRATION_MAX_MEMORY_KIB:
            break
        memory_kib *= 2
    passes = min(max(passes, kdf_params.KDF_FLOOR.time_cost), 8)
    return KdfParams(time_cost=passes, memory_kib=memory_kib, parallelism=parallelism)


def _time_one_pass(memory_kib: int, parallelism: int) -> float:
    best = float("inf")
    low_level = _argon2()
    for _ in range(2):  # the first run also pays for page faults; keep the faster
        start = time.perf_counter()
        low_level.hash_secret_raw(
            b"calibration",
            b"\0" * kdf_params.SALT_SIZE,
            1,
            memory_kib,
            parallelism,
            32,
            low_level.Type.ID,
        )
        best = min(best, time.perf_counter() - start)
    return best
