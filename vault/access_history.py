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
:func:`access_facts` is a pure function over authenticated entries.

Credential names can be reused after ``remove``: what the log says about a name
before its newest signed ``add`` or ``remove`` is about another credential and is
forgotten. Grant, ungrant and revocation entries name their client by its name
("to client NAME", "from client NAME", "client NAME; exposed: ..."); client names
are unique and the reference never deletes a client row, so a name stands for one
client. A client's reads are signed with its own key and name it by id.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.orm import Session

from vault import audit, crypto, records
from vault.audit_entry import ADMIN, GENESIS, ROOT_SIGNER, AuditRow, entry_hash, signed_entry
from vault.errors import IntegrityError
from vault.store import AuditRecord, driver_rows, tolerant_text

OWNER_ACTIONS = frozenset(
    {"add", "remove", "edit", "rotate-start", "grant", "ungrant", "client-revoke"}
)
"""The owner's actions whose signed entries these facts are made of."""

VERSION_ACTIONS = frozenset({"add", "edit", "rotate-start"})
"""The owner's actions that create a version (the entry names its number)."""

_GRANTED = "to client "
_UNGRANTED = "from client "
_REVOKED = "client "


@dataclass(frozen=True)
class SignedEntry:
    """An audit entry whose hash and signature verified: only the columns used here."""

    seq: int
    action: str
    credential: str | None
    version: int | None
    detail: str
    signer: str
    """``root`` (the vault key) or the id of the client whose key signed it."""


@dataclass(frozen=True)
class SignedLog:
    """The authenticated entries of the chain, and where the chain breaks."""

    entries: tuple[SignedEntry, ...]
    broken_at: int | None
    """The position of the first entry that is missing, edited, of the wrong type or
    does not link to the one before it; None when the chain is intact. Entries after
    it are still listed when their own hash and signature verify."""


def read_signed_log(
    session: Session,
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
    columns = [getattr(AuditRecord, name) for name in AuditRow.__dataclass_fields__]
    query = select(*columns).order_by(AuditRecord.seq)
    candidates: list[tuple[AuditRow, bytes]] = []
    broken_at: int | None = None
    prev_hash, expected = GENESIS, 1
    # A text value that is not UTF-8 (SQLite stores any bytes) must not stop the walk:
    # read through tolerant_text, it fails to hash below and breaks the chain there.
    with tolerant_text(session):
        rows = [AuditRow(*values) for values in driver_rows(session, query)]
        # Entries before a `passwd --rekey` were signed with the keys it replaced.
        rekeys = audit.rekey_history(session, vault_id, root_public)
    for row in rows:
        if records.type_damage(row, AuditRecord.__tablename__) is not None:
            if broken_at is None:
                broken_at = expected
            expected += 1
            continue
        try:
            intact = crypto.constant_time_equal(entry_hash(vault_id, row), row.entry_hash)
        except UnicodeEncodeError:  # a lone surrogate from tolerant_text
            intact = False
        if broken_at is None and (row.seq != expected or row.prev_hash != prev_hash or not intact):
            broken_at = expected
        prev_hash, expected = row.entry_hash, row.seq + 1
        if not intact or row.outcome != "ok" or row.signature is None:
            continue
        if row.signer == ROOT_SIGNER and row.actor == ADMIN and row.action in OWNER_ACTIONS:
            key = audit.key_before_rekey(rekeys, row.seq, ROOT_SIGNER, root_public)
            candidates.append((row, key or root_public))
        elif client is not None and row.signer == client[1] and row.action == "read":
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
            crypto.verify_signature(
                key, signed_entry(vault_id, row.entry_hash), row.signature or b""
            )
        except IntegrityError:
            continue
        kept.append(
            SignedEntry(
                row.seq, row.action, row.credential, row.version, row.detail, row.signer or ""
            )
        )
    return SignedLog(tuple(kept), broken_at)


@dataclass(frozen=True)
class RepeatedVersion:
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

    Pure: the same entries always give the same facts.
    """
    facts = AccessFacts()
    created: dict[str, dict[int, int]] = {}
    for entry in entries:
        name = entry.credential
        if entry.signer != ROOT_SIGNER:
            if entry.action == "read" and name is not None and entry.version is not None:
                facts.reads.setdefault(name, {}).setdefault(entry.signer, set()).add(entry.version)
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
    return facts


__all__ = [
    "OWNER_ACTIONS",
    "VERSION_ACTIONS",
    "AccessFacts",
    "RepeatedVersion",
    "SignedEntry",
    "SignedLog",
    "access_facts",
    "read_signed_log",
]
