"""How credential records are sealed, signed, verified and opened.

The composition of the primitives (:mod:`vault.format.encoding`, :mod:`vault.format.aead`,
:mod:`vault.format.identities`, :mod:`vault.format.keywrap`) with the rows of the
tables (:mod:`vault.format.schema`): each function gives the primitives their fixed context
(associated data, signed message) as ``docs/format.md`` specifies, after checking that
each row read from the store holds the value types its schema declares. Nothing here
does I/O.
"""

from __future__ import annotations

import functools
import os
import re
from collections.abc import Collection, Mapping
from datetime import date
from typing import TYPE_CHECKING, NamedTuple, TypeAlias, TypeVar

from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from vault.errors import IntegrityError, UnsupportedFormat, quoted
from vault.format import aead, encoding, identities, keywrap, schema, stages
from vault.format.identities import RootKeys
from vault.format.keywrap import Recipient, WrappedKey
from vault.format.model import (
    LIVE,
    CredentialMetadata,
    decode_payload,
    encode_payload,
    join_list,
    split_list,
)

if TYPE_CHECKING:
    # Annotations only: a client's direct read path checks plain rows
    # (vault.format.schema) without importing SQLAlchemy; the owner's code passes its
    # records, and the writers below import the records they build.
    from vault.db.tables import (
        ClientRecord,
        CredentialRecord,
        GrantRecord,
        HeaderRecord,
        PayloadRecord,
        VersionRecord,
        WrapRecord,
    )
    from vault.format.editable import EditableClient, EditableHead, EditableHeader
    from vault.format.schema import (
        ClientRow,
        GrantRow,
        HeaderRow,
        HeadRow,
        PayloadRow,
        VersionRow,
        WrapRow,
    )

    # What the functions below accept: an owner's record or a plain row.
    Header: TypeAlias = HeaderRecord | HeaderRow | EditableHeader
    Head: TypeAlias = CredentialRecord | HeadRow | EditableHead
    Version: TypeAlias = VersionRecord | VersionRow
    Payload: TypeAlias = PayloadRecord | PayloadRow
    Wrap: TypeAlias = WrapRecord | WrapRow
    Client: TypeAlias = ClientRecord | ClientRow | EditableClient
    Grant: TypeAlias = GrantRecord | GrantRow

_H = TypeVar("_H", "HeaderRecord", "HeaderRow", "EditableHeader")


def new_record_id() -> str:
    """A random 128-bit record id (32 hex digits). Random, not sequential: ids are never
    reused, so a row from a deleted credential can never pass for one of a new one."""
    return os.urandom(16).hex()


# --------------------------------------------------------------------------------------
# Rows read from the store: value types, signatures
# --------------------------------------------------------------------------------------


@functools.cache
def _column_types(table: str) -> tuple[tuple[str, type, bool], ...]:
    # The Python type each column holds and whether it may be None, from the one
    # declaration of the tables: whoever reads a row (an owner's record, a bot's plain
    # row, any object with the same attributes) checks it against the same types.
    return tuple((c.name, c.python_type, c.nullable) for c in schema.TABLES[table].columns)


_TYPE_NAMES = {
    int: "an integer",
    float: "a real number",
    str: "text",
    bytes: "a blob",
    type(None): "NULL",
}


def type_damage(row: object, table: str, columns: Collection[str] | None = None) -> str | None:
    """What is wrong with the types of ``row``'s columns, or None when nothing is.

    SQLite stores any value in any column (a REAL or TEXT in an INTEGER column, TEXT in
    a BLOB column, NULL once the NOT NULL constraint is edited away), and signed
    messages and the primitives take only the types the schema declares, so every
    reader checks a row read from the store before it uses it. ``row`` is a row of
    ``table`` (a record or any object with its column attributes): all of them, or
    ``columns`` and the primary key.
    """
    for name, expected, nullable in _column_types(table):
        if columns is not None and name not in columns:
            continue
        value = getattr(row, name)
        # Exact types: a bool is an int to isinstance, yet no column ever holds one.
        if type(value) is expected or (value is None and nullable):
            continue
        return (
            f"{table}.{name} holds {_type_name(type(value))} where {_type_name(expected)} "
            f"is expected (row {_row_key(row, table)})"
        )
    return None


def check_types(row: object, table: str, columns: Collection[str] | None = None) -> None:
    """Refuse a row any of whose columns holds a value of another type than the schema's
    (see :func:`type_damage`).

    :raises IntegrityError: naming the table, the column and the row.
    """
    damage = type_damage(row, table, columns)
    if damage is not None:
        raise IntegrityError(f"damaged vault: {damage}")


def _type_name(kind: type) -> str:
    return _TYPE_NAMES.get(kind, kind.__name__)


def _row_key(row: object, table: str) -> str:
    # Primary keys are ids, numbers and names, never secrets; quoted() cuts the rest.
    values = ((name, getattr(row, name)) for name in schema.TABLES[table].primary_key)
    return ", ".join(
        f"{name} {value}" if type(value) is int else f"{name} {quoted(value)}"
        for name, value in values
    )


def _verify(
    verify_public: bytes, message: bytes, signature: bytes, verified: set[bytes] | None
) -> None:
    if verified is None:
        identities.verify_signature(verify_public, message, signature)
        return
    # A row whose exact signed bytes and signature were verified before needs no second
    # Ed25519 verification; anything changed in it misses the cache.
    key = encoding.digest(verify_public, message, signature)
    if key not in verified:
        identities.verify_signature(verify_public, message, signature)
        verified.add(key)


# --------------------------------------------------------------------------------------
# Header
# --------------------------------------------------------------------------------------


def header_message(header: Header) -> bytes:
    """What the header's self-signature covers."""
    return encoding.signed_message(
        "vault_header",
        header.vault_id,
        header.format_version,
        header.created_at,
        header.encryption_public,
        header.verify_public,
    )


def check_header(header: _H | None) -> _H:
    """``header`` after checking it is there, of this format version and self-signed.

    :raises IntegrityError: when it is missing or damaged.
    :raises UnsupportedFormat: for another format version.
    """
    if header is None:
        raise IntegrityError("damaged vault: the header is missing")
    check_types(header, "vault_header")
    if header.format_version != encoding.FORMAT_VERSION:
        raise UnsupportedFormat(
            f"vault format version {header.format_version} is not supported by this exvault "
            f"(it reads version {encoding.FORMAT_VERSION})"
        )
    verify_header(header)
    return header


def verify_header(header: Header) -> None:
    """Check the header's self-signature (detects damage, not a wholesale replacement).

    :raises IntegrityError: when it does not verify, or a column holds another type.
    """
    check_types(header, "vault_header")
    _verify(header.verify_public, header_message(header), header.signature, None)


# --------------------------------------------------------------------------------------
# Versions
# --------------------------------------------------------------------------------------


def metadata_of(row: Version) -> CredentialMetadata:
    """The metadata stored in a version row.

    :raises IntegrityError: when a date column is not a date (the row was edited).
    """
    return metadata_from_columns(
        row.name,
        row.exchange,
        row.permissions,
        row.ips,
        row.issued_on,
        row.expires_on,
        row.endpoint,
    )


def metadata_from_columns(
    name: str,
    exchange: str,
    permissions: str,
    ips: str,
    issued_on: str,
    expires_on: str | None,
    endpoint: str | None = None,
) -> CredentialMetadata:
    """The metadata stored in the columns of a version row (as bulk queries read them).

    :raises IntegrityError: when a date column is not a date, or the endpoint column
        spells ``live`` (stored as NULL: a second spelling of one digest) (the row was
        edited).
    """
    if endpoint == LIVE:
        raise IntegrityError()
    try:
        issued = _strict_date(issued_on)
        expires = _strict_date(expires_on) if expires_on is not None else None
    except (TypeError, ValueError):
        raise IntegrityError() from None
    return CredentialMetadata(
        name=name,
        exchange=exchange,
        permissions=split_list(permissions),
        ips=split_list(ips),
        issued_on=issued,
        expires_on=expires,
        endpoint=LIVE if endpoint is None else endpoint,
    )


_DATE = re.compile(r"\d{4}-\d{2}-\d{2}", re.ASCII)


def stored_date(text: str) -> date:
    """A date column as the writer stored it (YYYY-MM-DD exactly).

    :raises IntegrityError: for anything else (the row was edited).
    """
    try:
        return _strict_date(text)
    except (TypeError, ValueError):
        raise IntegrityError() from None


def _strict_date(text: str) -> date:
    # Only the exact form the writer produced: Python 3.11's fromisoformat also takes
    # "20240115", which would let a date be respelled without changing its digest.
    if not isinstance(text, str) or not _DATE.fullmatch(text):
        raise ValueError(text)
    return date.fromisoformat(text)


def payload_ad(vault_id: bytes, credential_id: str, version: int, meta_digest: bytes) -> bytes:
    """AD of a version's payload ciphertext."""
    return encoding.associated_data("payloads", vault_id, credential_id, version, meta_digest)


def wrap_ad(
    vault_id: bytes, credential_id: str, version: int, recipient: Recipient, meta_digest: bytes
) -> bytes:
    """AD of a version's data key wrapped for ``recipient``."""
    return encoding.associated_data(
        "dek_wraps", vault_id, credential_id, version, recipient.column, meta_digest
    )


def payload_digest(nonce: bytes, ciphertext: bytes) -> bytes:
    """The digest of a payload ciphertext that the version signature covers."""
    return encoding.digest(b"exvault-payload", nonce, ciphertext)


def version_message(vault_id: bytes, row: Version, meta_digest: bytes | None = None) -> bytes:
    """What a version's signature covers: its identity, metadata digest and payload digest.

    ``meta_digest``: the digest of the metadata the writer has just sealed (its own, not
    read back); a reader leaves it out, and the row's columns give it.
    """
    return encoding.signed_message(
        "credential_version",
        vault_id,
        row.credential_id,
        row.version,
        meta_digest if meta_digest is not None else metadata_of(row).digest(),
        row.created_at,
        row.api_key_fingerprint,
        row.payload_digest,
    )


def verify_version(
    verify_public: bytes,
    vault_id: bytes,
    row: Version,
    *,
    verified: set[bytes] | None = None,
) -> None:
    """Check a version's signature (once per ``verified`` cache, when one is given).

    :raises IntegrityError: when the row was forged or edited.
    """
    check_types(row, "credential_versions")
    _verify(verify_public, version_message(vault_id, row), row.signature, verified)


class SealedVersion(NamedTuple):
    """The rows of a newly sealed version, its data key for wrapping to more recipients,
    and the stage digest a head labelling it holds (:func:`version_digest`).

    A named tuple, not a dataclass: a bot's process imports this module (see
    :mod:`vault.format.schema`)."""

    version: schema.VersionRow
    payload: schema.PayloadRow
    dek: bytes
    meta_digest: bytes
    stage_digest: bytes

    def __repr__(self) -> str:
        # Never the data key.
        return (
            f"SealedVersion(version={self.version!r}, payload={self.payload!r}, "
            f"meta_digest={self.meta_digest!r}, stage_digest={self.stage_digest!r})"
        )


def seal_version(
    identity: RootKeys,
    vault_id: bytes,
    credential_id: str,
    version: int,
    metadata: CredentialMetadata,
    payload: Mapping[str, str],
    created_at: int,
) -> SealedVersion:
    """Encrypt ``payload`` under a fresh DEK and sign the new version row.

    The rows are plain (:mod:`vault.format.schema`): the owner's unit of work inserts them.
    """
    meta_digest = metadata.digest()
    dek = aead.random_key()
    nonce, ciphertext = aead.seal(
        dek, encode_payload(payload), payload_ad(vault_id, credential_id, version, meta_digest)
    )
    unsigned = schema.VersionRow(
        credential_id=credential_id,
        version=version,
        name=metadata.name,
        exchange=metadata.exchange,
        permissions=join_list(metadata.permissions),
        ips=join_list(metadata.ips),
        issued_on=metadata.issued_on.isoformat(),
        expires_on=metadata.expires_on.isoformat() if metadata.expires_on else None,
        created_at=created_at,
        api_key_fingerprint=identity.keyed_fingerprint("api_key", payload.get("api_key", "")),
        payload_digest=payload_digest(nonce, ciphertext),
        signature=b"",  # the signature covers the other columns, not itself
        endpoint=metadata.stored_endpoint,
    )
    message = version_message(vault_id, unsigned, meta_digest)
    return SealedVersion(
        version=unsigned._replace(signature=identity.sign(message)),
        payload=schema.PayloadRow(
            credential_id=credential_id, version=version, nonce=nonce, ciphertext=ciphertext
        ),
        dek=dek,
        meta_digest=meta_digest,
        stage_digest=version_digest(message),
    )


def wrap_dek(
    dek: bytes,
    vault_id: bytes,
    row: Version,
    recipient: Recipient,
    recipient_public: bytes,
    meta_digest: bytes | None = None,
) -> schema.WrapRow:
    """Wrap a version's DEK for one recipient (the root key or a client); ``meta_digest``
    as for :func:`version_message`. A plain row, for the owner's unit of work to insert."""
    if meta_digest is None:
        meta_digest = metadata_of(row).digest()
    wrapped = keywrap.wrap_for_recipient(
        dek,
        recipient_public,
        wrap_ad(vault_id, row.credential_id, row.version, recipient, meta_digest),
    )
    return schema.WrapRow(
        credential_id=row.credential_id,
        version=row.version,
        recipient=recipient.column,
        ephemeral_public=wrapped.ephemeral_public,
        body=wrapped.body,
    )


def unwrap_dek(
    vault_id: bytes,
    row: Version,
    wrap: Wrap,
    recipient_private: X25519PrivateKey,
) -> bytes:
    """Recover a version's DEK from a wrap made for ``recipient_private``.

    :raises IntegrityError: when the wrap is not for this key, or row or wrap was altered.
    """
    wrapped, ad = _wrapped_key(vault_id, row, wrap)
    return keywrap.unwrap_from_recipient(wrapped, recipient_private, ad)


def unwrap_root_dek(vault_id: bytes, row: Version, wrap: Wrap, identity: RootKeys) -> bytes:
    """Recover a version's DEK from its wrap for the root recipient, with the root keys
    (held here or by an unlock agent).

    :raises IntegrityError: when the wrap is not for the root key, or row or wrap was altered.
    """
    wrapped, ad = _wrapped_key(vault_id, row, wrap)
    return identity.unwrap(wrapped, ad)


def _wrapped_key(vault_id: bytes, row: Version, wrap: Wrap) -> tuple[WrappedKey, bytes]:
    # The wrap and the associated data that binds it to its version and recipient.
    check_types(wrap, "dek_wraps")
    if wrap.credential_id != row.credential_id or wrap.version != row.version:
        raise IntegrityError()
    ad = wrap_ad(
        vault_id,
        row.credential_id,
        row.version,
        Recipient.stored(wrap.recipient),
        metadata_of(row).digest(),
    )
    return WrappedKey(wrap.ephemeral_public, wrap.body), ad


def open_payload(vault_id: bytes, row: Version, payload: Payload, dek: bytes) -> dict[str, str]:
    """Decrypt a version's payload with its DEK; the caller verified ``row`` already.

    :raises IntegrityError: when the ciphertext is not the one the signature covers,
        or fails authentication.
    """
    check_types(payload, "payloads")
    if payload.credential_id != row.credential_id or payload.version != row.version:
        raise IntegrityError()
    if not aead.constant_time_equal(
        payload_digest(payload.nonce, payload.ciphertext), row.payload_digest
    ):
        raise IntegrityError()
    plaintext = aead.unseal(
        dek,
        payload.nonce,
        payload.ciphertext,
        payload_ad(vault_id, row.credential_id, row.version, metadata_of(row).digest()),
    )
    return decode_payload(plaintext)


# --------------------------------------------------------------------------------------
# Credential heads
# --------------------------------------------------------------------------------------


HEAD_KIND = "credential-head"
"""The signed-message kind of a head from schema version 3 on (§7.3 of docs/format.md).

A new kind, not the older ``credential``: a head signed before the revision, the
version counter, the stage digests and the grantees existed can never be taken for
one that has them, nor the reverse."""


def head_message(vault_id: bytes, head: Head) -> bytes:
    """What a credential head's signature covers: name, revision, version counter, stage
    labels with the digests of the versions they name, policy, exposure and grantees."""
    return encoding.signed_message(
        HEAD_KIND,
        vault_id,
        head.id,
        head.name,
        head.revision,
        head.version_counter,
        head.created_at,
        head.updated_at,
        head.current_version,
        head.current_digest,
        head.pending_version,
        head.pending_digest,
        head.pending_since,
        head.previous_version,
        head.previous_digest,
        head.previous_until,
        head.policy,
        head.exposed_at,
        head.exposed_reason,
        head.grantees,
    )


def schema2_head_message(vault_id: bytes, head: Head) -> bytes:
    """What a head's signature covered up to schema version 2 (kind ``credential``):
    read only by the migration to version 3, which verifies it before re-signing."""
    return encoding.signed_message(
        "credential",
        vault_id,
        head.id,
        head.name,
        head.created_at,
        head.updated_at,
        head.current_version,
        head.pending_version,
        head.pending_since,
        head.previous_version,
        head.previous_until,
        head.policy,
        head.exposed_at,
        head.exposed_reason,
    )


def sign_head(identity: RootKeys, vault_id: bytes, head: CredentialRecord | EditableHead) -> None:
    """(Re-)sign a head after any change to it; its revision goes up by one.

    A new head is built with revision 0, so that it is signed as revision 1. Every
    signed state of a head has its own revision: a client that saw revision N refuses
    any older head put back (:class:`vault.runtime.client.ClientVault`).
    """
    head.revision += 1
    head.signature = identity.sign(head_message(vault_id, head))


def verify_head(
    verify_public: bytes,
    vault_id: bytes,
    head: Head,
    *,
    verified: set[bytes] | None = None,
) -> None:
    """Check a head's signature (once per ``verified`` cache, when one is given).

    :raises IntegrityError: when the row was forged or edited.
    """
    check_types(head, "credentials")
    _verify(verify_public, head_message(vault_id, head), head.signature, verified)


def check_head_name(head: Head, name: str) -> None:
    """Refuse a head found for ``name`` that is not named exactly ``name`` (a database
    that compares names case-insensitively, or otherwise loosely, returns another one).

    :raises IntegrityError: when the names differ.
    """
    if head.name != name:
        raise IntegrityError()


def version_digest(message: bytes) -> bytes:
    """What a head's stage digest holds: SHA-256 of a version's exact signed message
    (:func:`version_message`)."""
    return encoding.sha256(message)


def check_staged_version(
    verify_public: bytes,
    vault_id: bytes,
    head: Head,
    stage: str,
    row: Version,
    *,
    verified: set[bytes] | None = None,
) -> CredentialMetadata:
    """The metadata of ``row`` after checking it is exactly the version that ``head``
    (verified by the caller) labels ``stage``: the same credential and name, exactly the
    number the head names, the very row whose signed message the head's stage digest
    covers, and a valid signature.

    The one rule for "this version row is the one the head's stage names", used by the
    owner's reads, the clients' and ``exvault verify``: a different row with the same
    (credential, version), validly signed too (put back from an older copy), fails.

    :raises IntegrityError: when any of these does not hold.
    """
    check_types(row, "credential_versions")
    number = stages.number_at(head, stage)
    expected = stages.digest_at(head, stage)
    # Exact comparisons in Python: the SQL join that found the row may compare loosely.
    if number is None or expected is None or row.version != number or row.credential_id != head.id:
        raise IntegrityError()
    message = version_message(vault_id, row)
    if not aead.constant_time_equal(version_digest(message), expected):
        raise IntegrityError()
    _verify(verify_public, message, row.signature, verified)
    return check_metadata(row, head)


def split_grantees(head: Head) -> tuple[str, ...]:
    """The ids of the clients a head's signed grantee set names."""
    return split_list(head.grantees)


def join_grantees(client_ids: Collection[str]) -> str:
    """A head's ``grantees`` column for these client ids: sorted, comma-joined."""
    return ",".join(sorted(set(client_ids)))


def check_metadata(row: Version, head: Head) -> CredentialMetadata:
    """The metadata of a version, after checking it belongs to ``head``'s credential.

    :raises IntegrityError: when the row names another credential.
    """
    meta = metadata_of(row)
    if row.credential_id != head.id or meta.name != head.name:
        raise IntegrityError()
    return meta


# --------------------------------------------------------------------------------------
# Clients and grants
# --------------------------------------------------------------------------------------


def client_message(vault_id: bytes, client: Client) -> bytes:
    """What a client record's signature covers: keys, expiry, scope, revocation."""
    return encoding.signed_message(
        "client",
        vault_id,
        client.id,
        client.name,
        client.encryption_public,
        client.verify_public,
        client.created_at,
        client.expires_at,
        client.max_scope,
        client.revoked_at,
    )


def sign_client(identity: RootKeys, vault_id: bytes, client: ClientRecord | EditableClient) -> None:
    """(Re-)sign a client record after any change to it."""
    client.signature = identity.sign(client_message(vault_id, client))


def verify_client(verify_public: bytes, vault_id: bytes, client: Client) -> None:
    """Check a client record's signature.

    :raises IntegrityError: when the row was forged or edited.
    """
    check_types(client, "clients")
    _verify(verify_public, client_message(vault_id, client), client.signature, None)


def grant_message(vault_id: bytes, grant: Grant) -> bytes:
    """What a grant's signature covers."""
    return encoding.signed_message(
        "grant", vault_id, grant.client_id, grant.credential_id, grant.created_at
    )


def sign_grant(identity: RootKeys, vault_id: bytes, grant: GrantRecord) -> None:
    """Sign a new grant."""
    grant.signature = identity.sign(grant_message(vault_id, grant))


def signed_grant(
    identity: RootKeys, vault_id: bytes, client_id: str, credential_id: str, created_at: int
) -> GrantRow:
    """A new grant of ``credential_id`` to ``client_id``, signed, as a plain row."""
    unsigned = schema.GrantRow(client_id, credential_id, created_at, b"")
    return unsigned._replace(signature=identity.sign(grant_message(vault_id, unsigned)))


def verify_grant(verify_public: bytes, vault_id: bytes, grant: Grant) -> None:
    """Check a grant's signature.

    :raises IntegrityError: when the row was forged or edited.
    """
    check_types(grant, "grants")
    _verify(verify_public, grant_message(vault_id, grant), grant.signature, None)


__all__ = [
    "HEAD_KIND",
    "SealedVersion",
    "check_head_name",
    "check_header",
    "check_metadata",
    "check_staged_version",
    "check_types",
    "client_message",
    "grant_message",
    "head_message",
    "header_message",
    "join_grantees",
    "metadata_of",
    "new_record_id",
    "open_payload",
    "schema2_head_message",
    "seal_version",
    "sign_client",
    "sign_grant",
    "sign_head",
    "signed_grant",
    "split_grantees",
    "type_damage",
    "unwrap_dek",
    "unwrap_root_dek",
    "verify_client",
    "verify_grant",
    "verify_head",
    "verify_header",
    "verify_version",
    "version_digest",
    "wrap_dek",
]
