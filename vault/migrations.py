"""Schema migrations: bringing a vault made by an older exvault up to date.

The schema version (``exvault_schema``) is separate from the cryptographic format
version (``vault_header``): migrations change tables and indexes, never how records
are sealed or signed. The owner's unlock applies pending migrations in one
transaction; readers (bots, ``check``) keep working on an older schema as long as
every pending migration is marked compatible with them, and otherwise are told to
have the owner run exvault once.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from vault.errors import IntegrityError, UnsupportedFormat

if TYPE_CHECKING:
    # Only for annotations: readers check the schema version without SQLAlchemy.
    from sqlalchemy.engine import Connection


@dataclass(frozen=True)
class Migration:
    """One step from schema ``to_version - 1`` to ``to_version``."""

    to_version: int
    description: str
    readers_compatible: bool
    apply: Callable[[Connection], None]
    backends: tuple[str, ...] = ("sqlite", "postgresql")
    """The backends whose schema the step changes; on the others it only moves the
    version number, so their readers need not wait for it."""


def _audit_reads_index(conn: Connection) -> None:
    from vault.store import AUDIT_READS_INDEX

    AUDIT_READS_INDEX.create(conn, checkfirst=True)


def _audit_head(conn: Connection) -> None:
    from vault.store import install_audit_head

    install_audit_head(conn)


MIGRATIONS: tuple[Migration, ...] = (
    Migration(
        2,
        "index the audit log by action, credential and time (check's last-read query)",
        readers_compatible=True,
        apply=_audit_reads_index,
    ),
    Migration(
        3,
        "PostgreSQL: the audit chain's head row, locked by writers and checked by a "
        "trigger on every append; the reader appends through a function instead of INSERT",
        # A reader of this version appends through the function, which an older schema
        # lacks.
        readers_compatible=False,
        apply=_audit_head,
        backends=("postgresql",),
    ),
)


SCHEMA_VERSION = MIGRATIONS[-1].to_version
"""Version of the SQL schema this exvault writes; separate from the cryptographic
format version."""


def pending(version: int) -> list[Migration]:
    """The migrations a schema at ``version`` still needs, in order."""
    return [m for m in MIGRATIONS if m.to_version > version]


def check_schema_version(version: object, *, owner: bool, backend: str | None = None) -> None:
    """Refuse a schema this exvault cannot use: a newer one, or, unless the ``owner``
    opens it (to unlock, then upgrade), an older one that a pending migration makes
    unreadable as it is (on ``backend``, ``sqlite`` or ``postgresql``; None: any).

    :raises IntegrityError: when ``version`` is not an integer.
    :raises UnsupportedFormat: with what to do about it.
    """
    if version is not None and type(version) is not int:
        # The row is not authenticated, but a value of another type is no version to
        # compare (SQLite stores whatever it is given).
        raise IntegrityError("damaged vault: exvault_schema.schema_version is not an integer")
    if not isinstance(version, int) or version > SCHEMA_VERSION:
        raise UnsupportedFormat(
            f"the vault's schema version {version} is newer than this exvault supports "
            f"({SCHEMA_VERSION}); upgrade exvault"
        )
    if not owner and not all(
        m.readers_compatible or (backend is not None and backend not in m.backends)
        for m in pending(version)
    ):
        raise UnsupportedFormat(
            f"the vault's schema (version {version}) needs an upgrade this reader cannot "
            "do: run any exvault command that asks for the passphrase, once, as the owner"
        )


__all__ = ["MIGRATIONS", "SCHEMA_VERSION", "Migration", "check_schema_version", "pending"]
