"""A vault's SQLite file: how it is created, opened and configured.

Shared by the SQLAlchemy store (:mod:`vault.store`) and the client's direct read path
(:mod:`vault.client_sql`), which talks to :mod:`sqlite3` itself so that a bot's new
process does not pay for importing SQLAlchemy. Both open the file the same way: the
same checks before SQLite touches it, the same per-connection settings (DESIGN.md
section 5), the same messages when it fails.
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
    if any(w in detail for w in ("readonly", "unable to open", "permission")):
        # WAL mode needs write access to the file, its -wal and -shm, and the
        # directory, even to read.
        return AccessDenied(
            f"cannot open {printable(path)}: {detail} (exvault needs read and write access "
            "to the vault file, its -wal and -shm files and its directory)"
        )
    return IntegrityError("damaged vault: the file is not a readable exvault database")


def configure(connection: sqlite3.Connection) -> None:
    """Apply exvault's settings to a new connection.

    Transaction control is taken away from the sqlite3 module (``isolation_level =
    None``) so that ``BEGIN`` and, for writes, ``BEGIN IMMEDIATE`` are ours to emit.
    """
    connection.isolation_level = None
    cursor = connection.cursor()
    try:
        cursor.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA journal_mode = WAL")
        cursor.execute("PRAGMA synchronous = FULL")  # a committed write survives power loss
        cursor.execute("PRAGMA secure_delete = ON")  # deleted cells are zeroed
        cursor.execute("PRAGMA foreign_keys = ON")
    finally:
        cursor.close()


def connect(path: Path) -> sqlite3.Connection:
    """A configured connection to the existing vault file at ``path``.

    :raises AccessDenied: when the file or its directory cannot be accessed.
    :raises VaultUnavailable: when there is no file at ``path``.
    :raises IntegrityError: when it is not a readable database.
    """
    check_present(path)
    try:
        # A thread-safe handle: callers serialize their use of it with a lock.
        connection = sqlite3.connect(path, timeout=BUSY_TIMEOUT_MS / 1000, check_same_thread=False)
    except sqlite3.Error as exc:
        raise open_failure(path, first_line(exc)) from None
    try:
        configure(connection)
    except sqlite3.Error as exc:
        connection.close()
        raise open_failure(path, first_line(exc)) from None
    return connection


__all__ = [
    "BUSY_TIMEOUT_MS",
    "check_present",
    "configure",
    "connect",
    "create_sqlite_file",
    "fsync_path",
    "open_failure",
]
