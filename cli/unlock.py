"""Unlocking the vault a command names, once it is known to exist: through the unlock
agent when it holds the vault, else with the passphrase."""

from __future__ import annotations

import click

from vault.db.inventory import Inventory
from vault.errors import IntegrityError
from vault.owner.admin import AdminVault
from vault.owner.agent_unlock import open_through_agent

from . import prompts
from .options import NO_AGENT

PASSPHRASE_ATTEMPTS = 3
"""How many times a passphrase typed at the terminal may be wrong before the command
fails (as sudo allows); a passphrase file is read once."""


def open_admin(
    vault_location: str | None, passphrase_file: str | None, *, use_agent: bool = True
) -> AdminVault:
    """Unlock the vault: through the unlock agent when it holds the vault (unless
    ``use_agent`` is False or the command was given ``--no-agent``), else asking for
    the passphrase (after checking the vault exists), up to :data:`PASSPHRASE_ATTEMPTS`
    times at a terminal prompt.

    :raises VaultUnavailable: when there is no vault there.
    :raises IntegrityError: wrong passphrase (the last attempt's), damaged vault, or an
        agent holding other keys for this vault.
    """
    ctx = click.get_current_context(silent=True)
    if use_agent and not (ctx is not None and ctx.meta.get(NO_AGENT)):
        through_agent = open_through_agent(vault_location)
        if through_agent is not None:
            return through_agent
    # Open keyless first: "no vault here" is reported before anyone types a passphrase.
    Inventory.open(vault_location).close()
    if prompts.passphrase_file_path(passphrase_file) is not None:
        return AdminVault.unlock(vault_location, prompts.passphrase(passphrase_file))
    for attempt in range(1, PASSPHRASE_ATTEMPTS + 1):
        # Each failed unlock is audited by AdminVault.unlock, as a single one is.
        try:
            return AdminVault.unlock(vault_location, prompts.passphrase(passphrase_file))
        except IntegrityError:
            if attempt == PASSPHRASE_ATTEMPTS:
                raise
            click.echo("Wrong passphrase (or damaged vault); try again.", err=True)
    raise AssertionError("unreachable: the last attempt returns or raises")
