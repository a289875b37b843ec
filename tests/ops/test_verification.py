"""``verify``: every row checked, the schema compared with the one exvault creates.

The schema cases run on both backends: on SQLite the tamperer edits the CREATE
statements (``PRAGMA writable_schema``) or runs DDL; on PostgreSQL, DDL.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from tests import postgres
from tests.conftest import PASSPHRASE, db_exec, load_schema2_vault, rewrite_schema
from tests.postgres import READER_GRANTS
from vault.ops.verification import verify
from vault.owner.admin import AdminVault

BACKENDS = ("sqlite", "postgresql")


def problems(admin: AdminVault) -> list[str]:
    return [p.message for p in verify(admin).problems]


def alter(
    location: str, backend: str, sqlite: tuple[str, str, str] | str, postgresql: list[str]
) -> None:
    """Change the schema as a tamperer would: ``sqlite`` is a (table, old, new) edit of a
    CREATE statement, or a statement; ``postgresql`` the statements for that backend."""
    if backend == "postgresql":
        for statement in postgresql:
            db_exec(location, statement)
    elif isinstance(sqlite, tuple):
        rewrite_schema(Path(location), *sqlite)
    else:
        db_exec(location, sqlite)


def test_a_new_vault_has_the_expected_schema(stocked: AdminVault) -> None:
    assert verify(stocked).ok


def test_a_migrated_vault_has_the_expected_schema(vault_path: Path) -> None:
    # A vault made at schema version 1 (the one of version 2 without its index).
    load_schema2_vault(vault_path)
    db_exec(vault_path, "DROP INDEX ix_audit_log_reads")
    db_exec(vault_path, "UPDATE exvault_schema SET schema_version = 1")
    with AdminVault.unlock(vault_path, PASSPHRASE) as admin:  # upgrades to the current one
        assert verify(admin).ok


@pytest.mark.postgresql_only
def test_reader_role_grants_are_not_schema_differences(
    stocked: AdminVault, vault_location: str, backend: str, request: pytest.FixtureRequest
) -> None:
    server = request.getfixturevalue("postgres_server")
    role = "reader_" + vault_location.rsplit("_", 1)[1]
    postgres.create_role(server, role, [g.format(role=role) for g in READER_GRANTS], vault_location)
    assert verify(stocked).ok


def test_dropped_index(stocked: AdminVault, vault_location: str, backend: str) -> None:
    statement = "DROP INDEX ix_grants_credential_id"
    alter(vault_location, backend, statement, [statement])
    assert problems(stocked) == ["schema: index ix_grants_credential_id is missing"]


def test_added_index(stocked: AdminVault, vault_location: str, backend: str) -> None:
    statement = "CREATE UNIQUE INDEX ix_extra ON audit_log (seq, action)"
    alter(vault_location, backend, statement, [statement])
    assert problems(stocked) == [
        "schema: unexpected index ix_extra (UNIQUE on audit_log (seq, action))"
    ]


def test_removed_not_null(stocked: AdminVault, vault_location: str, backend: str) -> None:
    alter(
        vault_location,
        backend,
        ("audit_log", "actor VARCHAR(160) NOT NULL", "actor VARCHAR(160)"),
        ["ALTER TABLE audit_log ALTER COLUMN actor DROP NOT NULL"],
    )
    assert problems(stocked) == [
        "schema: column audit_log.actor is VARCHAR(160) NULL (expected VARCHAR(160) NOT NULL)"
    ]


def test_changed_column_type(stocked: AdminVault, vault_location: str, backend: str) -> None:
    alter(
        vault_location,
        backend,
        ("clients", "name VARCHAR(128) NOT NULL", "name TEXT NOT NULL"),
        ["ALTER TABLE clients ALTER COLUMN name TYPE text"],
    )
    assert problems(stocked) == [
        "schema: column clients.name is TEXT NOT NULL (expected VARCHAR(128) NOT NULL)"
    ]


def test_removed_on_delete_cascade(stocked: AdminVault, vault_location: str, backend: str) -> None:
    alter(
        vault_location,
        backend,
        ("payloads", " ON DELETE CASCADE", ""),
        [
            "ALTER TABLE payloads DROP CONSTRAINT payloads_credential_id_version_fkey",
            "ALTER TABLE payloads ADD FOREIGN KEY (credential_id, version) "
            "REFERENCES credential_versions (credential_id, version)",
        ],
    )
    assert problems(stocked) == [
        "schema: foreign key payloads (credential_id, version) -> credential_versions "
        "(credential_id, version) is ON DELETE NO ACTION (expected ON DELETE CASCADE)"
    ]


def test_removed_foreign_key(stocked: AdminVault, vault_location: str, backend: str) -> None:
    alter(
        vault_location,
        backend,
        ("grants", "FOREIGN KEY(client_id) REFERENCES clients (id) ON DELETE CASCADE, \n\t", ""),
        ["ALTER TABLE grants DROP CONSTRAINT grants_client_id_fkey"],
    )
    assert problems(stocked) == [
        "schema: foreign key grants (client_id) -> clients (id) is missing"
    ]


def test_added_trigger(stocked: AdminVault, vault_location: str, backend: str) -> None:
    """A trigger could, say, put a revoked client's row back as it is revoked."""
    alter(
        vault_location,
        backend,
        "CREATE TRIGGER keep_clients AFTER UPDATE ON clients BEGIN SELECT 1; END",
        [
            "CREATE FUNCTION keep() RETURNS trigger LANGUAGE plpgsql AS 'BEGIN RETURN NEW; END'",
            "CREATE TRIGGER keep_clients AFTER UPDATE ON clients "
            "FOR EACH ROW EXECUTE FUNCTION keep()",
        ],
    )
    assert problems(stocked) == ["schema: unexpected trigger keep_clients on clients"]


@pytest.mark.postgresql_only
def test_added_rule(stocked: AdminVault, vault_location: str, backend: str) -> None:
    db_exec(vault_location, "CREATE RULE keep_clients AS ON UPDATE TO clients DO INSTEAD NOTHING")
    assert problems(stocked) == ["schema: unexpected rule keep_clients on clients"]


def test_dropped_table_is_reported_not_raised(
    stocked: AdminVault, vault_location: str, backend: str
) -> None:
    statement = "DROP TABLE grants"
    alter(vault_location, backend, statement, [statement])
    found = problems(stocked)
    assert found[0] == "schema: table grants is missing"
    assert found[1].startswith("the rows cannot be read: database error:")
    assert len(found) == 2


@pytest.mark.sqlite_only
def test_value_of_another_type_is_one_problem_naming_the_row(
    stocked: AdminVault, vault_path: Path
) -> None:
    db_exec(vault_path, "UPDATE credentials SET created_at = 1.5 WHERE name = 'kucoin-sub1'")
    ((cid,),) = db_exec(vault_path, "SELECT id FROM credentials WHERE name = 'kucoin-sub1'")
    assert problems(stocked) == [
        "wrong type: credentials.created_at holds a real number where an integer is expected "
        f'(row id "{cid}")'
    ]


@pytest.mark.sqlite_only
def test_value_of_another_type_in_the_recovery_keyslot_is_reported(
    stocked: AdminVault, vault_path: Path
) -> None:
    """Only `exvault recover` opens the recovery slot; verify still sees a wrong type."""
    db_exec(vault_path, "UPDATE keyslots SET salt = hex(salt) WHERE kind = 'recovery'")
    (found,) = problems(stocked)
    assert found.startswith("wrong type: keyslots.salt holds text where a blob is expected")


@pytest.mark.sqlite_only
def test_names_from_the_database_are_reported_printable(
    stocked: AdminVault, vault_path: Path
) -> None:
    db_exec(vault_path, 'CREATE TRIGGER "t\x1b[2J" AFTER UPDATE ON clients BEGIN SELECT 1; END')
    assert problems(stocked) == ["schema: unexpected trigger t\\x1b[2J on clients"]


def test_a_revoked_client_put_back_is_reported(stocked: AdminVault, vault_location: str) -> None:
    """Its record from before the revocation verifies on its own; the signed
    ``client-revoke`` entry in the audit log says otherwise."""
    stocked.add_client("bot")
    stocked.grant("bot", ["binance-main"])
    ((signature,),) = db_exec(vault_location, "SELECT signature FROM clients WHERE name = 'bot'")
    stocked.revoke_client("bot")
    assert problems(stocked) == []
    db_exec(
        vault_location,
        "UPDATE clients SET revoked_at = NULL, signature = :sig WHERE name = 'bot'",
        sig=signature,
    )
    (found,) = problems(stocked)
    assert found.startswith('client "bot" was revoked (audit entry ') and "not" in found


@pytest.mark.sqlite_only
def test_a_version_row_beyond_the_heads_counter(stocked: AdminVault, vault_path: Path) -> None:
    """A copy of the vault went on (two edits) while this one made one: the copy's
    version 3 row, validly signed, slipped into this vault, whose head never
    allocated number 3."""
    fork = vault_path.with_name("fork.db")
    source, copy = sqlite3.connect(vault_path), sqlite3.connect(fork)
    source.backup(copy)
    source.close()
    copy.close()
    fork.chmod(0o600)
    with AdminVault.unlock(fork, PASSPHRASE) as other:
        other.edit("binance-main", ips=["203.0.113.8"])
        other.edit("binance-main", ips=["203.0.113.9"])
    stocked.edit("binance-main", ips=["203.0.113.10"])
    where = (
        "version = 3 AND credential_id = (SELECT id FROM credentials WHERE name = 'binance-main')"
    )
    (row,) = db_exec(fork, f"SELECT * FROM credential_versions WHERE {where}")
    holders = ", ".join(f":v{i}" for i in range(len(row)))
    db_exec(
        vault_path,
        f"INSERT INTO credential_versions VALUES ({holders})",
        **{f"v{i}": value for i, value in enumerate(row)},
    )
    assert problems(stocked) == ["version 3 is beyond the head's version counter (2)"]


def test_progress_is_told_after_each_credential(stocked: AdminVault) -> None:
    calls: list[tuple[int, int]] = []
    report = verify(stocked, lambda done, total: calls.append((done, total)))
    assert report.ok
    assert calls == [(n, report.credentials) for n in range(1, report.credentials + 1)]
    assert report.credentials >= 2
