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
import re
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

from vault.db import queries, state_files
from vault.db.queries import last_audit_entry
from vault.db.transaction import Store, Transaction
from vault.errors import IntegrityError, VaultError
from vault.format import aead, identities, records
from vault.format.audit_entry import (
    ADMIN,
    GENESIS,
    ROOT_SIGNER,
    AuditRow,
    Signer,
    client_actor,
    entry_hash,
    new_entry,
    signed_entry,
)
from vault.format.model import from_epoch, to_epoch
from vault.format.schema import AUDIT_LOG

if TYPE_CHECKING:
    # Only until vault.owner.clients reads plain rows too (being converted on another
    # branch this round): then signed_by_any takes an AuditRow alone.
    from vault.db.tables import AuditRecord

_TABLE = AUDIT_LOG.name


def last_entry(transaction: Transaction) -> tuple[int, bytes] | None:
    """(seq, entry hash) of the chain's last entry; None for an empty log. Call it under
    the write lock to append after it.

    On PostgreSQL (schema version 4 on) that is the head row, which the database keeps
    (:data:`vault.db.tables.AUDIT_HEAD`), not the entry of highest ``seq``: a row put there
    with any seq by someone else is no entry of the chain and does not stop appends.
    """
    return last_audit_entry(transaction.execute, head_row=transaction.locks_head)


def append(
    transaction: Transaction,
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
) -> AuditRow:
    """Append one entry inside the caller's (write) transaction; returns it.

    The caller's transaction is a :meth:`Store.write` transaction, which holds the
    write lock (BEGIN IMMEDIATE on SQLite, the audit head's row on PostgreSQL), so reading
    the last entry and inserting the next cannot interleave with another writer.
    ``head`` is (seq, entry hash) of the entry this same transaction appended last, if
    any: under that lock it is still the last entry, and passing it saves the query.
    """
    entry = new_entry(
        vault_id,
        head or last_entry(transaction),
        actor=actor,
        action=action,
        outcome=outcome,
        credential=credential,
        version=version,
        detail=detail,
        signer=signer,
    )
    # The owner may insert into the table on PostgreSQL too: the trigger there keeps the
    # chain's head row (the reader role's append function is for bots).
    transaction.execute(queries.INSERT_AUDIT_SQL, entry.values())
    return entry


# A named tuple, not a dataclass: building a dataclass at import slows every command's start.
class AuditEntry(NamedTuple):
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
    log: str = "vault"
    """Where the entry is kept: ``vault``, or the name of an audit file (shared layout)."""


def entries(transaction: Transaction, since: datetime | None = None) -> list[AuditEntry]:
    """Audit entries in order, optionally only those at or after ``since``.

    :raises IntegrityError: when a column of an entry holds a value of another type.
    """
    execute = transaction.execute
    # Text that is not UTF-8 comes back with lone surrogates (shown escaped), instead of
    # failing the whole listing.
    with transaction.tolerant_text():
        if since is None:
            found = execute(queries.AUDIT_ROWS_SQL, {})
        else:
            found = execute(queries.AUDIT_ROWS_AT_SQL, {"at": to_epoch(since)})
    return [_entry(AuditRow(*values)) for values in found]


def _entry(r: AuditRow) -> AuditEntry:
    records.check_types(r, _TABLE)
    return AuditEntry(
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


# A named tuple, not a dataclass: building a dataclass at import slows every command's start.
class ChainReport(NamedTuple):
    """The result of :func:`verify_chain`: the head it reached and every problem found."""

    entries: int
    head_seq: int
    head_hash: bytes
    problems: tuple[str, ...]
    revocations: tuple[tuple[int, str], ...] = ()
    """(seq, client name) of every ``client-revoke`` entry signed by the vault key."""

    @property
    def ok(self) -> bool:
        """True when no problem was found."""
        return not self.problems


def verify_chain(
    transaction: Transaction,
    vault_id: bytes,
    root_public: bytes,
    client_publics: Mapping[str, tuple[str, bytes]],
    vault_rekeys: Sequence[Rekey] | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> ChainReport:
    """Walk the whole chain: numbering, links, hashes and signatures; collect the
    signed revocations, which the rows must still show (see :mod:`vault.ops.verification`).
    ``progress``, when given, is told ``(entries reached, entries in all)`` as it walks
    (a signature check per entry: a long log takes seconds).

    ``client_publics`` maps client ids to (name, verified Ed25519 public key).
    ``vault_rekeys``: for the chain of an audit file (shared layout), the vault's
    :func:`rekey_history`. That chain has numbers of its own, so an entry cannot be
    placed before or after a rekey: it verifies with its client's current key or any
    key a rekey entry of the vault says the client had.
    """
    problems: list[str] = []
    revocations: list[tuple[int, str]] = []
    prev_hash, expected_seq, count = GENESIS, 1, 0
    actors = {client_id: client_actor(name) for client_id, (name, _key) in client_publics.items()}
    revoked_at: dict[str, int] = {}  # client actor -> seq of its signed revocation
    head_seq, head_hash = 0, GENESIS
    rekeys = rekey_history(transaction, vault_id, root_public)
    rows = audit_rows(transaction)
    for rec in rows:
        count += 1
        if progress is not None:
            progress(count, len(rows))
        damage = records.type_damage(rec, _TABLE) or _not_utf8(rec)
        if damage is not None:
            # Nothing of it can be hashed or verified; the walk goes on from it, so that
            # the entries after it are still checked.
            problems.append(damage)
            prev_hash, expected_seq = rec.entry_hash, expected_seq + 1
            continue
        if rec.seq != expected_seq:
            problems.append(f"entry {expected_seq} is missing (next found: {rec.seq})")
        if rec.prev_hash != prev_hash:
            problems.append(f"entry {rec.seq} does not link to the entry before it")
        if not aead.constant_time_equal(entry_hash(vault_id, rec), rec.entry_hash):
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
            if vault_rekeys is None:
                keys = [key_before_rekey(rekeys, rec.seq, rec.signer or "", key)]
            else:
                keys = [key, *(r[1][rec.signer] for r in vault_rekeys if rec.signer in r[1])]
            if not any(_signed_with(vault_id, rec, k) for k in keys):
                problems.append(f"entry {rec.seq} has a bad signature")
            else:
                # A signature vouches for its signer only: the actor must be that signer.
                if rec.actor != expected_actor:
                    problems.append(
                        f"entry {rec.seq} names {rec.actor} but was signed by {expected_actor}"
                    )
                elif rec.signer == ROOT_SIGNER and rec.action == "client-revoke":
                    revoked = _revoked_client(rec.detail)
                    if revoked is not None and rec.outcome == "ok":
                        revocations.append((rec.seq, revoked))
                        revoked_at.setdefault(client_actor(revoked), rec.seq)
                elif rec.outcome == "ok" and rec.actor in revoked_at:
                    # A revoked client's key can still sign (a stolen token), but after
                    # its revocation it can only be refused: a success is someone using
                    # the key without the vault's consent.
                    problems.append(
                        f"entry {rec.seq} was written by {rec.actor} after its revocation "
                        f"(entry {revoked_at[rec.actor]})"
                    )
        elif rec.outcome == "ok":
            # Only failures can be anonymous (nobody had a key); a success never is.
            problems.append(f"entry {rec.seq} claims a successful action unsigned")
        elif rec.actor.startswith(client_actor("")):
            # A client's refusals are signed with its own key (it proved the key to get
            # that far); an unsigned entry naming a client is someone else's words.
            problems.append(f"entry {rec.seq} names {rec.actor} but is unsigned")
        prev_hash, expected_seq = rec.entry_hash, rec.seq + 1
        head_seq, head_hash = rec.seq, rec.entry_hash
    return ChainReport(count, head_seq, head_hash, tuple(problems), tuple(revocations))


def signed_by_any(vault_id: bytes, rec: AuditRow | AuditRecord, keys: Sequence[bytes]) -> bool:
    """Whether ``rec``'s hash matches its columns and its signature verifies with one
    of ``keys`` (a client's current key and those a rekey replaced). Never raises."""
    try:
        if not aead.constant_time_equal(entry_hash(vault_id, rec), rec.entry_hash):
            return False
    except (TypeError, ValueError):  # a value of another type; text that is not UTF-8
        return False
    return any(_signed_with(vault_id, rec, key) for key in keys)


def _signed_with(vault_id: bytes, rec: AuditRow | AuditRecord, key: bytes | None) -> bool:
    """Whether ``rec``'s signature verifies with ``key`` (None: no key, so no)."""
    if key is None or rec.signature is None:
        return False
    try:
        identities.verify_signature(key, signed_entry(vault_id, rec.entry_hash), rec.signature)
    except IntegrityError:
        return False
    return True


def signing_key(
    rec: AuditRow,
    signers: Mapping[str, tuple[str, bytes]],
    rekeys: Sequence[Rekey] = (),
) -> bytes | None:
    """The key ``rec``'s signature must verify with, or None when it cannot count: no
    signature, a signer not in ``signers``, or an actor that is not that signer's
    (rules 4 and 5 of the chain, for one entry read on its own, such as ``check``'s
    last read of a credential).

    ``signers`` maps a signer (``root`` or a client id) to (actor, verified Ed25519 public
    key); ``rekeys`` (:func:`rekey_history`, for an entry of the vault's own chain)
    give the key an entry older than a rekey was signed with.
    """
    known = signers.get(rec.signer or "")
    if known is None or rec.signature is None or known[0] != rec.actor:
        return None
    return key_before_rekey(rekeys, rec.seq, rec.signer or "", known[1]) or known[1]


def _not_utf8(rec: AuditRow) -> str | None:
    # SQLite stores any bytes as TEXT; read through tolerant_text, they come back as
    # lone surrogates, which cannot be encoded, so neither hashed nor signed.
    for column in _TEXT_COLUMNS:
        value = getattr(rec, column)
        if isinstance(value, str):
            try:
                value.encode("utf-8")
            except UnicodeEncodeError:
                return f"entry {rec.seq}: its {column} is not UTF-8 text"
    return None


_TEXT_COLUMNS = ("actor", "host", "action", "credential", "outcome", "detail", "signer")


_REKEY_KEY = re.compile(r"(?:old signing key|client ([0-9a-f]{32}) key) ([0-9a-f]{64})")

Rekey = tuple[int, dict[str, bytes]]
"""A ``rekey`` entry's seq, and the keys it replaced by signer (``root`` or a client id)."""


def rekey_history(transaction: Transaction, vault_id: bytes, root_public: bytes) -> list[Rekey]:
    """The ``rekey`` entries, in order, with the signing keys each replaced
    (``AdminVault.rekey`` writes "root keys replaced; old signing key HEX" and "new keys
    for client NAME; client ID key HEX").

    Only an entry whose hash and root signature verify counts, each with the root key
    in force after it (the current one for the last): walked newest first. Any other
    is left out here, and the walk reports it.
    """
    out: list[Rekey] = []
    key = root_public
    with transaction.tolerant_text():  # text that is not UTF-8 must not stop it
        found = [
            AuditRow(*values)
            for values in transaction.execute(queries.REKEYS_SQL, {"signer": ROOT_SIGNER})
        ]
    for rec in found:
        if records.type_damage(rec, _TABLE) is not None:
            continue
        try:
            if rec.signature is None or not aead.constant_time_equal(
                entry_hash(vault_id, rec), rec.entry_hash
            ):
                continue
        except UnicodeEncodeError:  # text that is not UTF-8, read through tolerant_text
            continue
        try:
            identities.verify_signature(key, signed_entry(vault_id, rec.entry_hash), rec.signature)
        except IntegrityError:
            continue
        replaced = {
            (m[1] or ROOT_SIGNER): bytes.fromhex(m[2]) for m in _REKEY_KEY.finditer(rec.detail)
        }
        out.append((rec.seq, replaced))
        key = replaced.get(ROOT_SIGNER, key)
    return out[::-1]


def key_before_rekey(
    rekeys: Sequence[Rekey], seq: int, signer: str, key: bytes | None
) -> bytes | None:
    """The key ``signer`` signed entry ``seq`` with: the one named by the first rekey
    after the entry that replaced it, else ``key`` (its current one)."""
    for rekey_seq, replaced in rekeys:
        if rekey_seq > seq and signer in replaced:
            return replaced[signer]
    return key


def _revoked_client(detail: str) -> str | None:
    # AdminVault.revoke_client writes "client NAME; exposed: ..."; a client name has
    # neither spaces nor semicolons (model.NAME_PATTERN).
    head = detail.split(";", 1)[0]
    return head.removeprefix("client ") if head.startswith("client ") else None


def chain_contains(transaction: Transaction, seq: int, hash_: bytes) -> bool:
    """True when entry ``seq`` exists with hash ``hash_`` (a remembered head is still there)."""
    found = transaction.execute(queries.AUDIT_ENTRY_HASH_SQL, {"seq": seq})
    value = found[0][0] if found else None
    return isinstance(value, bytes) and aead.constant_time_equal(value, hash_)


def chain_intact_up_to(transaction: Transaction, vault_id: bytes, seq: int, hash_: bytes) -> bool:
    """True when entries 1 to ``seq`` are all there, numbered without a gap, each
    linked to the one before and hashing to what it stores, and entry ``seq`` hashes to
    ``hash_`` (a remembered head): then none of them was deleted, edited or put back
    since that head was seen (each entry's hash covers its link to the one before, so
    the remembered hash vouches for all of them). Hashes only, no signature: cheap
    enough for ``check`` (a few microseconds an entry).
    """
    expected, prev_hash = 1, GENESIS
    with transaction.tolerant_text():
        rows = transaction.execute(queries.AUDIT_ROWS_TO_SQL, {"seq": seq})
    for values in rows:
        row = AuditRow(*values)
        try:
            intact = (
                row.seq == expected
                and row.prev_hash == prev_hash
                and aead.constant_time_equal(entry_hash(vault_id, row), row.entry_hash)
            )
        except (TypeError, ValueError):  # a damaged row
            return False
        if not intact:
            return False
        expected, prev_hash = row.seq + 1, row.entry_hash
    return expected == seq + 1 and aead.constant_time_equal(prev_hash, hash_)


def audit_rows(transaction: Transaction, start: int | None = None) -> list[AuditRow]:
    """The audit log's rows in chain order; with ``start``, from that seq on.

    A text value that is not UTF-8 (SQLite stores any bytes) does not fail the read: it
    comes back with lone surrogates (:func:`vault.db.store.tolerant_text`), fails to
    hash, and the walk reports its entry by seq.

    :raises StoreError: when the database cannot be read.
    """
    execute = transaction.execute
    with transaction.tolerant_text():
        if start is None:
            found = execute(queries.AUDIT_ROWS_SQL, {})
        else:
            found = execute(queries.AUDIT_ROWS_FROM_SQL, {"seq": start})
    return [AuditRow(*values) for values in found]


def count(transaction: Transaction) -> int:
    """Number of entries."""
    found = transaction.execute(queries.AUDIT_COUNT_SQL, {})
    return int(found[0][0]) if found else 0


def _witness_name(vault_id: bytes) -> str:
    return f"audit-head-{vault_id.hex()}.json"


def witness_path(vault_id: bytes) -> Path | None:
    """Where ``audit verify`` remembers the last head it saw for this vault (``probe``
    too, the head it wrote: :func:`vault.ops.observations.remember_head`).

    Outside the vault (:func:`vault.db.state_files.state_directory`), so that cutting
    entries off the end of the log, then writing new ones, is noticed at the next
    verify. None when this machine has no state directory: then nothing is
    remembered, and such a cut goes unnoticed (SECURITY.md).
    """
    return state_files.state_file(_witness_name(vault_id))


def read_witness(vault_id: bytes) -> tuple[int, bytes] | None:
    """The remembered head, if any: an unreadable witness counts as none, and so does
    one that is not private to this user (:func:`vault.db.state_files.private_bytes`:
    anyone else who could write it could name an early entry there, which hides every
    cut after it; and a FIFO in its place must not hang ``check`` in cron)."""
    data = state_files.read_state(_witness_name(vault_id))
    if data is None:
        return None
    try:
        content = json.loads(data)
        return int(content["seq"]), bytes.fromhex(content["hash"])
    except (ValueError, KeyError, TypeError):
        return None


def write_witness(vault_id: bytes, seq: int, hash_: bytes) -> bool:
    """Remember the head just verified (0600 file in a 0700 directory, on disk before
    it replaces the last one).

    :returns: False when it could not be remembered: no state directory, or one that
        cannot be written (read-only, full). The verification itself stands; only
        the next one loses this head to compare against.
    """
    data = json.dumps({"seq": seq, "hash": hash_.hex()}).encode()
    return state_files.write_state(_witness_name(vault_id), data, durable=True)


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
        with store.write() as transaction:
            append(
                transaction,
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


__all__ = [
    "ADMIN",
    "GENESIS",
    "ROOT_SIGNER",
    "AuditEntry",
    "ChainReport",
    "Rekey",
    "Signer",
    "append",
    "audit_rows",
    "chain_contains",
    "chain_intact_up_to",
    "client_actor",
    "count",
    "entries",
    "entry_hash",
    "key_before_rekey",
    "last_entry",
    "read_witness",
    "record_failure",
    "rekey_history",
    "signed_by_any",
    "signed_entry",
    "signing_key",
    "verify_chain",
    "witness_path",
    "write_witness",
]
