"""Reading a secret (passphrase, token, recovery key) from a file that only its owner reads."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from vault.errors import InsecureFile, InvalidInput, decode_utf8, printable

MAX_SECRET_FILE_BYTES = 64 * 1024


def read_secret_file(path: str | os.PathLike[str], what: str = "passphrase file") -> str:
    """The first line of ``path``, refused unless no one but the owner can read it.

    Like ssh with a private key: a group- or world-readable file may already have
    leaked, so we stop rather than use it. The trailing newline is stripped; the
    rest of the line is kept as is (spaces may be part of a passphrase).

    :raises InsecureFile: when the mode lets the group or others read or write it.
    :raises InvalidInput: when it cannot be read, is not a regular file (a FIFO, a
        device, a directory), is empty, too large or not UTF-8.
    """
    p = Path(path)
    shown = printable(p)  # a path is no secret, but may hold a control character
    try:
        # O_NONBLOCK: opening a FIFO for reading would otherwise wait for a writer
        # forever (and a device may block too); the descriptor is checked to be a
        # regular file before anything is read, and reads of a regular file ignore it.
        fd = os.open(p, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOCTTY", 0))
    except OSError as exc:
        raise InvalidInput(f"cannot read {what} {shown}: {exc.strerror}") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise InvalidInput(f"{what} {shown} is not a regular file")
        mode = stat.S_IMODE(info.st_mode)
        if mode & 0o077:
            raise InsecureFile(
                f"{what} {shown} has mode {mode:04o}; it must be readable by its owner only "
                f"(chmod 600 {shown})"
            )
        data = os.read(fd, MAX_SECRET_FILE_BYTES + 1)
    finally:
        os.close(fd)
    if len(data) > MAX_SECRET_FILE_BYTES:
        raise InvalidInput(f"{what} {shown} is too large")
    line = decode_utf8(data, f"{what} {shown}").split("\n", 1)[0].removesuffix("\r")
    if not line:
        raise InvalidInput(f"{what} {shown} is empty")
    return line
