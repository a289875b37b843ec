"""``exvault doctor``: what can be checked without the passphrase.

The layout of a SQLite vault (single-user file, or shared with a bots' group, see
:mod:`vault.owner.layout`) and the file and directory modes it needs, the modes of the
secret files exvault would read, the SQLite journal state, the KDF parameters against
policy, and the clock.
"""

from __future__ import annotations

import glob
import os
import shlex
import stat
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from vault.db import audit_file, queries
from vault.db.inventory import Inventory
from vault.db.sqlite_file import AUDIT_FILE_JOURNAL, SHARED_JOURNAL
from vault.db.transaction import Store
from vault.errors import VaultError
from vault.format import kdf_params
from vault.format.model import from_epoch
from vault.owner.layout import SHARED_DIRECTORY_MODE, SHARED_FILE_MODE, group_name, layout_of
from vault.runtime.token import ENV_TOKEN_FILE, SYSTEMD_CREDENTIAL

ENV_PASSPHRASE_FILE = "EXVAULT_PASSPHRASE_FILE"  # noqa: S105 (a variable name)
CLOCK_SLACK = timedelta(minutes=5)


@dataclass(frozen=True)
class Diagnosis:
    """One check: status ``ok``, ``warn`` or ``fail``, its subject and a message."""

    status: str
    check: str
    message: str


def _mode_check(path: Path, what: str, want_dir: bool = False) -> Diagnosis:
    try:
        info = path.stat()
    except OSError as exc:
        return Diagnosis("fail", what, f"{path}: {exc.strerror}")
    mode = stat.S_IMODE(info.st_mode)
    expected = 0o700 if want_dir else 0o600
    if mode & 0o077:
        return Diagnosis(
            "fail",
            what,
            f"{path} has mode {mode:04o}: others can read it (chmod {expected:o} {path})",
        )
    if info.st_uid != os.getuid():
        return Diagnosis("warn", what, f"{path} belongs to uid {info.st_uid}, not to you")
    return Diagnosis("ok", what, f"{path} mode {mode:04o}")


def _shared_mode_check(path: Path, what: str, mode: int, owner: int, gid: int) -> Diagnosis:
    # The shared layout's modes exactly: a bit more lets someone in (a bot writing the
    # vault, others reading it), a bit less locks the bots out.
    try:
        info = path.stat()
    except OSError as exc:
        return Diagnosis("fail", what, f"{path}: {exc.strerror}")
    found = stat.S_IMODE(info.st_mode)
    if found & ~mode:
        return Diagnosis(
            "fail",
            what,
            f"{path} has mode {found:04o}: more than {mode:04o} (chmod {mode:o} {path})",
        )
    if info.st_uid != owner:
        return Diagnosis(
            "fail", what, f"{path} belongs to uid {info.st_uid}, not to the vault's owner {owner}"
        )
    if info.st_gid != gid:
        return Diagnosis(
            "fail",
            what,
            f"{path} has group {group_name(info.st_gid)}, not the bots' {group_name(gid)}",
        )
    if found != mode:
        return Diagnosis(
            "warn",
            what,
            f"{path} has mode {found:04o}: bots need {mode:04o} (chmod {mode:o} {path})",
        )
    return Diagnosis("ok", what, f"{path} mode {found:04o}, group {group_name(gid)}")


def _shared_checks(store: Store, path: Path) -> list[Diagnosis]:
    """The shared layout: its modes, owners and group, and both files' journal modes."""
    layout = layout_of(path)
    out = [Diagnosis("ok", "layout", layout.describe())]
    info = path.stat()
    owner, gid = info.st_uid, info.st_gid
    if owner != os.getuid():
        out.append(Diagnosis("warn", "vault file", f"{path} belongs to uid {owner}, not to you"))
    audit = layout.audit_file
    for checked, what, mode in (
        (path.parent, "vault directory", SHARED_DIRECTORY_MODE),
        (path, "vault file", SHARED_FILE_MODE),
        (audit.parent, "audit directory", audit_file.DIRECTORY_MODE),
        (audit, "audit file", audit_file.FILE_MODE),
    ):
        out.append(_shared_mode_check(checked, what, mode, owner, gid))
    with store.read() as transaction:
        journal = transaction.execute(queries.JOURNAL_MODE_SQL)[0][0]
    out.append(
        Diagnosis(
            "ok" if journal == SHARED_JOURNAL.lower() else "fail",
            "journal",
            f"journal mode {journal}"
            + ("" if journal == SHARED_JOURNAL.lower() else "; bots cannot read it safely"),
        )
    )
    try:
        with audit_file.opened(audit) as audit_store, audit_store.read() as transaction:
            audit_journal = transaction.execute(queries.JOURNAL_MODE_SQL)[0][0]
    except VaultError as exc:
        out.append(Diagnosis("fail", "audit file", f"{audit}: {exc}"))
    else:
        out.append(
            Diagnosis(
                "ok" if audit_journal == AUDIT_FILE_JOURNAL.lower() else "fail",
                "audit file journal mode",
                f"journal mode {audit_journal}",
            )
        )
    return out


def replaced_copies(path: Path) -> list[Path]:
    """The full copies of the vault at ``path`` that ``restore`` kept aside
    (``VAULT.replaced-TIME`` and their ``-wal``/``-shm`` files), sorted by name."""
    return sorted(path.parent.glob(glob.escape(path.name) + ".replaced-*"))


def _replaced_copies(path: Path) -> Diagnosis:
    # Each is a whole vault, still openable with the passphrase it had then: a user
    # who changed the passphrase because it leaked wants them gone.
    copies = replaced_copies(path)
    if not copies:
        return Diagnosis("ok", "replaced vaults", "no copies left behind by restore")
    names = " ".join(shlex.quote(str(c)) for c in copies)
    return Diagnosis(
        "warn",
        "replaced vaults",
        f"{len(copies)} file(s) of vaults replaced by restore, each openable with the "
        f"passphrase it had then; once no longer needed: rm -- {names}",
    )


def diagnose(
    inventory: Inventory, now: datetime, environ: dict[str, str] | None = None
) -> list[Diagnosis]:
    """Run every check; returns them all, ``ok`` ones included."""
    env = dict(os.environ if environ is None else environ)
    out: list[Diagnosis] = []
    store = inventory.store
    path = store.path
    if path is not None and layout_of(path).shared:
        out += _shared_checks(store, path)
    elif path is not None:
        out.append(Diagnosis("ok", "layout", layout_of(path).describe()))
        out.append(_mode_check(path.parent, "vault directory", want_dir=True))
        out.append(_mode_check(path, "vault file"))
        for suffix in ("-wal", "-shm"):
            side = path.with_name(path.name + suffix)
            if side.exists():
                out.append(_mode_check(side, f"vault {suffix[1:]} file"))
        with store.read() as transaction:
            journal = transaction.execute(queries.JOURNAL_MODE_SQL)[0][0]
        wal = path.with_name(path.name + "-wal")
        wal_size = wal.stat().st_size if wal.exists() else 0
        out.append(
            Diagnosis(
                "ok" if journal == "wal" else "warn",
                "journal",
                f"journal mode {journal}; WAL holds {wal_size} bytes"
                + ("" if wal_size < 64 * 1024 * 1024 else " (large: a reader may be stuck)"),
            )
        )
    if path is not None:
        out.append(_replaced_copies(path))
    for variable, label in (
        (ENV_TOKEN_FILE, "token file"),
        (ENV_PASSPHRASE_FILE, "passphrase file"),
    ):
        if env.get(variable):
            out.append(_mode_check(Path(env[variable]), f"{label} (${variable})"))
    if env.get("CREDENTIALS_DIRECTORY"):
        cred = Path(env["CREDENTIALS_DIRECTORY"]) / SYSTEMD_CREDENTIAL
        if cred.exists():
            out.append(_mode_check(cred, "systemd token credential"))
    status = inventory.status()
    if not status.kdf.at_least(kdf_params.KDF_FLOOR):
        out.append(
            Diagnosis(
                "fail",
                "kdf",
                f"{status.kdf} (as stored, unauthenticated) is below RFC 9106's minimum; "
                "exvault passwd --recalibrate",
            )
        )
    elif status.kdf.memory_kib < kdf_params.KDF_DEFAULT_MEMORY_KIB:
        out.append(
            Diagnosis(
                "warn",
                "kdf",
                f"{status.kdf} (as stored, unauthenticated) uses less memory than the "
                "current default",
            )
        )
    else:
        # Read without a key: the parameters are the database's word, checked at unlock.
        out.append(Diagnosis("ok", "kdf", f"{status.kdf} (as stored, unauthenticated)"))
    with store.read() as transaction:
        ((audit_at, updated_at),) = transaction.execute(queries.NEWEST_TIMES_SQL)
        newest = max(audit_at or 0, updated_at or 0)
    if newest and from_epoch(newest) > now + CLOCK_SLACK:
        out.append(
            Diagnosis(
                "fail",
                "clock",
                f"this machine's clock ({now:%Y-%m-%d %H:%M} UTC) is behind the vault's newest "
                f"record ({from_epoch(newest):%Y-%m-%d %H:%M}): ages and expiries would be wrong",
            )
        )
    else:
        out.append(
            Diagnosis("ok", "clock", f"{now:%Y-%m-%d %H:%M} UTC, not behind the vault's records")
        )
    return out
