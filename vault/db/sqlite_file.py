"""A vault's SQLite file: how it is created, opened and configured.

Shared by the SQLAlchemy store (:mod:`vault.db.store`) and the client's direct read path
(:mod:`vault.db.client_sql`), which talks to :mod:`sqlite3` itself so that a bot's new
process does not pay for importing SQLAlchemy. Both open the file the same way: the
same checks before SQLite touches it, the same per-connection settings (docs/format.md
section 4.13), the same messages when it fails.

A vault file is in one of two layouts (docs/deploy.md). The *single-user* layout is
one file, 0600 in a 0700 directory, in WAL mode. In the *shared* layout the file is
0640 with a bots' group in a 0750 directory, so bots can read it but neither change
nor replace it; it uses a rollback journal (``journal_mode=DELETE``), since WAL needs
every reader to write its ``-shm`` file. Bots append their audit entries to the
*audit file*, in a directory of its own beside the vault (:func:`audit_file_path`)
which the bots' group may write: SQLite creates and deletes a journal beside a
database it writes, and rolls back a crashed writer's journal, with the default
journal mode, before any setting of a new connection applies. That directory's
presence is what marks the shared layout: only the vault directory's owner can
create or remove it, so a bot can neither fake nor hide it.
"""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

from vault.errors import (
    AccessDenied,
    AlreadyExists,
    IntegrityError,
    VaultError,
    VaultUnavailable,
    first_line,
    printable,
)

BUSY_TIMEOUT_MS = 30_000

AUDIT_DIRECTORY_SUFFIX = ".audit"
AUDIT_FILE_NAME = "audit.db"
SINGLE_USER_JOURNAL = "WAL"
SHARED_JOURNAL = "DELETE"
AUDIT_FILE_JOURNAL = "DELETE"
"""SQLite's default: a new connection rolls a crashed writer's journal back in this
mode whatever it is then told, so any other mode would still meet it."""


def audit_directory(vault: Path) -> Path:
    """The directory of the vault file ``vault``'s audit file: ``vault.db`` ->
    ``vault.audit``."""
    return vault.with_name(vault.name.removesuffix(".db") + AUDIT_DIRECTORY_SUFFIX)


def audit_file_path(vault: Path) -> Path:
    """The audit file of the vault file ``vault``: ``vault.audit/audit.db``."""
    return audit_directory(vault) / AUDIT_FILE_NAME


def journal_path(database: Path) -> Path:
    """The rollback journal SQLite keeps beside ``database``."""
    return database.with_name(database.name + "-journal")


def is_shared(vault: Path) -> bool:
    """True when the vault file ``vault`` is in the shared layout (its audit directory
    is there). A path that cannot be examined counts as the single-user layout."""
    try:
        return audit_directory(vault).is_dir()
    except OSError:
        return False


def journal_mode(vault: Path) -> str:
    """The journal mode a connection to the vault file ``vault`` must use."""
    return SHARED_JOURNAL if is_shared(vault) else SINGLE_USER_JOURNAL


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
        raise AlreadyExists(
            f"a file exists at {printable(path)}; refusing to overwrite it"
        ) from None
    os.fchmod(fd, 0o600)
    os.close(fd)


def fsync_path(path: Path) -> None:
    """Flush a file's, or a directory's entries', data to disk."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def check_present(path: Path) -> None:
    """Make sure a vault file is at ``path`` before SQLite opens it (SQLite would create
    an empty one).

    :raises AccessDenied: when the path cannot be examined.
    :raises VaultUnavailable: when no file is there.
    """
    try:
        present = path.is_file()
    except OSError as exc:  # e.g. a directory this user may not enter
        raise AccessDenied(f"cannot access {printable(path)}: {exc.strerror}") from None
    if not present:
        raise VaultUnavailable(f"no vault at {printable(path)}; create one with: exvault init")


def open_failure(path: Path, detail: str) -> VaultError:
    """The error for a vault file that SQLite failed to open or read (``detail``: the
    driver's one-line message)."""
    if "readonly" in detail and journal_path(path).exists():
        # SQLite answers SQLITE_READONLY_ROLLBACK when a reader that may not write the
        # file finds a hot journal: a write of the owner's was interrupted, and only a
        # process that can write the file can roll it back.
        return AccessDenied(
            f"cannot read {printable(path)}: a write to it was interrupted; the vault's "
            "owner must run any exvault command on it (e.g. exvault list) to roll it back"
        )
    if any(w in detail for w in ("readonly", "unable to open", "permission")):
        # WAL mode needs write access to the file, its -wal and -shm, and the
        # directory, even to read.
        return AccessDenied(
            f"cannot open {printable(path)}: {detail} (exvault needs read and write access "
            "to the vault file, its -wal and -shm files and its directory)"
        )
    return IntegrityError("damaged vault: the file is not a readable exvault database")


def configure(connection: sqlite3.Connection, journal: str | None = SINGLE_USER_JOURNAL) -> None:
    """Apply exvault's settings to a new connection, in journal mode ``journal`` (one
    of the ``*_JOURNAL`` constants; None for a read-only connection, which must leave
    the file as it is).

    Transaction control is taken away from the sqlite3 module (``isolation_level =
    None``) so that ``BEGIN`` and, for writes, ``BEGIN IMMEDIATE`` are ours to emit.
    """
    connection.isolation_level = None
    cursor = connection.cursor()
    try:
        cursor.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        if journal is not None:
            assert journal in (SINGLE_USER_JOURNAL, SHARED_JOURNAL, AUDIT_FILE_JOURNAL)
            cursor.execute(f"PRAGMA journal_mode = {journal}")
        cursor.execute("PRAGMA synchronous = FULL")  # a committed write survives power loss
        cursor.execute("PRAGMA secure_delete = ON")  # deleted cells are zeroed
        cursor.execute("PRAGMA foreign_keys = ON")
    finally:
        cursor.close()


def connect(
    path: Path, *, read_only: bool = False, journal: str = SINGLE_USER_JOURNAL
) -> sqlite3.Connection:
    """A configured connection to the existing SQLite file at ``path``: read-only
    (SQLite's ``mode=ro``, which never writes the file nor creates one beside it), or
    read-write in journal mode ``journal``.

    :raises AccessDenied: when the file or its directory cannot be accessed.
    :raises VaultUnavailable: when there is no file at ``path``.
    :raises IntegrityError: when it is not a readable database.
    """
    check_present(path)
    target = path.absolute().as_uri() + "?mode=ro" if read_only else str(path)
    try:
        # A thread-safe handle: callers serialize their use of it with a lock.
        connection = sqlite3.connect(
            target, timeout=BUSY_TIMEOUT_MS / 1000, check_same_thread=False, uri=read_only
        )
    except sqlite3.Error as exc:
        raise open_failure(path, first_line(exc)) from None
    try:
        configure(connection, None if read_only else journal)
    except sqlite3.Error as exc:
        connection.close()
        raise open_failure(path, first_line(exc)) from None
    return connection


__all__ = [
    "AUDIT_DIRECTORY_SUFFIX",
    "AUDIT_FILE_JOURNAL",
    "AUDIT_FILE_NAME",
    "BUSY_TIMEOUT_MS",
    "SHARED_JOURNAL",
    "SINGLE_USER_JOURNAL",
    "audit_directory",
    "audit_file_path",
    "check_present",
    "configure",
    "connect",
    "create_sqlite_file",
    "fsync_path",
    "is_shared",
    "journal_mode",
    "journal_path",
    "open_failure",
]
