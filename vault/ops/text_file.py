"""Reading a text file the user names (an import source, a template): UTF-8 decoded
strictly, its size capped, failures reported as one line naming the file only."""

from __future__ import annotations

from pathlib import Path

from vault.errors import InvalidInput, decode_utf8, printable

MAX_TEXT_BYTES = 16 * 1024 * 1024
"""The largest file read (configuration files and templates are a few KiB)."""


def read_text(path: Path, what: str, limit: int = MAX_TEXT_BYTES) -> str:
    """The text of ``path``, ``what`` naming it in messages (never its content).

    :raises InvalidInput: when it cannot be read, is larger than ``limit`` bytes or is
        not UTF-8.
    """
    try:
        with path.open("rb") as file:
            data = file.read(limit + 1)
    except OSError as exc:
        raise InvalidInput(f"cannot read {what} {printable(path)}: {exc.strerror}") from None
    if len(data) > limit:
        raise InvalidInput(f"{what} {printable(path)} is too large")
    return decode_utf8(data, f"{what} {printable(path)}")
