"""``exvault doctor``: what can be checked without the passphrase.

File and directory modes of the vault and of the secret files exvault would read,
the SQLite journal state, the KDF parameters against policy, and the clock.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from sqlalchemy import func, select, text

from vault import crypto
from vault.inventory import Inventory
from vault.model import from_epoch
from vault.store import AuditRecord, CredentialRecord, sqlite_path
from vault.token import ENV_TOKEN_FILE, SYSTEMD_CREDENTIAL

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


def diagnose(
    inventory: Inventory, now: datetime, environ: dict[str, str] | None = None
) -> list[Diagnosis]:
    """Run every check; returns them all, ``ok`` ones included."""
    env = dict(os.environ if environ is None else environ)
    out: list[Diagnosis] = []
    store = inventory.store
    path = sqlite_path(store.url)
    if path is not None:
        out.append(_mode_check(path.parent, "vault directory", want_dir=True))
        out.append(_mode_check(path, "vault file"))
        for suffix in ("-wal", "-shm"):
            side = path.with_name(path.name + suffix)
            if side.exists():
                out.append(_mode_check(side, f"vault {suffix[1:]} file"))
        with store.read() as session:
            journal = session.execute(text("PRAGMA journal_mode")).scalar()
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
    if not status.kdf.at_least(crypto.KDF_FLOOR):
        out.append(
            Diagnosis(
                "fail",
                "kdf",
                f"{status.kdf} (as stored, unauthenticated) is below RFC 9106's minimum; "
                "exvault passwd --recalibrate",
            )
        )
    elif status.kdf.memory_kib < crypto.KDF_DEFAULT_MEMORY_KIB:
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
    with store.read() as session:
        newest = max(
            session.scalar(select(func.max(AuditRecord.at))) or 0,
            session.scalar(select(func.max(CredentialRecord.updated_at))) or 0,
        )
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
