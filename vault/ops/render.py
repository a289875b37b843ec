"""``exvault render``: a configuration file filled with secrets, for programs that read
their keys only from a file.

A template holds references ``{{ exvault://NAME/FIELD }}`` (spaces inside the braces
optional), as 1Password's ``op inject`` does; each is replaced by that field of the
credential NAME. Everything is resolved before the output exists: a missing
credential or field, or a malformed reference, is an error and nothing is written.

The output is kept off persistent storage: a path on a memory file system (tmpfs,
ramfs: ``/run/user/UID``, ``/dev/shm``) or a FIFO is accepted, any other only with
``allow_disk``. A new file is created with ``O_CREAT | O_EXCL`` and mode 0600, and its
mode set again with ``fchmod`` before the first byte; an existing file is replaced
(``overwrite``) by such a new file renamed over it, never written in place.
"""

from __future__ import annotations

import ctypes
import os
import re
import secrets
import stat
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from vault.errors import AlreadyExists, InsecureFile, InvalidInput, printable, quoted
from vault.runtime.credential import Credential

REFERENCE = re.compile(
    r"\{\{\s*exvault://([A-Za-z0-9][A-Za-z0-9._-]{0,63})/([a-z][a-z0-9_]{0,63})\s*\}\}"
)
"""A well-formed reference: the credential's name and the field's."""

_OPENING = re.compile(r"\{\{\s*exvault:")
"""Where any reference starts, well-formed or not."""

#: statfs ``f_type`` of the file systems that live in memory only (linux/magic.h).
MEMORY_FILE_SYSTEMS: Mapping[int, str] = {0x01021994: "tmpfs", 0x858458F6: "ramfs"}

MAX_TEMPLATE_BYTES = 1024 * 1024


@dataclass(frozen=True)
class Reference:
    """One ``{{ exvault://NAME/FIELD }}`` of a template."""

    credential: str
    field: str
    line: int


def references(template: str) -> list[Reference]:
    """Every reference of ``template``, in order.

    :raises InvalidInput: for a reference that does not parse (its line number).
    """
    found = [
        Reference(m.group(1), m.group(2), template.count("\n", 0, m.start()) + 1)
        for m in REFERENCE.finditer(template)
    ]
    well_formed = {m.start() for m in REFERENCE.finditer(template)}
    for opening in _OPENING.finditer(template):
        if opening.start() not in well_formed:
            line = template.count("\n", 0, opening.start()) + 1
            raise InvalidInput(
                f"template line {line}: a reference must read {{{{ exvault://NAME/FIELD }}}}"
            )
    return found


def credential_names(template: str) -> list[str]:
    """The credentials ``template`` refers to, each once, in order of appearance.

    :raises InvalidInput: for a malformed reference.
    """
    return list(dict.fromkeys(r.credential for r in references(template)))


def fill(template: str, credentials: Mapping[str, Credential]) -> str:
    """``template`` with every reference replaced by its value.

    :raises InvalidInput: for a malformed reference, or one naming a credential not in
        ``credentials`` or a field it lacks (names only in the message).
    """
    for ref in references(template):
        cred = credentials.get(ref.credential)
        if cred is None:
            raise InvalidInput(f"template line {ref.line}: no credential {quoted(ref.credential)}")
        if ref.field not in cred.fields:
            raise InvalidInput(
                f"template line {ref.line}: credential {quoted(ref.credential)} has no field "
                f"{quoted(ref.field)} (it has: {', '.join(sorted(cred.fields))})"
            )
    return REFERENCE.sub(lambda m: credentials[m.group(1)].fields[m.group(2)].reveal(), template)


def file_system_type(path: Path) -> str | None:
    """The name of the memory file system ``path`` is on, None for any other (or
    where statfs cannot be asked: a system other than Linux).

    :raises InvalidInput: when ``path`` cannot be examined.
    """
    if not sys.platform.startswith("linux"):
        return None
    buffer = ctypes.create_string_buffer(256)  # struct statfs, f_type first (a long)
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.statfs(os.fsencode(path), buffer) != 0:
        error = ctypes.get_errno()
        raise InvalidInput(f"cannot examine {printable(path)}: {os.strerror(error)}")
    magic = ctypes.c_ulong.from_buffer(buffer).value & 0xFFFFFFFF
    return MEMORY_FILE_SYSTEMS.get(magic)


def _refuse_disk(path: Path, allow_disk: bool) -> None:
    if allow_disk:
        return
    if file_system_type(path.parent) is None:
        raise InvalidInput(
            f"{printable(path)} is on persistent storage, where the secrets would outlive "
            "the program; use a tmpfs path such as $XDG_RUNTIME_DIR or /dev/shm, a FIFO, "
            "or --allow-disk"
        )


def check_output(path: Path, *, allow_disk: bool = False, overwrite: bool = False) -> None:
    """Refuse an output path before anything is read or unlocked.

    :raises InvalidInput: for a symbolic link, a path that is neither a FIFO nor a
        (new) regular file, a missing directory, or persistent storage without
        ``allow_disk``.
    :raises AlreadyExists: for an existing file without ``overwrite``.
    :raises InsecureFile: for a FIFO that others may open, or that another user owns.
    """
    shown = printable(path)
    try:
        info: os.stat_result | None = os.lstat(path)
    except FileNotFoundError:
        info = None
    except OSError as exc:
        raise InvalidInput(f"cannot examine {shown}: {exc.strerror}") from None
    if info is None:
        if not path.parent.is_dir():
            raise InvalidInput(f"no directory {printable(path.parent)} for {shown}")
        _refuse_disk(path, allow_disk)
    elif stat.S_ISFIFO(info.st_mode):
        _check_fifo(info, path)
    elif stat.S_ISLNK(info.st_mode):
        raise InvalidInput(f"{shown} is a symbolic link; name the file itself")
    elif stat.S_ISREG(info.st_mode):
        if not overwrite:
            raise AlreadyExists(f"{shown} exists; --overwrite replaces it")
        _refuse_disk(path, allow_disk)
    else:
        raise InvalidInput(f"{shown} is neither a regular file nor a FIFO")


def _check_fifo(info: os.stat_result, path: Path) -> None:
    """:raises InsecureFile: when the FIFO ``info`` describes is not the user's own
    with mode 0600 (another user could read what is written to it)."""
    if info.st_uid != os.geteuid() or stat.S_IMODE(info.st_mode) & 0o077:
        raise InsecureFile(
            f"the FIFO {printable(path)} can be opened by others; make it yours with mode 0600"
        )


def write_output(
    path: Path, text: str, *, allow_disk: bool = False, overwrite: bool = False
) -> None:
    """Write ``text`` to ``path`` as :func:`check_output` allows, mode 0600 from before
    the first byte; a partly written new file is removed.

    :raises InvalidInput, AlreadyExists, InsecureFile: as :func:`check_output`, or when
        the file cannot be written.
    """
    check_output(path, allow_disk=allow_disk, overwrite=overwrite)
    data = text.encode("utf-8")
    if stat.S_ISFIFO(_mode(path)):
        fd = os.open(path, os.O_WRONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
        try:
            # What was checked may have been replaced since, in a shared directory
            # such as /dev/shm: the FIFO opened is the one that must be ours.
            _check_fifo(os.fstat(fd), path)
            _write_all(fd, data, path)
        finally:
            os.close(fd)
        return
    target = path
    if overwrite and path.exists():
        target = path.with_name(f".{path.name}.{secrets.token_hex(6)}.exvault")
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
    try:
        fd = os.open(target, flags, 0o600)
    except FileExistsError:
        raise AlreadyExists(f"{printable(path)} exists; --overwrite replaces it") from None
    except OSError as exc:
        raise InvalidInput(f"cannot create {printable(path)}: {exc.strerror}") from None
    try:
        try:
            os.fchmod(fd, 0o600)  # whatever the umask made of the mode, before any byte
            _write_all(fd, data, path)
            os.fsync(fd)
        finally:
            os.close(fd)
        if target != path:
            try:
                os.replace(target, path)
            except OSError as exc:  # a sticky directory and another user's file
                raise InvalidInput(f"cannot replace {printable(path)}: {exc.strerror}") from None
    except BaseException:
        target.unlink(missing_ok=True)
        raise


def _mode(path: Path) -> int:
    try:
        return os.lstat(path).st_mode
    except FileNotFoundError:
        return 0


def _write_all(fd: int, data: bytes, path: Path) -> None:
    view = memoryview(data)
    try:
        while view:
            view = view[os.write(fd, view) :]
    except OSError as exc:
        raise InvalidInput(f"cannot write {printable(path)}: {exc.strerror}") from None
