"""The SQLAlchemy tables and records are the declaration of vault.format.schema."""

from __future__ import annotations

import typing

import pytest
from sqlalchemy import BigInteger, Integer, LargeBinary, String, Text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Mapped
from sqlalchemy.schema import CreateIndex, CreateTable

from vault.db import tables
from vault.db.tables import POSTGRESQL_METADATA, TABLES, Base
from vault.format import schema

RECORDS = {
    mapper.class_.__table__.name: mapper.class_  # type: ignore[attr-defined]
    for mapper in Base.registry.mappers
}


def test_every_declared_table_is_generated_in_its_backends_metadata() -> None:
    assert set(TABLES) == set(schema.TABLES)
    assert set(Base.metadata.tables) == {
        t.name for t in schema.TABLES.values() if not t.postgresql_only
    }
    assert set(POSTGRESQL_METADATA.tables) == {"exvault_audit_head"}


@pytest.mark.parametrize("name", sorted(schema.TABLES))
def test_generated_columns_are_the_declared_ones(name: str) -> None:
    declared, table = schema.TABLES[name], TABLES[name]
    assert tuple(table.columns.keys()) == declared.column_names
    for column in declared.columns:
        generated = table.c[column.name]
        assert generated.type.python_type is column.python_type
        assert bool(generated.nullable) == column.nullable
        assert generated.primary_key == column.primary_key
    assert {i.name: tuple(c.name for c in i.columns) for i in table.indexes} == {
        i.name: i.columns for i in declared.indexes
    }
    assert len(table.foreign_key_constraints) == len(declared.foreign_keys)


def test_sql_types_follow_the_declared_sizes() -> None:
    heads = TABLES["credentials"]
    assert isinstance(heads.c.id.type, String) and heads.c.id.type.length == 32
    assert isinstance(heads.c.policy.type, Text)
    assert type(heads.c.created_at.type) is BigInteger
    assert type(heads.c.revision.type) is Integer
    assert isinstance(heads.c.signature.type, LargeBinary) and heads.c.signature.type.length == 64
    # The audit log numbers its own entries: no SERIAL on PostgreSQL.
    ddl = str(CreateTable(TABLES["audit_log"]).compile(dialect=postgresql.dialect()))
    assert "seq INTEGER NOT NULL" in ddl
    ddl = str(CreateTable(TABLES["vault_header"]).compile(dialect=postgresql.dialect()))
    assert "id SERIAL NOT NULL" in ddl


def test_index_of_check_s_reads() -> None:
    ddl = str(CreateIndex(tables.AUDIT_READS_INDEX).compile(dialect=sqlite.dialect()))
    assert ddl.strip() == "CREATE INDEX ix_audit_log_reads ON audit_log (action, credential, at)"


@pytest.mark.parametrize("name", sorted(RECORDS))
def test_record_annotations_are_the_declared_columns(name: str) -> None:
    # The records' Mapped annotations exist for mypy only; they must say what the
    # declaration says.
    hints = typing.get_type_hints(RECORDS[name], include_extras=False)
    annotated = {}
    for attribute, hint in hints.items():
        if typing.get_origin(hint) is not Mapped:
            continue
        (inner,) = typing.get_args(hint)
        args = [a for a in typing.get_args(inner) if a is not type(None)]
        annotated[attribute] = (args[0], True) if args else (inner, False)
    assert annotated == {c.name: (c.python_type, c.nullable) for c in schema.TABLES[name].columns}
    assert RECORDS[name].__table__ is TABLES[name]
