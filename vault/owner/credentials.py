"""The owner's credential operations over a :class:`~vault.owner.writer.Writer`: add,
edit, remove and get, and the rules for a credential's metadata and secret fields.

The rules check against the exchange's profile (:mod:`vault.exchanges.profiles`, with
the key-shape checks and the IP parser it brings): imported by the two functions that
apply them, so that a read (``show --field``) or a grant, which checks nothing against
a profile, does not load them (a few milliseconds of every such command's start).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, timedelta

from vault.db.inventory import info_from_rows
from vault.errors import AlreadyExists, Conflict, InvalidInput, quoted
from vault.exchanges.endpoints import parse_endpoint
from vault.format import records, stages
from vault.format.credential_info import CredentialInfo
from vault.format.editable import EditableHead
from vault.format.model import (
    LIVE,
    CredentialMetadata,
    to_epoch,
    utc_now,
    validate_name,
)
from vault.owner.writer import Writer
from vault.runtime.credential import Credential

UNCHANGED: object = object()
"""Sentinel for "leave this field as it is" in :func:`edit`."""


def clean_payload(exchange: str, payload: Mapping[str, str]) -> dict[str, str]:
    """Normalize and validate secret fields for ``exchange``; drop empty optional ones.

    :raises InvalidInput: naming the field (never its value) that is wrong.
    """
    # On use, not at the top: see the module doc.
    from vault.exchanges.fields import validate_field_name
    from vault.exchanges.keyformats import normalize_payload
    from vault.exchanges.profiles import get_profile

    profile = get_profile(exchange)
    fields: dict[str, str] = {}
    for key, value in payload.items():
        validate_field_name(key)
        if not isinstance(value, str):
            raise InvalidInput(f"field {quoted(key)} must be a string")
        if value != "":
            fields[key] = value
    fields = normalize_payload(fields)
    profile.validate_payload(fields)
    return fields


def credential_metadata(
    name: str,
    exchange: str,
    permissions: tuple[str, ...] | list[str] | str,
    ips: tuple[str, ...] | list[str] | str,
    issued_on: date | None,
    expires_on: date | None,
    endpoint: str = LIVE,
) -> CredentialMetadata:
    """A version's metadata, normalized and checked for ``exchange``'s profile.

    :raises InvalidInput: for an unknown exchange, a bad permission, IP or endpoint,
        an issue date in the future or an expiry before it.
    """
    # On use, not at the top: see the module doc.
    from vault.exchanges.profiles import get_profile
    from vault.network import parse_ip_whitelist

    profile = get_profile(exchange)
    if isinstance(permissions, str):
        permissions = [permissions]
    if isinstance(ips, str):
        ips = [ips]
    ip_list = parse_ip_whitelist(ips)
    profile.validate_ips(ip_list)
    today = utc_now().date()
    issued = issued_on or today
    if issued > today + timedelta(days=1):  # a day of slack for time zones
        raise InvalidInput(f"the issue date {issued} is in the future")
    if expires_on is not None and expires_on < issued:
        raise InvalidInput("the expiry date is before the issue date")
    return CredentialMetadata(
        name=name,
        exchange=profile.id,
        permissions=profile.normalize_permissions(permissions),
        ips=ip_list,
        issued_on=issued,
        expires_on=expires_on,
        endpoint=parse_endpoint(endpoint),
    )


def new_head(
    head_id: str, name: str, now: int, current_digest: bytes, grantees: str = ""
) -> EditableHead:
    """The unsigned head of a new credential whose version 1 (stage digest
    ``current_digest``) is current; sign it with :meth:`Writer.sign_head` (``new``)."""
    return EditableHead(
        id=head_id,
        name=name,
        created_at=now,
        updated_at=now,
        current_version=1,
        pending_version=None,
        pending_since=None,
        previous_version=None,
        previous_until=None,
        policy="{}",
        exposed_at=None,
        exposed_reason=None,
        signature=b"",
        revision=0,  # sign_head makes it 1
        version_counter=1,
        current_digest=current_digest,
        pending_digest=None,
        previous_digest=None,
        grantees=grantees,
    )


def add(
    writer: Writer,
    name: str,
    exchange: str,
    payload: Mapping[str, str],
    *,
    permissions: tuple[str, ...] | list[str] | str = (),
    ips: tuple[str, ...] | list[str] | str = (),
    issued_on: date | None = None,
    expires_on: date | None = None,
    endpoint: str = LIVE,
) -> CredentialInfo:
    """Store a new credential as version 1, stage ``current``.

    :raises AlreadyExists: when the name is taken.
    :raises InvalidInput: for a bad name, exchange, field, permission, IP, date or
        endpoint.
    """
    validate_name(name)
    metadata = credential_metadata(
        name, exchange, permissions, ips, issued_on, expires_on, endpoint
    )
    fields = clean_payload(metadata.exchange, payload)
    now = to_epoch(utc_now())
    with writer.write(queued=True) as transaction:
        if writer.name_taken(transaction, name):
            raise AlreadyExists(f'a credential named "{name}" exists already')
        head_id = records.new_record_id()
        sealed = records.seal_version(
            writer.identity, writer.vault_id, head_id, 1, metadata, fields, now
        )
        head = new_head(head_id, name, now, sealed.stage_digest)
        # Inserted before its version: the foreign key points to it.
        writer.sign_head(transaction, head, new=True)
        # Made in this transaction: no grant can name it yet, the root is its only reader.
        writer.store_version(transaction, sealed, grantees=[])
        writer.audit(transaction, "add", name, 1)
        writer.names_changed(added=name)
    # What was just signed and written: no need to read it back.
    return info_from_rows(head, sealed.version)


def edit(
    writer: Writer,
    name: str,
    *,
    permissions: tuple[str, ...] | list[str] | str | None = None,
    ips: tuple[str, ...] | list[str] | str | None = None,
    issued_on: date | None = None,
    expires_on: date | object | None = UNCHANGED,
    payload: Mapping[str, str] | None = None,
    endpoint: str | None = None,
) -> tuple[str, ...]:
    """Write a new current version with changed metadata and/or secret fields (see
    :meth:`vault.owner.admin.AdminVault.edit`).

    :returns: the names of the clients the new version was wrapped for, sorted.
    :raises NotFound: when there is no such credential.
    :raises Conflict: when it has no current version or a rotation is pending.
    :raises InvalidInput: for a bad permission, IP, date, endpoint or field, or a name
        that is not UTF-8 text.
    :raises IntegrityError: when a grant is not backed by the signed audit log;
        nothing is written.
    """
    now = to_epoch(utc_now())
    with writer.write() as transaction:
        head = writer.head(transaction, name, for_update=True)
        old_version = head.current_version
        if old_version is None:
            raise Conflict(f'credential "{name}" has no current version')
        if head.pending_version is not None:
            raise Conflict(f'a rotation of "{name}" is pending; promote or abort it before editing')
        old_meta, fields = writer.open_version(transaction, head, "current")
        metadata = credential_metadata(
            name,
            old_meta.exchange,
            old_meta.permissions if permissions is None else permissions,
            old_meta.ips if ips is None else ips,
            issued_on or old_meta.issued_on,
            old_meta.expires_on if expires_on is UNCHANGED else expires_on,  # type: ignore[arg-type]
            old_meta.endpoint if endpoint is None else endpoint,
        )
        if payload is not None:
            fields = clean_payload(metadata.exchange, payload)
            # A new secret: whatever exposure the old one had no longer applies.
            head.exposed_at = head.exposed_reason = None
        grantees = writer.check_scopes(transaction, head, metadata.permissions)
        version = writer.next_version(head)
        sealed = writer.add_version(
            transaction, head, version, metadata, fields, now, grantees=grantees
        )
        head.current_version = version
        head.current_digest = sealed.stage_digest
        head.updated_at = now
        writer.retire_version(transaction, head, old_version)
        writer.sign_head(transaction, head)
        writer.audit(transaction, "edit", name, version)
    writer.checkpoint()
    return tuple(sorted(c.name for c in grantees))


def remove(writer: Writer, name: str) -> None:
    """Delete a credential with every version, ciphertext and wrap (see
    :meth:`vault.owner.admin.AdminVault.remove`).

    :raises NotFound: when there is no such credential.
    :raises InvalidInput: for a name that is not UTF-8 text.
    """
    with writer.write() as transaction:
        head = writer.head(transaction, name, for_update=True)
        writer.delete_credential(transaction, head)
        writer.audit(transaction, "remove", name)
    writer.names_changed(removed=name)
    writer.checkpoint()


def get(writer: Writer, name: str, stage: str = "current") -> Credential:
    """Decrypt one stage (``current``, ``pending`` or ``previous``) of a credential; the
    read is audited.

    :raises NotFound: when there is no such credential or stage.
    :raises InvalidInput: for a name that is not UTF-8 text.
    :raises IntegrityError: when anything read fails verification.
    """
    with writer.write() as transaction:
        head = writer.head(transaction, name)
        version = stages.version_at(head, stage)
        meta, fields = writer.open_version(transaction, head, stage)
        writer.audit(transaction, "read", name, version, detail=stage)
    return Credential.from_plaintext(meta, version, stage, fields)
