"""The tables of a vault as SQLAlchemy sees them, generated from the one declaration
in :mod:`vault.format.schema`: the Core tables (DDL, migrations, schema comparison,
PostgreSQL) and the owner's records mapped onto them.

:class:`Base`'s metadata is what a new vault's ``create_all`` makes and what
:mod:`vault.db.schema_check` compares a live database against;
:data:`POSTGRESQL_METADATA` holds what only a PostgreSQL vault has. A record's
``Mapped`` annotations are for type checking only: the columns come from the table
(``tests/db/test_tables.py`` holds the annotations to the declaration). Its
``__table__`` keeps declarative's own type, ``FromClause``, as it had when the columns
were declared on the class.
"""

from __future__ import annotations

from typing import Any, ClassVar

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Column,
    ForeignKeyConstraint,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped
from sqlalchemy.sql import FromClause
from sqlalchemy.types import TypeEngine

from vault.format import schema


class Base(DeclarativeBase):
    """Declarative base of exvault's records; its metadata holds every table both
    backends have."""


POSTGRESQL_METADATA = MetaData()
"""Tables of the PostgreSQL backend only (schema version 4 on): SQLite has none of them."""


def _sql_type(column: schema.Column) -> TypeEngine[Any]:
    if column.python_type is int:
        return BigInteger() if column.wide else Integer()
    if column.python_type is str:
        return String(column.length) if column.length is not None else Text()
    if column.python_type is bytes:
        return LargeBinary(column.length)
    raise TypeError(f"no SQL type for {column.python_type!r} (column {column.name})")


def core_table(declared: schema.Table) -> Table:
    """The SQLAlchemy table of ``declared``, in the metadata of its backends.

    :raises TypeError: for a column of a Python type no SQL type stands for.
    """
    metadata = POSTGRESQL_METADATA if declared.postgresql_only else Base.metadata
    return Table(
        declared.name,
        metadata,
        *(
            Column(
                c.name,
                _sql_type(c),
                primary_key=c.primary_key,
                nullable=c.nullable,
                unique=c.unique or None,
                autoincrement="auto" if c.numbered else False,
                default=c.default,
            )
            for c in declared.columns
        ),
        *(
            ForeignKeyConstraint(
                list(fk.columns),
                [f"{fk.table}.{name}" for name in fk.referred_columns],
                ondelete=fk.on_delete,
            )
            for fk in declared.foreign_keys
        ),
        *(Index(index.name, *index.columns, unique=index.unique) for index in declared.indexes),
        *(CheckConstraint(condition) for condition in declared.checks),
    )


TABLES: dict[str, Table] = {name: core_table(t) for name, t in schema.TABLES.items()}
"""Every table by its name (see :data:`vault.format.schema.TABLES`)."""

AUDIT_HEAD = TABLES[schema.AUDIT_HEAD.name]
"""PostgreSQL: the audit chain's head row (see :mod:`vault.db.postgres`)."""

OBSERVATIONS = TABLES[schema.OBSERVATIONS.name]
"""Probe observations (schema version 6), written and read through Core statements."""
JOURNAL = TABLES[schema.JOURNAL.name]
"""Automated rotation's journal (schema version 7), through the statements of
:mod:`vault.db.queries`."""

AUDIT_READS_INDEX = next(
    index for index in TABLES[schema.AUDIT_LOG.name].indexes if index.name == "ix_audit_log_reads"
)
"""Serves ``check``'s "last read of each credential" query (schema version 2)."""


class SchemaInfo(Base):
    """One row: the schema version of this database."""

    __tablename__ = schema.SCHEMA_INFO.name
    __table__: ClassVar[FromClause] = TABLES[__tablename__]
    id: Mapped[int]
    schema_version: Mapped[int]


class HeaderRecord(Base):
    """One row: format version, vault id and the root public keys, self-signed."""

    __tablename__ = schema.HEADER.name
    __table__: ClassVar[FromClause] = TABLES[__tablename__]
    id: Mapped[int]
    format_version: Mapped[int]
    vault_id: Mapped[bytes]
    created_at: Mapped[int]
    encryption_public: Mapped[bytes]
    verify_public: Mapped[bytes]
    signature: Mapped[bytes]


class KeyslotRecord(Base):
    """The root private keys wrapped under a passphrase (Argon2id) or a recovery key."""

    __tablename__ = schema.KEYSLOTS.name
    __table__: ClassVar[FromClause] = TABLES[__tablename__]
    id: Mapped[str]
    kind: Mapped[str]
    salt: Mapped[bytes]
    kdf_time_cost: Mapped[int | None]
    kdf_memory_kib: Mapped[int | None]
    kdf_parallelism: Mapped[int | None]
    nonce: Mapped[bytes]
    wrapped: Mapped[bytes]
    created_at: Mapped[int]
    signature: Mapped[bytes | None]


class CredentialRecord(Base):
    """A credential's head: its name, stage labels, policy and exposure; signed.

    The columns after ``signature`` came with schema version 3 (a migration adds them
    at the end of the table; declared in that order, a new vault's table is the same):
    the head's revision, its version counter, the digest of the version each stage
    names, and the signed set of the clients granted it.
    """

    __tablename__ = schema.CREDENTIALS.name
    __table__: ClassVar[FromClause] = TABLES[__tablename__]
    id: Mapped[str]
    name: Mapped[str]
    created_at: Mapped[int]
    updated_at: Mapped[int]
    current_version: Mapped[int | None]
    pending_version: Mapped[int | None]
    pending_since: Mapped[int | None]
    previous_version: Mapped[int | None]
    previous_until: Mapped[int | None]
    policy: Mapped[str]
    exposed_at: Mapped[int | None]
    exposed_reason: Mapped[str | None]
    signature: Mapped[bytes]
    revision: Mapped[int]
    version_counter: Mapped[int]
    current_digest: Mapped[bytes | None]
    pending_digest: Mapped[bytes | None]
    previous_digest: Mapped[bytes | None]
    grantees: Mapped[str]


class VersionRecord(Base):
    """One version of a credential: its metadata snapshot and payload digest; signed.

    The encrypted payload lives in :class:`PayloadRecord`, deleted when the version
    loses its last stage label, so the history keeps dates and metadata but no
    ciphertext.
    """

    __tablename__ = schema.VERSIONS.name
    __table__: ClassVar[FromClause] = TABLES[__tablename__]
    credential_id: Mapped[str]
    version: Mapped[int]
    name: Mapped[str]
    exchange: Mapped[str]
    permissions: Mapped[str]
    ips: Mapped[str]
    issued_on: Mapped[str]
    expires_on: Mapped[str | None]
    created_at: Mapped[int]
    api_key_fingerprint: Mapped[bytes]
    payload_digest: Mapped[bytes]
    signature: Mapped[bytes]
    endpoint: Mapped[str | None]


class PayloadRecord(Base):
    """The AES-256-GCM ciphertext of one version's secret fields."""

    __tablename__ = schema.PAYLOADS.name
    __table__: ClassVar[FromClause] = TABLES[__tablename__]
    credential_id: Mapped[str]
    version: Mapped[int]
    nonce: Mapped[bytes]
    ciphertext: Mapped[bytes]


class WrapRecord(Base):
    """A version's data key wrapped for one recipient (``root`` or a client id)."""

    __tablename__ = schema.WRAPS.name
    __table__: ClassVar[FromClause] = TABLES[__tablename__]
    credential_id: Mapped[str]
    version: Mapped[int]
    recipient: Mapped[str]
    ephemeral_public: Mapped[bytes]
    body: Mapped[bytes]


class ClientRecord(Base):
    """A client identity (one program): its public keys, expiry, maximum scope; signed."""

    __tablename__ = schema.CLIENTS.name
    __table__: ClassVar[FromClause] = TABLES[__tablename__]
    id: Mapped[str]
    name: Mapped[str]
    encryption_public: Mapped[bytes]
    verify_public: Mapped[bytes]
    created_at: Mapped[int]
    expires_at: Mapped[int | None]
    max_scope: Mapped[str]
    revoked_at: Mapped[int | None]
    signature: Mapped[bytes]


class GrantRecord(Base):
    """A client's right to read a credential (every version written while it lasts); signed."""

    __tablename__ = schema.GRANTS.name
    __table__: ClassVar[FromClause] = TABLES[__tablename__]
    client_id: Mapped[str]
    credential_id: Mapped[str]
    created_at: Mapped[int]
    signature: Mapped[bytes]


class AuditRecord(Base):
    """One entry of the hash-chained audit log; never holds a secret value.

    ``entry_hash`` covers every other column and ``prev_hash``; ``signature`` (by the
    vault key for the owner's actions, by the client's key for a client's) covers
    ``entry_hash``. Anonymous failures (a wrong passphrase, a bad token) are unsigned.
    """

    __tablename__ = schema.AUDIT_LOG.name
    __table__: ClassVar[FromClause] = TABLES[__tablename__]
    seq: Mapped[int]
    at: Mapped[int]
    actor: Mapped[str]
    host: Mapped[str]
    pid: Mapped[int]
    action: Mapped[str]
    credential: Mapped[str | None]
    version: Mapped[int | None]
    outcome: Mapped[str]
    detail: Mapped[str]
    prev_hash: Mapped[bytes]
    entry_hash: Mapped[bytes]
    signer: Mapped[str | None]
    signature: Mapped[bytes | None]


__all__ = [
    "AUDIT_HEAD",
    "AUDIT_READS_INDEX",
    "JOURNAL",
    "OBSERVATIONS",
    "POSTGRESQL_METADATA",
    "TABLES",
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
    "core_table",
]
