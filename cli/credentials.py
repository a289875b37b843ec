"""Commands about credentials: ``add``, ``list``, ``show``, ``edit``, ``history``,
``remove`` and ``exchanges``."""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import date
from json.encoder import encode_basestring_ascii
from typing import IO, Any

import click

from vault import exchanges
from vault.db.inventory import ListedCredential, ParsedOnce, collector_paused
from vault.durations import parse_date
from vault.errors import AlreadyExists, decode_utf8
from vault.format import model
from vault.format.model import CredentialInfo, parse_payload_json, validate_name
from vault.owner.admin import UNCHANGED

from . import output, prompts
from .options import (
    from_json_option,
    json_option,
    open_admin,
    open_inventory,
    passphrase_file_option,
    vault_option,
    yes_option,
)


def _date(_ctx: click.Context, _param: click.Parameter, value: str | None) -> date | None:
    if value is None:
        return None
    return parse_date(value)


def _read_payload(
    from_json: IO[bytes] | None, exchange: str, ask: tuple[str, ...]
) -> dict[str, str]:
    """Secret fields from JSON (file or stdin) or hidden prompts; never from argv."""
    if from_json is not None:
        return parse_payload_json(decode_utf8(from_json.read(), "the JSON"))
    profile = exchanges.get_profile(exchange)
    names = [*profile.required_fields, *(a for a in ask if a not in profile.required_fields)]
    for name in ask:
        exchanges.validate_field_name(name)
    return {name: prompts.secret_field(name) for name in names}


def _info_dict(info: CredentialInfo | ListedCredential, today: date) -> dict[str, Any]:
    i = info if isinstance(info, ListedCredential) else ListedCredential.of(info)
    return {
        "name": i.name,
        "exchange": i.exchange,
        "permissions": list(i.permissions),
        "ips": list(i.ips),
        "issued_on": i.issued_on,
        "expires_on": i.expires_on,
        "age_days": (today - i.issued_on).days,
        "version": i.version,
        "pending_version": i.pending_version,
        "previous_version": i.previous_version,
        "created_at": i.created_at,
        "updated_at": i.updated_at,
        "exposed_at": i.exposed_at,
    }


def _listing_json(items: Iterable[ListedCredential], today: date) -> str:
    """``list --json`` for a pipe: exactly ``json.dumps([_info_dict(i, today) ...])``.

    Written out item by item from JSON text cached by value: credentials imported
    together share their metadata (exchange to expiry) and their stage columns
    (version to exposure), so each distinct group is encoded once. 100,000
    credentials take a fraction of the time json.dumps needs for their dicts. Keep
    the keys in step with :func:`_info_dict`; a test compares the two outputs.
    """

    def j(value: object) -> str:
        return json.dumps(value, default=output.json_default)

    def metadata_json(columns: tuple[Any, ...]) -> str:
        exchange, permissions, ips, issued_on, expires_on = columns
        return (
            f'"exchange": {j(exchange)}, "permissions": {j(permissions)}, "ips": {j(ips)}, '
            f'"issued_on": {j(issued_on)}, "expires_on": {j(expires_on)}, '
            f'"age_days": {(today - issued_on).days}'
        )

    def stages_json(columns: tuple[Any, ...]) -> str:
        version, pending, previous, created_at, updated_at, exposed_at = columns
        return (
            f'"version": {version}, "pending_version": {j(pending)}, '
            f'"previous_version": {j(previous)}, "created_at": {j(created_at)}, '
            f'"updated_at": {j(updated_at)}, "exposed_at": {j(exposed_at)}'
        )

    metadata = ParsedOnce(metadata_json)  # by (exchange, ..., expires_on)
    stages = ParsedOnce(stages_json)  # by (version, ..., exposed_at)
    return (
        "["
        + ", ".join(
            f'{{"name": {encode_basestring_ascii(i.name)}, {metadata[i[1:6]]}, {stages[i[6:]]}}}'
            for i in items
        )
        + "]"
    )


def _today() -> date:
    return model.utc_now().date()


@click.command()
@click.argument("name")
@click.option(
    "--exchange", "-e", required=True, help="Exchange id (see: exvault exchanges), or 'other'."
)
@click.option(
    "--permissions",
    "-p",
    default="",
    help="Comma-separated: read,trade,margin,futures,withdraw,"
    "transfer,subaccount (or the exchange's own names).",
)
@click.option(
    "--ip", "ips", multiple=True, help="Whitelisted IP or CIDR at the exchange (repeatable)."
)
@click.option(
    "--issued",
    callback=_date,
    help="Date the key was created at the exchange (YYYY-MM-DD) [default: today].",
)
@click.option("--expires", callback=_date, help="Date the exchange expires the key (YYYY-MM-DD).")
@from_json_option(
    'Read the secret fields from a JSON object in FILE ("-" for stdin) instead of prompts.'
)
@click.option(
    "--ask",
    multiple=True,
    metavar="FIELD",
    help="Also ask for this optional field (uid, private_key, ...).",
)
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
    vault_location: str | None,
    passphrase_file: str | None,
    as_json: bool,
) -> None:
    """Store a new exchange key as NAME.

    The secret fields are asked at hidden prompts (the API passphrase too when the
    exchange needs one) or read with --from-json; they are never accepted as arguments.
    """
    validate_name(name)
    exchanges.get_profile(exchange)  # an unknown exchange is reported before any prompt
    with open_admin(vault_location, passphrase_file) as admin:
        if name in admin.names():  # before anyone types or pastes a secret
            raise AlreadyExists(f'a credential named "{name}" exists already')
        payload = _read_payload(from_json, exchange, ask)
        info = admin.add(
            name,
            exchange,
            payload,
            permissions=permissions,
            ips=ips,
            issued_on=issued,
            expires_on=expires,
        )
    if as_json:
        output.emit_json(_info_dict(info, _today()))
    else:
        click.echo(f'Stored "{info.name}" ({info.metadata.exchange}), version {info.version}.')


@click.command(name="list")
@vault_option
@json_option
def list_(vault_location: str | None, as_json: bool) -> None:
    """List credentials: name, exchange, permissions, IPs, age, version (no secret)."""
    today = _today()
    with open_inventory(vault_location) as inv, collector_paused():
        if as_json and not output.indented():
            # Built whole before anything is printed: a damaged row met halfway
            # leaves stdout empty, as for every other error.
            output.emit_text(_listing_json(inv.listing(), today))
            return
        items = list(inv.listing())
    if as_json:
        output.emit_json([_info_dict(i, today) for i in items])
        return
    if not items:
        click.echo("No credentials yet. Add one with: exvault add NAME --exchange ID", err=True)
        return
    rows = []
    for i in items:
        stage = " (pending)" if i.pending_version else ""
        rows.append(
            (
                i.name,
                i.exchange,
                ",".join(i.permissions) or "-",
                ",".join(i.ips) or "any",
                f"{(today - i.issued_on).days}d",
                f"{i.version}{stage}",
            )
        )
    output.table(("NAME", "EXCHANGE", "PERMISSIONS", "IPS", "AGE", "VERSION"), rows)


@click.command()
@click.argument("name")
@click.option("--reveal", is_flag=True, help="Also show the secret fields (asks first).")
@click.option(
    "--field", "field_name", metavar="FIELD", help="Print only this secret field, for piping."
)
@click.option(
    "--stage",
    type=click.Choice(["current", "pending", "previous"]),
    default="current",
    show_default=True,
)
@vault_option
@passphrase_file_option
@yes_option
@json_option
def show(
    name: str,
    reveal: bool,
    field_name: str | None,
    stage: str,
    vault_location: str | None,
    passphrase_file: str | None,
    yes: bool,
    as_json: bool,
) -> None:
    """Show a credential's metadata; --reveal or --field to see secrets."""
    if stage != "current" and not (reveal or field_name):
        raise click.UsageError("--stage goes with --reveal or --field (see: exvault history NAME)")
    if field_name is not None:
        with open_admin(vault_location, passphrase_file) as admin:
            cred = admin.get(name, stage)
        value = cred.field(field_name).reveal()
        if as_json:
            output.emit_json({"name": name, "version": cred.version, field_name: value})
        else:
            click.echo(value)
        return
    with open_inventory(vault_location) as inv:
        info = inv.describe(name)
    data = _info_dict(info, _today())
    if reveal:
        if not yes:
            click.confirm("Show the secret values on screen?", abort=True, err=True)
        with open_admin(vault_location, passphrase_file) as admin:
            cred = admin.get(name, stage)
        secrets = {k: v.reveal() for k, v in sorted(cred.fields.items())}
    if as_json:
        if reveal:
            data["fields"] = secrets
        output.emit_json(data)
        return
    output.fields(
        [
            (_LABELS.get(k, k.replace("_", " ").capitalize()), _show_value(v))
            for k, v in data.items()
        ]
    )
    if reveal:
        click.echo("")
        output.fields([(prompts.FIELD_LABELS.get(k, k), v) for k, v in secrets.items()])


_LABELS = {"ips": "IPs", "age_days": "Age (days)"}


def _show_value(value: object) -> object:
    if isinstance(value, list):
        return ", ".join(map(str, value)) or "-"
    return "-" if value is None else value


@click.command()
@click.argument("name")
@click.option(
    "--permissions", "-p", default=None, help="Replace the permissions (comma-separated)."
)
@click.option("--ip", "ips", multiple=True, help="Replace the IP whitelist (repeatable).")
@click.option("--clear-ips", is_flag=True, help="Remove every whitelisted IP.")
@click.option("--issued", callback=_date, help="Change the issue date (YYYY-MM-DD).")
@click.option("--expires", callback=_date, help="Set the exchange expiry date (YYYY-MM-DD).")
@click.option("--no-expires", is_flag=True, help="Clear the expiry date.")
@click.option(
    "--secrets", "new_secrets", is_flag=True, help="Re-enter the secret fields (hidden prompts)."
)
@from_json_option("Replace the secret fields from JSON.")
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
    ):
        raise click.UsageError("nothing to change: give at least one option")
    with open_inventory(vault_location) as inv:
        exchange = inv.describe(name).metadata.exchange
    with open_admin(vault_location, passphrase_file) as admin:
        payload = (
            _read_payload(from_json, exchange, ())
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
        )
    if as_json:
        output.emit_json({**_info_dict(info, _today()), "wrapped_for": list(info.wrapped_for)})
    elif info.wrapped_for:
        click.echo(
            f'Updated "{name}": now version {info.version}; '
            f"wrapped for clients: {', '.join(info.wrapped_for)}."
        )
    else:
        click.echo(f'Updated "{name}": now version {info.version}.')


@click.command()
@click.argument("name")
@vault_option
@json_option
def history(name: str, vault_location: str | None, as_json: bool) -> None:
    """List a credential's versions with dates and stage labels."""
    with open_inventory(vault_location) as inv:
        versions = inv.history(name)
    if as_json:
        output.emit_json(
            [
                {
                    "version": v.version,
                    "created_at": v.created_at,
                    "stages": list(v.stages),
                    "readable": v.readable,
                    "permissions": list(v.metadata.permissions),
                    "ips": list(v.metadata.ips),
                    "issued_on": v.metadata.issued_on,
                    "expires_on": v.metadata.expires_on,
                }
                for v in versions
            ]
        )
        return
    output.table(
        ("VERSION", "CREATED", "STAGES", "PERMISSIONS", "IPS", "EXPIRES"),
        [
            (
                v.version,
                v.created_at.strftime("%Y-%m-%d %H:%M"),
                ",".join(v.stages) or ("-" if v.readable else "retired"),
                ",".join(v.metadata.permissions) or "-",
                ",".join(v.metadata.ips) or "any",
                v.metadata.expires_on or "-",
            )
            for v in versions
        ],
    )


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


@click.command(name="exchanges")
@json_option
def exchanges_(as_json: bool) -> None:
    """List the known exchanges with their required fields."""
    profiles = exchanges.all_profiles()
    if as_json:
        output.emit_json(
            [
                {
                    "id": p.id,
                    "name": p.display_name,
                    "required_fields": list(p.required_fields),
                    "optional_fields": list(p.optional_fields),
                    "max_ips": p.max_ips,
                    "notes": p.notes,
                }
                for p in profiles
            ]
        )
        return
    output.table(
        ("ID", "NAME", "REQUIRED", "MAX IPS", "NOTES"),
        [
            (p.id, p.display_name, ",".join(p.required_fields), p.max_ips or "-", p.notes)
            for p in profiles
        ],
    )


COMMANDS = (add, list_, show, edit, history, remove, exchanges_)
