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
from typing import TYPE_CHECKING, NamedTuple

from vault.errors import IntegrityError, UnsupportedFormat

if TYPE_CHECKING:
    # Only for annotations: readers check the schema version without SQLAlchemy.
    from sqlalchemy.engine import Connection


class Signer(NamedTuple):
    """The root key's signing, for a migration that signs rows (the owner's unlock)."""

    vault_id: bytes
    sign: Callable[[bytes], bytes]


@dataclass(frozen=True)
class Migration:
    """One step from schema ``to_version - 1`` to ``to_version``.

    ``sign_rows``, when set, runs after ``apply`` in the same transaction with the root
    key's :class:`Signer` (only the owner's unlock upgrades, once the key is proven).
    """

    to_version: int
    description: str
    readers_compatible: bool
    apply: Callable[[Connection], None]
    sign_rows: Callable[[Connection, Signer], None] | None = None


def _audit_reads_index(conn: Connection) -> None:
    from vault.store import AUDIT_READS_INDEX

    AUDIT_READS_INDEX.create(conn, checkfirst=True)


def _keyslot_signature_column(conn: Connection) -> None:
    from sqlalchemy import inspect

    from vault.store import KeyslotRecord

    # Like the index above, only when missing (a schema version can be set back by hand).
    if any(c["name"] == "signature" for c in inspect(conn).get_columns("keyslots")):
        return
    column = KeyslotRecord.__table__.c.signature
    conn.exec_driver_sql(
        f"ALTER TABLE keyslots ADD COLUMN signature {column.type.compile(dialect=conn.dialect)}"
    )


def _sign_keyslots(conn: Connection, signer: Signer) -> None:
    from vault.keyslots import sign_stored_slots

    sign_stored_slots(conn, signer)


MIGRATIONS: tuple[Migration, ...] = (
    Migration(
        2,
        "index the audit log by action, credential and time (check's last-read query)",
        readers_compatible=True,
        apply=_audit_reads_index,
    ),
    # Keyless readers never read the signature (they cannot check it: see format.md
    # section 11), so they keep working until the owner's next unlock adds it.
    Migration(
        4,
        "sign every keyslot with the root key (its KDF parameters were unauthenticated)",
        readers_compatible=True,
        apply=_keyslot_signature_column,
        sign_rows=_sign_keyslots,
    ),
)


SCHEMA_VERSION = MIGRATIONS[-1].to_version
"""Version of the SQL schema this exvault writes; separate from the cryptographic
format version."""


def pending(version: int) -> list[Migration]:
    """The migrations a schema at ``version`` still needs, in order."""
    return [m for m in MIGRATIONS if m.to_version > version]


def check_schema_version(version: object, *, owner: bool) -> None:
    """Refuse a schema this exvault cannot use: a newer one, or, unless the ``owner``
    opens it (to unlock, then upgrade), an older one that a pending migration makes
    unreadable as it is.

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
    if not owner and not all(m.readers_compatible for m in pending(version)):
        raise UnsupportedFormat(
            f"the vault's schema (version {version}) needs an upgrade this reader cannot "
            "do: run any exvault command that asks for the passphrase, once, as the owner"
        )


__all__ = [
    "MIGRATIONS",
    "SCHEMA_VERSION",
    "Migration",
    "Signer",
    "check_schema_version",
    "pending",
]
