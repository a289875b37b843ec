"""The keyless view of a vault: metadata that ``list``, ``show`` and ``check`` read.

Metadata is stored in clear (SECURITY.md section 2) so that these commands run from
cron without any key. Single-record reads (``describe``, ``history``) verify the
Ed25519 signatures against the public key in the vault header; the bulk listing
does not, so that 100,000 credentials list in about a second. ``exvault verify``
authenticates everything with the passphrase.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple, TypeAlias, TypeVar

from vault.db import audit, audit_file, backends, keyslots, queries
from vault.db.transaction import POSTGRESQL, Store, Transaction
from vault.errors import IntegrityError, NotFound, quoted
from vault.format import identities, records, stages
from vault.format.access import ClientInfo
from vault.format.credential_info import CredentialInfo, VersionInfo
from vault.format.editable import EditableHead
from vault.format.kdf_params import KdfParams
from vault.format.model import LIVE, from_epoch, lookup_name, split_list
from vault.format.schema import ClientRow, HeaderRow, VersionRow

if TYPE_CHECKING:
    # Annotations only: the owner's path on a SQLite file loads no SQLAlchemy here.

    from sqlalchemy.engine import URL

    from vault.db.tables import CredentialRecord, VersionRecord
    from vault.format.records import Header
    from vault.format.schema import HeadRow

Where: TypeAlias = "str | os.PathLike[str] | URL | None"
_I = TypeVar("_I", bound="Inventory")


# A named tuple, not a dataclass: building a dataclass at import slows every command's start.
class VaultStatus(NamedTuple):
    """Public facts about a vault: what ``exvault info`` prints."""

    location: str
    vault_id: str
    fingerprint: str
    format_version: int
    created_at: datetime
    kdf: KdfParams
    credentials: int
    kdf_authenticated: bool = False
    """Whether ``kdf`` is known to be the owner's: only when the passphrase slot has
    opened (its AD and signature cover them); a keyless read takes them as stored."""


def load_header(transaction: Transaction) -> HeaderRow:
    """The vault header, its format version checked and self-signature verified.

    :raises IntegrityError: when it is missing or damaged.
    :raises UnsupportedFormat: for another format version.
    """
    found = transaction.execute(queries.HEADER_SQL, {})
    return records.check_header(HeaderRow._make(found[0]) if found else None)


def open_store(where: Where, *, owner: bool = False) -> tuple[Store, HeaderRow]:
    """Open the store at ``where`` (as its ``owner``: any older schema) and read its header.

    :raises VaultUnavailable: when there is no vault there.
    :raises IntegrityError: when the header is damaged.
    """
    store = backends.open_store(where, owner=owner)
    try:
        with store.read() as transaction:
            header = load_header(transaction)
    except BaseException:
        store.dispose()
        raise
    return store, header


def _parse_policy(text: str | None, name: str) -> dict[str, Any]:
    """A stored policy text as a dict (what is not a JSON object counts as none).

    :raises IntegrityError: when it is not JSON.
    """
    try:
        parsed = json.loads(text or "{}")
    except ValueError:
        raise IntegrityError(f'damaged vault: the policy of "{name}" is not JSON') from None
    return parsed if isinstance(parsed, dict) else {}


def _time(seconds: int | None) -> datetime | None:
    return from_epoch(seconds) if seconds else None


def info_from_columns(
    head: Sequence[Any], version: Sequence[Any], policies: dict[str, dict[str, Any]]
) -> CredentialInfo:
    """A :class:`CredentialInfo` from the values of :data:`vault.db.queries.LISTED_HEAD`
    and :data:`vault.db.queries.LISTED_VERSION`.

    ``policies`` caches parsed policy texts (most credentials share one).

    :raises IntegrityError: when a column does not parse.
    """
    (
        cid,
        name,
        created,
        updated,
        pending,
        pending_since,
        previous,
        previous_until,
        policy_text,
        exposed_at,
        exposed_reason,
    ) = head
    (
        version_no,
        v_name,
        exchange,
        permissions,
        ips,
        issued_on,
        expires_on,
        endpoint,
        fingerprint,
    ) = version
    policy = policies.get(policy_text)
    if policy is None:
        policy = policies[policy_text] = _parse_policy(policy_text, name)
    return CredentialInfo(
        id=cid,
        metadata=records.metadata_from_columns(
            v_name, exchange, permissions, ips, issued_on, expires_on, endpoint
        ),
        version=version_no,
        created_at=from_epoch(created),
        updated_at=from_epoch(updated),
        pending_version=pending,
        pending_since=_time(pending_since),
        previous_version=previous,
        previous_until=_time(previous_until),
        policy=policy,
        exposed_at=_time(exposed_at),
        exposed_reason=exposed_reason,
        api_key_fingerprint=fingerprint,
    )


class ListedCredential(NamedTuple):
    """One credential as ``exvault list`` shows it: its current version's metadata and
    stage numbers (no secret; signatures not checked)."""

    name: str
    exchange: str
    permissions: tuple[str, ...]
    ips: tuple[str, ...]
    issued_on: date
    expires_on: date | None
    version: int
    pending_version: int | None
    previous_version: int | None
    created_at: datetime
    updated_at: datetime
    exposed_at: datetime | None
    endpoint: str = LIVE

    @classmethod
    def of(cls, info: CredentialInfo) -> ListedCredential:
        """The listed fields of a :class:`CredentialInfo`."""
        meta = info.metadata
        return cls(
            meta.name,
            meta.exchange,
            meta.permissions,
            meta.ips,
            meta.issued_on,
            meta.expires_on,
            info.version,
            info.pending_version,
            info.previous_version,
            info.created_at,
            info.updated_at,
            info.exposed_at,
            meta.endpoint,
        )


def _lost_version(name: str) -> IntegrityError:
    return IntegrityError(f'damaged vault: credential "{name}" has lost its current version')


class ParsedOnce(dict[Any, Any]):
    """``parse(text)`` by stored text, each distinct one parsed once: the bulk reads'
    dates, times, lists and policies repeat across credentials (a vault imported in
    one go shares a few of each)."""

    def __init__(self, parse: Callable[[Any], Any]) -> None:
        super().__init__()
        self._parse = parse

    def __missing__(self, key: Any) -> Any:
        value = self[key] = self._parse(key)
        return value


def info_from_rows(
    head: CredentialRecord | HeadRow | EditableHead, row: VersionRecord | VersionRow
) -> CredentialInfo:
    """A :class:`CredentialInfo` from a head and its current version row (not verified here).

    :raises IntegrityError: when a column does not parse.
    """
    return info_from_columns(
        [getattr(head, name) for name in queries.LISTED_HEAD],
        [getattr(row, name) for name in queries.LISTED_VERSION],
        {},
    )


def row_lock(transaction: Transaction, *, for_update: bool) -> str:
    """What to append to a SELECT of one head or client to lock its row until the
    transaction ends: :data:`vault.db.queries.FOR_UPDATE` on PostgreSQL with
    ``for_update`` (two hosts rotating at once queue there), else nothing (SQLite's
    BEGIN IMMEDIATE already serializes writers, and its SQL has no FOR UPDATE)."""
    if for_update and transaction.backend == POSTGRESQL:
        return queries.FOR_UPDATE
    return ""


def verified_head(
    transaction: Transaction,
    vault_id: bytes,
    verify_public: bytes,
    name: str,
    *,
    for_update: bool = False,
) -> EditableHead:
    """The head of credential ``name``, its signature and name verified, as the owner
    changes it (row-locked on PostgreSQL with ``for_update``: :func:`row_lock`).

    :raises NotFound: when there is no such credential.
    :raises InvalidInput: for a name that is not UTF-8 text.
    :raises IntegrityError: when the head does not verify.
    """
    found = transaction.execute(
        queries.HEAD_NAMED_SQL + row_lock(transaction, for_update=for_update),
        {"name": lookup_name(name)},
    )
    if not found:
        raise NotFound(f"no credential named {quoted(name)}; see: exvault list")
    head = EditableHead(*found[0])
    records.verify_head(verify_public, vault_id, head)
    records.check_head_name(head, name)
    return head


class Inventory:
    """A vault opened without any key: metadata only.

    :meth:`open` it, use it as a context manager or call :meth:`close`.
    """

    def __init__(self, store: Store, header: HeaderRow | Header) -> None:
        self._store = store
        self._vault_id = header.vault_id
        self._verify_public = header.verify_public

    @classmethod
    def open(cls, where: Where = None) -> Inventory:
        """Open the vault at ``where`` (path or URL; default: env or data dir).

        :raises VaultUnavailable: when there is no vault there.
        :raises IntegrityError: when the header is damaged.
        """
        store, header = open_store(where)
        return cls(store, header)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self._store.location!r})"

    def close(self) -> None:
        """Release the database connections."""
        self._store.dispose()

    def __enter__(self: _I) -> _I:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def store(self) -> Store:
        """The underlying store (for the reliability tools)."""
        return self._store

    @property
    def vault_id(self) -> bytes:
        """The vault's random 16-byte id."""
        return self._vault_id

    @property
    def verify_public(self) -> bytes:
        """The vault's Ed25519 public key, from its self-signed header."""
        return self._verify_public

    @property
    def fingerprint(self) -> str:
        """Human form of the vault signing key's fingerprint."""
        return identities.format_fingerprint(identities.fingerprint(self._verify_public))

    @contextmanager
    def _reading(self) -> Iterator[Transaction]:
        """A read transaction (:class:`AdminVault` reads inside its batch instead)."""
        with self._store.read() as transaction:
            yield transaction

    def _head(
        self, transaction: Transaction, name: str, *, for_update: bool = False
    ) -> EditableHead:
        return verified_head(
            transaction, self._vault_id, self._verify_public, name, for_update=for_update
        )

    def names(self) -> list[str]:
        """Every credential name, sorted."""
        with self._reading() as transaction:
            return [name for (name,) in transaction.execute(queries.SORTED_NAMES_SQL, {})]

    def iter_credentials(self) -> Iterator[CredentialInfo]:
        """Every credential's current metadata, sorted by name (signatures not checked)."""
        split = len(queries.LISTED_HEAD)
        policies: dict[str, dict[str, Any]] = {}
        with self._reading() as transaction:
            for values in transaction.iterate(queries.CREDENTIALS_METADATA_SQL):
                if values[split] is None:
                    raise _lost_version(values[1])
                yield info_from_columns(values[:split], values[split:], policies)

    def listing(self) -> Iterator[ListedCredential]:
        """What ``exvault list`` shows of every credential, sorted by name (signatures
        not checked).

        The fast form of :meth:`iter_credentials`, for 100,000 credentials: fewer
        columns, the driver's plain rows, and each distinct text parsed once.

        :raises IntegrityError: when a credential has lost its current version, or a
            date or policy column does not parse.
        """
        dates = ParsedOnce(records.stored_date)
        times = ParsedOnce(from_epoch)
        lists = ParsedOnce(split_list)
        policies: dict[str, dict[str, Any]] = {}
        with self._reading() as transaction:
            for (
                head_name,
                policy,
                pending,
                previous,
                created,
                updated,
                exposed,
                version,
                name,
                exchange,
                permissions,
                ips,
                issued_on,
                expires_on,
                endpoint,
            ) in transaction.iterate(queries.LISTING_SQL):
                if version is None:
                    raise _lost_version(head_name)
                if policy not in policies:
                    policies[policy] = _parse_policy(policy, head_name)
                yield ListedCredential(
                    name,
                    exchange,
                    lists[permissions],
                    lists[ips],
                    dates[issued_on],
                    dates[expires_on] if expires_on is not None else None,
                    version,
                    pending,
                    previous,
                    times[created],
                    times[updated],
                    times[exposed] if exposed else None,
                    LIVE if endpoint is None else endpoint,
                )

    def credentials(self) -> list[CredentialInfo]:
        """Every credential's current metadata, sorted by name (signatures not checked)."""
        return list(self.iter_credentials())

    def describe(self, name: str) -> CredentialInfo:
        """Metadata of a credential's current version, signatures verified.

        :raises NotFound: when there is no such credential.
        :raises InvalidInput: for a name that is not UTF-8 text.
        :raises IntegrityError: when a signature does not verify.
        """
        with self._reading() as transaction:
            head = self._head(transaction, name)
            found = (
                transaction.execute(
                    queries.VERSION_OF_SQL, {"id": head.id, "version": head.current_version}
                )
                if head.current_version is not None
                else []
            )
            if not found:
                raise IntegrityError(f'damaged vault: "{name}" has no current version')
            row = VersionRow._make(found[0])
            records.check_staged_version(self._verify_public, self._vault_id, head, "current", row)
            return info_from_rows(head, row)

    def history(self, name: str) -> list[VersionInfo]:
        """Every version of a credential, newest first, with dates and stage labels.

        :raises NotFound: when there is no such credential.
        :raises InvalidInput: for a name that is not UTF-8 text.
        :raises IntegrityError: when a signature does not verify.
        """
        with self._reading() as transaction:
            head = self._head(transaction, name)
            execute = transaction.execute
            rows = map(VersionRow._make, execute(queries.VERSIONS_OF_SQL, {"id": head.id}))
            readable = {v for (v,) in execute(queries.READABLE_VERSIONS_SQL, {"id": head.id})}
            out = []
            verified: set[bytes] = set()  # one Ed25519 verification per row
            for row in rows:
                records.verify_version(self._verify_public, self._vault_id, row, verified=verified)
                labels = stages.stages_of(head, row.version)
                for stage in labels:  # a labelled row must be the very one the head names
                    records.check_staged_version(
                        self._verify_public, self._vault_id, head, stage, row, verified=verified
                    )
                out.append(
                    VersionInfo(
                        version=row.version,
                        created_at=from_epoch(row.created_at),
                        stages=labels,
                        metadata=records.check_metadata(row, head),
                        readable=row.version in readable,
                    )
                )
            return out

    # ---------------------------------------------------------------- clients

    def _clients(self, transaction: Transaction) -> list[ClientRow]:
        """Every client, by name, its signature verified.

        :raises IntegrityError: when a client record was forged or edited.
        """
        clients = list(map(ClientRow._make, transaction.execute(queries.CLIENTS_SQL, {})))
        for client in clients:
            records.verify_client(self._verify_public, self._vault_id, client)
        return clients

    def _client_info(self, transaction: Transaction, client: ClientRow) -> ClientInfo:
        # ``client`` verified by the caller.
        granted = [
            name for (name,) in transaction.execute(queries.GRANTED_NAMES_SQL, {"id": client.id})
        ]
        return ClientInfo(
            id=client.id,
            name=client.name,
            created_at=from_epoch(client.created_at),
            expires_at=from_epoch(client.expires_at) if client.expires_at else None,
            max_scope=split_list(client.max_scope),
            revoked_at=from_epoch(client.revoked_at) if client.revoked_at else None,
            grants=tuple(granted),
        )

    def clients(self) -> list[ClientInfo]:
        """Every client, sorted by name, signatures verified.

        :raises IntegrityError: when a client record was forged or edited.
        """
        with self._reading() as transaction:
            return [self._client_info(transaction, c) for c in self._clients(transaction)]

    def client(self, name: str) -> ClientInfo:
        """One client by name.

        :raises NotFound: when there is no such client.
        :raises InvalidInput: for a name that is not UTF-8 text.
        """
        with self._reading() as transaction:
            found = transaction.execute(
                queries.CLIENT_NAMED_SQL, {"name": lookup_name(name, "client")}
            )
            if not found:
                raise NotFound(f"no client named {quoted(name)}; see: exvault client list")
            client = ClientRow._make(found[0])
            records.verify_client(self._verify_public, self._vault_id, client)
            return self._client_info(transaction, client)

    # ---------------------------------------------------------------- audit

    def audit_files(self) -> list[Path]:
        """The audit files of a SQLite vault (shared layout, or retired ones; see
        :mod:`vault.db.audit_file`); none for another backend."""
        path = self._store.path
        return audit_file.audit_files(path) if path is not None else []

    def audit_entries(self, since: datetime | None = None) -> list[audit.AuditEntry]:
        """The audit log in order, optionally from ``since`` on: the vault's entries,
        merged by time with those of its audit files."""
        with self._reading() as transaction:
            found = audit.entries(transaction, since)
        files = self.audit_files()
        for path in files:
            found += audit_file.entries(path, since)
        if files:
            found.sort(key=lambda e: e.at)  # stable: each log stays in its own order
        return found

    def verify_audit(
        self, *, remember: bool = True, progress: Callable[[int, int], None] | None = None
    ) -> audit.ChainReport:
        """Verify the audit chain: numbering, links, hashes, signatures, and that the
        head seen by the last verification on this machine is still there; then each
        audit file's chain the same way (its problems are named by the file).

        With ``remember``, the new head is stored for the next run (outside the vault).
        ``progress`` is told how far the vault's own chain is walked
        (:func:`vault.db.audit.verify_chain`).
        """
        with self._reading() as transaction:
            client_keys: dict[str, tuple[str, bytes]] = {}
            for client in self._clients(transaction):
                client_keys[client.id] = (client.name, client.verify_public)
            report = audit.verify_chain(
                transaction, self._vault_id, self._verify_public, client_keys, progress=progress
            )
            vault_rekeys = audit.rekey_history(transaction, self._vault_id, self._verify_public)
            witness = audit.read_witness(self._vault_id)
            problems = list(report.problems)
            if witness is not None and not audit.chain_contains(transaction, *witness):
                problems.append(
                    f"entry {witness[0]}, seen by the last verification on this machine, "
                    "is gone or changed: entries were cut off the end of the log"
                )
        entries = report.entries
        for path in self.audit_files():
            file_report = audit_file.verify(
                path, self._vault_id, self._verify_public, client_keys, vault_rekeys
            )
            entries += file_report.entries
            problems += file_report.problems
            if remember:
                audit_file.remember(self._vault_id, path, file_report)
        report = audit.ChainReport(entries, report.head_seq, report.head_hash, tuple(problems))
        if remember and report.ok and report.head_seq:
            audit.write_witness(self._vault_id, report.head_seq, report.head_hash)
        return report

    def status(self) -> VaultStatus:
        """Public facts about this vault (id, fingerprint, KDF, counts).

        :raises IntegrityError: when no passphrase keyslot is left.
        """
        with self._reading() as transaction:
            header = load_header(transaction)
            params = keyslots.passphrase_kdf_params(transaction)
            (count,) = transaction.execute(queries.CREDENTIAL_COUNT_SQL, {})[0]
        if not params:
            raise IntegrityError("damaged vault: no passphrase keyslot")
        return VaultStatus(
            location=self._store.location,
            vault_id=header.vault_id.hex(),
            fingerprint=self.fingerprint,
            format_version=header.format_version,
            created_at=from_epoch(header.created_at),
            kdf=min(params, key=lambda p: p.memory_kib * p.time_cost),
            credentials=count,
        )
