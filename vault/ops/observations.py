"""Probe results kept as evidence: authenticated observations of what an exchange said.

``exvault probe`` calls :func:`record` with each answer; ``exvault check`` reads each
credential's latest observations without any key (:func:`latest_states`, through
:mod:`vault.ops.checks`) and reports their findings (:func:`state_findings`).

An observation is a row of ``probe_observations`` signed by the root key (the owner,
through the unlock agent or the passphrase) or by a monitor client's Ed25519 key
(which must hold the credential), over the vault id, the credential's id, name and
version, the signer, the time, the kind and the canonical body
(:mod:`vault.format.observation`). In the same transaction a ``probe`` audit entry,
signed by the same key, carries the observation's digest into the hash-chained log.

A reader trusts an observation only through that entry: it takes each credential's
newest ``probe`` entry whose signature verifies, then the stored observation with the
digest the entry names, whose own signature must verify with the same key. So a
database writer without a key cannot forge an observation (no entry names it), edit one
(its digest changes), replace the latest with an older one (the entry names the
latest), nor delete it unnoticed (``check`` reports ``probe-evidence-missing``).
Deleting the entry as well cuts the chain, which ``exvault audit verify`` and
``exvault verify`` report; ``check`` notices it too once ``probe`` has run on this
machine as this user: ``probe`` remembers the head of the log it wrote
(:func:`remember_head`, in the audit witness), and ``check`` makes sure that every
entry up to that head is still there, unchanged (hashes only). Cut out of the middle or
off the end, a ``probe`` entry leaves every probed credential with
``probe-evidence-missing``: which one lost its entry cannot be told.

Only verdicts are stored: a report, a rejected key, a refused timestamp. An
``unreachable``, ``malformed`` or ``unsupported`` outcome says nothing about the key
and is not recorded, so it never replaces the last good observation.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, NamedTuple

from vault.db import audit, queries
from vault.db.inventory import Inventory
from vault.db.transaction import Transaction
from vault.errors import IntegrityError
from vault.exchanges.key_report import ProbeOutcome
from vault.format import observation
from vault.format.audit_entry import AuditRow
from vault.format.model import to_epoch, utc_now
from vault.format.policy import Policy
from vault.format.schema import ObservationRow
from vault.ops.audit_signers import entry_signers, plausible_entry
from vault.ops.finding import Finding
from vault.ops.probe_findings import DeclaredKey, findings
from vault.ops.verified_reads import VerifiedReads

if TYPE_CHECKING:  # record() calls their record_observation: check never loads them
    from vault.owner.admin import AdminVault
    from vault.runtime.client import ClientVault


class StoredObservation(NamedTuple):
    """One stored observation, authenticated by its ``probe`` audit entry."""

    name: str
    version: int
    outcome: ProbeOutcome
    signer: str
    """``root``, or the id of the monitor client that recorded it."""
    seq: int
    """The ``seq`` of the audit entry that carries it."""


class ObservationState(NamedTuple):
    """What ``check`` knows of the probes of one credential's current version."""

    latest: StoredObservation | None
    """The newest observation (None: never probed, or its evidence is missing)."""
    last_report: StoredObservation | None
    """The newest observation holding a report: when the exchange last answered."""
    evidence_missing: bool = False
    """The newest ``probe`` entry names an observation that is gone or does not verify."""


RECORDED_KINDS = frozenset({"rejected-key", "clock-skew"})
"""The error kinds stored besides a report: verdicts about the key or the clock."""


def worth_recording(outcome: ProbeOutcome) -> bool:
    """Whether :func:`record` stores ``outcome`` (a report, or an error that is a verdict)."""
    return outcome.ok or (outcome.error is not None and outcome.error.kind in RECORDED_KINDS)


def remember_head(inventory: Inventory) -> None:
    """Remember the head of the audit log (the last entry ``probe`` wrote, or later)
    in the audit witness, for ``check`` and ``exvault audit verify`` to find again.
    A witness whose entry is no longer in the log is left as it is: it is the
    evidence that entries were cut.

    :raises StoreError: the database fails.
    """
    with inventory.store.read() as transaction:
        seen = audit.read_witness(inventory.vault_id)
        if seen is not None and not audit.chain_contains(transaction, *seen):
            return
        head = audit.last_entry(transaction)
    if head is not None and (seen is None or head[0] > seen[0]):
        audit.write_witness(inventory.vault_id, *head)


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

    :raises NotFound: no credential ``name``, or ``version`` is not one of its stages.
    :raises AccessDenied: a client without a grant on ``name``, or one that cannot
        write this vault's tables (a shared SQLite vault, PostgreSQL).
    :raises IntegrityError: the credential's head does not verify.
    :raises StoreError: the database fails.
    """
    if worth_recording(outcome):
        handle.record_observation(name, version, outcome)


Signers = Mapping[str, tuple[str, bytes]]


def _newest_verified(
    execute: queries.Execute,
    first: Iterable[AuditRow],
    trusted: Callable[[AuditRow], bool],
    reports_only: bool,
) -> dict[str, AuditRow]:
    """Each credential's newest ``probe`` entry that is ``trusted``: the newest of
    ``first`` when it is, else (rare: a forged or damaged entry) its older ones."""
    found: dict[str, AuditRow] = {}
    for entry in first:
        name = entry.credential
        if name is None or name in found:
            continue
        if trusted(entry):
            found[name] = entry
            continue
        for values in execute(queries.PROBES_OF_SQL, {"name": name, "version": entry.version}):
            older = AuditRow(*values)
            if reports_only and not older.detail.startswith(observation.REPORT + " "):
                continue
            if trusted(older):
                found[name] = older
                break
    return found


def latest_states(
    transaction: Transaction,
    vault_id: bytes,
    signers: Signers,
    verified: VerifiedReads,
    plausible: Callable[[AuditRow], bool],
    rekeys: Sequence[audit.Rekey] = (),
) -> dict[str, ObservationState]:
    """The state of each probed credential's current version, by name: its newest
    ``probe`` entry that is ``plausible`` and whose signature verifies with one of
    ``signers`` (``rekeys`` aware), and the observation that entry names (see the
    module's docstring). ``check`` passes the signers and the record of verified
    entries it already has for reads.
    """

    def trusted(entry: AuditRow) -> bool:
        return plausible(entry) and verified.signed(entry, signers, rekeys)

    execute = transaction.execute
    with transaction.tolerant_text():
        newest = _newest_verified(
            execute, (AuditRow(*v) for v in execute(queries.LATEST_PROBE_SQL, {})), trusted, False
        )
        reports = _newest_verified(
            execute,
            (AuditRow(*v) for v in execute(queries.LATEST_REPORT_PROBE_SQL, {})),
            trusted,
            True,
        )
        wanted = {
            digest: entry
            for entry in (*newest.values(), *reports.values())
            if (digest := observation.digest_of_detail(entry.detail)) is not None
        }
        stored: dict[bytes, ObservationRow] = {}
        if wanted:
            for values in execute(queries.CURRENT_OBSERVATIONS_SQL, {}):
                row = ObservationRow(*values)
                try:
                    digest = observation.digest(vault_id, row)
                except (TypeError, ValueError):  # a value of another type, or not UTF-8
                    continue
                if digest in wanted:
                    stored[digest] = row

        cut = _cut_since(transaction, vault_id, newest.values())

    def carried(entry: AuditRow | None) -> StoredObservation | None:
        if entry is None:
            return None
        digest = observation.digest_of_detail(entry.detail)
        row = stored.get(digest) if digest is not None else None
        key = audit.signing_key(entry, signers, rekeys)
        if row is None or key is None:
            return None
        if (row.name, row.version, row.signer) != (entry.credential, entry.version, entry.signer):
            return None
        try:
            outcome = observation.verify(key, vault_id, row)
        except IntegrityError:
            return None
        return StoredObservation(row.name, row.version, outcome, row.signer, entry.seq)

    states: dict[str, ObservationState] = {}
    for name, entry in newest.items():
        latest = carried(entry)
        last_report = carried(reports.get(name))
        missing = latest is None or entry.seq <= cut
        states[name] = ObservationState(latest, last_report, evidence_missing=missing)
    return states


def _cut_since(transaction: Transaction, vault_id: bytes, newest: Iterable[AuditRow]) -> int:
    """The seq of the audit witness when an entry up to it was deleted or changed
    since (0 when none was, or no witness or ``probe`` entry is known): every
    ``probe`` entry up to it may have had a newer one cut out."""
    seen = audit.read_witness(vault_id)
    if seen is None or not any(entry.seq <= seen[0] for entry in newest):
        return 0
    return 0 if audit.chain_intact_up_to(transaction, vault_id, *seen) else seen[0]


def latest(inventory: Inventory, now: datetime | None = None) -> dict[str, ObservationState]:
    """:func:`latest_states` of ``inventory``, keyless, as of ``now`` (default: the
    current time; an entry dated after it, beyond the allowed skew, does not count)."""
    with inventory.store.read() as transaction:
        return latest_states(
            transaction,
            inventory.vault_id,
            entry_signers(transaction, inventory),
            # Not the file check keeps: saving it would drop its read entries.
            VerifiedReads(inventory.vault_id),
            plausible_entry(transaction, to_epoch(now or utc_now())),
            audit.rekey_history(transaction, inventory.vault_id, inventory.verify_public),
        )


_FROM_LAST_REPORT = frozenset(
    {
        "exchange-permission-wider",
        "exchange-permission-narrower",
        "exchange-ip-unrestricted",
        "exchange-ip-mismatch",
        "exchange-expires-soon",
    }
)
# What a report says of the key stays true after a later refused timestamp, which says
# only that the clock was off.


def state_findings(
    declared: DeclaredKey, state: ObservationState, policy: Policy, now: datetime
) -> list[Finding]:
    """The findings ``check`` reports from one credential's stored observations: the
    probe rules (:func:`vault.ops.probe_findings.findings`) over the latest, plus what
    the last report said of the key when the latest is a refused timestamp, and
    ``probe-evidence-missing`` (critical) when the latest observation is gone."""
    out: list[Finding] = []
    if state.evidence_missing:
        out.append(
            Finding(
                "critical",
                "probe-evidence-missing",
                declared.name,
                "the observation of the latest probe is missing or fails verification "
                "(someone changed the database?): run exvault verify, then exvault probe "
                + declared.name,
            )
        )
    last_report = state.last_report
    latest = state.latest or last_report
    if latest is None:
        return out
    last_success = last_report.outcome.observed_at if last_report else None
    out += findings(declared, latest.outcome, policy, now, last_success=last_success)
    error = latest.outcome.error
    if last_report is not None and error is not None and error.kind == "clock-skew":
        seen = {f.code for f in out}
        out += (
            f
            for f in findings(declared, last_report.outcome, policy, now)
            if f.code in _FROM_LAST_REPORT and f.code not in seen
        )
    return out


__all__ = [
    "RECORDED_KINDS",
    "ObservationState",
    "StoredObservation",
    "latest",
    "latest_states",
    "record",
    "remember_head",
    "state_findings",
    "worth_recording",
]
