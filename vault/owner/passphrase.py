"""The owner's keys: the signed vault header, the keyslots that open the root identity
(passphrase and recovery key), opening a vault with either, and changing the passphrase.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from vault.db import backends, keyslots
from vault.db.inventory import Where, load_header, open_store
from vault.db.schema_version import OwnerKeys
from vault.db.transaction import Store
from vault.errors import IntegrityError, InvalidInput
from vault.format import kdf_params, passphrase_kdf, records, recovery
from vault.format.identities import RootIdentity
from vault.format.kdf_params import KdfParams
from vault.format.model import to_epoch, utc_now
from vault.format.schema import HeaderRow, KeyslotRow
from vault.owner import sealed_slots
from vault.owner.writer import Writer, record_refusal

if TYPE_CHECKING:
    from vault.format.records import Header

Unlocked = tuple[Store, HeaderRow, RootIdentity, KdfParams | None]
"""An opened vault: its store, header and root identity, and the Argon2id parameters
of the passphrase slot that opened it (authenticated by its AD; None for another slot)."""


def signed_header(
    identity: RootIdentity, *, vault_id: bytes, format_version: int, created_at: int
) -> HeaderRow:
    """The vault header for ``identity``'s public keys, self-signed with it (a new
    vault's, or a rekey's replacement of the stored one)."""
    unsigned = HeaderRow(
        id=1,
        format_version=format_version,
        vault_id=vault_id,
        created_at=created_at,
        encryption_public=identity.encryption_public,
        verify_public=identity.verify_public,
        signature=b"",
    )
    return unsigned._replace(signature=identity.sign(records.header_message(unsigned)))


def root_slots(
    header: Header,
    identity: RootIdentity,
    passphrase: str,
    params: KdfParams,
    recovery_key: bytes,
    now: int,
    *,
    insecure_test_kdf: bool = False,
) -> list[KeyslotRow]:
    """The passphrase slot and the recovery slot that open ``identity`` for ``header``.

    Both KDFs run here (the passphrase's takes its calibrated time): call before any
    write lock is taken.

    :raises InvalidInput: for weak parameters without ``insecure_test_kdf``.
    """
    return [
        sealed_slots.new_passphrase_slot(
            header, identity, passphrase, params, now, insecure_test_kdf=insecure_test_kdf
        ),
        sealed_slots.new_recovery_slot(header, identity, recovery_key, now),
    ]


def new_slot_params(
    opened_kdf: KdfParams | None,
    recalibrate: bool,
    kdf: KdfParams | None,
    insecure_test_kdf: bool,
) -> KdfParams:
    """The Argon2id parameters of a new passphrase slot, in this order: ``kdf`` when
    given; a fresh calibration when ``recalibrate`` asks for one or when the handle was
    not opened with the passphrase (``opened_kdf`` None); else ``opened_kdf``, the
    parameters of the slot the handle opened (its AD authenticated them), unless they
    are below the floor and ``insecure_test_kdf`` is not set.

    :raises InvalidInput: for an explicit ``kdf`` below the floor without
        ``insecure_test_kdf``.
    """
    if kdf is not None:
        if not kdf.at_least(kdf_params.KDF_FLOOR) and not insecure_test_kdf:
            raise InvalidInput(f"KDF parameters below the floor ({kdf_params.KDF_FLOOR})")
        return kdf
    if recalibrate or opened_kdf is None:
        return passphrase_kdf.calibrate_kdf()
    if opened_kdf.at_least(kdf_params.KDF_FLOOR) or insecure_test_kdf:
        return opened_kdf
    return passphrase_kdf.calibrate_kdf()


def _read_slots(where: Where) -> tuple[Store, HeaderRow, list[KeyslotRow]]:
    store, header = open_store(where, owner=True)
    try:
        with store.read() as transaction:
            execute = transaction.execute
            # Without the signature, which a schema older than version 5 lacks: it
            # is read, and checked, once the slot has opened and the schema is
            # brought up to date (_proven).
            slots = keyslots.read_slots(execute)
    except BaseException:
        store.dispose()
        raise
    return store, header, slots


def _proven(
    store: Store,
    header: HeaderRow,
    identity: RootIdentity,
    slot: KeyslotRow,
    opened_kdf: KdfParams | None,
) -> Unlocked:
    """Bring the schema up to date and prove that the slot that opened is one the root
    key signed (not an old row put back).

    :raises IntegrityError: when that slot's signature is missing or wrong.
    """
    try:
        # Only the owner, and only once the key is proven, brings the schema up to
        # date (version 5 signs the keyslots as they are).
        backends.upgrade(store, OwnerKeys(header.vault_id, header.verify_public, identity))
        with store.read() as transaction:
            signature = keyslots.slot_signature(transaction.execute, slot.id)
        # The columns as they opened, with the signature stored now.
        keyslots.verify_slot(identity.verify_public, header.vault_id, slot, signature)
    except BaseException:
        store.dispose()
        raise
    return store, header, identity, opened_kdf


def open_with_passphrase(where: Where, passphrase: str) -> Unlocked:
    """Open the vault at ``where`` with its passphrase (a failure is audited).

    :raises IntegrityError: wrong passphrase or damaged vault.
    :raises VaultUnavailable: when there is no vault there.
    """
    store, header, slots = _read_slots(where)
    try:
        identity, slot = sealed_slots.open_with_passphrase(header, slots, passphrase)
    except IntegrityError:
        record_refusal(store, header.vault_id, "unlock", "wrong passphrase")
        store.dispose()
        raise
    except BaseException:
        store.dispose()
        raise
    return _proven(store, header, identity, slot, keyslots.slot_params(slot))


def open_with_recovery_key(where: Where, recovery_key: str) -> Unlocked:
    """Open the vault at ``where`` with the recovery key printed at ``init`` (a failure
    is audited).

    :raises InvalidInput: for a mistyped recovery key (checksum).
    :raises IntegrityError: for another vault's key or a damaged vault.
    """
    key = recovery.parse_recovery_key(recovery_key)
    store, header, slots = _read_slots(where)
    try:
        identity, slot = sealed_slots.open_with_recovery_key(header, slots, key)
    except IntegrityError:
        record_refusal(store, header.vault_id, "recover", "wrong recovery key")
        store.dispose()
        raise
    except BaseException:
        store.dispose()
        raise
    return _proven(store, header, identity, slot, None)


def change_passphrase(
    writer: Writer,
    new_passphrase: str,
    opened_kdf: KdfParams | None,
    *,
    recalibrate: bool = False,
    kdf: KdfParams | None = None,
    insecure_test_kdf: bool = False,
) -> KdfParams:
    """Replace the passphrase slot(s) with one for ``new_passphrase``; nothing else is
    re-encrypted. Parameters as :func:`new_slot_params` chooses them.

    :returns: the parameters of the new slot.
    :raises InvalidInput: for an empty passphrase, or an explicit ``kdf`` below the
        floor without ``insecure_test_kdf``.
    :raises UnsupportedFormat: for an explicit ``kdf`` above the cap.
    :raises AccessDenied: when ``writer`` was opened through the unlock agent.
    """
    passphrase_kdf.normalize_passphrase(new_passphrase)
    params = new_slot_params(opened_kdf, recalibrate, kdf, insecure_test_kdf)
    with writer.read() as transaction:
        header = load_header(transaction)
    slot = sealed_slots.new_passphrase_slot(
        header,
        writer.private_identity(),
        new_passphrase,
        params,
        to_epoch(utc_now()),
        insecure_test_kdf=insecure_test_kdf,
    )
    with writer.write() as transaction:
        execute = transaction.execute
        keyslots.delete_slots(execute, keyslots.PASSPHRASE)
        keyslots.insert_slots(execute, [slot])
        writer.audit(transaction, "passwd", detail=str(params))
    writer.checkpoint()
    return params
