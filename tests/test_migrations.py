"""Schema versions: a vault made at an older schema opens and is brought up to date."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from tests.conftest import BINANCE_SECRET, PASSPHRASE
from vault import migrations
from vault.admin import AdminVault
from vault.errors import UnsupportedFormat
from vault.inventory import Inventory
from vault.migrations import Migration
from vault.store import SCHEMA_VERSION
from vault.verification import verify


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
def schema_v1(stocked: AdminVault, vault_path: Path) -> Path:
    """The stocked vault as exvault's schema version 1 left it."""
    stocked.close()
    sql(vault_path, "DROP INDEX ix_audit_log_reads")
    sql(vault_path, "ALTER TABLE keyslots DROP COLUMN signature")
    sql(vault_path, "UPDATE exvault_schema SET schema_version = 1")
    return vault_path


def test_new_vaults_have_the_current_schema(admin: AdminVault, vault_path: Path) -> None:
    assert sql(vault_path, "SELECT schema_version FROM exvault_schema") == [(SCHEMA_VERSION,)]
    assert "ix_audit_log_reads" in indexes(vault_path)


def test_reader_opens_an_older_compatible_schema_without_changing_it(schema_v1: Path) -> None:
    with Inventory.open(schema_v1) as inv:
        assert [i.name for i in inv.credentials()] == ["binance-main", "kucoin-sub1"]
    assert sql(schema_v1, "SELECT schema_version FROM exvault_schema") == [(1,)]


def test_owner_unlock_upgrades_the_schema(schema_v1: Path) -> None:
    with AdminVault.unlock(schema_v1, PASSPHRASE) as admin:
        assert admin.get("binance-main").secret.reveal() == BINANCE_SECRET
    assert sql(schema_v1, "SELECT schema_version FROM exvault_schema") == [(SCHEMA_VERSION,)]
    assert "ix_audit_log_reads" in indexes(schema_v1)


def test_wrong_passphrase_does_not_upgrade(schema_v1: Path) -> None:
    from vault.errors import IntegrityError

    with pytest.raises(IntegrityError):
        AdminVault.unlock(schema_v1, "wrong")
    assert sql(schema_v1, "SELECT schema_version FROM exvault_schema") == [(1,)]


def test_reader_refuses_an_incompatible_older_schema(
    schema_v1: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    breaking = Migration(2, "a change readers cannot live without", False, lambda conn: None)
    monkeypatch.setattr(migrations, "MIGRATIONS", (breaking,))
    with pytest.raises(UnsupportedFormat, match="as the owner"):
        Inventory.open(schema_v1)


def test_migrations_are_numbered_in_order() -> None:
    versions = [m.to_version for m in migrations.MIGRATIONS]
    assert versions == sorted(versions) and versions[-1] == SCHEMA_VERSION
    assert len(set(versions)) == len(versions)


def test_owner_unlock_signs_the_keyslots_of_an_older_schema(schema_v1: Path) -> None:
    with Inventory.open(schema_v1) as inv:  # a reader keeps working, unsigned
        assert inv.status().credentials == 2
    with AdminVault.unlock(schema_v1, PASSPHRASE) as admin:
        assert verify(admin).ok
    kinds = sql(schema_v1, "SELECT kind FROM keyslots WHERE signature IS NOT NULL")
    assert sorted(kinds) == [("passphrase",), ("recovery",)]
    AdminVault.unlock(schema_v1, PASSPHRASE).close()  # and the signature checks out


def test_recovery_unlock_signs_the_keyslots_of_an_older_schema(
    schema_v1: Path, created: tuple[AdminVault, str]
) -> None:
    with AdminVault.unlock_with_recovery_key(schema_v1, created[1]) as admin:
        assert verify(admin).ok
    assert sql(schema_v1, "SELECT count(*) FROM keyslots WHERE signature IS NULL") == [(0,)]
