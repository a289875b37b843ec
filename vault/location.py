"""Where a vault lives: a SQLite file path or any SQLAlchemy URL."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError

from vault.errors import InvalidInput
from vault.store import sqlite_url

ENV_PATH = "EXVAULT_PATH"
ENV_URL = "EXVAULT_URL"


def default_data_dir() -> Path:
    """The per-user data directory exvault keeps its vault in.

    Linux and BSD: ``$XDG_DATA_HOME/exvault`` (``~/.local/share/exvault``);
    macOS: ``~/Library/Application Support/exvault``; Windows: ``%APPDATA%\\exvault``.
    """
    if sys.platform == "darwin":
        return Path.home() / "Library" / "Application Support" / "exvault"
    if sys.platform == "win32":
        return Path(os.environ.get("APPDATA", Path.home() / "AppData" / "Roaming")) / "exvault"
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "exvault"


def default_vault_path() -> Path:
    """The default vault file: ``vault.db`` in :func:`default_data_dir`."""
    return default_data_dir() / "vault.db"


def resolve(location: str | os.PathLike[str] | None = None) -> URL:
    """The database URL of a vault.

    ``location`` is a file path or a URL (anything with ``://``). Without one:
    ``$EXVAULT_URL``, then ``$EXVAULT_PATH``, then the default file.

    :raises InvalidInput: for a malformed URL.
    """
    if location is None:
        location = os.environ.get(ENV_URL) or os.environ.get(ENV_PATH) or None
    if location is None:
        return sqlite_url(default_vault_path())
    text = os.fspath(location)
    if "://" in text:
        try:
            return make_url(text)
        except ArgumentError:
            raise InvalidInput(
                "malformed database URL (expected e.g. postgresql+psycopg://host/db)"
            ) from None
    return sqlite_url(Path(text).expanduser().absolute())


def describe(url: URL) -> str:
    """A vault location for messages: the file path, or the URL without its password."""
    if url.get_backend_name() == "sqlite" and url.database:
        return url.database
    return url.render_as_string(hide_password=True)
