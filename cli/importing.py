"""``exvault import``: take keys in from where bots keep them today (freqtrade's
configuration, .env files, hummingbot's connector files, KeePass databases)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from vault.errors import InvalidInput, printable
from vault.ops.importing import dotenv_file, freqtrade, hummingbot, keepass
from vault.ops.importing.plan import (
    ADD,
    REPLACE,
    SKIP,
    ImportPlan,
    ImportResult,
    Progress,
    Source,
    apply_plan,
    make_plan,
    remove_files,
)

from . import output, prompts
from .groups import CommandGroup
from .options import json_option, open_inventory, passphrase_file_option, vault_option, yes_option
from .unlock import open_admin

F = TypeVar("F", bound=Callable[..., Any])

ERASURE_NOTE = (
    "overwriting a file before deleting it does not guarantee its old bytes are gone: "
    "SSDs remap writes, journaling and copy-on-write file systems, snapshots and "
    "backups keep older copies"
)

#: The ``exvault run`` preset that hands an imported key to the program it came from.
PRESET_OF = {"freqtrade": "freqtrade", "env": "ccxt", "keepass": "ccxt"}


def import_options(f: F) -> F:
    """The options every ``exvault import`` source takes."""
    for option in reversed(
        (
            click.option(
                "--prefix",
                default="",
                metavar="PREFIX",
                help="Put PREFIX before every credential name.",
            ),
            click.option(
                "--replace",
                is_flag=True,
                help="Write a new version of a credential that exists (never a delete).",
            ),
            click.option(
                "--dry-run", is_flag=True, help="Show the plan and stop; nothing is written."
            ),
            click.option(
                "--remove-source",
                is_flag=True,
                help="After the import, overwrite and delete the files the keys came from "
                "(not a guaranteed erasure on SSDs and journaling file systems).",
            ),
            yes_option,
            json_option,
            vault_option,
            passphrase_file_option,
        )
    ):
        f = option(f)
    return f


def source_password_option(what: str) -> Callable[[F], F]:
    """``--password-file FILE``: the source's own password, from a 0600 file."""
    return click.option(
        "--password-file",
        type=click.Path(dir_okay=False),
        default=None,
        help=f"Read the {what} password from FILE (mode 0600) instead of a prompt.",
    )


def source_password(password_file: str | None, what: str) -> str:
    """The password of the source, from its file or typed at a hidden prompt.

    :raises InvalidInput: when there is neither a file nor a terminal to ask.
    """
    return prompts.passphrase(
        password_file, prompt=f"{what} password", option="--password-file", from_environment=False
    )


@click.group("import", cls=CommandGroup)
def import_() -> None:
    """Import keys from freqtrade, .env, hummingbot or KeePass.

    Each source's fields are mapped to exvault's (api_key, secret, passphrase, uid)
    and checked with the exchange's profile; a plan (names, exchanges, fields found,
    what is skipped and why) is shown, and the keys are imported after confirmation
    in one transaction: a failure part-way imports nothing. An existing name is
    skipped unless --replace, which writes a new version. The source keeps its copy
    of the secrets until you remove it.
    """


@import_.command("freqtrade")
@click.argument("files", nargs=-1, required=True, type=click.Path(dir_okay=False, path_type=Path))
@click.option("--exchange", metavar="ID", help="The exchange id when the configuration names none.")
@import_options
def freqtrade_(files: tuple[Path, ...], exchange: str | None, **options: Any) -> None:
    """Import freqtrade's config files.

    Reads the key of freqtrade's configuration FILES, merged in order as freqtrade
    merges config.json and config-private.json; comments and trailing commas are read
    as freqtrade reads them.
    """
    run_import(lambda _progress: freqtrade.read(files, exchange), **options)


@import_.command("env")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@import_options
def env(file: Path, **options: Any) -> None:
    """Import the keys of a .env file.

    BINANCE_API_KEY-style variables (an exchange id, an optional label, a field) and
    freqtrade's FREQTRADE__EXCHANGE__* variables are keys; other variables are listed
    as skipped.
    """
    run_import(lambda _progress: dotenv_file.read(file), **options)


@import_.command("hummingbot")
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path))
@source_password_option("hummingbot")
@import_options
def hummingbot_(directory: Path, password_file: str | None, **options: Any) -> None:
    """Import hummingbot's key files.

    Reads the keys of hummingbot's encrypted connector files. DIRECTORY is
    hummingbot's folder, its conf folder or conf/connectors. Asks for the hummingbot
    password (or reads --password-file) and decrypts each value.
    """

    def read(progress: Progress) -> Source:
        hummingbot.connectors_dir(directory)  # a wrong folder before a password is typed
        password = source_password(password_file, "hummingbot")
        return hummingbot.read(directory, password, progress)

    run_import(read, **options)


@import_.command("keepass")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--group", metavar="GROUP", help="Import only the entries of GROUP (a name or an a/b path)."
)
@click.option("--exchange", metavar="ID", help="The exchange id of entries that name none.")
@click.option(
    "--keyfile", type=click.Path(dir_okay=False, path_type=Path), help="The database's key file."
)
@click.option(
    "--no-password",
    is_flag=True,
    help="The database has no password, only its --keyfile (asks for none).",
)
@source_password_option("KeePass")
@import_options
def keepass_(
    file: Path,
    group: str | None,
    exchange: str | None,
    keyfile: Path | None,
    no_password: bool,
    password_file: str | None,
    **options: Any,
) -> None:
    """Import a KeePass database.

    Each entry is a key: title -> name, user name -> api_key, password -> secret;
    custom properties give the exchange and further fields (passphrase, uid, ...).
    """
    if no_password and keyfile is None:
        raise click.UsageError("--no-password needs --keyfile: a database opens with one")
    if no_password and password_file is not None:
        raise click.UsageError("--no-password and --password-file exclude each other")

    def read(_progress: Progress) -> Source:
        # A database made with a key file only is opened with no password at all: an
        # empty one is a different composite key.
        keepass.require_file(file)  # a wrong path before a password is typed
        password = None if no_password else source_password(password_file, "KeePass")
        return keepass.read(file, password, keyfile=keyfile, group=group, exchange=exchange)

    run_import(read, **options)


def run_import(
    read: Callable[[Progress], Source],
    *,
    prefix: str,
    replace: bool,
    dry_run: bool,
    remove_source: bool,
    yes: bool,
    as_json: bool,
    vault_location: str | None,
    passphrase_file: str | None,
) -> None:
    """Read a source, show the plan, import after confirmation, report.

    :raises VaultError: as the reader, the plan, the unlock and :func:`apply_plan` raise
        them (nothing is imported then); :class:`InvalidInput` for a ``--remove-source``
        refused before the import, or failing after it (the message says what was
        imported).
    """
    with open_inventory(vault_location) as inv:  # "no vault" before any source password
        existing = list(inv.listing())
    with output.TerminalProgress("Reading the source") as progress:
        source = read(progress)
    plan = make_plan(source, existing, prefix=prefix, replace=replace)
    refused = plan.removal_refused() if remove_source else ""
    if not as_json:
        show_plan(plan)
        if remove_source and dry_run:
            files = ", ".join(printable(f.path) for f in plan.files)
            what = f"refused, {refused}" if refused else f"would remove {files}"
            click.echo(printable(f"--remove-source: {what}."))
    if refused and plan.writes and not dry_run:
        raise InvalidInput(f"--remove-source refused: {refused}; import without it")
    result = ImportResult({})
    removed: list[Path] = []
    if not dry_run and plan.writes:
        if not yes:
            count = output.plural(len(plan.writes), "credential")
            click.confirm(f"Import {count} into the vault?", abort=True, err=True)
        with (
            open_admin(vault_location, passphrase_file) as admin,
            output.TerminalProgress("Importing") as progress,
        ):
            result = apply_plan(admin, plan, progress)
        if remove_source:
            try:
                removed = remove_files(plan.files)
            except InvalidInput as exc:  # committed already: say so, or it reads as undone
                imported = ", ".join(result.versions)
                raise InvalidInput(
                    f"imported {imported}, but --remove-source failed: {exc}"
                ) from None
    notes = after_import_notes(plan, result, removed, dry_run)
    if as_json:
        output.emit_json(
            {**report(plan, result, removed, dry_run, notes), "removal_refused": refused or None}
        )
        return
    for note in notes:
        click.echo(note)


def show_plan(plan: ImportPlan) -> None:
    """Print the plan: one row per key (no value), then what else is passed over.

    Every text the source gave (names of variables, settings, entries, exchanges) is
    shown through :func:`printable`: a crafted source must not drive the terminal.
    """
    if plan.keys:
        output.table(
            ["NAME", "EXCHANGE", "FIELDS", "ACTION", "FROM"],
            [
                tuple(
                    printable(cell)
                    for cell in (
                        k.name,
                        k.exchange,
                        ",".join(k.field_names) or "-",
                        _action(k.action, k.reason),
                        k.origin,
                    )
                )
                for k in plan.keys
            ],
        )
    else:
        click.echo("No exchange key found in the source.")
    for key in plan.keys:
        if key.unmapped:
            unmapped = printable(", ".join(key.unmapped))
            click.echo(f"{printable(key.name)}: not imported (no exvault field): {unmapped}")
    for skipped in plan.skipped:
        click.echo(printable(f"skipped {skipped.origin}: {skipped.reason}"))


def _action(action: str, reason: str) -> str:
    return f"skip: {reason}" if action == SKIP else action


def after_import_notes(
    plan: ImportPlan, result: ImportResult, removed: list[Path], dry_run: bool
) -> list[str]:
    """What to say once the import is done: what was written, that the source still
    holds the secrets, and how to hand the keys to the bot from the vault instead."""
    if dry_run:
        return ["Dry run: nothing was written."]
    if not result.versions:
        return ["Nothing to import."]
    added = [k.name for k in plan.with_action(ADD)]
    replaced = [f"{k.name} (version {result.versions[k.name]})" for k in plan.with_action(REPLACE)]
    notes = [f"Imported {output.plural(len(added), 'credential')}: {', '.join(added)}."]
    if not added:
        notes.clear()
    if replaced:
        notes.append(f"Replaced with a new version: {', '.join(replaced)}.")
    first = plan.writes[0].name
    preset = PRESET_OF.get(plan.kind)
    if removed:
        notes.append(
            f"Removed {', '.join(printable(p) for p in removed)} (overwritten, then deleted; "
            f"{ERASURE_NOTE})."
        )
    elif plan.kind == "keepass":
        notes.append(
            "The KeePass database still holds these secrets; delete the entries there once "
            "your programs read them from the vault."
        )
    elif preset is not None:  # hummingbot's files stay: the last note says why
        held = ", ".join(sorted({printable(f.path) for f in plan.files})) or "the source"
        notes.append(
            f"The source still holds the secrets ({held}): delete them there once the bot "
            "reads its keys from the vault (--remove-source overwrites and deletes the files, "
            f"but {ERASURE_NOTE})."
        )
    if preset is not None:
        notes.append(
            f"Start the bot with its keys from the vault instead: exvault run --cred {first} "
            f"--preset {preset} -- COMMAND (or exvault render TEMPLATE --out PATH for a "
            "program that reads a file)."
        )
    else:
        notes.append(
            "hummingbot reads its keys only from its own encrypted connector files, not "
            "from its environment: keep them there while it runs, and use the vault's copy "
            "for rotation checks and other programs."
        )
    return notes


def report(
    plan: ImportPlan,
    result: ImportResult,
    removed: list[Path],
    dry_run: bool,
    notes: list[str],
) -> dict[str, object]:
    """The ``--json`` report: the plan (no value), what was written and removed."""
    return {
        "source": plan.kind,
        "dry_run": dry_run,
        "keys": [
            {
                "name": k.name,
                "exchange": k.exchange,
                "from": k.origin,
                "fields": list(k.field_names),
                "action": k.action,
                "reason": k.reason or None,
                "not_imported_fields": list(k.unmapped),
                "version": result.versions.get(k.name),
            }
            for k in plan.keys
        ],
        "skipped": [{"from": s.origin, "reason": s.reason} for s in plan.skipped],
        "imported": [k.name for k in plan.with_action(ADD) if k.name in result.versions],
        "replaced": [k.name for k in plan.with_action(REPLACE) if k.name in result.versions],
        "source_files": [str(f.path) for f in plan.files],
        "removed": [str(p) for p in removed],
        "notes": notes,
    }
