"""Schema versions: a vault made at an older schema opens and is brought up to date."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

import vault
from tests.conftest import (
    BINANCE_SECRET,
    KUCOIN_PASSPHRASE,
    KUCOIN_SECRET,
    PASSPHRASE,
    SCHEMA2_BOT_TOKEN,
    load_schema2_vault,
)
from vault.db import migrations, schema_version
from vault.db.inventory import Inventory
from vault.db.schema_version import SCHEMA_VERSION, SchemaStep
from vault.errors import IntegrityError, UnsupportedFormat
from vault.ops.verification import verify
from vault.owner.admin import AdminVault


def sql(path: Path, statement: str) -> list[tuple[object, ...]]:
    db = sqlite3.connect(path)
    try:
        with db:
            return db.execute(statement).fetchall()
    finally:
        db.close()


def indexes(path: Path) -> set[str]:
    return {r[0] for r in sql(path, "SELECT name FROM sqlite_master WHERE type = 'index'")}  # type: ignore[misc]


@pytest.fixture
def schema_v2(vault_path: Path) -> Path:
    """A vault made by exvault's code at schema version 2 (tests/data)."""
    return load_schema2_vault(vault_path)


@pytest.fixture
def schema_v1(schema_v2: Path) -> Path:
    """That vault as exvault's schema version 1 left it."""
    sql(schema_v2, "DROP INDEX ix_audit_log_reads")
    sql(schema_v2, "UPDATE exvault_schema SET schema_version = 1")
    return schema_v2


def head_columns(path: Path, name: str) -> tuple[object, ...]:
    (row,) = sql(
        path,
        "SELECT revision, version_counter, current_version, pending_version, previous_version,"
        " current_digest IS NULL, pending_digest IS NULL, previous_digest IS NULL, grantees"
        f" FROM credentials WHERE name = '{name}'",
    )
    return row


def test_new_vaults_have_the_current_schema(admin: AdminVault, vault_path: Path) -> None:
    assert sql(vault_path, "SELECT schema_version FROM exvault_schema") == [(SCHEMA_VERSION,)]
    assert "ix_audit_log_reads" in indexes(vault_path)


def test_reader_refuses_a_schema_2_vault_until_the_owner_unlocks(schema_v2: Path) -> None:
    with pytest.raises(UnsupportedFormat, match="once, as the owner"):
        vault.load("binance-main", where=schema_v2, token=SCHEMA2_BOT_TOKEN)
    with pytest.raises(UnsupportedFormat, match="once, as the owner"):
        Inventory.open(schema_v2)
    assert sql(schema_v2, "SELECT schema_version FROM exvault_schema") == [(2,)]


def test_owner_unlock_migrates_a_schema_2_vault(schema_v2: Path) -> None:
    with AdminVault.unlock(schema_v2, PASSPHRASE) as admin:
        assert admin.get("binance-main").secret.reveal() == "S3" + BINANCE_SECRET[2:]
        assert admin.get("binance-main", "previous").secret.reveal() == BINANCE_SECRET
        assert admin.get("kucoin-sub1").passphrase.reveal() == KUCOIN_PASSPHRASE
        assert verify(admin).ok
    assert sql(schema_v2, "SELECT schema_version FROM exvault_schema") == [(SCHEMA_VERSION,)]
    (bot,) = sql(schema_v2, "SELECT id FROM clients WHERE name = 'bot'")
    # Revision 1; the counter is the highest version row; a digest for each labelled
    # stage; the grantees from the verified grants of clients not revoked (not old-bot).
    assert head_columns(schema_v2, "binance-main") == (1, 3, 3, None, 2, 0, 1, 0, bot[0])
    assert head_columns(schema_v2, "kucoin-sub1") == (1, 1, 1, None, None, 0, 1, 1, bot[0])
    with vault.open(schema_v2, token=SCHEMA2_BOT_TOKEN) as client:
        assert client.get("binance-main").secret.reveal() == "S3" + BINANCE_SECRET[2:]
        assert client.get("binance-main", "previous").secret.reveal() == BINANCE_SECRET
        assert client.get("kucoin-sub1").secret.reveal() == KUCOIN_SECRET


def test_schema_6_adds_endpoints_and_observations_keeping_every_signature(
    schema_v2: Path,
) -> None:
    versions = "SELECT credential_id, version, signature FROM credential_versions ORDER BY 1, 2"
    signed_before = sql(schema_v2, versions)
    with AdminVault.unlock(schema_v2, PASSPHRASE) as admin:
        assert verify(admin).ok  # every version's metadata digest is what it was
        assert {i.metadata.endpoint for i in admin.credentials()} == {"live"}
        assert admin.edit("kucoin-sub1", endpoint="testnet").metadata.endpoint == "testnet"
        assert verify(admin).ok
    assert set(signed_before) <= set(sql(schema_v2, versions))  # none re-signed
    assert sql(schema_v2, "SELECT DISTINCT endpoint FROM credential_versions ORDER BY 1") == [
        (None,),
        ("testnet",),
    ]
    assert sql(schema_v2, "SELECT COUNT(*) FROM probe_observations") == [(0,)]


def test_schema_6_run_again_changes_nothing(schema_v2: Path) -> None:
    AdminVault.unlock(schema_v2, PASSPHRASE).close()
    sql(schema_v2, "UPDATE exvault_schema SET schema_version = 5")  # set back by hand
    with AdminVault.unlock(schema_v2, PASSPHRASE) as admin:
        assert verify(admin).ok


def test_the_migration_leaves_a_forged_head_unreadable(schema_v2: Path) -> None:
    # A head edited before the migration must not come out of it signed.
    sql(schema_v2, "UPDATE credentials SET policy = '{}x' WHERE name = 'kucoin-sub1'")
    with AdminVault.unlock(schema_v2, PASSPHRASE) as admin:
        assert admin.get("binance-main").secret.reveal() == "S3" + BINANCE_SECRET[2:]
        with pytest.raises(IntegrityError):
            admin.get("kucoin-sub1")


def test_the_migration_binds_no_labelled_version_that_fails(schema_v2: Path) -> None:
    # A labelled version edited before the migration stays unreadable after it.
    sql(
        schema_v2,
        "UPDATE credential_versions SET permissions = 'read,trade,withdraw'"
        " WHERE version = 2 AND name = 'binance-main'",
    )
    with AdminVault.unlock(schema_v2, PASSPHRASE) as admin:
        assert admin.get("binance-main").secret.reveal() == "S3" + BINANCE_SECRET[2:]
        with pytest.raises(IntegrityError):
            admin.get("binance-main", "previous")


def test_owner_unlock_upgrades_a_schema_1_vault(schema_v1: Path) -> None:
    with AdminVault.unlock(schema_v1, PASSPHRASE) as admin:
        assert admin.get("binance-main", "previous").secret.reveal() == BINANCE_SECRET
    assert sql(schema_v1, "SELECT schema_version FROM exvault_schema") == [(SCHEMA_VERSION,)]
    assert "ix_audit_log_reads" in indexes(schema_v1)


def test_wrong_passphrase_does_not_upgrade(schema_v1: Path) -> None:
    with pytest.raises(IntegrityError):
        AdminVault.unlock(schema_v1, "wrong")
    assert sql(schema_v1, "SELECT schema_version FROM exvault_schema") == [(1,)]


def test_reader_refuses_an_incompatible_older_schema(
    schema_v1: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    breaking = SchemaStep(2, "a change readers cannot live without", readers_compatible=False)
    monkeypatch.setattr(schema_version, "STEPS", (breaking,))
    with pytest.raises(UnsupportedFormat, match="as the owner"):
        Inventory.open(schema_v1)


def test_reader_opens_an_older_compatible_schema_without_changing_it(
    schema_v1: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(schema_version, "STEPS", schema_version.STEPS[:1])
    monkeypatch.setattr(schema_version, "SCHEMA_VERSION", 2)
    # This reader's code reads the endpoint column of schema version 6: give the
    # vault that column, so that only the step under test is missing.
    sql(schema_v1, "ALTER TABLE credential_versions ADD COLUMN endpoint VARCHAR(255)")
    with Inventory.open(schema_v1) as inv:
        assert [i.name for i in inv.credentials()] == ["binance-main", "kucoin-sub1"]
    assert sql(schema_v1, "SELECT schema_version FROM exvault_schema") == [(1,)]


def test_migrations_are_numbered_in_order() -> None:
    versions = [m.to_version for m in schema_version.STEPS]
    assert versions == sorted(versions) and versions[-1] == SCHEMA_VERSION
    assert len(set(versions)) == len(versions)
    assert sorted(migrations.APPLY) == versions  # every step has a way to apply it


@pytest.fixture
def schema_v4(stocked: AdminVault, vault_path: Path) -> Path:
    """The stocked vault as schema version 4 left it: keyslots without signatures."""
    stocked.close()
    sql(vault_path, "ALTER TABLE keyslots DROP COLUMN signature")
    sql(vault_path, "UPDATE exvault_schema SET schema_version = 4")
    return vault_path


def test_owner_unlock_signs_the_keyslots_of_an_older_schema(
    schema_v4: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with monkeypatch.context() as m:  # a reader of schema 5 keeps working, unsigned
        m.setattr(schema_version, "STEPS", schema_version.STEPS[:4])
        m.setattr(schema_version, "SCHEMA_VERSION", 5)
        with Inventory.open(schema_v4) as inv:
            assert inv.status().credentials == 2
    with pytest.raises(UnsupportedFormat, match="as the owner"):  # schema 6's is refused
        Inventory.open(schema_v4)
    with AdminVault.unlock(schema_v4, PASSPHRASE) as admin:
        assert verify(admin).ok
    kinds = sql(schema_v4, "SELECT kind FROM keyslots WHERE signature IS NOT NULL")
    assert sorted(kinds) == [("passphrase",), ("recovery",)]
    AdminVault.unlock(schema_v4, PASSPHRASE).close()  # and the signature checks out


def test_recovery_unlock_signs_the_keyslots_of_an_older_schema(
    schema_v4: Path, created: tuple[AdminVault, str]
) -> None:
    with AdminVault.unlock_with_recovery_key(schema_v4, created[1]) as admin:
        assert verify(admin).ok
    assert sql(schema_v4, "SELECT count(*) FROM keyslots WHERE signature IS NULL") == [(0,)]


@pytest.mark.parametrize("version", [1, 2, 3, 4])
def test_a_schema_version_set_back_by_hand_is_moved_up_again(
    stocked: AdminVault, vault_path: Path, version: int
) -> None:
    """The schema version row is not authenticated: set back on a current vault, the
    owner's unlock re-runs the later steps, each of which finds its work done."""
    stocked.edit("binance-main", permissions="read")  # a head past revision 1
    before = stocked.get("binance-main").secret.reveal()
    stocked.close()
    sql(vault_path, f"UPDATE exvault_schema SET schema_version = {version}")
    with AdminVault.unlock(vault_path, PASSPHRASE) as admin:
        assert admin.get("binance-main").secret.reveal() == before
        assert verify(admin).ok
    assert sql(vault_path, "SELECT schema_version FROM exvault_schema") == [(SCHEMA_VERSION,)]


def test_a_schema_version_set_back_does_not_revive_an_old_head(
    schema_v2: Path, vault_path: Path
) -> None:
    """A head of the schema-2 era (signed under the old kind), with its rows, kept by
    someone who can write the database and put back once the owner has rotated the key
    away, together with a schema version set back to 2: the owner's unlock must not
    re-sign it as current."""
    db = sqlite3.connect(vault_path)
    saved = {}
    for table in ("credentials", "credential_versions", "payloads", "dek_wraps"):
        cursor = db.execute(f"SELECT * FROM {table}")
        saved[table] = ([d[0] for d in cursor.description], cursor.fetchall())
    db.close()
    with AdminVault.unlock(vault_path, PASSPHRASE) as admin:
        admin.edit("binance-main", payload={"api_key": "n" * 64, "secret": "m" * 64})
    db = sqlite3.connect(vault_path)
    with db:
        for table, (columns, rows) in saved.items():
            for row in rows:
                names, marks = ", ".join(columns), ", ".join("?" * len(row))
                db.execute(f"INSERT OR REPLACE INTO {table} ({names}) VALUES ({marks})", row)
        db.execute("UPDATE exvault_schema SET schema_version = 2")
    db.close()
    with AdminVault.unlock(vault_path, PASSPHRASE) as admin:
        with pytest.raises(IntegrityError):
            admin.get("binance-main")
        assert not verify(admin).ok
