"""Probe results kept as evidence: authenticated observations of what an exchange said.

``exvault probe`` calls :func:`record` with each answer; ``exvault check`` reads the
latest observations without any key (:func:`latest`). Each observation is signed,
by the root key (the owner, through the unlock agent or the passphrase) or by a
monitor client's Ed25519 key (which must hold a grant on the credential), over the
vault id, the credential's name and version and the observation's canonical encoding;
and an audit entry ``probe`` carrying the observation's digest chains it into the
signed audit log, so that an observation deleted or put back is caught by the audit
chain and its witness (docs/format.md, SECURITY.md).

Only verdicts are stored: an ``unreachable`` or ``malformed`` outcome says nothing
about the key and is not recorded, so it never replaces the last good observation.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, NamedTuple

from vault.exchanges.key_report import ProbeOutcome

if TYPE_CHECKING:
    from vault.db.inventory import Inventory
    from vault.owner.admin import AdminVault
    from vault.runtime.client import ClientVault


class StoredObservation(NamedTuple):
    """One stored observation whose signature verified, as ``check`` reads it."""

    name: str
    version: int
    outcome: ProbeOutcome
    signer: str
    """``root``, or the id of the monitor client that recorded it."""


class ObservationState(NamedTuple):
    """What ``check`` knows of one credential's probes: the latest verified observation
    and when the exchange last answered with a report (None: never)."""

    latest: StoredObservation
    last_success: datetime | None


RECORDED_KINDS = frozenset({"rejected-key", "clock-skew", "unsupported"})
"""The error kinds stored besides a report: verdicts. ``unreachable`` and
``malformed`` are not stored."""


def worth_recording(outcome: ProbeOutcome) -> bool:
    """Whether :func:`record` stores ``outcome`` (a report, or an error that is a verdict)."""
    return outcome.ok or (outcome.error is not None and outcome.error.kind in RECORDED_KINDS)


def record(
    handle: AdminVault | ClientVault, name: str, version: int, outcome: ProbeOutcome
) -> None:
    """Store ``outcome``, the probe of version ``version`` of credential ``name``, as a
    signed observation chained into the audit log, in one transaction.

    ``handle`` is the owner's :class:`~vault.owner.admin.AdminVault` (signs with the
    root key, through the unlock agent when opened that way) or a monitor client's
    :class:`~vault.runtime.client.ClientVault` (signs with the client's key; the client
    must hold a grant on ``name``). An outcome that is not a verdict
    (:func:`worth_recording`) is not stored: the call does nothing.

    :raises NotFound: no credential ``name``.
    :raises AccessDenied: a client without a grant on ``name``, or one that cannot
        write this vault (the shared layout's read-only file).
    :raises InvalidInput: ``version`` is not a version of ``name``.
    """
    raise NotImplementedError


def latest(inventory: Inventory) -> dict[str, ObservationState]:
    """Each credential's latest observation whose signature verifies, keyless.

    Observations of a version that is no longer current are ignored. A forged or
    edited observation is skipped (its credential's earlier ones count instead) and
    reported by ``verify``; a deleted latest one is caught by the audit chain.
    """
    raise NotImplementedError


__all__ = [
    "RECORDED_KINDS",
    "ObservationState",
    "StoredObservation",
    "latest",
    "record",
    "worth_recording",
]
