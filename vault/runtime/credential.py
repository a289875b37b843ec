"""The decrypted credential handed to a bot: :class:`Credential`."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from typing import TYPE_CHECKING, NoReturn

from vault.errors import NotFound, quoted
from vault.secret import Secret

if TYPE_CHECKING:
    from vault.format.model import CredentialMetadata


_FIELDS = (
    "name",
    "exchange",
    "permissions",
    "ips",
    "version",
    "stage",
    "issued_on",
    "expires_on",
    "fields",
    "endpoint",
)
"""A :class:`Credential`'s attributes, in the order of its constructor's arguments."""


class Credential:
    """One readable version of a credential: metadata in clear, fields as :class:`Secret`.

    ``repr`` shows the metadata and the field names, never a value. Immutable, equal to
    a credential with the same values, unhashable (its fields are a mapping).
    """

    # A plain class, not a frozen dataclass: a bot's process builds one per read, and
    # importing dataclasses would cost its cold start more than the read itself
    # (docs/benchmarks.md, figure 2).
    __slots__ = _FIELDS

    name: str
    exchange: str
    permissions: tuple[str, ...]
    ips: tuple[str, ...]
    version: int
    stage: str
    issued_on: date
    expires_on: date | None
    fields: Mapping[str, Secret]
    endpoint: str
    """Where the exchange is reached: ``live``, ``testnet`` or a base URL (signed with
    the metadata; see :mod:`vault.exchanges.endpoints`)."""

    def __init__(
        self,
        name: str,
        exchange: str,
        permissions: tuple[str, ...],
        ips: tuple[str, ...],
        version: int,
        stage: str,
        issued_on: date,
        expires_on: date | None,
        fields: Mapping[str, Secret],
        endpoint: str = "live",
    ) -> None:
        values = (
            name,
            exchange,
            permissions,
            ips,
            version,
            stage,
            issued_on,
            expires_on,
            fields,
            endpoint,
        )
        for slot, value in zip(_FIELDS, values, strict=True):
            object.__setattr__(self, slot, value)

    def __setattr__(self, name: str, value: object) -> NoReturn:
        raise AttributeError(f"cannot assign to field {name!r}: a Credential is immutable")

    def __delattr__(self, name: str) -> NoReturn:
        raise AttributeError(f"cannot delete field {name!r}: a Credential is immutable")

    def _values(self) -> tuple[object, ...]:
        return tuple(getattr(self, slot) for slot in _FIELDS)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Credential) or other.__class__ is not self.__class__:
            return NotImplemented
        return self._values() == other._values()

    __hash__ = None  # type: ignore[assignment]  # its fields are a mapping

    def __copy__(self) -> Credential:
        return self  # immutable: copy's default would assign its slots one by one

    def __deepcopy__(self, memo: object) -> Credential:
        return self

    @classmethod
    def from_plaintext(
        cls, metadata: CredentialMetadata, version: int, stage: str, fields: Mapping[str, str]
    ) -> Credential:
        """A credential from a decrypted version: its metadata and its field values."""
        return cls(
            name=metadata.name,
            exchange=metadata.exchange,
            permissions=metadata.permissions,
            ips=metadata.ips,
            version=version,
            stage=stage,
            issued_on=metadata.issued_on,
            expires_on=metadata.expires_on,
            fields={k: Secret(v) for k, v in fields.items()},
            endpoint=metadata.endpoint,
        )

    def field(self, name: str) -> Secret:
        """One secret field by name (``api_key``, ``secret``, ``passphrase``, ...).

        :raises NotFound: when the credential has no such field.
        """
        try:
            return self.fields[name]
        except KeyError:
            raise NotFound(f'credential "{self.name}" has no field {quoted(name)}') from None

    def _optional(self, name: str) -> Secret | None:
        return self.fields.get(name)

    @property
    def api_key(self) -> Secret:
        """The API key."""
        return self.field("api_key")

    @property
    def secret(self) -> Secret:
        """The API secret (an HMAC key or a PEM private key)."""
        return self.field("secret")

    @property
    def passphrase(self) -> Secret | None:
        """The API passphrase (kucoin, okx, bitget), if any."""
        return self._optional("passphrase")

    @property
    def uid(self) -> Secret | None:
        """The account uid, if any."""
        return self._optional("uid")

    @property
    def private_key(self) -> Secret | None:
        """A private key field, if any."""
        return self._optional("private_key")

    def ccxt(self) -> dict[str, str]:
        """The keyword dict ccxt's exchange constructors take: ``ccxt.kucoin(cred.ccxt())``.

        Contains revealed secrets: hand it to ccxt and do not log it.
        """
        from vault.exchanges.fields import CCXT_CREDENTIAL_NAMES

        out: dict[str, str] = {}
        for ours, theirs in CCXT_CREDENTIAL_NAMES.items():
            value = self.fields.get(ours)
            if value is not None:
                out[theirs] = value.reveal()
        return out

    def __repr__(self) -> str:
        return (
            f"Credential(name={self.name!r}, exchange={self.exchange!r}, "
            f"permissions={self.permissions!r}, version={self.version}, stage={self.stage!r}, "
            f"fields={sorted(self.fields)!r})"
        )
