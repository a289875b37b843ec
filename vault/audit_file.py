"""The audit file of a shared SQLite vault: where bots append their audit entries.

In the shared layout (docs/deploy.md) bots may read the vault file but not write it,
so their audit entries (reads, refusals) go to a second SQLite file beside it,
``NAME.audit.db``, which the bots' group may write. It holds one table, ``audit_log``,
of exactly the vault's format (docs/format.md section 4.11), and its own hash chain
bound to the same vault id: entries are hashed and signed as in the vault, numbered
from 1, the first linking to the all-zero genesis hash. The owner's own entries stay in
the vault, so an entry signed by the vault key in the audit file is out of place.

``exvault share --off`` retires the audit file: renamed ``NAME.audit-until-TIME.db``,
it is still listed and verified with the vault's log. Only the directory's owner can
create, rename or remove these files; anyone in the bots' group can rewrite the
current one, but not forge an entry in a client's name (each is signed by the client's
key), and a cut-off end is caught by the witness as in the vault.

This module is the owner's side; a bot appends through :mod:`vault.client_sql`.
"""

from __future__ import annotations

import glob
import os
import sqlite3
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import replace
from datetime import datetime
from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.schema import CreateIndex, CreateTable

from vault import audit
from vault.errors import AccessDenied, AlreadyExists, VaultError, printable
from vault.sqlite_file import (
    AUDIT_FILE_JOURNAL,
    audit_file_path,
    create_sqlite_file,
    fsync_path,
    journal_path,
)
from vault.store import AuditRecord, Store, make_engine, sqlite_url

RETIRED_INFIX = ".audit-until-"
FILE_MODE = 0o660


def retired_path(vault: Path, when: datetime) -> Path:
    """The name the audit file of ``vault`` takes when it is retired at ``when``."""
    return vault.with_name(
        vault.name.removesuffix(".db") + RETIRED_INFIX + when.strftime("%Y%m%dT%H%M%SZ") + ".db"
    )


def audit_files(vault: Path) -> list[Path]:
    """Every audit file of the vault file ``vault``: the retired ones, oldest first, then
    the current one (shared layout)."""
    stem = glob.escape(vault.name.removesuffix(".db"))
    found = sorted(vault.parent.glob(f"{stem}{RETIRED_INFIX}*.db"))
    current = audit_file_path(vault)
    if current.is_file():
        found.append(current)
    return found


def create(path: Path, gid: int) -> None:
    """Create the empty audit file ``path`` and its journal, group ``gid``, mode 0660.

    Built under a temporary name and linked into place once complete, so that the
    audit file's name (which marks the vault shared) never names a half-made file.

    :raises AlreadyExists: when a file is at ``path``.
    :raises AccessDenied: when the group cannot be given (the caller is not in it).
    """
    build = path.with_name(f".{path.name}.creating-{os.urandom(6).hex()}")
    create_sqlite_file(build)
    try:
        connection = sqlite3.connect(build, isolation_level=None)
        try:
            connection.execute(f"PRAGMA journal_mode = {AUDIT_FILE_JOURNAL}")
            connection.execute("PRAGMA synchronous = FULL")
            connection.execute("BEGIN IMMEDIATE")
            table = AuditRecord.__table__
            dialect = make_engine(sqlite_url(build)).dialect
            connection.execute(str(CreateTable(table).compile(dialect=dialect)))  # type: ignore[arg-type]
            for index in sorted(table.indexes, key=lambda i: str(i.name)):  # type: ignore[attr-defined]
                connection.execute(str(CreateIndex(index).compile(dialect=dialect)))
            connection.execute("COMMIT")
        finally:
            connection.close()
        journal_path(build).unlink(missing_ok=True)
        # The journal is made here, 0660, and kept (TRUNCATE mode): bots may not create
        # files in the vault's directory.
        journal = journal_path(path)
        fd = os.open(journal, os.O_CREAT | os.O_WRONLY | os.O_TRUNC, FILE_MODE)
        os.close(fd)
        for made in (build, journal):
            _give(made, gid)
        try:
            os.link(build, path)
        except FileExistsError:
            raise AlreadyExists(
                f"a file exists at {printable(path)}; refusing to overwrite it"
            ) from None
        fsync_path(path.parent)
    finally:
        build.unlink(missing_ok=True)
        journal_path(build).unlink(missing_ok=True)


def _give(path: Path, gid: int) -> None:
    try:
        os.chown(path, -1, gid)
    except PermissionError:
        raise AccessDenied(
            f"cannot give {printable(path)} to group {gid}: you must be a member of it"
        ) from None
    os.chmod(path, FILE_MODE)


@contextmanager
def opened(path: Path) -> Iterator[Store]:
    """A store on the existing audit file ``path``, for the owner (who may write it: a
    bot's interrupted append is rolled back when the owner opens it).

    :raises VaultUnavailable: when no file is there.
    """
    from vault.sqlite_file import check_present

    check_present(path)
    store = Store(make_engine(sqlite_url(path), journal=AUDIT_FILE_JOURNAL))
    try:
        yield store
    finally:
        store.dispose()


def entries(path: Path, since: datetime | None = None) -> list[audit.AuditEntry]:
    """The entries of the audit file ``path``, labelled with its name.

    :raises IntegrityError: when a column of an entry holds a value of another type.
    """
    with opened(path) as store, store.read() as session:
        return [replace(e, log=path.name) for e in audit.entries(session, since)]


def verify(
    path: Path,
    vault_id: bytes,
    root_public: bytes,
    client_publics: Mapping[str, tuple[str, bytes]],
) -> audit.ChainReport:
    """Verify the chain of the audit file ``path`` as the vault's (numbering, links,
    hashes, signatures); an entry of the owner there is a problem too, and revocations
    count only in the vault. Problems name the file; an unreadable file is one.
    """
    label = path.name
    try:
        with opened(path) as store, store.read() as session:
            report = audit.verify_chain(session, vault_id, root_public, client_publics)
            owners = list(
                session.scalars(
                    select(AuditRecord.seq)
                    .where(
                        (AuditRecord.signer == audit.ROOT_SIGNER) | (AuditRecord.actor == audit.ADMIN)
                    )
                    .order_by(AuditRecord.seq)
                )
            )
            witness = audit.read_witness(_witness_id(vault_id, path))
            cut = witness is not None and not audit.chain_contains(session, *witness)
    except VaultError as exc:
        return audit.ChainReport(0, 0, audit.GENESIS, (f"{label}: cannot be read: {exc}",))
    problems = [f"{label}: {p}" for p in report.problems]
    problems += [f"{label}: entry {seq} is the owner's, who never writes there" for seq in owners]
    if cut and witness is not None:
        problems.append(
            f"{label}: entry {witness[0]}, seen by the last verification on this machine, "
            "is gone or changed: entries were cut off the end of the file"
        )
    return audit.ChainReport(report.entries, report.head_seq, report.head_hash, tuple(problems))


def _witness_id(vault_id: bytes, path: Path) -> bytes:
    # One witness per audit file, beside the vault's (audit.witness_path): the vault id
    # followed by the file's name.
    return vault_id + b"-" + path.name.encode()


def remember(vault_id: bytes, path: Path, report: audit.ChainReport) -> None:
    """Remember the head of the audit file ``path`` just verified (see
    :func:`vault.audit.write_witness`)."""
    if report.ok and report.head_seq:
        audit.write_witness(_witness_id(vault_id, path), report.head_seq, report.head_hash)


def count(path: Path) -> int:
    """Number of entries in the audit file ``path``."""
    with opened(path) as store, store.read() as session:
        return session.scalar(select(func.count()).select_from(AuditRecord)) or 0


def last_reads(path: Path) -> dict[str, int]:
    """The time (epoch seconds) of the last signed, successful read of each credential
    recorded in the audit file ``path``, as ``check`` counts them in the vault."""
    with opened(path) as store, store.read() as session:
        rows = session.execute(
            select(AuditRecord.credential, func.max(AuditRecord.at))
            .where(
                AuditRecord.action == "read",
                AuditRecord.outcome == "ok",
                AuditRecord.signature.is_not(None),
            )
            .group_by(AuditRecord.credential)
        )
        return {name: at for name, at in rows if isinstance(name, str) and isinstance(at, int)}


__all__ = [
    "FILE_MODE",
    "RETIRED_INFIX",
    "audit_files",
    "count",
    "create",
    "entries",
    "last_reads",
    "opened",
    "remember",
    "retired_path",
    "verify",
]
