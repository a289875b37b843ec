"""Unlocking the vault a command names, once it is known to exist."""

from __future__ import annotations

from vault.db.inventory import Inventory
from vault.owner.admin import AdminVault

from . import prompts


def open_admin(vault_location: str | None, passphrase_file: str | None) -> AdminVault:
    """Unlock the vault, asking for the passphrase (after checking the vault exists)."""
    # Open keyless first: "no vault here" is reported before anyone types a passphrase.
    Inventory.open(vault_location).close()
    return AdminVault.unlock(vault_location, prompts.passphrase(passphrase_file))
