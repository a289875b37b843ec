"""Database URLs: parsing what a user typed, a SQLite file's URL and path, and showing
a location without its password."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError

from vault.errors import InvalidInput, check_utf8, printable


def sqlite_url(path: Path) -> URL:
    """The SQLAlchemy URL of a SQLite vault file."""
    return URL.create("sqlite+pysqlite", database=str(path))


def sqlite_path(url: URL) -> Path | None:
    """The file of a SQLite URL, or None for another backend or an in-memory database."""
    if url.get_backend_name() != "sqlite" or not url.database or url.database == ":memory:":
        return None
    return Path(url.database)


def hide_password(text: str) -> str:
    """A database URL as typed, for a message: all between ``://`` and the last ``@``
    (user and password) and any query (libpq takes ``?password=`` too) as ``***``.

    For text SQLAlchemy cannot parse, so cannot render without its password
    (:func:`describe_location` does that for a parsed URL). Cutting at the last ``@``
    hides more than the password when a later part holds an ``@``, never less.
    """
    scheme, separator, rest = text.partition("://")
    if not separator:
        return text
    if "@" in rest:
        rest = "***@" + rest.rpartition("@")[2]
    if "?" in rest:
        rest = rest.partition("?")[0] + "?***"
    return f"{scheme}://{rest}"


def describe_location(url: URL) -> str:
    """A vault location as exvault shows it: the file path, or the URL without its
    password and with any query as ``***`` (libpq takes ``?password=`` too). Raw: a
    message escapes it with :func:`~vault.errors.printable`."""
    if url.get_backend_name() == "sqlite" and url.database:
        return url.database
    shown = url.render_as_string(hide_password=True)
    return shown.partition("?")[0] + "?***" if url.query else shown


def _shown_url(text: str) -> str:
    # Whole, unlike other input (vault.errors.quoted cuts it): without its password a
    # URL is no more secret than a vault's path, which messages show whole, and a
    # cut one would not show what is wrong with it.
    return f'"{printable(hide_password(text))}"'


def malformed_url(text: str) -> InvalidInput:
    """The error for a database URL that cannot be used as typed (shown without its
    password)."""
    return InvalidInput(
        f"malformed database URL {_shown_url(text)} (expected e.g. "
        "postgresql+psycopg://user@host/db or sqlite:////path/to/vault.db)"
    )


def parse_url(url: URL | str) -> URL:
    """``url`` as a SQLAlchemy URL.

    :raises InvalidInput: when it is malformed (a port that is not a number, a bracket
        left open) or not UTF-8 text; the message never shows a password.
    """
    if isinstance(url, URL):
        return url
    check_utf8(url, f"the database URL {_shown_url(url)}")
    try:
        return make_url(url)
    except (ArgumentError, ValueError):  # make_url reads the port with int()
        raise malformed_url(url) from None


__all__ = [
    "describe_location",
    "hide_password",
    "malformed_url",
    "parse_url",
    "sqlite_path",
    "sqlite_url",
]
