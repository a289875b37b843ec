"""The one declaration of the tables, and the plain rows of the client's direct path."""

from __future__ import annotations

import typing

import pytest

from vault.format import schema
from vault.format.audit_entry import AUDIT_COLUMNS, AuditRow
from vault.format.records import _column_types
from vault.format.schema import ROWS, TABLES


def _type_and_nullable(hint: object) -> tuple[type, bool]:
    args = [a for a in typing.get_args(hint) if a is not type(None)]
    if args:  # X | None
        return args[0], True
    assert isinstance(hint, type)
    return hint, False


@pytest.mark.parametrize("table", sorted(ROWS))
def test_row_columns_are_the_tables_columns_in_order(table: str) -> None:
    # The direct path selects these names and builds rows positionally: a column added
    # to a table but not here (or reordered) would shift every value after it.
    assert ROWS[table]._fields == TABLES[table].column_names  # type: ignore[attr-defined]


def test_every_table_a_client_reads_or_the_owner_inserts_has_a_row() -> None:
    assert set(ROWS) == {
        "vault_header",
        "credentials",
        "credential_versions",
        "payloads",
        "dek_wraps",
        "clients",
        "probe_observations",  # a monitor client records and check reads them
        "grants",  # the owner's grant, inserted as a plain row
        "keyslots",  # the owner's keyslots, read and inserted as plain rows
    }


@pytest.mark.parametrize("table", sorted(ROWS))
def test_row_types_are_the_schemas(table: str) -> None:
    # mypy checks the bot's code against these annotations: they must say what the
    # declaration says, which every reader checks values against.
    hints = typing.get_type_hints(ROWS[table])
    annotated = tuple(
        (name, *_type_and_nullable(hints[name]))
        for name in ROWS[table]._fields  # type: ignore[attr-defined]
    )
    assert annotated == _column_types(table)


def test_readers_check_the_declared_types() -> None:
    assert _column_types("audit_log")[0] == ("seq", int, False)
    assert ("credential", str, True) in _column_types("audit_log")
    assert ("signature", bytes, True) in _column_types("keyslots")


def test_every_key_and_constraint_names_declared_columns() -> None:
    for table in TABLES.values():
        names = set(table.column_names)
        assert len(names) == len(table.columns), table.name
        assert table.primary_key, table.name
        for index in table.indexes:
            assert set(index.columns) <= names, index.name
        for fk in table.foreign_keys:
            assert set(fk.columns) <= names, table.name
            assert set(fk.referred_columns) <= set(TABLES[fk.table].column_names)
            assert set(fk.referred_columns) == set(TABLES[fk.table].primary_key)


def test_column_helpers_say_the_python_type() -> None:
    assert schema.time("at") == schema.Column("at", int, wide=True)
    assert schema.text("name", 128, unique=True).python_type is str
    assert schema.blob("body", 48, nullable=True) == schema.Column(
        "body", bytes, nullable=True, length=48
    )
    assert schema.integer("id", primary_key=True).primary_key


def test_an_audit_row_holds_every_column_of_the_audit_log() -> None:
    assert sorted(TABLES["audit_log"].column_names) == sorted(AUDIT_COLUMNS)
    row = AuditRow(*range(len(AUDIT_COLUMNS)))
    assert tuple(row.values()) == AUDIT_COLUMNS
    assert list(row.values().values()) == list(range(len(AUDIT_COLUMNS)))
