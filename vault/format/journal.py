"""Automated rotation's journal entries: their steps and states, and what their
signature covers.

An entry records one exchange-side step of one rotation before the exchange call is
made (``intent``) and what came of it after (``done``, ``failed``, ``abandoned``), so
that a run killed at any point leaves enough behind for the next run to finish or undo
the step. It never holds a secret: ``api_key`` is a key's public id.
"""

from __future__ import annotations

from vault.errors import IntegrityError
from vault.format import encoding, identities
from vault.format.identities import RootKeys
from vault.format.schema import JournalRow

LEASE = "lease"
"""A run's claim on one credential (``holder``: which process), so that two runs never
rotate it at once."""
CREATE = "create"
"""A key being created at the exchange (found again by its label's rotation id)."""
DELETE = "delete"
"""A key (``api_key``) being deleted at the exchange."""
STEPS = (LEASE, CREATE, DELETE)

INTENT = "intent"
DONE = "done"
FAILED = "failed"
"""The exchange refused: nothing happened there."""
ABANDONED = "abandoned"
"""Undone or given up by a later run (a created key whose secret never reached the
vault, deleted; a lease of a process that died)."""
STATES = (INTENT, DONE, FAILED, ABANDONED)
SETTLED = (DONE, FAILED, ABANDONED)


def message(vault_id: bytes, row: JournalRow) -> bytes:
    """What an entry's signature covers: every column but the signature, ``id`` too
    (the writer signs a new row once the database has numbered it, in the same
    transaction), so that no entry can be passed off as another."""
    return encoding.signed_message(
        "rotation-journal",
        vault_id,
        row.id,
        row.credential,
        row.rotation_id,
        row.step,
        row.state,
        row.api_key,
        row.detail,
        row.holder,
        row.attempts,
        row.created_at,
        row.updated_at,
    )


def signed(identity: RootKeys, vault_id: bytes, row: JournalRow) -> JournalRow:
    """``row`` with its signature by the root key."""
    return row._replace(signature=identity.sign(message(vault_id, row)))


def verify(verify_public: bytes, vault_id: bytes, row: JournalRow) -> JournalRow:
    """``row`` itself once its signature, step and state check out.

    :raises IntegrityError: when the row was forged or edited.
    """
    if row.step not in STEPS or row.state not in STATES:
        raise IntegrityError("damaged vault: a rotation journal entry is malformed")
    identities.verify_signature(verify_public, message(vault_id, row), row.signature)
    return row


__all__ = [
    "ABANDONED",
    "CREATE",
    "DELETE",
    "DONE",
    "FAILED",
    "INTENT",
    "LEASE",
    "SETTLED",
    "STATES",
    "STEPS",
    "message",
    "signed",
    "verify",
]
