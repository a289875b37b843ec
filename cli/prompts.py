"""Asking for passphrases and secret fields: hidden prompts, files and stdin.

A secret never comes from argv: it is typed at a hidden prompt, read from a 0600
file named on the command line (``--passphrase-file``), or read from stdin.

Hidden prompts read the terminal itself (/dev/tty, through getpass), not stdin: so
``exvault add NAME --from-json - < keys.json`` typed in a terminal still asks for the
vault passphrase there, while stdin carries the secret fields.
"""

from __future__ import annotations

import getpass
import os
import sys
import warnings
from collections.abc import Callable
from typing import Any

import click

from vault.errors import InvalidInput, decode_utf8
from vault.runtime.secretfile import read_secret_file

ENV_PASSPHRASE_FILE = "EXVAULT_PASSPHRASE_FILE"  # noqa: S105 (a variable name)


TERMINAL_DEVICE = "/dev/tty"
"""The process's controlling terminal, where getpass asks whatever stdin is."""


def stdin_is_terminal() -> bool:
    """True when stdin is a terminal (tests patch this to drive prompts).

    What a script may pipe instead (a new passphrase twice, secret fields, the recovery
    key) is then asked at hidden prompts rather than read as lines of stdin.
    """
    return sys.stdin.isatty()


def controlling_terminal_opens() -> bool:
    """True when this process has a controlling terminal: /dev/tty opens.

    Tests patch this to False, so that they behave alike run from a terminal or not.
    """
    try:
        fd = os.open(TERMINAL_DEVICE, os.O_RDWR | os.O_NOCTTY)
    except OSError:  # ENXIO: no controlling terminal (cron, systemd, CI)
        return False
    os.close(fd)
    return True


def terminal_available() -> bool:
    """True when a person can answer a hidden prompt: stdin or /dev/tty is a terminal."""
    return stdin_is_terminal() or controlling_terminal_opens()


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

    click writes the prompt on stderr and reads the answer with getpass, from /dev/tty
    (or stdin when that is the terminal), never echoed.

    :raises InvalidInput: when the terminal sends bytes that are not UTF-8, which the
        text layer of a UTF-8 locale meets with a bare UnicodeDecodeError; or when
        there is no terminal after all, where getpass would read stdin with echo on.
    """
    try:
        with warnings.catch_warnings():
            # getpass falls back to an echoing read of stdin with only a warning: a
            # secret must not be shown, so that warning stops the read instead.
            warnings.simplefilter("error", getpass.GetPassWarning)
            value: str = click.prompt(prompt, hide_input=True, err=True, **options)
    except UnicodeDecodeError:
        raise InvalidInput(f"the {what} typed is not valid UTF-8 text") from None
    except getpass.GetPassWarning:
        raise InvalidInput(f"no terminal to ask for the {what}") from None
    return value


def passphrase_file_path(passphrase_file: str | None, from_environment: bool = True) -> str | None:
    """The file the passphrase is read from: the option's, else $EXVAULT_PASSPHRASE_FILE
    (when ``from_environment``); None when it is to be typed."""
    return passphrase_file or (os.environ.get(ENV_PASSPHRASE_FILE) if from_environment else None)


def passphrase(
    passphrase_file: str | None,
    prompt: str = "Vault passphrase",
    option: str = "--passphrase-file",
    from_environment: bool = True,
) -> str:
    """The passphrase that unlocks the vault: from the file, else a hidden prompt on the
    terminal, even when stdin is a file or a pipe (it may carry secret fields).

    :raises InvalidInput: when there is neither a file nor a terminal to ask.
    """
    path = passphrase_file_path(passphrase_file, from_environment)
    if path:
        return read_secret_file(path, "passphrase file")
    if not terminal_available():
        also = f" or set {ENV_PASSPHRASE_FILE}" if from_environment else ""
        raise InvalidInput(
            f"no terminal to ask for the passphrase; use {option} FILE (mode 0600){also}"
        )
    return ask_hidden(prompt, "passphrase")


NEW_PASSPHRASE_ATTEMPTS = 3
"""How many times a new passphrase may be typed at a terminal (as the one that unlocks)."""


def new_passphrase(
    passphrase_file: str | None = None, what: str = "new passphrase", allow_weak: bool = False
) -> str:
    """A new passphrase: from a file, or typed twice (prompt, or two stdin lines),
    refused when weak (:func:`refuse_weak_passphrase`) unless ``allow_weak``.

    At a terminal a weak first entry is refused before the repeat is asked for, and a
    weak, empty or differing entry is asked again, up to :data:`NEW_PASSPHRASE_ATTEMPTS`
    times in all.

    :raises InvalidInput: when the two entries differ, or it is empty or weak (at a
        terminal: the last attempt's reason), or zxcvbn is not installed to judge it.
    """
    if not allow_weak:
        strength_estimator(what)  # a missing zxcvbn is said once, before anything is typed
    if passphrase_file:
        new = read_secret_file(passphrase_file, "passphrase file")
        return _accepted(new, new, what, allow_weak)
    if not stdin_is_terminal():
        first = read_stdin_line(what)
        return _accepted(first, read_stdin_line(f"{what} (repeated)"), what, allow_weak)
    attempts_left = NEW_PASSPHRASE_ATTEMPTS
    while True:
        attempts_left -= 1
        first = ask_hidden(f"Enter {what}", what)
        refusal = _refusal(first, None, what, allow_weak)
        if refusal is None:
            # Judged already: the repeat is only compared.
            refusal = _refusal(first, ask_hidden(f"Repeat {what}", what), what, True)
            if refusal is None:
                return first
        if not attempts_left:
            raise refusal
        click.echo(f"{refusal}; try again.", err=True)


def _accepted(first: str, second: str, what: str, allow_weak: bool) -> str:
    """``first``, once :func:`_refusal` finds nothing to refuse.

    :raises InvalidInput: what it found.
    """
    refusal = _refusal(first, second, what, allow_weak)
    if refusal is not None:
        raise refusal
    return first


def _refusal(first: str, second: str | None, what: str, allow_weak: bool) -> InvalidInput | None:
    """Why a new passphrase typed as ``first`` then ``second`` (None: the repeat is not
    typed yet) is refused: empty, the two differ, or (unless ``allow_weak``) weak.
    None when it is not."""
    if not first:
        return InvalidInput(f"the {what} must not be empty")
    if second is not None and first != second:
        return InvalidInput(f"the two entries of the {what} differ")
    if not allow_weak:
        try:
            refuse_weak_passphrase(first, what)
        except InvalidInput as weak:
            return weak
    return None


MIN_STRENGTH = 3
"""The lowest zxcvbn score (0 to 4) a new passphrase may have without
``--allow-weak-passphrase``: 3 is "safely unguessable" in zxcvbn's own words."""

STRENGTH_EXTRA = "strength"
"""The extra of exchange-vault that installs zxcvbn."""

ALLOW_WEAK_OPTION = "--allow-weak-passphrase"


def strength_estimator(what: str = "vault passphrase") -> Callable[..., dict[str, Any]]:
    """zxcvbn's estimator.

    :raises InvalidInput: when zxcvbn is not installed: a check that cannot run
        refuses rather than let any passphrase through.
    """
    try:
        # zxcvbn is an optional extra with large word lists, needed only by the
        # commands that set a passphrase; the other commands must run without it.
        from zxcvbn import zxcvbn
    except ImportError:
        raise InvalidInput(
            f"estimating the {what}'s strength needs zxcvbn: install exvault with its "
            f"{STRENGTH_EXTRA} extra, pip install '.[{STRENGTH_EXTRA}]' in its source tree "
            f"(or add {ALLOW_WEAK_OPTION})"
        ) from None
    estimator: Callable[..., dict[str, Any]] = zxcvbn
    return estimator


def refuse_weak_passphrase(new: str, what: str = "passphrase") -> None:
    """Refuse a new passphrase that zxcvbn scores below :data:`MIN_STRENGTH`, saying why.

    :raises InvalidInput: for a weak passphrase (with zxcvbn's warning and suggestions,
        which never quote it), or when zxcvbn is not installed (:func:`strength_estimator`).
    """
    zxcvbn = strength_estimator(what)
    # zxcvbn refuses more than 72 characters (its matching grows fast with length):
    # the start of a long passphrase is scored, which can only underrate it.
    estimate = zxcvbn(new[:72], user_inputs=["exvault", "vault", "exchange"])
    score = int(estimate["score"])
    if score >= MIN_STRENGTH:
        return
    feedback = estimate["feedback"]
    reasons = " ".join(s for s in [feedback["warning"], *feedback["suggestions"]] if s)
    raise InvalidInput(
        f"the {what} is too weak (strength {score} of 4, at least {MIN_STRENGTH} needed"
        + (f": {reasons.rstrip('.')}" if reasons else "")
        + f"); choose a stronger one, or add {ALLOW_WEAK_OPTION}"
    )


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
