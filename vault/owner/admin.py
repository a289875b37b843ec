"""The unlocked vault: what the owner (the holder of the passphrase) can do.

:class:`AdminVault` is a thin facade over the owner's unit of work,
:class:`vault.owner.writer.Writer` (store, root identity, batch, audit head), and the
operations written over it: :mod:`vault.owner.credentials`, :mod:`vault.owner.clients`,
:mod:`vault.owner.passphrase`, :mod:`vault.owner.rekey` and :mod:`vault.owner.policies`
(:mod:`vault.owner.rotation` takes the handle itself). Every write is one transaction,
signed with the root key; every read verifies what it reads.

The operations an everyday command never runs (making a vault, the passphrase and
recovery key, ``rekey``, policies, probe observations) import their module when
called, not here: an owner command through the unlock agent then loads only what it
runs, a few milliseconds per module (docs/benchmarks.md, the agent's section).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from datetime import date, datetime
from typing import TYPE_CHECKING

from vault.db import access_history, backends, keyslots, queries
from vault.db.inventory import Inventory, VaultStatus, Where
from vault.db.transaction import Store, Transaction
from vault.errors import InvalidInput
from vault.format import encoding, kdf_params
from vault.format.access import DEFAULT_SCOPE, ClientInfo
from vault.format.credential_info import CredentialInfo
from vault.format.identities import RootIdentity, RootKeys
from vault.format.kdf_params import KdfParams
from vault.format.model import LIVE, to_epoch, utc_now
from vault.format.schema import HeaderRow
from vault.owner import clients, credentials
from vault.owner.credentials import UNCHANGED, clean_payload
from vault.owner.writer import BATCH_QUEUE_ROWS, Writer
from vault.runtime.credential import Credential

if TYPE_CHECKING:
    from vault.exchanges.key_report import ProbeOutcome
    from vault.format.policy import Policy
    from vault.format.records import Header
    from vault.owner.rekey import Rekeyed

__all__ = ["BATCH_QUEUE_ROWS", "UNCHANGED", "AdminVault", "clean_payload"]


class AdminVault(Inventory):
    """A vault unlocked with its passphrase or recovery key: reads and writes secrets.

    Use as a context manager, or call :meth:`close`. Obtain one with :meth:`create`,
    :meth:`unlock` or :meth:`unlock_with_recovery_key`. A handle is for one thread.
    """

    def __init__(
        self,
        store: Store,
        header: HeaderRow | Header,
        identity: RootKeys,
        opened_kdf: KdfParams | None = None,
    ) -> None:
        super().__init__(store, header)
        self._writer = Writer(store, identity, header.vault_id, header.verify_public)
        # The Argon2id parameters of the passphrase slot this handle was opened with
        # (authenticated by that slot's AD), or None when it was opened otherwise.
        self._opened_kdf = opened_kdf

    @property
    def identity(self) -> RootKeys:
        """The root keys this handle signs and unwraps with: a :class:`RootIdentity`
        when it was opened with the passphrase or recovery key, an unlock agent's
        stand-in when opened through the agent."""
        return self._writer.identity

    @property
    def writer(self) -> Writer:
        """This handle's unit of work, for the owner's operations written over it
        (:mod:`vault.owner.rotation`, :mod:`vault.ops.verification`)."""
        return self._writer

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
        from vault.format import passphrase_kdf, recovery  # on use: see the module doc
        from vault.owner import passphrase as passphrases

        passphrase_kdf.normalize_passphrase(passphrase)
        if kdf is None:
            kdf = passphrase_kdf.calibrate_kdf(target_seconds)
        elif not kdf.at_least(kdf_params.KDF_FLOOR) and not insecure_test_kdf:
            raise InvalidInput(f"KDF parameters below the floor ({kdf_params.KDF_FLOOR})")
        identity = RootIdentity.generate()
        now = to_epoch(utc_now())
        header = passphrases.signed_header(
            identity,
            vault_id=os.urandom(16),
            format_version=encoding.FORMAT_VERSION,
            created_at=now,
        )
        recovery_key = recovery.new_recovery_key()
        # Both KDFs run before the store exists, so a failure leaves no half-made vault.
        slots = passphrases.root_slots(
            header,
            identity,
            passphrase,
            kdf,
            recovery_key,
            now,
            insecure_test_kdf=insecure_test_kdf,
        )

        def initialize(transaction: Transaction) -> None:
            execute = transaction.execute
            execute(queries.INSERT_HEADER_SQL, header._asdict())
            keyslots.insert_slots(execute, slots)

        store = backends.create_store(where, initialize)
        return cls(store, header, identity, kdf), recovery.format_recovery_key(recovery_key)

    @classmethod
    def unlock(cls, where: Where, passphrase: str) -> AdminVault:
        """Open a vault with its passphrase.

        :raises IntegrityError: wrong passphrase or damaged vault.
        :raises VaultUnavailable: when there is no vault there.
        """
        from vault.owner import passphrase as passphrases  # on use: see the module doc

        return cls(*passphrases.open_with_passphrase(where, passphrase))

    @classmethod
    def unlock_with_recovery_key(cls, where: Where, recovery_key: str) -> AdminVault:
        """Open a vault with the recovery key printed at ``init``.

        :raises InvalidInput: for a mistyped recovery key (checksum).
        :raises IntegrityError: for another vault's key or a damaged vault.
        """
        from vault.owner import passphrase as passphrases  # on use: see the module doc

        return cls(*passphrases.open_with_recovery_key(where, recovery_key))

    def status(self) -> VaultStatus:
        """:meth:`Inventory.status`, saying whether the passphrase slot's parameters
        are those of the slot this handle opened (and so authenticated).

        :raises IntegrityError: when no passphrase keyslot is left.
        """
        status = super().status()
        if self._opened_kdf is not None and status.kdf == self._opened_kdf:
            return status._replace(kdf_authenticated=True)
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
        :raises AccessDenied: on a handle opened through the unlock agent.
        """
        from vault.owner import passphrase as passphrases  # on use: see the module doc

        params = passphrases.change_passphrase(
            self._writer,
            new_passphrase,
            self._opened_kdf,
            recalibrate=recalibrate,
            kdf=kdf,
            insecure_test_kdf=insecure_test_kdf,
        )
        # The handle now holds what the new slot opens with.
        self._opened_kdf = params
        return params

    def rekey(
        self,
        new_passphrase: str,
        *,
        recalibrate: bool = False,
        kdf: KdfParams | None = None,
        insecure_test_kdf: bool = False,
        progress: Callable[[int, int], None] | None = None,
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
        docs/format.md). Audit entries before it keep their signatures. ``progress``,
        when given, is told ``(versions re-keyed, versions in all)`` as it goes.

        :returns: the new recovery key, the clients' new tokens and the KDF parameters.
        :raises Conflict: inside a batch.
        :raises IntegrityError: when any row fails verification (nothing is re-signed).
        :raises InvalidInput: for an empty passphrase, or weak explicit parameters.
        """
        from vault.owner import rekey as rekeying  # on use: see the module doc

        rekeyed = rekeying.rekey(
            self._writer,
            new_passphrase,
            self._opened_kdf,
            recalibrate=recalibrate,
            kdf=kdf,
            insecure_test_kdf=insecure_test_kdf,
            progress=progress,
        )
        # Committed: this handle's keyless reads verify with the new key.
        self._verify_public = self._writer.verify_public
        self._opened_kdf = rekeyed.kdf
        return rekeyed

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
        with self._writer.batch():
            yield

    @contextmanager
    def _reading(self) -> Iterator[Transaction]:
        # Inventory's reads go through the writer: inside a batch, they see its writes.
        with self._writer.read() as transaction:
            yield transaction

    def record_action(self, action: str, detail: str = "") -> None:
        """Append a signed entry of the owner's for an action done outside the tables
        (e.g. ``share``: a change of the vault's file layout), in a write of its own.

        :raises StoreError: when the database fails.
        """
        self._writer.record_action(action, detail)

    def signed_access_facts(
        self, credentials: list[str] | tuple[str, ...]
    ) -> access_history.AccessFacts:
        """What the signed audit log says, complete for ``credentials`` and for
        revocations, as this handle's writes check a grant against it (read only since
        its last check, :class:`vault.db.access_history.VerifiedLog`).

        :raises IntegrityError: when the audit chain is broken.
        :raises StoreError: when the database cannot be read.
        """
        return clients.signed_access_facts(self._writer, credentials)

    # ---------------------------------------------------------------- credentials

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
        endpoint: str = LIVE,
    ) -> CredentialInfo:
        """Store a new credential as version 1, stage ``current``; ``endpoint`` is
        ``live``, ``testnet`` or a base URL (:mod:`vault.exchanges.endpoints`).

        :raises AlreadyExists: when the name is taken.
        :raises InvalidInput: for a bad name, exchange, field, permission, IP, date or
            endpoint.
        """
        return credentials.add(
            self._writer,
            name,
            exchange,
            payload,
            permissions=permissions,
            ips=ips,
            issued_on=issued_on,
            expires_on=expires_on,
            endpoint=endpoint,
        )

    def edit(
        self,
        name: str,
        *,
        permissions: tuple[str, ...] | list[str] | str | None = None,
        ips: tuple[str, ...] | list[str] | str | None = None,
        issued_on: date | None = None,
        expires_on: date | object | None = UNCHANGED,
        payload: Mapping[str, str] | None = None,
        endpoint: str | None = None,
    ) -> CredentialInfo:
        """Write a new current version with changed metadata and/or secret fields
        (``endpoint`` None: unchanged).

        Metadata is bound into each version's encryption, so an edit is a new version:
        the payload is re-encrypted under a fresh data key, the old current version
        keeps its place in the history but loses its ciphertext. The new version is
        wrapped for every grantee; the result names them (``wrapped_for``).

        :raises NotFound: when there is no such credential.
        :raises InvalidInput: for a bad permission, IP, date, endpoint or field, or a
            name that is not UTF-8 text.
        :raises IntegrityError: when a grant is not backed by the signed audit log
            (:meth:`vault.owner.writer.Writer.grantees`); nothing is written.
        """
        wrapped_for = credentials.edit(
            self._writer,
            name,
            permissions=permissions,
            ips=ips,
            issued_on=issued_on,
            expires_on=expires_on,
            payload=payload,
            endpoint=endpoint,
        )
        return self.describe(name)._replace(wrapped_for=wrapped_for)

    def remove(self, name: str) -> None:
        """Delete a credential with every version, ciphertext and wrap.

        The WAL is then checkpointed and truncated so no page of the removed
        ciphertexts lingers on disk (``secure_delete`` zeroes them in the database).

        :raises NotFound: when there is no such credential.
        :raises InvalidInput: for a name that is not UTF-8 text.
        """
        credentials.remove(self._writer, name)

    def get(self, name: str, stage: str = "current") -> Credential:
        """Decrypt one stage (``current``, ``pending`` or ``previous``) of a credential.

        :raises NotFound: when there is no such credential or stage.
        :raises InvalidInput: for a name that is not UTF-8 text.
        :raises IntegrityError: when anything read fails verification.
        """
        return credentials.get(self._writer, name, stage)

    def record_observation(self, name: str, version: int, outcome: ProbeOutcome) -> None:
        """Store ``outcome``, a probe of version ``version`` of ``name``, signed with the
        root key and chained into the audit log (:mod:`vault.ops.observations`).

        :raises NotFound: no credential ``name``, or ``version`` is none of its stages.
        :raises IntegrityError: the credential's head does not verify.
        """
        from vault.owner import observations  # on use: see the module doc

        observations.record(self._writer, name, version, outcome)

    # ---------------------------------------------------------------- policy

    def set_policy(
        self,
        name: str,
        *,
        max_age_days: int | None = None,
        warn_before_days: int | None = None,
        stale_days: int | None = None,
        grace_hours: int | None = None,
        probe_stale_days: int | None = None,
    ) -> Policy:
        """Change a credential's rotation limits (the rest stays as it is).

        :raises InvalidInput: for limits out of range.
        """
        from vault.owner import policies  # on use: see the module doc

        return policies.set_policy(
            self._writer,
            name,
            max_age_days=max_age_days,
            warn_before_days=warn_before_days,
            stale_days=stale_days,
            grace_hours=grace_hours,
            probe_stale_days=probe_stale_days,
        )

    def link_rotation(
        self,
        name: str,
        *,
        rotate_via: str | object | None = ...,
        sub_account: str | object | None = ...,
        auto: bool | None = None,
        on_promote: str | object | None = ...,
    ) -> Policy:
        """Link ``name`` to the master credential that rotates it at the exchange
        (:func:`vault.owner.policies.link_rotation`).

        :raises NotFound: when ``name`` or the master does not exist.
        :raises InvalidInput: for a master that cannot rotate ``name``.
        """
        from vault.owner import policies  # on use: see the module doc

        return policies.link_rotation(
            self._writer,
            name,
            rotate_via=rotate_via,
            sub_account=sub_account,
            auto=auto,
            on_promote=on_promote,
        )

    def accept_risk(self, name: str, risk: str, reason: str) -> Policy:
        """Record that the owner accepts ``risk`` (e.g. ``withdraw``) for this credential.

        :raises InvalidInput: for a risk that cannot be accepted or an empty reason.
        """
        from vault.owner import policies  # on use: see the module doc

        return policies.accept_risk(self._writer, name, risk, reason)

    def clear_risk(self, name: str, risk: str) -> Policy:
        """Withdraw an accepted risk."""
        from vault.owner import policies  # on use: see the module doc

        return policies.clear_risk(self._writer, name, risk)

    def policy(self, name: str) -> Policy:
        """The credential's policy (signature verified)."""
        from vault.owner import policies  # on use: see the module doc

        return policies.policy(self._writer, name)

    # ---------------------------------------------------------------- clients

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
        token = clients.add_client(self._writer, name, expires_at=expires_at, max_scope=max_scope)
        return self.client(name), token

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
        clients.grant(self._writer, client_name, credential_names)

    def ungrant(self, client_name: str, credential_names: list[str] | tuple[str, ...]) -> None:
        """Take credentials back from a client: delete its grants and wraps for them.

        :raises NotFound: for an unknown client or credential, or one not granted.
        :raises InvalidInput: for a name that is not UTF-8 text.
        """
        clients.ungrant(self._writer, client_name, credential_names)

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
        return clients.revoke_client(self._writer, name, self.audit_files())
