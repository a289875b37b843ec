"""The signed rows an owner changes and signs again: a credential's head, a client and
the vault header, as plain mutable objects.

A bot only reads, so it gets the immutable rows of :mod:`vault.format.schema`. The
owner's operations change a head's stage labels, a client's revocation or the header's
keys in place, then sign the row again (:mod:`vault.format.records`) and store it with
one UPDATE of every column (:mod:`vault.db.queries`): no ORM, so an owner's command on
a SQLite file needs no SQLAlchemy. Each class has exactly the fields of its plain row,
in the same order (``tests/format/test_editable.py``), so ``of(row)`` and
:meth:`values` move between the two.
"""

from __future__ import annotations

from dataclasses import astuple, dataclass, fields
from typing import Any

from vault.format.schema import ClientRow, HeaderRow, HeadRow


@dataclass(slots=True)
class EditableHeader:
    """The ``vault_header`` row (one per vault), to be re-keyed and signed again."""

    id: int
    format_version: int
    vault_id: bytes
    created_at: int
    encryption_public: bytes
    verify_public: bytes
    signature: bytes

    @classmethod
    def of(cls, row: HeaderRow | tuple[Any, ...]) -> EditableHeader:
        """The header ``row`` as read (a :class:`HeaderRow` or its column values)."""
        return cls(*row)

    def values(self) -> dict[str, Any]:
        """Every column by name, for an UPDATE or INSERT."""
        return _values(self)

    def row(self) -> HeaderRow:
        """As the immutable row a reader sees."""
        return HeaderRow._make(astuple(self))


@dataclass(slots=True)
class EditableHead:
    """A ``credentials`` row: a credential's head, to be changed and signed again."""

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

    @classmethod
    def of(cls, row: HeadRow | tuple[Any, ...]) -> EditableHead:
        """The head ``row`` as read (a :class:`HeadRow` or its column values)."""
        return cls(*row)

    def values(self) -> dict[str, Any]:
        """Every column by name, for an UPDATE or INSERT."""
        return _values(self)

    def row(self) -> HeadRow:
        """As the immutable row a reader sees."""
        return HeadRow._make(astuple(self))


@dataclass(slots=True)
class EditableClient:
    """A ``clients`` row, to be revoked or re-keyed and signed again."""

    id: str
    name: str
    encryption_public: bytes
    verify_public: bytes
    created_at: int
    expires_at: int | None
    max_scope: str
    revoked_at: int | None
    signature: bytes

    @classmethod
    def of(cls, row: ClientRow | tuple[Any, ...]) -> EditableClient:
        """The client ``row`` as read (a :class:`ClientRow` or its column values)."""
        return cls(*row)

    def values(self) -> dict[str, Any]:
        """Every column by name, for an UPDATE or INSERT."""
        return _values(self)

    def row(self) -> ClientRow:
        """As the immutable row a reader sees."""
        return ClientRow._make(astuple(self))


EDITABLE: dict[str, tuple[type[Any], type[tuple[object, ...]]]] = {
    "vault_header": (EditableHeader, HeaderRow),
    "credentials": (EditableHead, HeadRow),
    "clients": (EditableClient, ClientRow),
}
"""Each editable class and its plain row, by table name."""


def _values(row: Any) -> dict[str, Any]:
    return {f.name: getattr(row, f.name) for f in fields(row)}


__all__ = ["EDITABLE", "EditableClient", "EditableHead", "EditableHeader"]
