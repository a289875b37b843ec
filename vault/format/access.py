"""Authorized callers: client scopes and what is known of a client.

A client is one program (a bot, a cron job) with its own key pair. The owner grants
it credentials; the vault then wraps those credentials' data keys for the client's
public key, so the client can decrypt exactly what it was granted and nothing else,
whatever it can read in the database.
"""

# Annotations are not postponed here (no `from __future__ import annotations`):
# typing.NamedTuple compiles each postponed (string) field annotation when its class
# is built, about 10 µs each, and every command and bot builds these at start.
from collections.abc import Iterable
from datetime import datetime
from typing import NamedTuple

from vault.errors import InvalidInput, quoted
from vault.exchanges.fields import PERMISSIONS

DEFAULT_SCOPE: tuple[str, ...] = tuple(p for p in PERMISSIONS if p != "withdraw")
"""A client's maximum scope when none is given: everything but ``withdraw``."""


def parse_scope(items: str | Iterable[str]) -> tuple[str, ...]:
    """A maximum scope from ``"trade,futures"`` or a list; ``read`` is always included.

    ``all`` stands for every permission, withdraw included.

    :raises InvalidInput: for an unknown permission name.
    """
    words = [items] if isinstance(items, str) else list(items)
    names = {w.strip().lower() for text in words for w in text.split(",") if w.strip()}
    if "all" in names:
        return PERMISSIONS
    unknown = sorted(names - set(PERMISSIONS))
    if unknown:
        raise InvalidInput(
            f"unknown permission {', '.join(quoted(u) for u in unknown)} in the scope "
            f"(use {', '.join(PERMISSIONS)} or all)"
        )
    names.add("read")
    return tuple(p for p in PERMISSIONS if p in names)


def check_client_expiry(expires_at: datetime | None, now: datetime) -> None:
    """Check a new client's expiry as of ``now`` (None: it never expires).

    :raises InvalidInput: when it is not after ``now``.
    """
    if expires_at is not None and expires_at <= now:
        raise InvalidInput("the client's expiry is in the past")


def beyond_scope(permissions: Iterable[str], scope: Iterable[str]) -> tuple[str, ...]:
    """The permissions not allowed by ``scope`` (empty when all are)."""
    allowed = set(scope)
    return tuple(p for p in permissions if p not in allowed)


# A named tuple, not a dataclass: building a dataclass at import slows every command's start.
class ClientInfo(NamedTuple):
    """What ``client list`` prints about a client: never its token."""

    id: str
    name: str
    created_at: datetime
    expires_at: datetime | None
    max_scope: tuple[str, ...]
    revoked_at: datetime | None
    grants: tuple[str, ...]

    def status(self, now: datetime) -> str:
        """``active``, ``expired`` or ``revoked``."""
        if self.revoked_at is not None:
            return "revoked"
        if self.expires_at is not None and self.expires_at <= now:
            return "expired"
        return "active"
