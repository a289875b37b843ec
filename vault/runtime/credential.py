"""The decrypted credential handed to a bot: :class:`Credential`."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from typing import TYPE_CHECKING

from vault.errors import NotFound, quoted
from vault.secret import Secret

if TYPE_CHECKING:
    from vault.format.model import CredentialMetadata


@dataclass(frozen=True)
class Credential:
    """One readable version of a credential: metadata in clear, fields as :class:`Secret`.

    ``repr`` shows the metadata and the field names, never a value.
    """

    name: str
    exchange: str
    permissions: tuple[str, ...]
    ips: tuple[str, ...]
    version: int
    stage: str
    issued_on: date
    expires_on: date | None
    fields: Mapping[str, Secret]

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
