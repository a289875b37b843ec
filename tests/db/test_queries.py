"""The statements of vault.db.queries and their standard-library executor."""

from __future__ import annotations

import sqlite3

import pytest

from vault.db import queries
from vault.format.audit_entry import AUDIT_COLUMNS
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


def test_insert_sql_names_each_column_once_as_a_parameter() -> None:
    assert queries.insert_sql("t", ("a", "b")) == "INSERT INTO t (a, b) VALUES (:a, :b)"
    # The audit append is the same statement, not a second copy of it.
    assert queries.insert_sql("audit_log", AUDIT_COLUMNS) == queries.INSERT_AUDIT_SQL


def _version_tables(connection: sqlite3.Connection) -> None:
    for table in ("payloads", "dek_wraps"):
        connection.execute(f"CREATE TABLE {table} (credential_id TEXT, version INTEGER)")
        connection.executemany(f"INSERT INTO {table} VALUES (?, ?)", [("a", 1), ("a", 2), ("b", 1)])


def test_retire_version_deletes_only_that_versions_ciphertext_and_wraps() -> None:
    connection = sqlite3.connect(":memory:", isolation_level=None)
    _version_tables(connection)
    execute = queries.sqlite_executor(connection)
    for sql in queries.RETIRE_VERSION_SQL:
        execute(sql, {"id": "a", "version": 1})
    for table in ("payloads", "dek_wraps"):
        left = execute(f"SELECT credential_id, version FROM {table} ORDER BY 1, 2", {})
        assert left == [("a", 2), ("b", 1)]


def test_sqlite_executor_many_runs_once_per_parameter_set() -> None:
    connection = sqlite3.connect(":memory:", isolation_level=None)
    _audit_table(connection)
    queries.sqlite_executor_many(connection)(
        queries.insert_sql("audit_log", ("seq", "entry_hash")),
        [{"seq": 1, "entry_hash": b"a"}, {"seq": 2, "entry_hash": b"b"}],
    )
    assert queries.last_audit_entry(queries.sqlite_executor(connection), head_row=False) == (
        2,
        b"b",
    )


def test_iterate_yields_every_row_in_order_across_fetches_then_closes_its_cursor() -> None:
    from vault.db.sqlite_store import SqliteTransaction

    connection = sqlite3.connect(":memory:", isolation_level=None)
    connection.execute("CREATE TABLE t (n INTEGER)")
    connection.executemany("INSERT INTO t VALUES (:n)", [{"n": n} for n in range(2500)])
    transaction = SqliteTransaction(connection)
    rows = transaction.iterate("SELECT n FROM t WHERE n >= :low ORDER BY n", {"low": 1})
    assert [n for (n,) in rows] == list(range(1, 2500))  # three fetches of up to 1,000
    stopped = transaction.iterate("SELECT n FROM t ORDER BY n")
    assert next(stopped) == (0,)
    stopped.close()  # a reader that stops early leaves no statement open
    assert not connection.in_transaction
    connection.execute("DROP TABLE t")  # refused while a statement still reads it
