"""Unlocking the vault a command names, once it is known to exist: through the unlock
agent when it holds the vault, else with the passphrase (reading credentials as a
client token's holder is in :mod:`vault.cli.reading`)."""

from __future__ import annotations

from contextlib import AbstractContextManager, nullcontext

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
    if use_agent:
        through_agent = _through_agent(vault_location)
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


def _through_agent(vault_location: str | None) -> AdminVault | None:
    """The vault opened through the unlock agent, or None when the command was given
    ``--no-agent`` or the agent does not hold the vault."""
    ctx = click.get_current_context(silent=True)
    if ctx is not None and ctx.meta.get(NO_AGENT):
        return None
    return open_through_agent(vault_location)


class OwnerAccess:
    """How an owner command reaches its vault: keyless checks before any prompt
    (:meth:`keyless`: "no such credential" is said before the passphrase is asked for),
    then the unlocked handle (:meth:`unlock`).

    When the unlock agent holds the vault, the two are one opening of it: the handle
    is opened through the agent at once and the checks read through it (an
    :class:`AdminVault` is an :class:`Inventory`, and there is no passphrase to ask
    for), which spares each such command a second opening of the store and a second
    verification of the header. Otherwise the checks open the vault keylessly and
    :meth:`unlock` asks for the passphrase, as :func:`open_admin` does.

    Use it as a context manager: a handle opened and never handed out (a check
    failed) is closed on exit.

    :raises VaultUnavailable: when there is no vault there (from the constructor, when
        an agent runs, else from :meth:`keyless`).
    :raises IntegrityError: as :func:`open_admin`.
    """

    def __init__(self, vault_location: str | None, passphrase_file: str | None) -> None:
        self._location = vault_location
        self._passphrase_file = passphrase_file
        self._admin = _through_agent(vault_location)

    def keyless(self) -> AbstractContextManager[Inventory]:
        """The vault for the checks made before any prompt: the agent's handle itself
        (left open for :meth:`unlock`), or a keyless opening closed after the block.

        :raises VaultUnavailable: when there is no vault there.
        """
        if self._admin is not None:
            return nullcontext(self._admin)
        return Inventory.open(self._location)

    def unlock(self) -> AdminVault:
        """The unlocked vault: the agent's handle, or unlocked with the passphrase (the
        agent was asked already); the caller closes it.

        :raises IntegrityError: as :func:`open_admin`.
        """
        admin, self._admin = self._admin, None
        if admin is not None:
            return admin
        return open_admin(self._location, self._passphrase_file, use_agent=False)

    def __enter__(self) -> OwnerAccess:
        return self

    def __exit__(self, *exc: object) -> None:
        if self._admin is not None:
            self._admin.close()
            self._admin = None
