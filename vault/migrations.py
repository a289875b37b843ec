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

from sqlalchemy.engine import Connection


@dataclass(frozen=True)
class Migration:
    """One step from schema ``to_version - 1`` to ``to_version``."""

    to_version: int
    description: str
    readers_compatible: bool
    apply: Callable[[Connection], None]


def _audit_reads_index(conn: Connection) -> None:
    from vault.store import AUDIT_READS_INDEX

    AUDIT_READS_INDEX.create(conn, checkfirst=True)


MIGRATIONS: tuple[Migration, ...] = (
    Migration(
        2,
        "index the audit log by action, credential and time (check's last-read query)",
        readers_compatible=True,
        apply=_audit_reads_index,
    ),
)


def pending(version: int) -> list[Migration]:
    """The migrations a schema at ``version`` still needs, in order."""
    return [m for m in MIGRATIONS if m.to_version > version]


__all__ = ["MIGRATIONS", "Migration", "pending"]
