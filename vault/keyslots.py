"""Keyslots: the root private keys wrapped under a passphrase or a recovery key.

LUKS-style: the root identity is encrypted once per slot, each slot with its own
key-encryption key (KEK). Changing the passphrase adds a slot and removes the old
one; no credential is re-encrypted.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterable

from sqlalchemy import select
from sqlalchemy.orm import Session

from vault import crypto, records
from vault.crypto import KdfParams, RootIdentity
from vault.errors import IntegrityError, InvalidInput, UnsupportedFormat
from vault.store import HeaderRecord, KeyslotRecord

PASSPHRASE = "passphrase"  # noqa: S105 (a slot kind)
RECOVERY = "recovery"


def _slot_ad(header: HeaderRecord, slot: KeyslotRecord) -> bytes:
    # The AD binds the slot to this vault's public keys and to its own KDF parameters,
    # so neither a swapped header nor edited parameters can pass.
    return crypto.associated_data(
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


def _seal_slot(
    header: HeaderRecord, slot: KeyslotRecord, kek: bytes, identity: RootIdentity
) -> None:
    slot.nonce, slot.wrapped = crypto.seal(kek, identity.to_bytes(), _slot_ad(header, slot))


def _open_slot(header: HeaderRecord, slot: KeyslotRecord, kek: bytes) -> RootIdentity:
    identity = RootIdentity.from_bytes(
        crypto.unseal(kek, slot.nonce, slot.wrapped, _slot_ad(header, slot))
    )
    # The slot decrypted, but are these the keys the header advertises?
    if not (
        crypto.constant_time_equal(identity.encryption_public, header.encryption_public)
        and crypto.constant_time_equal(identity.verify_public, header.verify_public)
    ):
        raise IntegrityError()
    return identity


def slot_params(slot: KeyslotRecord) -> KdfParams:
    """The Argon2id parameters of a passphrase slot.

    :raises UnsupportedFormat: when they are missing or above the cap.
    """
    if slot.kdf_time_cost is None or slot.kdf_memory_kib is None or slot.kdf_parallelism is None:
        raise UnsupportedFormat("a passphrase keyslot has no KDF parameters")
    params = KdfParams(slot.kdf_time_cost, slot.kdf_memory_kib, slot.kdf_parallelism)
    crypto.check_kdf_params(params)
    return params


def passphrase_kdf_params(session: Session) -> list[KdfParams]:
    """The KDF parameters of the passphrase slots, read without the wrapped keys.

    Only these columns are selected, so that keyless readers (``check``, ``info``)
    work with a database role that may not read ``keyslots.wrapped``.

    :raises UnsupportedFormat: when a slot's parameters are missing or above the cap.
    :raises IntegrityError: when one of them is not an integer.
    """
    rows = session.execute(
        select(
            KeyslotRecord.id,
            KeyslotRecord.kdf_time_cost,
            KeyslotRecord.kdf_memory_kib,
            KeyslotRecord.kdf_parallelism,
        ).where(KeyslotRecord.kind == PASSPHRASE)
    ).all()
    params = []
    for row in rows:
        records.check_types(row, KeyslotRecord.__tablename__, row._fields)
        _id, t, m, p = row
        if t is None or m is None or p is None:
            raise UnsupportedFormat("a passphrase keyslot has no KDF parameters")
        params.append(KdfParams(t, m, p))
        crypto.check_kdf_params(params[-1])
    return params


def new_passphrase_slot(
    header: HeaderRecord,
    identity: RootIdentity,
    passphrase: str,
    params: KdfParams,
    now: int,
    *,
    insecure_test_kdf: bool = False,
) -> KeyslotRecord:
    """A passphrase keyslot holding ``identity`` under Argon2id(``passphrase``).

    Every passphrase slot is written here, so this is where the floor holds: no slot
    below :data:`~vault.crypto.KDF_FLOOR` unless ``insecure_test_kdf`` (test suites).

    :raises InvalidInput: for parameters below the floor without ``insecure_test_kdf``.
    :raises UnsupportedFormat: for parameters above the cap.
    """
    crypto.check_kdf_params(params)
    if not params.at_least(crypto.KDF_FLOOR) and not insecure_test_kdf:
        raise InvalidInput(f"KDF parameters below the floor ({crypto.KDF_FLOOR})")
    slot = KeyslotRecord(
        id=uuid.uuid4().hex,
        kind=PASSPHRASE,
        salt=os.urandom(crypto.SALT_SIZE),
        kdf_time_cost=params.time_cost,
        kdf_memory_kib=params.memory_kib,
        kdf_parallelism=params.parallelism,
        created_at=now,
    )
    _seal_slot(header, slot, crypto.derive_passphrase_kek(passphrase, slot.salt, params), identity)
    return slot


def new_recovery_slot(
    header: HeaderRecord, identity: RootIdentity, recovery_key: bytes, now: int
) -> KeyslotRecord:
    """A recovery keyslot holding ``identity`` under HKDF(``recovery_key``)."""
    slot = KeyslotRecord(
        id=uuid.uuid4().hex,
        kind=RECOVERY,
        salt=os.urandom(crypto.SALT_SIZE),
        kdf_time_cost=None,
        kdf_memory_kib=None,
        kdf_parallelism=None,
        created_at=now,
    )
    _seal_slot(header, slot, crypto.derive_recovery_kek(recovery_key, slot.salt), identity)
    return slot


def open_with_passphrase(
    header: HeaderRecord, slots: Iterable[KeyslotRecord], passphrase: str
) -> tuple[RootIdentity, KeyslotRecord]:
    """Unlock the root identity with a passphrase.

    The one passphrase slot's KDF always runs in full, so a wrong passphrase costs
    exactly what a right one does.

    :raises IntegrityError: when no slot opens (wrong passphrase or damaged vault).
    :raises UnsupportedFormat: when a slot's KDF parameters are above the cap.
    """
    found: tuple[RootIdentity, KeyslotRecord] | None = None
    candidates = [s for s in slots if s.kind == PASSPHRASE]
    # exvault keeps exactly one passphrase slot (passwd replaces it in one transaction);
    # more would multiply the KDF work an unlock costs, so a vault with more is refused.
    if len(candidates) != 1:
        raise IntegrityError("damaged vault: expected one passphrase keyslot")
    for slot in candidates:
        records.check_types(slot, KeyslotRecord.__tablename__)
        kek = crypto.derive_passphrase_kek(passphrase, slot.salt, slot_params(slot))
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
    header: HeaderRecord, slots: Iterable[KeyslotRecord], recovery_key: bytes
) -> RootIdentity:
    """Unlock the root identity with the recovery key.

    :raises IntegrityError: when no recovery slot opens.
    """
    for slot in slots:
        if slot.kind != RECOVERY:
            continue
        records.check_types(slot, KeyslotRecord.__tablename__)
        try:
            return _open_slot(header, slot, crypto.derive_recovery_kek(recovery_key, slot.salt))
        except IntegrityError:
            continue
    raise IntegrityError()
