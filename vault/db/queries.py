"""Every statement exvault runs as SQL text, in one place: the bot's path, the owner's
operations (its heads, clients and grants, with their UPDATEs), the keyless reads,
keyslots and rekey, the audit log.

A statement here is plain SQL with named parameters (``:name``) over the columns of
:mod:`vault.format.schema`, so that it runs unchanged on every store's transaction
(:class:`vault.db.transaction.Transaction`): the standard library's :mod:`sqlite3` for
a vault file (:mod:`vault.db.sqlite_store`; a bot's direct path,
:func:`sqlite_executor`), SQLAlchemy's connection for a database URL
(:mod:`vault.db.store`). An owner's command on a vault file so loads no SQLAlchemy
(docs/benchmarks.md, figure 2 and the unlock agent's section). This module imports the
standard library and the format layer only. The DDL (:mod:`vault.db.tables`,
:mod:`vault.db.postgres`), the migrations and the ORM reads of ``verify`` and
``check`` are not statements of this kind.
"""

from __future__ import annotations

import functools
import sqlite3
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

from vault.format import stages
from vault.format.audit_entry import AUDIT_COLUMNS, new_entry
from vault.format.schema import (
    ClientRow,
    GrantRow,
    HeaderRow,
    HeadRow,
    JournalRow,
    KeyslotRow,
    ObservationRow,
    PayloadRow,
    VersionRow,
    WrapRow,
)

Execute = Callable[[str, Mapping[str, Any]], list[Sequence[Any]]]
"""Runs one statement with named parameters; returns its rows (none for a statement
that returns none)."""

ExecuteMany = Callable[[str, Sequence[Mapping[str, Any]]], None]
"""Runs one statement that returns no rows once per set of named parameters (the
driver's executemany: one call for a batch's rows of a table)."""


# --------------------------------------------------------------------------------------
# SQLite transactions
# --------------------------------------------------------------------------------------

BEGIN_READ = "BEGIN"
BEGIN_WRITE = "BEGIN IMMEDIATE"
"""A SQLite write transaction takes the write lock at once, not at its first write: two
writers queue on the lock (up to the busy timeout) instead of one failing mid-way with
"database is locked", and reads inside the transaction cannot go stale."""


def begin_sqlite(run: Callable[[str], object], *, write: bool) -> None:
    """Begin a SQLite transaction through ``run`` (a connection's way of running one
    statement): every SQLite writer, the SQLAlchemy store's and the standard library's,
    begins through here."""
    run(BEGIN_WRITE if write else BEGIN_READ)


def sqlite_executor(connection: sqlite3.Connection) -> Execute:
    """Run statements on a standard-library connection."""

    def execute(sql: str, params: Mapping[str, Any]) -> list[Sequence[Any]]:
        rows: list[Sequence[Any]] = connection.execute(sql, params).fetchall()
        return rows

    return execute


def sqlite_executor_many(connection: sqlite3.Connection) -> ExecuteMany:
    """Run a statement for many parameter sets on a standard-library connection."""

    def execute_many(sql: str, params: Sequence[Mapping[str, Any]]) -> None:
        connection.executemany(sql, params)

    return execute_many


@contextmanager
def sqlite_write(connection: sqlite3.Connection) -> Iterator[Execute]:
    """A write transaction on a standard-library connection in autocommit mode
    (``isolation_level=None``): begun IMMEDIATE, committed on normal exit, rolled back
    on any exception.

    :raises sqlite3.Error: when the database fails (the caller translates it).
    """
    try:
        begin_sqlite(connection.execute, write=True)
        yield sqlite_executor(connection)
        connection.execute("COMMIT")
    except BaseException:
        if connection.in_transaction:
            connection.execute("ROLLBACK")
        raise


WAL_CHECKPOINT_SQL = "PRAGMA wal_checkpoint(TRUNCATE)"
"""Folds SQLite's WAL into the database and truncates it; its first column is 1 when
readers kept it from completing."""


# --------------------------------------------------------------------------------------
# The owner's inserts and deletes
# --------------------------------------------------------------------------------------


@functools.lru_cache(maxsize=64)
def insert_sql(table: str, columns: tuple[str, ...]) -> str:
    """Inserts one row into ``table`` (named parameters: ``columns``). ``table`` and
    ``columns`` are names of :mod:`vault.format.schema`, never user text."""
    return "INSERT INTO {} ({}) VALUES ({})".format(
        table, ", ".join(columns), ", ".join(f":{name}" for name in columns)
    )


@functools.lru_cache(maxsize=16)
def update_sql(table: str, columns: tuple[str, ...], key: tuple[str, ...]) -> str:
    """Sets ``columns`` of the row of ``table`` whose ``key`` columns match (named
    parameters: both). Names of :mod:`vault.format.schema`, never user text."""
    return "UPDATE {} SET {} WHERE {}".format(
        table,
        ", ".join(f"{name} = :{name}" for name in columns),
        " AND ".join(f"{name} = :{name}" for name in key),
    )


UPDATE_HEAD_SQL = update_sql("credentials", HeadRow._fields[1:], ("id",))
"""Stores every column of a head the owner changed and signed again
(:class:`vault.format.editable.EditableHead`)."""
UPDATE_CLIENT_SQL = update_sql("clients", ClientRow._fields[1:], ("id",))
"""Stores every column of a client the owner revoked or re-keyed and signed again."""
UPDATE_HEADER_SQL = update_sql("vault_header", HeaderRow._fields[1:], ("id",))
"""Stores the header a rekey signed again."""

FOR_UPDATE = " FOR UPDATE"
"""Appended to a SELECT of one head or client on PostgreSQL: a row lock until the
transaction ends (two hosts changing one credential queue). SQLite's BEGIN IMMEDIATE
already serializes writers, and its SQL has no FOR UPDATE."""


DELETE_CREDENTIAL_SQL = "DELETE FROM credentials WHERE id = :id"
"""Deletes credential ``id``; its versions, payloads, wraps and grants go with it (their
foreign keys cascade)."""

RETIRE_VERSION_SQL = tuple(
    f"DELETE FROM {table} WHERE credential_id = :id AND version = :version"
    for table in ("payloads", "dek_wraps")
)
"""Delete the ciphertext and the wraps of version ``version`` of credential ``id``
(its version row, the history, stays)."""


# --------------------------------------------------------------------------------------
# What a client reads
# --------------------------------------------------------------------------------------


def _select(row: type[tuple[Any, ...]], alias: str) -> str:
    return ", ".join(f"{alias}.{column}" for column in row._fields)  # type: ignore[attr-defined]


SCHEMA_VERSION_SQL = "SELECT schema_version FROM exvault_schema"
SQLITE_SCHEMA_TABLE_SQL = (
    "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'exvault_schema'"
)
"""A row when a SQLite file has exvault's schema table (is it a vault at all?)."""
HEADER_SQL = f"SELECT {_select(HeaderRow, 'h')} FROM vault_header h WHERE h.id = 1"
CLIENT_SQL = f"SELECT {_select(ClientRow, 'c')} FROM clients c WHERE c.id = :id"
"""A client's row (parameter ``id``)."""
HEAD_NAMED_SQL = f"SELECT {_select(HeadRow, 'h')} FROM credentials h WHERE h.name = :name"
"""The head of credential ``name``."""
CLIENT_NAMED_SQL = f"SELECT {_select(ClientRow, 'c')} FROM clients c WHERE c.name = :name"
"""The row of client ``name``."""
CREDENTIAL_NAMED_SQL = "SELECT id FROM credentials WHERE name = :name"
"""The id of the credential ``name``, if there is one (is the name taken?)."""
CREDENTIAL_NAMES_SQL = "SELECT name FROM credentials"
"""Every credential's name."""


def _stage_sql(stage: str) -> str:
    # One round trip: the head, and the version, payload and this client's wrap at the
    # stage's version number. ``stage`` is one of STAGES, never user text.
    at = "h." + stages.version_column(stage)
    return (
        f"SELECT {_select(HeadRow, 'h')}, {_select(VersionRow, 'v')}, "
        f"{_select(PayloadRow, 'p')}, {_select(WrapRow, 'w')} "
        "FROM credentials h "
        f"LEFT JOIN credential_versions v ON v.credential_id = h.id AND v.version = {at} "
        f"LEFT JOIN payloads p ON p.credential_id = h.id AND p.version = {at} "
        f"LEFT JOIN dek_wraps w ON w.credential_id = h.id AND w.version = {at} "
        "AND w.recipient = :recipient "
        "WHERE h.name = :name"
    )


WRAP_EXISTS_SQL = (
    "SELECT 1 FROM dek_wraps "
    "WHERE credential_id = :id AND version = :version AND recipient = :recipient"
)
"""A row when version ``version`` of credential ``id`` has a wrap for ``recipient``."""

STAGE_SQL = {stage: _stage_sql(stage) for stage in stages.STAGES}
"""For each stage: credential ``name``'s head joined with the version, payload and the
wrap for ``recipient`` the stage names (see :func:`split_stage_row`)."""

StageRows = tuple[HeadRow, VersionRow | None, PayloadRow | None, WrapRow | None]

# Where each row's columns end in the joined row.
_WIDTHS = tuple(
    sum(len(row._fields) for row in (HeadRow, VersionRow, PayloadRow)[:n]) for n in (1, 2, 3)
)


def split_stage_row(values: Sequence[Any]) -> StageRows:
    """A row of :data:`STAGE_SQL`, cut back into its four rows; an absent outer-joined
    row comes back as NULLs in every column, its key included, and is None here."""
    cut = _WIDTHS
    head = HeadRow._make(values[: cut[0]])
    version = VersionRow._make(values[cut[0] : cut[1]]) if values[cut[0]] is not None else None
    payload = PayloadRow._make(values[cut[1] : cut[2]]) if values[cut[1]] is not None else None
    wrap = WrapRow._make(values[cut[2] :]) if values[cut[2]] is not None else None
    return head, version, payload, wrap


# --------------------------------------------------------------------------------------
# The audit chain's head, and appending after it
# --------------------------------------------------------------------------------------

LAST_AUDIT_SQL = "SELECT seq, entry_hash FROM audit_log ORDER BY seq DESC LIMIT 1"
"""The chain's last entry where the table itself is the chain (SQLite, PostgreSQL before
schema version 4): (seq, entry hash), no row for an empty log."""

INSERT_AUDIT_SQL = insert_sql("audit_log", AUDIT_COLUMNS)
"""Appends one entry (named parameters: the columns of an audit row)."""

AUDIT_APPEND_ARGUMENTS = (
    ("seq", "integer"),
    ("at", "bigint"),
    ("actor", "text"),
    ("host", "text"),
    ("pid", "integer"),
    ("action", "text"),
    ("credential", "text"),
    ("version", "integer"),
    ("outcome", "text"),
    ("detail", "text"),
    ("prev_hash", "bytea"),
    ("signer", "text"),
    ("entry_hash", "bytea"),
    ("signature", "bytea"),
)
"""PostgreSQL: the arguments of the reader's append function, in order, with their
types (the function's signature, which its GRANT names, is part of the schema)."""

AUDIT_APPEND_FUNCTION = "exvault_audit_append({})".format(
    ", ".join(kind for _name, kind in AUDIT_APPEND_ARGUMENTS)
)
"""The signature of the reader's append function, as a GRANT names it."""

AUDIT_APPEND_SQL = "SELECT exvault_audit_append({})".format(
    ", ".join(f"CAST(:{name} AS {kind})" for name, kind in AUDIT_APPEND_ARGUMENTS)
)
"""Appends one entry on PostgreSQL (named parameters: the columns of an audit row)."""

AUDIT_ROWS_SQL = f"SELECT {', '.join(AUDIT_COLUMNS)} FROM audit_log ORDER BY seq"
"""The whole audit log in chain order."""

AUDIT_ROWS_FROM_SQL = (
    f"SELECT {', '.join(AUDIT_COLUMNS)} FROM audit_log WHERE seq >= :seq ORDER BY seq"
)
"""The audit log from entry ``seq`` on, in chain order (the owner's walk of what was
appended since the entry it verified last)."""

REKEYS_SQL = (
    f"SELECT {', '.join(AUDIT_COLUMNS)} FROM audit_log "
    "WHERE action = 'rekey' AND signer = :signer ORDER BY seq DESC"
)
"""The ``rekey`` entries signed by ``signer`` (the root), newest first."""

AUDIT_COUNT_TO_SQL = "SELECT COUNT(*) FROM audit_log WHERE seq <= :seq"
"""How many entries the log holds up to entry ``seq`` (an intact prefix holds ``seq``)."""

AUDIT_HEAD_SQL = "SELECT seq, entry_hash FROM exvault_audit_head WHERE id = 1"
"""The chain's head on PostgreSQL: (seq, entry hash), seq 0 for an empty log."""


def last_audit_entry(execute: Execute, *, head_row: bool) -> tuple[int, bytes] | None:
    """(seq, entry hash) of the chain's last entry; None for an empty log. ``head_row``:
    read PostgreSQL's head row (schema version 4 on) rather than the table. Call it under
    the write lock to append after it."""
    found = execute(AUDIT_HEAD_SQL if head_row else LAST_AUDIT_SQL, {})
    return (found[0][0], found[0][1]) if found and found[0][0] else None


def append_audit(execute: Execute, vault_id: bytes, *, head_row: bool, **entry: Any) -> None:
    """Append an audit entry (see :func:`vault.format.audit_entry.new_entry`) after the
    chain's last one, inside the caller's write transaction; ``head_row``: the chain's
    head is PostgreSQL's head row, and the entry goes through the append function (the
    reader role has no INSERT on ``audit_log``).

    The write transaction holds the write lock (BEGIN IMMEDIATE, or the row lock of
    PostgreSQL's head row), so reading the head and appending after it cannot interleave.
    """
    row = new_entry(vault_id, last_audit_entry(execute, head_row=head_row), **entry)
    execute(AUDIT_APPEND_SQL if head_row else INSERT_AUDIT_SQL, row.values())


# --------------------------------------------------------------------------------------
# Probe observations
# --------------------------------------------------------------------------------------

_OBSERVATION_VALUES = ObservationRow._fields[1:]  # the database numbers ``id``

INSERT_OBSERVATION_SQL = insert_sql("probe_observations", _OBSERVATION_VALUES)
"""Stores one observation (named parameters: its columns but ``id``)."""


def observation_values(row: ObservationRow) -> dict[str, Any]:
    """The parameters of :data:`INSERT_OBSERVATION_SQL` for ``row``."""
    return {name: getattr(row, name) for name in _OBSERVATION_VALUES}


def _latest_probe_sql(*, reports_only: bool) -> str:
    # The newest signed ``probe`` entry of each credential about its current version
    # (of those whose detail names a report, with ``reports_only``).
    report = " AND p.detail LIKE 'report %'" if reports_only else ""
    return (
        f"SELECT {', '.join(f'a.{c}' for c in AUDIT_COLUMNS)} FROM audit_log a JOIN ("
        "SELECT p.credential AS credential, MAX(p.seq) AS seq FROM audit_log p "
        "JOIN credentials h ON h.name = p.credential AND p.version = h.current_version "
        f"WHERE p.action = 'probe' AND p.outcome = 'ok' AND p.signature IS NOT NULL{report} "
        "GROUP BY p.credential) l ON a.seq = l.seq"
    )


LATEST_PROBE_SQL = _latest_probe_sql(reports_only=False)
"""The newest signed ``probe`` audit entry of each credential's current version."""

LATEST_REPORT_PROBE_SQL = _latest_probe_sql(reports_only=True)
"""The same, of the entries whose observation holds a report."""

PROBES_OF_SQL = (
    f"SELECT {', '.join(AUDIT_COLUMNS)} FROM audit_log "
    "WHERE action = 'probe' AND outcome = 'ok' AND signature IS NOT NULL "
    "AND credential = :name AND version = :version ORDER BY seq DESC"
)
"""Every signed ``probe`` entry of one credential's version (``name``, ``version``),
newest first: when the newest does not verify."""

CURRENT_OBSERVATIONS_SQL = (
    f"SELECT {_select(ObservationRow, 'o')} FROM probe_observations o "
    "JOIN credentials h ON h.id = o.credential_id AND o.version = h.current_version"
)
"""Every observation of each credential's current version."""

OBSERVATIONS_SQL = f"SELECT {_select(ObservationRow, 'o')} FROM probe_observations o"
"""Every observation (``exvault verify``)."""
# The rotation journal
# --------------------------------------------------------------------------------------

_JOURNAL_VALUES = JournalRow._fields[1:]  # the database numbers ``id``

INSERT_JOURNAL_SQL = insert_sql("rotation_journal", _JOURNAL_VALUES) + " RETURNING id"
"""Stores one journal entry and returns its id (parameters: its columns but ``id``)."""

UPDATE_JOURNAL_SQL = (
    "UPDATE rotation_journal SET state = :state, api_key = :api_key, detail = :detail, "
    "attempts = :attempts, updated_at = :updated_at, signature = :signature WHERE id = :id"
)
"""Settles (or counts another attempt of) the entry ``id``, re-signed."""

JOURNAL_SQL = f"SELECT {_select(JournalRow, 'j')} FROM rotation_journal j ORDER BY j.id"
"""Every journal entry, oldest first."""

OPEN_JOURNAL_SQL = (
    f"SELECT {_select(JournalRow, 'j')} FROM rotation_journal j "
    "WHERE j.state = 'intent' ORDER BY j.id"
)
"""The entries not settled yet, oldest first."""


def journal_values(row: JournalRow) -> dict[str, Any]:
    """The parameters of :data:`INSERT_JOURNAL_SQL` (and, with ``id``, of
    :data:`UPDATE_JOURNAL_SQL`) for ``row``."""
    return {name: getattr(row, name) for name in JournalRow._fields}


# --------------------------------------------------------------------------------------
# PostgreSQL's write lock
# --------------------------------------------------------------------------------------

WRITE_LOCK_KEY = 0x65787661756C74  # "exvault": PostgreSQL advisory lock of schema 2 and older

LOCK_WRITES_SQL = "SELECT exvault_lock_writes()"
"""Takes the write lock: the audit head's row, locked FOR UPDATE by a function the
reader role may call (schema version 4 on)."""

ADVISORY_LOCK_SQL = "SELECT pg_advisory_xact_lock(:k)"
"""The write lock of older schemas (parameter ``k``: :data:`WRITE_LOCK_KEY`)."""


def lock_timeout_sql(milliseconds: int) -> str:
    """Bounds how long this transaction waits for a lock."""
    return f"SET LOCAL lock_timeout = {milliseconds:d}"


# --------------------------------------------------------------------------------------
# The keyless reads (inventory)
# --------------------------------------------------------------------------------------

LISTED_HEAD = (
    "id",
    "name",
    "created_at",
    "updated_at",
    "pending_version",
    "pending_since",
    "previous_version",
    "previous_until",
    "policy",
    "exposed_at",
    "exposed_reason",
)
"""The head's columns a credential's metadata is made of (no signature, no digests)."""

LISTED_VERSION = (
    "version",
    "name",
    "exchange",
    "permissions",
    "ips",
    "issued_on",
    "expires_on",
    "endpoint",
    "api_key_fingerprint",
)
"""Its current version's columns: no blob but the 16-byte fingerprint."""

# What ``exvault list`` reads: the head's name and policy only to report a damaged vault
# as the metadata read does; the version's columns but the fingerprint.
_LISTING_HEAD = (
    "name",
    "policy",
    "pending_version",
    "previous_version",
    "created_at",
    "updated_at",
    "exposed_at",
)


def _with_current_version(head: Sequence[str], version: Sequence[str]) -> str:
    # An outer join: a credential whose current version row is gone comes with NULL
    # version columns, to be reported rather than hidden.
    columns = [f"h.{c}" for c in head] + [f"v.{c}" for c in version]
    return (
        f"SELECT {', '.join(columns)} FROM credentials h "
        "LEFT OUTER JOIN credential_versions v "
        "ON v.credential_id = h.id AND v.version = h.current_version "
        "ORDER BY h.name"
    )


CREDENTIALS_METADATA_SQL = _with_current_version(LISTED_HEAD, LISTED_VERSION)
"""Every credential's :data:`LISTED_HEAD` then its current version's
:data:`LISTED_VERSION` (NULLs when that row is gone), by name."""

LISTING_SQL = _with_current_version(_LISTING_HEAD, LISTED_VERSION[:-1])
"""What ``exvault list`` shows of every credential, by name: the head's name, policy,
pending and previous version numbers, creation, update and exposure times, then its
current version's :data:`LISTED_VERSION` but the fingerprint (NULLs when that row is
gone)."""

SORTED_NAMES_SQL = "SELECT name FROM credentials ORDER BY name"
"""Every credential's name, sorted."""

CREDENTIAL_COUNT_SQL = "SELECT COUNT(*) FROM credentials"
"""How many credentials the vault holds."""

VERSION_OF_SQL = (
    f"SELECT {_select(VersionRow, 'v')} FROM credential_versions v "
    "WHERE v.credential_id = :id AND v.version = :version"
)
"""Version ``version`` of credential ``id``."""

# --------------------------------------------------------------------------------------
# The owner's heads, clients and grants
# --------------------------------------------------------------------------------------

HEAD_SQL = f"SELECT {_select(HeadRow, 'h')} FROM credentials h WHERE h.id = :id"
"""The head of credential ``id``."""

HEADS_GRANTING_SQL = (
    f"SELECT {_select(HeadRow, 'h')} FROM credentials h WHERE h.grantees LIKE :pattern"
)
"""The heads whose grantee set matches ``pattern`` (``%<client id>%``: client ids are
hex digits, nothing in them is special to LIKE)."""

GRANT_SQL = (
    "SELECT client_id, credential_id, created_at, signature FROM grants "
    "WHERE client_id = :client_id AND credential_id = :credential_id"
)
"""The grant of credential ``credential_id`` to client ``client_id``, if any."""

UPDATE_GRANT_SQL = update_sql("grants", ("created_at", "signature"), ("client_id", "credential_id"))
"""Stores a grant signed anew (parameters: the columns of a grant row): a grant made
again, or every grant under a rekey's new root key."""

GRANTED_TO_SQL = "SELECT credential_id FROM grants WHERE client_id = :client_id"
"""The ids of the credentials granted to client ``client_id``."""

WRAPPED_FOR_SQL = "SELECT DISTINCT credential_id FROM dek_wraps WHERE recipient = :recipient"
"""The ids of the credentials with a data key wrapped for ``recipient``."""

DELETE_GRANT_SQL = (
    "DELETE FROM grants WHERE client_id = :client_id AND credential_id = :credential_id"
)
"""Deletes the grant of credential ``credential_id`` to client ``client_id``."""

DELETE_GRANTS_TO_SQL = "DELETE FROM grants WHERE client_id = :client_id"
"""Deletes every grant to client ``client_id``."""

DELETE_WRAPS_OF_SQL = (
    "DELETE FROM dek_wraps WHERE credential_id = :credential_id AND recipient = :recipient"
)
"""Deletes the data keys of credential ``credential_id`` wrapped for ``recipient``."""

DELETE_WRAPS_FOR_SQL = "DELETE FROM dek_wraps WHERE recipient = :recipient"
"""Deletes every data key wrapped for ``recipient``."""
VERSIONS_OF_SQL = (
    f"SELECT {_select(VersionRow, 'v')} FROM credential_versions v "
    "WHERE v.credential_id = :id ORDER BY v.version DESC"
)
"""Every version of credential ``id``, newest first."""

READABLE_VERSIONS_SQL = "SELECT version FROM payloads WHERE credential_id = :id"
"""The version numbers of credential ``id`` that still have their ciphertext."""

CLIENTS_SQL = f"SELECT {_select(ClientRow, 'c')} FROM clients c ORDER BY c.name"
"""Every client, by name."""

GRANTED_NAMES_SQL = (
    "SELECT h.name FROM credentials h JOIN grants g ON g.credential_id = h.id "
    "WHERE g.client_id = :id ORDER BY h.name"
)
"""The names of the credentials granted to client ``id``, sorted."""

PASSPHRASE_KDF_COLUMNS = ("id", "kdf_time_cost", "kdf_memory_kib", "kdf_parallelism")
"""The columns of a passphrase keyslot a keyless reader may see (not the wrapped keys:
a read-only database role may be refused ``keyslots.wrapped``)."""

SLOTS_KDF_SQL = f"SELECT {', '.join(PASSPHRASE_KDF_COLUMNS)} FROM keyslots WHERE kind = :kind"
"""The :data:`PASSPHRASE_KDF_COLUMNS` of the keyslots of kind ``kind``."""

HEADER_ROWS_SQL = f"SELECT {_select(HeaderRow, 'h')} FROM vault_header h ORDER BY h.id"
"""Every header row (one in a sound vault), every column in table order: the unlock
state's first part."""

KEYSLOT_ROWS_SQL = (
    f"SELECT {_select(KeyslotRow, 's')} FROM keyslots s WHERE s.kind = :kind ORDER BY s.id"
)
"""Every keyslot of kind ``kind``, every column in table order: the unlock state's
second part."""


# Keyslots and rekey
# --------------------------------------------------------------------------------------

KEYSLOT_COLUMNS_SQL = f"SELECT {', '.join(KeyslotRow._fields[:-1])} FROM keyslots"
"""Every keyslot's columns but the signature, which a schema older than version 5
lacks: what the owner's unlock reads before the schema is brought up to date."""

KEYSLOT_SIGNATURE_SQL = "SELECT signature FROM keyslots WHERE id = :id"
"""The signature of keyslot ``id`` (read once the schema is up to date)."""

SIGN_KEYSLOT_SQL = update_sql("keyslots", ("signature",), ("id",))
"""Stores keyslot ``id``'s ``signature`` (schema version 5's migration)."""

INSERT_KEYSLOT_SQL = insert_sql("keyslots", KeyslotRow._fields)
"""Stores one keyslot (named parameters: every column of :class:`KeyslotRow`)."""

INSERT_HEADER_SQL = insert_sql("vault_header", HeaderRow._fields)
"""Stores a new vault's header (named parameters: every column of :class:`HeaderRow`)."""

DELETE_KEYSLOTS_SQL = "DELETE FROM keyslots"
"""Deletes every keyslot (a rekey replaces them all)."""

DELETE_KEYSLOTS_OF_KIND_SQL = "DELETE FROM keyslots WHERE kind = :kind"
"""Deletes the keyslots of ``kind`` (``passwd`` replaces the passphrase slot)."""

ALL_HEADS_SQL = f"SELECT {_select(HeadRow, 'h')} FROM credentials h"
"""Every credential's head."""

ALL_VERSIONS_SQL = f"SELECT {_select(VersionRow, 'v')} FROM credential_versions v"
"""Every version row."""

ALL_PAYLOADS_SQL = f"SELECT {_select(PayloadRow, 'p')} FROM payloads p"
"""Every payload row."""

ALL_WRAPS_SQL = f"SELECT {_select(WrapRow, 'w')} FROM dek_wraps w"
"""Every data key wrap."""

ALL_GRANTS_SQL = f"SELECT {_select(GrantRow, 'g')} FROM grants g"
"""Every grant."""

REKEY_VERSION_SQL = update_sql(
    "credential_versions", ("api_key_fingerprint", "signature"), ("credential_id", "version")
)
"""Stores a version's fingerprint and signature under a new root key."""

REKEY_WRAP_SQL = update_sql(
    "dek_wraps", ("ephemeral_public", "body"), ("credential_id", "version", "recipient")
)
"""Stores a data key wrapped afresh for a recipient's new key."""

# The audit log's reads
# --------------------------------------------------------------------------------------

AUDIT_ROWS_AT_SQL = f"SELECT {', '.join(AUDIT_COLUMNS)} FROM audit_log WHERE at >= :at ORDER BY seq"
"""The audit log's entries made at or after ``at`` (epoch seconds), in chain order."""

AUDIT_ROWS_TO_SQL = (
    f"SELECT {', '.join(AUDIT_COLUMNS)} FROM audit_log WHERE seq <= :seq ORDER BY seq"
)
"""The audit log up to entry ``seq``, in chain order (a remembered head's prefix)."""

AUDIT_ENTRY_HASH_SQL = "SELECT entry_hash FROM audit_log WHERE seq = :seq"
"""The hash of entry ``seq``, if there is one."""

AUDIT_READS_SIGNED_BY_SQL = (
    f"SELECT {', '.join(AUDIT_COLUMNS)} FROM audit_log "
    "WHERE signer = :signer AND action = 'read' AND outcome = 'ok' ORDER BY seq"
)
"""The successful reads client ``signer`` signed (in a shared vault's audit file)."""

JOURNAL_MODE_SQL = "PRAGMA journal_mode"
"""SQLite's journal mode of the database (``doctor``)."""

NEWEST_TIMES_SQL = (
    "SELECT (SELECT MAX(at) FROM audit_log), (SELECT MAX(updated_at) FROM credentials)"
)
"""The newest audit entry's time and the newest change of a head (``doctor``'s clock
check): NULLs when there is none."""

AUDIT_COUNT_SQL = "SELECT COUNT(*) FROM audit_log"
"""How many entries the log holds."""

AUDIT_OWNERS_SQL = "SELECT seq FROM audit_log WHERE signer = :signer OR actor = :actor ORDER BY seq"
"""The seqs of the entries signed by ``signer`` or naming ``actor`` (in an audit file,
the owner's: the vault key, the admin), in chain order."""

GRANTEES_SQL = "SELECT name, grantees FROM credentials"
"""Every credential's name and grantee set (unverified: ``check``'s plausibility)."""


__all__ = [
    "ADVISORY_LOCK_SQL",
    "ALL_GRANTS_SQL",
    "ALL_HEADS_SQL",
    "ALL_PAYLOADS_SQL",
    "ALL_VERSIONS_SQL",
    "ALL_WRAPS_SQL",
    "AUDIT_APPEND_ARGUMENTS",
    "AUDIT_APPEND_FUNCTION",
    "AUDIT_APPEND_SQL",
    "AUDIT_COUNT_SQL",
    "AUDIT_COUNT_TO_SQL",
    "AUDIT_ENTRY_HASH_SQL",
    "AUDIT_HEAD_SQL",
    "AUDIT_OWNERS_SQL",
    "AUDIT_READS_SIGNED_BY_SQL",
    "AUDIT_ROWS_AT_SQL",
    "AUDIT_ROWS_FROM_SQL",
    "AUDIT_ROWS_SQL",
    "AUDIT_ROWS_TO_SQL",
    "BEGIN_READ",
    "BEGIN_WRITE",
    "CLIENTS_SQL",
    "CLIENT_NAMED_SQL",
    "CLIENT_SQL",
    "CREDENTIALS_METADATA_SQL",
    "CREDENTIAL_COUNT_SQL",
    "CREDENTIAL_NAMED_SQL",
    "CREDENTIAL_NAMES_SQL",
    "CURRENT_OBSERVATIONS_SQL",
    "DELETE_CREDENTIAL_SQL",
    "DELETE_GRANTS_TO_SQL",
    "DELETE_GRANT_SQL",
    "DELETE_KEYSLOTS_OF_KIND_SQL",
    "DELETE_KEYSLOTS_SQL",
    "DELETE_WRAPS_FOR_SQL",
    "DELETE_WRAPS_OF_SQL",
    "FOR_UPDATE",
    "GRANTED_NAMES_SQL",
    "GRANTED_TO_SQL",
    "GRANTEES_SQL",
    "GRANT_SQL",
    "HEADER_ROWS_SQL",
    "HEADER_SQL",
    "HEADS_GRANTING_SQL",
    "HEAD_NAMED_SQL",
    "HEAD_SQL",
    "INSERT_AUDIT_SQL",
    "INSERT_HEADER_SQL",
    "INSERT_JOURNAL_SQL",
    "INSERT_KEYSLOT_SQL",
    "INSERT_OBSERVATION_SQL",
    "JOURNAL_MODE_SQL",
    "JOURNAL_SQL",
    "KEYSLOT_COLUMNS_SQL",
    "KEYSLOT_ROWS_SQL",
    "KEYSLOT_SIGNATURE_SQL",
    "LAST_AUDIT_SQL",
    "LATEST_PROBE_SQL",
    "LATEST_REPORT_PROBE_SQL",
    "LISTED_HEAD",
    "LISTED_VERSION",
    "LISTING_SQL",
    "LOCK_WRITES_SQL",
    "NEWEST_TIMES_SQL",
    "OBSERVATIONS_SQL",
    "OPEN_JOURNAL_SQL",
    "PASSPHRASE_KDF_COLUMNS",
    "PROBES_OF_SQL",
    "READABLE_VERSIONS_SQL",
    "REKEYS_SQL",
    "REKEY_VERSION_SQL",
    "REKEY_WRAP_SQL",
    "RETIRE_VERSION_SQL",
    "SCHEMA_VERSION_SQL",
    "SIGN_KEYSLOT_SQL",
    "SLOTS_KDF_SQL",
    "SORTED_NAMES_SQL",
    "SQLITE_SCHEMA_TABLE_SQL",
    "STAGE_SQL",
    "UPDATE_CLIENT_SQL",
    "UPDATE_GRANT_SQL",
    "UPDATE_HEADER_SQL",
    "UPDATE_HEAD_SQL",
    "UPDATE_JOURNAL_SQL",
    "VERSIONS_OF_SQL",
    "VERSION_OF_SQL",
    "WAL_CHECKPOINT_SQL",
    "WRAPPED_FOR_SQL",
    "WRAP_EXISTS_SQL",
    "WRITE_LOCK_KEY",
    "Execute",
    "ExecuteMany",
    "StageRows",
    "append_audit",
    "begin_sqlite",
    "insert_sql",
    "journal_values",
    "last_audit_entry",
    "lock_timeout_sql",
    "observation_values",
    "split_stage_row",
    "sqlite_executor",
    "sqlite_executor_many",
    "sqlite_write",
    "update_sql",
]
