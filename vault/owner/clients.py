"""The owner's client operations over a :class:`~vault.owner.writer.Writer`: add a
client, grant and ungrant credentials, revoke a client (marking what it could read
as exposed), and what the signed audit log says about grants."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from pathlib import Path

from vault.db import access_history, audit, audit_file, queries
from vault.db.transaction import Transaction
from vault.errors import (
    AccessDenied,
    AlreadyExists,
    Conflict,
    IntegrityError,
    NotFound,
    VaultError,
    quoted,
)
from vault.format import identities, records, stages
from vault.format.access import DEFAULT_SCOPE, beyond_scope, check_client_expiry, parse_scope
from vault.format.audit_entry import AuditRow
from vault.format.editable import EditableClient, EditableHead
from vault.format.keywrap import Recipient
from vault.format.model import join_list, split_list, to_epoch, utc_now, validate_name
from vault.format.schema import GrantRow
from vault.owner.writer import Writer
from vault.runtime.token import ClientToken


def add_client(
    writer: Writer,
    name: str,
    *,
    expires_at: datetime | None = None,
    max_scope: str | tuple[str, ...] = DEFAULT_SCOPE,
) -> str:
    """Create a client identity; returns its token (``exv1-...``, to show once).

    The vault keeps only the client's public keys: a lost token cannot be shown
    again, only replaced by a new client.

    :raises AlreadyExists: when the name is taken (revoked clients keep theirs).
    :raises InvalidInput: for a bad name, scope or an expiry in the past.
    """
    validate_name(name, "client")
    scope = parse_scope(max_scope)
    now = utc_now()
    check_client_expiry(expires_at, now)
    client_id = records.new_record_id()
    # The token pins the root key this writer holds (a rekey's new one, after it).
    token = ClientToken.generate(
        writer.vault_id, identities.fingerprint(writer.verify_public), client_id
    )
    with writer.write() as transaction:
        if writer.client_named(transaction, name):
            raise AlreadyExists(f'a client named "{name}" exists already')
        client = EditableClient(
            id=client_id,
            name=name,
            encryption_public=token.encryption_public,
            verify_public=token.verify_public,
            created_at=to_epoch(now),
            expires_at=to_epoch(expires_at) if expires_at else None,
            max_scope=join_list(scope),
            revoked_at=None,
            signature=b"",
        )
        writer.sign_client(transaction, client, new=True)
        writer.audit(
            transaction,
            "client-add",
            detail=f"client {name}; max scope {join_list(scope)}; "
            f"expires {expires_at.isoformat() if expires_at else 'never'}",
        )
    return token.encode()


def grant(writer: Writer, client_name: str, credential_names: Sequence[str]) -> None:
    """Let a client read credentials: wrap their readable versions' data keys for it
    (see :meth:`vault.owner.admin.AdminVault.grant`).

    :raises AccessDenied: when a credential's permissions exceed the client's
        maximum scope (the refusal is audited).
    :raises Conflict: when the client is revoked or expired.
    :raises NotFound: for an unknown client or credential.
    :raises InvalidInput: for a name that is not UTF-8 text.
    """
    name: str | None = None
    try:
        with writer.write() as transaction:
            client = writer.client(transaction, client_name, for_update=True)
            if client.revoked_at is not None:
                raise Conflict(f'client "{client_name}" is revoked')
            if client.expires_at is not None and client.expires_at <= to_epoch(utc_now()):
                raise Conflict(f'client "{client_name}" has expired; add a new client')
            facts, _broken_at = writer.access_facts(transaction, credential_names)
            _check_not_revoked(client, facts)
            for name in credential_names:
                head = writer.head(transaction, name, for_update=True)
                _grant_one(
                    writer, transaction, client, head, facts.grant_standing(client.name, name)
                )
    except AccessDenied as exc:
        writer.record_failure("grant", str(exc), name)
        raise


def _check_not_revoked(client: EditableClient, facts: access_history.AccessFacts) -> None:
    """Refuse a client the signed audit log says was revoked, whatever its row says
    (a copy of its record from before the revocation verifies again).

    :raises IntegrityError: naming the client; nothing written.
    """
    seq = facts.revoked.get(client.name)
    if seq is not None:
        raise IntegrityError(
            f'damaged vault: client "{client.name}" was revoked (audit entry {seq}) but '
            "its record is not (a record put back?); run exvault verify"
        )


def _grant_one(
    writer: Writer,
    transaction: Transaction,
    client: EditableClient,
    head: EditableHead,
    standing: bool,
) -> None:
    """Wrap ``head``'s labelled versions for ``client`` and sign its grant.

    ``standing``: the signed audit log already shows this grant standing; otherwise
    a grant row found here (one put back after an ungrant) is signed and audited
    anew, so that the log backs the grant the owner is making now.

    :raises AccessDenied: when a version's permissions exceed the client's scope.
    :raises IntegrityError: when a row is missing or does not verify.
    """
    scope = split_list(client.max_scope)
    for stage in stages.STAGES:
        version = getattr(head, f"{stage}_version")
        if version is None:
            continue
        meta, row, _payload, root_wrap = writer.staged_version(transaction, head, stage)
        extra = beyond_scope(meta.permissions, scope)
        if extra:
            raise AccessDenied(
                f'cannot grant "{head.name}" to client "{client.name}": its permissions '
                f"({', '.join(extra)}) exceed the client's maximum scope "
                f"({client.max_scope.replace(',', ', ')})"
            )
        recipient = Recipient.client(client.id)
        if not writer.has_wrap(transaction, head, version, recipient):
            writer.insert(
                transaction,
                records.wrap_dek(
                    writer.unwrap(row, root_wrap),
                    writer.vault_id,
                    row,
                    recipient,
                    client.encryption_public,
                ),
            )
    granted = records.split_grantees(head)
    in_head = client.id in granted
    if not in_head:
        # The head's signed set is what the writer wraps new versions for.
        head.grantees = records.join_grantees((*granted, client.id))
        writer.sign_head(transaction, head)
    stored = _stored_grant(transaction, client.id, head.id)
    if stored is not None:
        # Trusted to make the grant a no-op only once it verifies.
        records.verify_grant(writer.verify_public, writer.vault_id, stored)
        if standing and in_head:
            return
    grant_row = records.signed_grant(
        writer.identity, writer.vault_id, client.id, head.id, to_epoch(utc_now())
    )
    if stored is not None:
        transaction.execute(queries.UPDATE_GRANT_SQL, grant_row._asdict())
    else:
        writer.insert(transaction, grant_row)
    writer.audit(transaction, "grant", head.name, detail=f"to client {client.name}")


def _stored_grant(transaction: Transaction, client_id: str, credential_id: str) -> GrantRow | None:
    """The stored grant of ``credential_id`` to ``client_id`` (not verified), if any."""
    found = transaction.execute(
        queries.GRANT_SQL, {"client_id": client_id, "credential_id": credential_id}
    )
    return GrantRow._make(found[0]) if found else None


def ungrant(writer: Writer, client_name: str, credential_names: Sequence[str]) -> None:
    """Take credentials back from a client: delete its grants and wraps for them.

    :raises NotFound: for an unknown client or credential, or one not granted.
    :raises InvalidInput: for a name that is not UTF-8 text.
    """
    with writer.write() as transaction:
        execute = transaction.execute
        client = writer.client(transaction, client_name, for_update=True)
        for name in credential_names:
            head = writer.head(transaction, name, for_update=True)
            granted = records.split_grantees(head)
            if client.id not in granted and _stored_grant(transaction, client.id, head.id) is None:
                raise NotFound(f'client "{client_name}" is not granted {quoted(name)}')
            if client.id in granted:
                head.grantees = records.join_grantees(set(granted) - {client.id})
                writer.sign_head(transaction, head)
            execute(queries.DELETE_GRANT_SQL, {"client_id": client.id, "credential_id": head.id})
            execute(
                queries.DELETE_WRAPS_OF_SQL,
                {"credential_id": head.id, "recipient": Recipient.client(client.id).column},
            )
            writer.audit(transaction, "ungrant", name, detail=f"from client {client_name}")
    writer.checkpoint()


def revoke_client(writer: Writer, name: str, audit_files: Sequence[Path]) -> list[str]:
    """Revoke a client: delete its grants and wraps, and mark every credential it
    could read as exposed (see :meth:`vault.owner.admin.AdminVault.revoke_client`);
    ``audit_files``: the vault's audit files, where a shared vault's clients sign
    their reads.

    Idempotent. :returns: the names of the credentials marked exposed, sorted.

    :raises NotFound: for an unknown client.
    :raises InvalidInput: for a name that is not UTF-8 text.
    """
    now = to_epoch(utc_now())
    with writer.write() as transaction:
        execute = transaction.execute
        client = writer.client(transaction, name, for_update=True)
        if client.revoked_at is not None:
            return []
        recipient = Recipient.client(client.id).column
        readable = {
            row[0]
            for sql, params in (
                (queries.WRAPPED_FOR_SQL, {"recipient": recipient}),
                (queries.GRANTED_TO_SQL, {"client_id": client.id}),
            )
            for row in execute(sql, params)
        }
        log = access_history.read_signed_log(
            transaction,
            writer.vault_id,
            writer.verify_public,
            client=(client.name, client.id, client.verify_public),
        )
        # Every entry that verifies counts, even past a break in the chain: here
        # more facts can only mark more, never hide a credential.
        signed = access_history.access_facts(log.entries).readable_by(client.name, client.id)
        _add_shared_reads(writer, signed, client, audit_files)
        exposed = []
        for head in _heads_readable(transaction, client.id, readable, signed):
            records.verify_head(writer.verify_public, writer.vault_id, head)
            # The head's signed set, like its rows, says the client held every version.
            held = head.id in readable or client.id in records.split_grantees(head)
            read = None if held else signed.get(head.name, set())
            if read is not None and not any(stages.stages_of(head, v) for v in read):
                # It read only versions since retired: the key it may keep is gone.
                continue
            head.exposed_at = now
            head.exposed_reason = f'readable by revoked client "{name}"'
            granted = set(records.split_grantees(head)) - {client.id}
            head.grantees = records.join_grantees(granted)
            writer.sign_head(transaction, head)
            exposed.append(head.name)
        execute(queries.DELETE_WRAPS_FOR_SQL, {"recipient": recipient})
        execute(queries.DELETE_GRANTS_TO_SQL, {"client_id": client.id})
        client.revoked_at = now
        writer.sign_client(transaction, client)
        writer.audit(
            transaction,
            "client-revoke",
            detail=f"client {name}; exposed: {', '.join(sorted(exposed)) or 'none'}",
        )
    writer.checkpoint()
    return sorted(exposed)


def _heads_readable(
    transaction: Transaction, client_id: str, ids: set[str], names: Iterable[str]
) -> list[EditableHead]:
    """The heads (not verified) of the credentials with id in ``ids``, named in
    ``names``, or whose grantee set holds ``client_id``; each once, in id order.

    One statement per id and name, as :meth:`Writer.grantees` reads its clients:
    plain SQL has no expanding parameter for a list.
    """
    execute = transaction.execute
    found = [
        *execute(queries.HEADS_GRANTING_SQL, {"pattern": f"%{client_id}%"}),
        *(row for i in ids for row in execute(queries.HEAD_SQL, {"id": i})),
        *(row for n in names for row in execute(queries.HEAD_NAMED_SQL, {"name": n})),
    ]
    heads = {row[0]: row for row in found}
    return [EditableHead(*heads[key]) for key in sorted(heads)]


def client_keys(writer: Writer, client: EditableClient) -> list[bytes]:
    """Every Ed25519 key ``client`` has signed with: its current one, then each one a
    rekey replaced (from the vault's signed ``rekey`` entries).

    :raises StoreError: when the database cannot be read.
    """
    with writer.read() as transaction:
        return [client.verify_public] + [
            replaced[client.id]
            for _seq, replaced in audit.rekey_history(
                transaction, writer.vault_id, writer.verify_public
            )
            if client.id in replaced
        ]


def _add_shared_reads(
    writer: Writer,
    signed: dict[str, set[int] | None],
    client: EditableClient,
    audit_files: Sequence[Path],
) -> None:
    """Add to ``signed`` (credential -> versions read, None for all) the reads
    ``client`` signed into the audit files of a shared vault, where its reads go.

    Verified with its key, or a key a rekey replaced (:func:`client_keys`: that
    chain's numbers cannot be placed against the vault's rekey entries). An audit
    file that cannot be read is passed over: ``doctor`` and ``audit verify`` report it.
    """
    keys = client_keys(writer, client)
    for path in audit_files:
        try:
            with (
                audit_file.opened(path) as store,
                store.read() as file_transaction,
                file_transaction.tolerant_text(),
            ):
                reads = [
                    AuditRow(*values)
                    for values in file_transaction.execute(
                        queries.AUDIT_READS_SIGNED_BY_SQL, {"signer": client.id}
                    )
                ]
        except VaultError:
            continue
        for rec in reads:
            if not isinstance(rec.credential, str) or not isinstance(rec.version, int):
                continue
            if audit.signed_by_any(writer.vault_id, rec, keys):
                versions = signed.setdefault(rec.credential, set())
                if versions is not None:
                    versions.add(rec.version)


def signed_access_facts(writer: Writer, credentials: Sequence[str]) -> access_history.AccessFacts:
    """What the signed audit log says, complete for ``credentials`` and for
    revocations, as the writer's grants check against it.

    :raises IntegrityError: when the audit chain is broken.
    :raises StoreError: when the database cannot be read.
    """
    with writer.read() as transaction:
        facts, broken_at = writer.access_facts(transaction, credentials)
    if broken_at is not None:
        raise IntegrityError(f"damaged vault: the audit log is broken at entry {broken_at}")
    return facts
