"""Who may have signed an audit entry that ``check`` counts (a read, a probe), and
whether an entry could be genuine before its signature is checked.

Shared by the usage rules of :mod:`vault.ops.checks` and the probe observations of
:mod:`vault.ops.observations`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from vault.db import audit, queries
from vault.db.transaction import Transaction
from vault.errors import IntegrityError
from vault.format import records
from vault.format.audit_entry import AuditRow
from vault.format.model import split_list
from vault.format.schema import ClientRow

if TYPE_CHECKING:
    from vault.db.inventory import Inventory

CLOCK_SKEW = 300
"""Seconds a read or probe entry may lie ahead of ``check``'s clock and still count."""


def plausible_entry(transaction: Transaction, now: int) -> Callable[[AuditRow], bool]:
    """Whether a read or probe entry could be genuine, before its signature is checked:
    not in the future, and by the owner or by a client in the credential's grantee set.

    A client whose record verifies can sign a read of any credential, at any time,
    into a log it may append to (the bots' audit file, PostgreSQL's append function);
    a real one is refused for a credential it does not hold. Without this, one forged
    read would hide a dead key from the usage rules, and one forged probe a bad
    observation. (The grantee sets are read unverified, like everything ``check``
    reads: whoever can edit them can edit any metadata ``check`` sees.)
    """
    grantees: dict[str, frozenset[str]] | None = None  # read at the first client read

    def plausible(entry: AuditRow) -> bool:
        nonlocal grantees
        if not isinstance(entry.at, int) or entry.at > now + CLOCK_SKEW:
            return False
        if entry.signer == audit.ROOT_SIGNER:
            return True
        if grantees is None:
            grantees = {
                name: frozenset(split_list(ids))
                for name, ids in transaction.execute(queries.GRANTEES_SQL, {})
                if isinstance(name, str) and isinstance(ids, str)
            }
        return entry.signer in grantees.get(entry.credential or "", frozenset())

    return plausible


def entry_signers(transaction: Transaction, inventory: Inventory) -> dict[str, tuple[str, bytes]]:
    """Who may sign a read or a probe: the vault key as the admin, and each client whose
    record verifies, as itself (signer id -> actor, Ed25519 public key)."""
    signers = {audit.ROOT_SIGNER: (audit.ADMIN, inventory.verify_public)}
    for values in transaction.execute(queries.CLIENTS_SQL, {}):
        client = ClientRow(*values)
        try:
            records.verify_client(inventory.verify_public, inventory.vault_id, client)
        except IntegrityError:
            continue  # a forged client's entries count for nothing
        signers[client.id] = (audit.client_actor(client.name), client.verify_public)
    return signers


__all__ = ["CLOCK_SKEW", "entry_signers", "plausible_entry"]
