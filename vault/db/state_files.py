"""Private files of the user's state directory (``$XDG_STATE_HOME/exvault``): read
only when private to this user, written atomically.

Files there only save time (the verified reads of ``check``, the signed log's verified
prefix): one that is not private is ignored, and a failure to write one is no error.
"""

from __future__ import annotations

import contextlib
import os
import stat
from pathlib import Path


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


def write_private(path: Path, data: bytes) -> bool:
    """Replace ``path`` with ``data`` atomically (a temporary file, then
    :func:`os.replace`), mode 0600, creating its directory with mode 0700.

    :returns: False when it could not be written (the error is ignored: the file only
        saves time; a temporary file left half-written is removed).
    """
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    try:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except OSError:
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)
        return False
    return True


__all__ = ["private_bytes", "write_private"]
