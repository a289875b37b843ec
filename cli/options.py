"""Options shared by many commands, and opening the vault they name."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

import click

from vault.errors import InvalidInput, check_utf8, quoted

from . import prompts

if TYPE_CHECKING:
    from vault.db.inventory import Inventory
    from vault.owner.admin import AdminVault

F = TypeVar("F", bound=Callable[..., Any])


def vault_option(f: F) -> F:
    """``--vault PATH|URL``; default $EXVAULT_URL, $EXVAULT_PATH or the data dir."""
    return click.option(
        "--vault",
        "vault_location",
        metavar="PATH|URL",
        default=None,
        help="Vault file or database URL [default: $EXVAULT_URL, $EXVAULT_PATH, "
        "or ~/.local/share/exvault/vault.db].",
    )(f)


def passphrase_file_option(f: F) -> F:
    """``--passphrase-file FILE``: read the passphrase from a 0600 file."""
    return click.option(
        "--passphrase-file",
        type=click.Path(dir_okay=False),
        default=None,
        help="Read the vault passphrase from FILE (must be mode 0600) instead of a prompt. "
        "Default: $EXVAULT_PASSPHRASE_FILE.",
    )(f)


def from_json_option(help_text: str) -> Callable[[F], F]:
    """``--from-json FILE``: secret fields from a JSON object in FILE, ``-`` for stdin.

    Opened in binary, to be decoded strictly as UTF-8 with a clear error: a text-mode
    file would fail with a bare UnicodeDecodeError on bytes that are not UTF-8.
    """
    return click.option("--from-json", type=click.File("rb"), default=None, help=help_text)


Callback = Callable[[click.Context, click.Parameter, Any], Any]


def refuse_undecodable_arguments(command: click.Command) -> None:
    """Make every argument and option of ``command`` and its subcommands refuse text
    that is not UTF-8, as a usage error (exit 2).

    Python hands argv bytes that are not UTF-8 (``exvault show $'\\x80'``) over as
    lone surrogates, which would fail deep in a query or when printed back. One check
    on every parameter, chained before its own callback, means no new option can
    forget it. ``run``'s program and arguments (``UNPROCESSED``) are left alone: they
    are passed on to the program as they came.
    """
    for param in command.params:
        if not isinstance(param.type, click.types.UnprocessedParamType):
            param.callback = _utf8_checked(param.callback)
    if isinstance(command, click.Group):
        for subcommand in command.commands.values():
            refuse_undecodable_arguments(subcommand)


def _utf8_checked(callback: Callback | None) -> Callback:
    def check(ctx: click.Context, param: click.Parameter, value: Any) -> Any:
        for item in value if isinstance(value, tuple) else (value,):
            text = os.fspath(item) if isinstance(item, os.PathLike) else item
            if isinstance(text, str):
                try:
                    check_utf8(text, quoted(text))
                except InvalidInput as exc:
                    raise click.BadParameter(str(exc), ctx, param) from None
        return value if callback is None else callback(ctx, param, value)

    return check


def json_option(f: F) -> F:
    """``--json``: machine-readable output."""
    return click.option("--json", "as_json", is_flag=True, help="Print JSON.")(f)


def yes_option(f: F) -> F:
    """``--yes``: skip the confirmation question."""
    return click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")(f)


def open_admin(vault_location: str | None, passphrase_file: str | None) -> AdminVault:
    """Unlock the vault, asking for the passphrase (after checking the vault exists)."""
    from vault.db.inventory import Inventory
    from vault.owner.admin import AdminVault

    # Open keyless first: "no vault here" is reported before anyone types a passphrase.
    Inventory.open(vault_location).close()
    return AdminVault.unlock(vault_location, prompts.passphrase(passphrase_file))


def open_inventory(vault_location: str | None) -> Inventory:
    """Open the vault without a key (metadata only)."""
    from vault.db.inventory import Inventory

    return Inventory.open(vault_location)
