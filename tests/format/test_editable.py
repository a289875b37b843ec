"""The owner's editable rows hold exactly their plain rows' columns, in order."""

from __future__ import annotations

import pytest

from vault.format import schema
from vault.format.editable import EDITABLE, EditableClient, EditableHead, EditableHeader


@pytest.mark.parametrize("table", sorted(EDITABLE))
def test_an_editable_row_has_its_tables_columns_in_order(table: str) -> None:
    editable, row = EDITABLE[table]
    assert tuple(editable.__dataclass_fields__) == schema.TABLES[table].column_names
    assert row._fields == schema.TABLES[table].column_names  # type: ignore[attr-defined]


def test_a_head_goes_to_its_editable_form_and_back() -> None:
    row = schema.HeadRow(
        "a" * 32,
        "n",
        1,
        2,
        1,
        None,
        None,
        None,
        None,
        "{}",
        None,
        None,
        b"s" * 64,
        1,
        1,
        b"d" * 32,
        None,
        None,
        "",
    )
    head = EditableHead.of(row)
    head.pending_version = 2
    assert head.row() == row._replace(pending_version=2)
    assert head.values()["pending_version"] == 2
    assert list(head.values()) == list(row._fields)


def test_a_client_and_a_header_go_to_their_editable_forms_and_back() -> None:
    client = schema.ClientRow("c" * 32, "bot", b"e" * 32, b"v" * 32, 1, None, "read", None, b"s")
    assert EditableClient.of(client).row() == client
    header = schema.HeaderRow(1, 1, b"i" * 16, 1, b"e" * 32, b"v" * 32, b"s" * 64)
    assert EditableHeader.of(header).row() == header
    assert EditableHeader.of(header).values()["vault_id"] == b"i" * 16
