"""Sealing the root identity into keyslots, and opening it from one, with the passphrase
(Argon2id) or the recovery key (HKDF).

The keyless half of keyslots (their rows, signed messages, parameters) is
:mod:`vault.db.keyslots`; this half derives keys, so only the owner's unlock, ``create``,
``passwd``, ``recover`` and ``rekey`` load it (and with it argon2). Every passphrase slot
is written by :func:`new_passphrase_slot`, so that is where the KDF floor holds. The
associated data binds each slot to the vault's public keys and to its own KDF
parameters, so neither a swapped header nor edited parameters can pass.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterable
from typing import TYPE_CHECKING

from vault.db.keyslots import PASSPHRASE, RECOVERY, TABLE, slot_message, slot_params
from vault.errors import IntegrityError, InvalidInput
from vault.format import aead, encoding, kdf_params, passphrase_kdf, records, recovery
from vault.format.identities import RootIdentity
from vault.format.kdf_params import KdfParams
from vault.format.schema import KeyslotRow

if TYPE_CHECKING:
    from vault.format.records import Header

if TYPE_CHECKING:
    # The header as read (a plain row) or as a new vault's or a rekey's made.
    from vault.format.records import Header


def _slot_ad(header: Header, slot: KeyslotRow) -> bytes:
    # The AD binds the slot to this vault's public keys and to its own KDF parameters,
    # so neither a swapped header nor edited parameters can pass.
    return encoding.associated_data(
        "keyslot",
        header.vault_id,
        slot.id,
        slot.kind,
        slot.salt,
        slot.kdf_time_cost,
        slot.kdf_memory_kib,
        slot.kdf_parallelism,
        header.encryption_public,
        header.verify_public,
    )


def _sealed(header: Header, slot: KeyslotRow, kek: bytes, identity: RootIdentity) -> KeyslotRow:
    # ``slot`` with ``identity`` sealed under ``kek``, then signed by it.
    nonce, wrapped = aead.seal(kek, identity.to_bytes(), _slot_ad(header, slot))
    sealed = slot._replace(nonce=nonce, wrapped=wrapped)
    return sealed._replace(signature=identity.sign(slot_message(header.vault_id, sealed)))


def _unsealed(kind: str, params: KdfParams | None, now: int) -> KeyslotRow:
    # A new slot's columns before sealing: nothing in nonce, wrapped and signature yet.
    return KeyslotRow(
        id=uuid.uuid4().hex,
        kind=kind,
        salt=os.urandom(kdf_params.SALT_SIZE),
        kdf_time_cost=None if params is None else params.time_cost,
        kdf_memory_kib=None if params is None else params.memory_kib,
        kdf_parallelism=None if params is None else params.parallelism,
        nonce=b"",
        wrapped=b"",
        created_at=now,
        signature=None,
    )


def _open_slot(header: Header, slot: KeyslotRow, kek: bytes) -> RootIdentity:
    identity = RootIdentity.from_bytes(
        aead.unseal(kek, slot.nonce, slot.wrapped, _slot_ad(header, slot))
    )
    # The slot decrypted, but are these the keys the header advertises?
    if not (
        aead.constant_time_equal(identity.encryption_public, header.encryption_public)
        and aead.constant_time_equal(identity.verify_public, header.verify_public)
    ):
        raise IntegrityError()
    return identity


def new_passphrase_slot(
    header: Header,
    identity: RootIdentity,
    passphrase: str,
    params: KdfParams,
    now: int,
    *,
    insecure_test_kdf: bool = False,
) -> KeyslotRow:
    """A passphrase keyslot holding ``identity`` under Argon2id(``passphrase``).

    Every passphrase slot is written here, so this is where the floor holds: no slot
    below :data:`~vault.format.kdf_params.KDF_FLOOR` unless ``insecure_test_kdf`` (test suites).

    :raises InvalidInput: for parameters below the floor without ``insecure_test_kdf``.
    :raises UnsupportedFormat: for parameters above the cap.
    """
    kdf_params.check_kdf_params(params)
    if not params.at_least(kdf_params.KDF_FLOOR) and not insecure_test_kdf:
        raise InvalidInput(f"KDF parameters below the floor ({kdf_params.KDF_FLOOR})")
    slot = _unsealed(PASSPHRASE, params, now)
    kek = passphrase_kdf.derive_passphrase_kek(passphrase, slot.salt, params)
    return _sealed(header, slot, kek, identity)


def new_recovery_slot(
    header: Header, identity: RootIdentity, recovery_key: bytes, now: int
) -> KeyslotRow:
    """A recovery keyslot holding ``identity`` under HKDF(``recovery_key``)."""
    slot = _unsealed(RECOVERY, None, now)
    return _sealed(header, slot, recovery.derive_recovery_kek(recovery_key, slot.salt), identity)


def open_with_passphrase(
    header: Header, slots: Iterable[KeyslotRow], passphrase: str
) -> tuple[RootIdentity, KeyslotRow]:
    """Unlock the root identity with a passphrase.

    The one passphrase slot's KDF always runs in full, so a wrong passphrase costs
    exactly what a right one does.

    :raises IntegrityError: when no slot opens (wrong passphrase or damaged vault).
    :raises UnsupportedFormat: when a slot's KDF parameters are above the cap.
    """
    found: tuple[RootIdentity, KeyslotRow] | None = None
    candidates = [s for s in slots if s.kind == PASSPHRASE]
    # exvault keeps exactly one passphrase slot (passwd replaces it in one transaction);
    # more would multiply the KDF work an unlock costs, so a vault with more is refused.
    if len(candidates) != 1:
        raise IntegrityError("damaged vault: expected one passphrase keyslot")
    for slot in candidates:
        records.check_types(slot, TABLE)
        kek = passphrase_kdf.derive_passphrase_kek(passphrase, slot.salt, slot_params(slot))
        try:
            identity = _open_slot(header, slot, kek)
        except IntegrityError:
            continue
        if found is None:
            found = (identity, slot)
    if found is None:
        raise IntegrityError()
    return found


def open_with_recovery_key(
    header: Header, slots: Iterable[KeyslotRow], recovery_key: bytes
) -> tuple[RootIdentity, KeyslotRow]:
    """Unlock the root identity with the recovery key.

    :raises IntegrityError: when no recovery slot opens.
    """
    for slot in slots:
        if slot.kind != RECOVERY:
            continue
        records.check_types(slot, TABLE)
        try:
            kek = recovery.derive_recovery_kek(recovery_key, slot.salt)
            return _open_slot(header, slot, kek), slot
        except IntegrityError:
            continue
    raise IntegrityError()
