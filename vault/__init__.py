"""exvault: an encrypted vault for crypto-exchange API credentials.

The small public API::

    import vault
    admin, recovery_key = vault.create(path, passphrase)   # a new vault
    admin = vault.unlock(path, passphrase)                 # the owner's handle
    admin.add("binance-main", "binance", {"api_key": ..., "secret": ...})
    cred = admin.get("binance-main")                       # a Credential
    cred.api_key.reveal(); cred.ccxt()

Secrets come back as :class:`Secret` (masked ``repr``, not picklable, ``reveal()``).
Every error is a :class:`VaultError`.

Heavy modules (SQLAlchemy, cryptography, the exchange profiles) load on first use,
so that ``import vault`` and ``exvault --help`` stay fast.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from vault.errors import (
    AccessDenied,
    AlreadyExists,
    Conflict,
    InsecureFile,
    IntegrityError,
    InvalidInput,
    InvalidToken,
    NotFound,
    TokenExpired,
    UnsupportedFormat,
    VaultError,
    VaultUnavailable,
)
from vault.secret import Secret
from vault.version import __version__

if TYPE_CHECKING:
    from vault.db.inventory import Inventory
    from vault.owner.admin import AdminVault
    from vault.runtime.client import ClientVault
    from vault.runtime.credential import Credential
    from vault.runtime.token import ClientToken


_LAZY = {
    "Credential": ("vault.runtime.credential", "Credential"),
    "AdminVault": ("vault.owner.admin", "AdminVault"),
    "ClientVault": ("vault.runtime.client", "ClientVault"),
    "Inventory": ("vault.db.inventory", "Inventory"),
}


def create(where: Any, passphrase: str, **options: Any) -> tuple[AdminVault, str]:
    """Create a vault; returns the unlocked vault and its recovery key (show it once).

    See :meth:`vault.owner.admin.AdminVault.create` for ``options``.
    """
    from vault.owner.admin import AdminVault

    return AdminVault.create(where, passphrase, **options)


def unlock(where: Any, passphrase: str) -> AdminVault:
    """Open a vault with its passphrase.

    :raises IntegrityError: wrong passphrase or damaged vault.
    """
    from vault.owner.admin import AdminVault

    return AdminVault.unlock(where, passphrase)


def open(where: Any = None, *, token: str | ClientToken | None = None) -> ClientVault:
    """Open the vault as a client (a bot): ``with vault.open(token=tok) as v: v.get(name)``.

    Without ``token``: ``$EXVAULT_TOKEN``, the 0600 file in ``$EXVAULT_TOKEN_FILE``, or
    ``$CREDENTIALS_DIRECTORY/exvault-token``. ``where``: path or URL (default:
    ``$EXVAULT_URL``, ``$EXVAULT_PATH``, the data directory).
    """
    from vault.runtime.client import ClientVault

    return ClientVault.open(where, token=token)


def load(
    name: str, *, stage: str = "current", where: Any = None, token: str | ClientToken | None = None
) -> Credential:
    """Read one credential as a client: ``cred = vault.load("binance-main")``.

    :raises AccessDenied: not granted, revoked (``TokenExpired``: expired).
    """
    from vault.runtime.client import load as load_credential

    return load_credential(name, stage=stage, where=where, token=token)


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        module, attr = _LAZY[name]
        return getattr(importlib.import_module(module), attr)
    raise AttributeError(f"module 'vault' has no attribute {name!r}")


__all__ = [
    "AccessDenied",
    "AdminVault",
    "AlreadyExists",
    "ClientVault",
    "Conflict",
    "Credential",
    "InsecureFile",
    "IntegrityError",
    "InvalidInput",
    "InvalidToken",
    "Inventory",
    "NotFound",
    "Secret",
    "TokenExpired",
    "UnsupportedFormat",
    "VaultError",
    "VaultUnavailable",
    "__version__",
    "create",
    "load",
    "open",
    "unlock",
]
