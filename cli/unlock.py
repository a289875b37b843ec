"""Unlocking the vault a command names, once it is known to exist: through the unlock
agent when it holds the vault, else with the passphrase; and reading credentials as a
client token's holder or as the owner (``run``, ``render``)."""

from __future__ import annotations

from collections.abc import Sequence

import click

from vault.db.inventory import Inventory
from vault.errors import IntegrityError, InvalidToken
from vault.owner.admin import AdminVault
from vault.owner.agent_unlock import open_through_agent
from vault.runtime.client import ClientVault
from vault.runtime.credential import Credential
from vault.runtime.token import find_token

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


def read_credentials(
    vault_location: str | None,
    passphrase_file: str | None,
    names: Sequence[str],
    stage: str = "current",
) -> list[Credential]:
    """The credentials ``names`` at ``stage``: read as the client whose token the
    environment holds (EXVAULT_TOKEN_FILE, EXVAULT_TOKEN, systemd's credentials
    directory), else, or when a passphrase file is named, as the owner. Each read is
    audited.

    :raises InvalidToken: for a token that is there but malformed.
    :raises NotFound, AccessDenied, IntegrityError: as the reads raise them.
    """
    try:
        token = find_token() if passphrase_file is None else None
    except InvalidToken as exc:
        if "no client token" not in str(exc):
            raise
        token = None
    if token is not None:
        with ClientVault.open(vault_location, token=token) as handle:
            return [handle.get(name, stage) for name in names]
    with open_admin(vault_location, passphrase_file) as admin:
        return [admin.get(name, stage) for name in names]
