"""The owner's side of the unlock agent: open a vault through it, lock.

``exvault unlock`` hands the agent a vault's root keys with the vault's *unlock
state*: a digest of its header row and its passphrase keyslot rows
(:func:`unlock_state`; the handing over is :mod:`vault.owner.agent_handover`'s). An
owner command then opens the vault through the agent (:func:`open_through_agent`):
it reads the state again and names it in every request, so after ``passwd``,
``recover``, ``rekey`` or a ``restore`` that changed either, the agent refuses and
locks that vault, and the command asks for the passphrase. Every owner command
imports this module, so it never loads what starting an agent needs.
"""

from __future__ import annotations

import weakref
from typing import Any

from vault.agent import client
from vault.agent.client import AgentIdentity
from vault.db import backends, keyslots, queries
from vault.db.inventory import Inventory, Where, open_store
from vault.db.schema_version import OwnerKeys
from vault.db.transaction import Transaction
from vault.errors import AgentRefused, IntegrityError
from vault.format import aead, encoding
from vault.owner.admin import AdminVault


def unlock_state(transaction: Transaction) -> bytes:
    """SHA-256 of the header row and the passphrase keyslot rows, every column.

    Any change to the header (a rekey, a restore of another vault) or to the
    passphrase slot (``passwd``, ``recover``) changes it.
    """
    execute = transaction.execute
    values: list[encoding.Field] = [b"exvault-agent-state"]
    for row in execute(queries.HEADER_ROWS_SQL, {}):
        values += [_field(v) for v in row]
    for row in execute(queries.KEYSLOT_ROWS_SQL, {"kind": keyslots.PASSPHRASE}):
        values += [_field(v) for v in row]
    return encoding.digest(*values)


def _field(value: Any) -> encoding.Field:
    # Drivers return bytes as memoryview (PostgreSQL) or bytes; anything else as text.
    if isinstance(value, memoryview):
        return value.tobytes()
    if value is None or isinstance(value, (bytes, str)):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    return str(value)


def open_through_agent(where: Where) -> AdminVault | None:
    """The vault unlocked through the agent, or None when no agent holds it as it is
    now (none runs, it never unlocked this vault, it locked it, or its passphrase or
    header changed since: the agent then locks it). The caller asks for the passphrase.

    :raises VaultUnavailable: when there is no vault there.
    :raises IntegrityError: when the agent's keys are not the header's.
    """
    conn = client.connect()
    if conn is None:
        return None
    try:
        store, header = open_store(where, owner=True)
    except BaseException:
        conn.close()
        raise
    try:
        with store.read() as transaction:
            state = unlock_state(transaction)
        try:
            identity, kdf = AgentIdentity.describe(conn, header.vault_id, state)
        except AgentRefused:
            store.dispose()
            conn.close()
            return None
        if not (
            aead.constant_time_equal(identity.verify_public, header.verify_public)
            and aead.constant_time_equal(identity.encryption_public, header.encryption_public)
        ):
            raise IntegrityError("the unlock agent holds other keys for this vault")
        backends.upgrade(store, OwnerKeys(header.vault_id, header.verify_public, identity))
    except BaseException:
        store.dispose()
        conn.close()
        raise
    admin = AdminVault(store, header, identity, kdf)
    # The connection lives as long as the handle that asks through it.
    weakref.finalize(admin, conn.close)
    return admin


def lock_in_agent(where: Where) -> bool:
    """Lock the vault at ``where`` in the agent; True when it was unlocked there
    (False also when no agent runs).

    :raises VaultUnavailable: when there is no vault at ``where``.
    :raises AgentRefused: when the agent does not answer properly.
    """
    with Inventory.open(where) as inventory:
        vault_id = inventory.vault_id
    conn = client.connect()
    if conn is None:
        return False
    with conn:
        return client.lock(conn, vault_id) > 0


def lock_everything_in_agent() -> int:
    """Lock every vault in the agent; how many were unlocked (0 when no agent runs).

    :raises AgentRefused: when the agent does not answer properly.
    """
    conn = client.connect()
    if conn is None:
        return 0
    with conn:
        return client.lock(conn, None)


def lock_vault_id(vault_id: bytes) -> None:
    """Lock ``vault_id`` in the agent when one runs (after its passphrase or keys
    changed); never fails for want of an agent."""
    try:
        conn = client.connect()
        if conn is not None:
            with conn:
                client.lock(conn, vault_id)
    except (AgentRefused, OSError):
        pass  # the state digest locks it at its next use anyway
