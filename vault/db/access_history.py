"""What the signed audit log says about grants, revocations, client reads and versions.

Anyone who can write the database can delete a row of ``grants`` or ``dek_wraps``,
and put a deleted one back: a copy of a row the owner signed verifies again. What
they cannot do is forge an entry signed by the vault key (or by a client's key), nor
take one out of the middle of the hash chain unnoticed. So the owner's writes and
``exvault verify`` check the grant rows against those entries:

- before a data key is wrapped for a grantee, the newest signed word about that
  (client, credential) pair must be a ``grant``, and the client must have no signed
  ``client-revoke`` (:meth:`AccessFacts.grant_standing`);
- a revocation marks exposed what the client could read according to the log, not
  only according to the rows it may have deleted (:attr:`AccessFacts.granted`,
  :attr:`AccessFacts.reads`);
- ``verify`` reports signed grants whose rows vanished, grant rows the log does not
  back, and version numbers created twice (:attr:`AccessFacts.repeated_versions`).

Two layers: :func:`read_signed_log` reads and authenticates entries (the only I/O);
:func:`access_facts` is a pure function over authenticated entries, defined by its
incremental form :class:`FactsFold`. :class:`VerifiedLog` is the owner's handle's
incremental reading: it remembers the verified prefix, reads only the entries after it
and verifies an entry's signature only once its credential is asked about.

Credential names can be reused after ``remove``: what the log says about a name
before its newest signed ``add`` or ``remove`` is about another credential and is
forgotten. Grant, ungrant and revocation entries name their client by its name
("to client NAME", "from client NAME", "client NAME; exposed: ..."); client names
are unique and the reference never deletes a client row, so a name stands for one
client. A client's reads are signed with its own key and name it by id.
"""

# Annotations are not postponed here (no `from __future__ import annotations`):
# typing.NamedTuple compiles each postponed (string) field annotation when its class
# is built, about 10 µs each, and every command and bot builds these at start.
import itertools
import marshal
from collections.abc import Collection, Iterable
from dataclasses import dataclass, field
from typing import Any, NamedTuple, Protocol

from cryptography.hazmat.primitives import hashes

from vault.db import audit, queries
from vault.db.transaction import Transaction
from vault.errors import IntegrityError
from vault.format import aead, identities, records
from vault.format.audit_entry import (
    ADMIN,
    GENESIS,
    ROOT_SIGNER,
    AuditRow,
    entry_hash,
    signed_entry,
)
from vault.format.schema import AUDIT_LOG

OWNER_ACTIONS = frozenset(
    {"add", "remove", "edit", "rotate-start", "grant", "ungrant", "client-revoke"}
)
"""The owner's actions whose signed entries these facts are made of."""

VERSION_ACTIONS = frozenset({"add", "edit", "rotate-start"})
"""The owner's actions that create a version (the entry names its number)."""

_GRANTED = "to client "
_UNGRANTED = "from client "
_REVOKED = "client "


# A named tuple, not a dataclass: building a dataclass at import slows every command's start.
class SignedEntry(NamedTuple):
    """An audit entry whose hash and signature verified: only the columns used here."""

    seq: int
    action: str
    credential: str | None
    version: int | None
    detail: str
    signer: str
    """``root`` (the vault key) or the id of the client whose key signed it."""


# A named tuple, not a dataclass: building a dataclass at import slows every command's start.
class SignedLog(NamedTuple):
    """The authenticated entries of the chain, and where the chain breaks."""

    entries: tuple[SignedEntry, ...]
    broken_at: int | None
    """The position of the first entry that is missing, edited, of the wrong type or
    does not link to the one before it; None when the chain is intact. Entries after
    it are still listed when their own hash and signature verify."""


def read_signed_log(
    transaction: Transaction,
    vault_id: bytes,
    root_public: bytes,
    *,
    credentials: Collection[str] | None = None,
    client: tuple[str, str, bytes] | None = None,
) -> SignedLog:
    """Walk the whole audit chain and keep the signed entries these facts use.

    Kept: entries with outcome ``ok`` whose recomputed hash matches and whose
    signature verifies, signed by the vault key (``root_public``, the header's key)
    with actor ``admin`` and an action of :data:`OWNER_ACTIONS`; and, when ``client``
    is (name, id, verified Ed25519 public key), that client's own ``read`` entries.
    Revocations are always kept; the other owner's entries only when they are about
    one of ``credentials``, when given, and with ``client``, only about a credential
    that a grant, ungrant or read of that client names. The chain's links and hashes
    are checked for every entry; signatures only for the entries kept (an Ed25519
    verification costs more than the rest of the walk).

    :raises StoreError: when the database cannot be read (a damaged entry is no error:
        see :attr:`SignedLog.broken_at`).
    """
    candidates: list[tuple[AuditRow, bytes]] = []
    chain = _Chain(vault_id)
    rows = audit.audit_rows(transaction)
    # Entries before a `passwd --rekey` were signed with the keys it replaced.
    rekeys = audit.rekey_history(transaction, vault_id, root_public)
    for row in rows:
        if not chain.step(row):
            continue
        if _owner_fact(row):
            key = audit.key_before_rekey(rekeys, row.seq, ROOT_SIGNER, root_public)
            candidates.append((row, key or root_public))
        elif (
            client is not None
            and row.signer == client[1]
            and row.action == "read"
            and row.outcome == "ok"
            and row.signature is not None
        ):
            key = audit.key_before_rekey(rekeys, row.seq, client[1], client[2])
            candidates.append((row, key or client[2]))
    wanted = None if credentials is None else set(credentials)
    if client is not None:
        named = {
            row.credential
            for row, _key in candidates
            if row.credential is not None
            and (row.signer == client[1] or _grantee_of(row) == client[0])
        }
        wanted = named if wanted is None else wanted & named
    kept: list[SignedEntry] = []
    for row, key in candidates:
        if wanted is not None and row.action != "client-revoke" and row.credential not in wanted:
            continue
        try:
            identities.verify_signature(
                key, signed_entry(vault_id, row.entry_hash), row.signature or b""
            )
        except IntegrityError:
            continue
        kept.append(_signed_entry_of(row))
    return SignedLog(tuple(kept), chain.broken_at)


def _owner_fact(row: AuditRow) -> bool:
    """Whether ``row`` (its hash intact) is an owner's entry these facts are made of,
    once its signature verifies with the vault key."""
    return (
        row.outcome == "ok"
        and row.signature is not None
        and row.signer == ROOT_SIGNER
        and row.actor == ADMIN
        and row.action in OWNER_ACTIONS
    )


class _Chain:
    """The walk of the chain's links: where it stands and where it first broke."""

    def __init__(self, vault_id: bytes, prev_hash: bytes = GENESIS, expected: int = 1) -> None:
        self.vault_id = vault_id
        self.prev_hash = prev_hash
        self.expected = expected
        self.broken_at: int | None = None

    def step(self, row: AuditRow) -> bool:
        """Take the next row: True when its own hash matches its columns (it may then
        be trusted once its signature verifies), whether or not it links."""
        if records.type_damage(row, AUDIT_LOG.name) is not None:
            if self.broken_at is None:
                self.broken_at = self.expected
            self.expected += 1
            return False
        intact = _hash_intact(self.vault_id, row)
        if self.broken_at is None and (
            row.seq != self.expected or row.prev_hash != self.prev_hash or not intact
        ):
            self.broken_at = self.expected
        self.prev_hash, self.expected = row.entry_hash, row.seq + 1
        return intact


def _hash_intact(vault_id: bytes, row: AuditRow) -> bool:
    try:
        return aead.constant_time_equal(entry_hash(vault_id, row), row.entry_hash)
    except UnicodeEncodeError:  # a lone surrogate from tolerant_text
        return False


def _signed_entry_of(row: AuditRow) -> SignedEntry:
    return SignedEntry(
        row.seq, row.action, row.credential, row.version, row.detail, row.signer or ""
    )


# A named tuple, not a dataclass: building a dataclass at import slows every command's start.
class RepeatedVersion(NamedTuple):
    """Two signed entries that each created the same version of one credential."""

    credential: str
    version: int
    first_seq: int
    second_seq: int


@dataclass
class AccessFacts:
    """What the signed entries say, credential names as of their newest add/remove."""

    granted: dict[str, dict[str, int]] = field(default_factory=dict)
    """credential -> client name -> seq of the signed ``grant`` that is its newest word."""
    ungranted: dict[str, dict[str, int]] = field(default_factory=dict)
    """credential -> client name -> seq of the signed ``ungrant`` that is its newest word."""
    revoked: dict[str, int] = field(default_factory=dict)
    """client name -> seq of its signed ``client-revoke``."""
    reads: dict[str, dict[str, set[int]]] = field(default_factory=dict)
    """credential -> client id -> the versions that client read (its signed ``read ok``)."""
    repeated_versions: list[RepeatedVersion] = field(default_factory=list)

    def grant_standing(self, client_name: str, credential: str) -> bool:
        """True when the newest signed word about the pair is a grant and the client was
        never revoked: the only case where the owner may wrap a data key for it."""
        return client_name not in self.revoked and client_name in self.granted.get(credential, {})

    def readable_by(self, client_name: str, client_id: str) -> dict[str, set[int] | None]:
        """What the log says a client could read: credential -> the versions it read,
        or None (every version written while granted) for a grant never taken back."""
        out: dict[str, set[int] | None] = {}
        for credential, readers in self.reads.items():
            if client_id in readers:
                out[credential] = set(readers[client_id])
        for credential, grantees in self.granted.items():
            if client_name in grantees:
                out[credential] = None
        return out


def _grantee_of(row: AuditRow | SignedEntry) -> str | None:
    """The client a grant or ungrant entry names; None for any other entry."""
    if row.action == "grant":
        return _client_named(row.detail, _GRANTED)
    if row.action == "ungrant":
        return _client_named(row.detail, _UNGRANTED)
    return None


def _client_named(detail: str, prefix: str) -> str | None:
    """The client name a grant, ungrant or revocation detail starts with (see the
    module docstring for the forms), or None when the detail has another form."""
    if not detail.startswith(prefix):
        return None
    # A client name has neither spaces nor semicolons (model.NAME_PATTERN).
    name = detail[len(prefix) :].split(";", 1)[0].split(" ", 1)[0]
    return name or None


def access_facts(entries: Iterable[SignedEntry]) -> AccessFacts:
    """Fold authenticated entries, in chain order, into :class:`AccessFacts`.

    Pure: the same entries always give the same facts. Defined by the incremental
    :class:`FactsFold` (folding in pieces is folding at once).
    """
    fold = FactsFold()
    fold.add(entries)
    return fold.facts


@dataclass
class FactsFold:
    """The incremental form of :func:`access_facts`: the facts so far, and the versions
    each credential name created (to find a version created twice).

    Every entry changes only what is said of its own credential, except a
    ``client-revoke``, which changes only :attr:`AccessFacts.revoked`: entries about
    different credentials may be folded in any interleaving, as long as each
    credential's own entries (and the revocations) come in chain order.
    """

    facts: AccessFacts = field(default_factory=AccessFacts)
    created: dict[str, dict[int, int]] = field(default_factory=dict)

    def add(self, entries: Iterable[SignedEntry]) -> None:
        """Fold more authenticated entries, in chain order, after those folded so far."""
        facts, created = self.facts, self.created
        for entry in entries:
            name = entry.credential
            if entry.signer != ROOT_SIGNER:
                if entry.action == "read" and name is not None and entry.version is not None:
                    readers = facts.reads.setdefault(name, {})
                    readers.setdefault(entry.signer, set()).add(entry.version)
                continue
            if entry.action == "client-revoke":
                client = _client_named(entry.detail, _REVOKED)
                if client is not None:
                    facts.revoked.setdefault(client, entry.seq)
                continue
            if name is None:
                continue
            if entry.action in ("add", "remove"):
                # A new credential under an old name: what was said of the old one is void.
                for table in (facts.granted, facts.ungranted, facts.reads):
                    table.pop(name, None)
            if entry.action == "remove":
                created.pop(name, None)
            elif entry.action in VERSION_ACTIONS and entry.version is not None:
                versions = created.setdefault(name, {})
                if entry.version in versions:
                    facts.repeated_versions.append(
                        RepeatedVersion(name, entry.version, versions[entry.version], entry.seq)
                    )
                if entry.action == "add":
                    # An add starts the name's numbering afresh, after the comparison: two
                    # adds of one name with no remove between them repeat version 1.
                    versions.clear()
                versions[entry.version] = entry.seq
            elif (client := _grantee_of(entry)) is not None:
                # The newest word about the pair wins: a grant cancels an ungrant and back.
                now_in, now_out = (
                    (facts.granted, facts.ungranted)
                    if entry.action == "grant"
                    else (facts.ungranted, facts.granted)
                )
                now_out.get(name, {}).pop(client, None)
                now_in.setdefault(name, {})[client] = entry.seq


class WaitingEntry(NamedTuple):
    """An owner's entry of the verified prefix, its hash intact, not folded yet."""

    entry: SignedEntry
    entry_hash: bytes
    signature: bytes
    key: bytes
    """The public key ``signature`` must verify with (the root key of its time)."""
    checked: bool = False
    """Its signature need not be verified: the handle signed it itself (in memory only,
    never remembered in a :class:`LogState`'s file)."""


@dataclass
class LogState:
    """What :class:`VerifiedLog` knows of a verified prefix, for a later process."""

    head: tuple[int, bytes]
    """The seq and entry hash of the prefix's last entry."""
    fold: FactsFold
    waiting: dict[str, list[WaitingEntry]]
    """credential -> its owner's entries not folded yet, in chain order."""
    prefix: bytes
    """:class:`PrefixDigest` of the prefix's rows as they were walked."""


class PrefixDigest:
    """A running SHA-256 of the audit rows of a prefix, in chain order, every column as
    the database returned it (ints, text, bytes, None): equal digests, equal rows, so
    a walk of them gives the same verdict.

    Each row is encoded by ``marshal`` version 2 (no references, so the same values
    always give the same bytes; each encoding delimits itself, so the concatenation
    names the rows), in C: a small part of hashing each entry in Python.
    """

    def __init__(self) -> None:
        self._hash = hashes.Hash(hashes.SHA256())
        self.seq = 0
        """The seq of the last row added (0: none)."""
        self.valid = True
        """False once a row held a value of another type, or rows were left out (the
        handle's own entries): it then digests no prefix."""

    def add(self, rows: Iterable[Any], seq: int) -> None:
        """Add the rows after :attr:`seq` up to ``seq`` (plain tuples of their values)."""
        try:
            self._hash.update(b"".join(map(marshal.dumps, rows, itertools.repeat(2))))
        except ValueError:
            self.valid = False
        self.seq = seq

    def digest(self) -> bytes | None:
        """The digest of the rows so far; None when not :attr:`valid`."""
        return self._hash.copy().finalize() if self.valid else None


class LogCheckpoint(Protocol):
    """Where a :class:`VerifiedLog` keeps its state between processes
    (:class:`vault.db.log_checkpoint.FileCheckpoint`)."""

    def load(self) -> LogState | None:
        """The state saved last, or None when there is none to trust (never raises)."""
        ...

    def save(self, state: LogState) -> None:
        """Keep ``state`` for the next process (never raises: it only saves time)."""
        ...


class VerifiedLog:
    """The owner's incremental reading of the signed log, for one unlocked handle.

    It remembers the verified prefix: the seq and hash of the last entry walked, the
    chain intact up to it, and the facts folded from it (:class:`FactsFold`). The next
    :meth:`facts` reads only the entries after it, once the entry at the remembered
    seq still has the remembered hash and columns; otherwise (an entry rolled back, a
    log cut off or rewritten) it starts over, so a changed prefix is never trusted.

    Signatures cost more than the rest of the walk, so an owner's entry is verified
    only when its credential is first asked about; until then it waits, in chain
    order, among its credential's entries (revocations, about every credential, are
    verified as they are read). The owner's own entries (:meth:`appended`) extend the
    prefix without being read back or verified.

    A cut in the prefix (an entry deleted) is seen by counting its entries (not again
    inside a batch, which holds the write lock), and the walk starts over and refuses;
    an entry edited in place inside it is not read again until a new handle, but it
    cannot take back what it said: its signed facts are already folded (``exvault
    verify`` reports the break).

    With a ``checkpoint`` (:class:`LogCheckpoint`), the first :meth:`facts` starts from
    the state a former process saved, as if this handle had walked it itself, once the
    prefix's rows are, byte for byte, those it walked (:attr:`LogState.prefix`: read
    again, but not hashed entry by entry, so an entry edited in place inside it makes
    this handle walk again and refuse, as a full walk does); then every check above
    applies to it (the entry at its seq with its hash and columns, the prefix's count,
    a rekey among the new rows). So a checkpoint saves work but never changes the facts
    nor where the chain breaks. :meth:`facts` saves the state again when it changed:
    when it read new entries, or (outside a batch, whose operations append their own)
    folded waiting ones, and only while every row of its prefix was read in the call
    that digested it: once the handle's own entries (not read back) extend the prefix,
    it saves no more, and the next process reads them from the last checkpoint on.
    Waiting entries are saved with their signature, verified again by the process that
    folds them. Whoever holds the root keys
    (the unlock agent too) can write a checkpoint that passes: the owner, who can sign
    entries with them anyway.
    """

    def __init__(
        self, vault_id: bytes, root_public: bytes, checkpoint: LogCheckpoint | None = None
    ) -> None:
        self._vault_id = vault_id
        self._root_public = root_public
        self._checkpoint = checkpoint
        self._head: tuple[int, bytes] | None = None
        self._locked_by: Transaction | None = None
        """The transaction, holding the write lock, that read the prefix last (a batch's)."""
        self._fold = FactsFold()
        self._waiting: dict[str, list[WaitingEntry]] = {}
        """credential -> its hash-intact owner's entries not folded yet."""
        self._walked = 0
        """The entries read after the head (or from the start) by the last catch-up."""
        self._resumed = False
        """Whether the checkpoint was loaded (once, at the first :meth:`facts`)."""
        self._prefix = PrefixDigest()
        """The digest of the prefix's rows read so far (a checkpoint's)."""

    def facts(
        self, transaction: Transaction, credentials: Iterable[str], *, locked: bool = False
    ) -> tuple[AccessFacts, int | None]:
        """The facts of the whole signed log as it now stands, complete for
        ``credentials`` and for revocations, and where the chain breaks (None when it
        is intact). The facts are this object's own: read them before the next call.

        ``locked``: ``transaction`` holds the write lock for as long as it lives (a batch's),
        so once it has counted the prefix no one else can cut it.

        :raises StoreError: when the database cannot be read.
        """
        checkpoint = self._checkpoint
        if checkpoint is not None and not self._resumed:
            # Only at the first call: later ones know at least as much as the file.
            self._resumed = True
            state = checkpoint.load() if self._head is None else None
            if state is not None:
                self._resume(transaction, state)
        broken_at = self._catch_up(transaction, counted=locked and transaction is self._locked_by)
        self._locked_by = transaction if locked else None
        folded = False
        for name in credentials:
            waiting = self._waiting.pop(name, None)
            if waiting:
                folded = True
                self._fold.add(w.entry for w in waiting if self._signed(w))
        if (
            checkpoint is not None
            and self._head is not None  # None after a broken chain: never remembered
            and (self._walked or (folded and not locked))
        ):
            prefix = self._prefix.digest() if self._prefix.seq == self._head[0] else None
            if prefix is not None:
                checkpoint.save(LogState(self._head, self._fold, self._waiting, prefix))
        return self._fold.facts, broken_at

    def _resume(self, transaction: Transaction, state: LogState) -> None:
        """Start from a checkpoint's state when the rows of its prefix are those it
        walked: an entry edited in place inside it (which breaks the chain) makes a
        full walk refuse, so it must make this one walk again too."""
        with transaction.tolerant_text():
            rows = transaction.execute(queries.AUDIT_ROWS_TO_SQL, {"seq": state.head[0]})
        prefix = PrefixDigest()
        # Plain tuples, as the walk digests them (PostgreSQL's rows are not tuples).
        prefix.add(map(tuple, rows), state.head[0])
        digest = prefix.digest()
        if digest is None or not aead.constant_time_equal(digest, state.prefix):
            return
        self._head, self._fold, self._waiting = state.head, state.fold, state.waiting
        self._prefix = prefix

    def appended(self, row: AuditRow) -> None:
        """Extend the prefix with an entry this handle signed and is writing now.

        Only when it follows the remembered entry; otherwise the next :meth:`facts`
        reads it. If its write is rolled back, the next :meth:`facts` finds no entry
        with its hash at its seq and starts over.
        """
        if self._head is None or (row.seq, row.prev_hash) != (self._head[0] + 1, self._head[1]):
            return
        self._head = (row.seq, row.entry_hash)
        # Not read back: its row as stored (signature included) is not what a later
        # process would be told was walked, so this handle saves no checkpoint again.
        self._prefix.valid = False
        if row.outcome == "ok" and row.signer == ROOT_SIGNER and row.action in OWNER_ACTIONS:
            self._take(
                WaitingEntry(
                    _signed_entry_of(row),
                    row.entry_hash,
                    row.signature or b"",
                    self._root_public,
                    checked=True,
                )
            )

    def _catch_up(self, transaction: Transaction, *, counted: bool = False) -> int | None:
        """Walk the entries after the remembered one (all of them when the prefix
        changed); the position of the first break, if any. ``counted``: the prefix
        need not be counted again."""
        head = self._head
        self._walked = 0
        rows = audit.audit_rows(transaction, head[0] if head else None)
        if head is not None:
            first = rows[0] if rows else None
            # An intact prefix holds exactly the seqs 1 to head's: an entry cut out of
            # it (the chain rule's case) is seen without reading the prefix again.
            before = transaction.execute(queries.AUDIT_COUNT_TO_SQL, {"seq": head[0]})
            if (
                (not counted and before[0][0] != head[0])
                or first is None
                or first.seq != head[0]
                or records.type_damage(first, AUDIT_LOG.name) is not None
                or not _hash_intact(self._vault_id, first)
                or not aead.constant_time_equal(first.entry_hash, head[1])
            ):
                self._head = None
                return self._catch_up(transaction)
            chain = _Chain(self._vault_id, head[1], head[0] + 1)
            rows = rows[1:]
        else:
            self._fold, self._waiting = FactsFold(), {}
            self._prefix = PrefixDigest()
            chain = _Chain(self._vault_id)
        if head is not None and any(row.action == "rekey" for row in rows):
            # A rekey changes the key of every entry before it: walk it all again.
            self._head = None
            return self._catch_up(transaction)
        # After a remembered prefix with no rekey among the new rows, every new row
        # comes after every rekey, so signs with the current key: no history to read.
        rekeys = (
            audit.rekey_history(transaction, self._vault_id, self._root_public)
            if head is None
            else []
        )
        self._walked = len(rows)
        if self._checkpoint is not None:
            if self._prefix.seq == (head[0] if head else 0):
                # The rows as this walk reads them, in this transaction: what a
                # checkpoint of this prefix vouches for.
                self._prefix.add(map(tuple, rows), rows[-1].seq if rows else self._prefix.seq)
            else:
                self._prefix.valid = False
        for row in rows:
            if chain.step(row) and _owner_fact(row):
                key = audit.key_before_rekey(rekeys, row.seq, ROOT_SIGNER, self._root_public)
                self._take(
                    WaitingEntry(
                        _signed_entry_of(row),
                        row.entry_hash,
                        row.signature or b"",
                        key or self._root_public,
                    )
                )
        if chain.broken_at is not None:
            # A broken chain is never remembered: the facts of this walk serve this
            # call only (every entry that verifies counts), the next one walks it again.
            self._head = None
        elif rows:
            self._head = (rows[-1].seq, rows[-1].entry_hash)
        return chain.broken_at

    def _take(self, waiting: WaitingEntry) -> None:
        """Fold a revocation now; queue any other entry behind its credential's
        (folded, in chain order, when that credential is asked about)."""
        entry = waiting.entry
        name = entry.credential
        if name is None or entry.action == "client-revoke":
            if self._signed(waiting):
                self._fold.add((entry,))
        else:
            self._waiting.setdefault(name, []).append(waiting)

    def _signed(self, waiting: WaitingEntry) -> bool:
        if waiting.checked:
            return True
        try:
            identities.verify_signature(
                waiting.key, signed_entry(self._vault_id, waiting.entry_hash), waiting.signature
            )
        except IntegrityError:
            return False
        return True


__all__ = [
    "OWNER_ACTIONS",
    "VERSION_ACTIONS",
    "AccessFacts",
    "FactsFold",
    "LogCheckpoint",
    "LogState",
    "PrefixDigest",
    "RepeatedVersion",
    "SignedEntry",
    "SignedLog",
    "VerifiedLog",
    "WaitingEntry",
    "access_facts",
    "read_signed_log",
]
