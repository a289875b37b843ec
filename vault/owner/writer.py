"""The owner's unit of work: the one way the holder of the passphrase writes a vault.

A :class:`Writer` holds the store, the unlocked root identity, the vault id and its
verified public key, the signed audit log read so far, and the open batch, if any.
Every owner operation (:mod:`vault.owner.credentials`, :mod:`vault.owner.clients`,
:mod:`vault.owner.passphrase`, :mod:`vault.owner.rekey`, :mod:`vault.owner.policies`,
:mod:`vault.owner.rotation`) runs as ``with writer.write() as transaction: ...`` and uses
the shared steps here: look a head up, open a version, add, store and retire a
version, resolve and cross-check grantees, append the signed audit entry. The
transaction and its lock (SQLite's ``BEGIN IMMEDIATE``, PostgreSQL's audit head row
lock) come from the store (:class:`vault.db.transaction.Store`: a vault file's
:class:`vault.db.sqlite_store.SqliteStore`, a URL's :class:`vault.db.store.EngineStore`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from vault.db import access_history, audit, log_checkpoint, queries
from vault.db.inventory import row_lock, verified_head
from vault.db.transaction import Store, Transaction
from vault.errors import AccessDenied, Conflict, IntegrityError, NotFound, quoted
from vault.format import records, schema, stages
from vault.format.access import beyond_scope
from vault.format.audit_entry import new_entry
from vault.format.editable import EditableClient, EditableHead
from vault.format.identities import RootIdentity, RootKeys
from vault.format.keywrap import Recipient
from vault.format.model import CredentialMetadata, lookup_name, split_list, to_epoch, utc_now
from vault.format.schema import ClientRow, PayloadRow, VersionRow, WrapRow

if TYPE_CHECKING:
    from vault.db.tables import PayloadRecord, VersionRecord, WrapRecord

BATCH_QUEUE_ROWS = 5_000
"""Rows a batch's adds queue before they are inserted (bounds the batch's memory)."""

AUDIT_TABLE = schema.AUDIT_LOG.name
"""The audit table, for :meth:`Writer.insert_rows` of entries made apart (rekey)."""

_TABLE_ORDER = {name: i for i, name in enumerate(schema.TABLES)}
"""Tables in the order a new vault creates them: a row's parents come first."""

Grantee = ClientRow | EditableClient
"""A client a version's data key is wrapped for: as :meth:`Writer.grantees` read it, or
a client made or re-keyed in the same transaction."""


def recipient_keys(
    root_public: bytes, clients: Iterable[tuple[str, bytes]] = ()
) -> dict[Recipient, bytes]:
    """Who a version's data key is wrapped for, and with which X25519 key: the root
    (``root_public``) and each client (id, key) given.

    The one rule for the choice of wrap key: a write passes the handle's root key and
    its verified grantees; a rekey passes the new root key and the re-keyed clients'
    new keys (their old ones stop working with it).
    """
    keys = {Recipient.root(): root_public}
    keys.update((Recipient.client(client_id), public) for client_id, public in clients)
    return keys


def record_refusal(
    store: Store,
    vault_id: bytes,
    action: str,
    detail: str,
    *,
    credential: str | None = None,
    identity: RootKeys | None = None,
) -> None:
    """Audit an owner's refusal or failure in a transaction of its own (never raises
    for a failure to write it): signed by ``identity``, or unsigned before any key is
    unlocked (a wrong passphrase)."""
    audit.record_failure(
        store,
        vault_id,
        audit.ADMIN,
        action,
        detail,
        credential=credential,
        signer=(audit.ROOT_SIGNER, identity.sign) if identity is not None else None,
    )


BatchMark = tuple[tuple[int, bytes] | None, int, dict[str, int]]


@dataclass
class _Batch:
    """The state of an open :meth:`Writer.batch`.

    Adds inside a batch queue their rows (``queue``, per table) instead of inserting
    them one statement at a time; the queue is inserted, one executemany per table,
    before any other operation or read, every :data:`BATCH_QUEUE_ROWS` rows, and at
    the end. ``names`` are the names of the vault's credentials, queued ones included,
    read at the batch's first add (it holds the write lock: only its own adds and
    removes change them), so that an add costs no query.
    """

    transaction: Transaction
    failures: list[Callable[[], None]]
    audit_head: tuple[int, bytes] | None = None
    checkpoint: bool = False
    queueing: bool = False
    queue: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    queued: int = 0
    names: set[str] | None = None

    def mark(self) -> BatchMark:
        """Where the batch stands, for :meth:`back_to` if the next operation fails."""
        return self.audit_head, self.queued, {t: len(rows) for t, rows in self.queue.items()}

    def back_to(self, mark: BatchMark) -> None:
        """Forget what a failed operation queued and the audit head it moved."""
        self.audit_head, self.queued, lengths = mark
        for table, rows in self.queue.items():
            del rows[lengths.get(table, 0) :]


class Writer:
    """The owner's unit of work over one store, with the unlocked root identity.

    One per unlocked handle, for one thread. Operations write through :meth:`write`,
    read through :meth:`read`, and append their signed entry with :meth:`audit`.
    """

    def __init__(
        self, store: Store, identity: RootKeys, vault_id: bytes, verify_public: bytes
    ) -> None:
        self._store = store
        self._identity = identity
        self._vault_id = vault_id
        self._verify_public = verify_public
        self._batch: _Batch | None = None
        # The signed log read so far: an owner's write reads only what was appended since.
        self._signed_log = self._verified_log()

    # ---------------------------------------------------------------- what it holds

    @property
    def store(self) -> Store:
        """The store written to."""
        return self._store

    @property
    def identity(self) -> RootKeys:
        """The root keys this writer signs and unwraps with: a :class:`RootIdentity`
        when the vault was opened with the passphrase or recovery key, an unlock
        agent's stand-in when opened through the agent."""
        return self._identity

    def private_identity(self) -> RootIdentity:
        """The root private keys themselves, which a new passphrase slot encrypts.

        :raises AccessDenied: when the vault was opened through the unlock agent, which
            never hands the keys out.
        """
        if not isinstance(self._identity, RootIdentity):
            raise AccessDenied(
                "changing the passphrase needs the passphrase itself, not the unlock agent"
            )
        return self._identity

    @property
    def vault_id(self) -> bytes:
        """The vault's random 16-byte id."""
        return self._vault_id

    @property
    def verify_public(self) -> bytes:
        """The root Ed25519 public key every signed row verifies with."""
        return self._verify_public

    @property
    def in_batch(self) -> bool:
        """Whether a :meth:`batch` is open."""
        return self._batch is not None

    def replace_identity(self, identity: RootKeys) -> None:
        """Write with ``identity`` from now on (a committed rekey); what was verified of
        the signed log was verified with the old key, so it is read again."""
        self._identity = identity
        self._verify_public = identity.verify_public
        self._signed_log = self._verified_log()

    def _verified_log(self) -> access_history.VerifiedLog:
        """A reading of the signed log that resumes from the prefix a former process
        verified with these root keys (:mod:`vault.db.log_checkpoint`)."""
        return access_history.VerifiedLog(
            self._vault_id,
            self._verify_public,
            log_checkpoint.FileCheckpoint(
                self._vault_id, self._verify_public, self._identity.keyed_fingerprint
            ),
        )

    # ---------------------------------------------------------------- transactions

    @contextmanager
    def batch(self) -> Iterator[None]:
        """Make every write inside the block one transaction (see
        :meth:`vault.owner.admin.AdminVault.batch`). A batch inside a batch joins it.

        :raises StoreError: when the database fails (nothing of the batch is kept).
        """
        if self._batch is not None:
            yield
            return
        failures: list[Callable[[], None]] = []
        try:
            with self._store.write() as transaction:
                batch = self._batch = _Batch(transaction, failures)
                try:
                    yield
                    with self._store.translate_errors():
                        self._insert_queue(batch)
                finally:
                    self._batch = None
        finally:
            for record in failures:
                record()
        if batch.checkpoint:
            self._store.checkpoint()

    @contextmanager
    def write(self, *, queued: bool = False) -> Iterator[Transaction]:
        """The transaction of one write operation: its own transaction, or in a batch the
        batch's. ``queued``: the operation only inserts (through :meth:`insert`), so
        in a batch its rows may wait in the queue.

        In a batch, an operation that raises leaves nothing behind: neither queued rows,
        nor rows and half-changed objects (a savepoint), nor the audit head it moved.

        :raises StoreError: when the database fails.
        """
        batch = self._batch
        if batch is None:
            with self._store.write() as transaction:
                yield transaction
            return
        with self._store.translate_errors():
            if not queued or batch.queued >= BATCH_QUEUE_ROWS:
                self._insert_queue(batch)
            mark = batch.mark()
            try:
                if queued:
                    batch.queueing = True
                    try:
                        yield batch.transaction
                    finally:
                        batch.queueing = False
                else:
                    with batch.transaction.savepoint():
                        yield batch.transaction
            except BaseException:
                batch.back_to(mark)
                raise

    @contextmanager
    def read(self) -> Iterator[Transaction]:
        """A read transaction; in a batch, the batch's transaction (another connection would
        not see its uncommitted writes).

        :raises StoreError: when the database fails.
        """
        batch = self._batch
        if batch is None:
            with self._store.read() as transaction:
                yield transaction
            return
        with self._store.translate_errors():
            self._insert_queue(batch)
            yield batch.transaction

    def checkpoint(self) -> None:
        """Checkpoint the WAL after deletes; in a batch, once it has committed (no
        checkpoint can pass the batch's open transaction)."""
        if self._batch is not None:
            self._batch.checkpoint = True
        else:
            self._store.checkpoint()

    # ---------------------------------------------------------------- inserting

    def insert(self, transaction: Transaction, *new: tuple[object, ...]) -> None:
        """Insert new plain rows (:mod:`vault.format.schema`, as
        :mod:`vault.format.records` seals them) in the order given (foreign keys point
        backwards).

        Plain INSERT statements, not the ORM's unit of work: nothing here is read back
        or changed afterwards. In a batch's queued operation the rows wait in the queue.
        """
        self.insert_rows(transaction, [schema.row_values(r) for r in new])

    def insert_rows(self, transaction: Transaction, rows: list[tuple[str, dict[str, Any]]]) -> None:
        """Insert (table, column values) rows as :meth:`insert` does."""
        batch = self._batch
        if batch is not None and batch.queueing:
            for table, values in rows:
                batch.queue.setdefault(table, []).append(values)
            batch.queued += len(rows)
            return
        execute = transaction.execute
        for table, values in rows:
            execute(queries.insert_sql(table, tuple(values)), values)

    @staticmethod
    def _insert_queue(batch: _Batch) -> None:
        """Insert a batch's queued rows: one executemany per table, parents first.

        In a savepoint: if it fails, nothing of it stays and the queue is kept, so the
        batch fails again at its end rather than commit a part of it.
        """
        if not batch.queued:
            return
        with batch.transaction.savepoint():
            execute_many = batch.transaction.execute_many
            for table in sorted(batch.queue, key=_TABLE_ORDER.__getitem__):
                rows = batch.queue[table]
                if rows:
                    # Every row of a table's queue has the same columns (all of them).
                    execute_many(queries.insert_sql(table, tuple(rows[0])), rows)
        batch.queue.clear()
        batch.queued = 0

    # ---------------------------------------------------------------- audit

    def audit(
        self,
        transaction: Transaction,
        action: str,
        credential: str | None = None,
        version: int | None = None,
        detail: str = "",
    ) -> None:
        """Append the owner's signed audit entry for an operation, in its transaction."""
        batch = self._batch
        entry = new_entry(
            self._vault_id,
            # The batch holds the write lock: the entry it appended last is the head.
            batch.audit_head
            if batch is not None and batch.audit_head
            else audit.last_entry(transaction),
            actor=audit.ADMIN,
            action=action,
            credential=credential,
            version=version,
            detail=detail,
            signer=(audit.ROOT_SIGNER, self._identity.sign),
        )
        if batch is not None:
            batch.audit_head = (entry.seq, entry.entry_hash)
        self._signed_log.appended(entry)
        # Inserted like the operation's other new rows (queued in a batch's add).
        self.insert_rows(transaction, [(AUDIT_TABLE, entry.values())])

    def record_action(self, action: str, detail: str = "") -> None:
        """Append a signed entry of the owner's for an action done outside the tables
        (e.g. ``share``, ``restore``), in a write of its own.

        :raises StoreError: when the database fails.
        """
        with self._store.write() as transaction:
            self.audit(transaction, action, detail=detail)

    def record_failure(self, action: str, detail: str, credential: str | None = None) -> None:
        """Audit a refusal in a transaction of its own; in a batch, once it has ended
        (it holds the write lock, and the refusal must be kept if it rolls back)."""

        def record() -> None:
            record_refusal(
                self._store,
                self._vault_id,
                action,
                detail,
                credential=credential,
                identity=self._identity,
            )

        if self._batch is not None:
            self._batch.failures.append(record)
        else:
            record()

    # ---------------------------------------------------------------- lookups

    def head(
        self, transaction: Transaction, name: str, *, for_update: bool = False
    ) -> EditableHead:
        """The head of credential ``name``, its signature verified (row-locked on
        PostgreSQL with ``for_update``), to change and store with :meth:`sign_head`.

        :raises NotFound: when there is no such credential.
        :raises InvalidInput: for a name that is not UTF-8 text.
        :raises IntegrityError: when the head does not verify.
        """
        return verified_head(
            transaction, self._vault_id, self._verify_public, name, for_update=for_update
        )

    def client(
        self, transaction: Transaction, name: str, *, for_update: bool = False
    ) -> EditableClient:
        """The row of client ``name``, its signature verified (row-locked on PostgreSQL
        with ``for_update``), to change and store with :meth:`sign_client`.

        :raises NotFound: when there is no such client.
        :raises InvalidInput: for a name that is not UTF-8 text.
        :raises IntegrityError: when the row does not verify.
        """
        found = transaction.execute(
            queries.CLIENT_NAMED_SQL + row_lock(transaction, for_update=for_update),
            {"name": lookup_name(name, "client")},
        )
        if not found:
            raise NotFound(f"no client named {quoted(name)}; see: exvault client list")
        client = EditableClient(*found[0])
        records.verify_client(self._verify_public, self._vault_id, client)
        return client

    def client_named(self, transaction: Transaction, name: str) -> bool:
        """Whether a client is named ``name`` (revoked ones keep their names)."""
        return bool(transaction.execute(queries.CLIENT_NAMED_SQL, {"name": name}))

    def name_taken(self, transaction: Transaction, name: str) -> bool:
        """Whether a credential is named ``name`` (in a batch, queued ones too)."""
        batch = self._batch
        execute = transaction.execute
        if batch is None:
            return bool(execute(queries.CREDENTIAL_NAMED_SQL, {"name": name}))
        if batch.names is None:
            batch.names = {row[0] for row in execute(queries.CREDENTIAL_NAMES_SQL, {})}
        return name in batch.names

    def names_changed(self, *, added: str | None = None, removed: str | None = None) -> None:
        """Keep a batch's known names (:meth:`name_taken`) in step with an add or remove."""
        batch = self._batch
        if batch is None or batch.names is None:
            return
        if added is not None:
            batch.names.add(added)
        if removed is not None:
            batch.names.discard(removed)

    # ---------------------------------------------------------------- signing

    def sign_head(self, transaction: Transaction, head: EditableHead, *, new: bool = False) -> None:
        """Sign ``head`` (bumping its revision) with the root key and store it: an
        UPDATE of the stored head, or with ``new`` the INSERT of a new one (queued in a
        batch's queued add, like :meth:`insert`)."""
        records.sign_head(self._identity, self._vault_id, head)
        if new:
            self.insert(transaction, head.row())
        else:
            transaction.execute(queries.UPDATE_HEAD_SQL, head.values())

    def sign_client(
        self, transaction: Transaction, client: EditableClient, *, new: bool = False
    ) -> None:
        """Sign ``client`` with the root key and store it, as :meth:`sign_head` does."""
        records.sign_client(self._identity, self._vault_id, client)
        if new:
            self.insert(transaction, client.row())
        else:
            transaction.execute(queries.UPDATE_CLIENT_SQL, client.values())

    # ---------------------------------------------------------------- versions

    def check_staged_version(
        self, head: EditableHead, stage: str, row: VersionRecord | VersionRow
    ) -> CredentialMetadata:
        """Verify that ``row`` is the version ``head`` labels ``stage``; its metadata.

        :raises IntegrityError: when it is not, or does not verify.
        """
        return records.check_staged_version(self._verify_public, self._vault_id, head, stage, row)

    def unwrap(self, row: VersionRecord | VersionRow, root_wrap: WrapRecord | WrapRow) -> bytes:
        """The data key of version ``row``, unwrapped with the root key.

        :raises IntegrityError: when the wrap does not authenticate.
        """
        return records.unwrap_root_dek(self._vault_id, row, root_wrap, self._identity)

    def decrypt(
        self,
        row: VersionRecord | VersionRow,
        root_wrap: WrapRecord | WrapRow,
        payload: PayloadRecord | PayloadRow,
    ) -> dict[str, str]:
        """The secret fields of version ``row`` (whose signature the caller verified):
        its data key unwrapped with the root key, its payload decrypted.

        :raises IntegrityError: when the wrap or the ciphertext does not authenticate.
        """
        return records.open_payload(self._vault_id, row, payload, self.unwrap(row, root_wrap))

    def staged_version(
        self, transaction: Transaction, head: EditableHead, stage: str
    ) -> tuple[CredentialMetadata, VersionRow, PayloadRow, WrapRow]:
        """The version ``head`` (verified) labels ``stage``, verified against it: its
        metadata, its row, its payload and its data key's wrap for the root.

        :raises NotFound: when the head labels no version ``stage``.
        :raises IntegrityError: when a row is missing or is not the one the head names.
        """
        version = stages.version_at(head, stage)
        # The bot's statement, with the root as the recipient: the head (as this
        # transaction left it) joined with the version, payload and wrap it labels.
        found = transaction.execute(
            queries.STAGE_SQL[stage], {"name": head.name, "recipient": Recipient.root().column}
        )
        _head, row, payload, wrap = (
            queries.split_stage_row(found[0]) if found else (None, None, None, None)
        )
        if row is None or payload is None or wrap is None or row.credential_id != head.id:
            raise IntegrityError(f'damaged vault: version {version} of "{head.name}" is incomplete')
        return self.check_staged_version(head, stage, row), row, payload, wrap

    def open_version(
        self, transaction: Transaction, head: EditableHead, stage: str
    ) -> tuple[CredentialMetadata, dict[str, str]]:
        """Verify and decrypt the version ``head`` (verified) labels ``stage``: its
        metadata and fields. The owner's one open-a-version path.

        :raises NotFound: when the head labels no version ``stage``.
        :raises IntegrityError: when a row is missing or is not the one the head names.
        """
        meta, row, payload, wrap = self.staged_version(transaction, head, stage)
        return meta, self.decrypt(row, wrap, payload)

    @staticmethod
    def has_wrap(
        transaction: Transaction, head: EditableHead, version: int, recipient: Recipient
    ) -> bool:
        """Whether version ``version`` of ``head`` has a data key wrapped for ``recipient``."""
        found = transaction.execute(
            queries.WRAP_EXISTS_SQL,
            {"id": head.id, "version": version, "recipient": recipient.column},
        )
        return bool(found)

    @staticmethod
    def next_version(head: EditableHead) -> int:
        """Allocate a new version number from the head's signed counter (re-sign the head
        after): never the highest row plus one, which reuses the number of a version
        row someone deleted, so that a saved copy of that row could be put back."""
        head.version_counter += 1
        return head.version_counter

    def add_version(
        self,
        transaction: Transaction,
        head: EditableHead,
        version: int,
        metadata: CredentialMetadata,
        payload: Mapping[str, str],
        now: int,
        *,
        grantees: Sequence[Grantee],
    ) -> records.SealedVersion:
        """Seal and store version ``version`` of ``head``, wrapped for the root and
        ``grantees`` (as :meth:`check_scopes` returned them); returns it."""
        sealed = records.seal_version(
            self._identity, self._vault_id, head.id, version, metadata, payload, now
        )
        self.store_version(transaction, sealed, grantees)
        return sealed

    def store_version(
        self, transaction: Transaction, sealed: records.SealedVersion, grantees: Sequence[Grantee]
    ) -> None:
        """Insert a sealed version's rows, its data key wrapped for the root and every
        client of ``grantees`` (none for a credential made in this transaction: grants
        name a credential's random id, so none can name it yet)."""
        keys = recipient_keys(
            self._identity.encryption_public, ((c.id, c.encryption_public) for c in grantees)
        )
        self.insert(
            transaction,
            sealed.version,
            sealed.payload,
            *(
                records.wrap_dek(
                    sealed.dek,
                    self._vault_id,
                    sealed.version,
                    recipient,
                    public,
                    sealed.meta_digest,
                )
                for recipient, public in keys.items()
            ),
        )

    @staticmethod
    def retire_version(transaction: Transaction, head: EditableHead, version: int | None) -> None:
        """Delete the ciphertext and wraps of a version that lost its last stage label
        (nothing when ``version`` is None or still labelled)."""
        if version is None or stages.stages_of(head, version):
            return
        execute = transaction.execute
        for sql in queries.RETIRE_VERSION_SQL:
            execute(sql, {"id": head.id, "version": version})

    @staticmethod
    def delete_credential(transaction: Transaction, head: EditableHead) -> None:
        """Delete the credential of ``head`` with its versions, ciphertexts, wraps and
        grants."""
        transaction.execute(queries.DELETE_CREDENTIAL_SQL, {"id": head.id})

    # ---------------------------------------------------------------- grantees

    def access_facts(
        self, transaction: Transaction, credentials: Iterable[str]
    ) -> tuple[access_history.AccessFacts, int | None]:
        """What the signed audit log says, complete for ``credentials`` and for
        revocations, and where its chain breaks (None when intact); read only since
        this writer's last look (:class:`vault.db.access_history.VerifiedLog`)."""
        return self._signed_log.facts(transaction, credentials, locked=self._batch is not None)

    def grantees(self, transaction: Transaction, head: EditableHead) -> list[ClientRow]:
        """The clients, neither revoked nor expired, in ``head``'s signed grantee set
        (verified with the head), their records verified, each grant backed by the
        signed audit log.

        The head's set, not the ``grants`` table: a grant row put back after an ungrant
        (it stays validly signed) grants nothing; a whole head put back from before an
        ungrant still names the client, and the signed log refuses it.

        :raises IntegrityError: when a record does not verify, or a grantee is not
            backed by a standing signed grant.
        """
        granted = records.split_grantees(head)
        if not granted:
            return []
        execute = transaction.execute
        # One statement per grantee, the bot's: a credential has a few, and an id list
        # would need an expanding parameter that plain SQL has not.
        rows = [
            ClientRow._make(found[0])
            for client_id in granted
            if (found := execute(queries.CLIENT_SQL, {"id": client_id}))
        ]
        now = to_epoch(utc_now())
        clients = []
        for client in rows:
            records.verify_client(self._verify_public, self._vault_id, client)
            # Revocation and expiry are read from the verified record, never filtered in
            # SQL first: an edited revoked_at must fail the signature, not hide a row.
            # An expired client is refused at open; it gets no wrap of a new version.
            if client.revoked_at is None and (client.expires_at is None or client.expires_at > now):
                clients.append(client)
        if clients:
            self._check_grants_signed(transaction, head, clients)
        return clients

    def _check_grants_signed(
        self, transaction: Transaction, head: EditableHead, clients: list[ClientRow]
    ) -> None:
        """Refuse to wrap for a grantee unless the signed audit log backs its grant.

        A grant row is signed, but a copy of it put back after ``ungrant`` or ``client
        revoke`` (with the client row) verifies again; the owner's signed entries
        cannot be deleted from the chain unnoticed. So the newest signed word about the
        (client, credential) pair must be a grant, the client must have no signed
        revocation, and the chain must be intact (an ungrant cut out of its middle
        would otherwise go unseen).

        :raises IntegrityError: naming the credential and the client; nothing written.
        """
        facts, broken_at = self.access_facts(transaction, (head.name,))
        for client in clients:
            if broken_at is not None:
                raise IntegrityError(
                    f"damaged vault: the audit log is broken at entry {broken_at}, so the "
                    f'grant of "{head.name}" to client "{client.name}" cannot be confirmed; '
                    "run exvault verify"
                )
            if not facts.grant_standing(client.name, head.name):
                raise IntegrityError(
                    f'damaged vault: "{head.name}" is granted to client "{client.name}" but '
                    "the signed audit log shows no standing grant (a grant row put back?); "
                    "run exvault verify"
                )

    def check_scopes(
        self, transaction: Transaction, head: EditableHead, permissions: tuple[str, ...]
    ) -> list[ClientRow]:
        """Refuse permissions that a granted client's maximum scope does not allow.

        :returns: the grantees (:meth:`grantees`), for :meth:`add_version`.
        :raises Conflict: when a grantee's scope excludes one of ``permissions``.
        :raises IntegrityError: as :meth:`grantees`.
        """
        grantees = self.grantees(transaction, head)
        for client in grantees:
            extra = beyond_scope(permissions, split_list(client.max_scope))
            if extra:
                raise Conflict(
                    f'client "{client.name}" is granted "{head.name}" but its maximum scope '
                    f"excludes {', '.join(extra)}; ungrant it first"
                )
        return grantees


class OwnerHandle(Protocol):
    """What an owner's operation is given when it is called with a handle rather than a
    :class:`Writer` (an :class:`vault.owner.admin.AdminVault`): its writer."""

    @property
    def writer(self) -> Writer:
        """The handle's unit of work."""
        ...
