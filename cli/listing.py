"""Keyless listings: ``list`` and ``history``, and the JSON form of a credential's
metadata that ``add``, ``show`` and ``edit`` print too (``exchanges`` lists the exchange
profiles from :mod:`vault.cli.exchanges`).

Kept apart from the commands that unlock: ``exvault list`` (cron, scripts, 100,000
credentials) loads neither the owner's code nor the prompts.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import date
from json.encoder import encode_basestring_ascii
from typing import Any

import click

from vault.collector import collector_paused
from vault.db.inventory import ListedCredential, ParsedOnce
from vault.format import model
from vault.format.credential_info import CredentialInfo

from . import output
from .options import json_option, open_inventory, vault_option


def info_dict(info: CredentialInfo | ListedCredential, today: date) -> dict[str, Any]:
    """A credential's metadata as ``--json`` prints it (no secret), its age as of ``today``."""
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
        # Only when not live: most keys use the exchange's production API.
        **({"endpoint": i.endpoint} if i.endpoint != model.LIVE else {}),
    }


def listing_json(items: Iterable[ListedCredential], today: date) -> str:
    """``list --json`` for a pipe: exactly ``json.dumps([info_dict(i, today) ...])``.

    Written out item by item from JSON text cached by value: credentials imported
    together share their metadata (exchange to expiry) and their stage columns
    (version to exposure), so each distinct group is encoded once. 100,000
    credentials take a fraction of the time json.dumps needs for their dicts. Keep
    the keys in step with :func:`info_dict`; a test compares the two outputs.
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
            f'{{"name": {encode_basestring_ascii(i.name)}, {metadata[i[1:6]]}, {stages[i[6:12]]}'
            + ("" if i.endpoint == model.LIVE else f', "endpoint": {j(i.endpoint)}')
            + "}"
            for i in items
        )
        + "]"
    )


def utc_today() -> date:
    """Today's date in UTC, the day credential ages count to."""
    return model.utc_now().date()


@click.command(name="list")
@vault_option
@json_option
def list_(vault_location: str | None, as_json: bool) -> None:
    """List credentials with their metadata, never a secret.

    Name, exchange, permissions, IPs, age and version of each.
    """
    today = utc_today()
    with open_inventory(vault_location) as inv, collector_paused():
        if as_json and not output.indented():
            # Built whole before anything is printed: a damaged row met halfway
            # leaves stdout empty, as for every other error.
            output.emit_text(listing_json(inv.listing(), today))
            return
        items = list(inv.listing())
    if as_json:
        output.emit_json([info_dict(i, today) for i in items])
        return
    if not items:
        click.echo("No credentials yet. Add one with: exvault add NAME --exchange ID", err=True)
        return
    # The endpoint column only when a credential is not on its exchange's live API.
    endpoints = any(i.endpoint != model.LIVE for i in items)
    rows = []
    for i in items:
        stage = " (pending)" if i.pending_version else ""
        row: tuple[str, ...] = (
            i.name,
            i.exchange,
            ",".join(i.permissions) or "-",
            ",".join(i.ips) or "any",
            f"{(today - i.issued_on).days}d",
            f"{i.version}{stage}",
        )
        rows.append((*row, i.endpoint) if endpoints else row)
    header = ("NAME", "EXCHANGE", "PERMISSIONS", "IPS", "AGE", "VERSION")
    output.table((*header, "ENDPOINT") if endpoints else header, rows)


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
