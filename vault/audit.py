"""The audit log: who read or changed what, when, from which host and process.

Entries form a hash chain: each entry's hash covers its fields and the previous
entry's hash, and each entry is signed by its actor (the vault key for the owner's
actions, the client's own key for a client's reads and refusals). So someone with
write access to the database but without those keys cannot edit, reorder or delete
an entry, nor forge one in anyone's name, without ``verify_chain`` noticing.

Two limits no in-database scheme can lift, documented in SECURITY.md: anonymous
failures (a wrong passphrase, a token of another vault) are unsigned, and the newest
entries can be cut off the end. ``exvault audit verify`` catches the latter against
the last head it saw, which it remembers outside the vault (see :func:`witness_path`).

Entries never contain a secret value: only names, versions and outcomes.
"""

from __future__ import annotations

import json
import os
import socket
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from vault import crypto
from vault.errors import IntegrityError, VaultError
from vault.model import from_epoch, to_epoch, utc_now
from vault.store import AuditRecord, Store

GENESIS = b"\0" * 32
ADMIN = "admin"
ROOT_SIGNER = "root"

Signer = tuple[str, Callable[[bytes], bytes]]
"""Who signs an entry: ("root" or a client id, the signing function)."""


def client_actor(name: str) -> str:
    """The actor string of a client."""
    return f"client:{name}"


def _hostname() -> str:
    return socket.gethostname()[:255]


def entry_hash(vault_id: bytes, rec: AuditRecord) -> bytes:
    """The hash chaining ``rec`` to its predecessor: every column but the signature."""
    return crypto.digest(
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
    return crypto.signed_message("audit", vault_id, hash_)


def append(
    session: Session,
    vault_id: bytes,
    *,
    actor: str,
    action: str,
    outcome: str = "ok",
    credential: str | None = None,
    version: int | None = None,
    detail: str = "",
    signer: Signer | None = None,
    head: tuple[int, bytes] | None = None,
) -> AuditRecord:
    """Append one entry inside the caller's (write) transaction; returns it.

    The caller's transaction is a :meth:`Store.write` transaction, which holds the
    write lock (BEGIN IMMEDIATE on SQLite, an advisory lock on PostgreSQL), so reading
    the last entry and inserting the next cannot interleave with another writer.
    ``head`` is (seq, entry hash) of the entry this same transaction appended last, if
    any: under that lock it is still the last entry, and passing it saves the query.
    """
    last = (
        head
        or session.execute(
            select(AuditRecord.seq, AuditRecord.entry_hash)
            .order_by(AuditRecord.seq.desc())
            .limit(1)
        ).first()
    )
    rec = AuditRecord(
        seq=(last[0] + 1) if last else 1,
        at=to_epoch(utc_now()),
        actor=actor,
        host=_hostname(),
        pid=os.getpid(),
        action=action,
        credential=credential,
        version=version,
        outcome=outcome,
        detail=detail[:500],
        prev_hash=last[1] if last else GENESIS,
        signer=signer[0] if signer else None,
    )
    rec.entry_hash = entry_hash(vault_id, rec)
    rec.signature = signer[1](signed_entry(vault_id, rec.entry_hash)) if signer else None
    session.add(rec)
    return rec


@dataclass(frozen=True)
class AuditEntry:
    """One audit entry as shown to people and programs."""

    seq: int
    at: datetime
    actor: str
    host: str
    pid: int
    action: str
    credential: str | None
    version: int | None
    outcome: str
    detail: str
    signed: bool


def entries(session: Session, since: datetime | None = None) -> list[AuditEntry]:
    """Audit entries in order, optionally only those at or after ``since``."""
    query = select(AuditRecord).order_by(AuditRecord.seq)
    if since is not None:
        query = query.where(AuditRecord.at >= to_epoch(since))
    return [
        AuditEntry(
            seq=r.seq,
            at=from_epoch(r.at),
            actor=r.actor,
            host=r.host,
            pid=r.pid,
            action=r.action,
            credential=r.credential,
            version=r.version,
            outcome=r.outcome,
            detail=r.detail,
            signed=r.signature is not None,
        )
        for r in session.scalars(query)
    ]


@dataclass(frozen=True)
class ChainReport:
    """The result of :func:`verify_chain`: the head it reached and every problem found."""

    entries: int
    head_seq: int
    head_hash: bytes
    problems: tuple[str, ...]

    @property
    def ok(self) -> bool:
        """True when no problem was found."""
        return not self.problems


def verify_chain(
    session: Session,
    vault_id: bytes,
    root_public: bytes,
    client_publics: Mapping[str, tuple[str, bytes]],
) -> ChainReport:
    """Walk the whole chain: numbering, links, hashes and signatures.

    ``client_publics`` maps client ids to (name, verified Ed25519 public key).
    """
    problems: list[str] = []
    prev_hash, expected_seq, count = GENESIS, 1, 0
    actors = {client_id: client_actor(name) for client_id, (name, _key) in client_publics.items()}
    head_seq, head_hash = 0, GENESIS
    for rec in session.scalars(select(AuditRecord).order_by(AuditRecord.seq)):
        count += 1
        if rec.seq != expected_seq:
            problems.append(f"entry {expected_seq} is missing (next found: {rec.seq})")
        if rec.prev_hash != prev_hash:
            problems.append(f"entry {rec.seq} does not link to the entry before it")
        if not crypto.constant_time_equal(entry_hash(vault_id, rec), rec.entry_hash):
            problems.append(f"entry {rec.seq} was edited (its hash does not match)")
        if rec.signer is not None or rec.signature is not None:
            key: bytes | None
            expected_actor: str | None
            if rec.signer == ROOT_SIGNER:
                key, expected_actor = root_public, ADMIN
            else:
                known = client_publics.get(rec.signer or "")
                key = known[1] if known else None
                expected_actor = actors.get(rec.signer or "")
            try:
                if key is None or rec.signature is None:
                    raise IntegrityError()
                crypto.verify_signature(key, signed_entry(vault_id, rec.entry_hash), rec.signature)
            except IntegrityError:
                problems.append(f"entry {rec.seq} has a bad signature")
            else:
                # A signature vouches for its signer only: the actor must be that signer.
                if rec.actor != expected_actor:
                    problems.append(
                        f"entry {rec.seq} names {rec.actor} but was signed by {expected_actor}"
                    )
        elif rec.outcome == "ok":
            # Only failures can be anonymous (nobody had a key); a success never is.
            problems.append(f"entry {rec.seq} claims a successful action unsigned")
        prev_hash, expected_seq = rec.entry_hash, rec.seq + 1
        head_seq, head_hash = rec.seq, rec.entry_hash
    return ChainReport(count, head_seq, head_hash, tuple(problems))


def chain_contains(session: Session, seq: int, hash_: bytes) -> bool:
    """True when entry ``seq`` exists with hash ``hash_`` (a remembered head is still there)."""
    found = session.scalar(select(AuditRecord.entry_hash).where(AuditRecord.seq == seq))
    return found is not None and crypto.constant_time_equal(found, hash_)


def count(session: Session) -> int:
    """Number of entries."""
    return session.scalar(select(func.count()).select_from(AuditRecord)) or 0


def witness_path(vault_id: bytes) -> Path:
    """Where ``audit verify`` remembers the last head it saw for this vault.

    Outside the vault (``$XDG_STATE_HOME/exvault``), so that cutting entries off the
    end of the log, then writing new ones, is noticed at the next verify.
    """
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "exvault" / f"audit-head-{vault_id.hex()}.json"


def read_witness(vault_id: bytes) -> tuple[int, bytes] | None:
    """The remembered head, if any (an unreadable witness counts as none)."""
    try:
        data = json.loads(witness_path(vault_id).read_text())
        return int(data["seq"]), bytes.fromhex(data["hash"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def write_witness(vault_id: bytes, seq: int, hash_: bytes) -> None:
    """Remember the head just verified (0600 file in a 0700 directory)."""
    path = witness_path(vault_id)
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump({"seq": seq, "hash": hash_.hex()}, f)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def record_failure(
    store: Store,
    vault_id: bytes,
    actor: str,
    action: str,
    detail: str,
    *,
    credential: str | None = None,
    version: int | None = None,
    signer: Signer | None = None,
) -> None:
    """Audit a refusal or failure in a transaction of its own.

    Used where the failing operation's own transaction rolls back. A failure to write
    the entry (a read-only database role, a full disk) must not mask the original
    error, so it is swallowed here.
    """
    try:
        with store.write() as session:
            append(
                session,
                vault_id,
                actor=actor,
                action=action,
                outcome="denied",
                credential=credential,
                version=version,
                detail=detail,
                signer=signer,
            )
    except VaultError:
        pass
