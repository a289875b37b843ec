"""The tables of a vault, declared once in plain Python: each table's name, its
columns (name, Python type, nullability, size) in order, keys, indexes, foreign keys
and checks, as docs/format.md section 4 describes them.

The tables ARE the format: a second reader needs them exactly. Everything else is
generated from this declaration: the SQLAlchemy tables of :mod:`vault.db.tables`
(DDL, migrations, schema comparison, the owner's records) and the value types every
reader checks a stored row against (:func:`vault.format.records.type_damage`). The
named-tuple rows below are what a bot's direct :mod:`sqlite3` path returns; they are
classes, not generated, so that mypy checks attribute access on them, and
``tests/format/test_schema.py`` holds them to the declaration.

Times are whole seconds since the Unix epoch, UTC, in 64-bit columns.
"""

# Annotations are not postponed here (no `from __future__ import annotations`):
# typing.NamedTuple compiles each postponed (string) field annotation when its class
# is built, about 10 µs each, and every command and bot builds these at start.
from typing import NamedTuple


class Column(NamedTuple):
    """One column: its name and the Python type of its values (``int``, ``str`` or
    ``bytes``), whether it may be NULL, and its SQL size.

    Named tuples, not dataclasses, here: a bot's process imports this module, and
    building dataclasses costs it several milliseconds more at start."""

    name: str
    python_type: type
    nullable: bool = False
    length: int | None = None
    """Text: at most this many characters (VARCHAR), else unbounded (TEXT); a blob: its
    size in bytes as declared (SQLite does not enforce it)."""
    wide: bool = False
    """An integer of 64 bits (BIGINT): the times."""
    primary_key: bool = False
    unique: bool = False
    numbered: bool = True
    """For a lone integer primary key: whether the database may number new rows
    (``SERIAL`` on PostgreSQL). The audit log numbers its own entries."""
    default: str | None = None
    """The value a new row gets when the writer gives none (the writer's, not SQL's)."""


def integer(name: str, *, nullable: bool = False, primary_key: bool = False) -> Column:
    """An INTEGER column."""
    return Column(name, int, nullable=nullable, primary_key=primary_key)


def time(name: str, *, nullable: bool = False) -> Column:
    """A time: seconds since the epoch in a BIGINT column."""
    return Column(name, int, nullable=nullable, wide=True)


def text(
    name: str,
    length: int | None = None,
    *,
    nullable: bool = False,
    primary_key: bool = False,
    unique: bool = False,
    default: str | None = None,
) -> Column:
    """A text column: VARCHAR(``length``), or TEXT without one."""
    return Column(
        name,
        str,
        nullable=nullable,
        length=length,
        primary_key=primary_key,
        unique=unique,
        default=default,
    )


def blob(name: str, length: int | None = None, *, nullable: bool = False) -> Column:
    """A blob column of ``length`` bytes (any length without one)."""
    return Column(name, bytes, nullable=nullable, length=length)


class ForeignKey(NamedTuple):
    """``columns`` refer to ``referred_columns`` of ``table``; deleting that row deletes
    this one (``ON DELETE CASCADE``)."""

    columns: tuple[str, ...]
    table: str
    referred_columns: tuple[str, ...]
    on_delete: str = "CASCADE"


class Index(NamedTuple):
    """A named index over ``columns``, in order."""

    name: str
    columns: tuple[str, ...]
    unique: bool = False


class Table(NamedTuple):
    """One table: its name, columns in order, and its other constraints."""

    name: str
    columns: tuple[Column, ...]
    foreign_keys: tuple[ForeignKey, ...] = ()
    indexes: tuple[Index, ...] = ()
    checks: tuple[str, ...] = ()
    """SQL CHECK conditions (none so far)."""
    postgresql_only: bool = False
    """A table of the PostgreSQL backend only (schema version 4 on)."""

    @property
    def primary_key(self) -> tuple[str, ...]:
        """The names of the primary key's columns, in order."""
        return tuple(c.name for c in self.columns if c.primary_key)

    @property
    def column_names(self) -> tuple[str, ...]:
        """Every column's name, in order."""
        return tuple(c.name for c in self.columns)


def _id(name: str = "id") -> Column:
    # Record ids are 32 hex digits (records.new_record_id); keys of a singleton row are 1.
    return text(name, 32, primary_key=True)


def _signature(*, nullable: bool = False) -> Column:
    return blob("signature", 64, nullable=nullable)


def _version_key() -> tuple[Column, Column]:
    return _id("credential_id"), integer("version", primary_key=True)


_OF_VERSION = ForeignKey(
    ("credential_id", "version"), "credential_versions", ("credential_id", "version")
)

SCHEMA_INFO = Table(
    "exvault_schema",
    (integer("id", primary_key=True), integer("schema_version")),
)
"""One row: the schema version of this database."""

HEADER = Table(
    "vault_header",
    (
        integer("id", primary_key=True),
        integer("format_version"),
        blob("vault_id", 16),
        time("created_at"),
        blob("encryption_public", 32),
        blob("verify_public", 32),
        _signature(),
    ),
)
"""One row: format version, vault id and the root public keys, self-signed."""

KEYSLOTS = Table(
    "keyslots",
    (
        _id(),
        text("kind", 16),
        blob("salt", 16),
        integer("kdf_time_cost", nullable=True),
        integer("kdf_memory_kib", nullable=True),
        integer("kdf_parallelism", nullable=True),
        blob("nonce", 12),
        blob("wrapped", 80),
        time("created_at"),
        # The root key's signature over the columns above (schema version 5; NULL only
        # in a row that the version 5 migration did not sign, which the unlock refuses).
        _signature(nullable=True),
    ),
)
"""The root private keys wrapped under a passphrase (Argon2id) or a recovery key."""

CREDENTIALS = Table(
    "credentials",
    (
        _id(),
        text("name", 128, unique=True),
        time("created_at"),
        time("updated_at"),
        integer("current_version", nullable=True),
        integer("pending_version", nullable=True),
        time("pending_since", nullable=True),
        integer("previous_version", nullable=True),
        time("previous_until", nullable=True),
        text("policy", default="{}"),
        time("exposed_at", nullable=True),
        text("exposed_reason", nullable=True),
        _signature(),
        # Schema version 3 added the columns below at the end of the table (a migration
        # adds them there; declared in that order, a new vault's table is the same).
        integer("revision"),
        integer("version_counter"),
        blob("current_digest", 32, nullable=True),
        blob("pending_digest", 32, nullable=True),
        blob("previous_digest", 32, nullable=True),
        text("grantees"),
    ),
)
"""A credential's head: its name, stage labels, policy and exposure; signed. Then the
head's revision, its version counter, the digest of the version each stage names, and
the signed set of the clients granted it."""

VERSIONS = Table(
    "credential_versions",
    (
        *_version_key(),
        text("name", 128),
        text("exchange", 64),
        text("permissions"),
        text("ips"),
        text("issued_on", 10),
        text("expires_on", 10, nullable=True),
        time("created_at"),
        blob("api_key_fingerprint", 16),
        blob("payload_digest", 32),
        _signature(),
        # Schema version 6: where the exchange is reached, NULL for its live API (every
        # version written before); part of the metadata digest only when not NULL.
        text("endpoint", 255, nullable=True),
    ),
    foreign_keys=(ForeignKey(("credential_id",), "credentials", ("id",)),),
)
"""One version of a credential: its metadata snapshot and payload digest; signed. The
encrypted payload is in ``payloads``, deleted when the version loses its last stage
label, so the history keeps dates and metadata but no ciphertext."""

PAYLOADS = Table(
    "payloads",
    (*_version_key(), blob("nonce", 12), blob("ciphertext")),
    foreign_keys=(_OF_VERSION,),
)
"""The AES-256-GCM ciphertext of one version's secret fields."""

WRAPS = Table(
    "dek_wraps",
    (
        *_version_key(),
        text("recipient", 32, primary_key=True),
        blob("ephemeral_public", 32),
        blob("body", 48),
    ),
    foreign_keys=(_OF_VERSION,),
)
"""A version's data key wrapped for one recipient (``root`` or a client id)."""

CLIENTS = Table(
    "clients",
    (
        _id(),
        text("name", 128, unique=True),
        blob("encryption_public", 32),
        blob("verify_public", 32),
        time("created_at"),
        time("expires_at", nullable=True),
        text("max_scope"),
        time("revoked_at", nullable=True),
        _signature(),
    ),
)
"""A client identity (one program): its public keys, expiry, maximum scope; signed."""

GRANTS = Table(
    "grants",
    (_id("client_id"), _id("credential_id"), time("created_at"), _signature()),
    foreign_keys=(
        ForeignKey(("client_id",), "clients", ("id",)),
        ForeignKey(("credential_id",), "credentials", ("id",)),
    ),
    indexes=(Index("ix_grants_credential_id", ("credential_id",)),),
)
"""A client's right to read a credential (every version written while it lasts); signed."""

OBSERVATIONS = Table(
    "probe_observations",
    (
        integer("id", primary_key=True),
        text("credential_id", 32),
        integer("version"),
        text("name", 128),
        time("observed_at"),
        text("kind", 16),
        text("body"),
        text("signer", 32),
        _signature(),
    ),
    foreign_keys=(ForeignKey(("credential_id",), "credentials", ("id",)),),
    indexes=(Index("ix_probe_observations_credential", ("credential_id", "observed_at")),),
)
"""What an exchange said of one key at one probe (schema version 6): the credential,
its version, when, the kind of answer and its canonical body; signed by the root key
or the monitor client named by ``signer``, and chained into the audit log by a
``probe`` entry carrying its digest."""

AUDIT_LOG = Table(
    "audit_log",
    (
        Column("seq", int, primary_key=True, numbered=False),
        time("at"),
        text("actor", 160),
        text("host", 255),
        integer("pid"),
        text("action", 64),
        text("credential", 128, nullable=True),
        integer("version", nullable=True),
        text("outcome", 16),
        text("detail", default=""),
        blob("prev_hash", 32),
        blob("entry_hash", 32),
        text("signer", 32, nullable=True),
        _signature(nullable=True),
    ),
    indexes=(
        Index("ix_audit_log_at", ("at",)),
        Index("ix_audit_log_credential", ("credential",)),
        # Serves check's "last read of each credential" query (schema version 2).
        Index("ix_audit_log_reads", ("action", "credential", "at")),
    ),
)
"""One entry of the hash-chained audit log; never holds a secret value.

``entry_hash`` covers every other column and ``prev_hash``; ``signature`` (by the
vault key for the owner's actions, by the client's key for a client's) covers
``entry_hash``. Anonymous failures (a wrong passphrase, a bad token) are unsigned."""

JOURNAL = Table(
    "rotation_journal",
    (
        integer("id", primary_key=True),
        text("credential", 128),
        text("rotation_id", 16),
        text("step", 16),
        text("state", 16),
        text("api_key", 255, nullable=True),
        text("detail", 255, nullable=True),
        text("holder", 128, nullable=True),
        integer("attempts"),
        time("created_at"),
        time("updated_at"),
        _signature(),
    ),
    indexes=(Index("ix_rotation_journal_open", ("state", "credential")),),
)
"""Automated rotation's journal (schema version 7): one entry per exchange-side step
(``lease``, ``create``, ``delete``) of one rotation (``rotation_id``), written and
committed before the exchange call (``state`` ``intent``) and settled after it
(``done``, ``failed``, ``abandoned``). ``api_key`` is a key's public id (never a
secret), ``detail`` a version number or the reason a step was abandoned, ``holder``
the process holding a lease. Signed with the root key; no foreign key, so that an
entry outlives the credential it was about until the key it names is settled."""

AUDIT_HEAD = Table(
    "exvault_audit_head",
    (integer("id", primary_key=True), integer("seq"), blob("entry_hash", 32)),
    postgresql_only=True,
)
"""PostgreSQL, one row: the seq and hash of the audit chain's last entry (0 and 32 zero
bytes for an empty log). Writers lock it (the write lock); a trigger checks each new
entry against it and moves it. A row outside the chain, whatever its seq, is never the
head, so it cannot stop the next append (an INTEGER seq of 2^31 - 1 did)."""

TABLES: dict[str, Table] = {
    t.name: t
    for t in (
        SCHEMA_INFO,
        HEADER,
        KEYSLOTS,
        CREDENTIALS,
        VERSIONS,
        PAYLOADS,
        WRAPS,
        CLIENTS,
        GRANTS,
        OBSERVATIONS,
        JOURNAL,
        AUDIT_LOG,
        AUDIT_HEAD,
    )
}
"""Every table by its name, in the order a new vault creates them."""


# --------------------------------------------------------------------------------------
# Plain rows: the tables a client reads, as its direct SQLite path returns them
# --------------------------------------------------------------------------------------


class HeaderRow(NamedTuple):
    """A ``vault_header`` row."""

    id: int
    format_version: int
    vault_id: bytes
    created_at: int
    encryption_public: bytes
    verify_public: bytes
    signature: bytes


class HeadRow(NamedTuple):
    """A ``credentials`` row: a credential's head."""

    id: str
    name: str
    created_at: int
    updated_at: int
    current_version: int | None
    pending_version: int | None
    pending_since: int | None
    previous_version: int | None
    previous_until: int | None
    policy: str
    exposed_at: int | None
    exposed_reason: str | None
    signature: bytes
    revision: int
    version_counter: int
    current_digest: bytes | None
    pending_digest: bytes | None
    previous_digest: bytes | None
    grantees: str


class VersionRow(NamedTuple):
    """A ``credential_versions`` row."""

    credential_id: str
    version: int
    name: str
    exchange: str
    permissions: str
    ips: str
    issued_on: str
    expires_on: str | None
    created_at: int
    api_key_fingerprint: bytes
    payload_digest: bytes
    signature: bytes
    endpoint: str | None = None


class PayloadRow(NamedTuple):
    """A ``payloads`` row."""

    credential_id: str
    version: int
    nonce: bytes
    ciphertext: bytes


class WrapRow(NamedTuple):
    """A ``dek_wraps`` row."""

    credential_id: str
    version: int
    recipient: str
    ephemeral_public: bytes
    body: bytes


class ClientRow(NamedTuple):
    """A ``clients`` row."""

    id: str
    name: str
    encryption_public: bytes
    verify_public: bytes
    created_at: int
    expires_at: int | None
    max_scope: str
    revoked_at: int | None
    signature: bytes


class GrantRow(NamedTuple):
    """A ``grants`` row."""

    client_id: str
    credential_id: str
    created_at: int
    signature: bytes


class KeyslotRow(NamedTuple):
    """A ``keyslots`` row (``signature`` NULL only in a row the schema 5 migration did
    not sign)."""

    id: str
    kind: str
    salt: bytes
    kdf_time_cost: int | None
    kdf_memory_kib: int | None
    kdf_parallelism: int | None
    nonce: bytes
    wrapped: bytes
    created_at: int
    signature: bytes | None


class ObservationRow(NamedTuple):
    """A ``probe_observations`` row (``id``: the database numbers a new row; 0 until
    then, and not inserted)."""

    id: int
    credential_id: str
    version: int
    name: str
    observed_at: int
    kind: str
    body: str
    signer: str
    signature: bytes


class JournalRow(NamedTuple):
    """A ``rotation_journal`` row (``id``: the database numbers a new row; 0 until then,
    and not inserted)."""

    id: int
    credential: str
    rotation_id: str
    step: str
    state: str
    api_key: str | None
    detail: str | None
    holder: str | None
    attempts: int
    created_at: int
    updated_at: int
    signature: bytes


ROWS: dict[str, type[tuple[object, ...]]] = {
    "vault_header": HeaderRow,
    "credentials": HeadRow,
    "credential_versions": VersionRow,
    "payloads": PayloadRow,
    "dek_wraps": WrapRow,
    "clients": ClientRow,
    "grants": GrantRow,
    "keyslots": KeyslotRow,
    "probe_observations": ObservationRow,
}
"""Each plain row type by its table's name."""

_TABLE_OF_ROW = {row: name for name, row in ROWS.items()}


def row_values(row: tuple[object, ...]) -> tuple[str, dict[str, object]]:
    """The table a plain row (:data:`ROWS`) belongs to, and its column values, for an
    INSERT.

    :raises KeyError: for a row of no table here.
    """
    values: dict[str, object] = row._asdict()  # type: ignore[attr-defined]
    return _TABLE_OF_ROW[type(row)], values


__all__ = [
    "AUDIT_HEAD",
    "AUDIT_LOG",
    "CLIENTS",
    "CREDENTIALS",
    "GRANTS",
    "HEADER",
    "JOURNAL",
    "KEYSLOTS",
    "OBSERVATIONS",
    "PAYLOADS",
    "ROWS",
    "SCHEMA_INFO",
    "TABLES",
    "VERSIONS",
    "WRAPS",
    "ClientRow",
    "Column",
    "ForeignKey",
    "GrantRow",
    "HeadRow",
    "HeaderRow",
    "Index",
    "JournalRow",
    "KeyslotRow",
    "ObservationRow",
    "PayloadRow",
    "Table",
    "VersionRow",
    "WrapRow",
    "blob",
    "integer",
    "row_values",
    "text",
    "time",
]
