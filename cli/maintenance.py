"""Commands for when something may be wrong: ``verify``, ``doctor``, ``backup``, ``restore``."""

from __future__ import annotations

import os
from pathlib import Path

import click

from vault.errors import IntegrityError, InvalidInput
from vault.format import model
from vault.ops.backup import backup as run_backup
from vault.ops.backup import (
    backup_file_in,
    copy_backup,
    discard,
    remove_copy,
    replace_with,
    verify_backup,
)
from vault.ops.doctor import diagnose
from vault.ops.verification import verify as run_verify
from vault.owner.agent_unlock import lock_vault_id

from . import output, prompts
from .options import (
    json_option,
    open_inventory,
    passphrase_file_option,
    vault_option,
    yes_option,
)
from .unlock import open_admin


@click.command()
@vault_option
@passphrase_file_option
@json_option
def verify(vault_location: str | None, passphrase_file: str | None, as_json: bool) -> None:
    """Authenticate every record of the vault with the passphrase.

    Every ciphertext, wrap and signature, the audit chain, the database itself and its
    schema. Reports each problem by credential; exits 3 if any.
    """
    with (
        open_admin(vault_location, passphrase_file) as admin,
        output.TerminalProgress("Verifying credentials") as progress,
    ):
        report = run_verify(admin, progress)
    if as_json:
        output.emit_json(
            {
                "ok": report.ok,
                "credentials": report.credentials,
                "versions": report.versions,
                "decrypted": report.decrypted,
                "wraps": report.wraps,
                "clients": report.clients,
                "audit_entries": report.audit_entries,
                "problems": [
                    {"credential": p.credential, "problem": p.message} for p in report.problems
                ],
            }
        )
    else:
        for p in report.problems:
            click.echo(f"{p.credential or '(vault)'}: {p.message}")
        counts = [
            output.plural(report.credentials, "credential"),
            f"{output.plural(report.versions, 'version')} ({report.decrypted} decrypted)",
            output.plural(report.wraps, "wrap"),
            output.plural(report.clients, "client"),
            output.plural(report.audit_entries, "audit entry"),
        ]
        summary = ", ".join(counts)
        if report.ok:
            click.echo(f"Vault verified: {summary}.")
        else:
            click.echo(
                f"exvault: {output.plural(len(report.problems), 'problem')} found in {summary}.",
                err=True,
            )
    if not report.ok:
        raise click.exceptions.Exit(3)


@click.command()
@vault_option
@json_option
def doctor(vault_location: str | None, as_json: bool) -> None:
    """Check file modes, secret files, WAL, KDF and clock.

    Token and passphrase files are looked at too; no passphrase is needed.
    Exits 0 when all is well, 1 with warnings, 2 with failures.
    """
    with open_inventory(vault_location) as inv:
        results = diagnose(inv, model.utc_now())
    if as_json:
        output.emit_json([d.__dict__ for d in results])
    else:
        output.table(
            ("STATUS", "CHECK", "DETAIL"), [(d.status.upper(), d.check, d.message) for d in results]
        )
    statuses = {d.status for d in results}
    raise click.exceptions.Exit(2 if "fail" in statuses else 1 if "warn" in statuses else 0)


@click.command()
@click.argument("destination", type=click.Path())
@vault_option
def backup(destination: str, vault_location: str | None) -> None:
    """Write a consistent copy of the vault to DESTINATION.

    The copy is a new file, mode 0600.
    When DESTINATION is a directory, the copy goes inside it as VAULT-TIME.db (UTC
    time, e.g. vault-20260301T080000Z.db), so a cron job can keep one a day. The copy
    stays encrypted and opens with the passphrase of the moment it was taken. Writers
    may keep working during it.
    """
    target = Path(destination)
    with open_inventory(vault_location) as inv:
        # A trailing slash means a directory, even one that is missing (an error then,
        # rather than a file named after it).
        if destination.endswith(os.sep) or target.is_dir():
            target = backup_file_in(inv.store, target, model.utc_now())
        run_backup(inv.store, target)
        count = inv.status().credentials
    click.echo(f"Backed up {output.plural(count, 'credential')} to {target}.")


@click.command()
@click.argument("backup_file", metavar="FILE", type=click.Path(dir_okay=False, path_type=Path))
@vault_option
@click.option(
    "--backup-passphrase-file",
    type=click.Path(dir_okay=False),
    default=None,
    help="Read the backup's passphrase from FILE (mode 0600) instead of asking.",
)
@yes_option
def restore(
    backup_file: Path, vault_location: str | None, backup_passphrase_file: str | None, yes: bool
) -> None:
    """Replace the vault with the backup FILE, once it verifies.

    The backup is opened and verified first.
    Asks for the backup's passphrase (that of when it was taken). The replaced vault
    is kept beside it as VAULT.replaced-TIME. Asks for confirmation (--yes to skip).
    A backup of another vault (another id or fingerprint) is named with both
    fingerprints and needs a second yes, or --yes; without a terminal it is refused.
    The backup is only read: it is copied beside the vault, and the copy is checked.
    """
    with open_inventory(vault_location) as current:
        copy = copy_backup(current.store, backup_file)  # a vault at all, before asking
        try:
            mine = (current.vault_id.hex(), current.fingerprint)
            if (copy.vault_id, copy.fingerprint) != mine:
                other = (
                    f"the backup is of another vault (id {copy.vault_id}, fingerprint "
                    f"{copy.fingerprint}) than the one it would replace (id {mine[0]}, "
                    f"fingerprint {mine[1]})"
                )
                if not yes and not prompts.stdin_is_terminal():
                    raise InvalidInput(f"{other}; add --yes to replace it anyway")
                click.echo(f"exvault: warning: {other}", err=True)
                if not yes:
                    click.confirm("Replace this vault with another vault?", abort=True, err=True)
            passphrase = prompts.passphrase(
                backup_passphrase_file,
                "Passphrase of the backup",
                option="--backup-passphrase-file",
                from_environment=False,
            )
        except BaseException:
            remove_copy(copy)
            raise
        with output.TerminalProgress("Verifying the backup") as progress:
            staged = verify_backup(copy, passphrase, progress)
        if not staged.ok:
            for problem in staged.problems:
                click.echo(problem, err=True)
            raise IntegrityError("the backup does not verify; nothing was replaced")
        try:
            if not yes:
                click.confirm(
                    f"Replace the vault ({current.status().credentials} credentials) with the "
                    f"backup ({staged.credentials} credentials)?",
                    abort=True,
                    err=True,
                )
            aside = replace_with(current.store, staged)
        except BaseException:
            discard(staged)
            raise
        # The vault was replaced: the agent must not go on signing for the old one.
        lock_vault_id(current.vault_id)
    click.echo(
        f"Restored {output.plural(staged.credentials, 'credential')}; "
        f"the replaced vault is kept at {aside}."
    )
