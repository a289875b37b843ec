"""The few statements a client (a bot) runs, over either of two connections.

A bot often starts a new process just to fetch its key; importing SQLAlchemy costs
such a process more than everything else together (docs/benchmarks.md, figure 2).
So a client reading a SQLite vault talks to :mod:`sqlite3` directly
(:class:`SqliteClientStore`), and any other database (PostgreSQL) goes through the
SQLAlchemy store (:class:`EngineClientStore`). Both run the same SQL text below and
return the plain rows of :mod:`vault.format.schema`, which :mod:`vault.format.records`
verifies exactly as it verifies ORM records; the client tests run on both.

Only reads and audit appends live here; nothing a client does changes a credential.
In the shared layout of a SQLite vault (docs/deploy.md) the client cannot change the
vault file at all: it reads it read-only and appends to the audit file beside it.
A new client query is added here as SQL text over the columns of :mod:`vault.format.schema`,
not as an ORM query, so that both paths run it.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from vault.db import sqlite_file
from vault.db.schema_version import check_schema_version
from vault.errors import (
    AccessDenied,
    VaultError,
    VaultUnavailable,
    database_error,
    first_line,
    printable,
)
from vault.format import stages
from vault.format.audit_entry import AuditRow, new_entry
from vault.format.schema import ClientRow, HeaderRow, HeadRow, PayloadRow, VersionRow, WrapRow

if TYPE_CHECKING:
    from sqlalchemy.engine import URL

    from vault.db.store import Store


Execute = Callable[[str, dict[str, Any]], list[Sequence[Any]]]
"""Runs one statement with named parameters; returns its rows."""

StageRows = tuple[HeadRow, VersionRow | None, PayloadRow | None, WrapRow | None]


def _select(row: type[tuple[Any, ...]], alias: str) -> str:
    return ", ".join(f"{alias}.{column}" for column in row._fields)  # type: ignore[attr-defined]


_HEADER_SQL = f"SELECT {_select(HeaderRow, 'h')} FROM vault_header h WHERE h.id = 1"
_CLIENT_SQL = f"SELECT {_select(ClientRow, 'c')} FROM clients c WHERE c.id = :id"
_LAST_AUDIT_SQL = "SELECT seq, entry_hash FROM audit_log ORDER BY seq DESC LIMIT 1"
_INSERT_AUDIT_SQL = "INSERT INTO audit_log ({}) VALUES ({})".format(
    ", ".join(AuditRow.__dataclass_fields__),
    ", ".join(f":{name}" for name in AuditRow.__dataclass_fields__),
)


def _stage_sql(stage: str) -> str:
    # One round trip: the head, and the version, payload and this client's wrap at the
    # stage's version number. ``stage`` is one of STAGES, never user text.
    at = "h." + stages.version_column(stage)
    return (
        f"SELECT {_select(HeadRow, 'h')}, {_select(VersionRow, 'v')}, "
        f"{_select(PayloadRow, 'p')}, {_select(WrapRow, 'w')} "
        "FROM credentials h "
        f"LEFT JOIN credential_versions v ON v.credential_id = h.id AND v.version = {at} "
        f"LEFT JOIN payloads p ON p.credential_id = h.id AND p.version = {at} "
        f"LEFT JOIN dek_wraps w ON w.credential_id = h.id AND w.version = {at} "
        "AND w.recipient = :recipient "
        "WHERE h.name = :name"
    )


_STAGE_SQL = {stage: _stage_sql(stage) for stage in stages.STAGES}


# Where each row's columns end in the joined row.
_WIDTHS = tuple(
    sum(len(row._fields) for row in (HeadRow, VersionRow, PayloadRow)[:n]) for n in (1, 2, 3)
)


def _split(values: Sequence[Any]) -> StageRows:
    # The joined row, cut back into its four rows; an absent outer-joined row comes
    # back as NULLs in every column, its key included.
    cut = _WIDTHS
    head = HeadRow._make(values[: cut[0]])
    version = VersionRow._make(values[cut[0] : cut[1]]) if values[cut[0]] is not None else None
    payload = PayloadRow._make(values[cut[1] : cut[2]]) if values[cut[1]] is not None else None
    wrap = WrapRow._make(values[cut[2] :]) if values[cut[2]] is not None else None
    return head, version, payload, wrap


class ClientStore(Protocol):
    """What :class:`vault.runtime.client.ClientVault` needs of the database."""

    def header(self) -> HeaderRow | None:
        """The header row (unchecked), or None when it is missing."""

    def client(self, client_id: str) -> ClientRow | None:
        """A client's row (unchecked)."""

    def stage(self, name: str, stage: str, recipient: str) -> StageRows | None:
        """Credential ``name``'s head with its ``stage`` version, payload and the wrap for
        ``recipient``; None when there is no such credential."""

    def append_audit(self, vault_id: bytes, **entry: Any) -> None:
        """Append an audit entry (see :func:`vault.format.audit_entry.new_entry`) in a write
        transaction of its own."""

    def close(self) -> None:
        """Release the connection."""


class _SqlClientStore:
    """The statements, given how to run them (:meth:`_reading`, :meth:`_writing`)."""

    # How to read the chain's head and append after it: on SQLite by the table itself;
    # on PostgreSQL through the head row and the append function (EngineClientStore).
    _last_audit_sql = _LAST_AUDIT_SQL
    _insert_audit_sql = _INSERT_AUDIT_SQL

    def _reading(self) -> AbstractContextManager[Execute]:
        raise NotImplementedError

    def _writing(self) -> AbstractContextManager[Execute]:
        raise NotImplementedError

    def header(self) -> HeaderRow | None:
        with self._reading() as execute:
            found = execute(_HEADER_SQL, {})
        return HeaderRow._make(found[0]) if found else None

    def client(self, client_id: str) -> ClientRow | None:
        with self._reading() as execute:
            found = execute(_CLIENT_SQL, {"id": client_id})
        return ClientRow._make(found[0]) if found else None

    def stage(self, name: str, stage: str, recipient: str) -> StageRows | None:
        with self._reading() as execute:
            found = execute(_STAGE_SQL[stage], {"name": name, "recipient": recipient})
        return _split(found[0]) if found else None

    def append_audit(self, vault_id: bytes, **entry: Any) -> None:
        # The write transaction holds the write lock (BEGIN IMMEDIATE, or the row lock
        # of PostgreSQL's head row), so reading the chain's head and appending after it
        # cannot interleave. A head of seq 0 is PostgreSQL's empty log.
        with self._writing() as execute:
            last = execute(self._last_audit_sql, {})
            head = (last[0][0], last[0][1]) if last and last[0][0] else None
            row = new_entry(vault_id, head, **entry)
            execute(self._insert_audit_sql, row.values())


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
            found = self._connection.execute("SELECT schema_version FROM exvault_schema").fetchall()
        except sqlite3.Error as exc:
            detail = first_line(exc)
            if "no such table" in detail:
                raise VaultUnavailable(f"no vault at {printable(self._path)}") from None
            raise sqlite_file.open_failure(self._path, detail) from None
        check_schema_version(found[0][0] if found else None, owner=False, backend="sqlite")

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

    @staticmethod
    def _runner(connection: sqlite3.Connection) -> Execute:
        def run(sql: str, params: dict[str, Any]) -> list[Sequence[Any]]:
            rows: list[Sequence[Any]] = connection.execute(sql, params).fetchall()
            return rows

        return run

    @contextmanager
    def _reading(self) -> Iterator[Execute]:
        # Autocommit mode: each statement is its own consistent snapshot, and a client
        # reads with one statement at a time.
        with self._lock, self._translated():
            yield self._runner(self._connection)

    @contextmanager
    def _writing(self) -> Iterator[Execute]:
        with self._lock, self._translated():
            connection = self._audit_target()
            try:
                connection.execute("BEGIN IMMEDIATE")
                yield self._runner(connection)
                connection.execute("COMMIT")
            except sqlite3.OperationalError as exc:
                if connection.in_transaction:
                    connection.execute("ROLLBACK")
                detail = first_line(exc)
                if self._shared and ("readonly" in detail or "unable to open" in detail):
                    raise self._audit_file_refused() from None
                raise
            except BaseException:
                if connection.in_transaction:
                    connection.execute("ROLLBACK")
                raise

    def close(self) -> None:
        with self._lock:
            self._connection.close()
            if self._audit_connection is not None:
                self._audit_connection.close()


class EngineClientStore(_SqlClientStore):
    """Any database through the SQLAlchemy store (PostgreSQL, or a ``sqlite://`` URL)."""

    def __init__(self, url: URL) -> None:
        from sqlalchemy import text

        from vault.db.postgres import AUDIT_APPEND_SQL, AUDIT_HEAD_SQL
        from vault.db.store import Store

        self._text = text
        self._store: Store = Store.open(url)
        if not self._store.is_sqlite:
            # The reader role has no INSERT on audit_log: the function appends, after
            # the database checks that the entry follows the head row.
            self._last_audit_sql = AUDIT_HEAD_SQL
            self._insert_audit_sql = AUDIT_APPEND_SQL

    def _executor(self, session: Any) -> Execute:
        def execute(sql: str, params: dict[str, Any]) -> list[Sequence[Any]]:
            result = session.execute(self._text(sql), params)
            return list(result.all()) if result.returns_rows else []

        return execute

    @contextmanager
    def _reading(self) -> Iterator[Execute]:
        with self._store.read() as session:
            yield self._executor(session)

    @contextmanager
    def _writing(self) -> Iterator[Execute]:
        with self._store.write() as session:
            yield self._executor(session)

    def close(self) -> None:
        self._store.dispose()


def open_client_store(path: Path | None, url: Callable[[], URL]) -> ClientStore:
    """The client's store: the SQLite file at ``path`` directly, else ``url()`` through
    SQLAlchemy.

    :raises VaultError: as :meth:`vault.db.store.Store.open`.
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
