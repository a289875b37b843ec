"""Backups of a SQLite vault: a consistent online copy, and a checked restore.

A backup is the vault itself (still encrypted, same passphrase as when it was
taken), copied page by page with SQLite's online backup API, so writers may keep
working during it. It is one self-contained file (rollback journal, not WAL), mode
0600. A restore never opens the backup with SQLite: it copies its bytes beside the
vault and works on that copy, so nothing is written beside the backup.
PostgreSQL vaults are backed up with ``pg_dump`` (docs/deploy.md).
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import stat
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from vault.db import audit_file
from vault.db.inventory import open_store
from vault.db.sqlite_file import create_sqlite_file, fsync_path
from vault.db.sqlite_store import SqliteStore
from vault.db.transaction import Store
from vault.errors import (
    AlreadyExists,
    IntegrityError,
    InvalidInput,
    UnsupportedFormat,
    VaultUnavailable,
    printable,
)
from vault.format import identities
from vault.ops.verification import ProgressCallback, verify
from vault.owner.admin import AdminVault


def _sqlite_file(store: Store) -> Path:
    path = store.path
    if path is None:
        raise UnsupportedFormat(
            "backup and restore work on SQLite vaults; back up PostgreSQL with pg_dump"
        )
    return path


def copy_database(source: Path, destination: Path) -> None:
    """Copy ``source`` into the new file ``destination`` (0600) with the backup API.

    The copy is a single consistent snapshot even while others write, and comes out
    as one self-contained file (no ``-wal``), synced to disk.

    :raises AlreadyExists: when ``destination`` exists.
    :raises IntegrityError: when ``source`` is not a readable SQLite database.
    """
    create_sqlite_file(destination)
    try:
        src = sqlite3.connect(source.absolute().as_uri() + "?mode=ro", uri=True)
        dst = sqlite3.connect(destination)
        try:
            src.backup(dst)
            dst.execute("PRAGMA journal_mode = DELETE")  # a backup is one file
        finally:
            dst.close()
            src.close()
    except sqlite3.DatabaseError as exc:
        destination.unlink(missing_ok=True)
        raise IntegrityError(f"damaged vault: cannot copy {printable(source)}: {exc}") from None
    except BaseException:
        destination.unlink(missing_ok=True)
        raise
    os.chmod(destination, 0o600)
    fsync_path(destination)
    fsync_path(destination.parent)


def _set_rollback_journal(path: Path) -> None:
    """Take the database at ``path`` out of WAL mode: one file, no ``-wal`` or ``-shm``.

    :raises IntegrityError: when SQLite cannot change the journal mode.
    """
    connection = sqlite3.connect(path)
    try:
        (mode,) = connection.execute("PRAGMA journal_mode = DELETE").fetchone()
    except sqlite3.DatabaseError as exc:
        raise IntegrityError(f"damaged vault: cannot finish {printable(path)}: {exc}") from None
    finally:
        connection.close()
    if str(mode).lower() != "delete":
        raise IntegrityError(f"cannot take {printable(path)} out of WAL mode")


def _copyable(audit: Path) -> bool:
    """Whether an audit file is there to copy: a missing one, or anything but a regular
    file (a member of the bots' group can put a FIFO there), is left out rather than
    stopping, or hanging, the backup of the vault; doctor and audit verify report it."""
    try:
        audit_file.check_regular_file(audit)
    except IntegrityError:
        return False
    return True


BACKUP_STAMP = "%Y%m%dT%H%M%SZ"
"""The UTC time in the name of a backup written into a directory (sorts by time)."""


def backup_file_in(store: Store, directory: Path, now: datetime) -> Path:
    """The file a backup into ``directory`` goes to: ``<vault name>-<UTC time>.db``.

    :raises VaultUnavailable: when ``directory`` is not an existing directory.
    :raises UnsupportedFormat: for a PostgreSQL vault.
    """
    source = _sqlite_file(store)
    if not directory.is_dir():
        raise VaultUnavailable(f"no directory {printable(directory)} to back up into")
    stamp = now.astimezone(timezone.utc).strftime(BACKUP_STAMP)
    return directory / f"{source.name.removesuffix('.db')}-{stamp}.db"


def backup(store: Store, destination: Path) -> Path:
    """Write a backup of the vault in ``store`` to ``destination``: a new 0600 file,
    self-contained (rollback journal, no ``-wal`` or ``-shm`` beside it), and of each of
    its audit files beside it (shared layout, see :mod:`vault.db.audit_file`).

    :raises AlreadyExists: when ``destination`` exists.
    :raises UnsupportedFormat: for a PostgreSQL vault.
    """
    source = _sqlite_file(store)
    # The audit file(s) of a shared vault go with it: the bots' reads are audited there.
    # Each is copied beside the backup under the matching name (``b.db``,
    # ``b.audit/audit.db``), in a 0700 directory.
    stem, copy_stem = source.name.removesuffix(".db"), destination.name.removesuffix(".db")
    audits = [
        (audit, destination.with_name(copy_stem + audit.parent.name[len(stem) :]) / audit.name)
        for audit in audit_file.audit_files(source)
        if _copyable(audit)
    ]
    for _audit, copy in audits:
        if copy.parent.exists():
            raise AlreadyExists(f"{printable(copy.parent)} exists; refusing to overwrite it")
    copy_database(source, destination)
    made = [destination]
    try:
        for audit, copy in audits:
            copy.parent.mkdir(mode=0o700)
            made.append(copy.parent)
            copy_database(audit, copy)
            made.append(copy)
        SqliteStore.open(destination).dispose()  # the copy opens as a vault
        # Opening it as a vault put it in WAL mode (every exvault connection does).
        _set_rollback_journal(destination)
    except BaseException:
        for path in reversed(made):
            if path.is_dir():
                path.rmdir()
            elif path == destination:
                _remove_database(destination)
            else:
                path.unlink(missing_ok=True)
        raise
    fsync_path(destination)
    return destination


@dataclass(frozen=True)
class BackupCopy:
    """A private copy of a backup file, beside the vault it may replace."""

    path: Path
    source: Path
    vault_id: str
    fingerprint: str


def _copy_bytes(source: Path, destination: Path) -> None:
    """Copy the regular file ``source`` into the new 0600 file ``destination``.

    :raises VaultUnavailable: when ``source`` cannot be opened.
    :raises InvalidInput: when ``source`` is not a regular file.
    """
    try:
        # O_NONBLOCK: a FIFO in its place would otherwise block the open forever.
        fd = os.open(source, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOCTTY", 0))
    except OSError as exc:
        raise VaultUnavailable(f"cannot read {printable(source)}: {exc.strerror}") from None
    with os.fdopen(fd, "rb") as reader:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise InvalidInput(f"{printable(source)} is not a regular file")
        create_sqlite_file(destination)
        try:
            with open(destination, "wb") as writer:
                shutil.copyfileobj(reader, writer)
                writer.flush()
                os.fsync(writer.fileno())
        except BaseException:
            destination.unlink(missing_ok=True)
            raise


def copy_backup(store: Store, backup_file: Path) -> BackupCopy:
    """Copy ``backup_file`` beside the vault of ``store`` and read the copy's identity.

    The backup is only read, as bytes: SQLite never opens it, so no ``-wal`` or
    ``-shm`` file appears beside it and it is never written. Its ``-wal`` file, if one
    with content lies beside it (a backup taken by copying a live vault), is copied
    too, so that its committed transactions are part of the copy.

    :raises VaultUnavailable: when there is no backup at ``backup_file``.
    :raises InvalidInput: when it is not a regular file.
    :raises IntegrityError: when it is not a readable exvault database, or its header
        is damaged.
    :raises UnsupportedFormat: for a PostgreSQL vault, or a newer format.
    """
    target = _sqlite_file(store)
    if not backup_file.exists():
        raise VaultUnavailable(f"no backup at {printable(backup_file)}")
    staged = target.with_name(target.name + ".restoring")
    _remove_database(staged)
    try:
        _copy_bytes(backup_file, staged)
        wal = backup_file.with_name(backup_file.name + "-wal")
        if wal.is_file() and wal.stat().st_size > 0:
            _copy_bytes(wal, staged.with_name(staged.name + "-wal"))
        copy_store, header = open_store(staged, owner=True)
        copy_store.dispose()
    except BaseException:
        _remove_database(staged)
        raise
    fingerprint = identities.format_fingerprint(identities.fingerprint(header.verify_public))
    return BackupCopy(staged, backup_file, header.vault_id.hex(), fingerprint)


@dataclass
class StagedRestore:
    """A verified copy of a backup, next to the vault, ready to take its place."""

    path: Path
    credentials: int
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when the copy opened and verified."""
        return not self.problems


def stage_restore(store: Store, backup_file: Path, passphrase: str) -> StagedRestore:
    """Copy ``backup_file`` beside the vault of ``store``, unlock and verify the copy
    (:func:`copy_backup`, then :func:`verify_backup`).

    :raises IntegrityError: wrong passphrase or a backup that is no vault.
    :raises UnsupportedFormat: for a PostgreSQL vault.
    :raises VaultUnavailable: when there is no backup at ``backup_file``.
    """
    return verify_backup(copy_backup(store, backup_file), passphrase)


def verify_backup(
    copy: BackupCopy, passphrase: str, progress: ProgressCallback | None = None
) -> StagedRestore:
    """Unlock and verify the copy of a backup (``progress`` as for
    :func:`vault.ops.verification.verify`: a large backup takes as long as ``verify``).

    When the copy verifies, a signed "restore" entry is added to its audit log; when
    it does not, the copy is deleted and the problems are returned.

    :raises IntegrityError: wrong passphrase (the copy is deleted).
    """
    staged, backup_file = copy.path, copy.source
    try:
        with AdminVault.unlock(staged, passphrase) as candidate:
            report = verify(candidate, progress)
            if report.ok:
                # Escaped: the audit record is signed as UTF-8, and a file name need not be.
                candidate.record_action("restore", f"from backup {printable(backup_file.name)}")
    except BaseException:
        _remove_database(staged)
        raise
    if not report.ok:
        _remove_database(staged)
    return StagedRestore(
        staged,
        report.credentials,
        [f"{p.credential or '(vault)'}: {p.message}" for p in report.problems],
    )


def discard(staged: StagedRestore) -> None:
    """Delete a staged restore that will not be used."""
    _remove_database(staged.path)


def remove_copy(copy: BackupCopy) -> None:
    """Delete the copy of a backup that will not be verified."""
    _remove_database(copy.path)


def _remove_database(path: Path) -> None:
    for suffix in ("", "-wal", "-shm"):
        path.with_name(path.name + suffix).unlink(missing_ok=True)


def replace_with(store: Store, staged: StagedRestore) -> Path:
    """Put a verified staged restore in place of the vault; keep the old one aside.

    The old vault is checkpointed (so its WAL holds nothing), then renamed to
    ``<name>.replaced-<UTC time>`` with its ``-wal`` and ``-shm`` files, and the staged
    copy is renamed into place: at every instant either the old or the new vault is
    complete on disk.

    :returns: where the replaced vault was kept.
    :raises VaultUnavailable: when the files cannot be moved.
    """
    target = _sqlite_file(store)
    if not staged.ok or not staged.path.is_file():
        raise VaultUnavailable("nothing verified to restore")
    store.checkpoint()
    store.dispose()
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    aside = target.with_name(f"{target.name}.replaced-{stamp}")
    if aside.exists():
        raise AlreadyExists(f"{printable(aside)} exists; try again in a second")
    try:
        os.rename(target, aside)
        for suffix in ("-wal", "-shm"):
            side = target.with_name(target.name + suffix)
            if side.exists():
                os.rename(side, aside.with_name(aside.name + suffix))
        for suffix in ("-wal", "-shm"):  # the staged copy was closed cleanly: none left
            staged.path.with_name(staged.path.name + suffix).unlink(missing_ok=True)
        os.rename(staged.path, target)
    except OSError as exc:
        raise VaultUnavailable(f"cannot replace {target}: {exc.strerror}") from None
    fsync_path(target.parent)
    return aside
