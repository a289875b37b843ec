"""Argon2id cost parameters of vault format v1: the type, the floor, the default and the
cap (docs/format.md section 11), with no Argon2 import.

Read by everything that shows or checks a keyslot's parameters without deriving a key
(``exvault list``, ``check``, ``doctor``, the keyless inventory); the derivation itself
is :mod:`vault.format.passphrase_kdf`, the one module that loads ``argon2``. The reasons
for these values are given there.
"""

# Annotations are not postponed here (no `from __future__ import annotations`):
# typing.NamedTuple compiles each postponed (string) field annotation when its class
# is built, about 10 µs each, and every command and bot builds these at start.
from typing import NamedTuple

from vault.errors import UnsupportedFormat

SALT_SIZE = 16
"""Bytes of a keyslot's random salt (passphrase and recovery slots alike)."""


# A named tuple, not a dataclass: building a dataclass at import slows every command's start.
class KdfParams(NamedTuple):
    """Argon2id cost parameters: passes, memory in KiB, lanes."""

    time_cost: int
    memory_kib: int
    parallelism: int

    def __str__(self) -> str:
        memory = (
            f"{self.memory_kib // 1024} MiB"
            if self.memory_kib >= 1024
            else f"{self.memory_kib} KiB"
        )
        return f"Argon2id t={self.time_cost} m={memory} p={self.parallelism}"

    def at_least(self, other: "KdfParams") -> bool:
        """True when every parameter is at least ``other``'s."""
        return (
            self.time_cost >= other.time_cost
            and self.memory_kib >= other.memory_kib
            and self.parallelism >= other.parallelism
        )


KDF_FLOOR = KdfParams(time_cost=3, memory_kib=64 * 1024, parallelism=4)
"""RFC 9106 section 4, second recommended option: never calibrate below this."""

KDF_DEFAULT_MEMORY_KIB = 256 * 1024
KDF_DEFAULT_TARGET_SECONDS = 0.5

# The hard cap on open: just above the most exvault's calibration ever chooses
# (1 GiB, 8 passes), so a keyslot crafted by someone with write access to the vault
# cannot make an unlock burn more than about ten seconds and one gigabyte.
KDF_CAP = KdfParams(time_cost=10, memory_kib=1024 * 1024, parallelism=16)


def check_kdf_params(params: KdfParams) -> None:
    """Refuse parameters above the cap or below what Argon2 itself accepts.

    Parameters below :data:`KDF_FLOOR` are accepted on open (a vault made for tests
    has them); ``exvault check`` reports them as a finding.

    :raises UnsupportedFormat: when a parameter is outside the accepted range.
    """
    if not (1 <= params.parallelism <= KDF_CAP.parallelism):
        raise UnsupportedFormat("vault KDF parallelism is outside the accepted range (cap 16)")
    if not (1 <= params.time_cost <= KDF_CAP.time_cost):
        raise UnsupportedFormat(
            f"vault KDF time cost is outside the safety cap (1-{KDF_CAP.time_cost})"
        )
    if not (8 * params.parallelism <= params.memory_kib <= KDF_CAP.memory_kib):
        raise UnsupportedFormat(
            "vault KDF memory is outside the safety cap (8 KiB per lane to 1 GiB)"
        )
