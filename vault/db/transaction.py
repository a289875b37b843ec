"""What every store hands its users: a transaction to run statements in, and the store
itself, as two small protocols with two implementations each.

A vault file is read and written through the standard library's :mod:`sqlite3`
(:mod:`vault.db.sqlite_store`), so that an owner's command on it loads no SQLAlchemy;
a database URL (PostgreSQL) through SQLAlchemy (:mod:`vault.db.store`). Both run the
same SQL text, the statements of :mod:`vault.db.queries`, with named parameters. This
module imports the standard library only.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any, Protocol

SQLITE = "sqlite"
POSTGRESQL = "postgresql"

Row = Sequence[Any]


class Transaction(Protocol):
    """One open transaction of a store. Run a statement inside :meth:`Store.read` or
    :meth:`Store.write`, whose error translation covers it."""

    @property
    def backend(self) -> str:
        """:data:`SQLITE` or :data:`POSTGRESQL`."""
        ...

    @property
    def locks_head(self) -> bool:
        """True in a PostgreSQL write that holds the audit chain's head row (schema 4
        on): the chain's head is that row, not the entry of highest ``seq``."""
        ...

    def execute(self, sql: str, params: Mapping[str, Any] | None = None) -> list[Row]:
        """Run one statement; its rows (none for one that returns none)."""
        ...

    def execute_many(self, sql: str, params: Sequence[Mapping[str, Any]]) -> None:
        """Run one statement that returns no rows once per set of parameters."""
        ...

    def iterate(self, sql: str, params: Mapping[str, Any] | None = None) -> Iterator[Row]:
        """The rows of one statement, fetched a thousand at a time (a bulk read of
        100,000 rows holds no list of them all)."""
        ...

    def savepoint(self) -> AbstractContextManager[None]:
        """A block whose writes are undone, and only they, when it raises."""
        ...

    def tolerant_text(self) -> AbstractContextManager[None]:
        """Inside the block, a SQLite text value that is not UTF-8 comes back with each
        bad byte as a lone surrogate (``surrogateescape``) instead of failing the
        whole statement: the audit log's readers report such a row by its ``seq``.
        PostgreSQL stores only valid text; nothing changes there."""
        ...


class Store(Protocol):
    """A vault's database: read and write transactions, and what opening it learnt."""

    @property
    def backend(self) -> str:
        """:data:`SQLITE` or :data:`POSTGRESQL`."""
        ...

    @property
    def is_sqlite(self) -> bool:
        """True for a SQLite database."""
        ...

    @property
    def location(self) -> str:
        """Where the vault is, as exvault shows it: a file path, or a URL without its
        password (raw: a message escapes it)."""
        ...

    @property
    def path(self) -> Path | None:
        """The vault file, or None for a database URL."""
        ...

    @property
    def schema_version(self) -> int:
        """The schema version of the database as this store last saw it."""
        ...

    def read(self) -> AbstractContextManager[Transaction]:
        """A read-only transaction (a consistent snapshot).

        :raises StoreError: when the database fails.
        """
        ...

    def write(self) -> AbstractContextManager[Transaction]:
        """A write transaction holding the write lock from its start; commits when the
        block ends normally, rolls back when it raises.

        :raises StoreError: when the database fails.
        """
        ...

    def translate_errors(self) -> AbstractContextManager[None]:
        """Turn the driver's exceptions into :class:`vault.errors.VaultError` s (never
        with SQL text or bound values)."""
        ...

    def checkpoint(self) -> bool:
        """Fold SQLite's WAL into the database and truncate it (after deletes); False
        when readers kept it from completing. True at once elsewhere."""
        ...

    def dispose(self) -> None:
        """Close the store's connections."""
        ...


__all__ = ["POSTGRESQL", "SQLITE", "Row", "Store", "Transaction"]
