"""``exvault share``: put a SQLite vault in the shared layout for bots, or back."""

from __future__ import annotations

import click

from vault.errors import InvalidInput
from vault.owner.layout import share as run_share
from vault.owner.layout import unshare

from . import output
from .options import json_option, passphrase_file_option, vault_option
from .unlock import open_admin


@click.command()
@click.option(
    "--group",
    metavar="GROUP",
    help="The bots' group: it may read the vault and append to its audit file.",
)
@click.option("--off", is_flag=True, help="Back to the single-user layout.")
@vault_option
@passphrase_file_option
@json_option
def share(
    group: str | None,
    off: bool,
    vault_location: str | None,
    passphrase_file: str | None,
    as_json: bool,
) -> None:
    """Let other users' bots read the vault, but not change it.

    With --group GROUP: the vault file becomes 0640 and its directory 0750, both of
    GROUP; the vault uses a rollback journal instead of WAL; bots append their audit
    entries to NAME.audit/audit.db beside it (directory 2770, file 0660, GROUP). With
    --off: the single-user layout again (0600 file, 0700 directory, WAL); the audit
    directory is kept as NAME.audit-until-TIME, and still listed by exvault audit.
    Stop the processes that use the vault first. Asks for the passphrase (the change
    is audited).
    """
    if off == (group is not None):
        raise InvalidInput("give either --group GROUP or --off")
    with open_admin(vault_location, passphrase_file) as admin:
        if group is not None:
            layout = run_share(admin, group)
            if as_json:
                output.emit_json(
                    {
                        "layout": "shared",
                        "group": layout.group,
                        "audit_file": str(layout.audit_file),
                    }
                )
            else:
                click.echo(f"Vault layout: {layout.describe()}.")
            return
        retired = unshare(admin)
    if as_json:
        output.emit_json({"layout": "single-user", "retired_audit_directory": str(retired)})
    else:
        click.echo(
            f"Vault layout: single-user file; the bots' audit directory is kept as {retired}."
        )
