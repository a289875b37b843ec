"""The unlocked vault: what the owner (the holder of the passphrase) can do.

:class:`AdminVault` composes :mod:`vault.db.store` (rows) with :mod:`vault.format.records` and
:mod:`vault.db.keyslots` (cryptography). Every write is one transaction, signed with the
root key; every read verifies what it reads.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta
from typing import Any, cast

from sqlalchemy import FromClause, Table, bindparam, delete, select, update
from sqlalchemy.engine import URL, Connection
from sqlalchemy.orm import Session

from vault import exchanges
from vault.db import access_history, audit, audit_file, keyslots, location
from vault.db.inventory import (
    Inventory,
    VaultStatus,
    Where,
    info_from_rows,
    load_header,
    open_store,
)
from vault.db.migrations import OwnerKeys
from vault.db.store import Store, tolerant_text
from vault.db.tables import (
    AuditRecord,
    Base,
    ClientRecord,
    CredentialRecord,
    GrantRecord,
    HeaderRecord,
    KeyslotRecord,
    PayloadRecord,
    VersionRecord,
    WrapRecord,
)
from vault.errors import (
    AccessDenied,
    AlreadyExists,
    Conflict,
    IntegrityError,
    InvalidInput,
    NotFound,
    VaultError,
    quoted,
)
from vault.format import (
    aead,
    encoding,
    identities,
    kdf_params,
    passphrase_kdf,
    records,
    recovery,
    stages,
)
from vault.format.access import DEFAULT_SCOPE, ClientInfo, beyond_scope, parse_scope
from vault.format.audit_entry import new_entry
from vault.format.identities import RootIdentity
from vault.format.kdf_params import KdfParams
from vault.format.keywrap import Recipient
from vault.format.model import (
    CredentialInfo,
    CredentialMetadata,
    join_list,
    lookup_name,
    split_list,
    to_epoch,
    utc_now,
    validate_name,
)
from vault.format.policy import Policy
from vault.network import parse_ip_whitelist
from vault.owner import sealed_slots
from vault.runtime.credential import Credential
from vault.runtime.token import ClientToken

UNCHANGED: object = object()
"""Sentinel for "leave this field as it is" in :meth:`AdminVault.edit`."""

BATCH_QUEUE_ROWS = 5_000
"""Rows a batch's adds queue before they are inserted (bounds the batch's memory)."""


def clean_payload(exchange: str, payload: Mapping[str, str]) -> dict[str, str]:
    """Normalize and validate secret fields for ``exchange``; drop empty optional ones.

    :raises InvalidInput: naming the field (never its value) that is wrong.
    """
    profile = exchanges.get_profile(exchange)
    fields: dict[str, str] = {}
    for key, value in payload.items():
        exchanges.validate_field_name(key)
        if not isinstance(value, str):
            raise InvalidInput(f"field {quoted(key)} must be a string")
        if value != "":
            fields[key] = value
    fields = exchanges.normalize_payload(fields)
    profile.validate_payload(fields)
    return fields


# Built once: a statement per add costs more than the query (Core: nothing to flush).
_NAME_TAKEN = select(CredentialRecord.id).where(CredentialRecord.name == bindparam("name"))


_COLUMNS: dict[FromClause, tuple[str, ...]] = {}


_AUDIT_TABLE = cast(Table, AuditRecord.__table__)


def _values(record: Base) -> dict[str, Any]:
    """A new ORM record's column values, for a Core INSERT (None where never set)."""
    table = record.__table__
    keys = _COLUMNS.get(table)
    if keys is None:
        keys = _COLUMNS[table] = tuple(c.key for c in table.columns)
    # A new object keeps what was set in its __dict__: read there, not through the
    # instrumented attributes (a batch reads 40 values per add).
    values = vars(record)
    return {key: values.get(key) for key in keys}


@dataclass
class _Batch:
    """The state of an open :meth:`AdminVault.batch`.

    Adds inside a batch queue their rows (``queue``, per table) instead of inserting
    them one statement at a time; the queue is inserted, one executemany per table,
    before any other operation or read, every :data:`BATCH_QUEUE_ROWS` rows, and at
    the end. ``names`` are the names of the vault's credentials, queued ones included,
    read at the batch's first add (it holds the write lock: only its own adds and
    removes change them), so that an add costs no query.
    """

    session: Session
    failures: list[Callable[[], None]]
    audit_head: tuple[int, bytes] | None = None
    checkpoint: bool = False
    queueing: bool = False
    queue: dict[Table, list[dict[str, Any]]] = field(default_factory=dict)
    queued: int = 0
    names: set[str] | None = None

    def mark(self) -> tuple[tuple[int, bytes] | None, int, dict[FromClause, int]]:
        """Where the batch stands, for :meth:`back_to` if the next operation fails."""
        return self.audit_head, self.queued, {t: len(rows) for t, rows in self.queue.items()}

    def back_to(self, mark: tuple[tuple[int, bytes] | None, int, dict[FromClause, int]]) -> None:
        """Forget what a failed operation queued and the audit head it moved."""
        self.audit_head, self.queued, lengths = mark
        for table, rows in self.queue.items():
            del rows[lengths.get(table, 0) :]


@dataclass(frozen=True)
class Rekeyed:
    """What :meth:`AdminVault.rekey` gives back, to show once."""

    recovery_key: str = field(repr=False)
    tokens: dict[str, str] = field(repr=False)
    """Each re-keyed client's new token, by client name."""
    kdf: KdfParams


class AdminVault(Inventory):
    """A vault unlocked with its passphrase or recovery key: reads and writes secrets.

    Use as a context manager, or call :meth:`close`. Obtain one with :meth:`create`,
    :meth:`unlock` or :meth:`unlock_with_recovery_key`. A handle is for one thread.
    """

    def __init__(
        self,
        store: Store,
        header: HeaderRecord,
        identity: RootIdentity,
        opened_kdf: KdfParams | None = None,
    ) -> None:
        super().__init__(store, header)
        self._identity = identity
        # The Argon2id parameters of the passphrase slot this handle was opened with
        # (authenticated by that slot's AD), or None when it was opened otherwise.
        self._opened_kdf = opened_kdf
        self._batch: _Batch | None = None
        # The signed log read so far: an owner's write reads only what was appended since.
        self._signed_log = access_history.VerifiedLog(self._vault_id, self._verify_public)

    # ---------------------------------------------------------------- opening

    @classmethod
    def create(
        cls,
        where: Where,
        passphrase: str,
        *,
        kdf: KdfParams | None = None,
        insecure_test_kdf: bool = False,
        target_seconds: float = kdf_params.KDF_DEFAULT_TARGET_SECONDS,
    ) -> tuple[AdminVault, str]:
        """Create a new vault; returns it unlocked and the recovery key to show once.

        Argon2id is calibrated to ``target_seconds`` unless ``kdf`` is given. Explicit
        parameters below RFC 9106's low-memory profile are refused unless
        ``insecure_test_kdf`` is set: that flag exists for test suites only.

        :raises AlreadyExists: when a vault or file is there already.
        :raises InvalidInput: for an empty passphrase or weak explicit parameters.
        """
        passphrase_kdf.normalize_passphrase(passphrase)
        if kdf is None:
            kdf = passphrase_kdf.calibrate_kdf(target_seconds)
        elif not kdf.at_least(kdf_params.KDF_FLOOR) and not insecure_test_kdf:
            raise InvalidInput(f"KDF parameters below the floor ({kdf_params.KDF_FLOOR})")
        url = where if isinstance(where, URL) else location.resolve(where)
        identity = RootIdentity.generate()
        now = to_epoch(utc_now())
        header = HeaderRecord(
            id=1,
            format_version=encoding.FORMAT_VERSION,
            vault_id=os.urandom(16),
            created_at=now,
            encryption_public=identity.encryption_public,
            verify_public=identity.verify_public,
        )
        header.signature = identity.sign(records.header_message(header))
        recovery_key = recovery.new_recovery_key()
        # Both KDFs run before the store exists, so a failure leaves no half-made vault.
        slots = [
            sealed_slots.new_passphrase_slot(
                header, identity, passphrase, kdf, now, insecure_test_kdf=insecure_test_kdf
            ),
            sealed_slots.new_recovery_slot(header, identity, recovery_key, now),
        ]

        def initialize(session: Session) -> None:
            session.add(header)
            session.add_all(slots)

        store = Store.create(url, initialize)
        return cls(store, header, identity, kdf), recovery.format_recovery_key(recovery_key)

    @classmethod
    def _open(cls, where: Where) -> tuple[Store, HeaderRecord, list[KeyslotRecord]]:
        store, header = open_store(where, owner=True)
        try:
            with store.read() as session:
                # Without the signature, which a schema older than version 5 lacks: it
                # is read, and checked, once the slot has opened and the schema is
                # brought up to date (_unlocked).
                columns = [KeyslotRecord.__table__.c[name] for name in keyslots.SIGNED_COLUMNS]
                slots = [KeyslotRecord(**row._mapping) for row in session.execute(select(*columns))]
        except BaseException:
            store.dispose()
            raise
        return store, header, slots

    @classmethod
    def unlock(cls, where: Where, passphrase: str) -> AdminVault:
        """Open a vault with its passphrase.

        :raises IntegrityError: wrong passphrase or damaged vault.
        :raises VaultUnavailable: when there is no vault there.
        """
        store, header, slots = cls._open(where)
        try:
            identity, slot = sealed_slots.open_with_passphrase(header, slots, passphrase)
        except IntegrityError:
            audit.record_failure(store, header.vault_id, audit.ADMIN, "unlock", "wrong passphrase")
            store.dispose()
            raise
        except BaseException:
            store.dispose()
            raise
        return cls._unlocked(store, header, identity, slot, keyslots.slot_params(slot))

    @classmethod
    def _unlocked(
        cls,
        store: Store,
        header: HeaderRecord,
        identity: RootIdentity,
        slot: KeyslotRecord,
        opened_kdf: KdfParams | None = None,
    ) -> AdminVault:
        """The unlocked handle, once the schema is up to date and the slot that opened
        is proven to be one the root key signed (not an old row put back).

        :raises IntegrityError: when that slot's signature is missing or wrong.
        """
        try:
            # Only the owner, and only once the key is proven, brings the schema up to
            # date (version 5 signs the keyslots as they are).
            store.upgrade(OwnerKeys(header.vault_id, header.verify_public, identity))
            with store.read() as session:
                signature = session.scalar(
                    select(KeyslotRecord.signature).where(KeyslotRecord.id == slot.id)
                )
            # The columns as they opened, with the signature stored now.
            keyslots.verify_slot(identity.verify_public, header.vault_id, slot, signature)
        except BaseException:
            store.dispose()
            raise
        return cls(store, header, identity, opened_kdf)

    @classmethod
    def unlock_with_recovery_key(cls, where: Where, recovery_key: str) -> AdminVault:
        """Open a vault with the recovery key printed at ``init``.

        :raises InvalidInput: for a mistyped recovery key (checksum).
        :raises IntegrityError: for another vault's key or a damaged vault.
        """
        key = recovery.parse_recovery_key(recovery_key)
        store, header, slots = cls._open(where)
        try:
            identity, slot = sealed_slots.open_with_recovery_key(header, slots, key)
        except IntegrityError:
            audit.record_failure(
                store, header.vault_id, audit.ADMIN, "recover", "wrong recovery key"
            )
            store.dispose()
            raise
        except BaseException:
            store.dispose()
            raise
        return cls._unlocked(store, header, identity, slot)

    def status(self) -> VaultStatus:
        """:meth:`Inventory.status`, saying whether the passphrase slot's parameters
        are those of the slot this handle opened (and so authenticated).

        :raises IntegrityError: when no passphrase keyslot is left.
        """
        status = super().status()
        if self._opened_kdf is not None and status.kdf == self._opened_kdf:
            return replace(status, kdf_authenticated=True)
        return status

    # ---------------------------------------------------------------- keyslots

    def change_passphrase(
        self,
        new_passphrase: str,
        *,
        recalibrate: bool = False,
        kdf: KdfParams | None = None,
        insecure_test_kdf: bool = False,
    ) -> KdfParams:
        """Replace the passphrase slot(s) with one for ``new_passphrase``.

        Nothing else is re-encrypted. The new slot's Argon2id parameters are, in this
        order: ``kdf`` when given; a fresh calibration on this machine when
        ``recalibrate`` asks for one or when this handle was not opened with the
        passphrase (``recover``); else those of the passphrase slot this handle
        opened, whose parameters its AD authenticated. Never the parameters stored in
        another row: a database writer could have lowered them. Parameters below
        :data:`~vault.format.kdf_params.KDF_FLOOR` are written only with ``insecure_test_kdf``
        (test suites); without it, kept ones below the floor are replaced by a
        calibration.

        :returns: the parameters of the new slot.
        :raises InvalidInput: for an empty passphrase, or an explicit ``kdf`` below
            the floor without ``insecure_test_kdf``.
        :raises UnsupportedFormat: for an explicit ``kdf`` above the cap.
        """
        passphrase_kdf.normalize_passphrase(new_passphrase)
        params = self._new_slot_params(recalibrate, kdf, insecure_test_kdf)
        with self._reading() as session:
            header = load_header(session)
        slot = sealed_slots.new_passphrase_slot(
            header,
            self._identity,
            new_passphrase,
            params,
            to_epoch(utc_now()),
            insecure_test_kdf=insecure_test_kdf,
        )
        with self._writing() as session:
            session.execute(delete(KeyslotRecord).where(KeyslotRecord.kind == keyslots.PASSPHRASE))
            session.add(slot)
            self._audit(session, "passwd", detail=str(params))
        self._checkpoint()
        # The handle now holds what the new slot opens with.
        self._opened_kdf = params
        return params

    def _new_slot_params(
        self, recalibrate: bool, kdf: KdfParams | None, insecure_test_kdf: bool
    ) -> KdfParams:
        """The Argon2id parameters of a new passphrase slot (see :meth:`change_passphrase`).

        :raises InvalidInput: for an explicit ``kdf`` below the floor without
            ``insecure_test_kdf``.
        """
        if kdf is not None:
            if not kdf.at_least(kdf_params.KDF_FLOOR) and not insecure_test_kdf:
                raise InvalidInput(f"KDF parameters below the floor ({kdf_params.KDF_FLOOR})")
            return kdf
        if recalibrate or self._opened_kdf is None:
            return passphrase_kdf.calibrate_kdf()
        if self._opened_kdf.at_least(kdf_params.KDF_FLOOR) or insecure_test_kdf:
            return self._opened_kdf
        return passphrase_kdf.calibrate_kdf()

    def rekey(
        self,
        new_passphrase: str,
        *,
        recalibrate: bool = False,
        kdf: KdfParams | None = None,
        insecure_test_kdf: bool = False,
    ) -> Rekeyed:
        """Give the vault a new root identity; the cure for an old keyslot put back.

        In one transaction: new X25519 and Ed25519 root keys (same vault id), a new
        header signature, every data key unwrapped with the old root key and wrapped
        for the new one, every signed row (heads, versions, clients, grants) verified
        with the old key and signed with the new one, each readable version's API key
        fingerprint recomputed under the new key (a retired version, whose payload is
        gone, keeps the old one, which no longer matches anything), new keys and a new
        token for every client not revoked (their granted data keys re-wrapped for
        them; the old tokens pin the old fingerprint and stop working), a new
        passphrase slot (parameters as :meth:`change_passphrase` chooses them) and a
        new recovery slot, replacing every old slot, and a ``rekey`` audit entry,
        signed with the new key, naming the old signing keys (section 20 of
        docs/format.md). Audit entries before it keep their signatures.

        :returns: the new recovery key, the clients' new tokens and the KDF parameters.
        :raises Conflict: inside a batch.
        :raises IntegrityError: when any row fails verification (nothing is re-signed).
        :raises InvalidInput: for an empty passphrase, or weak explicit parameters.
        """
        if self._batch is not None:
            raise Conflict("a rekey cannot run inside a batch")
        passphrase_kdf.normalize_passphrase(new_passphrase)
        params = self._new_slot_params(recalibrate, kdf, insecure_test_kdf)
        old, new = self._identity, RootIdentity.generate()
        vault_id = self._vault_id
        now = to_epoch(utc_now())
        recovery_key = recovery.new_recovery_key()
        tokens: dict[str, str] = {}
        with self._reading() as session:
            stored = load_header(session)
            new_header = HeaderRecord(
                id=stored.id,
                format_version=stored.format_version,
                vault_id=stored.vault_id,
                created_at=stored.created_at,
                encryption_public=new.encryption_public,
                verify_public=new.verify_public,
            )
        new_header.signature = new.sign(records.header_message(new_header))
        # Both KDFs (the passphrase's takes its calibrated time) before the write lock.
        slots = [
            sealed_slots.new_passphrase_slot(
                new_header, new, new_passphrase, params, now, insecure_test_kdf=insecure_test_kdf
            ),
            sealed_slots.new_recovery_slot(new_header, new, recovery_key, now),
        ]
        with self._writing() as session:
            header = load_header(session)
            old_public = header.verify_public
            # The key this handle's unlock proved, and the header the slots were made for.
            if not aead.constant_time_equal(old_public, self._verify_public) or (
                header.vault_id,
                header.format_version,
                header.created_at,
            ) != (new_header.vault_id, new_header.format_version, new_header.created_at):
                raise IntegrityError("damaged vault: the header changed during the rekey")
            header.encryption_public = new.encryption_public
            header.verify_public = new.verify_public
            header.signature = new_header.signature
            old_client_keys: dict[str, tuple[str, bytes]] = {}
            client_keys: dict[str, bytes] = {}
            # A client record put back from before its revocation verifies: the signed
            # log's revocations decide, or the rekey would give it a fresh token.
            revoked = access_history.access_facts(
                access_history.read_signed_log(
                    session, vault_id, old_public, credentials=()
                ).entries
            ).revoked
            for client in session.scalars(select(ClientRecord).order_by(ClientRecord.name)):
                records.verify_client(old_public, vault_id, client)
                if client.revoked_at is None and client.name in revoked:
                    raise IntegrityError(
                        f'damaged vault: client "{client.name}" is revoked in the signed audit '
                        "log but not in its record (a record put back?); run exvault verify"
                    )
                if client.revoked_at is None:
                    token = ClientToken.generate(
                        vault_id, identities.fingerprint(new.verify_public), client.id
                    )
                    old_client_keys[client.id] = (client.name, client.verify_public)
                    client.encryption_public = token.encryption_public
                    client.verify_public = token.verify_public
                    client_keys[client.id] = token.encryption_public
                    tokens[client.name] = token.encode()
                records.sign_client(new, vault_id, client)
            for grant in session.scalars(select(GrantRecord)):
                records.verify_grant(old_public, vault_id, grant)
                records.sign_grant(new, vault_id, grant)
            self._rekey_credentials(session, old, new, old_public, client_keys)
            session.execute(delete(KeyslotRecord))
            session.add_all(slots)
            session.flush()
            # One entry for the root key, then one per re-keyed client (an entry's detail
            # is cut to 500 characters), each naming the signing key it replaced: the
            # entries before them were signed with those (docs/format.md section 20.5).
            details = ["root keys replaced; old signing key " + old_public.hex()] + [
                f"new keys for client {name}; client {client_id} key {key.hex()}"
                for client_id, (name, key) in sorted(old_client_keys.items())
            ]
            last = audit.last_entry(session)
            for detail in details:
                entry = new_entry(
                    vault_id,
                    last,
                    actor=audit.ADMIN,
                    action="rekey",
                    detail=detail,
                    signer=(audit.ROOT_SIGNER, new.sign),
                )
                self._insert_rows(session, [(_AUDIT_TABLE, entry.values())])
                last = (entry.seq, entry.entry_hash)
        # Committed: from now on this handle is the new identity's.
        self._identity = new
        self._verify_public = new.verify_public
        # What this handle verified of the log was verified with the old key.
        self._signed_log = access_history.VerifiedLog(self._vault_id, self._verify_public)
        self._opened_kdf = params
        self._checkpoint()
        return Rekeyed(recovery.format_recovery_key(recovery_key), tokens, params)

    def _rekey_credentials(
        self,
        session: Session,
        old: RootIdentity,
        new: RootIdentity,
        old_public: bytes,
        client_keys: Mapping[str, bytes],
    ) -> None:
        """Verify with the old key and re-sign with the new one every head and version,
        for :meth:`rekey`; re-wrap the data keys of versions that still have a payload
        for the new root key and the re-keyed clients (``client_keys``).

        Core statements, whole tables at a time: an ORM flush per row would make a
        rekey of 100,000 credentials take an hour.

        :raises IntegrityError: when a row fails verification.
        """
        vault_id = self._vault_id
        conn = session.connection()
        # Transient records (never added to the session): typed rows to verify and sign.
        heads = {
            r.id: CredentialRecord(**r._mapping)
            for r in conn.execute(select(CredentialRecord.__table__))
        }
        payloads = {
            (r.credential_id, r.version): PayloadRecord(**r._mapping)
            for r in conn.execute(select(PayloadRecord.__table__))
        }
        wraps: dict[tuple[str, int], list[Any]] = {}
        for wrap in conn.execute(select(WrapRecord.__table__)):
            wraps.setdefault((wrap.credential_id, wrap.version), []).append(wrap)
        for head in heads.values():
            records.verify_head(old_public, vault_id, head)
        version_updates, wrap_updates = [], []
        for stored in conn.execute(select(VersionRecord.__table__)).all():
            row = VersionRecord(**stored._mapping)
            records.verify_version(old_public, vault_id, row)
            head_row = heads.get(row.credential_id)
            if head_row is None:
                raise IntegrityError(
                    f"damaged vault: a version of credential {stored.credential_id} has no head"
                )
            labels = stages.stages_of(head_row, row.version)
            for stage in labels:  # the very row the head's stage names
                records.check_staged_version(old_public, vault_id, head_row, stage, row)
            records.check_metadata(row, head_row)
            key = (row.credential_id, row.version)
            payload = payloads.get(key)
            if payload is not None:
                version_wraps = {Recipient.stored(w.recipient): w for w in wraps.get(key, [])}
                root_wrap = version_wraps.get(Recipient.root())
                if root_wrap is None:
                    raise IntegrityError(
                        f'damaged vault: version {row.version} of "{row.name}" is incomplete'
                    )
                dek = records.unwrap_dek(vault_id, row, root_wrap, old.decryption_key)
                fields = records.open_payload(vault_id, row, payload, dek)
                # Keyed by the root key: recomputed, so that reuse checks still match.
                row.api_key_fingerprint = identities.keyed_fingerprint(
                    new.fingerprint_key(), "api_key", fields.get("api_key", "")
                )
                granted = set(records.split_grantees(head_row))
                for recipient in version_wraps:
                    if not recipient.is_root and recipient.column not in granted:
                        continue  # a wrap row the head's signed grantee set does not back
                    public = (
                        new.encryption_public
                        if recipient.is_root
                        else client_keys.get(recipient.column)
                    )
                    if public is None:
                        continue  # a revoked client keeps none (revocation deleted them)
                    fresh = records.wrap_dek(dek, vault_id, row, recipient, public)
                    wrap_updates.append(
                        {
                            "k_credential_id": row.credential_id,
                            "k_version": row.version,
                            "k_recipient": recipient.column,
                            "k_ephemeral_public": fresh.ephemeral_public,
                            "k_body": fresh.body,
                        }
                    )
            message = records.version_message(vault_id, row)
            row.signature = new.sign(message)
            # A new fingerprint makes a new signed message: the head's stages follow it.
            for stage in labels:
                setattr(head_row, f"{stage}_digest", records.version_digest(message))
            version_updates.append(
                {
                    "k_credential_id": row.credential_id,
                    "k_version": row.version,
                    "k_api_key_fingerprint": row.api_key_fingerprint,
                    "k_signature": row.signature,
                }
            )
        head_updates = []
        for head in heads.values():
            records.sign_head(new, vault_id, head)
            head_updates.append(
                {
                    "k_id": head.id,
                    "k_revision": head.revision,
                    "k_current_digest": head.current_digest,
                    "k_pending_digest": head.pending_digest,
                    "k_previous_digest": head.previous_digest,
                    "k_signature": head.signature,
                }
            )
        _update_rows(
            conn,
            CredentialRecord,
            ("id",),
            ("revision", "current_digest", "pending_digest", "previous_digest", "signature"),
            head_updates,
        )
        _update_rows(
            conn,
            VersionRecord,
            ("credential_id", "version"),
            ("api_key_fingerprint", "signature"),
            version_updates,
        )
        _update_rows(
            conn,
            WrapRecord,
            ("credential_id", "version", "recipient"),
            ("ephemeral_public", "body"),
            wrap_updates,
        )

    # ---------------------------------------------------------------- writing

    @contextmanager
    def batch(self) -> Iterator[None]:
        """Make every write of this handle inside the block one transaction.

        ``with admin.batch(): ...`` takes the write lock once (SQLite's ``BEGIN
        IMMEDIATE``, PostgreSQL's audit head row lock) and holds it until the block ends,
        so other writers wait; it commits once, with one fsync, when the block ends
        normally. All or nothing: if an exception leaves the block, or the process
        dies before the block ends, nothing written inside it is kept. An operation
        that raises inside the block and is caught there leaves nothing behind (it is
        rolled back to where it began) and the batch goes on. Reads of this handle
        inside the block see the batch's writes; other handles and processes see
        them once it commits. Refusals that are audited (a grant beyond a client's
        scope) are recorded once the block ends, committed or not. A batch inside a
        batch joins the outer one.

        :raises StoreError: when the database fails (nothing of the batch is kept).
        """
        if self._batch is not None:
            yield
            return
        failures: list[Callable[[], None]] = []
        try:
            with self._store.write() as session:
                batch = self._batch = _Batch(session, failures)
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
    def _writing(self, *, queued: bool = False) -> Iterator[Session]:
        """The session of one write operation: its own transaction, or in a batch the
        batch's. ``queued``: the operation only inserts (through :meth:`_insert`), so
        in a batch its rows may wait in the queue."""
        batch = self._batch
        if batch is None:
            with self._store.write() as session:
                yield session
            return
        with self._store.translate_errors():
            if not queued or batch.queued >= BATCH_QUEUE_ROWS:
                self._insert_queue(batch)
            # In a batch an operation that fails, and that the caller catches, must
            # leave nothing to be committed later: neither queued rows, nor rows and
            # half-changed objects (a savepoint), nor the audit head it moved.
            mark = batch.mark()
            try:
                if queued:
                    batch.queueing = True
                    try:
                        yield batch.session
                    finally:
                        batch.queueing = False
                else:
                    with batch.session.begin_nested():
                        yield batch.session
            except BaseException:
                batch.back_to(mark)
                raise

    @contextmanager
    def _reading(self) -> Iterator[Session]:
        if self._batch is None:
            with super()._reading() as session:
                yield session
            return
        # Another connection would not see the batch's uncommitted writes.
        with self._store.translate_errors():
            self._insert_queue(self._batch)
            yield self._batch.session

    def _name_taken(self, session: Session, name: str) -> bool:
        """Whether a credential is named ``name`` (in a batch, queued ones too)."""
        batch = self._batch
        if batch is None:
            return session.connection().execute(_NAME_TAKEN, {"name": name}).first() is not None
        if batch.names is None:
            batch.names = set(session.scalars(select(CredentialRecord.name)))
        return name in batch.names

    def _insert(self, session: Session, *new: Base) -> None:
        """Insert new records in the order given (foreign keys point backwards).

        Core INSERTs, not the ORM's unit of work: nothing here is read back or changed
        afterwards, and a flush per table costs more than the row. In a batch's add
        the rows wait in the queue.
        """
        # A declarative class's __table__ is a Table (typed as its base, FromClause).
        self._insert_rows(session, [(cast(Table, r.__table__), _values(r)) for r in new])

    def _insert_rows(self, session: Session, rows: list[tuple[Table, dict[str, Any]]]) -> None:
        """Insert (table, column values) rows as :meth:`_insert` does."""
        batch = self._batch
        if batch is not None and batch.queueing:
            for table, values in rows:
                batch.queue.setdefault(table, []).append(values)
            batch.queued += len(rows)
            return
        connection = session.connection()
        for table, values in rows:
            connection.execute(table.insert(), values)

    @staticmethod
    def _insert_queue(batch: _Batch) -> None:
        """Insert a batch's queued rows: one executemany per table, parents first.

        In a savepoint: if it fails, nothing of it stays and the queue is kept, so the
        batch fails again at its end rather than commit a part of it.
        """
        if not batch.queued:
            return
        with batch.session.begin_nested():
            connection = batch.session.connection()
            for table in Base.metadata.sorted_tables:
                if batch.queue.get(table):
                    connection.execute(table.insert(), batch.queue[table])
        batch.queue.clear()
        batch.queued = 0

    def _checkpoint(self) -> None:
        """Checkpoint the WAL after deletes; in a batch, once it has committed (no
        checkpoint can pass the batch's open transaction)."""
        if self._batch is not None:
            self._batch.checkpoint = True
        else:
            self._store.checkpoint()

    def record_action(self, action: str, detail: str = "") -> None:
        """Append a signed entry of the owner's for an action done outside the tables
        (e.g. ``share``: a change of the vault's file layout), in a write of its own.

        :raises StoreError: when the database fails.
        """
        with self._store.write() as session:
            self._audit(session, action, detail=detail)

    def _record_failure(self, action: str, detail: str, credential: str | None) -> None:
        """Audit a refusal in a transaction of its own; in a batch, once it has ended
        (it holds the write lock, and the refusal must be kept if it rolls back)."""

        def record() -> None:
            audit.record_failure(
                self._store,
                self._vault_id,
                audit.ADMIN,
                action,
                detail,
                credential=credential,
                signer=(audit.ROOT_SIGNER, self._identity.sign),
            )

        if self._batch is not None:
            self._batch.failures.append(record)
        else:
            record()

    def _audit(
        self,
        session: Session,
        action: str,
        credential: str | None = None,
        version: int | None = None,
        detail: str = "",
    ) -> None:
        batch = self._batch
        entry = new_entry(
            self._vault_id,
            # The batch holds the write lock: the entry it appended last is the head.
            batch.audit_head
            if batch is not None and batch.audit_head
            else audit.last_entry(session),
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
        # Inserted like the operation's other new rows (queued in a batch's add): a
        # unit-of-work flush for this one object costs more than the entry itself.
        self._insert_rows(session, [(_AUDIT_TABLE, entry.values())])

    def _grantees(self, session: Session, head: CredentialRecord) -> list[ClientRecord]:
        """The clients, neither revoked nor expired, in ``head``'s signed grantee set
        (verified with the head), their records verified, each grant backed by the
        signed audit log.

        The head's set, not the ``grants`` table: a grant row put back after an ungrant
        (it stays validly signed) grants nothing; a whole head put back from before an
        ungrant still names the client, and the signed log refuses it
        (:meth:`_check_grants_signed`).

        :raises IntegrityError: when a record does not verify, or a grantee is not
            backed by a standing signed grant.
        """
        granted = records.split_grantees(head)
        if not granted:
            return []
        rows = session.scalars(select(ClientRecord).where(ClientRecord.id.in_(granted))).all()
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
            self._check_grants_signed(session, head, clients)
        return clients

    def signed_access_facts(
        self, credentials: list[str] | tuple[str, ...]
    ) -> access_history.AccessFacts:
        """What the signed audit log says, complete for ``credentials`` and for
        revocations, as this handle's writes check a grant against it (read only since
        its last check, :class:`vault.db.access_history.VerifiedLog`).

        :raises IntegrityError: when the audit chain is broken.
        :raises StoreError: when the database cannot be read.
        """
        with self._reading() as session:
            facts, broken_at = self._signed_log.facts(session, credentials)
        if broken_at is not None:
            raise IntegrityError(f"damaged vault: the audit log is broken at entry {broken_at}")
        return facts

    def _check_grants_signed(
        self, session: Session, head: CredentialRecord, clients: list[ClientRecord]
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
        facts, broken_at = self._signed_log.facts(
            session, (head.name,), locked=self._batch is not None
        )
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

    def _recipients(
        self, session: Session, head: CredentialRecord, grantees: list[ClientRecord] | None = None
    ) -> dict[Recipient, bytes]:
        """Who may read new versions of ``head``: the root key and every granted client
        (``grantees``, when the caller has them from :meth:`_grantees` already)."""
        out = {Recipient.root(): self._identity.encryption_public}
        for client in self._grantees(session, head) if grantees is None else grantees:
            out[Recipient.client(client.id)] = client.encryption_public
        return out

    def _check_scopes(
        self, session: Session, head: CredentialRecord, permissions: tuple[str, ...]
    ) -> list[ClientRecord]:
        """Refuse permissions that a granted client's maximum scope does not allow.

        :returns: the grantees (:meth:`_grantees`), for :meth:`_add_version`.
        :raises Conflict: when a grantee's scope excludes one of ``permissions``.
        :raises IntegrityError: as :meth:`_grantees`.
        """
        grantees = self._grantees(session, head)
        for client in grantees:
            extra = beyond_scope(permissions, split_list(client.max_scope))
            if extra:
                raise Conflict(
                    f'client "{client.name}" is granted "{head.name}" but its maximum scope '
                    f"excludes {', '.join(extra)}; ungrant it first"
                )
        return grantees

    def _add_version(
        self,
        session: Session,
        head: CredentialRecord,
        version: int,
        metadata: CredentialMetadata,
        payload: Mapping[str, str],
        now: int,
        *,
        new: bool = False,
        grantees: list[ClientRecord] | None = None,
    ) -> records.SealedVersion:
        """Seal and store a version, wrapped for every recipient; returns it.

        ``new``: ``head`` was created in this transaction, so no grant can name it
        (grants name a credential's random id) and the root is the only recipient.
        ``grantees``: the clients to wrap for, as :meth:`_check_scopes` returned them.
        """
        sealed = records.seal_version(
            self._identity, self._vault_id, head.id, version, metadata, payload, now
        )
        self._store_version(session, head, sealed, new=new, grantees=grantees)
        return sealed

    def _store_version(
        self,
        session: Session,
        head: CredentialRecord,
        sealed: records.SealedVersion,
        *,
        new: bool,
        grantees: list[ClientRecord] | None = None,
    ) -> None:
        """Insert a sealed version's rows, wrapped for every recipient (``new`` and
        ``grantees``: as for :meth:`_add_version`)."""
        recipients = (
            {Recipient.root(): self._identity.encryption_public}
            if new
            else self._recipients(session, head, grantees)
        )
        self._insert(
            session,
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
                for recipient, public in recipients.items()
            ),
        )

    def _retire_version(
        self, session: Session, head: CredentialRecord, version: int | None
    ) -> None:
        """Delete the ciphertext and wraps of a version that lost its last stage label."""
        if version is None or stages.stages_of(head, version):
            return
        for table in (PayloadRecord, WrapRecord):
            session.execute(
                delete(table).where(table.credential_id == head.id, table.version == version)
            )

    @staticmethod
    def _next_version(head: CredentialRecord) -> int:
        """Allocate a new version number from the head's signed counter (re-sign the head
        after): never the highest row plus one, which reuses the number of a version
        row someone deleted, so that a saved copy of that row could be put back."""
        head.version_counter += 1
        return head.version_counter

    @staticmethod
    def _metadata(
        name: str,
        exchange: str,
        permissions: tuple[str, ...] | list[str] | str,
        ips: tuple[str, ...] | list[str] | str,
        issued_on: date | None,
        expires_on: date | None,
    ) -> CredentialMetadata:
        profile = exchanges.get_profile(exchange)
        if isinstance(permissions, str):
            permissions = [permissions]
        if isinstance(ips, str):
            ips = [ips]
        ip_list = parse_ip_whitelist(ips)
        profile.validate_ips(ip_list)
        today = utc_now().date()
        issued = issued_on or today
        if issued > today + timedelta(days=1):  # a day of slack for time zones
            raise InvalidInput(f"the issue date {issued} is in the future")
        if expires_on is not None and expires_on < issued:
            raise InvalidInput("the expiry date is before the issue date")
        return CredentialMetadata(
            name=name,
            exchange=profile.id,
            permissions=profile.normalize_permissions(permissions),
            ips=ip_list,
            issued_on=issued,
            expires_on=expires_on,
        )

    def add(
        self,
        name: str,
        exchange: str,
        payload: Mapping[str, str],
        *,
        permissions: tuple[str, ...] | list[str] | str = (),
        ips: tuple[str, ...] | list[str] | str = (),
        issued_on: date | None = None,
        expires_on: date | None = None,
    ) -> CredentialInfo:
        """Store a new credential as version 1, stage ``current``.

        :raises AlreadyExists: when the name is taken.
        :raises InvalidInput: for a bad name, exchange, field, permission, IP or date.
        """
        validate_name(name)
        metadata = self._metadata(name, exchange, permissions, ips, issued_on, expires_on)
        fields = clean_payload(metadata.exchange, payload)
        now = to_epoch(utc_now())
        with self._writing(queued=True) as session:
            if self._name_taken(session, name):
                raise AlreadyExists(f'a credential named "{name}" exists already')
            head = CredentialRecord(
                id=records.new_record_id(),
                name=name,
                created_at=now,
                updated_at=now,
                current_version=1,
                policy="{}",
                revision=0,  # sign_head makes it 1
                version_counter=1,
                grantees="",
            )
            sealed = records.seal_version(
                self._identity, self._vault_id, head.id, 1, metadata, fields, now
            )
            head.current_digest = sealed.stage_digest
            records.sign_head(self._identity, self._vault_id, head)
            self._insert(session, head)  # before its version: the foreign key points to it
            self._store_version(session, head, sealed, new=True)
            row = sealed.version
            self._audit(session, "add", name, 1)
            if self._batch is not None and self._batch.names is not None:
                self._batch.names.add(name)
        # What was just signed and written: no need to read it back.
        return info_from_rows(head, row)

    def edit(
        self,
        name: str,
        *,
        permissions: tuple[str, ...] | list[str] | str | None = None,
        ips: tuple[str, ...] | list[str] | str | None = None,
        issued_on: date | None = None,
        expires_on: date | object | None = UNCHANGED,
        payload: Mapping[str, str] | None = None,
    ) -> CredentialInfo:
        """Write a new current version with changed metadata and/or secret fields.

        Metadata is bound into each version's encryption, so an edit is a new version:
        the payload is re-encrypted under a fresh data key, the old current version
        keeps its place in the history but loses its ciphertext. The new version is
        wrapped for every grantee; the result names them (``wrapped_for``).

        :raises NotFound: when there is no such credential.
        :raises InvalidInput: for a bad permission, IP, date or field, or a name that is
            not UTF-8 text.
        :raises IntegrityError: when a grant is not backed by the signed audit log
            (:meth:`_check_grants_signed`); nothing is written.
        """
        now = to_epoch(utc_now())
        with self._writing() as session:
            head = self._head(session, name, for_update=True)
            old_version = head.current_version
            if old_version is None:
                raise Conflict(f'credential "{name}" has no current version')
            if head.pending_version is not None:
                raise Conflict(
                    f'a rotation of "{name}" is pending; promote or abort it before editing'
                )
            old_meta, fields = self._open_version(session, head, "current")
            metadata = self._metadata(
                name,
                old_meta.exchange,
                old_meta.permissions if permissions is None else permissions,
                old_meta.ips if ips is None else ips,
                issued_on or old_meta.issued_on,
                old_meta.expires_on if expires_on is UNCHANGED else expires_on,  # type: ignore[arg-type]
            )
            if payload is not None:
                fields = clean_payload(metadata.exchange, payload)
                # A new secret: whatever exposure the old one had no longer applies.
                head.exposed_at = head.exposed_reason = None
            grantees = self._check_scopes(session, head, metadata.permissions)
            version = self._next_version(head)
            sealed = self._add_version(
                session, head, version, metadata, fields, now, grantees=grantees
            )
            head.current_version = version
            head.current_digest = sealed.stage_digest
            head.updated_at = now
            self._retire_version(session, head, old_version)
            records.sign_head(self._identity, self._vault_id, head)
            self._audit(session, "edit", name, version)
        self._checkpoint()
        return replace(self.describe(name), wrapped_for=tuple(sorted(c.name for c in grantees)))

    def remove(self, name: str) -> None:
        """Delete a credential with every version, ciphertext and wrap.

        The WAL is then checkpointed and truncated so no page of the removed
        ciphertexts lingers on disk (``secure_delete`` zeroes them in the database).

        :raises NotFound: when there is no such credential.
        :raises InvalidInput: for a name that is not UTF-8 text.
        """
        with self._writing() as session:
            head = self._head(session, name, for_update=True)
            session.execute(delete(CredentialRecord).where(CredentialRecord.id == head.id))
            self._audit(session, "remove", name)
        if self._batch is not None and self._batch.names is not None:
            self._batch.names.discard(name)
        self._checkpoint()

    # ---------------------------------------------------------------- policy

    def _update_policy(self, name: str, change: Callable[[Policy], Policy], detail: str) -> Policy:
        with self._writing() as session:
            head = self._head(session, name, for_update=True)
            policy = change(Policy.from_json(head.policy))
            head.policy = policy.to_json()
            head.updated_at = to_epoch(utc_now())
            records.sign_head(self._identity, self._vault_id, head)
            self._audit(session, "policy", name, detail=detail)
        return policy

    def set_policy(
        self,
        name: str,
        *,
        max_age_days: int | None = None,
        warn_before_days: int | None = None,
        stale_days: int | None = None,
        grace_hours: int | None = None,
    ) -> Policy:
        """Change a credential's rotation limits (the rest stays as it is).

        :raises InvalidInput: for limits out of range.
        """
        return self._update_policy(
            name,
            lambda p: p.with_limits(
                max_age_days=max_age_days,
                warn_before_days=warn_before_days,
                stale_days=stale_days,
                grace_hours=grace_hours,
            ),
            "limits changed",
        )

    def accept_risk(self, name: str, risk: str, reason: str) -> Policy:
        """Record that the owner accepts ``risk`` (e.g. ``withdraw``) for this credential.

        :raises InvalidInput: for a risk that cannot be accepted or an empty reason.
        """
        now = utc_now()
        return self._update_policy(
            name, lambda p: p.accept(risk, reason, now), f"accepted risk {risk}: {reason}"
        )

    def clear_risk(self, name: str, risk: str) -> Policy:
        """Withdraw an accepted risk."""
        return self._update_policy(name, lambda p: p.clear(risk), f"cleared risk {risk}")

    def policy(self, name: str) -> Policy:
        """The credential's policy (signature verified)."""
        with self._reading() as session:
            return Policy.from_json(self._head(session, name).policy)

    # ---------------------------------------------------------------- clients

    def _client(self, session: Session, name: str, *, for_update: bool = False) -> ClientRecord:
        query = select(ClientRecord).where(ClientRecord.name == lookup_name(name, "client"))
        client = session.scalar(query.with_for_update() if for_update else query)
        if client is None:
            raise NotFound(f"no client named {quoted(name)}; see: exvault client list")
        records.verify_client(self._verify_public, self._vault_id, client)
        return client

    def add_client(
        self,
        name: str,
        *,
        expires_at: datetime | None = None,
        max_scope: str | tuple[str, ...] = DEFAULT_SCOPE,
    ) -> tuple[ClientInfo, str]:
        """Create a client identity; returns it and its token (``exv1-...``, show once).

        The vault keeps only the client's public keys: a lost token cannot be shown
        again, only replaced by a new client.

        :raises AlreadyExists: when the name is taken (revoked clients keep theirs).
        :raises InvalidInput: for a bad name, scope or an expiry in the past.
        """
        validate_name(name, "client")
        scope = parse_scope(max_scope)
        now = utc_now()
        if expires_at is not None and expires_at <= now:
            raise InvalidInput("the client's expiry is in the past")
        client_id = records.new_record_id()
        token = ClientToken.generate(
            self._vault_id, identities.fingerprint(self._verify_public), client_id
        )
        with self._writing() as session:
            if session.scalar(select(ClientRecord.id).where(ClientRecord.name == name)):
                raise AlreadyExists(f'a client named "{name}" exists already')
            client = ClientRecord(
                id=client_id,
                name=name,
                encryption_public=token.encryption_public,
                verify_public=token.verify_public,
                created_at=to_epoch(now),
                expires_at=to_epoch(expires_at) if expires_at else None,
                max_scope=join_list(scope),
                revoked_at=None,
            )
            records.sign_client(self._identity, self._vault_id, client)
            session.add(client)
            self._audit(
                session,
                "client-add",
                detail=f"client {name}; max scope {join_list(scope)}; "
                f"expires {expires_at.isoformat() if expires_at else 'never'}",
            )
        return self.client(name), token.encode()

    def grant(self, client_name: str, credential_names: list[str] | tuple[str, ...]) -> None:
        """Let a client read credentials: wrap their readable versions' data keys for it.

        All or nothing, and idempotent. Later versions of these credentials are wrapped
        for the client when they are written.

        :raises AccessDenied: when a credential's permissions exceed the client's
            maximum scope (the refusal is audited).
        :raises Conflict: when the client is revoked or expired.
        :raises NotFound: for an unknown client or credential.
        :raises InvalidInput: for a name that is not UTF-8 text.
        """
        name: str | None = None
        try:
            with self._writing() as session:
                client = self._client(session, client_name, for_update=True)
                if client.revoked_at is not None:
                    raise Conflict(f'client "{client_name}" is revoked')
                if client.expires_at is not None and client.expires_at <= to_epoch(utc_now()):
                    raise Conflict(f'client "{client_name}" has expired; add a new client')
                facts, _broken_at = self._signed_log.facts(
                    session, credential_names, locked=self._batch is not None
                )
                self._check_not_revoked(client, facts)
                for name in credential_names:
                    head = self._head(session, name, for_update=True)
                    self._grant_one(session, client, head, facts.grant_standing(client.name, name))
        except AccessDenied as exc:
            self._record_failure("grant", str(exc), name)
            raise

    @staticmethod
    def _check_not_revoked(client: ClientRecord, facts: access_history.AccessFacts) -> None:
        """Refuse a client the signed audit log says was revoked, whatever its row says
        (a copy of its record from before the revocation verifies again).

        :raises IntegrityError: naming the client; nothing written.
        """
        seq = facts.revoked.get(client.name)
        if seq is not None:
            raise IntegrityError(
                f'damaged vault: client "{client.name}" was revoked (audit entry {seq}) but '
                "its record is not (a record put back?); run exvault verify"
            )

    def _grant_one(
        self, session: Session, client: ClientRecord, head: CredentialRecord, standing: bool
    ) -> None:
        """Wrap ``head``'s labelled versions for ``client`` and sign its grant.

        ``standing``: the signed audit log already shows this grant standing; otherwise
        a grant row found here (one put back after an ungrant) is signed and audited
        anew, so that the log backs the grant the owner is making now.
        """
        scope = split_list(client.max_scope)
        for stage in stages.STAGES:
            version = getattr(head, f"{stage}_version")
            if version is None:
                continue
            row = session.get(VersionRecord, (head.id, version))
            root_wrap = session.get(WrapRecord, (head.id, version, Recipient.root().column))
            if row is None or root_wrap is None:
                raise IntegrityError(
                    f'damaged vault: version {version} of "{head.name}" is incomplete'
                )
            meta = records.check_staged_version(
                self._verify_public, self._vault_id, head, stage, row
            )
            extra = beyond_scope(meta.permissions, scope)
            if extra:
                raise AccessDenied(
                    f'cannot grant "{head.name}" to client "{client.name}": its permissions '
                    f"({', '.join(extra)}) exceed the client's maximum scope "
                    f"({client.max_scope.replace(',', ', ')})"
                )
            recipient = Recipient.client(client.id)
            if session.get(WrapRecord, (head.id, version, recipient.column)) is None:
                dek = records.unwrap_dek(
                    self._vault_id, row, root_wrap, self._identity.decryption_key
                )
                session.add(
                    records.wrap_dek(dek, self._vault_id, row, recipient, client.encryption_public)
                )
        granted = records.split_grantees(head)
        in_head = client.id in granted
        if not in_head:
            # The head's signed set is what the writer wraps new versions for.
            head.grantees = records.join_grantees((*granted, client.id))
            records.sign_head(self._identity, self._vault_id, head)
        grant = session.get(GrantRecord, (client.id, head.id))
        if grant is not None:
            # Trusted to make the grant a no-op only once it verifies.
            records.verify_grant(self._verify_public, self._vault_id, grant)
            if standing and in_head:
                return
            grant.created_at = to_epoch(utc_now())
        else:
            grant = GrantRecord(
                client_id=client.id, credential_id=head.id, created_at=to_epoch(utc_now())
            )
            session.add(grant)
        records.sign_grant(self._identity, self._vault_id, grant)
        self._audit(session, "grant", head.name, detail=f"to client {client.name}")

    def ungrant(self, client_name: str, credential_names: list[str] | tuple[str, ...]) -> None:
        """Take credentials back from a client: delete its grants and wraps for them.

        :raises NotFound: for an unknown client or credential, or one not granted.
        :raises InvalidInput: for a name that is not UTF-8 text.
        """
        with self._writing() as session:
            client = self._client(session, client_name, for_update=True)
            for name in credential_names:
                head = self._head(session, name, for_update=True)
                granted = records.split_grantees(head)
                if (
                    client.id not in granted
                    and session.get(GrantRecord, (client.id, head.id)) is None
                ):
                    raise NotFound(f'client "{client_name}" is not granted {quoted(name)}')
                if client.id in granted:
                    head.grantees = records.join_grantees(set(granted) - {client.id})
                    records.sign_head(self._identity, self._vault_id, head)
                session.execute(
                    delete(GrantRecord).where(
                        GrantRecord.client_id == client.id, GrantRecord.credential_id == head.id
                    )
                )
                session.execute(
                    delete(WrapRecord).where(
                        WrapRecord.credential_id == head.id,
                        WrapRecord.recipient == Recipient.client(client.id).column,
                    )
                )
                self._audit(session, "ungrant", name, detail=f"from client {client_name}")
        self._checkpoint()

    def revoke_client(self, name: str) -> list[str]:
        """Revoke a client: delete its grants and wraps, and mark every credential it
        could read as exposed (``exvault check`` reports them until rotated).

        What it could read is what the rows say (its wraps and grants) and what it
        cannot delete: the vault's signed grants not followed by a signed ungrant, and
        its own signed reads of a version still labelled current, pending or previous
        (:mod:`vault.db.access_history`).

        Idempotent. :returns: the names of the credentials marked exposed.

        :raises NotFound: for an unknown client.
        :raises InvalidInput: for a name that is not UTF-8 text.
        """
        now = to_epoch(utc_now())
        with self._writing() as session:
            client = self._client(session, name, for_update=True)
            if client.revoked_at is not None:
                return []
            readable = set(
                session.scalars(
                    select(WrapRecord.credential_id).where(
                        WrapRecord.recipient == Recipient.client(client.id).column
                    )
                )
            ) | set(
                session.scalars(
                    select(GrantRecord.credential_id).where(GrantRecord.client_id == client.id)
                )
            )
            log = access_history.read_signed_log(
                session,
                self._vault_id,
                self._verify_public,
                client=(client.name, client.id, client.verify_public),
            )
            # Every entry that verifies counts, even past a break in the chain: here
            # more facts can only mark more, never hide a credential.
            signed = access_history.access_facts(log.entries).readable_by(client.name, client.id)
            self._add_shared_reads(signed, client)
            exposed = []
            for head in session.scalars(
                select(CredentialRecord).where(
                    # Client ids are hex digits: nothing in them is special to LIKE.
                    CredentialRecord.id.in_(readable)
                    | CredentialRecord.name.in_(list(signed))
                    | CredentialRecord.grantees.contains(client.id)
                )
            ):
                records.verify_head(self._verify_public, self._vault_id, head)
                # The head's signed set, like its rows, says the client held every version.
                held = head.id in readable or client.id in records.split_grantees(head)
                read = None if held else signed.get(head.name, set())
                if read is not None and not any(stages.stages_of(head, v) for v in read):
                    # It read only versions since retired: the key it may keep is gone.
                    continue
                head.exposed_at = now
                head.exposed_reason = f'readable by revoked client "{name}"'
                granted = set(records.split_grantees(head)) - {client.id}
                head.grantees = records.join_grantees(granted)
                records.sign_head(self._identity, self._vault_id, head)
                exposed.append(head.name)
            session.execute(
                delete(WrapRecord).where(WrapRecord.recipient == Recipient.client(client.id).column)
            )
            session.execute(delete(GrantRecord).where(GrantRecord.client_id == client.id))
            client.revoked_at = now
            records.sign_client(self._identity, self._vault_id, client)
            self._audit(
                session,
                "client-revoke",
                detail=f"client {name}; exposed: {', '.join(sorted(exposed)) or 'none'}",
            )
        self._checkpoint()
        return sorted(exposed)

    def _add_shared_reads(self, signed: dict[str, set[int] | None], client: ClientRecord) -> None:
        """Add to ``signed`` (credential -> versions read, None for all) the reads
        ``client`` signed into the audit files of a shared vault, where its reads go.

        Verified with its key, or a key a rekey replaced (that chain's numbers cannot
        be placed against the vault's rekey entries). An audit file that cannot be read
        is passed over: ``doctor`` and ``audit verify`` report it.
        """
        with self._reading() as session:
            keys = [client.verify_public] + [
                replaced[client.id]
                for _seq, replaced in audit.rekey_history(
                    session, self._vault_id, self._verify_public
                )
                if client.id in replaced
            ]
        for path in self.audit_files():
            try:
                with (
                    audit_file.opened(path) as store,
                    store.read() as file_session,
                    tolerant_text(file_session),
                ):
                    reads = list(
                        file_session.scalars(
                            select(AuditRecord).where(
                                AuditRecord.signer == client.id,
                                AuditRecord.action == "read",
                                AuditRecord.outcome == "ok",
                            )
                        )
                    )
            except VaultError:
                continue
            for rec in reads:
                if not isinstance(rec.credential, str) or not isinstance(rec.version, int):
                    continue
                if audit.signed_by_any(self._vault_id, rec, keys):
                    versions = signed.setdefault(rec.credential, set())
                    if versions is not None:
                        versions.add(rec.version)

    # ---------------------------------------------------------------- reading

    def _open_version(
        self, session: Session, head: CredentialRecord, stage: str
    ) -> tuple[CredentialMetadata, dict[str, str]]:
        """Verify and decrypt the version ``head`` (verified) labels ``stage`` with the
        root key: its metadata and fields.

        :raises NotFound: when the head labels no version ``stage``.
        :raises IntegrityError: when a row is missing or is not the one the head names.
        """
        version = stages.version_at(head, stage)
        row = session.get(VersionRecord, (head.id, version))
        payload = session.get(PayloadRecord, (head.id, version))
        wrap = session.get(WrapRecord, (head.id, version, Recipient.root().column))
        if row is None or payload is None or wrap is None:
            raise IntegrityError(f'damaged vault: version {version} of "{head.name}" is incomplete')
        meta = records.check_staged_version(self._verify_public, self._vault_id, head, stage, row)
        dek = records.unwrap_dek(self._vault_id, row, wrap, self._identity.decryption_key)
        return meta, records.open_payload(self._vault_id, row, payload, dek)

    def get(self, name: str, stage: str = "current") -> Credential:
        """Decrypt one stage (``current``, ``pending`` or ``previous``) of a credential.

        :raises NotFound: when there is no such credential or stage.
        :raises InvalidInput: for a name that is not UTF-8 text.
        :raises IntegrityError: when anything read fails verification.
        """
        with self._writing() as session:
            head = self._head(session, name)
            version = stages.version_at(head, stage)
            meta, fields = self._open_version(session, head, stage)
            self._audit(session, "read", name, version, detail=stage)
        return Credential.from_plaintext(meta, version, stage, fields)


def _update_rows(
    conn: Connection,
    record: type[Base],
    keys: tuple[str, ...],
    columns: tuple[str, ...],
    rows: list[dict[str, Any]],
) -> None:
    """One executemany UPDATE of ``columns`` in the rows named by ``keys``; each row's
    values are named ``k_`` + column (bind names must differ from column names)."""
    if not rows:
        return
    table = cast(Table, record.__table__)
    statement = (
        update(table)
        .where(*(table.c[k] == bindparam("k_" + k) for k in keys))
        .values({c: bindparam("k_" + c) for c in columns})
    )
    conn.execute(statement, rows)

