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
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import (
    BigInteger,
    ForeignKeyConstraint,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    create_engine,
    event,
    select,
    text,
    update,
)
from sqlalchemy.engine import URL, Connection, Engine, make_url
from sqlalchemy.exc import DatabaseError, DBAPIError, NoSuchModuleError, SQLAlchemyError
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column
from sqlalchemy.sql.expression import ClauseElement

from vault.errors import (
    AccessDenied,
    AlreadyExists,
    Conflict,
    IntegrityError,
    InvalidInput,
    UnsupportedFormat,
    VaultError,
    VaultUnavailable,
)

SCHEMA_VERSION = 2
"""Version of the SQL schema; separate from the cryptographic format version.
Older schemas are brought up to date by :mod:`vault.migrations`."""

BUSY_TIMEOUT_MS = 30_000
WRITE_LOCK_KEY = 0x65787661756C74  # "exvault": PostgreSQL advisory lock of write transactions


class StoreError(VaultError):
    """The database failed (disk full, I/O error, lock held too long)."""


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


def create_sqlite_file(path: Path) -> None:
    """Create an empty vault file 0600 in a 0700 directory, before SQLite touches it.

    Creating the file ourselves (``O_CREAT | O_EXCL``, mode 0600) closes the window in
    which SQLite would create it with the umask's mode; SQLite then gives the ``-wal``
    and ``-shm`` files the same mode as the database file.

    :raises AlreadyExists: when the file exists.
    """
    directory = path.parent
    if not directory.exists():
        directory.mkdir(mode=0o700, parents=True)
        os.chmod(directory, 0o700)  # mkdir's mode is filtered by the umask
    try:
        fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
    except FileExistsError:
        raise AlreadyExists(f"a file exists at {path}; refusing to overwrite it") from None
    os.fchmod(fd, 0o600)
    os.close(fd)


def fsync_path(path: Path) -> None:
    """Flush a file's, or a directory's entries', data to disk."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _on_sqlite_connect(dbapi_connection: Any, _record: Any) -> None:
    # Take transaction control away from the sqlite3 module so that BEGIN (and
    # BEGIN IMMEDIATE for writes) is ours to emit; see the "begin" listener.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA journal_mode = WAL")
        cursor.execute("PRAGMA synchronous = FULL")
        cursor.execute("PRAGMA secure_delete = ON")
        cursor.execute("PRAGMA foreign_keys = ON")
    finally:
        cursor.close()


def _on_sqlite_begin(conn: Connection) -> None:
    if conn.get_execution_options().get("exvault_write"):
        conn.exec_driver_sql("BEGIN IMMEDIATE")
    else:
        conn.exec_driver_sql("BEGIN")


def make_engine(url: URL | str) -> Engine:
    """An engine for ``url`` with exvault's per-connection settings.

    ``hide_parameters`` keeps bound values (ciphertexts, wrapped keys) out of
    SQLAlchemy's exception messages and logs.
    """
    url = make_url(url)
    try:
        return _make_engine(url)
    except (NoSuchModuleError, ImportError):
        raise InvalidInput(
            f'no database driver for "{url.drivername}" URLs; for PostgreSQL: '
            "pip install 'exchange-vault[postgresql]' and use postgresql+psycopg://..."
        ) from None


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
    detail = str(orig) if orig is not None else type(exc).__name__
    return detail.splitlines()[0] if detail else type(exc).__name__


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
        :raises StoreError: when the database cannot be written.
        """
        url = make_url(url)
        path = sqlite_path(url)
        build = None
        if path is not None:
            if path.exists():
                raise AlreadyExists(f"a file exists at {path}; refusing to overwrite it")
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
                        f"a file appeared at {path} meanwhile; refusing to overwrite it"
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
        :raises IntegrityError: when the file is not a readable exvault database.
        :raises UnsupportedFormat: when the schema is newer than this exvault, or too
            old for a reader.
        """
        url = make_url(url)
        path = sqlite_path(url)
        try:
            present = path is None or path.is_file()
        except OSError as exc:  # e.g. a directory this user may not enter
            raise AccessDenied(f"cannot access {path}: {exc.strerror}") from None
        if not present:
            raise VaultUnavailable(f"no vault at {path}; create one with: exvault init")
        store = cls(make_engine(url))
        try:
            with store.engine.connect() as conn:
                if "exvault_schema" not in _table_names(conn):
                    raise VaultUnavailable(f"no vault at {url.render_as_string()}")
                version = conn.execute(select(SchemaInfo.schema_version)).scalar()
        except DatabaseError as exc:
            store.dispose()
            detail = describe_database_error(exc)
            if path is None:
                raise VaultUnavailable(f"cannot reach the database: {detail}") from None
            if any(w in detail for w in ("readonly", "unable to open", "permission")):
                # WAL mode needs write access to the file, its -wal and -shm, and the
                # directory, even to read.
                raise AccessDenied(
                    f"cannot open {path}: {detail} (exvault needs read and write access "
                    "to the vault file, its -wal and -shm files and its directory)"
                ) from None
            raise IntegrityError(
                "damaged vault: the file is not a readable exvault database"
            ) from None
        except BaseException:
            store.dispose()
            raise
        if version is None or version > SCHEMA_VERSION:
            store.dispose()
            raise UnsupportedFormat(
                f"the vault's schema version {version} is newer than this exvault supports "
                f"({SCHEMA_VERSION}); upgrade exvault"
            )
        from vault.migrations import pending

        if not owner and not all(m.readers_compatible for m in pending(version)):
            store.dispose()
            raise UnsupportedFormat(
                f"the vault's schema (version {version}) needs an upgrade this reader cannot "
                "do: run any exvault command that asks for the passphrase, once, as the owner"
            )
        return store

    def upgrade(self) -> int:
        """Apply pending schema migrations in one transaction; returns the new version.

        Called by the owner's unlock, after the passphrase has been checked. Costs one
        read when the schema is current.
        """
        from vault.migrations import pending

        with self.read() as session:
            current = session.scalar(select(SchemaInfo.schema_version)) or 1
        if current >= SCHEMA_VERSION:
            return current
        with self.write() as session:
            conn = session.connection()
            current = session.scalar(select(SchemaInfo.schema_version)) or 1
            for step in pending(current):  # another process may have migrated meanwhile
                step.apply(conn)
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
            detail = describe_database_error(exc)
            if "Could not decode" in detail:
                # A BLOB rewritten as TEXT; sqlite3's message would quote its bytes.
                raise IntegrityError(
                    "damaged vault: a column holds data of the wrong type"
                ) from None
            # SQLite's words for a damaged file: the vault is damaged, not the database
            # server unhappy, and the user should hear the same as for a bad signature.
            if "malformed" in detail or "not a database" in detail:
                raise IntegrityError(f"damaged vault: {detail}") from None
            if "permission denied" in detail:
                raise AccessDenied(
                    f"the database refused: {detail} (is this a read-only database role?)"
                ) from None
            if "duplicate key" in detail or "UNIQUE constraint" in detail:
                raise Conflict(
                    "another writer changed the same record at the same moment; try again"
                ) from None
            raise StoreError(f"database error: {detail}") from None


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
    from sqlalchemy import inspect

    return set(inspect(conn).get_table_names())
