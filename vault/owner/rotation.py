"""Staged rotation of a credential (the AWS Secrets Manager model).

::

    start    new key staged as version N+1, label ``pending`` (wrapped for every grantee)
    verify   checks the pending version (format, exchange rules, really a new key)
    promote  pending -> ``current``, current -> ``previous`` (readable for a grace period)
    rollback during the grace period: ``previous`` -> ``current`` again, the promoted
             version back to ``pending`` (promote it again, or abort it)
    finish   drop ``previous`` once the grace period is over (then delete the old key
             at the exchange); earlier only when forced
    abort    drop ``pending``

Each step is one transaction, so a crash leaves the vault before or after it, never
in between; and each step is idempotent, so running it again after a crash (or
twice from cron) does no harm: a step with nothing left to do says so and changes
nothing. Every step is audited.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from vault.db import queries
from vault.errors import Conflict, IntegrityError, InvalidInput, NotFound
from vault.exchanges.profiles import get_profile
from vault.format import journal
from vault.format.model import from_epoch, to_epoch, utc_now
from vault.format.policy import Policy
from vault.format.schema import JournalRow, VersionRow
from vault.owner.credentials import UNCHANGED, clean_payload, credential_metadata
from vault.owner.writer import OwnerHandle

KEY_MATERIAL = frozenset({"api_key", "secret", "passphrase", "private_key"})
"""Fields a rotation replaces; the others carry over to the new version."""


@dataclass(frozen=True)
class StepResult:
    """What a rotation step did."""

    credential: str
    step: str
    changed: bool
    version: int | None
    message: str
    wrapped_for: tuple[str, ...] = ()
    """Names of the clients a version written by this step was wrapped for (start)."""


@dataclass(frozen=True)
class VerifyCheck:
    """One check of ``rotate verify``."""

    name: str
    passed: bool
    detail: str


def start(
    admin: OwnerHandle,
    name: str,
    payload: Mapping[str, str],
    *,
    permissions: tuple[str, ...] | list[str] | str | None = None,
    ips: tuple[str, ...] | list[str] | str | None = None,
    issued_on: date | None = None,
    expires_on: date | object | None = UNCHANGED,
) -> StepResult:
    """Stage a new key as ``pending``; the current one keeps working.

    The new version keeps the metadata of the one it replaces unless given: the same
    permissions and IPs, and an exchange expiry as far from its issue date as the
    current key's was from its own (an exchange sets a new key's expiry from the day
    it is created, so a 90-day key's successor is a 90-day key). ``expires_on=None``
    clears the expiry. The issue date defaults to today; the policy lives with the
    credential, not the version, so it carries over as it is.

    The new version is wrapped for every grantee; the result names them.

    :raises Conflict: when another rotation is pending (a repeat of the same start
        is a no-op instead).
    :raises InvalidInput: for bad fields, permissions or IPs.
    :raises IntegrityError: when a grant is not backed by the signed audit log
        (:meth:`vault.owner.writer.Writer.grantees`); nothing is written.
    """
    now = to_epoch(utc_now())
    writer = admin.writer
    with writer.write() as transaction:
        head = writer.head(transaction, name, for_update=True)
        if head.current_version is None:
            raise Conflict(f'credential "{name}" has no current version')
        current_meta, current_fields = writer.open_version(transaction, head, "current")
        # A new key changes the key material; account fields (uid, account_id, ...)
        # stay what they were unless the new payload gives them.
        carried = {k: v for k, v in current_fields.items() if k not in KEY_MATERIAL}
        fields = clean_payload(current_meta.exchange, {**carried, **payload})
        if head.pending_version is not None:
            _meta, pending_fields = writer.open_version(transaction, head, "pending")
            if pending_fields == fields:
                return StepResult(
                    name,
                    "start",
                    False,
                    head.pending_version,
                    f"version {head.pending_version} is already pending with this key",
                )
            raise Conflict(
                f'a rotation of "{name}" is already pending (version {head.pending_version}); '
                f"promote it or abort it first: exvault rotate abort {name}"
            )
        issued = issued_on or utc_now().date()
        metadata = credential_metadata(
            name,
            current_meta.exchange,
            current_meta.permissions if permissions is None else permissions,
            current_meta.ips if ips is None else ips,
            issued,
            _carried_expiry(current_meta.issued_on, current_meta.expires_on, issued)
            if expires_on is UNCHANGED
            else expires_on,  # type: ignore[arg-type]
            current_meta.endpoint,
        )
        grantees = writer.check_scopes(transaction, head, metadata.permissions)
        version = writer.next_version(head)
        sealed = writer.add_version(
            transaction, head, version, metadata, fields, now, grantees=grantees
        )
        head.pending_version = version
        head.pending_digest = sealed.stage_digest
        head.pending_since = now
        head.updated_at = now
        writer.sign_head(transaction, head)
        writer.audit(transaction, "rotate-start", name, version)
    wrapped_for = tuple(sorted(c.name for c in grantees))
    return StepResult(
        name,
        "start",
        True,
        version,
        f"version {version} staged as pending"
        + (f", expiring on {metadata.expires_on}" if metadata.expires_on else "")
        + (f"; wrapped for clients: {', '.join(wrapped_for)}" if wrapped_for else ""),
        wrapped_for,
    )


def _carried_expiry(old_issued: date, old_expires: date | None, issued: date) -> date | None:
    """The expiry of a new key issued on ``issued`` with the old key's lifetime (None
    when the old key had no expiry)."""
    if old_expires is None:
        return None
    return issued + max(old_expires - old_issued, timedelta(0))


def verify(admin: OwnerHandle, name: str) -> list[VerifyCheck]:
    """Check the pending version before promoting it; changes nothing but the audit log.

    :raises NotFound: when no rotation is pending.
    """
    checks: list[VerifyCheck] = []
    writer = admin.writer
    with writer.write() as transaction:
        head = writer.head(transaction, name)
        if head.pending_version is None:
            raise NotFound(
                f'no rotation of "{name}" is pending; start one: exvault rotate start {name}'
            )
        meta, fields = writer.open_version(transaction, head, "pending")
        checks.append(
            VerifyCheck("decrypts", True, f"version {head.pending_version} decrypts and verifies")
        )
        profile = get_profile(meta.exchange)
        try:
            profile.validate_payload(fields)
            profile.validate_ips(meta.ips)
            checks.append(
                VerifyCheck(
                    "format", True, f"fields and IPs fit the {profile.display_name} profile"
                )
            )
        except InvalidInput as exc:
            checks.append(VerifyCheck("format", False, str(exc)))
        if head.current_version is not None:
            _current_meta, current = writer.open_version(transaction, head, "current")
            same_key = current.get("api_key") == fields.get("api_key")
            same_secret = current.get("secret") == fields.get("secret")
            checks.append(
                VerifyCheck(
                    "new-key",
                    not (same_key or same_secret),
                    "the API key and secret differ from the current ones"
                    if not (same_key or same_secret)
                    else "the pending "
                    + ("API key" if same_key else "secret")
                    + " is the same as the current one: create a new key at the exchange",
                )
            )
        try:
            writer.check_scopes(transaction, head, meta.permissions)
            checks.append(VerifyCheck("scope", True, "within every grantee's maximum scope"))
        except Conflict as exc:
            checks.append(VerifyCheck("scope", False, str(exc)))
        failed = [c.name for c in checks if not c.passed]
        writer.audit(
            transaction,
            "rotate-verify",
            name,
            head.pending_version,
            detail="passed" if not failed else "failed: " + ", ".join(failed),
        )
    return checks


def promote(admin: OwnerHandle, name: str, *, grace: timedelta | None = None) -> StepResult:
    """Make the pending version current; the old current stays readable as ``previous``
    for ``grace`` (default: the credential's policy, 24 hours), so running bots keep
    working while they restart.

    :raises Conflict: when nothing is pending and no rotation was just promoted.
    """
    now = utc_now()
    writer = admin.writer
    with writer.write() as transaction:
        head = writer.head(transaction, name, for_update=True)
        if head.pending_version is None:
            if head.previous_version is not None:
                return StepResult(
                    name,
                    "promote",
                    False,
                    head.current_version,
                    f"already promoted: version {head.current_version} is current",
                )
            raise Conflict(f'nothing to promote for "{name}": exvault rotate start {name} first')
        policy = Policy.from_json(head.policy)
        grace = grace if grace is not None else timedelta(hours=policy.grace_hours)
        dropped = head.previous_version
        head.previous_version = head.current_version
        head.previous_digest = head.current_digest
        head.previous_until = to_epoch(now + grace)
        head.current_version = head.pending_version
        head.current_digest = head.pending_digest
        head.pending_version = head.pending_since = head.pending_digest = None
        head.updated_at = to_epoch(now)
        writer.retire_version(transaction, head, dropped)
        writer.sign_head(transaction, head)
        writer.audit(transaction, "rotate-promote", name, head.current_version)
        version = head.current_version
    writer.checkpoint()
    return StepResult(
        name,
        "promote",
        True,
        version,
        f"version {version} is current; the previous key stays readable until "
        f"{(now + grace):%Y-%m-%d %H:%M} UTC",
    )


def refuse_finish_in_grace(
    name: str, previous_until: int | None, now: datetime | None = None
) -> None:
    """Refuse to finish the rotation of ``name`` as of ``now`` (default: the current
    time) while the grace period that ends at ``previous_until`` (Unix time; None:
    none) runs.

    :raises Conflict: before the grace period ends.
    """
    if previous_until is not None and previous_until > to_epoch(now or utc_now()):
        raise Conflict(
            f'the grace period of "{name}" runs until '
            f"{from_epoch(previous_until):%Y-%m-%d %H:%M} UTC and bots may still read "
            f"the previous key: finish after then, or now with "
            f"exvault rotate finish {name} --force"
        )


def finish(admin: OwnerHandle, name: str, *, force: bool = False) -> StepResult:
    """Drop the ``previous`` version (its ciphertext and wraps are deleted).

    Refused while the grace period runs (bots that have not restarted yet still read
    the previous key, and ``rollback`` needs it) unless ``force``.

    Also clears an exposure mark that predates the current version: the exposed key
    is the one now retired. The current version's time is read from its row only once
    the row's signature verifies.

    :raises Conflict: before the grace period ends, unless ``force``; nothing is changed.
    :raises IntegrityError: when the current version's row is missing or fails
        verification; nothing is changed.
    """
    writer = admin.writer
    with writer.write() as transaction:
        head = writer.head(transaction, name, for_update=True)
        if head.previous_version is None:
            return StepResult(name, "finish", False, head.current_version, "nothing to finish")
        if not force:
            refuse_finish_in_grace(name, head.previous_until)
        dropped = head.previous_version
        head.previous_version = head.previous_until = head.previous_digest = None
        found = (
            transaction.execute(
                queries.VERSION_OF_SQL, {"id": head.id, "version": head.current_version}
            )
            if head.current_version is not None
            else []
        )
        current = VersionRow._make(found[0]) if found else None
        if head.exposed_at is not None and current is None:
            raise IntegrityError(f'damaged vault: "{name}" has lost its current version')
        if current is not None:
            # Its created_at may clear the exposure mark: a far-future value put in the
            # row must fail here, not wipe the mark.
            writer.check_staged_version(head, "current", current)
        if (
            head.exposed_at is not None
            and current is not None
            and head.exposed_at < current.created_at
        ):
            # The exposure predates the current key: it concerned the key now dropped.
            head.exposed_at = head.exposed_reason = None
        head.updated_at = to_epoch(utc_now())
        writer.retire_version(transaction, head, dropped)
        writer.sign_head(transaction, head)
        writer.audit(transaction, "rotate-finish", name, dropped)
        version = head.current_version
    writer.checkpoint()
    return StepResult(
        name,
        "finish",
        True,
        version,
        f"version {dropped} dropped; delete that key at the exchange now if you have not",
    )


def abort(admin: OwnerHandle, name: str) -> StepResult:
    """Drop the ``pending`` version."""
    writer = admin.writer
    with writer.write() as transaction:
        head = writer.head(transaction, name, for_update=True)
        if head.pending_version is None:
            return StepResult(name, "abort", False, head.current_version, "no rotation is pending")
        dropped = head.pending_version
        head.pending_version = head.pending_since = head.pending_digest = None
        head.updated_at = to_epoch(utc_now())
        writer.retire_version(transaction, head, dropped)
        writer.sign_head(transaction, head)
        writer.audit(transaction, "rotate-abort", name, dropped)
        version = head.current_version
    writer.checkpoint()
    return StepResult(name, "abort", True, version, f"pending version {dropped} dropped")


def refuse_rollback(
    name: str,
    previous_until: int | None,
    pending_version: int | None,
    now: datetime | None = None,
) -> None:
    """Refuse to roll ``name`` back as of ``now`` (default: the current time) once the
    grace period that ends at ``previous_until`` (Unix time; None: none) is over, or
    while version ``pending_version`` (None: none) is pending.

    :raises Conflict: in either case.
    """
    if previous_until is not None and previous_until <= to_epoch(now or utc_now()):
        raise Conflict(
            f'the grace period of "{name}" ended '
            f"{from_epoch(previous_until):%Y-%m-%d %H:%M} UTC: the previous key may be "
            f"deleted at the exchange already; rotate again: exvault rotate start {name}"
        )
    if pending_version is not None:
        raise Conflict(
            f'a rotation of "{name}" is pending (version {pending_version}); '
            f"abort it first: exvault rotate abort {name}"
        )


def rollback(admin: OwnerHandle, name: str) -> StepResult:
    """Undo a promote during the grace period: the ``previous`` version is ``current``
    again and the version promoted over it goes back to ``pending`` (promote it again
    once it works, or abort it). Signed and audited like every other step.

    :raises Conflict: when the grace period has ended (the old key may be deleted at
        the exchange already), another rotation is pending, or the journal shows the
        previous key's deletion at the exchange begun; nothing is changed.
    :raises IntegrityError: when the previous version fails verification; nothing is
        changed.
    """
    now = utc_now()
    writer = admin.writer
    with writer.write() as transaction:
        head = writer.head(transaction, name, for_update=True)
        if head.previous_version is None:
            return StepResult(
                name, "rollback", False, head.current_version, "no previous version to roll back to"
            )
        refuse_rollback(name, head.previous_until, head.pending_version, now)
        # The version to make current must be whole and the one the head names
        # (every grantee holds it already: a grant wraps every labelled version).
        _, fields = writer.open_version(transaction, head, "previous")
        # A key whose deletion at the exchange has begun (a finish that failed or was
        # killed after its delete call) may be gone there already: it cannot be current
        # again. A forged entry can only make this refuse, never let a dead key back.
        deleting = [
            entry
            for entry in map(JournalRow._make, transaction.execute(queries.JOURNAL_SQL, {}))
            if entry.credential == name
            and entry.step == journal.DELETE
            and entry.state in (journal.INTENT, journal.DONE)
            and entry.api_key == fields.get("api_key")
        ]
        if deleting:
            raise Conflict(
                f'the previous key of "{name}" is being deleted at the exchange (rotation '
                f"{deleting[-1].rotation_id}): it cannot be current again; rotate again: "
                f"exvault rotate start {name}"
            )
        rolled_back = head.current_version
        head.pending_version = head.current_version
        head.pending_digest = head.current_digest
        head.pending_since = to_epoch(now)
        head.current_version = head.previous_version
        head.current_digest = head.previous_digest
        head.previous_version = head.previous_until = head.previous_digest = None
        head.updated_at = to_epoch(now)
        writer.sign_head(transaction, head)
        writer.audit(transaction, "rotate-rollback", name, head.current_version)
        version = head.current_version
    writer.checkpoint()
    return StepResult(
        name,
        "rollback",
        True,
        version,
        f"version {version} is current again; version {rolled_back} is pending: "
        f"exvault rotate promote {name} once it works, or exvault rotate abort {name}",
    )
