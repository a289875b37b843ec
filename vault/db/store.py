"""SQL storage of a vault: engine setup, transactions and error translation.

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
PostgreSQL a row lock on the audit chain's head (:data:`vault.db.tables.AUDIT_HEAD`)
does the same, waiting at most :data:`WRITE_LOCK_TIMEOUT_MS`.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, event, inspect, select, text
from sqlalchemy.engine import URL, Connection, Engine
from sqlalchemy.exc import (
    ArgumentError,
    DatabaseError,
    DBAPIError,
    NoSuchModuleError,
    SQLAlchemyError,
)
from sqlalchemy.orm import Session
from sqlalchemy.pool import StaticPool
from sqlalchemy.sql.expression import ClauseElement

from vault.db import migrations, queries, sqlite_file
from vault.db.postgres import install_audit_head
from vault.db.schema_version import (
    AUDIT_HEAD_SCHEMA,
    SCHEMA_VERSION,
    OwnerKeys,
    check_schema_version,
)
from vault.db.sqlite_file import BUSY_TIMEOUT_MS, create_sqlite_file, fsync_path
from vault.db.sqlite_store import SqliteTransaction, checkpoint_until_done
from vault.db.tables import Base, SchemaInfo
from vault.db.transaction import POSTGRESQL, SQLITE, Row, Transaction
from vault.db.url import describe_location, malformed_url, parse_url, sqlite_path, sqlite_url
from vault.errors import (
    AlreadyExists,
    InvalidInput,
    VaultUnavailable,
    database_error,
    first_line,
    printable,
    quoted,
)
from vault.errors import (
    StoreError as StoreError,  # re-exported: the store's own failure
)

HEAD_ROW = "exvault_audit_head"
"""Key of a write session's ``info``: set when the chain's head is the row of
:data:`vault.db.tables.AUDIT_HEAD` (PostgreSQL, schema version 4 on), not the entry of
highest ``seq``."""
WRITE_LOCK_TIMEOUT_MS = 30_000
"""How long a PostgreSQL write waits for the write lock before failing with a conflict
(``lock_timeout``): a lock held by a stuck or hostile session must not hang the fleet."""


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
    write = bool(conn.get_execution_options().get("exvault_write"))
    queries.begin_sqlite(conn.exec_driver_sql, write=write)


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
            f"no database driver for {quoted(url.drivername)} URLs; for PostgreSQL: install "
            "exvault with its postgresql extra (pip install '.[postgresql]' in its source "
            "tree) and use postgresql+psycopg://..."
        ) from None
    except ArgumentError:  # a URL the dialect refuses, e.g. sqlite://host
        raise malformed_url(url.render_as_string(hide_password=True)) from None


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


class EngineStore:
    """A vault's database through SQLAlchemy: a database URL (PostgreSQL), and for any
    backend the creation of a vault and the migration of an older schema. Its
    transactions (:class:`SessionTransaction`) carry the SQLAlchemy session too."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        # PostgreSQL at schema version 4 or later: writers lock the audit chain's head
        # row; older schemas (and a vault being created) have only the advisory lock.
        self._locks_head = False
        self._schema_version = SCHEMA_VERSION

    @property
    def url(self) -> URL:
        """The database URL (password hidden when printed)."""
        return self.engine.url

    @property
    def is_sqlite(self) -> bool:
        """True for the SQLite backend."""
        return self.engine.url.get_backend_name() == "sqlite"

    @property
    def backend(self) -> str:
        """``sqlite`` or ``postgresql``."""
        return SQLITE if self.is_sqlite else POSTGRESQL

    @property
    def location(self) -> str:
        """The file path, or the URL without its password."""
        return describe_location(self.engine.url)

    @property
    def path(self) -> Path | None:
        """The SQLite file, or None for another database."""
        return sqlite_path(self.engine.url)

    @property
    def schema_version(self) -> int:
        """The schema version as opening, creating or migrating left it."""
        return self._schema_version

    @classmethod
    def create(cls, url: URL | str, initialize: Callable[[Transaction], None]) -> EngineStore:
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
            with store.write() as transaction:
                session = transaction.session
                if store._has_schema(session):
                    raise AlreadyExists("a vault exists there already")
                Base.metadata.create_all(session.connection())
                session.add(SchemaInfo(id=1, schema_version=SCHEMA_VERSION))
                session.flush()
                initialize(transaction)
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
    def open(cls, url: URL | str, *, owner: bool = False) -> EngineStore:
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
            store._schema_version = version if isinstance(version, int) else 1
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
        with self.read() as transaction:
            current = transaction.session.scalar(select(SchemaInfo.schema_version)) or 1
        if current < SCHEMA_VERSION:
            with self.write() as transaction:
                session = transaction.session
                # Read again under the write lock: another process may have migrated
                # meanwhile.
                current = session.scalar(select(SchemaInfo.schema_version)) or 1
                current = migrations.upgrade(session.connection(), owner, current)
        self._locks_head = not self.is_sqlite and current >= AUDIT_HEAD_SCHEMA
        self._schema_version = current
        return current

    @staticmethod
    def _has_schema(session: Session) -> bool:
        return "exvault_schema" in _table_names(session.connection())

    @contextmanager
    def read(self) -> Iterator[SessionTransaction]:
        """A read-only transaction (a consistent snapshot on SQLite's WAL).

        :raises StoreError: when the database fails.
        """
        with (
            self.translate_errors(),
            Session(self.engine, expire_on_commit=False) as session,
            session.begin(),
        ):
            yield SessionTransaction(session, self.backend)

    @contextmanager
    def write(self) -> Iterator[SessionTransaction]:
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
                    session.execute(text(queries.lock_timeout_sql(WRITE_LOCK_TIMEOUT_MS)))
                    session.execute(text(queries.LOCK_WRITES_SQL))
                    session.info[HEAD_ROW] = True
                elif not self.is_sqlite:
                    # An older schema, or the vault being created: the advisory lock
                    # older exvaults take too, so that they queue with this one.
                    session.execute(text(queries.ADVISORY_LOCK_SQL), {"k": queries.WRITE_LOCK_KEY})
                yield SessionTransaction(session, self.backend)

    def checkpoint(self) -> bool:
        """Fold the WAL into the database and truncate it (SQLite only).

        Called after deletes, so that the page images of removed ciphertexts do not
        linger in the ``-wal`` file. :returns: False when readers kept it from
        completing for about ten seconds (the next checkpoint will finish the job).
        """
        if not self.is_sqlite:
            return True

        def run() -> Row | None:
            with self.translate_errors(), self.engine.connect() as conn:
                return conn.exec_driver_sql(queries.WAL_CHECKPOINT_SQL).first()

        return checkpoint_until_done(run)

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
        except sqlite3.Error as exc:  # a statement run on SQLite's own connection
            raise database_error(first_line(exc)) from None


class SessionTransaction:
    """A transaction of an :class:`EngineStore`: the statements of
    :mod:`vault.db.queries` over its SQLAlchemy session (compiled by nothing: SQL text),
    and the session itself for what still uses SQLAlchemy's ORM or Core
    (:func:`orm_session`).

    On SQLite a statement runs on the sqlite3 connection under the session, as on a
    :class:`vault.db.sqlite_store.SqliteStore`. Either way the session's pending ORM
    changes are flushed first, so that a statement sees what the transaction has
    changed so far.
    """

    def __init__(self, session: Session, backend: str) -> None:
        self._session = session
        self._backend = backend

    @property
    def session(self) -> Session:
        """The SQLAlchemy session the transaction runs in."""
        return self._session

    @property
    def backend(self) -> str:
        """``sqlite`` or ``postgresql``."""
        return self._backend

    @property
    def locks_head(self) -> bool:
        """True in a PostgreSQL write holding the audit chain's head row."""
        return bool(self._session.info.get(HEAD_ROW))

    def _raw_sqlite(self) -> sqlite3.Connection | None:
        connection = self._session.connection()
        if connection.dialect.name != SQLITE:
            return None
        raw: sqlite3.Connection = connection.connection.driver_connection  # type: ignore[assignment]
        return raw

    def execute(self, sql: str, params: Mapping[str, Any] | None = None) -> list[Row]:
        """Run one statement; its rows."""
        self._session.flush()
        raw = self._raw_sqlite()
        if raw is not None:
            rows: list[Row] = raw.execute(sql, params or {}).fetchall()
            return rows
        result = self._session.connection().execute(text(sql), dict(params or {}))
        return list(result.all()) if result.returns_rows else []

    def execute_many(self, sql: str, params: Sequence[Mapping[str, Any]]) -> None:
        """Run one statement once per set of parameters."""
        self._session.flush()
        raw = self._raw_sqlite()
        if raw is not None:
            raw.executemany(sql, params)
        else:
            self._session.connection().execute(text(sql), [dict(p) for p in params])

    def iterate(self, sql: str, params: Mapping[str, Any] | None = None) -> Iterator[Row]:
        """The rows of one statement, a thousand at a time."""
        self._session.flush()
        raw = self._raw_sqlite()
        if raw is not None:
            cursor = raw.execute(sql, params or {})
            try:
                while rows := cursor.fetchmany(1000):
                    yield from rows
            finally:
                cursor.close()
            return
        result = self._session.connection().execute(text(sql), dict(params or {}))
        for partition in result.partitions(1000):
            yield from partition

    @contextmanager
    def savepoint(self) -> Iterator[None]:
        """A block whose writes (and changed ORM objects) are undone when it raises."""
        with self._session.begin_nested():
            yield

    @contextmanager
    def tolerant_text(self) -> Iterator[None]:
        """Text that is not UTF-8 comes back surrogate-escaped inside the block
        (SQLite; nothing changes on PostgreSQL)."""
        raw = self._raw_sqlite()
        if raw is None:
            yield
            return
        previous = raw.text_factory
        raw.text_factory = _surrogate_escaped
        try:
            yield
        finally:
            raw.text_factory = previous


class _Unowned:
    """A sqlite3 connection lent to SQLAlchemy for one transaction that is not its own:
    SQLAlchemy's commit, rollback and close do nothing, so that the
    :class:`vault.db.sqlite_store.SqliteStore` that began the transaction ends it. Once
    released (:meth:`release`: the transaction is over) it refuses every use: the
    connection is the store's again, outside any transaction of this session's."""

    __slots__ = ("_raw",)

    def __init__(self, raw: sqlite3.Connection) -> None:
        object.__setattr__(self, "_raw", raw)

    def __getattr__(self, name: str) -> Any:
        if self._raw is None:
            raise sqlite3.ProgrammingError("the transaction this session ran in is over")
        return getattr(self._raw, name)

    def release(self) -> None:
        """Give the connection back: the transaction it was lent for has ended."""
        object.__setattr__(self, "_raw", None)

    def __setattr__(self, name: str, value: Any) -> None:
        setattr(self._raw, name, value)

    def commit(self) -> None:
        """The store commits."""

    def rollback(self) -> None:
        """The store rolls back."""

    def close(self) -> None:
        """The store closes its connection."""


def orm_session(transaction: Transaction) -> Session:
    """A SQLAlchemy session inside ``transaction``, for the readers that still use its
    ORM or Core (``verify``, ``check``, ``doctor``, the backups, the migrations).

    An :class:`EngineStore`'s own session; on a :class:`SqliteStore`'s transaction, a
    session over the very same sqlite3 connection (it sees the transaction's writes,
    and its flushes are part of it), which the store flushes before it commits.
    """
    if isinstance(transaction, SessionTransaction):
        return transaction.session
    if not isinstance(transaction, SqliteTransaction):
        raise TypeError(f"no SQLAlchemy session for {type(transaction).__name__}")
    found = transaction.companion
    if isinstance(found, Session):
        return found
    lent = _Unowned(transaction.connection)
    engine = create_engine(
        "sqlite+pysqlite://",
        creator=lambda: lent,
        poolclass=StaticPool,
        hide_parameters=True,
    )
    session = Session(engine, expire_on_commit=False)

    def close() -> None:
        session.close()
        lent.release()

    transaction.attach(session.flush, close, session, session.begin_nested)
    return session


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


def _table_names(conn: Connection) -> set[str]:
    return set(inspect(conn).get_table_names())
