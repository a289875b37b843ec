"""Keyslots: the root private keys wrapped under a passphrase or a recovery key.

LUKS-style: the root identity is encrypted once per slot, each slot with its own
key-encryption key (KEK). Changing the passphrase adds a slot and removes the old
one; no credential is re-encrypted. Unlike LUKS, every slot is also signed by the root
key (schema version 5): the signature can only be checked once a slot has opened and
proved the header's keys, so the owner's unlock checks the slot it opened.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from types import SimpleNamespace
from typing import Protocol

from vault.db import queries
from vault.db.transaction import Transaction
from vault.errors import IntegrityError, UnsupportedFormat
from vault.format import encoding, identities, kdf_params, records
from vault.format.kdf_params import KdfParams
from vault.format.schema import KeyslotRow

TABLE = "keyslots"

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
    """A keyslot's signed columns: a :class:`KeyslotRow`, an ORM record (``exvault
    verify``) or a row a migration read."""

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
    return encoding.signed_message(
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


def verify_slot(verify_public: bytes, vault_id: bytes, slot: Slot, signature: object) -> None:
    """Check ``signature`` over ``slot``'s columns.

    Meaningful only once the slot has opened: before, ``verify_public`` is only the
    header's word (a database writer can replace header, slots and signatures
    together).

    :raises IntegrityError: when the signature is missing or does not verify.
    """
    records.check_types(slot, TABLE, SIGNED_COLUMNS)
    if type(signature) is not bytes:
        raise IntegrityError("damaged vault: a keyslot is not signed (an old or forged row)")
    try:
        identities.verify_signature(verify_public, slot_message(vault_id, slot), signature)
    except IntegrityError:
        raise IntegrityError(
            "damaged vault: a keyslot's signature does not verify (an edited or forged row)"
        ) from None


def sign_stored_slots(
    execute: queries.Execute, vault_id: bytes, sign: Callable[[bytes], bytes]
) -> None:
    """Sign every keyslot row in the database with the root key's ``sign`` (schema
    version 5's migration).

    A row whose columns hold values of other types than the schema's is left unsigned
    (``exvault verify`` reports it); the owner's unlock has checked the slot it opened.
    """
    for row in _unsigned_rows(execute(queries.KEYSLOT_COLUMNS_SQL, {})):
        if records.type_damage(row, TABLE, SIGNED_COLUMNS) is not None:
            continue
        execute(
            queries.SIGN_KEYSLOT_SQL,
            {"id": row.id, "signature": sign(slot_message(vault_id, row))},
        )


def _unsigned_rows(rows: Iterable[Sequence[object]]) -> list[KeyslotRow]:
    # The columns of KEYSLOT_COLUMNS_SQL, with the signature not read (None).
    return [KeyslotRow._make((*row, None)) for row in rows]


def read_slots(execute: queries.Execute) -> list[KeyslotRow]:
    """Every keyslot, without its signature (None here): a schema older than version 5
    has none; the owner's unlock reads the opened slot's with :func:`slot_signature`
    once the schema is up to date."""
    return _unsigned_rows(execute(queries.KEYSLOT_COLUMNS_SQL, {}))


def slot_signature(execute: queries.Execute, slot_id: str) -> object:
    """The stored signature of keyslot ``slot_id`` (None when there is none; of any type
    a damaged row holds: :func:`verify_slot` checks it)."""
    found = execute(queries.KEYSLOT_SIGNATURE_SQL, {"id": slot_id})
    return found[0][0] if found else None


def insert_slots(execute: queries.Execute, slots: Iterable[KeyslotRow]) -> None:
    """Store new keyslots (signed by :mod:`vault.owner.sealed_slots`)."""
    for slot in slots:
        execute(queries.INSERT_KEYSLOT_SQL, slot._asdict())


def delete_slots(execute: queries.Execute, kind: str | None = None) -> None:
    """Delete the keyslots of ``kind``, or every keyslot when ``kind`` is None."""
    if kind is None:
        execute(queries.DELETE_KEYSLOTS_SQL, {})
    else:
        execute(queries.DELETE_KEYSLOTS_OF_KIND_SQL, {"kind": kind})


def slot_params(slot: Slot) -> KdfParams:
    """The Argon2id parameters of a passphrase slot.

    :raises UnsupportedFormat: when they are missing or above the cap.
    """
    if slot.kdf_time_cost is None or slot.kdf_memory_kib is None or slot.kdf_parallelism is None:
        raise UnsupportedFormat("a passphrase keyslot has no KDF parameters")
    params = KdfParams(slot.kdf_time_cost, slot.kdf_memory_kib, slot.kdf_parallelism)
    kdf_params.check_kdf_params(params)
    return params


def passphrase_kdf_params(transaction: Transaction) -> list[KdfParams]:
    """The KDF parameters of the passphrase slots, read without the wrapped keys.

    Only these columns are selected, so that keyless readers (``check``, ``info``)
    work with a database role that may not read ``keyslots.wrapped``.

    :raises UnsupportedFormat: when a slot's parameters are missing or above the cap.
    :raises IntegrityError: when one of them is not an integer.
    """
    rows = transaction.execute(queries.SLOTS_KDF_SQL, {"kind": PASSPHRASE})
    params = []
    for row in rows:
        records.check_types(
            SimpleNamespace(**dict(zip(queries.PASSPHRASE_KDF_COLUMNS, row, strict=True))),
            "keyslots",
            queries.PASSPHRASE_KDF_COLUMNS,
        )
        _id, t, m, p = row
        if t is None or m is None or p is None:
            raise UnsupportedFormat("a passphrase keyslot has no KDF parameters")
        params.append(KdfParams(t, m, p))
        kdf_params.check_kdf_params(params[-1])
    return params
