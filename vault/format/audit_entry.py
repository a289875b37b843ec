"""What one audit entry is: its columns, the hash that chains it, what its signature covers.

Pure functions, no database: :mod:`vault.db.audit` stores entries through the owner's
session and the client's direct SQLite path (:mod:`vault.db.client_sql`) through
:mod:`sqlite3`, both with the statements of :mod:`vault.db.queries`; both build them here,
so an entry is hashed and signed the same way whoever writes it.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, NamedTuple

from vault.format import encoding
from vault.format.model import to_epoch, utc_now

if TYPE_CHECKING:
    from vault.db.tables import AuditRecord

GENESIS = b"\0" * 32
ADMIN = "admin"
ROOT_SIGNER = "root"
DETAIL_LIMIT = 500

Signer = tuple[str, Callable[[bytes], bytes]]
"""Who signs an entry: ("root" or a client id, the signing function)."""


def _host_name() -> str:
    # What socket.gethostname() returns (POSIX gethostname is the uname node name),
    # without importing socket and its selectors into a bot's new process for it.
    return os.uname().nodename


def client_actor(name: str) -> str:
    """The actor string of a client."""
    return f"client:{name}"


class AuditRow(NamedTuple):
    """The columns of one ``audit_log`` row; ``entry_hash`` and ``signature`` come last,
    as :func:`new_entry` computes them from the others.

    A named tuple, not a dataclass: a bot's process builds one per read, and importing
    ``dataclasses`` would cost its cold start more than the read (docs/benchmarks.md).
    """

    seq: int
    at: int
    actor: str
    host: str
    pid: int
    action: str
    credential: str | None
    version: int | None
    outcome: str
    detail: str
    prev_hash: bytes
    signer: str | None
    entry_hash: bytes = b""
    signature: bytes | None = None

    def values(self) -> dict[str, Any]:
        """The columns by name, for an INSERT."""
        return self._asdict()


AUDIT_COLUMNS: tuple[str, ...] = AuditRow._fields
"""The ``audit_log`` columns an :class:`AuditRow` holds, in its order (for the SQL that
writes or reads whole rows: ``AuditRow(*values)`` of a SELECT of these columns)."""


def entry_hash(vault_id: bytes, rec: AuditRecord | AuditRow) -> bytes:
    """The hash chaining ``rec`` to its predecessor: every column but the signature."""
    return encoding.digest(
        b"exvault-audit",
        vault_id,
        rec.seq,
        rec.at,
        rec.actor,
        rec.host,
        rec.pid,
        rec.action,
        rec.credential,
        rec.version,
        rec.outcome,
        rec.detail,
        rec.signer,
        rec.prev_hash,
    )


def signed_entry(vault_id: bytes, hash_: bytes) -> bytes:
    """What an entry's signature covers."""
    return encoding.signed_message("audit", vault_id, hash_)


def new_entry(
    vault_id: bytes,
    last: tuple[int, bytes] | None,
    *,
    actor: str,
    action: str,
    outcome: str = "ok",
    credential: str | None = None,
    version: int | None = None,
    detail: str = "",
    signer: Signer | None = None,
) -> AuditRow:
    """The entry that follows ``last`` (its seq and hash; None for the first entry),
    hashed and, when there is a ``signer``, signed."""
    row = AuditRow(
        seq=(last[0] + 1) if last else 1,
        at=to_epoch(utc_now()),
        actor=actor,
        host=_host_name()[:255],
        pid=os.getpid(),
        action=action,
        credential=credential,
        version=version,
        outcome=outcome,
        detail=detail[:DETAIL_LIMIT],
        prev_hash=last[1] if last else GENESIS,
        signer=signer[0] if signer else None,
    )
    hashed = entry_hash(vault_id, row)
    signature = signer[1](signed_entry(vault_id, hashed)) if signer else None
    return row._replace(entry_hash=hashed, signature=signature)


__all__ = [
    "ADMIN",
    "AUDIT_COLUMNS",
    "DETAIL_LIMIT",
    "GENESIS",
    "ROOT_SIGNER",
    "AuditRow",
    "Signer",
    "client_actor",
    "entry_hash",
    "new_entry",
    "signed_entry",
]
