"""The user's state directory (``$XDG_STATE_HOME/exvault``), and its private files:
read only when private to this user, written atomically.

Files there only save time (the verified reads of ``check``, the signed log's verified
prefix): one that is not private is ignored, and a failure to write one is no error.
"""

from __future__ import annotations

import contextlib
import os
import stat
from pathlib import Path


def state_directory() -> Path | None:
    """Where exvault keeps what it remembers about vaults on this machine: the audit
    witness, ``check``'s verified reads, the signed log's checkpoint.

    ``$XDG_STATE_HOME/exvault``, else ``~/.local/state/exvault``. A relative
    ``$XDG_STATE_HOME`` is ignored, as the XDG Base Directory specification says: it
    would name another directory in every working directory. So is a relative
    ``$HOME``, for the same reason.

    :returns: None when there is none: no absolute ``$XDG_STATE_HOME`` and no home
        directory (a container's uid without a passwd entry, no ``$HOME``, a relative
        one). Callers then neither read nor write what they would have kept there.
    """
    base = os.environ.get("XDG_STATE_HOME", "")
    if os.path.isabs(base):
        return Path(base) / "exvault"
    try:
        home = Path.home()
    except (RuntimeError, KeyError):  # pathlib: "Could not determine home directory"
        return None
    return home / ".local" / "state" / "exvault" if home.is_absolute() else None


def state_file(name: str) -> Path | None:
    """The file ``name`` in the state directory; None when there is none
    (:func:`state_directory`)."""
    directory = state_directory()
    return None if directory is None else directory / name


def read_state(name: str) -> bytes | None:
    """:func:`private_bytes` of the state file ``name``; None without a state
    directory (never raises)."""
    path = state_file(name)
    return None if path is None else private_bytes(path)


def write_state(name: str, data: bytes, *, durable: bool = False) -> bool:
    """:func:`write_private` of the state file ``name``.

    :returns: False when it could not be written, or there is no state directory.
    """
    path = state_file(name)
    return path is not None and write_private(path, data, durable=durable)


def private_bytes(path: Path) -> bytes | None:
    """The contents of ``path`` when it is a regular file of this user's with mode
    0600 in a directory of this user's with mode 0700; None otherwise (never raises
    for a file missing, unreadable, a symbolic link, a FIFO or of other modes)."""
    uid = os.geteuid()
    try:
        parent = path.parent.stat()
        if parent.st_uid != uid or stat.S_IMODE(parent.st_mode) != 0o700:
            return None
        # Non-blocking: a FIFO put in its place must not hang a cron job.
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError:
        return None
    with os.fdopen(fd, "rb") as f:
        info = os.fstat(f.fileno())
        if (
            not stat.S_ISREG(info.st_mode)
            or info.st_uid != uid
            or stat.S_IMODE(info.st_mode) != 0o600
        ):
            return None
        try:
            return f.read()
        except OSError:
            return None


def write_private(path: Path, data: bytes, *, durable: bool = False) -> bool:
    """Replace ``path`` with ``data`` atomically (a temporary file, then
    :func:`os.replace`), mode 0600, creating its directory with mode 0700.

    ``durable`` flushes the data to disk before the rename, and the directory after
    it (the rename is on disk only then), for a file whose loss in a crash would lose
    evidence (the audit witness), not only time.

    :returns: False when it could not be written (the error is not raised: each
        caller says what a file left unwritten costs; a temporary file left
        half-written is removed).
    """
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    try:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            if durable:
                f.flush()
                os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError:
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)
        return False
    if durable:
        # The file is in place already: a file system that cannot sync a directory
        # (some refuse) leaves it there, as a write without ``durable`` would.
        with contextlib.suppress(OSError):
            directory = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY)
            try:
                os.fsync(directory)
            finally:
                os.close(directory)
    return True


__all__ = [
    "private_bytes",
    "read_state",
    "state_directory",
    "state_file",
    "write_private",
    "write_state",
]
