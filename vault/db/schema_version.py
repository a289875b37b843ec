"""The schema versions: which one this exvault writes, what each step changed, and
whether a reader may use a vault that has not taken it yet.

Apart from :mod:`vault.db.migrations` (which holds how each step is applied, and needs
SQLAlchemy) so that a bot reading a SQLite file checks the version with the standard
library alone. The schema version (``exvault_schema``) is separate from the
cryptographic format version (``vault_header``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, NamedTuple

from vault.errors import IntegrityError, UnsupportedFormat

if TYPE_CHECKING:
    from vault.format.identities import RootKeys


class OwnerKeys(NamedTuple):
    """The owner's keys once unlocked, as a migration that verifies and re-signs needs
    them (here, not with the migrations, so that an owner's opening names them without
    loading SQLAlchemy)."""

    vault_id: bytes
    verify_public: bytes
    identity: RootKeys

    def __repr__(self) -> str:
        return f"OwnerKeys(vault_id={self.vault_id.hex()!r})"


class SchemaStep(NamedTuple):
    """What the step from schema ``to_version - 1`` to ``to_version`` changes, and who
    may keep using a vault that has not taken it."""

    to_version: int
    description: str
    readers_compatible: bool
    backends: tuple[str, ...] = ("sqlite", "postgresql")
    """The backends whose schema the step changes; on the others it only moves the
    version number, so their readers need not wait for it."""


STEPS: tuple[SchemaStep, ...] = (
    SchemaStep(
        2,
        "index the audit log by action, credential and time (check's last-read query)",
        readers_compatible=True,
    ),
    SchemaStep(
        3,
        "heads carry a revision, a version counter, the digests of the versions their "
        "stages name and the signed set of their grantees, under a new signed kind",
        readers_compatible=False,
    ),
    SchemaStep(
        4,
        "PostgreSQL: the audit chain's head row, locked by writers and checked by a "
        "trigger on every append; the reader appends through a function instead of INSERT",
        # A reader of this version appends through the function, which an older schema
        # lacks.
        readers_compatible=False,
        backends=("postgresql",),
    ),
    # Keyless readers never read the signature (they cannot check it: see format.md
    # section 11), so they keep working until the owner's next unlock adds it.
    SchemaStep(
        5,
        "sign every keyslot with the root key (its KDF parameters were unauthenticated)",
        readers_compatible=True,
    ),
    # A reader of this version reads the versions' endpoint column, which an older
    # schema lacks.
    SchemaStep(
        6,
        "a version's endpoint (NULL: the exchange's live API) in its signed metadata, and "
        "the table of probe observations",
        readers_compatible=False,
    ),
    # Only the owner's automated rotation reads the journal: bots and keyless commands
    # keep working until the owner's next unlock adds it.
    SchemaStep(
        7,
        "the journal of automated rotation (one signed entry per exchange-side step)",
        readers_compatible=True,
    ),
)


AUDIT_HEAD_SCHEMA = 4
"""The schema version from which a PostgreSQL vault keeps its audit chain's head in a
row that writers lock (and the reader appends through a function)."""

SCHEMA_VERSION = STEPS[-1].to_version
"""Version of the SQL schema this exvault writes; separate from the cryptographic
format version."""


def pending(version: int) -> list[SchemaStep]:
    """The steps a schema at ``version`` still needs, in order."""
    return [step for step in STEPS if step.to_version > version]


def check_schema_version(version: object, *, owner: bool, backend: str | None = None) -> None:
    """Refuse a schema this exvault cannot use: a newer one, or, unless the ``owner``
    opens it (to unlock, then upgrade), an older one that a pending step makes
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
        step.readers_compatible or (backend is not None and backend not in step.backends)
        for step in pending(version)
    ):
        raise UnsupportedFormat(
            f"the vault's schema (version {version}) needs an upgrade this reader cannot "
            "do: run any exvault command that asks for the passphrase, once, as the owner"
        )


__all__ = [
    "AUDIT_HEAD_SCHEMA",
    "SCHEMA_VERSION",
    "STEPS",
    "OwnerKeys",
    "SchemaStep",
    "check_schema_version",
    "pending",
]
