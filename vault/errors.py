"""The one exception hierarchy of exvault.

Every failure the library means to report is a :class:`VaultError`. The CLI maps
each class to a one-line message and an exit code (see ``docs/cli.md``).

Messages never contain secret values: they name the field, the credential or the
file, never what was typed. Authentication failures are deliberately vague, the way
pyca/cryptography's ``InvalidTag`` is: one :class:`IntegrityError` with one message,
whichever byte or passphrase was wrong, so that the error is no oracle.
"""

from __future__ import annotations

QUOTE_LIMIT = 32


def quoted(value: object) -> str:
    """User input as an error message may show it: whole and in double quotes when it is
    short and printable; otherwise only its first 6 characters and its length.

    A secret pasted into the wrong place (an API secret typed as a credential name, a
    token given as an IP) must not come back whole in an error message, a terminal's
    scrollback or a CI log; names are short, secrets are long.
    """
    text = value if isinstance(value, str) else repr(value)
    if len(text) <= QUOTE_LIMIT and text.isprintable():
        return f'"{text}"'
    return f'"{printable(text[:6])}..." ({len(text)} characters)'


def printable(text: str) -> str:
    """``text`` with each character a terminal would not print as such (an escape, a
    newline) shown as ``?``: for names read from a database someone may have edited."""
    return "".join(c if c.isprintable() else "?" for c in text)


class VaultError(Exception):
    """Base class of every error exvault raises on purpose."""


class IntegrityError(VaultError):
    """A passphrase, key, signature or ciphertext failed to authenticate.

    Raised alike for a wrong passphrase and for a damaged or tampered vault: the two
    cannot be told apart without handing an attacker an oracle.
    """

    def __init__(self, message: str = "wrong passphrase or damaged vault") -> None:
        super().__init__(message)


class InvalidInput(VaultError, ValueError):
    """Input from the user (a name, a field, an IP, a date, JSON) is malformed."""


class NotFound(VaultError):
    """A named credential, client or version does not exist."""


class AlreadyExists(VaultError):
    """A credential or client of that name exists already."""


class Conflict(VaultError):
    """The request clashes with the vault's state (e.g. a rotation is pending)."""


class VaultUnavailable(VaultError):
    """There is no vault at the given location, or it cannot be opened."""


class UnsupportedFormat(VaultError):
    """The vault uses a format version or parameters this exvault refuses to read."""


class InsecureFile(VaultError):
    """A file holding a secret (passphrase file, token file, vault) is readable by others."""


class AccessDenied(VaultError):
    """A client asked for something it was not granted, or is revoked."""


class TokenExpired(AccessDenied):
    """A client token is past its expiry."""


class InvalidToken(AccessDenied):
    """A client token is malformed or belongs to another vault."""


__all__ = [
    "QUOTE_LIMIT",
    "AccessDenied",
    "AlreadyExists",
    "Conflict",
    "InsecureFile",
    "IntegrityError",
    "InvalidInput",
    "InvalidToken",
    "NotFound",
    "TokenExpired",
    "UnsupportedFormat",
    "VaultError",
    "VaultUnavailable",
    "printable",
    "quoted",
]
