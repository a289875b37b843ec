"""The one exception hierarchy of exvault.

Every failure the library means to report is a :class:`VaultError`. The CLI maps
each class to a one-line message and an exit code (see ``docs/cli.md``).

Messages never contain secret values: they name the field, the credential or the
file, never what was typed. Authentication failures are deliberately vague, the way
pyca/cryptography's ``InvalidTag`` is: one :class:`IntegrityError` with one message,
whichever byte or passphrase was wrong, so that the error is no oracle.

User input reaches a message only through :func:`quoted` (cut when long) and paths
through :func:`printable` (whole): both escape control characters, so a message is
always one printable line. Text that is not UTF-8 is refused where it comes in
(:func:`check_utf8`, :func:`decode_utf8`), with the position, never the text.
"""

from __future__ import annotations

QUOTE_LIMIT = 32


def printable(value: object) -> str:
    """``value`` (a path, a message) whole, with every character that is not printable
    written as its Python escape: ``\\r``, ``\\x1b``, ``\\udc80``.

    A control character from user input must not reach a terminal, where a line break
    forges a second line and an escape sequence drives the terminal; a lone surrogate
    (a byte that was not UTF-8) cannot even be written to a UTF-8 stream. Printable text
    comes back unchanged, so escaping twice is harmless.
    """
    text = value if isinstance(value, str) else str(value)
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode() for c in text)


def quoted(value: object) -> str:
    """User input as an error message may show it: whole and in double quotes when it is
    short; otherwise only its first 6 characters and its length. Either way a character
    that is not printable is escaped (:func:`printable`).

    A secret pasted into the wrong place (an API secret typed as a credential name, a
    token given as an IP) must not come back whole in an error message, a terminal's
    scrollback or a CI log; names are short, secrets are long.
    """
    text = value if isinstance(value, str) else repr(value)
    if len(text) <= QUOTE_LIMIT:
        return f'"{printable(text)}"'
    return f'"{printable(text[:6])}..." ({len(text)} characters)'


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


class AgentRefused(AccessDenied):
    """The unlock agent refused a request (the vault is not unlocked there, or its
    passphrase keyslot or header changed, which locks it) or stopped answering."""


class ExchangeError(VaultError):
    """An exchange refused a call about keys, or answered what exvault cannot use.

    The message names the exchange, the call and the exchange's error code; never the
    exception text of the HTTP library (it holds signed URLs and headers).
    """


class ExchangeUnreachable(ExchangeError):
    """An exchange could not be reached or answered 5xx, or the call timed out: whether
    it did what was asked is unknown (a create may have created the key)."""


def check_utf8(text: str, what: str) -> str:
    """``text`` when it can be written as UTF-8.

    Python carries bytes that are not UTF-8 (in argv, the environment, a file name) as
    lone surrogates, and a JSON ``"\\ud800"`` escape decodes to one; SQLite, the
    canonical encoding and a UTF-8 terminal all refuse them. The message says where,
    never what: ``text`` may be a secret.

    :raises InvalidInput: when ``text`` holds a lone surrogate.
    """
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        where = f"at character {exc.start + 1}"
        raise InvalidInput(f"{what} is not valid UTF-8 text ({where})") from None
    return text


def decode_utf8(data: bytes, what: str) -> str:
    """``data`` decoded as UTF-8, strictly (no replacement characters, no surrogates).

    :raises InvalidInput: when ``data`` is not UTF-8; the message says where, never what.
    """
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidInput(f"{what} is not valid UTF-8 text (at byte {exc.start + 1})") from None


class MalformedAnswer(VaultError):
    """An exchange answered in a shape exvault cannot read (not JSON, a field missing
    or of the wrong type, too large). The message names the field, never a value."""


class StoreError(VaultError):
    """The database failed (disk full, I/O error, lock held too long)."""


def first_line(exc: BaseException) -> str:
    """A database driver's exception message, first line only (the lines after it may
    quote SQL text or values); the exception's type name when it has no message."""
    detail = str(exc)
    return detail.splitlines()[0] if detail else type(exc).__name__


def database_error(detail: str) -> VaultError:
    """The error to raise for a database driver's one-line message ``detail``.

    One reading of the drivers' words for the SQLAlchemy store and for the client's
    direct SQLite path, so that a failure means the same whichever path met it.
    ``detail`` must hold no SQL text or bound value (the caller cuts it to the driver's
    first line).
    """
    if "Could not decode" in detail:
        # A BLOB rewritten as TEXT; sqlite3's message would quote its bytes.
        return IntegrityError("damaged vault: a column holds data of the wrong type")
    # SQLite's words for a damaged file: the vault is damaged, not the database server
    # unhappy, and the user should hear the same as for a bad signature.
    if "malformed" in detail or "not a database" in detail:
        return IntegrityError(f"damaged vault: {detail}")
    if "permission denied" in detail:
        return AccessDenied(f"the database refused: {detail} (is this a read-only database role?)")
    if "duplicate key" in detail or "UNIQUE constraint" in detail:
        return Conflict("another writer changed the same record at the same moment; try again")
    if "lock timeout" in detail:
        # PostgreSQL's lock_timeout: a session held the vault's write lock too long.
        return Conflict("another session has held the vault's write lock too long; try again")
    if "does not follow the chain head" in detail:
        # The audit trigger: an entry was appended after another writer's (or the
        # chain's head was moved meanwhile).
        return Conflict("another writer appended to the audit log at the same moment; try again")
    return StoreError(f"database error: {detail}")


__all__ = [
    "QUOTE_LIMIT",
    "AccessDenied",
    "AlreadyExists",
    "Conflict",
    "ExchangeError",
    "ExchangeUnreachable",
    "InsecureFile",
    "IntegrityError",
    "InvalidInput",
    "InvalidToken",
    "MalformedAnswer",
    "NotFound",
    "StoreError",
    "TokenExpired",
    "UnsupportedFormat",
    "VaultError",
    "VaultUnavailable",
    "check_utf8",
    "database_error",
    "decode_utf8",
    "first_line",
    "printable",
    "quoted",
]
