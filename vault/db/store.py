"""SQL storage of a vault: schema, engine setup and transactions.

The store sees only ciphertext, wrapped keys, signatures and clear metadata; it knows
nothing of keys or of the primitives (:mod:`vault.format.aead` and its neighbours). The
facade (:mod:`vault.owner.admin`, :mod:`vault.format.records`) composes the two.

SQLite is the default backend; any SQLAlchemy URL works (PostgreSQL through psycopg 3
is the shared store for fleets). The SQLite settings (docs/format.md section 4.13):
the file is created 0600 in a 0700 directory *before* SQLite opens it, and every
connection runs with WAL (a rollback journal for a vault in the shared layout, see
:mod:`vault.db.sqlite_file`), ``synchronous=FULL`` (a committed write survives power
loss), ``secure_delete=ON`` (deleted cells are zeroed, not left in free pages),
``foreign_keys=ON`` and a busy timeout. Writes begin ``IMMEDIATE`` so two writers
queue on the lock instead of failing mid-transaction with "database is locked"; on
PostgreSQL a row lock on the audit chain's head (:data:`AUDIT_HEAD`) does the same,
waiting at most :data:`WRITE_LOCK_TIMEOUT_MS`.
"""

from __future__ import annotations

import os
import time
import warnings
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

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
    UniqueConstraint,
    create_engine,
    event,
    inspect,
    select,
    text,
    update,
)
from sqlalchemy.engine import URL, Connection, Dialect, Engine, make_url
from sqlalchemy.exc import (
    ArgumentError,
    CompileError,
    DatabaseError,
    DBAPIError,
    NoSuchModuleError,
    SAWarning,
    SQLAlchemyError,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column
from sqlalchemy.sql.expression import ClauseElement

from vault.db import sqlite_file
from vault.db.migrations import (
    AUDIT_HEAD_SCHEMA,
    SCHEMA_VERSION,
    OwnerKeys,
    check_schema_version,
    pending,
)
from vault.db.sqlite_file import BUSY_TIMEOUT_MS, create_sqlite_file, fsync_path
from vault.errors import (
    AlreadyExists,
    InvalidInput,
    VaultUnavailable,
    check_utf8,
    database_error,
    first_line,
    printable,
    quoted,
)
from vault.errors import (
    StoreError as StoreError,  # re-exported: the store's own failure
)
from vault.format.audit_entry import AuditRow

WRITE_LOCK_KEY = 0x65787661756C74  # "exvault": PostgreSQL advisory lock of schema 2 and older
HEAD_ROW = "exvault_audit_head"
"""Key of a write session's ``info``: set when the chain's head is :data:`AUDIT_HEAD`'s
row (PostgreSQL, schema version 4 on), not the entry of highest ``seq``."""
WRITE_LOCK_TIMEOUT_MS = 30_000
"""How long a PostgreSQL write waits for the write lock before failing with a conflict
(``lock_timeout``): a lock held by a stuck or hostile session must not hang the fleet."""


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


POSTGRESQL_METADATA = MetaData()
"""Tables of the PostgreSQL backend only (schema version 4 on): SQLite has none of them."""

AUDIT_HEAD = Table(
    "exvault_audit_head",
    POSTGRESQL_METADATA,
    Column("id", Integer, primary_key=True),
    Column("seq", Integer, nullable=False),
    Column("entry_hash", LargeBinary(32), nullable=False),
)
"""One row: the seq and hash of the audit chain's last entry (0 and 32 zero bytes for
an empty log). Writers lock it (the write lock); the trigger below checks each new
entry against it and moves it. A row outside the chain, whatever its seq, is never the
head, so it cannot stop the next append (an INTEGER seq of 2^31 - 1 did)."""


def _postgresql_chain_ddl(schema: str) -> list[str]:
    # SECURITY DEFINER functions run as the tables' owner: pinning search_path to the
    # vault's schema keeps a caller's own objects out of them. Only that quoted schema
    # name and exvault's own column names are interpolated below (hence the noqa).
    path = f"SET search_path = {schema}, pg_temp"
    columns = ", ".join(AuditRow.__dataclass_fields__)
    arguments = ", ".join(f"p_{name} {kind}" for name, kind in _AUDIT_APPEND_ARGUMENTS)
    values = ", ".join(f"p_{name}" for name, _kind in _AUDIT_APPEND_ARGUMENTS)
    return [
        # Locking the row FOR UPDATE needs UPDATE on the table, which only the owner has:
        # the reader takes it only through this function, so only inside a transaction,
        # never for a whole idle session as it could the advisory lock. (A hostile
        # reader can still make that transaction long: SECURITY.md, known limit 24.)
        "CREATE OR REPLACE FUNCTION exvault_lock_writes() RETURNS void "
        f"LANGUAGE plpgsql SECURITY DEFINER {path} AS $$ BEGIN "
        "PERFORM 1 FROM exvault_audit_head WHERE id = 1 FOR UPDATE; END $$",
        # Every insert, the owner's and the reader's: it must follow the head exactly.
        "CREATE OR REPLACE FUNCTION exvault_audit_chain() RETURNS trigger "  # noqa: S608
        f"LANGUAGE plpgsql SECURITY DEFINER {path} AS $$ "
        "DECLARE head_seq bigint; head_hash bytea; BEGIN "
        "SELECT seq, entry_hash INTO head_seq, head_hash FROM exvault_audit_head "
        "WHERE id = 1 FOR UPDATE; "
        "IF NOT FOUND OR NEW.seq IS DISTINCT FROM head_seq + 1 "
        "OR NEW.prev_hash IS DISTINCT FROM head_hash THEN "
        "RAISE EXCEPTION 'exvault: audit entry % does not follow the chain head %', "
        "NEW.seq, head_seq USING ERRCODE = '40001'; END IF; "
        "UPDATE exvault_audit_head SET seq = NEW.seq, entry_hash = NEW.entry_hash "
        "WHERE id = 1; RETURN NEW; END $$",
        "DROP TRIGGER IF EXISTS exvault_audit_chain ON audit_log",
        "CREATE TRIGGER exvault_audit_chain BEFORE INSERT ON audit_log "
        "FOR EACH ROW EXECUTE FUNCTION exvault_audit_chain()",
        # The reader's only way to append (it has no INSERT on audit_log).
        f"CREATE OR REPLACE FUNCTION exvault_audit_append({arguments}) RETURNS void "  # noqa: S608
        f"LANGUAGE sql SECURITY DEFINER {path} AS $$ "
        f"INSERT INTO audit_log ({columns}) VALUES ({values}) $$",
        "REVOKE ALL ON FUNCTION exvault_lock_writes() FROM PUBLIC",
        "REVOKE ALL ON FUNCTION exvault_audit_chain() FROM PUBLIC",
        f"REVOKE ALL ON FUNCTION {AUDIT_APPEND_FUNCTION} FROM PUBLIC",
    ]


_AUDIT_APPEND_ARGUMENTS = (
    ("seq", "integer"),
    ("at", "bigint"),
    ("actor", "text"),
    ("host", "text"),
    ("pid", "integer"),
    ("action", "text"),
    ("credential", "text"),
    ("version", "integer"),
    ("outcome", "text"),
    ("detail", "text"),
    ("prev_hash", "bytea"),
    ("signer", "text"),
    ("entry_hash", "bytea"),
    ("signature", "bytea"),
)

AUDIT_APPEND_FUNCTION = "exvault_audit_append({})".format(
    ", ".join(kind for _name, kind in _AUDIT_APPEND_ARGUMENTS)
)
"""The signature of the reader's append function, as a GRANT names it."""

AUDIT_APPEND_SQL = "SELECT exvault_audit_append({})".format(
    ", ".join(f"CAST(:{name} AS {kind})" for name, kind in _AUDIT_APPEND_ARGUMENTS)
)
"""Appends one entry on PostgreSQL (named parameters: the columns of an audit row)."""

AUDIT_HEAD_SQL = "SELECT seq, entry_hash FROM exvault_audit_head WHERE id = 1"
"""The chain's head on PostgreSQL: (seq, entry hash), seq 0 for an empty log."""


def install_audit_head(conn: Connection) -> None:
    """PostgreSQL: create the head row (from the chain's last entry), the lock and append
    functions and the trigger; hand every role that could INSERT into ``audit_log``
    (the reader) the functions, and SELECT on the head row, instead. Idempotent; does
    nothing on SQLite.

    The grants move so that the append function is the reader's only way in: an
    existing fleet is safe from the owner's first unlock on, before anyone re-runs the
    documented grants.
    """
    if conn.dialect.name != "postgresql":
        return
    POSTGRESQL_METADATA.create_all(conn, checkfirst=True)
    # The head is the end of the chain as it links from entry 1, not the row of highest
    # seq: before this version the reader could INSERT, so that row may be a forged one
    # (seq 2^31 - 1 stopped every append), and the head must not start from it.
    conn.exec_driver_sql(
        "WITH RECURSIVE chain (seq, entry_hash) AS ("
        " SELECT seq, entry_hash FROM audit_log"
        " WHERE seq = 1 AND prev_hash = decode(repeat('00', 32), 'hex')"
        " UNION ALL"
        " SELECT a.seq, a.entry_hash FROM audit_log a"
        " JOIN chain c ON a.seq = c.seq + 1 AND a.prev_hash = c.entry_hash),"
        " last AS (SELECT seq, entry_hash FROM chain ORDER BY seq DESC LIMIT 1) "
        "INSERT INTO exvault_audit_head (id, seq, entry_hash) "
        "SELECT 1, COALESCE((SELECT seq FROM last), 0), "
        "COALESCE((SELECT entry_hash FROM last), decode(repeat('00', 32), 'hex')) "
        "ON CONFLICT (id) DO NOTHING"
    )
    schema = conn.exec_driver_sql("SELECT current_schema()").scalar_one()
    quote = conn.dialect.identifier_preparer.quote_identifier
    for statement in _postgresql_chain_ddl(quote(schema)):
        conn.exec_driver_sql(statement.replace("%", "%%"))  # psycopg's placeholders
    inserters = conn.exec_driver_sql(
        "SELECT DISTINCT grantee FROM information_schema.role_table_grants "
        "WHERE table_schema = current_schema() AND table_name = 'audit_log' "
        "AND privilege_type = 'INSERT' AND grantee <> current_user"
    ).scalars()
    for grantee in list(inserters):
        if grantee == "PUBLIC":  # the keyword, not a role named so: grant nothing to all
            conn.exec_driver_sql("REVOKE INSERT ON audit_log FROM PUBLIC")
            continue
        role = quote(grantee)
        conn.exec_driver_sql(f"REVOKE INSERT ON audit_log FROM {role}")
        conn.exec_driver_sql(f"GRANT SELECT ON exvault_audit_head TO {role}")
        conn.exec_driver_sql(f"GRANT EXECUTE ON FUNCTION exvault_lock_writes() TO {role}")
        conn.exec_driver_sql(f"GRANT EXECUTE ON FUNCTION {AUDIT_APPEND_FUNCTION} TO {role}")


AUDIT_READS_INDEX = Index(
    "ix_audit_log_reads", AuditRecord.action, AuditRecord.credential, AuditRecord.at
)
"""Serves ``check``'s "last read of each credential" query (schema version 2)."""


# --------------------------------------------------------------------------------------
# Engine setup
# --------------------------------------------------------------------------------------


def sqlite_url(path: Path) -> URL:
    """The SQLAlchemy URL of a SQLite vault file."""
    return URL.create("sqlite+pysqlite", database=str(path))


def sqlite_path(url: URL) -> Path | None:
    """The file of a SQLite URL, or None for another backend or an in-memory database."""
    if url.get_backend_name() != "sqlite" or not url.database or url.database == ":memory:":
        return None
    return Path(url.database)


def hide_password(text: str) -> str:
    """A database URL as typed, for a message: all between ``://`` and the last ``@``
    (user and password) and any query (libpq takes ``?password=`` too) as ``***``.

    For text SQLAlchemy cannot parse, so cannot render without its password
    (:func:`describe_location` does that for a parsed URL). Cutting at the last ``@``
    hides more than the password when a later part holds an ``@``, never less.
    """
    scheme, separator, rest = text.partition("://")
    if not separator:
        return text
    if "@" in rest:
        rest = "***@" + rest.rpartition("@")[2]
    if "?" in rest:
        rest = rest.partition("?")[0] + "?***"
    return f"{scheme}://{rest}"


def describe_location(url: URL) -> str:
    """A vault location as exvault shows it: the file path, or the URL without its
    password and with any query as ``***`` (libpq takes ``?password=`` too). Raw: a
    message escapes it with :func:`~vault.errors.printable`."""
    if url.get_backend_name() == "sqlite" and url.database:
        return url.database
    shown = url.render_as_string(hide_password=True)
    return shown.partition("?")[0] + "?***" if url.query else shown


def _shown_url(text: str) -> str:
    # Whole, unlike other input (vault.errors.quoted cuts it): without its password a
    # URL is no more secret than a vault's path, which messages show whole, and a
    # cut one would not show what is wrong with it.
    return f'"{printable(hide_password(text))}"'


def _malformed_url(text: str) -> InvalidInput:
    return InvalidInput(
        f"malformed database URL {_shown_url(text)} (expected e.g. "
        "postgresql+psycopg://user@host/db or sqlite:////path/to/vault.db)"
    )


def parse_url(url: URL | str) -> URL:
    """``url`` as a SQLAlchemy URL.

    :raises InvalidInput: when it is malformed (a port that is not a number, a bracket
        left open) or not UTF-8 text; the message never shows a password.
    """
    if isinstance(url, URL):
        return url
    check_utf8(url, f"the database URL {_shown_url(url)}")
    try:
        return make_url(url)
    except (ArgumentError, ValueError):  # make_url reads the port with int()
        raise _malformed_url(url) from None


def _sqlite_configurer(url: URL, journal: str | None) -> Callable[[Any, Any], None]:
    # The journal mode follows the file's layout, looked at on each new connection: a
    # vault made shared (or single-user again) by another process is seen at once.
    path = sqlite_path(url)

    def on_connect(dbapi_connection: Any, _record: Any) -> None:
        mode = journal or (
            sqlite_file.journal_mode(path) if path else sqlite_file.SINGLE_USER_JOURNAL
        )
        sqlite_file.configure(dbapi_connection, mode)

    return on_connect


def _on_sqlite_begin(conn: Connection) -> None:
    if conn.get_execution_options().get("exvault_write"):
        conn.exec_driver_sql("BEGIN IMMEDIATE")
    else:
        conn.exec_driver_sql("BEGIN")


def make_engine(url: URL | str, *, journal: str | None = None) -> Engine:
    """An engine for ``url`` with exvault's per-connection settings.

    A SQLite file gets the journal mode of its layout (see :mod:`vault.db.sqlite_file`),
    or ``journal`` when given (an audit file's).

    ``hide_parameters`` keeps bound values (ciphertexts, wrapped keys) out of
    SQLAlchemy's exception messages and logs.

    :raises InvalidInput: for a malformed URL, or one without an installed driver.
    """
    url = parse_url(url)
    try:
        return _make_engine(url, journal)
    except (NoSuchModuleError, ImportError):
        raise InvalidInput(
            f"no database driver for {quoted(url.drivername)} URLs; for PostgreSQL: "
            "pip install 'exchange-vault[postgresql]' and use postgresql+psycopg://..."
        ) from None
    except ArgumentError:  # a URL the dialect refuses, e.g. sqlite://host
        raise _malformed_url(url.render_as_string(hide_password=True)) from None


def _make_engine(url: URL, journal: str | None) -> Engine:
    if url.get_backend_name() == "sqlite":
        engine = create_engine(
            url, hide_parameters=True, connect_args={"timeout": BUSY_TIMEOUT_MS / 1000}
        )
        event.listen(engine, "connect", _sqlite_configurer(url, journal))
        event.listen(engine, "begin", _on_sqlite_begin)
    else:
        engine = create_engine(url, hide_parameters=True, pool_pre_ping=True)
    return engine


def describe_database_error(exc: SQLAlchemyError) -> str:
    """One line about a database failure, without SQL text or bound values."""
    orig = getattr(exc, "orig", None)
    return first_line(orig) if orig is not None else type(exc).__name__


class Store:
    """A vault's database: engine, schema, and read/write transactions."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        # PostgreSQL at schema version 4 or later: writers lock the audit chain's head
        # row; older schemas (and a vault being created) have only the advisory lock.
        self._locks_head = False

    @property
    def url(self) -> URL:
        """The database URL (password hidden when printed)."""
        return self.engine.url

    @property
    def is_sqlite(self) -> bool:
        """True for the SQLite backend."""
        return self.engine.url.get_backend_name() == "sqlite"

    @classmethod
    def create(cls, url: URL | str, initialize: Callable[[Session], None]) -> Store:
        """Create a new vault database: schema and ``initialize``'s rows, all or nothing.

        A kill at any instant leaves either no vault or a complete one. The schema and
        the first rows are one transaction (DDL is transactional on PostgreSQL and
        SQLite); a SQLite vault is built under a temporary name in the same directory
        and hard-linked into place once committed, so the vault's own path never names
        a half-made file (a leftover ``.NAME.creating-*`` file is harmless).

        :raises AlreadyExists: when a vault or another file is there already.
        :raises InvalidInput: for a malformed URL.
        :raises StoreError: when the database cannot be written.
        """
        url = parse_url(url)
        path = sqlite_path(url)
        build = None
        if path is not None:
            if path.exists():
                raise AlreadyExists(f"a file exists at {printable(path)}; refusing to overwrite it")
            build = path.with_name(f".{path.name}.creating-{os.urandom(6).hex()}")
            create_sqlite_file(build)
        store = cls(make_engine(sqlite_url(build) if build is not None else url))
        try:
            with store.write() as session:
                if store._has_schema(session):
                    raise AlreadyExists("a vault exists there already")
                Base.metadata.create_all(session.connection())
                session.add(SchemaInfo(id=1, schema_version=SCHEMA_VERSION))
                initialize(session)
                session.flush()
                install_audit_head(session.connection())
            store._locks_head = not store.is_sqlite
            if build is not None and path is not None:
                store.checkpoint()
                store.dispose()
                try:
                    os.link(build, path)  # atomic, and never replaces an existing file
                except FileExistsError:
                    raise AlreadyExists(
                        f"a file appeared at {printable(path)} meanwhile; refusing to overwrite it"
                    ) from None
                fsync_path(path.parent)
                store = cls(make_engine(url))
        except BaseException:
            store.dispose()
            raise
        finally:
            if build is not None:
                for suffix in ("", "-wal", "-shm"):
                    build.with_name(build.name + suffix).unlink(missing_ok=True)
        return store

    @classmethod
    def open(cls, url: URL | str, *, owner: bool = False) -> Store:
        """Open an existing vault database and check its schema version.

        An older schema is used as it is when every pending migration allows readers;
        the ``owner`` (about to unlock, then :meth:`upgrade`) may open any older one.

        :raises VaultUnavailable: when there is no vault there.
        :raises InvalidInput: for a malformed URL.
        :raises IntegrityError: when the file is not a readable exvault database, or its
            schema version is not a number.
        :raises UnsupportedFormat: when the schema is newer than this exvault, or too
            old for a reader.
        """
        url = parse_url(url)
        path = sqlite_path(url)
        if path is not None:
            sqlite_file.check_present(path)
        store = cls(make_engine(url))
        try:
            with store.engine.connect() as conn:
                if "exvault_schema" not in _table_names(conn):
                    raise VaultUnavailable(f"no vault at {printable(describe_location(url))}")
                version = conn.execute(select(SchemaInfo.schema_version)).scalar()
            check_schema_version(version, owner=owner, backend=url.get_backend_name())
            store._locks_head = (
                not store.is_sqlite and isinstance(version, int) and version >= AUDIT_HEAD_SCHEMA
            )
        except DatabaseError as exc:
            store.dispose()
            detail = describe_database_error(exc)
            if path is None:
                raise VaultUnavailable(f"cannot reach the database: {detail}") from None
            raise sqlite_file.open_failure(path, detail) from None
        except BaseException:
            store.dispose()
            raise
        return store

    def upgrade(self, owner: OwnerKeys) -> int:
        """Apply pending schema migrations in one transaction; returns the new version.

        Called by the owner's unlock, after the passphrase has been checked, with the
        unlocked keys (a migration may verify and re-sign rows). Costs one read when
        the schema is current.
        """
        with self.read() as session:
            current = session.scalar(select(SchemaInfo.schema_version)) or 1
        if current < SCHEMA_VERSION:
            with self.write() as session:
                conn = session.connection()
                current = session.scalar(select(SchemaInfo.schema_version)) or 1
                for step in pending(current):  # another process may have migrated meanwhile
                    step.apply(conn, owner)
                    session.execute(update(SchemaInfo).values(schema_version=step.to_version))
                    current = step.to_version
        self._locks_head = not self.is_sqlite and current >= AUDIT_HEAD_SCHEMA
        return current

    @staticmethod
    def _has_schema(session: Session) -> bool:
        return "exvault_schema" in _table_names(session.connection())

    @contextmanager
    def read(self) -> Iterator[Session]:
        """A read-only transaction (a consistent snapshot on SQLite's WAL).

        :raises StoreError: when the database fails.
        """
        with (
            self.translate_errors(),
            Session(self.engine, expire_on_commit=False) as session,
            session.begin(),
        ):
            yield session

    @contextmanager
    def write(self) -> Iterator[Session]:
        """A write transaction, begun IMMEDIATE on SQLite; commits on normal exit.

        :raises StoreError: when the database fails.
        """
        with self.translate_errors(), self.engine.connect() as conn:
            conn.execution_options(exvault_write=True)
            with Session(bind=conn, expire_on_commit=False) as session, session.begin():
                # Take the write lock now, not at the first write: reads inside the
                # transaction (name taken? next version number?) must not go stale.
                session.connection()
                if self._locks_head:
                    # PostgreSQL: one lock per write transaction, taken first, makes
                    # writers queue as SQLite's BEGIN IMMEDIATE does (taking locks in
                    # varying orders deadlocked under the concurrency suite). It is the
                    # audit head's row lock, which the reader role can take only through
                    # exvault_lock_writes(), inside a transaction: not the advisory
                    # lock, which any role could hold for a whole idle session. Waiting
                    # is bounded, so a stuck holder gives a conflict, not a hang.
                    session.execute(text(f"SET LOCAL lock_timeout = {WRITE_LOCK_TIMEOUT_MS:d}"))
                    session.execute(text("SELECT exvault_lock_writes()"))
                    session.info[HEAD_ROW] = True
                elif not self.is_sqlite:
                    # An older schema, or the vault being created: the advisory lock
                    # older exvaults take too, so that they queue with this one.
                    session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": WRITE_LOCK_KEY})
                yield session

    def checkpoint(self) -> bool:
        """Fold the WAL into the database and truncate it (SQLite only).

        Called after deletes, so that the page images of removed ciphertexts do not
        linger in the ``-wal`` file. :returns: False when readers kept it from
        completing for about ten seconds (the next checkpoint will finish the job).
        """
        if not self.is_sqlite:
            return True
        # A reader's open snapshot can keep the checkpoint from reaching the end of the
        # WAL ("busy"); readers are short, so try again for a little while.
        for attempt in range(20):
            with self.translate_errors(), self.engine.connect() as conn:
                busy = conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)").first()
            if busy is not None and busy[0] == 0:
                return True
            time.sleep(0.05 * (attempt + 1))
        return False

    def dispose(self) -> None:
        """Close every pooled connection."""
        self.engine.dispose()

    @staticmethod
    @contextmanager
    def translate_errors() -> Iterator[None]:
        """Turn database exceptions into :class:`VaultError` s (SQL text and bound values
        never included): every access to the store goes through it."""
        try:
            yield
        except SQLAlchemyError as exc:
            raise database_error(describe_database_error(exc)) from None


def driver_rows(session: Session, query: ClauseElement) -> Iterator[tuple[Any, ...]]:
    """The rows of ``query`` as the database driver returns them: plain tuples.

    For the bulk reads of ``list`` and ``check`` (100,000 rows), where SQLAlchemy's
    Row objects and ORM execution path are a tenth to a third of the time. The query
    must need no type conversion of its results (none of exvault's columns does) and
    no expanding parameters. Run it inside a :meth:`Store.read` (or write)
    transaction, whose error translation then applies to it.

    :raises SQLAlchemyError: when the database fails (the driver's error, wrapped).
    """
    connection = session.connection()
    compiled = query.compile(dialect=connection.dialect)
    values = compiled.params
    params: Any = (
        tuple(values[name] for name in getattr(compiled, "positiontup", None) or ())
        if connection.dialect.positional
        else values
    )
    cursor = connection.connection.cursor()
    try:
        cursor.execute(compiled.string, params)
        while rows := cursor.fetchmany(1000):
            yield from rows
    except connection.dialect.loaded_dbapi.Error as exc:
        raise DBAPIError.instance(
            compiled.string, params, exc, connection.dialect.loaded_dbapi.Error
        ) from None
    finally:
        cursor.close()


def _surrogate_escaped(data: bytes) -> str:
    return data.decode("utf-8", "surrogateescape")


@contextmanager
def tolerant_text(session: Session) -> Iterator[None]:
    """Inside the block, a SQLite text value that is not UTF-8 comes back with each bad
    byte as a lone surrogate (``surrogateescape``) instead of failing the whole query.

    For the audit log's readers: one damaged row must be reported by its ``seq``, not
    stop the walk with a message naming nothing. Such a value fails to encode (it
    cannot be hashed or signed) and :func:`vault.errors.printable` shows it escaped.
    PostgreSQL stores only valid text; nothing changes there.
    """
    connection = session.connection()
    if connection.dialect.name != "sqlite":
        yield
        return
    raw: Any = connection.connection.driver_connection
    previous = raw.text_factory
    raw.text_factory = _surrogate_escaped
    try:
        yield
    finally:
        raw.text_factory = previous


def _table_names(conn: Connection) -> set[str]:
    return set(inspect(conn).get_table_names())


# --------------------------------------------------------------------------------------
# Schema comparison
# --------------------------------------------------------------------------------------

# A schema as compared: for each table (None: objects of no table), each object's
# description and its definition ("" when being there is all there is to it).
Schema = dict[str | None, dict[str, str]]


def schema_differences(conn: Connection) -> list[str]:
    """Every difference between the database's schema and the one exvault creates, one
    line each ("index ix_grants_credential_id is missing").

    The live schema is read through SQLAlchemy's inspector; the expected one is
    :data:`Base.metadata` (what ``create_all`` and the migrations make) compiled for
    the same dialect, so a vault at the current schema version compares equal on
    either backend. Compared: tables, column types and NOT NULL, primary keys, unique
    and check constraints, indexes, foreign keys with their ON DELETE actions, views,
    triggers (and PostgreSQL rules). Not compared: what the database makes itself
    (SQLite's ``sqlite_*`` tables and autoindexes, the indexes behind PostgreSQL's
    unique constraints), defaults, collations, privileges.
    """
    expected = declared_schema(conn.dialect)
    with warnings.catch_warnings():
        # A column of a type SQLAlchemy does not know is reported below, not warned of.
        warnings.simplefilter("ignore", SAWarning)
        live = live_schema(conn)
    problems = []
    for table in sorted(expected.keys() - live.keys(), key=str):
        problems.append(f"table {table} is missing")
    for table in sorted(live.keys() - expected.keys(), key=str):
        problems.append(f"unexpected table {table}")
    for table in sorted(expected.keys() & live.keys(), key=str):
        want, got = expected[table], live[table]
        problems += [f"{what} is missing" for what in sorted(want.keys() - got.keys())]
        problems += [
            f"unexpected {what} ({got[what]})" if got[what] else f"unexpected {what}"
            for what in sorted(got.keys() - want.keys())
        ]
        problems += [
            f"{what} is {got[what]} (expected {want[what]})"
            for what in sorted(want.keys() & got.keys())
            if got[what] != want[what]
        ]
    return [printable(p) for p in problems]  # the names are the database's, whoever set them


def declared_schema(dialect: Dialect) -> Schema:
    """The schema :data:`Base.metadata` declares (with :data:`POSTGRESQL_METADATA` and the
    audit trigger on PostgreSQL), as ``dialect`` creates it."""
    schema: Schema = {None: {}}
    tables = list(Base.metadata.sorted_tables)
    if dialect.name == "postgresql":
        tables += POSTGRESQL_METADATA.sorted_tables
        schema[None]["trigger exvault_audit_chain on audit_log"] = ""
    for table in tables:
        name = table.name
        objects = schema[name] = {}
        for column in table.columns:
            objects[f"column {name}.{column.name}"] = _column_text(
                column.type.compile(dialect=dialect), bool(column.nullable)
            )
        objects[f"primary key of {name}"] = _names(c.name for c in table.primary_key.columns)
        for constraint in table.constraints:
            if isinstance(constraint, UniqueConstraint):
                objects[f"unique constraint on {name} {_names(constraint.columns.keys())}"] = ""
            elif isinstance(constraint, CheckConstraint):
                objects[f"check constraint on {name} ({constraint.sqltext})"] = ""
        for index in table.indexes:
            objects[f"index {index.name}"] = _index_text(
                name, [c.name for c in index.columns], index.unique
            )
        for fk in table.foreign_key_constraints:
            what = _foreign_key(
                name, fk.column_keys, fk.referred_table.name, [e.column.name for e in fk.elements]
            )
            objects[what] = _foreign_key_text(
                {
                    "ondelete": fk.ondelete,
                    "onupdate": fk.onupdate,
                    "deferrable": fk.deferrable,
                    "initially": fk.initially,
                }
            )
    return schema


def live_schema(conn: Connection) -> Schema:
    """The schema of the database behind ``conn``, described as :func:`declared_schema`."""
    inspector = inspect(conn)
    schema: Schema = {None: {f"view {view}": "" for view in inspector.get_view_names()}}
    for name in inspector.get_table_names():
        objects = schema[name] = {}
        for column in inspector.get_columns(name):
            try:
                type_text = column["type"].compile(dialect=conn.dialect)
            except CompileError:  # no declared type at all
                type_text = "(no type)"
            objects[f"column {name}.{column['name']}"] = _column_text(type_text, column["nullable"])
        key = inspector.get_pk_constraint(name)["constrained_columns"]
        if key:
            objects[f"primary key of {name}"] = _names(key)
        for unique in inspector.get_unique_constraints(name):
            objects[f"unique constraint on {name} {_names(unique['column_names'])}"] = ""
        for check in inspector.get_check_constraints(name):
            objects[f"check constraint on {name} ({check['sqltext']})"] = ""
        for index in inspector.get_indexes(name):
            if "duplicates_constraint" in index:  # PostgreSQL's index of a unique constraint
                continue
            objects[f"index {index['name']}"] = _index_text(
                name, [str(c) for c in index["column_names"]], bool(index["unique"])
            )
        for fk in inspector.get_foreign_keys(name):
            what = _foreign_key(
                name, fk["constrained_columns"], fk["referred_table"], fk["referred_columns"]
            )
            objects[what] = _foreign_key_text(fk["options"])
    for kind, trigger, table in _triggers(conn):
        schema[None][f"{kind} {trigger} on {table}"] = ""
    return schema


def _triggers(conn: Connection) -> list[tuple[str, str, str]]:
    # The inspector does not list triggers (nor PostgreSQL's rules, which rewrite
    # statements as a trigger would): a trigger could undo a revocation as it is written.
    if conn.dialect.name == "sqlite":
        query = "SELECT 'trigger', name, tbl_name FROM sqlite_master WHERE type = 'trigger'"
    elif conn.dialect.name == "postgresql":
        query = (
            "SELECT 'trigger', t.tgname, c.relname FROM pg_trigger t"
            " JOIN pg_class c ON c.oid = t.tgrelid"
            " WHERE NOT t.tgisinternal AND c.relnamespace = current_schema()::regnamespace"
            " UNION ALL SELECT 'rule', rulename, tablename FROM pg_rules"
            " WHERE schemaname = current_schema()"
        )
    else:
        return []
    return [(kind, name, table) for kind, name, table in conn.exec_driver_sql(query)]


def _names(columns: Iterable[str]) -> str:
    return "(" + ", ".join(columns) + ")"


def _column_text(type_text: str, nullable: bool) -> str:
    return f"{type_text} {'NULL' if nullable else 'NOT NULL'}"


def _index_text(table: str, columns: list[str], unique: bool | None) -> str:
    return f"{'UNIQUE ' if unique else ''}on {table} {_names(columns)}"


def _foreign_key(
    table: str, columns: Iterable[str], referred: str, referred_columns: Iterable[str]
) -> str:
    return f"foreign key {table} {_names(columns)} -> {referred} {_names(referred_columns)}"


def _foreign_key_text(options: dict[str, Any]) -> str:
    text = f"ON DELETE {(options.get('ondelete') or 'NO ACTION').upper()}"
    if (options.get("onupdate") or "NO ACTION").upper() != "NO ACTION":
        text += f" ON UPDATE {options['onupdate'].upper()}"
    if options.get("deferrable"):
        text += " DEFERRABLE"
    if options.get("initially"):
        text += f" INITIALLY {options['initially'].upper()}"
    return text
