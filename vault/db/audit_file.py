"""The audit file of a shared SQLite vault: where bots append their audit entries.

In the shared layout (docs/deploy.md) bots may read the vault file but not write it,
so their audit entries (reads, refusals) go to a second SQLite file,
``NAME.audit/audit.db`` beside the vault ``NAME.db``, in a directory of its own that
the bots' group may write (SQLite creates and deletes a rollback journal beside a file
it writes). It holds one table, ``audit_log``, of exactly the vault's format
(docs/format.md section 4.11), and its own hash chain bound to the same vault id:
entries are hashed and signed as in the vault, numbered from 1, the first linking to
the all-zero genesis hash. The owner's own entries stay in the vault, so an entry
signed by the vault key in the audit file is out of place.

``exvault share --off`` retires the audit directory: renamed
``NAME.audit-until-TIME``, its file is still listed and verified with the vault's log.
Only the vault directory's owner can create, rename or remove these directories;
anyone in the bots' group can rewrite or replace the current audit file, but not forge
an entry in a client's name (each is signed by the client's key), and a cut-off end is
caught by the witness as in the vault.

This module is the owner's side; a bot appends through :mod:`vault.db.client_sql`.
"""

from __future__ import annotations

import errno
import glob
import os
import sqlite3
import stat
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path

from vault.db import audit, queries, sqlite_file
from vault.db.queries import sqlite_write
from vault.db.schema_version import SCHEMA_VERSION
from vault.db.sqlite_file import (
    AUDIT_DIRECTORY_SUFFIX,
    AUDIT_FILE_JOURNAL,
    AUDIT_FILE_NAME,
    create_sqlite_file,
    fsync_path,
)
from vault.db.sqlite_store import SqliteStore
from vault.db.transaction import Store
from vault.errors import AccessDenied, AlreadyExists, IntegrityError, VaultError, printable
from vault.format import encoding

RETIRED_INFIX = AUDIT_DIRECTORY_SUFFIX + "-until-"
FILE_MODE = 0o660
DIRECTORY_MODE = 0o2770
"""Group-writable, and set-group-ID so that the journals bots create get the group."""
RETIRED_DIRECTORY_MODE = 0o700


def retired_directory(vault: Path, when: datetime) -> Path:
    """The name the audit directory of ``vault`` takes when it is retired at ``when``."""
    return vault.with_name(
        vault.name.removesuffix(".db") + RETIRED_INFIX + when.strftime("%Y%m%dT%H%M%SZ")
    )


def audit_files(vault: Path) -> list[Path]:
    """Every audit file of the vault file ``vault``: the retired ones, oldest first, then
    the current one (shared layout; listed even when it is missing)."""
    stem = glob.escape(vault.name.removesuffix(".db"))
    found = sorted(
        directory / AUDIT_FILE_NAME
        for directory in vault.parent.glob(f"{stem}{RETIRED_INFIX}*")
        if (directory / AUDIT_FILE_NAME).is_file()
    )
    current = vault.with_name(vault.name.removesuffix(".db") + AUDIT_DIRECTORY_SUFFIX)
    if current.is_dir():  # shared: its file is listed even when missing, to be reported
        found.append(current / AUDIT_FILE_NAME)
    return found


def label(path: Path) -> str:
    """How entries of the audit file ``path`` are labelled: its directory's name."""
    return path.parent.name


def _write_schema(database: Path) -> None:
    # The audit_log table and its indexes, exactly as the vault's (format.md §4.11):
    # SQLAlchemy's DDL, loaded here only, when a vault is made shared, so that the
    # owner's other commands, which read audit files, do not load it.
    from sqlalchemy.schema import CreateIndex, CreateTable

    from vault.db.store import make_engine
    from vault.db.tables import AuditRecord
    from vault.db.url import sqlite_url

    connection = sqlite3.connect(database, isolation_level=None)
    try:
        connection.execute(f"PRAGMA journal_mode = {AUDIT_FILE_JOURNAL}")
        connection.execute("PRAGMA synchronous = FULL")
        table = AuditRecord.__table__
        dialect = make_engine(sqlite_url(database)).dialect
        with sqlite_write(connection) as execute:
            execute(str(CreateTable(table).compile(dialect=dialect)), {})  # type: ignore[arg-type]
            for index in sorted(table.indexes, key=lambda i: str(i.name)):  # type: ignore[attr-defined]
                execute(str(CreateIndex(index).compile(dialect=dialect)), {})
    finally:
        connection.close()


def create(directory: Path, gid: int) -> None:
    """Create the audit directory ``directory`` (2770) with an empty audit file (0660),
    both of group ``gid``.

    Built under a temporary name and renamed into place once complete, so that the
    directory's name (which marks the vault shared) never names a half-made one.

    :raises AlreadyExists: when something is at ``directory``.
    :raises AccessDenied: when the group cannot be given (the caller is not in it).
    """
    if directory.exists():
        raise AlreadyExists(f"{printable(directory)} exists; refusing to overwrite it")
    build = directory.with_name(f".{directory.name}.creating-{os.urandom(6).hex()}")
    build.mkdir(mode=0o700)
    database = build / AUDIT_FILE_NAME
    try:
        create_sqlite_file(database)
        _write_schema(database)
        give(database, gid, FILE_MODE)
        give(build, gid, DIRECTORY_MODE)
        fsync_path(database)
        fsync_path(build)
        os.rename(build, directory)
        fsync_path(directory.parent)
    except BaseException:
        for leftover in build.iterdir() if build.exists() else ():
            leftover.unlink()
        if build.exists():
            build.rmdir()
        raise


def create_file(path: Path, gid: int) -> None:
    """Create a new, empty audit file ``path`` (0660, group ``gid``) in its existing
    directory, in place of one that went missing (a member of the bots' group may
    delete it).

    :raises AlreadyExists: when a file appeared at ``path`` meanwhile.
    :raises AccessDenied: when the group cannot be given (the caller is not in it).
    """
    build = path.with_name(f".{path.name}.creating-{os.urandom(6).hex()}")
    try:
        create_sqlite_file(build)
        _write_schema(build)
        give(build, gid, FILE_MODE)
        fsync_path(build)
        try:
            os.link(build, path)  # never replaces a file
        except FileExistsError:
            raise AlreadyExists(f"a file appeared at {printable(path)} meanwhile") from None
        fsync_path(path.parent)
    finally:
        build.unlink(missing_ok=True)


def give(path: Path, gid: int, mode: int) -> None:
    """Give ``path`` to group ``gid`` with ``mode``, never through a symbolic link or a
    second hard link: the bots may replace what is in the audit directory, and must not
    get the owner to open up a file of theirs that way.

    :raises IntegrityError: when ``path`` is a symbolic link or has other hard links.
    :raises AccessDenied: when the caller may not (it is not a member of the group).
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise IntegrityError(f"{printable(path)} is a symbolic link; refusing it") from None
        raise AccessDenied(f"cannot open {printable(path)}: {exc.strerror}") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISDIR(info.st_mode) and info.st_nlink != 1:
            raise IntegrityError(f"{printable(path)} has other hard links; refusing it")
        os.fchown(fd, -1, gid)
        os.fchmod(fd, mode)  # after chown, which clears the set-group-ID bit
    except PermissionError:
        raise AccessDenied(
            f"cannot give {printable(path)} to group {gid}: you must be a member of it"
        ) from None
    finally:
        os.close(fd)


def check_regular_file(path: Path) -> None:
    """Refuse anything at ``path`` but a regular file, looked at through a descriptor
    opened without following a link and without blocking.

    Members of the bots' group may replace the audit file: a symbolic link would make
    the owner read (and SQLite write a journal beside) another file, and a FIFO would
    hang the owner's command in SQLite's own open, which does not use ``O_NONBLOCK``.
    (A file swapped between this check and SQLite's open is not caught: the window is
    short, and the worst it does is that one command hangs or reads another log.)

    :raises IntegrityError: when no regular file is there, saying what is.
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except FileNotFoundError:
        raise IntegrityError(
            f"the audit file {printable(path)} is missing (deleted by a member of the bots' "
            "group?); exvault share --group GROUP makes a new one"
        ) from None
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise IntegrityError(f"{printable(path)} is a symbolic link; refusing it") from None
        raise IntegrityError(
            f"the audit file {printable(path)} cannot be opened: {exc.strerror}"
        ) from None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise IntegrityError(f"the audit file {printable(path)} is not a regular file")
    finally:
        os.close(fd)


@contextmanager
def opened(path: Path) -> Iterator[Store]:
    """A store on the existing audit file ``path``, for the owner (who may write it: a
    bot's interrupted append is rolled back when the owner opens it).

    :raises IntegrityError: when no regular file is there.
    """
    check_regular_file(path)
    connection = sqlite_file.connect(path, journal=AUDIT_FILE_JOURNAL)
    store = SqliteStore(path, connection, SCHEMA_VERSION, journal=AUDIT_FILE_JOURNAL)
    try:
        yield store
    finally:
        store.dispose()


def entries(path: Path, since: datetime | None = None) -> list[audit.AuditEntry]:
    """The entries of the audit file ``path``, labelled with its name.

    :raises IntegrityError: when a column of an entry holds a value of another type.
    """
    with opened(path) as store, store.read() as transaction:
        return [e._replace(log=label(path)) for e in audit.entries(transaction, since)]


def verify(
    path: Path,
    vault_id: bytes,
    root_public: bytes,
    client_publics: Mapping[str, tuple[str, bytes]],
    vault_rekeys: Sequence[audit.Rekey] = (),
) -> audit.ChainReport:
    """Verify the chain of the audit file ``path`` as the vault's (numbering, links,
    hashes, signatures); an entry of the owner there is a problem too, and revocations
    count only in the vault. ``vault_rekeys``: the vault's rekey history (the keys its
    clients had before a rekey). Problems name the file; an unreadable file is one.
    """
    name = label(path)
    try:
        with opened(path) as store, store.read() as transaction:
            report = audit.verify_chain(
                transaction, vault_id, root_public, client_publics, vault_rekeys
            )
            owners = [
                seq
                for (seq,) in transaction.execute(
                    queries.AUDIT_OWNERS_SQL, {"signer": audit.ROOT_SIGNER, "actor": audit.ADMIN}
                )
            ]
            witness = audit.read_witness(_witness_id(vault_id, path))
            cut = witness is not None and not audit.chain_contains(transaction, *witness)
    except VaultError as exc:
        return audit.ChainReport(0, 0, audit.GENESIS, (f"{name}: cannot be read: {exc}",))
    problems = [f"{name}: {p}" for p in report.problems]
    problems += [f"{name}: entry {seq} is the owner's, who never writes there" for seq in owners]
    if cut and witness is not None:
        problems.append(
            f"{name}: entry {witness[0]}, seen by the last verification on this machine, "
            "is gone or changed: entries were cut off the end of the file"
        )
    return audit.ChainReport(report.entries, report.head_seq, report.head_hash, tuple(problems))


# The longest directory name a witness's file name spells out: the name is hex, so a
# longer one would pass the file system's 255 bytes (with its temporary suffix).
_LONGEST_SPELLED_LABEL = 64


def _witness_id(vault_id: bytes, path: Path) -> bytes:
    # One witness per audit file, beside the vault's (audit.witness_path): the vault id
    # followed by the name of the file's directory, or "#" and the first 16 bytes of its
    # SHA-256 when that name is long (such a name made no witness file before).
    name = label(path).encode(errors="surrogateescape")
    if len(name) > _LONGEST_SPELLED_LABEL:
        name = b"#" + encoding.sha256(name)[:16]
    return vault_id + b"-" + name


def remember(vault_id: bytes, path: Path, report: audit.ChainReport) -> None:
    """Remember the head of the audit file ``path`` just verified (see
    :func:`vault.db.audit.write_witness`)."""
    if report.ok and report.head_seq:
        audit.write_witness(_witness_id(vault_id, path), report.head_seq, report.head_hash)


def count(path: Path) -> int:
    """Number of entries in the audit file ``path``."""
    with opened(path) as store, store.read() as transaction:
        return audit.count(transaction)


__all__ = [
    "DIRECTORY_MODE",
    "FILE_MODE",
    "RETIRED_DIRECTORY_MODE",
    "RETIRED_INFIX",
    "audit_files",
    "check_regular_file",
    "count",
    "create",
    "create_file",
    "entries",
    "give",
    "label",
    "opened",
    "remember",
    "retired_directory",
    "verify",
]
