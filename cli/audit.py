"""``exvault audit``: read and verify the audit log (no passphrase needed)."""

from __future__ import annotations

from datetime import datetime

import click

from vault.db.audit import read_witness
from vault.errors import printable

from . import output
from .arguments import MOMENT_BACK
from .groups import CommandGroup
from .options import json_option, open_inventory, vault_option


@click.group(cls=CommandGroup, invoke_without_command=True)
@click.option(
    "--since",
    type=MOMENT_BACK,
    help="Only entries from this moment on: a date (00:00 UTC), or how long ago (7d, 12h).",
)
@click.option(
    "--until",
    type=MOMENT_BACK,
    help="Only entries before this moment: a date (00:00 UTC), or how long ago (1d).",
)
@vault_option
@json_option
@click.pass_context
def audit(
    ctx: click.Context,
    since: datetime | None,
    until: datetime | None,
    vault_location: str | None,
    as_json: bool,
) -> None:
    """Show the audit log: who read or changed what, when and where.

    Each entry names its host and process too. No passphrase is needed.
    """
    if ctx.invoked_subcommand is not None:
        # `exvault audit --vault X verify` means the same as `exvault audit verify --vault X`.
        ctx.obj = {"vault_location": vault_location, "as_json": as_json}
        return
    with open_inventory(vault_location) as inv:
        entries = inv.audit_entries(since)
    if until is not None:
        entries = [e for e in entries if e.at < until]
    if as_json:
        output.emit_json([e._asdict() for e in entries])
        return
    # Entries are text anyone able to write the database chose (and, on SQLite, maybe
    # not UTF-8): escaped, so that no control character reaches the terminal.
    output.table(
        (
            "SEQ",
            "TIME (UTC)",
            "ACTOR",
            "HOST",
            "PID",
            "ACTION",
            "CREDENTIAL",
            "VER",
            "OUTCOME",
            "DETAIL",
        ),
        [
            (
                # An audit file's entries have their own numbering: the file names them.
                e.seq if e.log == "vault" else f"{e.log}#{e.seq}",
                e.at.strftime("%Y-%m-%d %H:%M:%S"),
                printable(e.actor),
                printable(e.host),
                e.pid,
                printable(e.action),
                printable(e.credential or "-"),
                e.version or "-",
                printable(e.outcome),
                printable(e.detail),
            )
            for e in entries
        ],
    )


@audit.command(name="verify")
@vault_option
@json_option
@click.pass_context
def audit_verify(ctx: click.Context, vault_location: str | None, as_json: bool) -> None:
    """Check that no audit entry was deleted, edited or reordered.

    A log cut off at its end is reported too.
    Exits 0 when the chain is whole, 3 when it is not.
    """
    given = ctx.obj or {}
    vault_location = vault_location or given.get("vault_location")
    as_json = as_json or bool(given.get("as_json"))
    with (
        open_inventory(vault_location) as inv,
        output.TerminalProgress("Verifying the audit log") as progress,
    ):
        report = inv.verify_audit(progress=progress)
        # The head is remembered only on a machine with a private, writable state
        # directory; without it, entries cut off the end later go unnoticed: say so.
        # None: nothing was to be remembered (an empty log, or one with problems).
        remembered = (
            read_witness(inv.vault_id) == (report.head_seq, report.head_hash)
            if report.ok and report.head_seq
            else None
        )
    if as_json:
        output.emit_json(
            {
                "ok": report.ok,
                "entries": report.entries,
                "head": report.head_seq,
                "problems": list(report.problems),
                "head_remembered": remembered,
            }
        )
    elif report.ok:
        click.echo(
            f"Audit log intact: {output.plural(report.entries, 'entry')}, head {report.head_seq}."
        )
        if remembered is False:
            click.echo(
                "exvault: note: this machine could not remember the head (no private, "
                "writable state directory: $XDG_STATE_HOME/exvault or "
                "~/.local/state/exvault, 0700), "
                "so entries cut off the end of the log later will not be noticed",
                err=True,
            )
    else:
        for problem in report.problems:
            click.echo(f"exvault: audit: {problem}", err=True)
    if not report.ok:
        raise click.exceptions.Exit(3)
