"""A vault file through the standard library's :mod:`sqlite3` alone.

The owner's commands and ``check`` on a vault file run here, so that they load no
SQLAlchemy (whose import costs more than the command: docs/benchmarks.md, the unlock
agent's section). The file's settings are those of every exvault connection
(:func:`vault.db.sqlite_file.configure`: its layout's journal mode, ``synchronous=FULL``,
``secure_delete``, foreign keys, a busy timeout); reads begin ``BEGIN``, writes ``BEGIN
IMMEDIATE`` (:func:`vault.db.queries.begin_sqlite`), so two writers queue on the lock.

A store keeps its connections (one, unless a read begins inside another transaction)
until :meth:`SqliteStore.dispose`; a handle is for one thread, as the owner's handles
are. Creating a vault, migrating an
older schema and comparing the schema stay with SQLAlchemy (:mod:`vault.db.backends`
opens that door only for them).
"""

from __future__ import annotations

import itertools
import sqlite3
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from pathlib import Path
from typing import Any

from vault.db import queries, sqlite_file
from vault.db.schema_version import check_schema_version
from vault.db.transaction import SQLITE, Row
from vault.errors import VaultUnavailable, database_error, first_line, printable

_NO_PARAMS: Mapping[str, Any] = {}


def _surrogate_escaped(data: bytes) -> str:
    return data.decode("utf-8", "surrogateescape")


def checkpoint_until_done(run: Callable[[], Row | None]) -> bool:
    """Run a WAL checkpoint (``run`` returns its row) until it completes; False when
    readers kept it from completing for about ten seconds (the next one finishes the
    job). A reader's open snapshot can keep the checkpoint from reaching the end of the
    WAL ("busy"); readers are short, so it tries again for a little while."""
    for attempt in range(20):
        busy = run()
        if busy is not None and busy[0] == 0:
            return True
        time.sleep(0.05 * (attempt + 1))
    return False


class SqliteTransaction:
    """One transaction on a :class:`SqliteStore`'s connection."""

    backend = SQLITE
    locks_head = False

    def __init__(self, connection: sqlite3.Connection) -> None:
        self._connection = connection
        # Begun (by the store) when made: it must still be open at each statement.
        self._begun = connection.in_transaction
        self._savepoints = itertools.count(1)
        self._flush: Callable[[], None] | None = None
        self._close: Callable[[], None] | None = None
        self._nested: Callable[[], AbstractContextManager[object]] | None = None
        self._companion: object = None

    def attach(
        self,
        flush: Callable[[], None],
        close: Callable[[], None],
        companion: object,
        nested: Callable[[], AbstractContextManager[object]],
    ) -> None:
        """Attach a companion that holds writes of its own on this connection (a
        SQLAlchemy session: :func:`vault.db.store.orm_session`): ``flush`` runs before
        every statement and before the commit, ``close`` when the transaction ends,
        ``nested`` around each :meth:`savepoint`'s block (the companion's own savepoint,
        which forgets what the block changed in it when the block raises)."""
        self._flush, self._close, self._companion = flush, close, companion
        self._nested = nested

    @property
    def companion(self) -> object:
        """What :meth:`attach` attached, or None."""
        return self._companion

    def flush(self) -> None:
        """Write what the companion holds (see :meth:`attach`)."""
        if self._flush is not None:
            self._flush()

    def _ready(self) -> None:
        # Some failures (an interrupt, a full disk, no memory) make SQLite roll the whole
        # transaction back. What follows a caught one must not run in autocommit, each
        # statement kept at once however the transaction then ends.
        if self._begun and not self._connection.in_transaction:
            raise sqlite3.OperationalError("the transaction was rolled back by an earlier error")
        self.flush()

    def end(self) -> None:
        """Close the companion, if any: the transaction is over."""
        if self._close is not None:
            self._close()
        self._flush = self._close = self._companion = self._nested = None

    @property
    def connection(self) -> sqlite3.Connection:
        """The standard library's connection the transaction runs on (for SQLAlchemy's
        ORM where it is still used: :func:`vault.db.store.orm_session`)."""
        return self._connection

    def execute(self, sql: str, params: Mapping[str, Any] | None = None) -> list[Row]:
        """Run one statement; its rows."""
        self._ready()
        rows: list[Row] = self._connection.execute(sql, params or _NO_PARAMS).fetchall()
        return rows

    def execute_many(self, sql: str, params: Sequence[Mapping[str, Any]]) -> None:
        """Run one statement once per set of parameters."""
        self._ready()
        self._connection.executemany(sql, params)

    def iterate(self, sql: str, params: Mapping[str, Any] | None = None) -> Iterator[Row]:
        """The rows of one statement, a thousand at a time."""
        self._ready()
        cursor = self._connection.execute(sql, params or _NO_PARAMS)
        try:
            while rows := cursor.fetchmany(1000):
                yield from rows
        finally:
            cursor.close()

    @contextmanager
    def savepoint(self) -> Iterator[None]:
        """A block whose writes are rolled back, and only they, when it raises."""
        name = f"exvault_{next(self._savepoints)}"
        self._ready()
        self._connection.execute(f"SAVEPOINT {name}")
        try:
            # The companion's changes made in the block, flushed or not, must go too.
            with self._nested() if self._nested is not None else nullcontext():
                yield
        except BaseException:
            if self._connection.in_transaction:  # else SQLite rolled it all back
                self._connection.execute(f"ROLLBACK TO SAVEPOINT {name}")
                self._connection.execute(f"RELEASE SAVEPOINT {name}")
            raise
        self.flush()
        self._connection.execute(f"RELEASE SAVEPOINT {name}")

    @contextmanager
    def tolerant_text(self) -> Iterator[None]:
        """Text that is not UTF-8 comes back surrogate-escaped inside the block."""
        previous = self._connection.text_factory
        self._connection.text_factory = _surrogate_escaped
        try:
            yield
        finally:
            self._connection.text_factory = previous


class SqliteStore:
    """An existing vault file, through :mod:`sqlite3`."""

    backend = SQLITE
    is_sqlite = True

    def __init__(
        self,
        path: Path,
        connection: sqlite3.Connection,
        schema_version: int,
        *,
        journal: str | None = None,
    ) -> None:
        """A store over ``connection`` to ``path`` (:meth:`open` makes one); ``journal``:
        the journal mode of every further connection (an audit file's), else the
        layout's."""
        self._path = path
        self._schema_version = schema_version
        self._journal = journal
        # Connections not in a transaction. A read begun while another transaction of
        # this store is open (a check inside a write) takes a second connection, as
        # SQLAlchemy's pool would: its snapshot does not see the open write.
        self._idle = [connection]
        self._all = [connection]
        # Connections in a transaction when the store was disposed of: closed once it ends.
        self._retired: list[sqlite3.Connection] = []

    @classmethod
    def open(cls, path: Path, *, owner: bool = False) -> SqliteStore:
        """Open the vault file at ``path`` and check its schema version (any older one
        for its ``owner``, who migrates it: :func:`vault.db.backends.upgrade`).

        :raises VaultUnavailable: when there is no vault there.
        :raises AccessDenied: when the file or its directory cannot be accessed.
        :raises IntegrityError: when the file is not a readable exvault database, or
            its schema version is not a number.
        :raises UnsupportedFormat: when the schema is newer than this exvault, or too
            old for a reader.
        """
        journal = sqlite_file.journal_mode(path)
        connection = sqlite_file.connect(path, journal=journal)
        try:
            try:
                if not connection.execute(queries.SQLITE_SCHEMA_TABLE_SQL).fetchall():
                    raise VaultUnavailable(f"no vault at {printable(str(path))}")
                found = connection.execute(queries.SCHEMA_VERSION_SQL).fetchall()
            except sqlite3.DatabaseError as exc:
                raise sqlite_file.open_failure(path, first_line(exc)) from None
            version = found[0][0] if found else None
            check_schema_version(version, owner=owner, backend=SQLITE)
        except BaseException:
            connection.close()
            raise
        return cls(path, connection, version if isinstance(version, int) else 1)

    @property
    def path(self) -> Path:
        """The vault file."""
        return self._path

    @property
    def location(self) -> str:
        """The vault file's path."""
        return str(self._path)

    @property
    def schema_version(self) -> int:
        """The schema version opening found (or a migration left)."""
        return self._schema_version

    def schema_changed(self, version: int) -> None:
        """Note that a migration brought the file to ``version``."""
        self._schema_version = version

    @contextmanager
    def read(self) -> Iterator[SqliteTransaction]:
        """A read transaction: a consistent snapshot (WAL) until the block ends.

        :raises StoreError: when the database fails.
        """
        with self._transaction(write=False) as transaction:
            yield transaction

    @contextmanager
    def write(self) -> Iterator[SqliteTransaction]:
        """A write transaction, begun IMMEDIATE; commits on normal exit.

        :raises StoreError: when the database fails.
        """
        with self._transaction(write=True) as transaction:
            yield transaction

    @contextmanager
    def _transaction(self, *, write: bool) -> Iterator[SqliteTransaction]:
        with self.translate_errors():
            connection = self._idle.pop() if self._idle else self._connect()
            try:
                queries.begin_sqlite(connection.execute, write=write)
                transaction = SqliteTransaction(connection)
                try:
                    yield transaction
                    transaction.flush()
                    connection.execute("COMMIT")
                except BaseException:
                    if connection.in_transaction:
                        connection.execute("ROLLBACK")
                    raise
                finally:
                    transaction.end()
            finally:
                if connection in self._retired:
                    self._retired.remove(connection)
                    connection.close()
                else:
                    self._idle.append(connection)

    def _connect(self) -> sqlite3.Connection:
        # The journal mode follows the file's layout, looked at on each new connection:
        # a vault made shared (or single-user again) by another process is seen at once.
        journal = self._journal or sqlite_file.journal_mode(self._path)
        connection = sqlite_file.connect(self._path, journal=journal)
        self._all.append(connection)
        return connection

    def checkpoint(self) -> bool:
        """Fold the WAL into the file and truncate it; False when readers kept it from
        completing for about ten seconds (the next checkpoint will finish the job)."""

        def run() -> Row | None:
            with self.translate_errors():
                connection = self._idle[-1] if self._idle else self._connect()
                found: Row | None = connection.execute(queries.WAL_CHECKPOINT_SQL).fetchone()
                return found

        return checkpoint_until_done(run)

    def dispose(self) -> None:
        """Close every connection: at once those not in a transaction, the others when
        their transaction ends (as SQLAlchemy's pool does). The store opens new ones if
        it is used again."""
        for connection in self._all:
            if connection in self._idle:
                connection.close()
            else:
                self._retired.append(connection)
        self._all.clear()
        self._idle.clear()

    @staticmethod
    @contextmanager
    def translate_errors() -> Iterator[None]:
        """Turn :mod:`sqlite3` errors into :class:`VaultError` s (no SQL text, no values)."""
        try:
            yield
        except sqlite3.Error as exc:
            raise database_error(first_line(exc)) from None
        except Exception as exc:
            # SQLAlchemy's ORM over this store's connection (vault.db.store.orm_session)
            # wraps the driver's error in its own, as ``orig``: the same failure.
            orig = getattr(exc, "orig", None)
            if isinstance(orig, sqlite3.Error):
                raise database_error(first_line(orig)) from None
            raise


__all__ = ["SqliteStore", "SqliteTransaction", "checkpoint_until_done"]
