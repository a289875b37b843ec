"""Schema migrations: bringing a vault made by an older exvault up to date.

Each step of :data:`vault.db.schema_version.STEPS` is applied here. Migrations change
tables and indexes, and may re-sign records under a new signed-message kind (schema
version 3 does, for heads), but never change how payloads are sealed. The owner's
unlock applies pending migrations in one transaction, with the unlocked keys (a
migration that re-signs verifies first); readers (bots, ``check``) keep working on an
older schema as long as every pending step is marked compatible with them
(:func:`vault.db.schema_version.check_schema_version`), and otherwise are told to have
the owner run exvault once.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from typing import Any

from sqlalchemy import Table, bindparam, func, inspect, or_, select, text, update
from sqlalchemy.engine import Connection

from vault.db.keyslots import sign_stored_slots
from vault.db.postgres import install_audit_head
from vault.db.schema_version import OwnerKeys, pending
from vault.db.tables import (
    AUDIT_READS_INDEX,
    JOURNAL,
    OBSERVATIONS,
    ClientRecord,
    CredentialRecord,
    GrantRecord,
    KeyslotRecord,
    SchemaInfo,
    VersionRecord,
)
from vault.errors import IntegrityError
from vault.format import identities, records, stages
from vault.format.schema import ClientRow, HeadRow, VersionRow


def _audit_reads_index(conn: Connection, _owner: OwnerKeys) -> None:
    AUDIT_READS_INDEX.create(conn, checkfirst=True)


# The columns schema version 3 adds to the heads, in order, with the value a column
# NOT NULL must be added with (each row is then rewritten and re-signed).
_HEAD_COLUMNS_V3 = (
    ("revision", "0"),
    ("version_counter", "0"),
    ("current_digest", None),
    ("pending_digest", None),
    ("previous_digest", None),
    ("grantees", "''"),
)


def _signed_heads(conn: Connection, owner: OwnerKeys) -> None:
    # Schema version 3: heads carry a revision, a version counter, the digest of the
    # version each stage names and the signed set of their grantees, signed under a new
    # kind. Every value comes from rows verified now, with the owner's key.
    heads = CredentialRecord.__table__
    versions = VersionRecord.__table__
    assert isinstance(heads, Table) and isinstance(versions, Table)
    # The schema version row is not authenticated: set back by hand, it makes this step
    # run again. Then it must do nothing at all: re-signing heads would turn a head put
    # back from before version 3 (signed under the old kind) into a valid one, and break
    # every head whose revision is past 1. Its columns say it has run.
    present = {c["name"] for c in inspect(conn).get_columns("credentials")}
    if all(name in present for name, _value in _HEAD_COLUMNS_V3):
        return
    for name, value in _HEAD_COLUMNS_V3:
        if name in present:
            continue
        kind = heads.c[name].type.compile(dialect=conn.dialect)
        not_null = f" NOT NULL DEFAULT {value}" if value is not None else ""
        conn.exec_driver_sql(f"ALTER TABLE credentials ADD COLUMN {name} {kind}{not_null}")
    highest = {
        credential_id: number
        for credential_id, number in conn.execute(
            select(versions.c.credential_id, func.max(versions.c.version)).group_by(
                versions.c.credential_id
            )
        )
    }
    # The version columns of this schema: a later step adds more (endpoint, version 6).
    stored = {c["name"] for c in inspect(conn).get_columns("credential_versions")}
    labelled = {
        (row.credential_id, row.version): VersionRow(**row._mapping)
        for row in conn.execute(
            select(*(c for c in versions.c if c.name in stored))
            .join(heads, heads.c.id == versions.c.credential_id)
            .where(
                or_(
                    versions.c.version == heads.c.current_version,
                    versions.c.version == heads.c.pending_version,
                    versions.c.version == heads.c.previous_version,
                )
            )
        )
    }
    granted = _verified_grantees(
        owner,
        [ClientRow(**row._mapping) for row in conn.execute(select(ClientRecord.__table__))],
        [GrantRecord(**row._mapping) for row in conn.execute(select(GrantRecord.__table__))],
    )
    changes = [
        _signed_head(owner, head, highest.get(head.id), labelled, granted.get(head.id, ()))
        for head in (HeadRow(**row._mapping) for row in conn.execute(select(heads)))
    ]
    if changes:
        conn.execute(
            update(heads)
            .where(heads.c.id == bindparam("head_id"))
            .values(
                {
                    name: bindparam(f"new_{name}")
                    for name, _ in (*_HEAD_COLUMNS_V3, ("signature", None))
                }
            ),
            changes,
        )


def _verified_grantees(
    owner: OwnerKeys, clients: list[ClientRow], grants: list[GrantRecord]
) -> dict[str, list[str]]:
    # Credential id -> the clients holding a grant that verifies, of a client record that
    # verifies and is not revoked: what the writer wrapped new versions for until now.
    usable = set()
    for client in clients:
        try:
            records.verify_client(owner.verify_public, owner.vault_id, client)
        except IntegrityError:
            continue
        if client.revoked_at is None:
            usable.add(client.id)
    out: dict[str, list[str]] = {}
    for grant in grants:
        try:
            records.verify_grant(owner.verify_public, owner.vault_id, grant)
        except IntegrityError:
            continue
        if grant.client_id in usable:
            out.setdefault(grant.credential_id, []).append(grant.client_id)
    return out


def _signed_head(
    owner: OwnerKeys,
    head: HeadRow,
    highest: object,
    labelled: dict[tuple[str, int], VersionRow],
    grantees: Collection[str],
) -> dict[str, object]:
    # The new columns of one head, re-signed when its schema-2 signature verifies; a
    # head that does not verify keeps its old signature, which no reader accepts under
    # the new kind: it stays as damaged as it was.
    values = head._asdict()
    values.update(revision=1, grantees=records.join_grantees(grantees))
    numbers = [values[stages.version_column(stage)] for stage in stages.STAGES]
    counts = [n for n in (highest, *numbers) if type(n) is int]
    values["version_counter"] = max(counts, default=0)
    for stage, number in zip(stages.STAGES, numbers, strict=True):
        values[stages.digest_column(stage)] = (
            None if number is None else _stage_digest(owner, head, labelled.get((head.id, number)))
        )
    try:
        records.check_types(head, "credentials")
        identities.verify_signature(
            owner.verify_public, records.schema2_head_message(owner.vault_id, head), head.signature
        )
    except (IntegrityError, TypeError, ValueError):
        pass
    else:
        new = HeadRow(**values)
        values["signature"] = owner.identity.sign(records.head_message(owner.vault_id, new))
    out: dict[str, object] = {f"new_{name}": values[name] for name, _ in _HEAD_COLUMNS_V3}
    out["new_signature"] = values["signature"]
    out["head_id"] = head.id
    return out


def _stage_digest(owner: OwnerKeys, head: HeadRow, row: VersionRow | None) -> bytes:
    # The digest of a labelled version that verifies now; 32 zero bytes, which no row's
    # digest equals, for one that is missing or does not verify (it stays unreadable).
    if row is None:
        return bytes(32)
    try:
        records.verify_version(owner.verify_public, owner.vault_id, row)
        records.check_metadata(row, head)
        return records.version_digest(records.version_message(owner.vault_id, row))
    except IntegrityError:
        return bytes(32)


def _audit_head(conn: Connection, _owner: OwnerKeys) -> None:
    install_audit_head(conn)


def _signed_keyslots(conn: Connection, owner: OwnerKeys) -> None:
    # Schema version 5: every keyslot row signed by the root key (its KDF parameters
    # were unauthenticated, so a writer could lower them for the next passphrase).
    # Only once, when the column is added: a schema version set back by hand (the row
    # is not authenticated) must not sign a keyslot put back since (an old passphrase's).
    if any(c["name"] == "signature" for c in inspect(conn).get_columns("keyslots")):
        return
    column = KeyslotRecord.__table__.c.signature
    kind = column.type.compile(dialect=conn.dialect)
    conn.exec_driver_sql(f"ALTER TABLE keyslots ADD COLUMN signature {kind}")
    sign_stored_slots(_statements_on(conn), owner.vault_id, owner.identity.sign)


def _statements_on(conn: Connection) -> Callable[[str, Mapping[str, Any]], list[Any]]:
    # The statements of vault.db.queries (SQL text) on the migration's connection.
    def execute(sql: str, params: Mapping[str, Any]) -> list[Any]:
        result = conn.execute(text(sql), dict(params))
        return list(result.all()) if result.returns_rows else []

    return execute


def _endpoints_and_observations(conn: Connection, _owner: OwnerKeys) -> None:
    # Schema version 6. Existing versions get NULL, the live API, which leaves their
    # metadata digest (hence their signatures and AEAD data) as it was: nothing is
    # re-signed. Checked first, as above: the step may run again on a version set back.
    if not any(c["name"] == "endpoint" for c in inspect(conn).get_columns("credential_versions")):
        column = VersionRecord.__table__.c.endpoint
        kind = column.type.compile(dialect=conn.dialect)
        conn.exec_driver_sql(f"ALTER TABLE credential_versions ADD COLUMN endpoint {kind}")
    OBSERVATIONS.create(conn, checkfirst=True)


def _rotation_journal(conn: Connection, _owner: OwnerKeys) -> None:
    # Schema version 7: a new table, empty; nothing existing changes.
    JOURNAL.create(conn, checkfirst=True)


Apply = Callable[[Connection, "OwnerKeys"], None]
"""How one step changes a database, given the owner's unlocked keys."""

APPLY: dict[int, Apply] = {
    2: _audit_reads_index,
    3: _signed_heads,
    4: _audit_head,
    5: _signed_keyslots,
    6: _endpoints_and_observations,
    7: _rotation_journal,
}
"""How each step of :data:`vault.db.schema_version.STEPS` is applied, by the version it
brings the schema to."""


def upgrade(conn: Connection, owner: OwnerKeys, version: int) -> int:
    """Apply every step a schema at ``version`` still needs, in order, in the caller's
    transaction, moving ``exvault_schema`` after each; returns the new version.

    :raises IntegrityError: when a step finds a row it cannot use.
    """
    for step in pending(version):
        APPLY[step.to_version](conn, owner)
        conn.execute(update(SchemaInfo).values(schema_version=step.to_version))
        version = step.to_version
    return version


__all__ = ["APPLY", "Apply", "OwnerKeys", "upgrade"]
