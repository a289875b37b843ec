"""The tables of a vault, as SQLAlchemy maps them: every table's columns, keys,
indexes and foreign keys (docs/format.md section 4).

:class:`Base`'s metadata is what a new vault's ``create_all`` makes and what
:mod:`vault.db.schema_check` compares a live database against; the records are the
rows the owner's code reads and writes through the ORM. The PostgreSQL-only head row
of the audit chain is in :mod:`vault.db.postgres`.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, ForeignKeyConstraint, Index, Integer, LargeBinary, String, Text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class Base(DeclarativeBase):
    """Declarative base of every exvault table.

    Times are whole seconds since the Unix epoch, UTC, in 64-bit columns.
    """


class SchemaInfo(Base):
    """One row: the schema version of this database."""

    __tablename__ = "exvault_schema"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    schema_version: Mapped[int] = mapped_column(Integer)


class HeaderRecord(Base):
    """One row: format version, vault id and the root public keys, self-signed."""

    __tablename__ = "vault_header"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    format_version: Mapped[int] = mapped_column(Integer)
    vault_id: Mapped[bytes] = mapped_column(LargeBinary(16))
    created_at: Mapped[int] = mapped_column(BigInteger)
    encryption_public: Mapped[bytes] = mapped_column(LargeBinary(32))
    verify_public: Mapped[bytes] = mapped_column(LargeBinary(32))
    signature: Mapped[bytes] = mapped_column(LargeBinary(64))


class KeyslotRecord(Base):
    """The root private keys wrapped under a passphrase (Argon2id) or a recovery key."""

    __tablename__ = "keyslots"
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))
    salt: Mapped[bytes] = mapped_column(LargeBinary(16))
    kdf_time_cost: Mapped[int | None] = mapped_column(Integer)
    kdf_memory_kib: Mapped[int | None] = mapped_column(Integer)
    kdf_parallelism: Mapped[int | None] = mapped_column(Integer)
    nonce: Mapped[bytes] = mapped_column(LargeBinary(12))
    wrapped: Mapped[bytes] = mapped_column(LargeBinary(80))
    created_at: Mapped[int] = mapped_column(BigInteger)
    # The root key's signature over the columns above (schema version 5; NULL only in a
    # row that the version 5 migration did not sign, which the owner's unlock refuses).
    signature: Mapped[bytes | None] = mapped_column(LargeBinary(64))


class CredentialRecord(Base):
    """A credential's head: its name, stage labels, policy and exposure; signed.

    The columns after ``signature`` came with schema version 3 (a migration adds them
    at the end of the table; declared in that order, a new vault's table is the same):
    the head's revision, its version counter, the digest of the version each stage
    names, and the signed set of the clients granted it.
    """

    __tablename__ = "credentials"
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(128), unique=True)
    created_at: Mapped[int] = mapped_column(BigInteger)
    updated_at: Mapped[int] = mapped_column(BigInteger)
    current_version: Mapped[int | None] = mapped_column(Integer)
    pending_version: Mapped[int | None] = mapped_column(Integer)
    pending_since: Mapped[int | None] = mapped_column(BigInteger)
    previous_version: Mapped[int | None] = mapped_column(Integer)
    previous_until: Mapped[int | None] = mapped_column(BigInteger)
    policy: Mapped[str] = mapped_column(Text, default="{}")
    exposed_at: Mapped[int | None] = mapped_column(BigInteger)
    exposed_reason: Mapped[str | None] = mapped_column(Text)
    signature: Mapped[bytes] = mapped_column(LargeBinary(64))
    revision: Mapped[int] = mapped_column(Integer)
    version_counter: Mapped[int] = mapped_column(Integer)
    current_digest: Mapped[bytes | None] = mapped_column(LargeBinary(32))
    pending_digest: Mapped[bytes | None] = mapped_column(LargeBinary(32))
    previous_digest: Mapped[bytes | None] = mapped_column(LargeBinary(32))
    grantees: Mapped[str] = mapped_column(Text)


class VersionRecord(Base):
    """One version of a credential: its metadata snapshot and payload digest; signed.

    The encrypted payload lives in :class:`PayloadRecord`, deleted when the version
    loses its last stage label, so the history keeps dates and metadata but no
    ciphertext.
    """

    __tablename__ = "credential_versions"
    __table_args__ = (
        ForeignKeyConstraint(["credential_id"], ["credentials.id"], ondelete="CASCADE"),
    )
    credential_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    version: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(128))
    exchange: Mapped[str] = mapped_column(String(64))
    permissions: Mapped[str] = mapped_column(Text)
    ips: Mapped[str] = mapped_column(Text)
    issued_on: Mapped[str] = mapped_column(String(10))
    expires_on: Mapped[str | None] = mapped_column(String(10))
    created_at: Mapped[int] = mapped_column(BigInteger)
    api_key_fingerprint: Mapped[bytes] = mapped_column(LargeBinary(16))
    payload_digest: Mapped[bytes] = mapped_column(LargeBinary(32))
    signature: Mapped[bytes] = mapped_column(LargeBinary(64))


class PayloadRecord(Base):
    """The AES-256-GCM ciphertext of one version's secret fields."""

    __tablename__ = "payloads"
    __table_args__ = (
        ForeignKeyConstraint(
            ["credential_id", "version"],
            ["credential_versions.credential_id", "credential_versions.version"],
            ondelete="CASCADE",
        ),
    )
    credential_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    version: Mapped[int] = mapped_column(Integer, primary_key=True)
    nonce: Mapped[bytes] = mapped_column(LargeBinary(12))
    ciphertext: Mapped[bytes] = mapped_column(LargeBinary)


class WrapRecord(Base):
    """A version's data key wrapped for one recipient (``root`` or a client id)."""

    __tablename__ = "dek_wraps"
    __table_args__ = (
        ForeignKeyConstraint(
            ["credential_id", "version"],
            ["credential_versions.credential_id", "credential_versions.version"],
            ondelete="CASCADE",
        ),
    )
    credential_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    version: Mapped[int] = mapped_column(Integer, primary_key=True)
    recipient: Mapped[str] = mapped_column(String(32), primary_key=True)
    ephemeral_public: Mapped[bytes] = mapped_column(LargeBinary(32))
    body: Mapped[bytes] = mapped_column(LargeBinary(48))


class ClientRecord(Base):
    """A client identity (one program): its public keys, expiry, maximum scope; signed."""

    __tablename__ = "clients"
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(128), unique=True)
    encryption_public: Mapped[bytes] = mapped_column(LargeBinary(32))
    verify_public: Mapped[bytes] = mapped_column(LargeBinary(32))
    created_at: Mapped[int] = mapped_column(BigInteger)
    expires_at: Mapped[int | None] = mapped_column(BigInteger)
    max_scope: Mapped[str] = mapped_column(Text)
    revoked_at: Mapped[int | None] = mapped_column(BigInteger)
    signature: Mapped[bytes] = mapped_column(LargeBinary(64))


class GrantRecord(Base):
    """A client's right to read a credential (every version written while it lasts); signed."""

    __tablename__ = "grants"
    __table_args__ = (
        ForeignKeyConstraint(["client_id"], ["clients.id"], ondelete="CASCADE"),
        ForeignKeyConstraint(["credential_id"], ["credentials.id"], ondelete="CASCADE"),
    )
    client_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    credential_id: Mapped[str] = mapped_column(String(32), primary_key=True, index=True)
    created_at: Mapped[int] = mapped_column(BigInteger)
    signature: Mapped[bytes] = mapped_column(LargeBinary(64))


class AuditRecord(Base):
    """One entry of the hash-chained audit log; never holds a secret value.

    ``entry_hash`` covers every other column and ``prev_hash``; ``signature`` (by the
    vault key for the owner's actions, by the client's key for a client's) covers
    ``entry_hash``. Anonymous failures (a wrong passphrase, a bad token) are unsigned.
    """

    __tablename__ = "audit_log"
    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    at: Mapped[int] = mapped_column(BigInteger, index=True)
    actor: Mapped[str] = mapped_column(String(160))
    host: Mapped[str] = mapped_column(String(255))
    pid: Mapped[int] = mapped_column(Integer)
    action: Mapped[str] = mapped_column(String(64))
    credential: Mapped[str | None] = mapped_column(String(128), index=True)
    version: Mapped[int | None] = mapped_column(Integer)
    outcome: Mapped[str] = mapped_column(String(16))
    detail: Mapped[str] = mapped_column(Text, default="")
    prev_hash: Mapped[bytes] = mapped_column(LargeBinary(32))
    entry_hash: Mapped[bytes] = mapped_column(LargeBinary(32))
    signer: Mapped[str | None] = mapped_column(String(32))
    signature: Mapped[bytes | None] = mapped_column(LargeBinary(64))



AUDIT_READS_INDEX = Index(
    "ix_audit_log_reads", AuditRecord.action, AuditRecord.credential, AuditRecord.at
)
"""Serves ``check``'s "last read of each credential" query (schema version 2)."""



__all__ = [
    "AUDIT_READS_INDEX",
    "AuditRecord",
    "Base",
    "ClientRecord",
    "CredentialRecord",
    "GrantRecord",
    "HeaderRecord",
    "KeyslotRecord",
    "PayloadRecord",
    "SchemaInfo",
    "VersionRecord",
    "WrapRecord",
]
