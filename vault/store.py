"""SQL storage of a vault: schema, engine setup and transactions.

The store sees only ciphertext, wrapped keys, signatures and clear metadata; it knows
nothing of keys or of :mod:`vault.crypto`. The facade (:mod:`vault.admin`,
:mod:`vault.records`) composes the two.

SQLite is the default backend; any SQLAlchemy URL works (PostgreSQL through psycopg 3
is the shared store for fleets). The SQLite settings follow DESIGN.md section 5:
the file is created 0600 in a 0700 directory *before* SQLite opens it, and every
connection runs with WAL, ``synchronous=FULL`` (a committed write survives power
loss), ``secure_delete=ON`` (deleted cells are zeroed, not left in free pages),
``foreign_keys=ON`` and a busy timeout. Writes begin ``IMMEDIATE`` so two writers
queue on the lock instead of failing mid-transaction with "database is locked"; on
PostgreSQL a transaction-scoped advisory lock does the same.
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
    ForeignKeyConstraint,
    Index,
    Integer,
    LargeBinary,
    String,
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

from vault import sqlite_file
from vault.errors import (
    AlreadyExists,
    IntegrityError,
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
from vault.migrations import SCHEMA_VERSION, Signer, check_schema_version, pending
from vault.sqlite_file import BUSY_TIMEOUT_MS, create_sqlite_file, fsync_path

WRITE_LOCK_KEY = 0x65787661756C74  # "exvault": PostgreSQL advisory lock of write transactions


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
    # The root key's signature over the columns above (schema version 4; NULL only in a
    # row that the version 4 migration did not sign, which the owner's unlock refuses).
    signature: Mapped[bytes | None] = mapped_column(LargeBinary(64))


class CredentialRecord(Base):
    """A credential's head: its name, stage labels, policy and exposure; signed."""

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


def _on_sqlite_connect(dbapi_connection: Any, _record: Any) -> None:
    sqlite_file.configure(dbapi_connection)


def _on_sqlite_begin(conn: Connection) -> None:
    if conn.get_execution_options().get("exvault_write"):
        conn.exec_driver_sql("BEGIN IMMEDIATE")
    else:
        conn.exec_driver_sql("BEGIN")


def make_engine(url: URL | str) -> Engine:
    """An engine for ``url`` with exvault's per-connection settings.

    ``hide_parameters`` keeps bound values (ciphertexts, wrapped keys) out of
    SQLAlchemy's exception messages and logs.

    :raises InvalidInput: for a malformed URL, or one without an installed driver.
    """
    url = parse_url(url)
    try:
        return _make_engine(url)
    except (NoSuchModuleError, ImportError):
        raise InvalidInput(
            f"no database driver for {quoted(url.drivername)} URLs; for PostgreSQL: "
            "pip install 'exchange-vault[postgresql]' and use postgresql+psycopg://..."
        ) from None
    except ArgumentError:  # a URL the dialect refuses, e.g. sqlite://host
        raise _malformed_url(url.render_as_string(hide_password=True)) from None


def _make_engine(url: URL) -> Engine:
    if url.get_backend_name() == "sqlite":
        engine = create_engine(
            url, hide_parameters=True, connect_args={"timeout": BUSY_TIMEOUT_MS / 1000}
        )
        event.listen(engine, "connect", _on_sqlite_connect)
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
            check_schema_version(version, owner=owner)
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

    def upgrade(self, signer: Signer | None = None) -> int:
        """Apply pending schema migrations in one transaction; returns the new version.

        Called by the owner's unlock, after the passphrase has been checked, with the
        root key's ``signer`` for the migrations that sign rows. Costs one read when
        the schema is current.

        :raises IntegrityError: when a migration that signs rows has no ``signer``.
        """
        with self.read() as session:
            current = session.scalar(select(SchemaInfo.schema_version)) or 1
        if current >= SCHEMA_VERSION:
            return current
        with self.write() as session:
            conn = session.connection()
            current = session.scalar(select(SchemaInfo.schema_version)) or 1
            for step in pending(current):  # another process may have migrated meanwhile
                step.apply(conn)
                if step.sign_rows is not None:
                    if signer is None:
                        raise IntegrityError(f"schema version {step.to_version} needs the root key")
                    step.sign_rows(conn, signer)
                session.execute(update(SchemaInfo).values(schema_version=step.to_version))
                current = step.to_version
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
                if not self.is_sqlite:
                    # PostgreSQL: one advisory lock per write transaction, taken first,
                    # makes writers queue as SQLite's BEGIN IMMEDIATE does. Taking locks
                    # in varying orders (a row, then the audit chain's head) deadlocked
                    # under the concurrency suite. It needs no privilege, so a read-only
                    # role that may append to the audit log can take it.
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
    """The schema :data:`Base.metadata` declares, as ``dialect`` creates it."""
    schema: Schema = {None: {}}
    for table in Base.metadata.sorted_tables:
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
