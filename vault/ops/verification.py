"""``exvault verify``: authenticate everything in the vault with the passphrase.

Where reads check what they touch, this walks every row: the header, the keyslots,
every credential head, every version's signature and metadata, every readable
version's payload (decrypted with the root key), every wrap's presence for the
clients granted it, every client and grant signature, the audit chain, the type of
every column's value, the database's own integrity, and its schema against the one
exvault creates. Each problem is reported by credential; nothing stops at the first
one.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TypeVar

from sqlalchemy import select, text
from sqlalchemy.orm import Session

from vault.db import access_history, audit, audit_file, keyslots, queries
from vault.db.schema_check import schema_differences
from vault.db.store import StoreError, orm_session
from vault.db.tables import (
    AuditRecord,
    Base,
    ClientRecord,
    CredentialRecord,
    GrantRecord,
    KeyslotRecord,
    PayloadRecord,
    VersionRecord,
    WrapRecord,
)
from vault.db.transaction import Transaction
from vault.errors import IntegrityError, VaultError
from vault.format import journal, observation, records, stages
from vault.format.keywrap import Recipient
from vault.format.policy import Policy
from vault.format.schema import JournalRow, ObservationRow
from vault.owner.admin import AdminVault


@dataclass(frozen=True)
class Problem:
    """One thing ``verify`` found wrong."""

    credential: str | None
    message: str


@dataclass
class VerifyReport:
    """What ``verify`` checked and found."""

    credentials: int = 0
    versions: int = 0
    decrypted: int = 0
    wraps: int = 0
    clients: int = 0
    audit_entries: int = 0
    problems: list[Problem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when nothing was found wrong."""
        return not self.problems


ProgressCallback = Callable[[int, int], None]
"""Told ``(credentials verified so far, credentials in all)`` as verification goes, for
a progress bar: decrypting every version of a large vault takes a while."""


def verify(admin: AdminVault, progress: ProgressCallback | None = None) -> VerifyReport:
    """Check every row of the vault and its schema; never raises for a problem found,
    reports it. ``progress``, when given, is called after each credential.

    :raises VaultError: only when the database cannot be read at all.
    """
    report = VerifyReport()
    with admin.store.read() as transaction:
        _verify_database(admin.store.is_sqlite, orm_session(transaction), report)
    try:
        with admin.store.read() as transaction:
            _verify_rows(admin, transaction, report, progress)
    except StoreError as exc:
        if report.ok:
            raise
        # A table or a column is missing: the schema problems above say which.
        report.problems.append(Problem(None, f"the rows cannot be read: {exc}"))
    return report


def _verify_database(is_sqlite: bool, session: Session, report: VerifyReport) -> None:
    problem = report.problems.append
    if is_sqlite:
        for (line,) in session.execute(text("PRAGMA integrity_check")):
            if line != "ok":
                problem(Problem(None, f"database integrity: {line}"))
        for broken in session.execute(text("PRAGMA foreign_key_check")):
            problem(Problem(None, f"database foreign key broken in table {broken[0]}"))
    for difference in schema_differences(session.connection()):
        problem(Problem(None, f"schema: {difference}"))


_R = TypeVar("_R", bound=Base)


def _well_typed(rows: Iterable[_R], record: type[_R], report: VerifyReport) -> list[_R]:
    """The rows whose columns all hold their declared types; each other one is a problem
    (and is left out of the checks that follow, which could not read it)."""
    out = []
    for row in rows:
        damage = records.type_damage(row, record.__tablename__)
        if damage is None:
            out.append(row)
        else:
            report.problems.append(Problem(None, f"wrong type: {damage}"))
    return out


def _verify_rows(
    admin: AdminVault,
    transaction: Transaction,
    report: VerifyReport,
    progress: ProgressCallback | None = None,
) -> None:
    session = orm_session(transaction)
    vault_id, verify_public = admin.vault_id, admin.verify_public
    problem = report.problems.append
    slots = list(session.scalars(select(KeyslotRecord)))
    # The recovery slot too, which opens only at recover.
    for slot in _well_typed(slots, KeyslotRecord, report):
        try:
            keyslots.verify_slot(verify_public, vault_id, slot, slot.signature)
        except IntegrityError as exc:
            reason = str(exc).removeprefix("damaged vault: ")
            problem(Problem(None, f"{slot.kind} keyslot {slot.id}: {reason}"))
    kinds = [s.kind for s in slots]
    if kinds.count("passphrase") != 1:
        problem(
            Problem(None, f"expected one passphrase keyslot, found {kinds.count('passphrase')}")
        )
    if "recovery" not in kinds:
        problem(Problem(None, "no recovery keyslot (the recovery key cannot open this vault)"))

    clients: dict[str, ClientRecord] = {}
    all_clients = list(session.scalars(select(ClientRecord)))
    report.clients = len(all_clients)
    for client in _well_typed(all_clients, ClientRecord, report):
        try:
            records.verify_client(verify_public, vault_id, client)
            clients[client.id] = client
        except IntegrityError:
            problem(Problem(None, f'client "{client.name}": record forged or edited'))
    grant_rows: dict[str, set[str]] = defaultdict(set)
    grants: list[GrantRecord] = []
    for grant in _well_typed(session.scalars(select(GrantRecord)), GrantRecord, report):
        try:
            records.verify_grant(verify_public, vault_id, grant)
        except IntegrityError:
            problem(Problem(None, f"grant of client {grant.client_id}: forged or edited"))
            continue
        grants.append(grant)
        grant_rows[grant.credential_id].add(grant.client_id)

    versions: dict[str, list[VersionRecord]] = defaultdict(list)
    for row in _well_typed(session.scalars(select(VersionRecord)), VersionRecord, report):
        versions[row.credential_id].append(row)
    payloads = {
        (p.credential_id, p.version): p
        for p in _well_typed(session.scalars(select(PayloadRecord)), PayloadRecord, report)
    }
    wraps: dict[tuple[str, int], dict[str, WrapRecord]] = defaultdict(dict)
    all_wraps = list(session.scalars(select(WrapRecord)))
    report.wraps = len(all_wraps)
    for w in _well_typed(all_wraps, WrapRecord, report):
        wraps[(w.credential_id, w.version)][w.recipient] = w

    heads = list(session.scalars(select(CredentialRecord)))
    report.credentials = len(heads)
    for orphan in set(versions) - {h.id for h in heads}:
        problem(Problem(None, f"versions of a deleted credential remain ({orphan})"))
    well_typed = sorted(_well_typed(heads, CredentialRecord, report), key=lambda h: h.name)
    for done, head in enumerate(well_typed, start=1):
        _verify_credential(
            admin, head, versions[head.id], payloads, wraps, clients, grant_rows[head.id], report
        )
        if progress is not None:
            progress(done, len(well_typed))

    report.audit_entries = audit.count(transaction)
    chain = audit.verify_chain(
        transaction,
        vault_id,
        verify_public,
        {c.id: (c.name, c.verify_public) for c in clients.values()},
    )
    report.problems.extend(Problem(None, f"audit log: {p}") for p in chain.problems)
    vault_rekeys = audit.rekey_history(transaction, vault_id, verify_public)
    for path in admin.audit_files():  # the bots' entries of a shared vault
        file_chain = audit_file.verify(
            path,
            vault_id,
            verify_public,
            {c.id: (c.name, c.verify_public) for c in clients.values()},
            vault_rekeys,
        )
        report.audit_entries += file_chain.entries
        report.problems.extend(Problem(None, f"audit log: {p}") for p in file_chain.problems)
    # A copy of a revoked client's rows put back (revoked_at cleared, its grants and
    # wraps restored) verifies row by row; the signed revocation in the log does not
    # go away with it (unless the log's tail is cut too, see audit verify's witness).
    by_name = {c.name: c for c in clients.values()}
    _verify_grants_signed(admin, transaction, heads, clients, grants, report)
    _verify_observations(admin, transaction, heads, clients, vault_rekeys, report)
    _verify_journal(admin, transaction, report)
    for seq, name in chain.revocations:
        restored = by_name.get(name)
        if restored is not None and restored.revoked_at is None:
            problem(
                Problem(
                    None,
                    f'client "{name}" was revoked (audit entry {seq}) but its record is not: '
                    "rows put back from an older copy?",
                )
            )


def _verify_journal(admin: AdminVault, transaction: Transaction, report: VerifyReport) -> None:
    # The rotation journal's entries are signed like every record; an entry left
    # unsettled is not a problem of the vault (the next automated run settles it).
    for values in transaction.execute(queries.JOURNAL_SQL):
        row = JournalRow(*values)
        try:
            journal.verify(admin.verify_public, admin.vault_id, row)
        except IntegrityError:
            report.problems.append(
                Problem(row.credential, f"rotation journal entry {row.id} does not verify")
            )


def _verify_observations(
    admin: AdminVault,
    transaction: Transaction,
    heads: list[CredentialRecord],
    clients: dict[str, ClientRecord],
    rekeys: list[audit.Rekey],
    report: VerifyReport,
) -> None:
    """Every probe observation is carried by a ``probe`` entry of the (verified) audit
    chain and signed by that entry's signer; every ``probe`` entry about a credential
    that still exists names an observation that is there."""
    vault_id = admin.vault_id
    problem = report.problems.append
    entries: dict[bytes, AuditRecord] = {}
    session = orm_session(transaction)
    with transaction.tolerant_text():
        for probe in session.scalars(
            select(AuditRecord).where(AuditRecord.action == observation.AUDIT_ACTION)
        ):
            digest = observation.digest_of_detail(probe.detail)
            if digest is not None and probe.signer is not None:
                entries[digest] = probe
        rows = [ObservationRow(*v) for v in transaction.execute(queries.OBSERVATIONS_SQL)]
    present: set[bytes] = set()
    for row in rows:
        label = f"probe observation {row.id}"
        damage = records.type_damage(row, "probe_observations")
        if damage is not None:
            problem(Problem(None, f"{label}: wrong type: {damage}"))
            continue
        digest = observation.digest(vault_id, row)
        entry = entries.get(digest)
        if entry is None or entry.signer != row.signer:
            problem(Problem(row.name, f"{label}: no probe entry of the audit log carries it"))
            continue
        client = clients.get(row.signer)
        current = admin.verify_public if row.signer == audit.ROOT_SIGNER else None
        if client is not None:
            current = client.verify_public
        key = audit.key_before_rekey(rekeys, entry.seq, row.signer, current)
        try:
            if key is None:
                raise IntegrityError()
            observation.verify(key, vault_id, row)
        except IntegrityError:
            problem(Problem(row.name, f"{label}: forged or edited"))
            continue
        present.add(digest)
    created = {h.name: h.created_at for h in heads}
    for digest, probe in entries.items():
        name = probe.credential or ""
        if name in created and probe.at >= created[name] and digest not in present:
            problem(
                Problem(name, f"the observation of probe entry {probe.seq} is missing or damaged")
            )


def _verify_grants_signed(
    admin: AdminVault,
    transaction: Transaction,
    heads: list[CredentialRecord],
    clients: dict[str, ClientRecord],
    grants: list[GrantRecord],
    report: VerifyReport,
) -> None:
    """Compare the grant rows with what the signed audit log says (see
    :mod:`vault.db.access_history`): a grant row the log does not back (put back after an
    ungrant or a revocation), a signed grant whose row vanished without a signed
    ungrant (deleted, by the client itself perhaps, to escape the exposure mark at
    its revocation), and a version number created twice."""
    log = access_history.read_signed_log(transaction, admin.vault_id, admin.verify_public)
    facts = access_history.access_facts(log.entries)
    problem = report.problems.append
    names = {h.id: h.name for h in heads if isinstance(h.name, str)}
    rows = set()
    for grant in grants:
        client, name = clients.get(grant.client_id), names.get(grant.credential_id)
        if client is None or name is None:
            continue
        rows.add((client.name, name))
        if client.revoked_at is None and not facts.grant_standing(client.name, name):
            problem(
                Problem(
                    name,
                    f'granted to client "{client.name}" but the signed audit log shows no '
                    "standing grant (a grant row put back after an ungrant or a revocation?)",
                )
            )
    # A revocation deletes the grant rows; a revoked client put back is reported apart.
    live = {c.name for c in clients.values() if c.revoked_at is None} - set(facts.revoked)
    for name in sorted(set(names.values()) & set(facts.granted)):
        for client_name, seq in sorted(facts.granted[name].items()):
            if client_name in live and (client_name, name) not in rows:
                problem(
                    Problem(
                        name,
                        f'granted to client "{client_name}" (audit entry {seq}) with no signed '
                        "ungrant since, but its grant row is gone (deleted?)",
                    )
                )
    for repeated in facts.repeated_versions:
        problem(
            Problem(
                repeated.credential,
                f"the audit log shows version {repeated.version} created twice (entries "
                f"{repeated.first_seq} and {repeated.second_seq}) with no removal between: "
                "version rows deleted or put back?",
            )
        )


def _verify_credential(
    admin: AdminVault,
    head: CredentialRecord,
    rows: list[VersionRecord],
    payloads: dict[tuple[str, int], PayloadRecord],
    wraps: dict[tuple[str, int], dict[str, WrapRecord]],
    clients: dict[str, ClientRecord],
    grant_rows: set[str],
    report: VerifyReport,
) -> None:
    vault_id, verify_public = admin.vault_id, admin.verify_public
    name = head.name

    def problem(message: str) -> None:
        report.problems.append(Problem(name, message))

    try:
        records.verify_head(verify_public, vault_id, head)
    except IntegrityError:
        problem("head (name, stages, policy, exposure or grantees) forged or edited")
    # The head's signed set says who is granted; a grants row alone (put back after an
    # ungrant) grants nothing, and a member without its row is damage too.
    granted = set(records.split_grantees(head))
    for client_id in sorted(grant_rows - granted):
        problem(f"a grants row names client {client_id}, which the head does not grant it")
    for client_id in sorted(granted - grant_rows):
        problem(f"the head grants client {client_id}, which has no grants row")
    grantees = {c for c in granted if c in clients and clients[c].revoked_at is None}
    try:
        Policy.from_json(head.policy)
    except IntegrityError:
        problem("policy is malformed")
    by_version = {r.version: r for r in rows}
    labelled = {v for v in (head.current_version, head.pending_version, head.previous_version) if v}
    if head.current_version is None:
        problem("has no current version")
    for version in sorted(labelled - set(by_version)):
        problem(f"version {version} is labelled but missing")
    for row in sorted(rows, key=lambda r: r.version):
        report.versions += 1
        label = f"version {row.version}"
        if row.version > head.version_counter:
            problem(f"{label} is beyond the head's version counter ({head.version_counter})")
        verified: set[bytes] = set()  # one Ed25519 verification of the row, not two
        try:
            records.verify_version(verify_public, vault_id, row, verified=verified)
            records.check_metadata(row, head)
        except IntegrityError:
            problem(f"{label}: metadata or signature forged or edited")
            continue
        try:
            for stage in stages.stages_of(head, row.version):
                records.check_staged_version(
                    verify_public, vault_id, head, stage, row, verified=verified
                )
        except IntegrityError:
            problem(f"{label} is not the version the head labels (a row put back?)")
            continue
        key = (head.id, row.version)
        version_wraps = wraps.get(key, {})
        if row.version not in labelled:
            if key in payloads or version_wraps:
                problem(f"{label} is retired but still has ciphertext or wraps")
            continue
        payload = payloads.get(key)
        root = version_wraps.get(Recipient.root().column)
        if payload is None or root is None:
            problem(f"{label}: ciphertext or root wrap missing")
            continue
        try:
            admin.writer.decrypt(row, root, payload)
            report.decrypted += 1
        except VaultError:
            problem(f"{label}: ciphertext or wrapped key fails authentication")
        for client_id in sorted(grantees - set(version_wraps)):
            problem(f"{label}: a granted client ({client_id}) has no wrap and cannot read it")
        for recipient in sorted(set(version_wraps) - grantees - {Recipient.root().column}):
            problem(f"{label}: a wrap exists for a client not granted it ({recipient})")
