"""Options shared by many commands, and opening the vault they name."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from typing import Any, TypeVar

import click

from vault.db.inventory import Inventory
from vault.durations import parse_date

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


NO_AGENT = "exvault.no_agent"
"""The key of ``--no-agent`` in the click context's ``meta`` (read by ``open_admin``)."""


def passphrase_file_option(f: F) -> F:
    """``--passphrase-file FILE`` and ``--no-agent``: how an owner command unlocks."""
    return click.option(
        "--no-agent",
        is_flag=True,
        expose_value=False,
        callback=_remember_no_agent,
        help="Ask for the passphrase even when the unlock agent holds this vault.",
    )(bare_passphrase_file_option(f))


def _remember_no_agent(ctx: click.Context, param: click.Parameter, value: bool) -> bool:
    ctx.meta[NO_AGENT] = value
    return value


def bare_passphrase_file_option(f: F) -> F:
    """``--passphrase-file FILE``: read the passphrase from a 0600 file."""
    return click.option(
        "--passphrase-file",
        type=click.Path(dir_okay=False),
        default=None,
        help="Read the vault passphrase from FILE (must be mode 0600) instead of a prompt. "
        "Default: $EXVAULT_PASSPHRASE_FILE.",
    )(f)


def allow_weak_passphrase_option(f: F) -> F:
    """``--allow-weak-passphrase``: skip the strength estimate of a new passphrase."""
    return click.option(
        "--allow-weak-passphrase",
        "allow_weak",
        is_flag=True,
        help="Accept a new passphrase that zxcvbn scores below 3 of 4 (weak).",
    )(f)


def from_json_option(help_text: str) -> Callable[[F], F]:
    """``--from-json FILE``: secret fields from a JSON object in FILE, ``-`` for stdin.

    Opened in binary, to be decoded strictly as UTF-8 with a clear error: a text-mode
    file would fail with a bare UnicodeDecodeError on bytes that are not UTF-8.
    """
    return click.option("--from-json", type=click.File("rb"), default=None, help=help_text)


def endpoint_option(help_text: str) -> Callable[[F], F]:
    """``--endpoint live|testnet|URL``: where the credential's exchange is reached
    (checked with the rest of the metadata, before any prompt)."""
    return click.option("--endpoint", metavar="live|testnet|URL", default=None, help=help_text)


def json_option(f: F) -> F:
    """``--json``: machine-readable output."""
    return click.option("--json", "as_json", is_flag=True, help="Print JSON.")(f)


def yes_option(f: F) -> F:
    """``--yes``: skip the confirmation question."""
    return click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")(f)


def open_inventory(vault_location: str | None) -> Inventory:
    """Open the vault without a key (metadata only)."""
    return Inventory.open(vault_location)


def parse_date_option(
    _ctx: click.Context, _param: click.Parameter, value: str | None
) -> date | None:
    """The date of a ``YYYY-MM-DD`` option (a click callback); None when not given."""
    if value is None:
        return None
    return parse_date(value)
