"""``exvault render``: fill a configuration template with secrets, for programs that
read their keys only from a file."""

from __future__ import annotations

from pathlib import Path

import click

from vault.errors import printable
from vault.ops import render as rendering
from vault.ops.text_file import read_text

from . import output
from .options import passphrase_file_option, vault_option
from .reading import read_credentials


@click.command()
@click.argument("template", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--out",
    "out",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="Where to write the filled file: a new file on tmpfs, or a FIFO (mode 0600).",
)
@click.option(
    "--allow-disk",
    is_flag=True,
    help="Also write to persistent storage, where the secrets outlive the program.",
)
@click.option("--overwrite", is_flag=True, help="Replace an existing output file.")
@vault_option
@passphrase_file_option
def render(
    template: Path,
    out: Path,
    allow_disk: bool,
    overwrite: bool,
    vault_location: str | None,
    passphrase_file: str | None,
) -> None:
    """Fill a template's secret references into a file on tmpfs.

    Writes TEMPLATE to --out with every {{ exvault://NAME/FIELD }} replaced by that
    field of the credential NAME.

    With a client token in the environment (EXVAULT_TOKEN_FILE, EXVAULT_TOKEN or
    systemd's credentials directory) the credentials are read as that client, else as
    the owner. The output must be on a memory file system (tmpfs or ramfs, such as
    $XDG_RUNTIME_DIR or /dev/shm) or a FIFO, unless --allow-disk; a new file is
    created with mode 0600 before anything is written to it. Every reference is
    resolved first: a missing credential or field writes nothing.

    Example: exvault render config.tmpl.json --out $XDG_RUNTIME_DIR/freqtrade.json
    """
    text = read_text(template, "template", rendering.MAX_TEMPLATE_BYTES)
    names = rendering.credential_names(text)
    # Refused before any passphrase is typed or any secret read.
    rendering.check_output(out, allow_disk=allow_disk, overwrite=overwrite)
    loaded = read_credentials(vault_location, passphrase_file, names) if names else []
    filled = rendering.fill(text, {c.name: c for c in loaded})
    rendering.write_output(out, filled, allow_disk=allow_disk, overwrite=overwrite)
    click.echo(f"Wrote {printable(out)} ({output.plural(len(names), 'credential')}).", err=True)
