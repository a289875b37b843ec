"""Where a vault lives: a SQLite file path or any SQLAlchemy URL."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from sqlalchemy.engine import URL

from vault.errors import InvalidInput, check_utf8, printable
from vault.store import parse_url, sqlite_url

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

    :raises InvalidInput: for a malformed URL, a path that is not UTF-8 text (SQLite
        and every message take text), or ``~user`` of no such user.
    """
    if location is None:
        location = os.environ.get(ENV_URL) or os.environ.get(ENV_PATH) or None
    if location is None:
        return sqlite_url(default_vault_path())
    text = os.fspath(location)
    if "://" in text:
        return parse_url(text)
    check_utf8(text, f"the vault path {printable(text)}")
    try:
        path = Path(text).expanduser()
    except RuntimeError:  # ~name of no such user, or ~ with no home directory
        user = text.split("/", 1)[0]
        raise InvalidInput(
            f"cannot find the home directory of {printable(user)} in the vault path "
            f"{printable(text)}"
        ) from None
    return sqlite_url(path.absolute())
