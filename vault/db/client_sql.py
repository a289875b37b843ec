"""The client's (a bot's) store, over either of two connections.

A bot often starts a new process just to fetch its key; importing SQLAlchemy costs
such a process more than everything else together (docs/benchmarks.md, figure 2).
So a client reading a SQLite vault talks to :mod:`sqlite3` directly
(:class:`SqliteClientStore`), and any other database (PostgreSQL) goes through the
SQLAlchemy store (:class:`EngineClientStore`). Both run the same statements of
:mod:`vault.db.queries` and return the plain rows of :mod:`vault.format.schema`, which
:mod:`vault.format.records` verifies exactly as it verifies ORM records; the client
tests run on both.

Only reads and audit appends live here; nothing a client does changes a credential.
In the shared layout of a SQLite vault (docs/deploy.md) the client cannot change the
vault file at all: it reads it read-only and appends to the audit file beside it.
A new client query is added to :mod:`vault.db.queries` as SQL text over the columns of
:mod:`vault.format.schema`, not as an ORM query, so that both paths run it.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from vault.db import queries, sqlite_file
from vault.db.queries import Execute, StageRows
from vault.db.schema_version import check_schema_version
from vault.errors import (
    AccessDenied,
    VaultError,
    VaultUnavailable,
    database_error,
    first_line,
    printable,
)
from vault.format.keywrap import Recipient
from vault.format.schema import ClientRow, HeaderRow, ObservationRow

if TYPE_CHECKING:
    from sqlalchemy.engine import URL

    from vault.db.store import EngineStore


class ClientStore(Protocol):
    """What :class:`vault.runtime.client.ClientVault` needs of the database."""

    def header(self) -> HeaderRow | None:
        """The header row (unchecked), or None when it is missing."""

    def client(self, client_id: str) -> ClientRow | None:
        """A client's row (unchecked)."""

    def stage(self, name: str, stage: str, recipient: Recipient) -> StageRows | None:
        """Credential ``name``'s head with its ``stage`` version, payload and the wrap for
        ``recipient``; None when there is no such credential."""

    def append_audit(self, vault_id: bytes, **entry: Any) -> None:
        """Append an audit entry (see :func:`vault.format.audit_entry.new_entry`) in a write
        transaction of its own."""

    def record_observation(self, vault_id: bytes, row: ObservationRow, **entry: Any) -> None:
        """Store a signed probe observation and append its audit ``entry``, in one write
        transaction.

        :raises AccessDenied: where the client cannot write the vault's tables."""

    def close(self) -> None:
        """Release the connection."""


class _SqlClientStore:
    """The statements, given how to run them (:meth:`_reading`, :meth:`_writing`)."""

    # Whether the chain's head is PostgreSQL's head row, appended after through the
    # append function (EngineClientStore), or the table itself (SQLite).
    _head_row = False

    def _reading(self) -> AbstractContextManager[Execute]:
        raise NotImplementedError

    def _writing(self) -> AbstractContextManager[Execute]:
        raise NotImplementedError

    def header(self) -> HeaderRow | None:
        with self._reading() as execute:
            found = execute(queries.HEADER_SQL, {})
        return HeaderRow._make(found[0]) if found else None

    def client(self, client_id: str) -> ClientRow | None:
        with self._reading() as execute:
            found = execute(queries.CLIENT_SQL, {"id": client_id})
        return ClientRow._make(found[0]) if found else None

    def stage(self, name: str, stage: str, recipient: Recipient) -> StageRows | None:
        with self._reading() as execute:
            found = execute(queries.STAGE_SQL[stage], {"name": name, "recipient": recipient.column})
        return queries.split_stage_row(found[0]) if found else None

    def append_audit(self, vault_id: bytes, **entry: Any) -> None:
        with self._writing() as execute:
            queries.append_audit(execute, vault_id, head_row=self._head_row, **entry)

    def _writes_the_vault(self) -> bool:
        # Whether this client's writes reach the vault's own tables (not only an audit
        # file, or PostgreSQL's append function).
        return not self._head_row

    def record_observation(self, vault_id: bytes, row: ObservationRow, **entry: Any) -> None:
        if not self._writes_the_vault():
            raise AccessDenied(
                "a client can record probe observations only in a SQLite vault in the "
                "single-user layout; probe as the owner (through the unlock agent)"
            )
        with self._writing() as execute:
            execute(queries.INSERT_OBSERVATION_SQL, queries.observation_values(row))
            queries.append_audit(execute, vault_id, head_row=False, **entry)


class SqliteClientStore(_SqlClientStore):
    """A SQLite vault file through :mod:`sqlite3`, with the store's settings.

    In the shared layout (:func:`vault.db.sqlite_file.is_shared`) the vault file is opened
    read-only, whoever runs the client, and audit entries go to the audit file beside
    it; in the single-user layout both go to the vault file, as always.
    """

    def __init__(self, path: Path) -> None:
        self._path = path
        self._lock = threading.Lock()  # one connection, shared by the handle's threads
        self._shared = sqlite_file.is_shared(path)
        self._connection = sqlite_file.connect(path, read_only=self._shared)
        self._audit_connection: sqlite3.Connection | None = None
        try:
            self._check_schema()
        except BaseException:
            self._connection.close()
            raise

    def _check_schema(self) -> None:
        try:
            found = self._connection.execute(queries.SCHEMA_VERSION_SQL).fetchall()
        except sqlite3.Error as exc:
            detail = first_line(exc)
            if "no such table" in detail:
                raise VaultUnavailable(f"no vault at {printable(self._path)}") from None
            raise sqlite_file.open_failure(self._path, detail) from None
        check_schema_version(found[0][0] if found else None, owner=False, backend="sqlite")

    def _writes_the_vault(self) -> bool:
        return not self._shared

    def _audit_target(self) -> sqlite3.Connection:
        # Where entries are appended: the vault itself, or (shared layout) the audit
        # file, opened at the first append (most handles read one key and close).
        if not self._shared:
            return self._connection
        if self._audit_connection is None:
            try:
                self._audit_connection = sqlite_file.connect(
                    sqlite_file.audit_file_path(self._path), journal=sqlite_file.AUDIT_FILE_JOURNAL
                )
            except VaultError:
                raise self._audit_file_refused() from None
        return self._audit_connection

    def _audit_file_refused(self) -> AccessDenied:
        return AccessDenied(
            f"cannot append to the audit file {printable(sqlite_file.audit_file_path(self._path))}"
            " (it must be writable by this user's group: exvault share --group GROUP sets it up)"
        )

    @contextmanager
    def _translated(self) -> Iterator[None]:
        try:
            yield
        except sqlite3.Error as exc:
            raise database_error(first_line(exc)) from None

    @contextmanager
    def _reading(self) -> Iterator[Execute]:
        # Autocommit mode: each statement is its own consistent snapshot, and a client
        # reads with one statement at a time.
        with self._lock, self._translated():
            yield queries.sqlite_executor(self._connection)

    @contextmanager
    def _writing(self) -> Iterator[Execute]:
        with self._lock, self._translated():
            try:
                with queries.sqlite_write(self._audit_target()) as execute:
                    yield execute
            except sqlite3.OperationalError as exc:
                detail = first_line(exc)
                if self._shared and ("readonly" in detail or "unable to open" in detail):
                    raise self._audit_file_refused() from None
                raise

    def close(self) -> None:
        with self._lock:
            self._connection.close()
            if self._audit_connection is not None:
                self._audit_connection.close()


class EngineClientStore(_SqlClientStore):
    """Any database through the SQLAlchemy store (PostgreSQL, or a ``sqlite://`` URL)."""

    def __init__(self, url: URL) -> None:
        # SQLAlchemy is loaded only here, for a URL: a bot reading a SQLite file never
        # imports it (docs/benchmarks.md, figure 2; tests/db/test_client_sql.py).
        from vault.db.store import EngineStore

        self._store: EngineStore = EngineStore.open(url)
        # The reader role has no INSERT on audit_log on PostgreSQL: the function
        # appends, after the database checks that the entry follows the head row.
        self._head_row = not self._store.is_sqlite

    @contextmanager
    def _reading(self) -> Iterator[Execute]:
        with self._store.read() as transaction:
            yield transaction.execute

    @contextmanager
    def _writing(self) -> Iterator[Execute]:
        with self._store.write() as transaction:
            yield transaction.execute

    def close(self) -> None:
        self._store.dispose()


def open_client_store(path: Path | None, url: Callable[[], URL]) -> ClientStore:
    """The client's store: the SQLite file at ``path`` directly, else ``url()`` through
    SQLAlchemy.

    :raises VaultError: as :meth:`vault.db.store.EngineStore.open`.
    """
    if path is not None:
        return SqliteClientStore(path)
    return EngineClientStore(url())


__all__ = [
    "ClientStore",
    "EngineClientStore",
    "SqliteClientStore",
    "open_client_store",
]
