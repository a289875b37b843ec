"""SQLite storage: file modes, connection settings, locking, secure deletion."""

from __future__ import annotations

import os
import re
import sqlite3
import stat
from pathlib import Path

import pytest
from sqlalchemy import create_engine
from sqlalchemy.engine import make_url

from tests.conftest import BINANCE_API_KEY, BINANCE_SECRET, PASSPHRASE, TEST_KDF
from vault.db.backends import open_store
from vault.db.schema_check import declared_schema, live_schema, schema_differences
from vault.db.schema_version import SCHEMA_VERSION
from vault.db.store import EngineStore, make_engine
from vault.db.tables import Base
from vault.db.url import describe_location, hide_password, sqlite_url
from vault.errors import (
    AccessDenied,
    AlreadyExists,
    IntegrityError,
    InvalidInput,
    UnsupportedFormat,
    VaultUnavailable,
)
from vault.owner.admin import AdminVault


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_file_and_directory_modes_ignore_a_permissive_umask(vault_path: Path) -> None:
    old = os.umask(0o022)
    try:
        admin, _ = AdminVault.create(vault_path, PASSPHRASE, kdf=TEST_KDF, insecure_test_kdf=True)
        with admin:
            admin.add("a", "binance", {"api_key": "k" * 20, "secret": "s" * 32})
            wal = vault_path.with_name(vault_path.name + "-wal")
            assert wal.exists()
            assert mode(wal) == 0o600
    finally:
        os.umask(old)
    assert mode(vault_path.parent) == 0o700
    assert mode(vault_path) == 0o600


def test_create_refuses_an_existing_file(vault_path: Path) -> None:
    vault_path.parent.mkdir()
    vault_path.write_bytes(b"precious")
    with pytest.raises(AlreadyExists):
        AdminVault.create(vault_path, PASSPHRASE, kdf=TEST_KDF, insecure_test_kdf=True)
    assert vault_path.read_bytes() == b"precious"


def test_connection_settings(admin: AdminVault) -> None:
    with admin.store.read() as transaction:
        pragma = lambda name: transaction.execute(f"PRAGMA {name}")[0][0]  # noqa: E731
        assert pragma("journal_mode") == "wal"
        assert pragma("synchronous") == 2  # FULL
        assert pragma("secure_delete") == 1
        assert pragma("foreign_keys") == 1
        assert pragma("busy_timeout") >= 10_000


def test_write_transactions_begin_immediate(admin: AdminVault, vault_path: Path) -> None:
    other = sqlite3.connect(vault_path, timeout=0, isolation_level=None)
    try:
        # Our write transaction holds the write lock before it wrote anything.
        with admin.store.write(), pytest.raises(sqlite3.OperationalError, match="locked"):
            other.execute("BEGIN IMMEDIATE")
        other.execute("BEGIN IMMEDIATE")
        other.execute("ROLLBACK")
    finally:
        other.close()


def test_open_missing_vault(tmp_path: Path) -> None:
    with pytest.raises(VaultUnavailable, match="exvault init"):
        open_store(tmp_path / "nothing.db")
    assert not (tmp_path / "nothing.db").exists()


def test_open_missing_vault_escapes_the_path(tmp_path: Path) -> None:
    """Paths are no secret, so shown whole, but a control character in one is escaped:
    it would break the error line or drive the terminal."""
    path = tmp_path / "no\rvault\x1b[2J.db"
    with pytest.raises(VaultUnavailable) as info:
        open_store(path)
    assert str(info.value) == (
        f"no vault at {tmp_path}/no\\rvault\\x1b[2J.db; create one with: exvault init"
    )


def test_cannot_access_escapes_the_path(tmp_path: Path) -> None:
    path = tmp_path / ("x\n" + "y" * 300) / "vault.db"  # a name longer than NAME_MAX
    with pytest.raises(AccessDenied) as info:
        open_store(path)
    assert str(info.value).startswith(f"cannot access {tmp_path}/x\\nyyyy")
    assert "y" * 300 in str(info.value)  # whole: a path is no secret


def test_create_escapes_the_path(tmp_path: Path) -> None:
    path = tmp_path / "v\r.db"
    path.write_bytes(b"")
    with pytest.raises(AlreadyExists, match=r"a file exists at .*/v\\r\.db;"):
        EngineStore.create(sqlite_url(path), lambda transaction: None)


@pytest.mark.parametrize("url", ["sqlite://0", "sqlite://host/v.db"])
def test_url_the_dialect_refuses(url: str) -> None:
    """create_engine raised ArgumentError for these, which escaped as an internal error."""
    with pytest.raises(InvalidInput, match=f'^malformed database URL "{re.escape(url)}"'):
        make_engine(url)


def test_url_of_no_installed_driver() -> None:
    with pytest.raises(InvalidInput, match=r'^no database driver for "nosuchdb" URLs'):
        make_engine("nosuchdb://h/db")


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("postgresql://bob:pw@db/v", "postgresql://***@db/v"),
        ("postgresql://bob@db/v", "postgresql://***@db/v"),
        ("postgresql://db/v", "postgresql://db/v"),
        ("x://a:b@c@d/e", "x://***@d/e"),
        ("/srv/me@host/vault.db", "/srv/me@host/vault.db"),  # a path, no URL
        ("postgresql://db:x/v?password=pw&sslmode=off", "postgresql://db:x/v?***"),
    ],
)
def test_hide_password(text: str, shown: str) -> None:
    assert hide_password(text) == shown


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("postgresql+psycopg://bob:pw@db/v", "postgresql+psycopg://bob:***@db/v"),
        (
            "postgresql+psycopg://bob@db/v?password=pw&sslmode=off",
            "postgresql+psycopg://bob@db/v?***",
        ),
        ("postgresql+psycopg://db/v", "postgresql+psycopg://db/v"),
        ("sqlite:////srv/vault.db", "/srv/vault.db"),
    ],
)
def test_describe_location_hides_passwords(text: str, shown: str) -> None:
    assert describe_location(make_url(text)) == shown


def test_open_garbage_file(tmp_path: Path) -> None:
    path = tmp_path / "garbage.db"
    path.write_bytes(os.urandom(8192))
    with pytest.raises(IntegrityError, match="damaged vault"):
        open_store(path)


def test_open_other_sqlite_database(tmp_path: Path) -> None:
    path = tmp_path / "other.db"
    sqlite3.connect(path).execute("CREATE TABLE t (x)").connection.close()
    with pytest.raises(VaultUnavailable):
        open_store(path)


def test_open_newer_schema_refused(admin: AdminVault, vault_path: Path) -> None:
    with sqlite3.connect(vault_path) as db:
        db.execute("UPDATE exvault_schema SET schema_version = ?", (SCHEMA_VERSION + 1,))
    with pytest.raises(UnsupportedFormat, match="newer"):
        open_store(vault_path)


def test_open_schema_version_of_another_type_refused(admin: AdminVault, vault_path: Path) -> None:
    with sqlite3.connect(vault_path) as db:
        db.execute("UPDATE exvault_schema SET schema_version = 'two'")
    with pytest.raises(IntegrityError, match="schema_version is not an integer"):
        open_store(vault_path)


def test_declared_schema_is_what_create_all_makes() -> None:
    """The expectation verify compares with is the schema exvault creates, read back
    the way a live vault's is (here: a new in-memory SQLite database)."""
    engine = create_engine("sqlite://")
    try:
        Base.metadata.create_all(engine)
        with engine.connect() as conn:
            assert live_schema(conn) == declared_schema(conn.dialect)
            assert schema_differences(conn) == []
    finally:
        engine.dispose()


def _disk_bytes(vault_path: Path) -> bytes:
    out = b""
    for suffix in ("", "-wal", "-journal", "-shm"):
        p = vault_path.with_name(vault_path.name + suffix)
        if p.exists():
            out += p.read_bytes()
    return out


def _ciphertexts(vault_path: Path, name: str) -> list[bytes]:
    db = sqlite3.connect(vault_path)
    try:
        (cid,) = db.execute("SELECT id FROM credentials WHERE name = ?", (name,)).fetchone()
        blobs = [
            r[0]
            for r in db.execute("SELECT ciphertext FROM payloads WHERE credential_id = ?", (cid,))
        ]
        blobs += [
            r[0] for r in db.execute("SELECT body FROM dek_wraps WHERE credential_id = ?", (cid,))
        ]
        blobs += [
            r[0]
            for r in db.execute(
                "SELECT ephemeral_public FROM dek_wraps WHERE credential_id = ?", (cid,)
            )
        ]
    finally:
        db.close()
    return blobs


def test_plaintext_never_reaches_the_disk(stocked: AdminVault, vault_path: Path) -> None:
    disk = _disk_bytes(vault_path)
    assert BINANCE_SECRET.encode() not in disk
    assert BINANCE_API_KEY.encode() not in disk


def test_removed_credential_leaves_no_ciphertext_on_disk(
    stocked: AdminVault, vault_path: Path
) -> None:
    blobs = _ciphertexts(vault_path, "binance-main")
    assert len(blobs) == 3
    assert all(b in _disk_bytes(vault_path) for b in blobs)  # the search can find them
    stocked.remove("binance-main")
    disk = _disk_bytes(vault_path)
    for blob in blobs:
        assert blob not in disk
    wal = vault_path.with_name(vault_path.name + "-wal")
    assert not wal.exists() or wal.stat().st_size == 0


def test_retired_version_leaves_no_ciphertext_on_disk(
    stocked: AdminVault, vault_path: Path
) -> None:
    blobs = _ciphertexts(vault_path, "binance-main")
    stocked.edit("binance-main", permissions="read")
    disk = _disk_bytes(vault_path)
    for blob in blobs:
        assert blob not in disk
    assert stocked.get("binance-main").secret.reveal() == BINANCE_SECRET


def test_sqlalchemys_errors_carry_no_bound_values(admin: AdminVault) -> None:
    from sqlalchemy import text

    from vault.db.store import StoreError, orm_session

    with pytest.raises(StoreError) as info, admin.store.write() as transaction:
        orm_session(transaction).execute(
            text("INSERT INTO no_such_table VALUES (:v)"), {"v": "SENSITIVE-VALUE"}
        )
    assert "SENSITIVE-VALUE" not in str(info.value)
    assert "\n" not in str(info.value)


def test_a_statements_errors_are_translated_without_values(admin: AdminVault) -> None:
    from vault.db.store import StoreError

    with pytest.raises(StoreError) as info, admin.store.write() as transaction:
        transaction.execute("INSERT INTO no_such_table VALUES (:v)", {"v": "SENSITIVE-VALUE"})
    assert "no such table" in str(info.value)
    assert "SENSITIVE-VALUE" not in str(info.value)
    assert "\n" not in str(info.value)


def test_a_statement_sees_the_orm_sessions_pending_changes(stocked: AdminVault) -> None:
    from sqlalchemy import select

    from vault.db import queries
    from vault.db.store import orm_session
    from vault.db.tables import CredentialRecord

    class Abort(Exception):
        pass

    with pytest.raises(Abort), stocked.store.write() as transaction:
        session = orm_session(transaction)
        head = session.scalars(
            select(CredentialRecord).where(CredentialRecord.name == "binance-main")
        ).one()
        head.name = "renamed"  # not flushed yet
        execute = transaction.execute
        assert execute(queries.CREDENTIAL_NAMED_SQL, {"name": "renamed"}) == [(head.id,)]
        assert execute(queries.CREDENTIAL_NAMED_SQL, {"name": "binance-main"}) == []
        raise Abort  # rolled back: nothing renamed
    assert "binance-main" in stocked.names()
