"""Keyslots: the root private keys wrapped under a passphrase or a recovery key.

LUKS-style: the root identity is encrypted once per slot, each slot with its own
key-encryption key (KEK). Changing the passphrase adds a slot and removes the old
one; no credential is re-encrypted. Unlike LUKS, every slot is also signed by the root
key (schema version 5): the signature can only be checked once a slot has opened and
proved the header's keys, so the owner's unlock checks the slot it opened.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterable
from typing import Protocol

from sqlalchemy import Table, select, update
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session

from vault.db.tables import HeaderRecord, KeyslotRecord
from vault.errors import IntegrityError, InvalidInput, UnsupportedFormat
from vault.format import crypto, records
from vault.format.crypto import KdfParams, RootIdentity

PASSPHRASE = "passphrase"  # noqa: S105 (a slot kind)
RECOVERY = "recovery"

SIGNED_COLUMNS = (
    "id",
    "kind",
    "salt",
    "kdf_time_cost",
    "kdf_memory_kib",
    "kdf_parallelism",
    "nonce",
    "wrapped",
    "created_at",
)
"""The keyslot columns the root key's signature covers: all but the signature."""


class Slot(Protocol):
    """A keyslot row, whether an ORM record or a plain row read by a migration."""

    @property
    def id(self) -> str: ...
    @property
    def kind(self) -> str: ...
    @property
    def salt(self) -> bytes: ...
    @property
    def kdf_time_cost(self) -> int | None: ...
    @property
    def kdf_memory_kib(self) -> int | None: ...
    @property
    def kdf_parallelism(self) -> int | None: ...
    @property
    def nonce(self) -> bytes: ...
    @property
    def wrapped(self) -> bytes: ...
    @property
    def created_at(self) -> int: ...


def slot_message(vault_id: bytes, slot: Slot) -> bytes:
    """What a keyslot's signature covers: every column of :data:`SIGNED_COLUMNS`."""
    return crypto.signed_message(
        "keyslot",
        vault_id,
        slot.id,
        slot.kind,
        slot.salt,
        slot.kdf_time_cost,
        slot.kdf_memory_kib,
        slot.kdf_parallelism,
        slot.nonce,
        slot.wrapped,
        slot.created_at,
    )


def verify_slot(verify_public: bytes, vault_id: bytes, slot: Slot, signature: bytes | None) -> None:
    """Check ``signature`` over ``slot``'s columns.

    Meaningful only once the slot has opened: before, ``verify_public`` is only the
    header's word (a database writer can replace header, slots and signatures
    together).

    :raises IntegrityError: when the signature is missing or does not verify.
    """
    records.check_types(slot, KeyslotRecord.__tablename__, SIGNED_COLUMNS)
    if type(signature) is not bytes:
        raise IntegrityError("damaged vault: a keyslot is not signed (an old or forged row)")
    try:
        crypto.verify_signature(verify_public, slot_message(vault_id, slot), signature)
    except IntegrityError:
        raise IntegrityError(
            "damaged vault: a keyslot's signature does not verify (an edited or forged row)"
        ) from None


def sign_stored_slots(
    conn: Connection, vault_id: bytes, sign: Callable[[bytes], bytes]
) -> None:
    """Sign every keyslot row in the database with the root key's ``sign`` (schema
    version 5's migration).

    A row whose columns hold values of other types than the schema's is left unsigned
    (``exvault verify`` reports it); the owner's unlock has checked the slot it opened.
    """
    table = KeyslotRecord.__table__
    assert isinstance(table, Table)
    rows = conn.execute(select(*(table.c[name] for name in SIGNED_COLUMNS))).all()
    for row in rows:
        if records.type_damage(row, KeyslotRecord.__tablename__, SIGNED_COLUMNS) is not None:
            continue
        conn.execute(
            update(table)
            .where(table.c.id == row.id)
            .values(signature=sign(slot_message(vault_id, row)))
        )


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
    slot.signature = identity.sign(slot_message(header.vault_id, slot))


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
    below :data:`~vault.format.crypto.KDF_FLOOR` unless ``insecure_test_kdf`` (test suites).

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
) -> tuple[RootIdentity, KeyslotRecord]:
    """Unlock the root identity with the recovery key.

    :raises IntegrityError: when no recovery slot opens.
    """
    for slot in slots:
        if slot.kind != RECOVERY:
            continue
        records.check_types(slot, KeyslotRecord.__tablename__)
        try:
            kek = crypto.derive_recovery_kek(recovery_key, slot.salt)
            return _open_slot(header, slot, kek), slot
        except IntegrityError:
            continue
    raise IntegrityError()
