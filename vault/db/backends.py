"""Which store a vault gets, and the doors to SQLAlchemy.

A vault file is opened through :mod:`sqlite3` alone (:class:`SqliteStore`); a database
URL (PostgreSQL) through SQLAlchemy (:class:`vault.db.store.EngineStore`). Three things
need SQLAlchemy whatever the backend: making a new vault (its DDL is generated from
:mod:`vault.format.schema` by SQLAlchemy), migrating an older schema, and opening a URL.
Each is a door here: :mod:`vault.db.store` is imported inside the function that needs
it, so that an owner's command on an existing, current vault file never loads
SQLAlchemy (``tests/db/test_backends.py`` checks it in a new process; the import-linter
contract "an owner's command on a vault file never imports SQLAlchemy" lists these
doors as its only exceptions).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from vault.db import location
from vault.db.schema_version import SCHEMA_VERSION
from vault.db.sqlite_store import SqliteStore
from vault.db.transaction import Store, Transaction

if TYPE_CHECKING:
    from sqlalchemy.engine import URL

    from vault.db.schema_version import OwnerKeys


def open_store(where: str | os.PathLike[str] | URL | None, *, owner: bool = False) -> Store:
    """Open the vault at ``where``: a file path (default: the environment's, else the
    data directory's file) or a database URL; as its ``owner``, any older schema.

    :raises VaultUnavailable: when there is no vault there.
    :raises InvalidInput: for a malformed URL or path.
    :raises IntegrityError: when the file is not a readable exvault database.
    :raises UnsupportedFormat: for a schema this exvault cannot use.
    """
    path = _file_of(where)
    if path is not None:
        return SqliteStore.open(path, owner=owner)
    # The door for a database URL: SQLAlchemy and the database's driver.
    from vault.db.store import EngineStore

    return EngineStore.open(_url_of(where), owner=owner)


def create_store(
    where: str | os.PathLike[str] | URL | None, initialize: Callable[[Transaction], None]
) -> Store:
    """Create a new vault at ``where``: its schema and ``initialize``'s rows, all or
    nothing (:meth:`vault.db.store.EngineStore.create`); a file is then reopened
    through :mod:`sqlite3`.

    :raises AlreadyExists: when a vault or file is there already.
    :raises InvalidInput: for a malformed URL or path.
    :raises StoreError: when the database cannot be written.
    """
    # The door for a new vault: the DDL is SQLAlchemy's.
    from vault.db.store import EngineStore

    path = _file_of(where)
    store = EngineStore.create(_url_of(where), initialize)
    if path is None:
        return store
    store.dispose()
    return SqliteStore.open(path, owner=True)


def upgrade(store: Store, owner: OwnerKeys) -> int:
    """Bring an older schema up to date, in one transaction, once the ``owner``'s keys
    are unlocked (a migration may verify and re-sign rows); the new version. Nothing
    is loaded when the schema is current.

    :raises StoreError: when the database fails.
    """
    if store.schema_version >= SCHEMA_VERSION:
        return store.schema_version
    # The door for a migration: SQLAlchemy's Core runs it.
    from vault.db.store import EngineStore, make_engine
    from vault.db.url import sqlite_url

    if isinstance(store, SqliteStore):
        engine_store = EngineStore(make_engine(sqlite_url(store.path)))
        try:
            version = engine_store.upgrade(owner)
        finally:
            engine_store.dispose()
        store.schema_changed(version)
        return version
    if not isinstance(store, EngineStore):
        raise TypeError(f"cannot upgrade a {type(store).__name__}")
    return store.upgrade(owner)


def _file_of(where: str | os.PathLike[str] | URL | None) -> Path | None:
    if where is None or isinstance(where, (str, os.PathLike)):
        return location.file_path(where)
    # A URL object: its caller has SQLAlchemy loaded already.
    from vault.db.url import sqlite_path

    return sqlite_path(where)


def _url_of(where: str | os.PathLike[str] | URL | None) -> URL:
    if where is None or isinstance(where, (str, os.PathLike)):
        return location.resolve(where)
    return where


__all__ = ["create_store", "open_store", "upgrade"]
