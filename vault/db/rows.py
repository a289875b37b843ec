"""Plain rows: the records a client reads, as the direct SQLite path returns them.

:mod:`vault.format.records` checks and opens rows by their attributes; it takes either the
SQLAlchemy records of :mod:`vault.db.store` or these named tuples, which carry the
same columns under the same names, in the tables' order. They exist so that a bot's
process can read its credential with the standard library's :mod:`sqlite3` alone
(see :mod:`vault.db.client_sql`); named tuples are built from a cursor's tuples at no
cost and are quick to define in a process that starts for one secret.
``tests/db/test_rows.py`` holds their columns to the tables'.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, NamedTuple, TypeAlias

if TYPE_CHECKING:
    from vault.db.tables import (
        ClientRecord,
        CredentialRecord,
        HeaderRecord,
        PayloadRecord,
        VersionRecord,
        WrapRecord,
    )


class HeaderRow(NamedTuple):
    """A ``vault_header`` row."""

    id: int
    format_version: int
    vault_id: bytes
    created_at: int
    encryption_public: bytes
    verify_public: bytes
    signature: bytes


class HeadRow(NamedTuple):
    """A ``credentials`` row: a credential's head."""

    id: str
    name: str
    created_at: int
    updated_at: int
    current_version: int | None
    pending_version: int | None
    pending_since: int | None
    previous_version: int | None
    previous_until: int | None
    policy: str
    exposed_at: int | None
    exposed_reason: str | None
    signature: bytes
    revision: int
    version_counter: int
    current_digest: bytes | None
    pending_digest: bytes | None
    previous_digest: bytes | None
    grantees: str


class VersionRow(NamedTuple):
    """A ``credential_versions`` row."""

    credential_id: str
    version: int
    name: str
    exchange: str
    permissions: str
    ips: str
    issued_on: str
    expires_on: str | None
    created_at: int
    api_key_fingerprint: bytes
    payload_digest: bytes
    signature: bytes


class PayloadRow(NamedTuple):
    """A ``payloads`` row."""

    credential_id: str
    version: int
    nonce: bytes
    ciphertext: bytes


class WrapRow(NamedTuple):
    """A ``dek_wraps`` row."""

    credential_id: str
    version: int
    recipient: str
    ephemeral_public: bytes
    body: bytes


class ClientRow(NamedTuple):
    """A ``clients`` row."""

    id: str
    name: str
    encryption_public: bytes
    verify_public: bytes
    created_at: int
    expires_at: int | None
    max_scope: str
    revoked_at: int | None
    signature: bytes


# What the functions of vault.format.records accept: a SQLAlchemy record or a plain row.
Header: TypeAlias = "HeaderRecord | HeaderRow"
Head: TypeAlias = "CredentialRecord | HeadRow"
Version: TypeAlias = "VersionRecord | VersionRow"
Payload: TypeAlias = "PayloadRecord | PayloadRow"
Wrap: TypeAlias = "WrapRecord | WrapRow"
Client: TypeAlias = "ClientRecord | ClientRow"

TABLES: dict[str, type[tuple[object, ...]]] = {
    "vault_header": HeaderRow,
    "credentials": HeadRow,
    "credential_versions": VersionRow,
    "payloads": PayloadRow,
    "dek_wraps": WrapRow,
    "clients": ClientRow,
}
"""Each plain row type by its table's name."""

__all__ = [
    "TABLES",
    "Client",
    "ClientRow",
    "Head",
    "HeadRow",
    "Header",
    "HeaderRow",
    "Payload",
    "PayloadRow",
    "Version",
    "VersionRow",
    "Wrap",
    "WrapRow",
]
