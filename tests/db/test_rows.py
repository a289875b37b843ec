"""The plain rows of the client's direct path carry exactly the tables' columns."""

from __future__ import annotations

import pytest

from vault.db.rows import TABLES
from vault.db.tables import Base


@pytest.mark.parametrize("table", sorted(TABLES))
def test_row_columns_are_the_tables_columns_in_order(table: str) -> None:
    # The direct path selects these names and builds rows positionally: a column added
    # to a table but not here (or reordered) would shift every value after it.
    assert TABLES[table]._fields == tuple(Base.metadata.tables[table].columns.keys())  # type: ignore[attr-defined]


def test_every_table_a_client_reads_has_a_row() -> None:
    assert set(TABLES) == {
        "vault_header",
        "credentials",
        "credential_versions",
        "payloads",
        "dek_wraps",
        "clients",
    }


@pytest.mark.parametrize("table", sorted(TABLES))
def test_row_types_are_the_schemas(table: str) -> None:
    # A client checks the value types of what it reads against these annotations
    # (vault.format.records.type_damage): they must say what the schema says.
    from vault.format.records import _column_types

    declared = tuple(
        (c.key, c.type.python_type, bool(c.nullable)) for c in Base.metadata.tables[table].columns
    )
    assert _column_types(table) == declared
