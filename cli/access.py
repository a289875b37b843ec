"""Commands about authorized callers: ``client add|list|revoke``, ``grant``, ``ungrant``."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import click

from vault.errors import AlreadyExists
from vault.format import model
from vault.format.access import DEFAULT_SCOPE, check_client_expiry, parse_scope
from vault.format.model import validate_name

from . import output
from .arguments import MOMENT_AHEAD
from .groups import CommandGroup
from .options import json_option, open_inventory, passphrase_file_option, vault_option
from .unlock import OwnerAccess, open_admin


def _client_dict(info: Any, now: Any) -> dict[str, Any]:
    return {
        "name": info.name,
        "status": info.status(now),
        "created_at": info.created_at,
        "expires_at": info.expires_at,
        "max_scope": list(info.max_scope),
        "revoked_at": info.revoked_at,
        "grants": list(info.grants),
    }


@click.group(cls=CommandGroup)
def client() -> None:
    """Manage client identities (one per bot or job) and their tokens."""


@client.command(name="add")
@click.argument("name")
@click.option(
    "--expires",
    type=MOMENT_AHEAD,
    help="When the token stops working: a date (2027-03-01, 00:00 UTC), or a duration "
    "from now (90d, 12h) [default: never].",
)
@click.option(
    "--max-scope",
    default=None,
    metavar="PERMS",
    help="Permissions this client may ever be granted, e.g. trade or read,trade,futures "
    "(read is implied; 'all' includes withdraw) [default: all but withdraw].",
)
@vault_option
@passphrase_file_option
@json_option
def client_add(
    name: str,
    expires: datetime | None,
    max_scope: str | None,
    vault_location: str | None,
    passphrase_file: str | None,
    as_json: bool,
) -> None:
    """Create a client and print its token once (exv1-...).

    Give the token to the bot through a 0600 file (EXVAULT_TOKEN_FILE) or systemd's
    LoadCredential=; the vault keeps only the client's public key.
    """
    validate_name(name, "client")
    parse_scope(max_scope or DEFAULT_SCOPE)  # a bad permission before the prompt
    check_client_expiry(expires, model.utc_now())  # and a past expiry
    with open_inventory(vault_location) as inv:
        if name in {c.name for c in inv.clients()}:  # revoked clients keep their names
            raise AlreadyExists(f'a client named "{name}" exists already')
    with open_admin(vault_location, passphrase_file) as admin:
        info, token = admin.add_client(
            name, expires_at=expires, max_scope=max_scope or DEFAULT_SCOPE
        )
    if as_json:
        output.emit_json({**_client_dict(info, model.utc_now()), "token": token})
        return
    click.echo(
        f'Client "{info.name}" created (max scope: {",".join(info.max_scope)}; '
        f"expires: {info.expires_at.isoformat() if info.expires_at else 'never'})."
    )
    click.echo("Its token, shown only now (store it in a 0600 file for the bot):")
    click.echo("")
    click.echo(f"    {token}")
    click.echo("")
    click.echo(f"Then: exvault grant {info.name} CREDENTIAL...")


@client.command(name="list")
@vault_option
@json_option
def client_list(vault_location: str | None, as_json: bool) -> None:
    """List clients: status, expiry, scope and grants (no token)."""
    now = model.utc_now()
    with open_inventory(vault_location) as inv:
        infos = inv.clients()
    if as_json:
        output.emit_json([_client_dict(i, now) for i in infos])
        return
    if not infos:
        click.echo("No clients yet. Add one with: exvault client add NAME", err=True)
        return
    output.table(
        ("NAME", "STATUS", "EXPIRES", "MAX SCOPE", "GRANTS"),
        [
            (
                i.name,
                i.status(now),
                i.expires_at.strftime("%Y-%m-%d") if i.expires_at else "never",
                ",".join(i.max_scope),
                ",".join(i.grants) or "-",
            )
            for i in infos
        ],
    )


@client.command(name="revoke")
@click.argument("name")
@vault_option
@passphrase_file_option
def client_revoke(name: str, vault_location: str | None, passphrase_file: str | None) -> None:
    """Revoke a client: it can read nothing more.

    What it could read is marked exposed.
    """
    with open_inventory(vault_location) as inv:
        inv.client(name)  # "no such client" before the passphrase prompt
    with open_admin(vault_location, passphrase_file) as admin:
        exposed = admin.revoke_client(name)
    click.echo(f'Client "{name}" revoked.')
    if exposed:
        click.echo(f"Marked exposed (rotate them; exvault check lists them): {', '.join(exposed)}")


def _check_exist(access: OwnerAccess, client_name: str, credentials: tuple[str, ...]) -> None:
    """Check, keylessly and before the passphrase prompt, that the client and every
    credential exist (a grant beyond the client's scope is refused, and audited, once
    unlocked).

    :raises NotFound: for a client or credential that does not exist.
    """
    with access.keyless() as inv:
        inv.client(client_name)
        for name in credentials:
            inv.describe(name)


@click.command()
@click.argument("client_name", metavar="CLIENT")
@click.argument("credentials", nargs=-1, required=True)
@vault_option
@passphrase_file_option
def grant(
    client_name: str,
    credentials: tuple[str, ...],
    vault_location: str | None,
    passphrase_file: str | None,
) -> None:
    """Let CLIENT read CREDENTIALS (refused beyond its maximum scope)."""
    with OwnerAccess(vault_location, passphrase_file) as access:
        _check_exist(access, client_name, credentials)
        with access.unlock() as admin:
            admin.grant(client_name, credentials)
    click.echo(f'Granted to "{client_name}": {", ".join(credentials)}.')


@click.command()
@click.argument("client_name", metavar="CLIENT")
@click.argument("credentials", nargs=-1, required=True)
@vault_option
@passphrase_file_option
def ungrant(
    client_name: str,
    credentials: tuple[str, ...],
    vault_location: str | None,
    passphrase_file: str | None,
) -> None:
    """Stop CLIENT from reading CREDENTIALS.

    Their keys wrapped for CLIENT are deleted.
    """
    with OwnerAccess(vault_location, passphrase_file) as access:
        _check_exist(access, client_name, credentials)
        with access.unlock() as admin:
            admin.ungrant(client_name, credentials)
    click.echo(f'Ungranted from "{client_name}": {", ".join(credentials)}.')
