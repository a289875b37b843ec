"""Rekey: a new root identity for the vault, the cure for an old keyslot put back."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from vault.db import access_history, audit, keyslots, queries
from vault.db.inventory import load_header
from vault.db.transaction import Transaction
from vault.errors import Conflict, IntegrityError
from vault.format import aead, identities, passphrase_kdf, records, recovery, stages
from vault.format.audit_entry import new_entry
from vault.format.editable import EditableClient, EditableHead
from vault.format.identities import RootIdentity, RootKeys
from vault.format.kdf_params import KdfParams
from vault.format.keywrap import Recipient
from vault.format.model import to_epoch, utc_now
from vault.format.schema import ClientRow, GrantRow, HeadRow, PayloadRow, VersionRow, WrapRow
from vault.owner.passphrase import new_slot_params, root_slots, signed_header
from vault.owner.writer import AUDIT_TABLE, Writer, recipient_keys
from vault.runtime.token import ClientToken


@dataclass(frozen=True)
class Rekeyed:
    """What :meth:`vault.owner.admin.AdminVault.rekey` gives back, to show once."""

    recovery_key: str = field(repr=False)
    tokens: dict[str, str] = field(repr=False)
    """Each re-keyed client's new token, by client name."""
    kdf: KdfParams


def rekey(
    writer: Writer,
    new_passphrase: str,
    opened_kdf: KdfParams | None,
    *,
    recalibrate: bool = False,
    kdf: KdfParams | None = None,
    insecure_test_kdf: bool = False,
    progress: Callable[[int, int], None] | None = None,
) -> Rekeyed:
    """Give the vault a new root identity, in one transaction (see
    :meth:`vault.owner.admin.AdminVault.rekey`); the new passphrase slot's parameters
    are chosen by :func:`vault.owner.passphrase.new_slot_params`. Once committed,
    ``writer`` writes with the new identity. ``progress``, when given, is told
    ``(versions re-keyed, versions in all)`` after each version: the cryptography per
    version makes a large vault's rekey take minutes.

    :raises Conflict: inside a batch.
    :raises IntegrityError: when any row fails verification (nothing is re-signed).
    :raises InvalidInput: for an empty passphrase, or weak parameters.
    """
    if writer.in_batch:
        raise Conflict("a rekey cannot run inside a batch")
    passphrase_kdf.normalize_passphrase(new_passphrase)
    params = new_slot_params(opened_kdf, recalibrate, kdf, insecure_test_kdf)
    old, new = writer.identity, RootIdentity.generate()
    vault_id = writer.vault_id
    now = to_epoch(utc_now())
    recovery_key = recovery.new_recovery_key()
    tokens: dict[str, str] = {}
    with writer.read() as transaction:
        stored = load_header(transaction)
    new_header = signed_header(
        new,
        vault_id=stored.vault_id,
        format_version=stored.format_version,
        created_at=stored.created_at,
    )
    # Both KDFs (the passphrase's takes its calibrated time) before the write lock.
    slots = root_slots(
        new_header,
        new,
        new_passphrase,
        params,
        recovery_key,
        now,
        insecure_test_kdf=insecure_test_kdf,
    )
    with writer.write() as transaction:
        header = load_header(transaction)
        old_public = header.verify_public
        # The key this handle's unlock proved, and the header the slots were made for.
        if not aead.constant_time_equal(old_public, writer.verify_public) or (
            header.vault_id,
            header.format_version,
            header.created_at,
        ) != (new_header.vault_id, new_header.format_version, new_header.created_at):
            raise IntegrityError("damaged vault: the header changed during the rekey")
        execute = transaction.execute
        execute(queries.UPDATE_HEADER_SQL, new_header._asdict())
        old_client_keys: dict[str, tuple[str, bytes]] = {}
        client_keys: dict[str, bytes] = {}
        # A client record put back from before its revocation verifies: the signed
        # log's revocations decide, or the rekey would give it a fresh token.
        revoked = access_history.access_facts(
            access_history.read_signed_log(
                transaction, vault_id, old_public, credentials=()
            ).entries
        ).revoked
        for stored_client in execute(queries.CLIENTS_SQL, {}):
            client = EditableClient.of(ClientRow._make(stored_client))
            records.verify_client(old_public, vault_id, client)
            if client.revoked_at is None and client.name in revoked:
                raise IntegrityError(
                    f'damaged vault: client "{client.name}" is revoked in the signed audit '
                    "log but not in its record (a record put back?); run exvault verify"
                )
            if client.revoked_at is None:
                token = ClientToken.generate(
                    vault_id, identities.fingerprint(new.verify_public), client.id
                )
                old_client_keys[client.id] = (client.name, client.verify_public)
                client.encryption_public = token.encryption_public
                client.verify_public = token.verify_public
                client_keys[client.id] = token.encryption_public
                tokens[client.name] = token.encode()
            records.sign_client(new, vault_id, client)
            execute(queries.UPDATE_CLIENT_SQL, client.values())
        grants = [GrantRow._make(g) for g in execute(queries.ALL_GRANTS_SQL, {})]
        for grant in grants:
            records.verify_grant(old_public, vault_id, grant)
        _update_all(
            transaction,
            queries.UPDATE_GRANT_SQL,
            [
                records.signed_grant(
                    new, vault_id, g.client_id, g.credential_id, g.created_at
                )._asdict()
                for g in grants
            ],
        )
        _rekey_credentials(transaction, vault_id, old, new, old_public, client_keys, progress)
        keyslots.delete_slots(execute)
        keyslots.insert_slots(execute, slots)
        # One entry for the root key, then one per re-keyed client (an entry's detail
        # is cut to 500 characters), each naming the signing key it replaced: the
        # entries before them were signed with those (docs/format.md section 20.5).
        details = ["root keys replaced; old signing key " + old_public.hex()] + [
            f"new keys for client {name}; client {client_id} key {key.hex()}"
            for client_id, (name, key) in sorted(old_client_keys.items())
        ]
        last = audit.last_entry(transaction)
        for detail in details:
            entry = new_entry(
                vault_id,
                last,
                actor=audit.ADMIN,
                action="rekey",
                detail=detail,
                signer=(audit.ROOT_SIGNER, new.sign),
            )
            writer.insert_rows(transaction, [(AUDIT_TABLE, entry.values())])
            last = (entry.seq, entry.entry_hash)
    # Committed: from now on the writer is the new identity's.
    writer.replace_identity(new)
    writer.checkpoint()
    return Rekeyed(recovery.format_recovery_key(recovery_key), tokens, params)


def _rekey_credentials(
    transaction: Transaction,
    vault_id: bytes,
    old: RootKeys,
    new: RootKeys,
    old_public: bytes,
    client_keys: Mapping[str, bytes],
    progress: Callable[[int, int], None] | None = None,
) -> None:
    """Verify with the old key and re-sign with the new one every head and version;
    re-wrap the data keys of versions that still have a payload for the new root key
    and the re-keyed clients (``client_keys``); ``progress`` as for :func:`rekey`.

    Whole tables at a time, and one executemany per table: a statement per row
    would make a rekey of 100,000 credentials take far longer.

    :raises IntegrityError: when a row fails verification.
    """
    execute = transaction.execute
    heads = {
        head.id: head
        for head in (EditableHead.of(HeadRow._make(r)) for r in execute(queries.ALL_HEADS_SQL, {}))
    }
    payloads = {
        (p.credential_id, p.version): p
        for p in (PayloadRow._make(r) for r in execute(queries.ALL_PAYLOADS_SQL, {}))
    }
    wraps: dict[tuple[str, int], list[WrapRow]] = {}
    for wrap in (WrapRow._make(r) for r in execute(queries.ALL_WRAPS_SQL, {})):
        wraps.setdefault((wrap.credential_id, wrap.version), []).append(wrap)
    for head in heads.values():
        records.verify_head(old_public, vault_id, head)
    version_updates: list[dict[str, Any]] = []
    wrap_updates: list[dict[str, Any]] = []
    versions = [VersionRow._make(r) for r in execute(queries.ALL_VERSIONS_SQL, {})]
    for done, row in enumerate(versions, 1):
        records.verify_version(old_public, vault_id, row)
        head_row = heads.get(row.credential_id)
        if head_row is None:
            raise IntegrityError(
                f"damaged vault: a version of credential {row.credential_id} has no head"
            )
        labels = stages.stages_of(head_row, row.version)
        for stage in labels:  # the very row the head's stage names
            records.check_staged_version(old_public, vault_id, head_row, stage, row)
        records.check_metadata(row, head_row)
        key = (row.credential_id, row.version)
        payload = payloads.get(key)
        if payload is not None:
            version_wraps = {Recipient.stored(w.recipient): w for w in wraps.get(key, [])}
            root_wrap = version_wraps.get(Recipient.root())
            if root_wrap is None:
                raise IntegrityError(
                    f'damaged vault: version {row.version} of "{row.name}" is incomplete'
                )
            dek = records.unwrap_root_dek(vault_id, row, root_wrap, old)
            fields = records.open_payload(vault_id, row, payload, dek)
            # Keyed by the root key: recomputed, so that reuse checks still match.
            api_key = fields.get("api_key", "")
            row = row._replace(api_key_fingerprint=new.keyed_fingerprint("api_key", api_key))
            granted = set(records.split_grantees(head_row))
            # A wrap row the head's signed grantee set does not back is not re-wrapped,
            # nor one of a revoked client (revocation deleted them): it has no new key.
            keys = recipient_keys(
                new.encryption_public,
                ((c, k) for c, k in client_keys.items() if c in granted),
            )
            for recipient in version_wraps:
                public = keys.get(recipient)
                if public is None:
                    continue
                fresh = records.wrap_dek(dek, vault_id, row, recipient, public)
                wrap_updates.append(
                    {
                        "credential_id": row.credential_id,
                        "version": row.version,
                        "recipient": recipient.column,
                        "ephemeral_public": fresh.ephemeral_public,
                        "body": fresh.body,
                    }
                )
        message = records.version_message(vault_id, row)
        # A new fingerprint makes a new signed message: the head's stages follow it.
        for stage in labels:
            setattr(head_row, f"{stage}_digest", records.version_digest(message))
        version_updates.append(
            {
                "credential_id": row.credential_id,
                "version": row.version,
                "api_key_fingerprint": row.api_key_fingerprint,
                "signature": new.sign(message),
            }
        )
        if progress is not None:
            progress(done, len(versions))
    for head in heads.values():
        records.sign_head(new, vault_id, head)
    _update_all(transaction, queries.UPDATE_HEAD_SQL, [head.values() for head in heads.values()])
    _update_all(transaction, queries.REKEY_VERSION_SQL, version_updates)
    _update_all(transaction, queries.REKEY_WRAP_SQL, wrap_updates)


def _update_all(transaction: Transaction, sql: str, rows: list[dict[str, Any]]) -> None:
    """One executemany of the UPDATE ``sql`` for ``rows`` (none for no rows: an empty
    parameter list would run it once without parameters through SQLAlchemy)."""
    if rows:
        transaction.execute_many(sql, rows)
