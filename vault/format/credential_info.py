"""What ``list``, ``show`` and ``history`` tell about a credential: metadata, never a
secret. The owner's and the listing's views; a bot's read never builds them, so they
live apart from :mod:`vault.format.model`, which a bot's process imports."""

# Annotations are not postponed here (no `from __future__ import annotations`):
# typing.NamedTuple compiles each postponed (string) field annotation when its class
# is built, about 10 µs each, and every command and bot builds these at start.
from collections.abc import Mapping
from datetime import date, datetime
from types import MappingProxyType
from typing import NamedTuple

from vault.format.model import CredentialMetadata


# A named tuple, not a dataclass: building a dataclass at import slows every command's start.
class VersionInfo(NamedTuple):
    """One entry of a credential's history (no secret)."""

    version: int
    created_at: datetime
    stages: tuple[str, ...]
    metadata: CredentialMetadata
    readable: bool


# A named tuple, not a dataclass: building a dataclass at import slows every command's start.
class CredentialInfo(NamedTuple):
    """What ``list`` and ``show`` print about a credential: metadata only, never a secret."""

    id: str
    metadata: CredentialMetadata
    version: int
    created_at: datetime
    updated_at: datetime
    pending_version: int | None = None
    pending_since: datetime | None = None
    previous_version: int | None = None
    previous_until: datetime | None = None
    # One read-only empty mapping shared by every default: no caller changes a policy here.
    policy: Mapping[str, object] = MappingProxyType({})
    exposed_at: datetime | None = None
    exposed_reason: str | None = None
    api_key_fingerprint: bytes = b""
    fields: tuple[str, ...] = ()
    wrapped_for: tuple[str, ...] = ()
    """Names of the clients the version just written was wrapped for (``edit``'s
    result); empty elsewhere."""

    @property
    def name(self) -> str:
        """The credential's name."""
        return self.metadata.name

    def age_days(self, today: date) -> int:
        """Days since the key was issued at the exchange."""
        return (today - self.metadata.issued_on).days
