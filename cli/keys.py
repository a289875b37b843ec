"""Commands about the vault itself: ``init``, ``passwd``, ``recover``, ``info``."""

from __future__ import annotations

import os
import time
from pathlib import Path

import click

from vault.db.location import resolve
from vault.db.url import describe_location, sqlite_path
from vault.errors import AlreadyExists, InvalidInput, printable
from vault.format.kdf_params import KdfParams
from vault.owner.admin import AdminVault
from vault.owner.agent_unlock import lock_vault_id
from vault.runtime.secretfile import read_secret_file

from . import output, prompts
from .options import (
    allow_weak_passphrase_option,
    bare_passphrase_file_option,
    json_option,
    open_inventory,
    vault_option,
)
from .unlock import open_admin


@click.command()
@vault_option
@click.option(
    "--passphrase-file",
    type=click.Path(dir_okay=False),
    default=None,
    help="Read the new passphrase from FILE (mode 0600) instead of asking twice.",
)
@click.option(
    "--unlock-time",
    metavar="SECONDS",
    type=click.FloatRange(0.1, 10.0),
    default=0.5,
    show_default=True,
    help="Seconds one unlock should take on this machine (Argon2id calibration).",
)
@allow_weak_passphrase_option
@click.option("--insecure-test-kdf", is_flag=True, hidden=True)
@json_option
def init(
    vault_location: str | None,
    passphrase_file: str | None,
    unlock_time: float,
    allow_weak: bool,
    insecure_test_kdf: bool,
    as_json: bool,
) -> None:
    """Create a new vault and print its recovery key once.

    Says where the vault will be created, then asks for the passphrase twice (or
    reads two lines from stdin when it is not a terminal). A weak passphrase (zxcvbn
    scores it below 3 of 4) is refused, with the reason, unless
    --allow-weak-passphrase. Argon2id is calibrated to UNLOCK_TIME with at least
    256 MiB of memory.
    """
    url = resolve(vault_location)
    location = printable(describe_location(url))
    path = sqlite_path(url)
    if path is not None and path.exists():  # before asking for a passphrase
        raise AlreadyExists(f"a file exists at {location}; refusing to overwrite it")
    if passphrase_file is None and prompts.stdin_is_terminal():
        click.echo(f"Creating a new vault at {location}", err=True)
    passphrase = prompts.new_passphrase(passphrase_file, "vault passphrase", allow_weak)
    # Hidden, for the test suite only: a KDF cheap enough to run hundreds of times.
    kdf = KdfParams(1, 64, 1) if insecure_test_kdf else None
    if not as_json:
        click.echo("Calibrating Argon2id and creating the vault...", err=True)
    started = time.perf_counter()
    admin, recovery = AdminVault.create(
        url,
        passphrase,
        kdf=kdf,
        insecure_test_kdf=insecure_test_kdf,
        target_seconds=unlock_time,
    )
    with admin:
        status = admin.status()
    elapsed = time.perf_counter() - started
    if as_json:
        output.emit_json(
            {
                "location": status.location,
                "vault_id": status.vault_id,
                "fingerprint": status.fingerprint,
                "kdf": {
                    "algorithm": "argon2id",
                    "time_cost": status.kdf.time_cost,
                    "memory_kib": status.kdf.memory_kib,
                    "parallelism": status.kdf.parallelism,
                },
                "recovery_key": recovery,
            }
        )
        return
    click.echo(f"Created vault at {status.location}")
    click.echo(f"Fingerprint:  {status.fingerprint}")
    click.echo(f"Key derivation: {status.kdf} ({elapsed:.1f} s including calibration)")
    click.echo("")
    click.echo("Recovery key (shown only now; write it down and keep it offline).")
    click.echo("It opens the vault if the passphrase is lost: exvault recover")
    click.echo("")
    click.echo(f"    {recovery}")


@click.command()
@vault_option
@bare_passphrase_file_option
@click.option(
    "--recalibrate", is_flag=True, help="Calibrate Argon2id anew on this machine for the new slot."
)
@click.option(
    "--rekey",
    is_flag=True,
    help="Also replace the vault's root keys (new recovery key and client tokens).",
)
@click.option(
    "--tokens-dir",
    metavar="DIR",
    type=click.Path(file_okay=False),
    default=None,
    help="With --rekey: write each client's new token to DIR/NAME.token (0600).",
)
@allow_weak_passphrase_option
@click.option("--insecure-test-kdf", is_flag=True, hidden=True)
def passwd(
    vault_location: str | None,
    passphrase_file: str | None,
    recalibrate: bool,
    rekey: bool,
    tokens_dir: str | None,
    allow_weak: bool,
    insecure_test_kdf: bool,
) -> None:
    """Change the vault passphrase.

    Unlocks with the current passphrase (prompt or --passphrase-file), then asks for
    the new one twice (or reads two stdin lines); a weak one (zxcvbn score below 3 of
    4) is refused unless --allow-weak-passphrase. Only the keyslot is rewritten;
    no credential is re-encrypted. The old passphrase stops working. The new slot
    keeps the Argon2id parameters of the slot just unlocked (never below RFC 9106's
    minimum: those are recalibrated).

    With --rekey, the vault also gets new root keys, in one transaction: every data
    key is re-wrapped and every record re-signed, old keyslots (and any old copy of
    one put back) stop opening it, and a new recovery key and a new token for each
    client not revoked are printed once (or the tokens written to --tokens-dir).
    """
    if tokens_dir is not None and not rekey:
        raise InvalidInput("--tokens-dir goes with --rekey")
    # The passphrase itself, never the agent: it proves who changes it. The agent
    # is told to lock the vault (its changed keyslot would lock it anyway).
    with open_admin(vault_location, passphrase_file, use_agent=False) as admin:
        lock_vault_id(admin.vault_id)
        if tokens_dir is not None:
            # Before anything changes: the tokens are shown once, so they must fit.
            _check_tokens_dir(Path(tokens_dir), [c.name for c in admin.clients()])
        new = prompts.new_passphrase(None, "new passphrase", allow_weak)
        if not rekey:
            # Hidden, for the test suite only: keep a test vault's cheap parameters.
            params = admin.change_passphrase(
                new, recalibrate=recalibrate, insecure_test_kdf=insecure_test_kdf
            )
            click.echo(f"Passphrase changed ({params}).")
            return
        with output.TerminalProgress("Re-keying credentials") as progress:
            done = admin.rekey(
                new,
                recalibrate=recalibrate,
                insecure_test_kdf=insecure_test_kdf,
                progress=progress,
            )
        fingerprint = admin.fingerprint
    click.echo(f"Passphrase changed and root keys replaced ({done.kdf}).")
    click.echo(f"New fingerprint: {fingerprint}")
    click.echo("The old recovery key, the old passphrase and every old client token no")
    click.echo("longer open this vault.")
    click.echo("")
    click.echo("New recovery key (shown only now; write it down and keep it offline):")
    click.echo("")
    click.echo(f"    {done.recovery_key}")
    if not done.tokens:
        return
    click.echo("")
    if tokens_dir is not None:
        written = _write_tokens(Path(tokens_dir), done.tokens)
        for name in written:
            click.echo(f"New token of client {name}: {Path(tokens_dir) / (name + '.token')}")
        left = {n: t for n, t in done.tokens.items() if n not in written}
    else:
        left = done.tokens
    if left:
        click.echo("New client tokens, shown only now (give each bot its own, in a 0600 file):")
        for name, token in left.items():
            click.echo(f"    {name}: {token}")


def _check_tokens_dir(directory: Path, names: list[str]) -> None:
    """Refuse a --tokens-dir that is not a directory or already holds a token file."""
    if not directory.is_dir():
        raise InvalidInput(f"--tokens-dir {printable(str(directory))} is not a directory")
    for name in names:
        if (directory / f"{name}.token").exists():
            raise InvalidInput(
                f"{printable(str(directory / (name + '.token')))} exists; refusing to overwrite it"
            )


def _write_tokens(directory: Path, tokens: dict[str, str]) -> list[str]:
    """Write each token to DIRECTORY/NAME.token, created 0600; the names written.

    The rekey has committed by now: a file that cannot be written is reported and its
    token printed instead, rather than lost.
    """
    written = []
    for name, token in tokens.items():
        try:
            fd = os.open(directory / f"{name}.token", os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
            with os.fdopen(fd, "w") as out:
                out.write(token + "\n")
        except OSError as exc:
            click.echo(f"exvault: cannot write the token of {name}: {exc.strerror}", err=True)
            continue
        written.append(name)
    return written


@click.command()
@vault_option
@click.option(
    "--recovery-key-file",
    type=click.Path(dir_okay=False),
    default=None,
    help="Read the recovery key from FILE (mode 0600) instead of asking.",
)
@allow_weak_passphrase_option
@click.option("--insecure-test-kdf", is_flag=True, hidden=True)
def recover(
    vault_location: str | None,
    recovery_key_file: str | None,
    allow_weak: bool,
    insecure_test_kdf: bool,
) -> None:
    """Set a new passphrase with the recovery key.

    For when the passphrase is lost.
    Asks for the recovery key, then the new passphrase twice. Without a terminal,
    stdin gives the recovery key on line 1 (unless --recovery-key-file) and the new
    passphrase on the next two lines. A weak new passphrase is refused as by passwd.
    Argon2id is calibrated anew for the new slot
    (the old slot's stored parameters are not trusted) and the parameters printed.
    """
    open_inventory(vault_location).close()
    if recovery_key_file:
        key = read_secret_file(recovery_key_file, "recovery key file")
    elif prompts.stdin_is_terminal():
        key = prompts.ask_hidden("Recovery key", "recovery key")
    else:
        key = prompts.read_stdin_line("recovery key")
    with AdminVault.unlock_with_recovery_key(vault_location, key) as admin:
        lock_vault_id(admin.vault_id)
        new = prompts.new_passphrase(None, "new passphrase", allow_weak)
        click.echo("Calibrating Argon2id for the new passphrase...", err=True)
        # Hidden, for the test suite only: the cheap parameters init's flag gives.
        params = admin.change_passphrase(
            new,
            kdf=KdfParams(1, 64, 1) if insecure_test_kdf else None,
            insecure_test_kdf=insecure_test_kdf,
        )
    click.echo(f"The vault has a new passphrase ({params}).")
    click.echo("The recovery key stays valid; keep it safe.")


KDF_AS_STORED = "as stored: checked only when the passphrase opens the keyslot"
"""How keyless commands qualify the KDF parameters they show (read without a key)."""


@click.command()
@vault_option
@json_option
def info(vault_location: str | None, as_json: bool) -> None:
    """Show the vault's location, id, fingerprint, format and KDF.

    No passphrase is needed.
    The KDF parameters are shown as stored: without the passphrase nothing can
    authenticate them (``kdf_authenticated`` is false in --json).
    """
    with open_inventory(vault_location) as inv:
        status = inv.status()
    if as_json:
        output.emit_json(
            {
                "location": status.location,
                "vault_id": status.vault_id,
                "fingerprint": status.fingerprint,
                "format_version": status.format_version,
                "created_at": status.created_at,
                "kdf": {
                    "algorithm": "argon2id",
                    "time_cost": status.kdf.time_cost,
                    "memory_kib": status.kdf.memory_kib,
                    "parallelism": status.kdf.parallelism,
                },
                "kdf_authenticated": status.kdf_authenticated,
                "credentials": status.credentials,
            }
        )
        return
    output.fields(
        [
            ("Location", status.location),
            ("Vault id", status.vault_id),
            ("Fingerprint", status.fingerprint),
            ("Format", f"exvault vault format v{status.format_version}"),
            ("Created", status.created_at.isoformat()),
            ("Key derivation", f"{status.kdf} ({KDF_AS_STORED})"),
            ("Credentials", status.credentials),
        ]
    )
