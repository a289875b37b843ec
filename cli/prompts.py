"""Asking for passphrases and secret fields: hidden prompts, files and stdin.

A secret never comes from argv: it is typed at a hidden prompt, read from a 0600
file named on the command line (``--passphrase-file``), or read from stdin.
"""

from __future__ import annotations

import os
import sys
from typing import Any

import click

from vault.errors import InvalidInput, decode_utf8
from vault.runtime.secretfile import read_secret_file

ENV_PASSPHRASE_FILE = "EXVAULT_PASSPHRASE_FILE"  # noqa: S105 (a variable name)


def stdin_is_terminal() -> bool:
    """True when a person can answer prompts (tests patch this to drive prompts)."""
    return sys.stdin.isatty()


def read_stdin_line(what: str) -> str:
    """One line of stdin, without its newline.

    Read as bytes and decoded as UTF-8 whatever the locale, like a secret file: the
    text layer would raise a bare UnicodeDecodeError on other bytes, or under a C
    locale let them through as surrogates that fail later. Reading the buffer is safe
    while nothing before has read stdin through the text layer, which reads ahead; no
    command does (confirmations come after the last line read here).

    :raises InvalidInput: at end of input, or for a line that is not UTF-8.
    """
    line = sys.stdin.buffer.readline()
    if not line:
        raise InvalidInput(f"expected the {what} on standard input, found end of input")
    return decode_utf8(line, f"the {what} on standard input").rstrip("\r\n")


def ask_hidden(prompt: str, what: str, **options: Any) -> str:
    """An answer typed at a hidden prompt on the terminal (``options`` go to click).

    :raises InvalidInput: when the terminal sends bytes that are not UTF-8, which the
        text layer of a UTF-8 locale meets with a bare UnicodeDecodeError.
    """
    try:
        value: str = click.prompt(prompt, hide_input=True, err=True, **options)
    except UnicodeDecodeError:
        raise InvalidInput(f"the {what} typed is not valid UTF-8 text") from None
    return value


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
    return ask_hidden(prompt, "passphrase")


def new_passphrase(passphrase_file: str | None = None, what: str = "new passphrase") -> str:
    """A new passphrase: from a file, or typed twice (prompt, or two stdin lines).

    :raises InvalidInput: when the two entries differ or are empty.
    """
    if passphrase_file:
        return read_secret_file(passphrase_file, "passphrase file")
    if stdin_is_terminal():
        first = ask_hidden(f"Enter {what}", what)
        second = ask_hidden(f"Repeat {what}", what)
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
        first = ask_hidden(label, label, default="", show_default=False)
    if not first.startswith("-----BEGIN") or "-----END" in first:
        return first
    lines = [first]
    while True:
        line = (
            read_stdin_line(f"{label} (PEM continued)")
            if not stdin_is_terminal()
            else ask_hidden("", label, prompt_suffix="", default="", show_default=False)
        )
        lines.append(line)
        if line.startswith("-----END"):
            return "\n".join(lines) + "\n"
