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
from typing import Any, ClassVar, Generic, TypeVar

from vault.format.schema import ClientRow, HeaderRow, HeadRow

_R = TypeVar("_R", HeaderRow, HeadRow, ClientRow)
_E = TypeVar("_E", bound="_Editable[Any]")


class _Editable(Generic[_R]):
    """What the three editable rows share: made from their plain row, back to it, and
    their columns by name."""

    __slots__ = ()
    _plain: ClassVar[type[Any]]

    @classmethod
    def of(cls: type[_E], row: tuple[Any, ...]) -> _E:
        """The row as read (its plain row, or its column values in order)."""
        return cls(*row)

    def values(self) -> dict[str, Any]:
        """Every column by name, for an UPDATE or INSERT."""
        return {f.name: getattr(self, f.name) for f in fields(self)}  # type: ignore[arg-type]

    def row(self) -> _R:
        """As the immutable row a reader sees."""
        made: _R = self._plain._make(astuple(self))  # type: ignore[call-overload]
        return made


@dataclass(slots=True)
class EditableHeader(_Editable[HeaderRow]):
    """The ``vault_header`` row (one per vault), to be re-keyed and signed again."""

    _plain = HeaderRow

    id: int
    format_version: int
    vault_id: bytes
    created_at: int
    encryption_public: bytes
    verify_public: bytes
    signature: bytes


@dataclass(slots=True)
class EditableHead(_Editable[HeadRow]):
    """A ``credentials`` row: a credential's head, to be changed and signed again."""

    _plain = HeadRow

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


@dataclass(slots=True)
class EditableClient(_Editable[ClientRow]):
    """A ``clients`` row, to be revoked or re-keyed and signed again."""

    _plain = ClientRow

    id: str
    name: str
    encryption_public: bytes
    verify_public: bytes
    created_at: int
    expires_at: int | None
    max_scope: str
    revoked_at: int | None
    signature: bytes


EDITABLE: dict[str, tuple[type[Any], type[tuple[object, ...]]]] = {
    "vault_header": (EditableHeader, HeaderRow),
    "credentials": (EditableHead, HeadRow),
    "clients": (EditableClient, ClientRow),
}
"""Each editable class and its plain row, by table name."""


__all__ = ["EDITABLE", "EditableClient", "EditableHead", "EditableHeader"]
