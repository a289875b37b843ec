"""Commands that change credentials: ``add``, ``edit`` and ``remove`` (``show`` is in
:mod:`vault.cli.show`, the keyless listings in :mod:`vault.cli.listing`)."""

from __future__ import annotations

from datetime import date
from typing import IO

import click

from vault.errors import AlreadyExists, decode_utf8
from vault.exchanges.fields import validate_field_name
from vault.exchanges.profiles import get_profile
from vault.format.model import LIVE, CredentialMetadata, parse_payload_json, validate_name
from vault.network import is_unrestricted
from vault.owner.admin import UNCHANGED
from vault.owner.credentials import credential_metadata

from . import output, prompts
from .arguments import DAY_AHEAD, DAY_BACK
from .listing import info_dict, utc_today
from .options import (
    endpoint_option,
    from_json_option,
    json_option,
    open_inventory,
    passphrase_file_option,
    vault_option,
    yes_option,
)
from .unlock import OwnerAccess, open_admin


def withdraws_unbound(metadata: CredentialMetadata) -> bool:
    """Whether a key can withdraw from any address (``check``'s withdraw-without-ip)."""
    return "withdraw" in metadata.permissions and is_unrestricted(metadata.ips)


def withdraw_warning(name: str) -> str:
    """The warning for a key that can withdraw from any address, shown as soon as
    such a key is stored, not at the next ``check``."""
    return (
        f'warning: "{name}" can withdraw and has no IP whitelist: check reports it as '
        "critical (withdraw-without-ip), which no reason can accept; bind the key to IPs "
        f"(exvault edit {name} --ip ...) or remove withdraw at the exchange"
    )


def read_json_payload(from_json: IO[bytes] | None) -> dict[str, str] | None:
    """The secret fields of ``--from-json`` (file or stdin), read and parsed before any
    passphrase prompt so that bad JSON never costs a typed passphrase; None without it.

    :raises InvalidInput: for text that is not UTF-8 or not a JSON object of strings.
    """
    if from_json is None:
        return None
    return parse_payload_json(decode_utf8(from_json.read(), "the JSON"))


def read_payload(
    from_json: dict[str, str] | None, exchange: str, ask: tuple[str, ...]
) -> dict[str, str]:
    """Secret fields already read from JSON, else typed at hidden prompts; never argv.

    :raises InvalidInput: for an unknown ``--ask`` field name.
    """
    if from_json is not None:
        return from_json
    profile = get_profile(exchange)
    names = [*profile.required_fields, *(a for a in ask if a not in profile.required_fields)]
    validate_ask(ask)
    return {name: prompts.secret_field(name) for name in names}


def validate_ask(ask: tuple[str, ...]) -> None:
    """Check the ``--ask`` field names (before any prompt).

    :raises InvalidInput: for a name that is no secret field.
    """
    for name in ask:
        validate_field_name(name)


@click.command()
@click.argument("name")
@click.option(
    "--exchange",
    "-e",
    metavar="ID",
    required=True,
    help="Exchange id (see: exvault exchanges), or 'other'.",
)
@click.option(
    "--permissions",
    "-p",
    metavar="PERMS",
    default="",
    help="Comma-separated: read,trade,margin,futures,withdraw,"
    "transfer,subaccount (or the exchange's own names).",
)
@click.option(
    "--ip",
    "ips",
    metavar="IP",
    multiple=True,
    help="Whitelisted IP or CIDR at the exchange (repeatable).",
)
@click.option(
    "--issued",
    type=DAY_BACK,
    help="When the key was created at the exchange: a date, or how long ago (30d) "
    "[default: today].",
)
@click.option(
    "--expires",
    type=DAY_AHEAD,
    help="When the exchange expires the key: a date (2027-03-01), or a duration from "
    "today (90d) [default: never].",
)
@from_json_option(
    'Read the secret fields from a JSON object in FILE ("-" for stdin) instead of prompts.'
)
@click.option(
    "--ask",
    multiple=True,
    metavar="FIELD",
    help="Also ask for this optional field (uid, private_key, ...).",
)
@endpoint_option("Where the exchange is reached [default: live].")
@vault_option
@passphrase_file_option
@json_option
def add(
    name: str,
    exchange: str,
    permissions: str,
    ips: tuple[str, ...],
    issued: date | None,
    expires: date | None,
    from_json: IO[bytes] | None,
    ask: tuple[str, ...],
    endpoint: str | None,
    vault_location: str | None,
    passphrase_file: str | None,
    as_json: bool,
) -> None:
    """Store a new exchange key as NAME.

    The secret fields are asked at hidden prompts (the API passphrase too when the
    exchange needs one) or read with --from-json; they are never accepted as arguments.
    """
    # Everything that can be checked is, before any prompt: a typo never costs a
    # typed passphrase or pasted secret.
    validate_name(name)
    credential_metadata(name, exchange, permissions, ips, issued, expires, endpoint or LIVE)
    validate_ask(ask)
    with open_inventory(vault_location) as inv:
        if name in inv.names():
            raise AlreadyExists(f'a credential named "{name}" exists already')
    from_json_fields = read_json_payload(from_json)
    with open_admin(vault_location, passphrase_file) as admin:
        if name in admin.names():  # the keyless look may predate a concurrent add
            raise AlreadyExists(f'a credential named "{name}" exists already')
        payload = read_payload(from_json_fields, exchange, ask)
        info = admin.add(
            name,
            exchange,
            payload,
            permissions=permissions,
            ips=ips,
            issued_on=issued,
            expires_on=expires,
            endpoint=endpoint or LIVE,
        )
    if as_json:
        output.emit_json(info_dict(info, utc_today()))
    else:
        click.echo(f'Stored "{info.name}" ({info.metadata.exchange}), version {info.version}.')
    if withdraws_unbound(info.metadata):
        click.echo(withdraw_warning(info.name), err=True)


@click.command()
@click.argument("name")
@click.option(
    "--permissions",
    "-p",
    metavar="PERMS",
    default=None,
    help="Replace the permissions (comma-separated).",
)
@click.option(
    "--ip", "ips", metavar="IP", multiple=True, help="Replace the IP whitelist (repeatable)."
)
@click.option("--clear-ips", is_flag=True, help="Remove every whitelisted IP.")
@click.option(
    "--issued", type=DAY_BACK, help="Change the issue date: a date, or how long ago (30d)."
)
@click.option(
    "--expires",
    type=DAY_AHEAD,
    help="Set the exchange expiry: a date (2027-03-01), or a duration from today (90d).",
)
@click.option("--no-expires", is_flag=True, help="Clear the expiry date.")
@click.option(
    "--secrets", "new_secrets", is_flag=True, help="Re-enter the secret fields (hidden prompts)."
)
@from_json_option("Replace the secret fields from JSON.")
@endpoint_option("Change where the exchange is reached (live to go back).")
@vault_option
@passphrase_file_option
@json_option
def edit(
    name: str,
    permissions: str | None,
    ips: tuple[str, ...],
    clear_ips: bool,
    issued: date | None,
    expires: date | None,
    no_expires: bool,
    new_secrets: bool,
    from_json: IO[bytes] | None,
    endpoint: str | None,
    vault_location: str | None,
    passphrase_file: str | None,
    as_json: bool,
) -> None:
    """Change a credential's metadata or secrets; writes a new version."""
    if ips and clear_ips:
        raise click.UsageError("--ip and --clear-ips exclude each other")
    if expires and no_expires:
        raise click.UsageError("--expires and --no-expires exclude each other")
    if not (
        permissions is not None
        or ips
        or clear_ips
        or issued
        or expires
        or no_expires
        or new_secrets
        or from_json is not None
        or endpoint is not None
    ):
        raise click.UsageError("nothing to change: give at least one option")
    with OwnerAccess(vault_location, passphrase_file) as access:
        with access.keyless() as inv:
            current = inv.describe(name).metadata
        exchange = current.exchange
        # The metadata as it will be, checked before any prompt.
        credential_metadata(
            name,
            exchange,
            current.permissions if permissions is None else permissions,
            () if clear_ips else (ips or current.ips),
            issued or current.issued_on,
            None if no_expires else (expires or current.expires_on),
            current.endpoint if endpoint is None else endpoint,
        )
        from_json_fields = read_json_payload(from_json)
        with access.unlock() as admin:
            payload = (
                read_payload(from_json_fields, exchange, ())
                if (new_secrets or from_json is not None)
                else None
            )
            info = admin.edit(
                name,
                permissions=permissions,
                ips=() if clear_ips else (ips or None),
                issued_on=issued,
                expires_on=None if no_expires else (expires or UNCHANGED),
                payload=payload,
                endpoint=endpoint,
            )
    if as_json:
        output.emit_json({**info_dict(info, utc_today()), "wrapped_for": list(info.wrapped_for)})
    elif info.wrapped_for:
        click.echo(
            f'Updated "{name}": now version {info.version}; '
            f"wrapped for clients: {', '.join(info.wrapped_for)}."
        )
    else:
        click.echo(f'Updated "{name}": now version {info.version}.')
    if withdraws_unbound(info.metadata):
        click.echo(withdraw_warning(name), err=True)


@click.command()
@click.argument("name")
@vault_option
@passphrase_file_option
@yes_option
def remove(name: str, vault_location: str | None, passphrase_file: str | None, yes: bool) -> None:
    """Delete a credential and every version of it (asks first)."""
    with open_inventory(vault_location) as inv:
        inv.describe(name)  # "no such credential" before any question
    if not yes:
        click.confirm(
            f'Delete "{name}" and all its versions? This cannot be undone', abort=True, err=True
        )
    with open_admin(vault_location, passphrase_file) as admin:
        admin.remove(name)
    click.echo(f'Removed "{name}". Delete the key at the exchange too, if it is still active.')
