"""Asking for passphrases and secret fields: hidden prompts, files and stdin.

A secret never comes from argv: it is typed at a hidden prompt, read from a 0600
file named on the command line (``--passphrase-file``), or read from stdin.
"""

from __future__ import annotations

import os
import sys

import click

from vault.errors import InvalidInput
from vault.secretfile import read_secret_file

ENV_PASSPHRASE_FILE = "EXVAULT_PASSPHRASE_FILE"  # noqa: S105 (a variable name)


def stdin_is_terminal() -> bool:
    """True when a person can answer prompts (tests patch this to drive prompts)."""
    return sys.stdin.isatty()


def read_stdin_line(what: str) -> str:
    """One line of stdin, without its newline.

    :raises InvalidInput: at end of input.
    """
    line = sys.stdin.readline()
    if not line:
        raise InvalidInput(f"expected the {what} on standard input, found end of input")
    return line.rstrip("\r\n")


def passphrase(
    passphrase_file: str | None,
    prompt: str = "Vault passphrase",
    option: str = "--passphrase-file",
    from_environment: bool = True,
) -> str:
    """The passphrase that unlocks the vault: from the file, else a hidden prompt.

    :raises InvalidInput: when there is neither a file nor a terminal to ask.
    """
    path = passphrase_file or (os.environ.get(ENV_PASSPHRASE_FILE) if from_environment else None)
    if path:
        return read_secret_file(path, "passphrase file")
    if not stdin_is_terminal():
        also = f" or set {ENV_PASSPHRASE_FILE}" if from_environment else ""
        raise InvalidInput(
            f"no terminal to ask for the passphrase; use {option} FILE (mode 0600){also}"
        )
    value: str = click.prompt(prompt, hide_input=True, err=True)
    return value


def new_passphrase(passphrase_file: str | None = None, what: str = "new passphrase") -> str:
    """A new passphrase: from a file, or typed twice (prompt, or two stdin lines).

    :raises InvalidInput: when the two entries differ or are empty.
    """
    if passphrase_file:
        return read_secret_file(passphrase_file, "passphrase file")
    if stdin_is_terminal():
        first: str = click.prompt(f"Enter {what}", hide_input=True, err=True)
        second: str = click.prompt(f"Repeat {what}", hide_input=True, err=True)
    else:
        first = read_stdin_line(what)
        second = read_stdin_line(f"{what} (repeated)")
    if not first:
        raise InvalidInput(f"the {what} must not be empty")
    if first != second:
        raise InvalidInput(f"the two entries of the {what} differ")
    return first


FIELD_LABELS = {
    "api_key": "API key",
    "secret": "API secret",
    "passphrase": "API passphrase",
    "uid": "UID",
    "private_key": "Private key",
}


def secret_field(name: str) -> str:
    """One secret field at a hidden prompt (or a stdin line without a terminal).

    A PEM key pasted at the prompt arrives line by line: when the first line opens a
    PEM block, we keep reading hidden lines until its END line.
    """
    label = FIELD_LABELS.get(name, name)
    if not stdin_is_terminal():
        first = read_stdin_line(label)
    else:
        first = click.prompt(label, hide_input=True, err=True, default="", show_default=False)
    if not first.startswith("-----BEGIN") or "-----END" in first:
        return first
    lines = [first]
    while True:
        line = (
            read_stdin_line(f"{label} (PEM continued)")
            if not stdin_is_terminal()
            else click.prompt(
                "", prompt_suffix="", hide_input=True, err=True, default="", show_default=False
            )
        )
        lines.append(line)
        if line.startswith("-----END"):
            return "\n".join(lines) + "\n"
