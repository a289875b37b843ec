"""The two file layouts of a SQLite vault, and the owner's switch between them.

* **Single-user** (the default): one file, 0600 in a 0700 directory, WAL mode. Every
  process that uses the vault runs as its owner, and bots' reads are audited in it.
* **Shared**: the vault file belongs to the owner, 0640 with a bots' group, in a 0750
  directory of the same group, in rollback-journal mode (``journal_mode=DELETE``).
  Bots of that group can read it but cannot change, replace or delete it, nor create
  a file beside it. They append their audit entries to the audit file in a directory
  of its own beside it (``NAME.audit/audit.db``: directory 2770, file 0660, with the
  group; see :mod:`vault.db.audit_file`).

The layout is read from the file system, which only the vault directory's owner
controls: the vault is shared exactly when its audit directory exists
(:func:`vault.db.sqlite_file.is_shared`).
docs/deploy.md shows the setup; SECURITY.md says what a bot can still do.
"""

from __future__ import annotations

import os
import sqlite3
from dataclasses import dataclass
from pathlib import Path

from vault.db import audit_file
from vault.db.sqlite_file import (
    BUSY_TIMEOUT_MS,
    SHARED_JOURNAL,
    SINGLE_USER_JOURNAL,
    audit_directory,
    audit_file_path,
    fsync_path,
    is_shared,
)
from vault.errors import (
    AccessDenied,
    Conflict,
    InvalidInput,
    UnsupportedFormat,
    VaultError,
    first_line,
    printable,
    quoted,
)
from vault.format.model import utc_now
from vault.owner.admin import AdminVault

SHARED_FILE_MODE = 0o640
SHARED_DIRECTORY_MODE = 0o750
SINGLE_USER_FILE_MODE = 0o600
SINGLE_USER_DIRECTORY_MODE = 0o700


@dataclass(frozen=True)
class Layout:
    """Which layout a vault file is in."""

    vault: Path
    shared: bool
    group: str | None
    """The bots' group (the vault file's group) when shared."""

    @property
    def audit_file(self) -> Path:
        """Where bots append their audit entries (when shared)."""
        return audit_file_path(self.vault)

    def describe(self) -> str:
        """One line for people: ``single-user file`` or ``shared with group G; ...``."""
        if not self.shared:
            return "single-user file"
        return f"shared with group {self.group}; bots append to {self.audit_file}"


def group_name(gid: int) -> str:
    """The name of group ``gid``, or its number when it has none."""
    import grp  # POSIX only: imported when a layout is looked at, not with doctor

    try:
        return grp.getgrgid(gid).gr_name
    except KeyError:
        return str(gid)


def layout_of(vault: Path) -> Layout:
    """The layout of the vault file ``vault``."""
    if not is_shared(vault):
        return Layout(vault, False, None)
    try:
        gid = vault.stat().st_gid
    except OSError:
        return Layout(vault, True, None)
    return Layout(vault, True, group_name(gid))


def _vault_file(admin: AdminVault) -> Path:
    path = admin.store.path
    if path is None:
        raise UnsupportedFormat(
            "layouts are for SQLite vault files; on PostgreSQL, give bots a read-only role "
            "(docs/deploy.md)"
        )
    return path


def _check_owner(path: Path) -> None:
    for checked in (path, path.parent):
        owner = checked.stat().st_uid
        if owner != os.getuid():
            raise AccessDenied(
                f"{printable(checked)} belongs to uid {owner}: only its owner can change "
                "the vault's layout"
            )


def _set_journal(path: Path, mode: str) -> None:
    """Put the vault file in journal mode ``mode``, which SQLite does only for a
    connection that is alone on the file."""
    try:
        connection = sqlite3.connect(path, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None)
        try:
            got = connection.execute(f"PRAGMA journal_mode = {mode}").fetchone()
        finally:
            connection.close()
    except sqlite3.Error as exc:
        raise Conflict(
            f"cannot switch the vault to journal mode {mode}: {first_line(exc)} (stop the "
            "processes that have it open, then try again)"
        ) from None
    if got is None or str(got[0]).upper() != mode:
        raise Conflict(
            f"cannot switch the vault to journal mode {mode}: other processes have it open "
            "(stop them, then try again)"
        )


def share(admin: AdminVault, group: str) -> Layout:
    """Put the vault of ``admin`` in the shared layout with the bots' group ``group``
    (again, if it is: modes are set afresh). Audited in the vault as ``share``.

    The vault's own connections are closed first: SQLite leaves WAL mode only for a
    connection alone on the file, so no other process may have the vault open.

    :raises UnsupportedFormat: for a vault that is not a SQLite file.
    :raises InvalidInput: when there is no such group.
    :raises AccessDenied: when the caller owns neither the file nor the directory, or
        is not a member of the group.
    :raises Conflict: when other processes keep the vault open.
    """
    import grp  # POSIX only, as in group_name

    path = _vault_file(admin)
    try:
        gid = grp.getgrnam(group).gr_gid
    except KeyError:
        raise InvalidInput(f"no group named {quoted(group)}") from None
    _check_owner(path)
    admin.store.dispose()
    _set_journal(path, SHARED_JOURNAL)  # before the audit directory says "shared"
    directory = audit_directory(path)
    if not directory.exists():
        audit_file.create(directory, gid)
    elif not audit_file_path(path).exists() and not audit_file_path(path).is_symlink():
        audit_file.create_file(audit_file_path(path), gid)  # a bot deleted it
    audit_file.give(directory, gid, audit_file.DIRECTORY_MODE)
    audit_file.give(audit_file_path(path), gid, audit_file.FILE_MODE)
    audit_file.give(path, gid, SHARED_FILE_MODE)
    audit_file.give(path.parent, gid, SHARED_DIRECTORY_MODE)
    admin.record_action("share", f"group {group}; bots append to {directory.name}")
    return layout_of(path)


def unshare(admin: AdminVault) -> Path:
    """Put the vault of ``admin`` back in the single-user layout; returns the directory
    its audit file was retired to (kept, 0700, still listed and verified with the log;
    nothing is merged). Audited in the vault as ``unshare``.

    :raises UnsupportedFormat: for a vault that is not a SQLite file.
    :raises InvalidInput: when the vault is not shared.
    :raises AccessDenied: when the caller owns neither the file nor the directory.
    :raises Conflict: when other processes keep the vault open.
    """
    path = _vault_file(admin)
    if not is_shared(path):
        raise InvalidInput("the vault is not shared (it is in the single-user layout)")
    _check_owner(path)
    admin.store.dispose()
    _set_journal(path, SINGLE_USER_JOURNAL)  # first: it fails while others have it open
    # Opened as the owner: a bot's interrupted append is rolled back now.
    try:
        kept = f"bots' {audit_file.count(audit_file_path(path))} entries"
    except VaultError as exc:  # missing or damaged: retired all the same, for a look
        kept = f"bots' audit file ({exc})"
    retired = audit_file.retired_directory(path, utc_now())
    os.rename(audit_directory(path), retired)
    # 0700 closes everything in it to the bots (its files stay as the bots left them).
    audit_file.give(retired, retired.stat().st_gid, audit_file.RETIRED_DIRECTORY_MODE)
    os.chmod(path, SINGLE_USER_FILE_MODE)
    os.chmod(path.parent, SINGLE_USER_DIRECTORY_MODE)
    fsync_path(path.parent)
    admin.record_action("unshare", f"{kept} kept in {retired.name}")
    return retired


__all__ = [
    "Layout",
    "group_name",
    "layout_of",
    "share",
    "unshare",
]
