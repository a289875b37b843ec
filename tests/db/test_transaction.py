"""One suite for every store: a vault file through sqlite3 (``SqliteStore``), the same
file through SQLAlchemy (``EngineStore``, as a new vault and a migration see it), and
PostgreSQL. Each store must give the same transactions."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Integer, String, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from vault.db.sqlite_store import SqliteStore
from vault.db.store import EngineStore, orm_session
from vault.db.transaction import Store, Transaction
from vault.db.url import sqlite_url
from vault.errors import (
    Conflict,
    IntegrityError,
    UnsupportedFormat,
    VaultError,
    VaultUnavailable,
)

KINDS = ("sqlite3", "sqlalchemy-sqlite", "postgresql")


def _no_rows(_: Transaction) -> None:
    pass


class _Base(DeclarativeBase):
    pass


class _Scratch(_Base):
    """The scratch table as an ORM class (what ``orm_session``'s users hold)."""

    __tablename__ = "scratch"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    v: Mapped[str] = mapped_column(String)


@pytest.fixture(params=KINDS)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    kind = request.param
    if kind == "postgresql":
        from tests import postgres

        with postgres.database(request.getfixturevalue("postgres_server")) as url:
            made = EngineStore.create(url, _no_rows)
            try:
                yield from _with_scratch(made)
            finally:
                made.dispose()
        return
    path = tmp_path / "v" / "vault.db"
    made = EngineStore.create(sqlite_url(path), _no_rows)
    if kind == "sqlite3":
        made.dispose()
        made = SqliteStore.open(path)  # type: ignore[assignment]
    try:
        yield from _with_scratch(made)
    finally:
        made.dispose()


def _with_scratch(store: Store) -> Iterator[Store]:
    with store.write() as tx:
        tx.execute("CREATE TABLE scratch (id INTEGER PRIMARY KEY, v TEXT)")
    yield store


@pytest.fixture
def file_store(tmp_path: Path) -> Iterator[SqliteStore]:
    """A vault file through sqlite3 alone, with the scratch table (for what only that
    store does)."""
    path = tmp_path / "v" / "vault.db"
    EngineStore.create(sqlite_url(path), _no_rows).dispose()
    store = SqliteStore.open(path)
    try:
        yield from _with_scratch(store)  # type: ignore[misc]
    finally:
        store.dispose()


def _values(store: Store) -> list[str]:
    with store.read() as tx:
        return [row[0] for row in tx.execute("SELECT v FROM scratch ORDER BY id")]


def test_a_write_is_committed_when_its_block_ends(store: Store) -> None:
    with store.write() as tx:
        tx.execute("INSERT INTO scratch (id, v) VALUES (:id, :v)", {"id": 1, "v": "a"})
        assert tx.execute("SELECT v FROM scratch") == [("a",)]
    assert _values(store) == ["a"]


def test_a_write_that_raises_leaves_nothing(store: Store) -> None:
    with pytest.raises(KeyError), store.write() as tx:
        tx.execute("INSERT INTO scratch (id, v) VALUES (1, 'a')")
        raise KeyError("stop")
    assert _values(store) == []


def test_a_savepoint_undoes_only_its_own_block(store: Store) -> None:
    with store.write() as tx:
        tx.execute("INSERT INTO scratch (id, v) VALUES (1, 'kept')")
        with pytest.raises(KeyError), tx.savepoint():
            tx.execute("INSERT INTO scratch (id, v) VALUES (2, 'undone')")
            raise KeyError("stop")
        with tx.savepoint():
            tx.execute("INSERT INTO scratch (id, v) VALUES (3, 'also kept')")
    assert _values(store) == ["kept", "also kept"]


def test_execute_many_and_iterate_go_past_one_fetch(store: Store) -> None:
    with store.write() as tx:
        tx.execute_many(
            "INSERT INTO scratch (id, v) VALUES (:id, :v)",
            [{"id": i, "v": str(i)} for i in range(2_500)],
        )
    with store.read() as tx:
        values = [row[0] for row in tx.iterate("SELECT v FROM scratch ORDER BY id")]
    assert values == [str(i) for i in range(2_500)]


def test_a_read_begun_inside_a_write_does_not_see_it(store: Store) -> None:
    with store.write() as tx:
        tx.execute("INSERT INTO scratch (id, v) VALUES (1, 'a')")
        assert _values(store) == []
    assert _values(store) == ["a"]


def test_dispose_inside_a_transaction_lets_it_finish(store: Store) -> None:
    # As SQLAlchemy's pool does: a connection in a transaction is closed once it ends
    # (``share`` disposes of the store's connections, perhaps inside a batch).
    with store.write() as tx:
        tx.execute("INSERT INTO scratch (id, v) VALUES (1, 'a')")
        store.dispose()
        tx.execute("INSERT INTO scratch (id, v) VALUES (2, 'b')")
    assert _values(store) == ["a", "b"]
    with store.write() as tx:
        tx.execute("INSERT INTO scratch (id, v) VALUES (3, 'c')")
    assert _values(store) == ["a", "b", "c"]


def test_a_failing_statement_is_an_error_without_its_text(store: Store) -> None:
    # A duplicate key: another writer's doing, as the stores read the drivers' words.
    with pytest.raises(Conflict) as caught, store.write() as tx:
        tx.execute("INSERT INTO scratch (id, v) VALUES (1, 'x')")
        tx.execute("INSERT INTO scratch (id, v) VALUES (1, :secret)", {"secret": "s3cr3t"})
    assert "s3cr3t" not in str(caught.value)
    assert "INSERT" not in str(caught.value)
    assert _values(store) == []


def test_the_orm_session_shares_the_transaction(store: Store) -> None:
    with store.write() as tx:
        tx.execute("INSERT INTO scratch (id, v) VALUES (1, 'statement')")
        session = orm_session(tx)
        assert session.execute(text("SELECT count(*) FROM scratch")).scalar() == 1
        session.execute(text("INSERT INTO scratch (id, v) VALUES (2, 'orm')"))
        assert len(tx.execute("SELECT v FROM scratch")) == 2
    assert _values(store) == ["statement", "orm"]
    with pytest.raises(KeyError), store.write() as tx:
        orm_session(tx).execute(text("INSERT INTO scratch (id, v) VALUES (3, 'undone')"))
        raise KeyError("stop")
    assert _values(store) == ["statement", "orm"]


def test_a_savepoint_undoes_the_orm_sessions_changes_in_its_block(store: Store) -> None:
    with store.write() as tx:
        session = orm_session(tx)
        kept = _Scratch(id=1, v="kept")
        session.add(kept)
        with pytest.raises(KeyError), tx.savepoint():
            session.add(_Scratch(id=2, v="undone"))
            kept.v = "changed"
            raise KeyError("stop")
        tx.execute("INSERT INTO scratch (id, v) VALUES (3, 'after')")
    assert _values(store) == ["kept", "after"]


def test_an_orm_session_kept_past_its_transaction_writes_nothing(file_store: SqliteStore) -> None:
    # Its transaction's connection goes back to the store, outside any transaction:
    # a statement through the old session would be committed there and then, with no
    # write lock, or join another transaction of the store.
    with file_store.write() as tx:
        session = orm_session(tx)
    with pytest.raises(DBAPIError):
        session.execute(text("INSERT INTO scratch (id, v) VALUES (1, 'stale')"))
    session.close()
    assert _values(file_store) == []


def test_a_transaction_sqlite_rolled_back_refuses_to_go_on(file_store: SqliteStore) -> None:
    # Some failures (an interrupt, a full disk) make SQLite roll the whole transaction
    # back. A batch whose caller catches the operation's error must not go on in
    # autocommit, keeping what follows although the batch fails: nothing is kept.
    with pytest.raises(VaultError) as refused, file_store.write() as tx:
        tx.execute("INSERT INTO scratch (id, v) VALUES (1, 'a')")
        with pytest.raises(VaultError) as caught, file_store.translate_errors(), tx.savepoint():
            tx.connection.set_progress_handler(lambda: 1, 1)
            try:
                tx.execute("INSERT INTO scratch (id, v) SELECT 2, 'b'")
            finally:
                tx.connection.set_progress_handler(None, 1)
        assert "interrupt" in str(caught.value)
        tx.execute("INSERT INTO scratch (id, v) VALUES (3, 'c')")
    assert "rolled back" in str(refused.value)
    assert _values(file_store) == []


@pytest.mark.parametrize("store", ["sqlite3", "sqlalchemy-sqlite"], indirect=True)
def test_tolerant_text_reads_text_that_is_not_utf8(store: Store) -> None:
    # SQLite only: PostgreSQL stores only valid text.
    with store.write() as tx:
        tx.execute("INSERT INTO scratch (id, v) VALUES (1, CAST(X'61ff62' AS TEXT))")
    with store.read() as tx:
        with pytest.raises(VaultError), store.translate_errors():
            tx.execute("SELECT v FROM scratch")
        with tx.tolerant_text():
            assert tx.execute("SELECT v FROM scratch") == [("a\udcffb",)]


def test_what_a_store_knows_of_its_vault(store: Store) -> None:
    assert store.is_sqlite == (store.backend == "sqlite")
    assert store.schema_version >= 7
    assert store.location
    assert (store.path is not None) == store.is_sqlite


# ---------------------------------------------------------------------- opening a file


def test_opening_a_missing_file_says_there_is_no_vault(tmp_path: Path) -> None:
    with pytest.raises(VaultUnavailable):
        SqliteStore.open(tmp_path / "absent.db")


def test_opening_a_file_that_is_not_a_database_says_damaged(tmp_path: Path) -> None:
    path = tmp_path / "v.db"
    path.write_bytes(b"not a database, not at all" * 200)
    path.chmod(0o600)
    with pytest.raises(IntegrityError):
        SqliteStore.open(path)


def test_opening_a_newer_schema_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "v" / "vault.db"
    EngineStore.create(sqlite_url(path), _no_rows).dispose()
    store = SqliteStore.open(path)
    with store.write() as tx:
        tx.execute("UPDATE exvault_schema SET schema_version = 999")
    store.dispose()
    with pytest.raises(UnsupportedFormat):
        SqliteStore.open(path)


def test_a_database_without_exvaults_tables_is_no_vault(tmp_path: Path) -> None:
    path = tmp_path / "other.db"
    sqlite3.connect(path).execute("CREATE TABLE t (x)").connection.close()
    path.chmod(0o600)
    with pytest.raises(VaultUnavailable):
        SqliteStore.open(path)
