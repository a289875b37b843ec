"""Keyslots: the root private keys wrapped under a passphrase or a recovery key.

LUKS-style: the root identity is encrypted once per slot, each slot with its own
key-encryption key (KEK). Changing the passphrase adds a slot and removes the old
one; no credential is re-encrypted. Unlike LUKS, every slot is also signed by the root
key (schema version 5): the signature can only be checked once a slot has opened and
proved the header's keys, so the owner's unlock checks the slot it opened.
"""

from __future__ import annotations

from collections.abc import Callable
from types import SimpleNamespace
from typing import Protocol

from sqlalchemy import Table, select, update
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session

from vault.db import queries
from vault.db.tables import KeyslotRecord
from vault.errors import IntegrityError, UnsupportedFormat
from vault.format import encoding, identities, kdf_params, records
from vault.format.kdf_params import KdfParams

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
        identities.verify_signature(verify_public, slot_message(vault_id, slot), signature)
    except IntegrityError:
        raise IntegrityError(
            "damaged vault: a keyslot's signature does not verify (an edited or forged row)"
        ) from None


def sign_stored_slots(conn: Connection, vault_id: bytes, sign: Callable[[bytes], bytes]) -> None:
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


def slot_params(slot: KeyslotRecord) -> KdfParams:
    """The Argon2id parameters of a passphrase slot.

    :raises UnsupportedFormat: when they are missing or above the cap.
    """
    if slot.kdf_time_cost is None or slot.kdf_memory_kib is None or slot.kdf_parallelism is None:
        raise UnsupportedFormat("a passphrase keyslot has no KDF parameters")
    params = KdfParams(slot.kdf_time_cost, slot.kdf_memory_kib, slot.kdf_parallelism)
    kdf_params.check_kdf_params(params)
    return params


def passphrase_kdf_params(session: Session) -> list[KdfParams]:
    """The KDF parameters of the passphrase slots, read without the wrapped keys.

    Only these columns are selected, so that keyless readers (``check``, ``info``)
    work with a database role that may not read ``keyslots.wrapped``.

    :raises UnsupportedFormat: when a slot's parameters are missing or above the cap.
    :raises IntegrityError: when one of them is not an integer.
    """
    # Imported here: the store's migrations import this module (schema version 5).
    from vault.db.store import session_executor

    rows = session_executor(session)(queries.SLOTS_KDF_SQL, {"kind": PASSPHRASE})
    params = []
    for row in rows:
        records.check_types(
            SimpleNamespace(**dict(zip(queries.PASSPHRASE_KDF_COLUMNS, row, strict=True))),
            KeyslotRecord.__tablename__,
            queries.PASSPHRASE_KDF_COLUMNS,
        )
        _id, t, m, p = row
        if t is None or m is None or p is None:
            raise UnsupportedFormat("a passphrase keyslot has no KDF parameters")
        params.append(KdfParams(t, m, p))
        kdf_params.check_kdf_params(params[-1])
    return params
