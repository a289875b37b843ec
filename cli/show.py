"""``exvault show``: a credential's metadata, or its secrets (``--reveal``, ``--field``).

Apart from the commands that change credentials (:mod:`vault.cli.credentials`): a read
needs neither the exchange profiles nor the payload checks, and ``show --field`` is the
command a script runs most, through the unlock agent (docs/benchmarks.md).
"""

from __future__ import annotations

import click

from . import output, prompts
from .listing import info_dict, utc_today
from .options import (
    STAGE_CHOICE,
    json_option,
    open_inventory,
    passphrase_file_option,
    vault_option,
    yes_option,
)
from .unlock import OwnerAccess, open_admin


@click.command()
@click.argument("name")
@click.option("--reveal", is_flag=True, help="Also show the secret fields (asks first).")
@click.option(
    "--field", "field_name", metavar="FIELD", help="Print only this secret field, for piping."
)
@click.option(
    "--stage",
    type=STAGE_CHOICE,
    default="current",
    show_default=True,
    help="Which version's secrets --reveal or --field shows: current, pending (a staged "
    "rotation) or previous.",
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
    """Show a credential's metadata, or its secrets (--reveal, --field)."""
    if stage != "current" and not (reveal or field_name):
        raise click.UsageError("--stage goes with --reveal or --field (see: exvault history NAME)")
    if field_name is not None:
        with OwnerAccess(vault_location, passphrase_file) as access:
            with access.keyless() as inv:
                inv.describe(name)  # "no such credential" before the passphrase prompt
            with access.unlock() as admin:
                cred = admin.get(name, stage)
        value = cred.field(field_name).reveal()
        if as_json:
            output.emit_json({"name": name, "version": cred.version, field_name: value})
        else:
            click.echo(value)
        return
    with open_inventory(vault_location) as inv:
        info = inv.describe(name)
    data = info_dict(info, utc_today())
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
