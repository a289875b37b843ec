"""``exvault run``: start a program with credentials in its environment."""

from __future__ import annotations

import os
import sys

import click

from vault.errors import InvalidInput, quoted
from vault.runtime import run as running

from .options import STAGE_CHOICE, passphrase_file_option, vault_option
from .reading import read_credentials


@click.command(context_settings={"ignore_unknown_options": True, "allow_interspersed_args": False})
@click.option(
    "--cred",
    "creds",
    multiple=True,
    required=True,
    metavar="NAME",
    help="Credential to load (repeatable).",
)
@click.option(
    "--preset",
    # Not a click.Choice: its error repeats the value whole, and a secret pasted here
    # must not be echoed (running.preset_variables quotes it cut).
    metavar="|".join(sorted(running.PRESETS)),
    help="Set the variables a known program reads (ccxt: BINANCE_API_KEY-style names).",
)
@click.option(
    "--env",
    "mappings",
    multiple=True,
    metavar="NAME=FIELD",
    help="Set variable NAME to a field (NAME=field, or NAME=credential.field with several --cred).",
)
@click.option(
    "--stage",
    type=STAGE_CHOICE,
    default="current",
    show_default=True,
    help="Which version to load: current, pending (a staged rotation) or previous.",
)
@click.option(
    "--no-masking", is_flag=True, help="Do not mask secret values in the program's output."
)
@vault_option
@passphrase_file_option
@click.argument("command", nargs=-1, required=True, type=click.UNPROCESSED)
def run(
    creds: tuple[str, ...],
    preset: str | None,
    mappings: tuple[str, ...],
    stage: str,
    no_masking: bool,
    vault_location: str | None,
    passphrase_file: str | None,
    command: tuple[str, ...],
) -> None:
    """Run COMMAND with credentials in its environment, never in argv.

    With a client token in the environment (EXVAULT_TOKEN_FILE, EXVAULT_TOKEN or
    systemd's credentials directory) the credentials are read as that client;
    otherwise the vault is unlocked with the passphrase. The program's output has
    secret values, and any 12 consecutive characters of one, masked unless
    --no-masking; on a terminal the program gets a pseudo-terminal (colours and
    full-screen programs work), otherwise its output is passed on as it comes. Its
    exit code is passed through. Presets: freqtrade, and ccxt (BINANCE_API_KEY,
    BINANCE_SECRET, BINANCE_PASSWORD, BINANCE_UID, BINANCE_PRIVATE_KEY for a binance
    credential).

    Example: exvault run --cred binance-main --preset freqtrade -- freqtrade trade
    """
    check_usage(creds, preset, mappings)
    loaded = read_credentials(vault_location, passphrase_file, creds, stage)
    env = running.build_environment(loaded, preset=preset, mappings=mappings, base=os.environ)
    code = running.run(command, env, secrets=running.secret_values(loaded), masking=not no_masking)
    sys.stdout.flush()
    raise click.exceptions.Exit(code)


def check_usage(creds: tuple[str, ...], preset: str | None, mappings: tuple[str, ...]) -> None:
    """Refuse what the command line alone shows to be wrong, before any unlock.

    :raises click.UsageError: (exit 2) for no variable to set, an unknown preset, a
        malformed ``--env``,
        a ``--preset`` or unqualified ``--env`` with several ``--cred``, or an
        ``--env`` naming a credential that is not a ``--cred``.
    """
    ctx = click.get_current_context()  # names `exvault run` in the error line
    if preset is None and not mappings:
        raise click.UsageError("say which variables to set: --preset NAME or --env NAME=field", ctx)
    if preset is not None:
        try:
            running.preset_variables(preset, "")
        except InvalidInput as exc:
            raise click.UsageError(str(exc), ctx) from None
    several = len(creds) != 1
    if preset is not None and several:
        raise click.UsageError(f"--preset {preset} needs exactly one --cred", ctx)
    for text in mappings:
        try:
            _, cred_name, _ = running.parse_mapping(text)
        except InvalidInput as exc:
            raise click.UsageError(str(exc), ctx) from None
        if cred_name is None and several:
            raise click.UsageError(
                f"--env {quoted(text)} needs exactly one --cred, or NAME=credential.field", ctx
            )
        if cred_name is not None and cred_name not in creds:
            raise click.UsageError(
                f"--env {quoted(text)} names a credential that is not a --cred", ctx
            )
