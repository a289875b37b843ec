"""Reading KeePass databases (``.kdbx``, read with pykeepass).

Each entry (of the group ``--group`` and its subgroups, else of the whole database) is
one key: its title is the credential's name, its user name the API key, its password
the secret; custom properties (string fields) named ``passphrase``, ``uid``,
``private_key`` or another exvault field name give those fields, and ``exchange``
names the exchange. Without an ``exchange`` property the exchange is the first word of
the title (``binance-main``) when it is an exchange id, else the ``--exchange`` given.
Entries in the recycle bin are passed over.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from vault.errors import IntegrityError, InvalidInput, NotFound, VaultUnavailable, printable
from vault.exchanges.fields import validate_field_name
from vault.exchanges.profiles import get_profile
from vault.ops.importing.plan import IMPORT_EXTRA, FoundKey, Skipped, Source
from vault.secret import Secret

EXCHANGE_PROPERTY = "exchange"

MAX_ARGON2_MEMORY = 4 << 30
"""The most Argon2 memory a database may ask for, in bytes (KeePassXC's default: 64 MiB)."""
MAX_ARGON2_WORK = 256 << 30
"""The most Argon2 iterations times memory, in bytes: a few minutes at most."""
MAX_AES_KDF_ROUNDS = 1_000_000_000
"""The most AES-KDF rounds (KeePass 2's own default is 60,000; pykeepass runs them one
by one in Python, about a million a second, where Ctrl-C stops them)."""
_FIRST_WORD = re.compile(r"[A-Za-z0-9]+")
_NAME_CHARACTER = re.compile(r"[^A-Za-z0-9._-]+")


def _open(path: Path, password: str | None, keyfile: Path | None) -> Any:
    try:
        import pykeepass  # the optional `import` extra
        from pykeepass.exceptions import CredentialsError
    except ImportError:
        raise VaultUnavailable(f"reading KeePass databases needs: {IMPORT_EXTRA}") from None
    require_file(path)
    try:
        refuse_costly_kdf(path)
        return pykeepass.PyKeePass(
            str(path), password=password, keyfile=str(keyfile) if keyfile else None
        )
    except CredentialsError:
        raise IntegrityError("wrong KeePass password or key file") from None
    except OSError as exc:
        raise InvalidInput(f"cannot read {printable(path)}: {exc.strerror}") from None
    except InvalidInput:
        raise
    except Exception as exc:  # pykeepass and construct raise many types for a bad file
        raise InvalidInput(
            f"{printable(path)} is not a KeePass database it can read ({type(exc).__name__})"
        ) from None


def require_file(path: Path) -> None:
    """:raises InvalidInput: when there is no file at ``path`` (said before a password
    is asked for it)."""
    if not path.is_file():
        raise InvalidInput(f"no KeePass database at {printable(path)}")


def refuse_costly_kdf(path: Path) -> None:
    """Refuse a database whose header asks for a key derivation too costly to run, read
    before pykeepass derives anything: Argon2 runs in C, where Ctrl-C cannot stop it,
    so a crafted file asking for 2^32 iterations would hold the import for days.

    :raises InvalidInput: beyond :data:`MAX_ARGON2_MEMORY`, :data:`MAX_ARGON2_WORK` or
        :data:`MAX_AES_KDF_ROUNDS`.
    :raises Exception: whatever pykeepass's parser raises for a file that is no database.
    """
    from pykeepass.kdbx_parsing import KDBX  # the optional `import` extra

    with path.open("rb") as file:
        header = KDBX.subcons[0].parse_stream(file).value  # the header only
    dynamic = header.dynamic_header
    if header.major_version == 3:
        rounds, iterations, memory = dynamic.transform_rounds.data, 0, 0
    else:
        params = dynamic.kdf_parameters.data.dict
        rounds, iterations, memory = (
            params[name].value if name in params else 0 for name in ("R", "I", "M")
        )
    if rounds > MAX_AES_KDF_ROUNDS:
        asked = f"{rounds} AES-KDF rounds"
    elif memory > MAX_ARGON2_MEMORY or iterations * memory > MAX_ARGON2_WORK:
        asked = f"{iterations} Argon2 iterations over {memory >> 20} MiB"
    else:
        return
    raise InvalidInput(
        f"{printable(path)} asks for a key derivation too costly to run ({asked}); not opened"
    )


def exchange_of_title(title: str) -> str | None:
    """The exchange id a title starts with (``Binance main`` -> binance), if any."""
    word = _FIRST_WORD.match(title)
    if word is None:
        return None
    try:
        exchange = get_profile(word.group()).id
    except InvalidInput:
        return None
    return None if exchange == "other" else exchange


def base_name(title: str) -> str:
    """A title as a credential name: runs of other characters become ``-``."""
    return _NAME_CHARACTER.sub("-", title.strip()).strip("-._") or "entry"


def read(
    path: Path,
    password: str | None,
    *,
    keyfile: Path | None = None,
    group: str | None = None,
    exchange: str | None = None,
) -> Source:
    """The keys of the KeePass database ``path``.

    :param password: None for a database opened by its ``keyfile`` alone (not "": an
        empty password is part of the composite key).
    :param group: a group's name or path (``Exchanges/Bots``); only its entries.
    :param exchange: the exchange of entries that name none.
    :raises IntegrityError: for a wrong password or key file.
    :raises NotFound: when there is no such group.
    :raises InvalidInput: for a file that is no KeePass database.
    :raises VaultUnavailable: when pykeepass is not installed.
    """
    kp = _open(path, password, keyfile)
    recycle = kp.recyclebin_group
    if group is not None:
        parts = [p for p in group.split("/") if p]
        found = kp.find_groups(path=parts) if parts else None
        if found is None:
            found = kp.find_groups(name=group, first=True)
        if found is None:
            raise NotFound(f"no group {printable(group)} in {printable(path)}")
        entries = [e for e in kp.entries if _inside(e.group, found)]
    else:
        entries = list(kp.entries)
    keys: list[FoundKey] = []
    skipped: list[Skipped] = []
    for entry in entries:
        if recycle is not None and _inside(entry.group, recycle):
            continue
        title = str(entry.title or "")
        origin = f"entry {printable(title)}" if title else "an entry with no title"
        properties = {str(k): str(v) for k, v in (entry.custom_properties or {}).items()}
        fields: dict[str, Secret] = {}
        if entry.username:
            fields["api_key"] = Secret(str(entry.username))
        if entry.password:
            fields["secret"] = Secret(str(entry.password))
        unmapped: list[str] = []
        for name, value in properties.items():
            if name == EXCHANGE_PROPERTY:
                continue
            try:
                validate_field_name(name)
            except InvalidInput:
                unmapped.append(name)
                continue
            if value:
                fields[name] = Secret(value)
        if not fields:
            skipped.append(Skipped(origin, "no user name, password or key field"))
            continue
        keys.append(
            FoundKey(
                origin=origin,
                base_name=base_name(title),
                exchange=properties.get(EXCHANGE_PROPERTY) or exchange_of_title(title) or exchange,
                fields=fields,
                path=path,
                unmapped=tuple(unmapped),
            )
        )
    return Source(kind="keepass", keys=tuple(keys), skipped=tuple(skipped), removable=False)


def _inside(group: Any, ancestor: Any) -> bool:
    while group is not None:
        if group.uuid == ancestor.uuid:
            return True
        group = group.parentgroup
    return False
