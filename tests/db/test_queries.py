"""The statements of vault.db.queries and their standard-library executor."""

from __future__ import annotations

import sqlite3

import pytest

from vault.db import queries
from vault.format.schema import HeadRow, PayloadRow, VersionRow, WrapRow


def _audit_table(connection: sqlite3.Connection) -> None:
    connection.execute("CREATE TABLE audit_log (seq INTEGER, entry_hash BLOB)")


def test_begin_sqlite_says_immediate_only_for_a_write() -> None:
    ran: list[str] = []
    queries.begin_sqlite(ran.append, write=True)
    queries.begin_sqlite(ran.append, write=False)
    assert ran == ["BEGIN IMMEDIATE", "BEGIN"]


def test_sqlite_write_commits_on_normal_exit_and_rolls_back_on_error() -> None:
    connection = sqlite3.connect(":memory:", isolation_level=None)
    _audit_table(connection)
    with queries.sqlite_write(connection) as execute:
        assert connection.in_transaction
        execute("INSERT INTO audit_log VALUES (:seq, :h)", {"seq": 1, "h": b"a"})
    assert not connection.in_transaction
    with pytest.raises(RuntimeError), queries.sqlite_write(connection) as execute:
        execute("INSERT INTO audit_log VALUES (:seq, :h)", {"seq": 2, "h": b"b"})
        raise RuntimeError
    assert not connection.in_transaction
    assert queries.sqlite_executor(connection)("SELECT seq FROM audit_log", {}) == [(1,)]


def test_last_audit_entry_of_the_table() -> None:
    connection = sqlite3.connect(":memory:", isolation_level=None)
    _audit_table(connection)
    execute = queries.sqlite_executor(connection)
    assert queries.last_audit_entry(execute, head_row=False) is None
    execute("INSERT INTO audit_log VALUES (1, x'01'), (2, x'02')", {})
    assert queries.last_audit_entry(execute, head_row=False) == (2, b"\x02")


def test_split_stage_row_cuts_at_each_rows_width_and_drops_absent_rows() -> None:
    widths = [len(r._fields) for r in (HeadRow, VersionRow, PayloadRow, WrapRow)]
    values = list(range(sum(widths)))
    values[0] = "head-id"
    head, version, payload, wrap = queries.split_stage_row(values)
    assert head == HeadRow._make(values[: widths[0]])
    assert version is not None and version.credential_id == widths[0]
    assert payload is not None and wrap is not None and wrap.body == values[-1]
    absent = values[: widths[0]] + [None] * sum(widths[1:])
    assert queries.split_stage_row(absent)[1:] == (None, None, None)


def test_statements_name_the_declared_columns() -> None:
    assert queries.CLIENT_SQL.startswith("SELECT c.id, c.name, c.encryption_public")
    assert "h.pending_version" in queries.STAGE_SQL["pending"]
    assert queries.AUDIT_APPEND_FUNCTION.startswith("exvault_audit_append(integer, bigint, ")
    assert "CAST(:seq AS integer)" in queries.AUDIT_APPEND_SQL
