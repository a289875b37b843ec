"""Handing a vault to the unlock agent: ``exvault unlock``.

The vault is opened with its passphrase (Argon2id, the keyslot's signature, any
schema upgrade: :meth:`AdminVault.unlock`), then its root keys go to the agent,
started if none runs (:mod:`vault.agent.launch`), with the vault's unlock state
(:func:`vault.owner.agent_unlock.unlock_state`). Apart from
:mod:`vault.owner.agent_unlock`, which every owner command imports, so that only
``unlock`` loads what starting a process needs.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from vault.agent import client, launch
from vault.db.inventory import Where
from vault.owner.admin import AdminVault
from vault.owner.agent_unlock import unlock_state


@dataclass(frozen=True)
class Handed:
    """A vault handed to the agent: its id and where it is."""

    vault_id: bytes
    location: str


def unlock_into_agent(
    where: Where, passphrase: str, idle: timedelta, max_lifetime: timedelta
) -> Handed:
    """Open the vault with ``passphrase`` and hand its root keys to the agent (started
    if none runs; a second unlock replaces the first's entry and lifetimes).

    :raises IntegrityError: wrong passphrase or damaged vault.
    :raises AgentRefused: when the agent refuses (e.g. a lifetime over a week).
    :raises VaultUnavailable: no vault there, or the agent does not start.
    :raises InsecureFile: when the agent directory is unsafe.
    """
    with AdminVault.unlock(where, passphrase) as admin:
        # Unlocked with the passphrase just now: the writer holds the keys themselves.
        identity = admin.writer.private_identity()
        status = admin.status()
        with admin.store.read() as transaction:
            state = unlock_state(transaction)
        location = admin.store.location
        with launch.connect_or_start() as conn:
            client.unlock(
                conn,
                admin.vault_id,
                state,
                identity.to_bytes(),
                location,
                int(idle.total_seconds()),
                int(max_lifetime.total_seconds()),
                status.kdf if status.kdf_authenticated else None,
            )
        return Handed(admin.vault_id, location)
