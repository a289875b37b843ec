"""Tampering with the database is refused with the one integrity error.

Each case edits the SQLite file directly, as someone with write access to the
database but without the passphrase could.
"""

from __future__ import annotations

import hashlib
import re
import sqlite3
from pathlib import Path

import pytest

import vault
from tests.conftest import PASSPHRASE, TEST_KDF, forge_version, rewrite_schema
from vault.db.inventory import Inventory
from vault.errors import IntegrityError, InvalidToken
from vault.format import identities, records
from vault.ops.verification import verify
from vault.owner.admin import AdminVault
from vault.runtime.client import ClientVault


def sql(vault_path: Path, statement: str, *params: object) -> list[tuple[object, ...]]:
    db = sqlite3.connect(vault_path)
    try:
        with db:
            return db.execute(statement, params).fetchall()
    finally:
        db.close()


def flip_first_byte(vault_path: Path, table: str, column: str, where: str = "1=1") -> None:
    (value,) = sql(vault_path, f"SELECT {column} FROM {table} WHERE {where} LIMIT 1")[0]
    assert isinstance(value, bytes)
    damaged = bytes([value[0] ^ 0x01]) + value[1:]
    sql(vault_path, f"UPDATE {table} SET {column} = ? WHERE {column} = ?", damaged, value)


BINANCE = "credential_id = (SELECT id FROM credentials WHERE name = 'binance-main')"


@pytest.mark.parametrize(
    ("table", "column"),
    [
        ("payloads", "ciphertext"),
        ("payloads", "nonce"),
        ("dek_wraps", "body"),
        ("dek_wraps", "ephemeral_public"),
        ("credential_versions", "signature"),
        ("credential_versions", "payload_digest"),
        ("credential_versions", "api_key_fingerprint"),
    ],
)
def test_flipped_byte_in_a_version_is_refused(
    stocked: AdminVault, vault_path: Path, table: str, column: str
) -> None:
    flip_first_byte(vault_path, table, column, BINANCE)
    with pytest.raises(IntegrityError):
        stocked.get("binance-main")
    assert stocked.get("kucoin-sub1").version == 1  # the other credential is untouched


def test_flipped_byte_in_a_head_signature_is_refused(stocked: AdminVault, vault_path: Path) -> None:
    flip_first_byte(vault_path, "credentials", "signature", "name = 'binance-main'")
    with pytest.raises(IntegrityError):
        stocked.get("binance-main")
    with pytest.raises(IntegrityError):
        stocked.describe("binance-main")


@pytest.mark.parametrize(
    ("table", "column"),
    [
        ("keyslots", "wrapped"),
        ("keyslots", "nonce"),
        ("keyslots", "salt"),
        ("vault_header", "signature"),
        ("vault_header", "encryption_public"),
        ("vault_header", "verify_public"),
        ("vault_header", "vault_id"),
    ],
)
def test_flipped_byte_in_header_or_keyslot_refuses_unlock(
    stocked: AdminVault, vault_path: Path, table: str, column: str
) -> None:
    where = "kind = 'passphrase'" if table == "keyslots" else "1=1"
    flip_first_byte(vault_path, table, column, where)
    with pytest.raises(IntegrityError):
        AdminVault.unlock(vault_path, PASSPHRASE)


@pytest.mark.parametrize("column", ["ciphertext", "nonce"])
def test_payloads_swapped_between_rows(stocked: AdminVault, vault_path: Path, column: str) -> None:
    rows = sql(vault_path, f"SELECT credential_id, {column} FROM payloads")
    (a_id, a), (b_id, b) = rows
    sql(vault_path, f"UPDATE payloads SET {column} = ? WHERE credential_id = ?", b, a_id)
    sql(vault_path, f"UPDATE payloads SET {column} = ? WHERE credential_id = ?", a, b_id)
    for name in ("binance-main", "kucoin-sub1"):
        with pytest.raises(IntegrityError):
            stocked.get(name)


def test_whole_payload_rows_swapped(stocked: AdminVault, vault_path: Path) -> None:
    rows = sql(vault_path, "SELECT credential_id, nonce, ciphertext FROM payloads")
    (a_id, a_n, a_c), (b_id, b_n, b_c) = rows
    sql(
        vault_path,
        "UPDATE payloads SET nonce = ?, ciphertext = ? WHERE credential_id = ?",
        b_n,
        b_c,
        a_id,
    )
    sql(
        vault_path,
        "UPDATE payloads SET nonce = ?, ciphertext = ? WHERE credential_id = ?",
        a_n,
        a_c,
        b_id,
    )
    for name in ("binance-main", "kucoin-sub1"):
        with pytest.raises(IntegrityError):
            stocked.get(name)


def test_wraps_swapped_between_rows(stocked: AdminVault, vault_path: Path) -> None:
    rows = sql(vault_path, "SELECT credential_id, ephemeral_public, body FROM dek_wraps")
    (a_id, a_e, a_b), (b_id, b_e, b_b) = rows
    sql(
        vault_path,
        "UPDATE dek_wraps SET ephemeral_public = ?, body = ? WHERE credential_id = ?",
        b_e,
        b_b,
        a_id,
    )
    sql(
        vault_path,
        "UPDATE dek_wraps SET ephemeral_public = ?, body = ? WHERE credential_id = ?",
        a_e,
        a_b,
        b_id,
    )
    for name in ("binance-main", "kucoin-sub1"):
        with pytest.raises(IntegrityError):
            stocked.get(name)


@pytest.mark.parametrize(
    ("column", "value"),
    [
        ("permissions", "read"),
        ("permissions", "read,trade,withdraw"),
        ("ips", "0.0.0.0/0"),
        ("ips", ""),
        ("exchange", "kucoin"),
        ("issued_on", "2020-01-01"),
        ("expires_on", "2099-01-01"),
        ("created_at", 1),
        ("name", "kucoin-sub1"),
        ("endpoint", "https://api.attacker.example"),
        ("endpoint", "testnet"),
        ("endpoint", "live"),  # NULL is live's one spelling
    ],
)
def test_metadata_edited_in_the_database(
    stocked: AdminVault, vault_path: Path, column: str, value: object
) -> None:
    sql(vault_path, f"UPDATE credential_versions SET {column} = ? WHERE {BINANCE}", value)
    with pytest.raises(IntegrityError):
        stocked.get("binance-main")
    with Inventory.open(vault_path) as inv, pytest.raises(IntegrityError):
        inv.describe("binance-main")


def test_an_endpoint_cleared_in_the_database_is_refused(
    admin: AdminVault, vault_path: Path, binance_payload: dict[str, str]
) -> None:
    admin.add("b", "binance", binance_payload, endpoint="https://api.binance.example")
    sql(vault_path, "UPDATE credential_versions SET endpoint = NULL")
    with pytest.raises(IntegrityError):
        admin.get("b")
    assert not verify(admin).ok


@pytest.mark.parametrize(
    ("column", "value"),
    [
        ("name", "renamed"),
        ("current_version", 2),
        ("pending_version", 1),
        ("policy", '{"max_age_days": 9999}'),
        ("exposed_at", None),
        ("created_at", 5),
    ],
)
def test_head_edited_in_the_database(
    stocked: AdminVault, vault_path: Path, column: str, value: object
) -> None:
    if column == "exposed_at":  # clearing an exposure mark must be caught too
        value = None
        sql(vault_path, "UPDATE credentials SET exposed_reason = 'x' WHERE name = 'binance-main'")
    sql(vault_path, f"UPDATE credentials SET {column} = ? WHERE name = 'binance-main'", value)
    name = "renamed" if column == "name" else "binance-main"
    with pytest.raises(IntegrityError):
        stocked.get(name)


def test_forged_version_from_public_keys_only(stocked: AdminVault, vault_path: Path) -> None:
    """Someone who knows only the public keys builds a complete, consistent version of
    their own: encrypted with the right associated data, wrapped for the root key, and
    signed, but with a key of their own. It must not be accepted."""
    ((enc_pub,),) = sql(vault_path, "SELECT encryption_public FROM vault_header")
    assert isinstance(enc_pub, bytes)
    forge_version(vault_path, "root", enc_pub)
    with pytest.raises(IntegrityError):
        stocked.get("binance-main")
    with Inventory.open(vault_path) as inv, pytest.raises(IntegrityError):
        inv.describe("binance-main")


def test_header_replaced_with_attacker_keys(stocked: AdminVault, vault_path: Path) -> None:
    """A new self-signed header with the attacker's keys does not open with the keyslots."""
    attacker = identities.RootIdentity.generate()
    ((vault_id, created_at),) = sql(vault_path, "SELECT vault_id, created_at FROM vault_header")
    from vault.db.tables import HeaderRecord

    header = HeaderRecord(
        id=1,
        format_version=1,
        vault_id=vault_id,
        created_at=created_at,
        encryption_public=attacker.encryption_public,
        verify_public=attacker.verify_public,
    )
    header.signature = attacker.sign(records.header_message(header))
    sql(
        vault_path,
        "UPDATE vault_header SET encryption_public = ?, verify_public = ?, signature = ?",
        header.encryption_public,
        header.verify_public,
        header.signature,
    )
    with pytest.raises(IntegrityError):
        AdminVault.unlock(vault_path, PASSPHRASE)


def test_header_replaced_with_attacker_keys_is_refused_by_a_client(
    token: str, vault_path: Path
) -> None:
    """The same vault id under the attacker's self-signed keys: a client's token pins the
    vault's signing-key fingerprint, so it refuses the substitute before reading."""
    attacker = identities.RootIdentity.generate()
    sql(
        vault_path,
        "UPDATE vault_header SET encryption_public = ?, verify_public = ?",
        attacker.encryption_public,
        attacker.verify_public,
    )
    ((header_id,),) = sql(vault_path, "SELECT id FROM vault_header")
    from vault.db.tables import HeaderRecord

    rows = sql(vault_path, "SELECT format_version, vault_id, created_at FROM vault_header")
    ((format_version, vault_id, created_at),) = rows
    header = HeaderRecord(
        id=header_id,
        format_version=format_version,
        vault_id=vault_id,
        created_at=created_at,
        encryption_public=attacker.encryption_public,
        verify_public=attacker.verify_public,
    )
    sql(
        vault_path,
        "UPDATE vault_header SET signature = ?",
        attacker.sign(records.header_message(header)),
    )
    with pytest.raises(InvalidToken, match="another vault"):
        ClientVault.open(vault_path, token=token).get("binance-main")


def test_a_second_passphrase_keyslot_is_refused(stocked: AdminVault, vault_path: Path) -> None:
    """A copy of the passphrase slot under another id would make every unlock pay the
    KDF twice: a vault with more than one passphrase slot is refused as damaged."""
    db = sqlite3.connect(vault_path)
    try:
        db.row_factory = sqlite3.Row
        row = dict(db.execute("SELECT * FROM keyslots WHERE kind = 'passphrase'").fetchone())
        row["id"] = "f" * 32
        with db:
            db.execute(
                f"INSERT INTO keyslots ({', '.join(row)}) VALUES ({', '.join('?' * len(row))})",
                tuple(row.values()),
            )
    finally:
        db.close()
    with pytest.raises(IntegrityError, match=r"^damaged vault: expected one passphrase keyslot"):
        AdminVault.unlock(vault_path, PASSPHRASE)


def test_api_key_fingerprint_is_keyed_by_the_vault(
    stocked: AdminVault, vault_path: Path, tmp_path: Path, binance_payload: dict[str, str]
) -> None:
    """The same API key in two vaults has two unrelated fingerprints: a copy of the file
    does not let anyone test whether a candidate API key is stored in it."""
    other_path = tmp_path / "other" / "vault.db"
    other, _ = AdminVault.create(other_path, PASSPHRASE, kdf=TEST_KDF, insecure_test_kdf=True)
    with other:
        other.add("binance-main", "binance", binance_payload, permissions="read,trade")
    query = f"SELECT api_key_fingerprint FROM credential_versions WHERE {BINANCE}"
    ((mine,),) = sql(vault_path, query)
    ((theirs,),) = sql(other_path, query)
    api_key = binance_payload["api_key"].encode()
    unkeyed = {identities.fingerprint(api_key)[:16], hashlib.sha256(api_key).digest()[:16]}
    assert mine != theirs
    assert mine not in unkeyed


def test_deleted_payload_row_is_reported_as_damage(stocked: AdminVault, vault_path: Path) -> None:
    sql(vault_path, f"DELETE FROM payloads WHERE {BINANCE}")
    with pytest.raises(IntegrityError, match="damaged vault"):
        stocked.get("binance-main")


# A value of another SQL type than the schema's: SQLite stores whatever it is given.
# (table, column, an expression of another type, what the error says of it)
OTHER_TYPES = [
    ("credential_versions", "created_at", "created_at + 0.5", "a real number where an integer"),
    ("credential_versions", "permissions", "CAST(permissions AS BLOB)", "a blob where text"),
    ("credentials", "updated_at", "'n' || updated_at", "text where an integer"),
    ("payloads", "nonce", "hex(nonce)", "text where a blob"),
    ("dek_wraps", "body", "length(body)", "an integer where a blob"),
]


def store_other_type(vault_path: Path, table: str, column: str, expression: str) -> None:
    where = "name = 'binance-main'" if table == "credentials" else BINANCE
    sql(vault_path, f"UPDATE {table} SET {column} = {expression} WHERE {where}")


@pytest.fixture
def token(stocked: AdminVault) -> str:
    """bot, granted binance-main."""
    _, tok = stocked.add_client("bot", max_scope="trade")
    stocked.grant("bot", ["binance-main"])
    return tok


@pytest.mark.parametrize(("table", "column", "expression", "holds"), OTHER_TYPES)
def test_value_of_another_type_refused_by_the_admin_read(
    stocked: AdminVault, vault_path: Path, table: str, column: str, expression: str, holds: str
) -> None:
    store_other_type(vault_path, table, column, expression)
    with pytest.raises(IntegrityError, match=f"^damaged vault: {table}.{column} holds {holds} "):
        stocked.get("binance-main")
    assert stocked.get("kucoin-sub1").version == 1


@pytest.mark.parametrize(("table", "column", "expression", "holds"), OTHER_TYPES)
def test_value_of_another_type_refused_by_the_client_read(
    token: str, vault_path: Path, table: str, column: str, expression: str, holds: str
) -> None:
    store_other_type(vault_path, table, column, expression)
    with (
        ClientVault.open(vault_path, token=token) as handle,
        pytest.raises(IntegrityError, match=f"^damaged vault: {table}.{column} holds {holds} "),
    ):
        handle.get("binance-main")


@pytest.mark.parametrize(
    ("table", "column", "expression", "holds"),
    [t for t in OTHER_TYPES if t[0] in ("credentials", "credential_versions")],
)
def test_value_of_another_type_refused_by_describe_and_history(
    stocked: AdminVault, vault_path: Path, table: str, column: str, expression: str, holds: str
) -> None:
    store_other_type(vault_path, table, column, expression)
    message = f"^damaged vault: {table}.{column} holds {holds} "
    with Inventory.open(vault_path) as inv:
        with pytest.raises(IntegrityError, match=message):
            inv.describe("binance-main")
        with pytest.raises(IntegrityError, match=message):
            inv.history("binance-main")


@pytest.mark.parametrize(
    ("change", "holds"),
    [
        ("pid = pid + 0.5", "pid holds a real number where an integer is expected"),
        ("entry_hash = NULL", "entry_hash holds NULL where a blob is expected"),
    ],
)
def test_value_of_another_type_in_the_audit_log_is_reported(
    stocked: AdminVault, vault_path: Path, change: str, holds: str
) -> None:
    rewrite_schema(vault_path, "audit_log", "entry_hash BLOB NOT NULL", "entry_hash BLOB")
    sql(vault_path, f"UPDATE audit_log SET {change} WHERE seq = 2")
    with Inventory.open(vault_path) as inv:
        report = inv.verify_audit(remember=False)
        assert f"audit_log.{holds} (row seq 2)" in report.problems
        with pytest.raises(IntegrityError, match=f"audit_log.{holds}"):
            inv.audit_entries()


def test_value_of_another_type_in_the_passphrase_keyslot_refuses_unlock(
    stocked: AdminVault, vault_path: Path
) -> None:
    sql(vault_path, "UPDATE keyslots SET kdf_memory_kib = 'n' || kdf_memory_kib")
    message = r"^damaged vault: keyslots\.kdf_memory_kib holds text where an integer is expected"
    with pytest.raises(IntegrityError, match=message):
        AdminVault.unlock(vault_path, PASSPHRASE)
    with Inventory.open(vault_path) as inv, pytest.raises(IntegrityError, match=message):
        inv.status()


def test_value_of_another_type_in_the_header_refuses_open(
    stocked: AdminVault, vault_path: Path
) -> None:
    sql(vault_path, "UPDATE vault_header SET created_at = created_at + 0.5")
    with pytest.raises(IntegrityError, match=r"^damaged vault: vault_header\.created_at holds a"):
        Inventory.open(vault_path)


def test_a_version_row_of_a_fork_with_the_same_number_is_refused(
    stocked: AdminVault, vault_path: Path, token: str
) -> None:
    """Two copies of one vault each write their own version 2 of binance-main (a backup
    restored, then edited again): both rows are validly signed for (credential, 2). The
    rows of one put into the other must not pass for the version 2 its head names."""
    fork = vault_path.with_name("fork.db")
    source, copy = sqlite3.connect(vault_path), sqlite3.connect(fork)
    source.backup(copy)
    source.close()
    copy.close()
    fork.chmod(0o600)
    with AdminVault.unlock(fork, PASSPHRASE) as other:
        other.edit(
            "binance-main",
            payload={"api_key": "forkKey0123456789", "secret": "forkSecret0123456789"},
        )
    stocked.edit(
        "binance-main", payload={"api_key": "ourKey0123456789", "secret": "ourSecret0123456789"}
    )
    for table in ("credential_versions", "payloads", "dek_wraps"):
        rows = sql(fork, f"SELECT * FROM {table} WHERE {BINANCE} AND version = 2")
        sql(vault_path, f"DELETE FROM {table} WHERE {BINANCE} AND version = 2")
        for row in rows:
            sql(vault_path, f"INSERT INTO {table} VALUES ({', '.join('?' * len(row))})", *row)

    with pytest.raises(IntegrityError):
        stocked.get("binance-main")
    with pytest.raises(IntegrityError):
        vault.load("binance-main", where=vault_path, token=token)
    assert any("version 2" in p.message for p in verify(stocked).problems)


def test_a_case_insensitive_name_column_gives_no_other_credential(
    stocked: AdminVault, vault_path: Path
) -> None:
    """The heads' table rebuilt with ``name COLLATE NOCASE``: looking up binance-main
    finds Binance-Main first, a validly signed head of another credential."""
    stocked.add(
        "Binance-Main",
        "binance",
        {"api_key": "otherKey0123456789", "secret": "otherSecret0123456789"},
    )
    _, token = stocked.add_client("bot")
    stocked.grant("bot", ["binance-main", "Binance-Main"])
    db = sqlite3.connect(vault_path, isolation_level=None)
    try:
        ((create,),) = db.execute("SELECT sql FROM sqlite_master WHERE name = 'credentials'")
        loose = re.sub(r",\s*UNIQUE \(name\)", "", create).replace(
            "name VARCHAR(128) NOT NULL", "name VARCHAR(128) NOT NULL COLLATE NOCASE"
        )
        db.executescript(
            "PRAGMA foreign_keys = OFF; BEGIN;"
            + loose.replace("CREATE TABLE credentials", "CREATE TABLE loose")
            + "; INSERT INTO loose SELECT * FROM credentials ORDER BY name;"
            " DROP TABLE credentials; ALTER TABLE loose RENAME TO credentials; COMMIT;"
        )
    finally:
        db.close()

    with pytest.raises(IntegrityError):
        vault.load("binance-main", where=vault_path, token=token)
    with pytest.raises(IntegrityError):
        stocked.get("binance-main")
