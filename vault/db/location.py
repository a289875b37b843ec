"""Where a vault lives: a SQLite file path or any SQLAlchemy URL."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from vault.errors import InvalidInput, check_utf8, printable

if TYPE_CHECKING:
    # SQLAlchemy loads only for a URL: a bot reading a vault file never imports it.
    from sqlalchemy.engine import URL

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


def _chosen(location: str | os.PathLike[str] | None) -> str | None:
    # The location given, else the environment's; None for the default file.
    if location is not None:
        return os.fspath(location)
    return os.environ.get(ENV_URL) or os.environ.get(ENV_PATH) or None


def file_path(location: str | os.PathLike[str] | None = None) -> Path | None:
    """The SQLite vault file ``location`` names (see :func:`resolve`), or None when it
    is a database URL.

    :raises InvalidInput: for a path that is not UTF-8 text (SQLite and every message
        take text), or ``~user`` of no such user.
    """
    text = _chosen(location)
    if text is None:
        return default_vault_path()
    if "://" in text:
        return None
    check_utf8(text, f"the vault path {printable(text)}")
    try:
        path = Path(text).expanduser()
    except RuntimeError:  # ~name of no such user, or ~ with no home directory
        user = text.split("/", 1)[0]
        raise InvalidInput(
            f"cannot find the home directory of {printable(user)} in the vault path "
            f"{printable(text)}"
        ) from None
    return path.absolute()


def resolve(location: str | os.PathLike[str] | None = None) -> URL:
    """The database URL of a vault.

    ``location`` is a file path or a URL (anything with ``://``). Without one:
    ``$EXVAULT_URL``, then ``$EXVAULT_PATH``, then the default file.

    :raises InvalidInput: for a malformed URL, a path that is not UTF-8 text, or
        ``~user`` of no such user.
    """
    from vault.db.url import parse_url, sqlite_url

    path = file_path(location)
    if path is not None:
        return sqlite_url(path)
    return parse_url(_chosen(location) or "")
