"""``exvault exchanges``: the exchanges exvault knows, with their required fields.

Apart from the listings of :mod:`vault.cli.listing`, which ``show`` uses too: the
exchange profiles are loaded only by the commands that check a key against them.
"""

from __future__ import annotations

import click

from vault.exchanges.profiles import all_profiles

from . import output
from .options import json_option


@click.command(name="exchanges")
@json_option
def exchanges_(as_json: bool) -> None:
    """List the known exchanges with their required fields."""
    profiles = all_profiles()
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
