"""What an import does: the keys a source holds, the plan made of them against the
vault, the one transaction that applies it, and the removal of the source files.

A reader (:mod:`.freqtrade`, :mod:`.dotenv_file`, :mod:`.hummingbot`,
:mod:`.keepass`) returns a :class:`Source`; :func:`make_plan` checks every key with the
exchange profiles and the vault's names and decides, for each, ``add``, ``replace`` or
``skip`` with the reason; :func:`apply_plan` writes the plan through the owner's
``batch()``: one transaction, so a failure part-way imports nothing.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from vault.errors import InvalidInput, printable, quoted
from vault.exchanges.profiles import get_profile
from vault.format.model import validate_name
from vault.owner.admin import AdminVault
from vault.owner.credentials import clean_payload
from vault.secret import Secret

IMPORT_EXTRA = "pip install 'exchange-vault[import]' (or '.[import]' in its source tree)"
"""How to install the optional libraries the readers use."""

ADD = "add"
REPLACE = "replace"
SKIP = "skip"

Progress = Callable[[int, int], None]
"""Told ``(done, total)`` as work advances (a progress bar)."""


@dataclass(frozen=True)
class FoundKey:
    """One exchange key as a source holds it, its fields already in exvault's names.

    :param origin: where it is in the source, for people (a file, an entry, a
        variable prefix); never a value.
    :param base_name: the credential name it gets before ``--prefix``.
    :param exchange: the exchange as the source names it, None when the source does not.
    :param fields: exvault field name -> value.
    :param unmapped: the source's own names of fields that have no exvault field
        (reported, not imported).
    :param problem: why it cannot be imported, found while reading (None when none).
    :param path: the file it was read from.
    """

    origin: str
    base_name: str
    exchange: str | None
    fields: Mapping[str, Secret] = field(repr=False)
    path: Path
    unmapped: tuple[str, ...] = ()
    problem: str | None = None


@dataclass(frozen=True)
class Skipped:
    """Something of the source that is not imported, and why (no value in either)."""

    origin: str
    reason: str


@dataclass(frozen=True)
class SourceFile:
    """A file an import read, and whether it holds nothing but the keys found in it
    (so that removing it after the import loses nothing else)."""

    path: Path
    only_keys: bool
    why_kept: str = ""
    """When ``only_keys`` is False: what else it holds."""


@dataclass(frozen=True)
class Source:
    """What a reader found: the keys, what it passed over and the files it read."""

    kind: str
    keys: tuple[FoundKey, ...]
    skipped: tuple[Skipped, ...] = ()
    files: tuple[SourceFile, ...] = ()
    removable: bool = True
    """False for a source that ``--remove-source`` never removes (a KeePass database
    holds much more than exchange keys)."""


class ExistingCredential(Protocol):
    """What a plan needs to know of a credential already in the vault (a
    :class:`vault.db.inventory.ListedCredential` is one)."""

    @property
    def name(self) -> str: ...

    @property
    def exchange(self) -> str: ...

    @property
    def pending_version(self) -> int | None: ...


@dataclass(frozen=True)
class PlannedKey:
    """One key of the plan: its credential name, exchange, field names and what the
    import does with it (``add``, ``replace`` or ``skip``, with the reason)."""

    name: str
    exchange: str
    origin: str
    action: str
    fields: Mapping[str, Secret] = field(repr=False)
    reason: str = ""
    unmapped: tuple[str, ...] = ()

    @property
    def field_names(self) -> tuple[str, ...]:
        """The fields found, in exvault's names (never their values)."""
        return tuple(self.fields)


@dataclass(frozen=True)
class ImportPlan:
    """The plan of one import, shown before anything is written."""

    kind: str
    keys: tuple[PlannedKey, ...]
    skipped: tuple[Skipped, ...]
    files: tuple[SourceFile, ...]
    removable: bool

    def with_action(self, action: str) -> tuple[PlannedKey, ...]:
        """The keys the plan gives ``action``."""
        return tuple(k for k in self.keys if k.action == action)

    @property
    def writes(self) -> tuple[PlannedKey, ...]:
        """The keys the import writes (added or replaced)."""
        return tuple(k for k in self.keys if k.action != SKIP)

    def removal_refused(self) -> str:
        """Why ``--remove-source`` would not remove the source, or "" when it would:
        only a source whose every key is imported and whose files hold nothing else.
        """
        if not self.removable:
            return f"a {self.kind} source holds more than exchange keys; delete the entries there"
        if not self.writes:
            return "nothing is imported"
        if self.with_action(SKIP):
            return "some of its keys are not imported"
        kept = [f for f in self.files if not f.only_keys]
        if kept:
            return f"{printable(kept[0].path)} holds {kept[0].why_kept}"
        # What remove_files would refuse, refused now: before the import, not after it.
        for source_file in self.files:
            problem = not_removable(source_file.path)
            if problem:
                return problem
        return ""


def name_for(prefix: str, base_name: str) -> str:
    """The credential name of a key: ``prefix`` then the source's name for it.

    :raises InvalidInput: when the result is no valid credential name.
    """
    return validate_name(prefix + base_name)


def make_plan(
    source: Source,
    existing: Iterable[ExistingCredential],
    *,
    prefix: str = "",
    replace: bool = False,
) -> ImportPlan:
    """Decide what to do with each key of ``source``, given the vault's credentials.

    A key is skipped, with the reason, when the source says it cannot be read, its name
    is invalid or taken by an earlier key of the source, its exchange has no profile,
    its fields fail the profile's checks, or its name exists in the vault (unless
    ``replace``: then it is a new version of that credential, when the exchange is the
    same and no rotation is pending). Nothing is written.

    :raises InvalidInput: for a ``prefix`` that cannot start a credential name.
    """
    if prefix:
        validate_name(prefix + "x")  # a bad prefix is a usage error, not a skip per key
    vault_names = {c.name: c for c in existing}
    planned: list[PlannedKey] = []
    taken: set[str] = set()
    for key in source.keys:
        planned.append(_plan_one(key, prefix, replace, vault_names, taken))
    return ImportPlan(source.kind, tuple(planned), source.skipped, source.files, source.removable)


def _plan_one(
    key: FoundKey,
    prefix: str,
    replace: bool,
    vault_names: Mapping[str, ExistingCredential],
    taken: set[str],
) -> PlannedKey:
    exchange = key.exchange or "?"

    def skip(name: str, reason: str, fields: Mapping[str, Secret] = key.fields) -> PlannedKey:
        return PlannedKey(name, exchange, key.origin, SKIP, fields, reason, key.unmapped)

    try:
        name = name_for(prefix, key.base_name)
    except InvalidInput:
        return skip(prefix + key.base_name, f"{quoted(prefix + key.base_name)} is no valid name")
    if key.problem is not None:
        return skip(name, key.problem)
    if name in taken:
        return skip(name, "an earlier key of this source has the same name")
    taken.add(name)
    if key.exchange is None:
        return skip(name, "the source does not say which exchange")
    try:
        exchange = get_profile(key.exchange).id
    except InvalidInput:
        return skip(
            name,
            f"exvault has no profile for the exchange {quoted(key.exchange)}; "
            "add it by hand with --exchange other",
        )
    try:
        fields = clean_payload(exchange, {k: v.reveal() for k, v in key.fields.items()})
    except InvalidInput as exc:
        return skip(name, str(exc))
    kept = {k: Secret(v) for k, v in fields.items()}
    present = vault_names.get(name)
    if present is None:
        return PlannedKey(name, exchange, key.origin, ADD, kept, unmapped=key.unmapped)
    if not replace:
        return skip(name, "exists in the vault (--replace writes a new version)", kept)
    if present.exchange != exchange:
        return skip(name, f"exists in the vault for another exchange ({present.exchange})", kept)
    if present.pending_version is not None:
        return skip(name, "a rotation of it is pending; promote or abort it first", kept)
    return PlannedKey(name, exchange, key.origin, REPLACE, kept, unmapped=key.unmapped)


@dataclass(frozen=True)
class ImportResult:
    """What an import wrote: credential name -> the version written."""

    versions: Mapping[str, int]


def apply_plan(
    admin: AdminVault, plan: ImportPlan, progress: Progress | None = None
) -> ImportResult:
    """Write the plan's keys in one transaction of ``admin``: all of them, or none.

    An added key is version 1 of a new credential; a replaced one is a new version of
    the existing credential (its metadata kept, never a delete).

    :raises VaultError: as :meth:`AdminVault.add` and :meth:`AdminVault.edit` (a name
        taken meanwhile, a rotation started meanwhile); nothing is imported then.
    """
    todo = plan.writes
    versions: dict[str, int] = {}
    with admin.batch():
        for done, key in enumerate(todo, start=1):
            payload = {k: v.reveal() for k, v in key.fields.items()}
            if key.action == ADD:
                info = admin.add(key.name, key.exchange, payload)
            else:
                info = admin.edit(key.name, payload=payload)
            versions[key.name] = info.version
            if progress is not None:
                progress(done, len(todo))
    return ImportResult(versions)


def not_removable(path: Path) -> str:
    """Why :func:`remove_files` would not remove ``path`` (not a regular file, a
    symbolic link, gone), or "" when it would."""
    try:
        mode = os.lstat(path).st_mode
    except OSError as exc:
        return f"cannot examine {printable(path)}: {exc.strerror}"
    if stat.S_ISLNK(mode):
        return f"{printable(path)} is a symbolic link, not a regular file: name the file itself"
    if not stat.S_ISREG(mode):
        return f"{printable(path)} is not a regular file"
    return ""


def remove_files(files: Iterable[SourceFile]) -> list[Path]:
    """Overwrite each file with zeros, flush it to disk and delete it.

    Overwriting does not guarantee the old bytes are gone: an SSD remaps written
    blocks, a journaling or copy-on-write file system (ext4's journal, btrfs, ZFS) and
    snapshots or backups keep older copies. It only keeps the file's blocks from
    being read back through the file system in the ordinary way.

    :returns: the paths removed.
    :raises InvalidInput: when a file cannot be opened, written or deleted (the files
        before it are removed already), or is not a regular file.
    """
    removed: list[Path] = []
    for source_file in files:
        path = source_file.path
        problem = not_removable(path)
        if problem:
            raise InvalidInput(f"{problem}; not removed")
        try:
            # O_NONBLOCK: a FIFO put there meanwhile fails to open instead of waiting.
            fd = os.open(path, os.O_WRONLY | os.O_NOFOLLOW | os.O_NOCTTY | os.O_NONBLOCK)
            try:
                info = os.fstat(fd)
                if not stat.S_ISREG(info.st_mode):
                    raise InvalidInput(f"{printable(path)} is not a regular file; not removed")
                zeros = bytes(min(info.st_size, 1 << 20))
                left = info.st_size
                while left > 0:
                    left -= os.write(fd, zeros[: min(left, len(zeros))])
                os.fsync(fd)
            finally:
                os.close(fd)
            os.unlink(path)
        except OSError as exc:
            raise InvalidInput(f"cannot remove {printable(path)}: {exc.strerror}") from None
        removed.append(path)
    return removed
