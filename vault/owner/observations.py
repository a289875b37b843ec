"""The owner's side of probe observations: one signed by the root key and chained into
the audit log (see :mod:`vault.ops.observations`, which reads them)."""

from __future__ import annotations

from vault.db import queries
from vault.errors import NotFound, quoted
from vault.exchanges.key_report import ProbeOutcome
from vault.format import observation, stages
from vault.format.audit_entry import ROOT_SIGNER
from vault.owner.writer import Writer


def record(writer: Writer, name: str, version: int, outcome: ProbeOutcome) -> None:
    """Store ``outcome`` for version ``version`` of credential ``name``, signed with the
    root key, and its ``probe`` audit entry, in one write.

    :raises NotFound: no credential ``name``, or ``version`` is none of its stages.
    :raises IntegrityError: the credential's head does not verify.
    :raises StoreError: the database fails.
    """
    with writer.write() as transaction:
        head = writer.head(transaction, name)
        if version not in {stages.number_at(head, stage) for stage in stages.STAGES}:
            raise NotFound(f"credential {quoted(name)} has no version {version} in use")
        row = observation.signed_row(
            writer.vault_id, head.id, name, version, outcome, ROOT_SIGNER, writer.identity.sign
        )
        transaction.execute(queries.INSERT_OBSERVATION_SQL, queries.observation_values(row))
        writer.audit(
            transaction,
            observation.AUDIT_ACTION,
            name,
            version=version,
            detail=observation.audit_detail(writer.vault_id, row),
        )


__all__ = ["record"]
