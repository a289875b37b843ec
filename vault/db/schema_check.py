"""Comparing a live database's schema with the one exvault creates: ``doctor`` and
the checks report every table, column, key, index, trigger or rule that differs (a
trigger could undo a revocation as it is written)."""

from __future__ import annotations

import warnings
from collections.abc import Iterable
from typing import Any

from sqlalchemy import CheckConstraint, UniqueConstraint, inspect
from sqlalchemy.engine import Connection, Dialect
from sqlalchemy.exc import CompileError, SAWarning

from vault.db.tables import POSTGRESQL_METADATA, Base
from vault.errors import printable

# A schema as compared: for each table (None: objects of no table), each object's
# description and its definition ("" when being there is all there is to it).
Schema = dict[str | None, dict[str, str]]


def schema_differences(conn: Connection) -> list[str]:
    """Every difference between the database's schema and the one exvault creates, one
    line each ("index ix_grants_credential_id is missing").

    The live schema is read through SQLAlchemy's inspector; the expected one is
    :data:`Base.metadata` (what ``create_all`` and the migrations make) compiled for
    the same dialect, so a vault at the current schema version compares equal on
    either backend. Compared: tables, column types and NOT NULL, primary keys, unique
    and check constraints, indexes, foreign keys with their ON DELETE actions, views,
    triggers (and PostgreSQL rules). Not compared: what the database makes itself
    (SQLite's ``sqlite_*`` tables and autoindexes, the indexes behind PostgreSQL's
    unique constraints), defaults, collations, privileges.
    """
    expected = declared_schema(conn.dialect)
    with warnings.catch_warnings():
        # A column of a type SQLAlchemy does not know is reported below, not warned of.
        warnings.simplefilter("ignore", SAWarning)
        live = live_schema(conn)
    problems = []
    for table in sorted(expected.keys() - live.keys(), key=str):
        problems.append(f"table {table} is missing")
    for table in sorted(live.keys() - expected.keys(), key=str):
        problems.append(f"unexpected table {table}")
    for table in sorted(expected.keys() & live.keys(), key=str):
        want, got = expected[table], live[table]
        problems += [f"{what} is missing" for what in sorted(want.keys() - got.keys())]
        problems += [
            f"unexpected {what} ({got[what]})" if got[what] else f"unexpected {what}"
            for what in sorted(got.keys() - want.keys())
        ]
        problems += [
            f"{what} is {got[what]} (expected {want[what]})"
            for what in sorted(want.keys() & got.keys())
            if got[what] != want[what]
        ]
    return [printable(p) for p in problems]  # the names are the database's, whoever set them


def declared_schema(dialect: Dialect) -> Schema:
    """The schema :data:`Base.metadata` declares (with :data:`POSTGRESQL_METADATA` and the
    audit trigger on PostgreSQL), as ``dialect`` creates it."""
    schema: Schema = {None: {}}
    tables = list(Base.metadata.sorted_tables)
    if dialect.name == "postgresql":
        tables += POSTGRESQL_METADATA.sorted_tables
        schema[None]["trigger exvault_audit_chain on audit_log"] = ""
    for table in tables:
        name = table.name
        objects = schema[name] = {}
        for column in table.columns:
            objects[f"column {name}.{column.name}"] = _column_text(
                column.type.compile(dialect=dialect), bool(column.nullable)
            )
        objects[f"primary key of {name}"] = _names(c.name for c in table.primary_key.columns)
        for constraint in table.constraints:
            if isinstance(constraint, UniqueConstraint):
                objects[f"unique constraint on {name} {_names(constraint.columns.keys())}"] = ""
            elif isinstance(constraint, CheckConstraint):
                objects[f"check constraint on {name} ({constraint.sqltext})"] = ""
        for index in table.indexes:
            objects[f"index {index.name}"] = _index_text(
                name, [c.name for c in index.columns], index.unique
            )
        for fk in table.foreign_key_constraints:
            what = _foreign_key(
                name, fk.column_keys, fk.referred_table.name, [e.column.name for e in fk.elements]
            )
            objects[what] = _foreign_key_text(
                {
                    "ondelete": fk.ondelete,
                    "onupdate": fk.onupdate,
                    "deferrable": fk.deferrable,
                    "initially": fk.initially,
                }
            )
    return schema


def live_schema(conn: Connection) -> Schema:
    """The schema of the database behind ``conn``, described as :func:`declared_schema`."""
    inspector = inspect(conn)
    schema: Schema = {None: {f"view {view}": "" for view in inspector.get_view_names()}}
    for name in inspector.get_table_names():
        objects = schema[name] = {}
        for column in inspector.get_columns(name):
            try:
                type_text = column["type"].compile(dialect=conn.dialect)
            except CompileError:  # no declared type at all
                type_text = "(no type)"
            objects[f"column {name}.{column['name']}"] = _column_text(type_text, column["nullable"])
        key = inspector.get_pk_constraint(name)["constrained_columns"]
        if key:
            objects[f"primary key of {name}"] = _names(key)
        for unique in inspector.get_unique_constraints(name):
            objects[f"unique constraint on {name} {_names(unique['column_names'])}"] = ""
        for check in inspector.get_check_constraints(name):
            objects[f"check constraint on {name} ({check['sqltext']})"] = ""
        for index in inspector.get_indexes(name):
            if "duplicates_constraint" in index:  # PostgreSQL's index of a unique constraint
                continue
            objects[f"index {index['name']}"] = _index_text(
                name, [str(c) for c in index["column_names"]], bool(index["unique"])
            )
        for fk in inspector.get_foreign_keys(name):
            what = _foreign_key(
                name, fk["constrained_columns"], fk["referred_table"], fk["referred_columns"]
            )
            objects[what] = _foreign_key_text(fk["options"])
    for kind, trigger, table in _triggers(conn):
        schema[None][f"{kind} {trigger} on {table}"] = ""
    return schema


def _triggers(conn: Connection) -> list[tuple[str, str, str]]:
    # The inspector does not list triggers (nor PostgreSQL's rules, which rewrite
    # statements as a trigger would): a trigger could undo a revocation as it is written.
    if conn.dialect.name == "sqlite":
        query = "SELECT 'trigger', name, tbl_name FROM sqlite_master WHERE type = 'trigger'"
    elif conn.dialect.name == "postgresql":
        query = (
            "SELECT 'trigger', t.tgname, c.relname FROM pg_trigger t"
            " JOIN pg_class c ON c.oid = t.tgrelid"
            " WHERE NOT t.tgisinternal AND c.relnamespace = current_schema()::regnamespace"
            " UNION ALL SELECT 'rule', rulename, tablename FROM pg_rules"
            " WHERE schemaname = current_schema()"
        )
    else:
        return []
    return [(kind, name, table) for kind, name, table in conn.exec_driver_sql(query)]


def _names(columns: Iterable[str]) -> str:
    return "(" + ", ".join(columns) + ")"


def _column_text(type_text: str, nullable: bool) -> str:
    return f"{type_text} {'NULL' if nullable else 'NOT NULL'}"


def _index_text(table: str, columns: list[str], unique: bool | None) -> str:
    return f"{'UNIQUE ' if unique else ''}on {table} {_names(columns)}"


def _foreign_key(
    table: str, columns: Iterable[str], referred: str, referred_columns: Iterable[str]
) -> str:
    return f"foreign key {table} {_names(columns)} -> {referred} {_names(referred_columns)}"


def _foreign_key_text(options: dict[str, Any]) -> str:
    text = f"ON DELETE {(options.get('ondelete') or 'NO ACTION').upper()}"
    if (options.get("onupdate") or "NO ACTION").upper() != "NO ACTION":
        text += f" ON UPDATE {options['onupdate'].upper()}"
    if options.get("deferrable"):
        text += " DEFERRABLE"
    if options.get("initially"):
        text += f" INITIALLY {options['initially'].upper()}"
    return text


__all__ = ["Schema", "declared_schema", "live_schema", "schema_differences"]
