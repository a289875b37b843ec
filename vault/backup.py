"""Backups of a SQLite vault: a consistent online copy, and a checked restore.

A backup is the vault itself (still encrypted, same passphrase as when it was
taken), copied page by page with SQLite's online backup API, so writers may keep
working during it. PostgreSQL vaults are backed up with ``pg_dump`` (docs/deploy.md).
"""

from __future__ import annotations

import os
import sqlite3
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from vault import audit_file
from vault.errors import (
    AlreadyExists,
    IntegrityError,
    UnsupportedFormat,
    VaultUnavailable,
    printable,
)
from vault.sqlite_file import create_sqlite_file, fsync_path
from vault.store import Store, sqlite_path, sqlite_url


def _sqlite_file(store: Store) -> Path:
    path = sqlite_path(store.url)
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


def backup(store: Store, destination: Path) -> Path:
    """Write a backup of the vault in ``store`` to ``destination`` (a new 0600 file),
    and of each of its audit files beside it (shared layout, see :mod:`vault.audit_file`).

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
    except BaseException:
        for path in reversed(made):
            if path.is_dir():
                path.rmdir()
            else:
                path.unlink(missing_ok=True)
        raise
    Store.open(sqlite_url(destination)).dispose()  # the copy opens as a vault
    return destination


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
    """Copy ``backup_file`` beside the vault of ``store``, unlock and verify the copy.

    The backup file itself is only read. When the copy verifies, a signed "restore"
    entry is added to its audit log; when it does not, the copy is deleted and the
    problems are returned.

    :raises IntegrityError: wrong passphrase or a backup that is no vault.
    :raises UnsupportedFormat: for a PostgreSQL vault.
    """
    from vault.admin import AdminVault
    from vault.verification import verify

    target = _sqlite_file(store)
    if not backup_file.is_file():
        raise VaultUnavailable(f"no backup at {printable(backup_file)}")
    staged = target.with_name(target.name + ".restoring")
    staged.unlink(missing_ok=True)
    copy_database(backup_file, staged)
    try:
        with AdminVault.unlock(staged, passphrase) as candidate:
            report = verify(candidate)
            if report.ok:
                with candidate._writing() as session:
                    # Escaped: the audit record is signed as UTF-8, and a file name
                    # need not be.
                    detail = f"from backup {printable(backup_file.name)}"
                    candidate._audit(session, "restore", detail=detail)
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
