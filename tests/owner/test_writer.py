"""The owner's unit of work: batches (one transaction, all or nothing), the queue, the lock."""

from __future__ import annotations

import pytest

from tests.conftest import (
    PASSPHRASE,
)
from vault.db.inventory import Inventory
from vault.errors import (
    AccessDenied,
    AlreadyExists,
    InvalidInput,
    NotFound,
)
from vault.format.keywrap import Recipient
from vault.format.policy import Policy
from vault.ops.verification import verify
from vault.owner.admin import AdminVault
from vault.owner.writer import recipient_keys

BACKENDS = ("sqlite", "postgresql")


def _key(i: int) -> dict[str, str]:
    return {"api_key": f"batch-key-{i:010d}", "secret": f"batch-secret-{i:020d}"}


def test_batch_commits_once_at_the_end(admin: AdminVault, vault_location: str) -> None:
    with Inventory.open(vault_location) as other:
        with admin.batch():
            for i in range(3):
                admin.add(f"cred-{i}", "binance", _key(i))
            # This handle reads its own batch; another sees nothing until it commits.
            assert admin.names() == ["cred-0", "cred-1", "cred-2"]
            assert admin.get("cred-1").api_key.reveal() == _key(1)["api_key"]
            assert other.names() == []
        assert other.names() == ["cred-0", "cred-1", "cred-2"]
        assert other.verify_audit(remember=False).ok
    actions = [(e.action, e.credential) for e in admin.audit_entries()]
    assert actions[-4:] == [
        ("add", "cred-0"),
        ("add", "cred-1"),
        ("add", "cred-2"),
        ("read", "cred-1"),
    ]
    assert verify(admin).ok


def test_batch_is_all_or_nothing(admin: AdminVault, vault_location: str) -> None:
    admin.add("kept", "binance", _key(0))
    entries = len(admin.audit_entries())
    with pytest.raises(RuntimeError, match="stop"), admin.batch():
        admin.add("cred-1", "binance", _key(1))
        admin.edit("kept", permissions="read")
        admin.remove("kept")
        admin.add("cred-2", "binance", _key(2))
        raise RuntimeError("stop")
    assert admin.names() == ["kept"]
    assert admin.describe("kept").version == 1
    assert len(admin.audit_entries()) == entries
    assert admin.verify_audit(remember=False).ok and verify(admin).ok
    admin.add("after", "binance", _key(3))  # the handle writes on as before
    assert admin.names() == ["after", "kept"]


def test_a_failure_caught_inside_a_batch_leaves_nothing(admin: AdminVault) -> None:
    with admin.batch():
        admin.add("a", "binance", _key(1))
        with pytest.raises(AlreadyExists):
            admin.add("a", "binance", _key(2))  # still queued, not in the database yet
        admin.add("b", "binance", _key(3))
        admin.edit("b", permissions="read")
        with pytest.raises(InvalidInput):
            admin.edit("a", permissions="read,fly")  # fails after reading, in its savepoint
        with pytest.raises(NotFound):
            admin.remove("nope")
        admin.add("c", "binance", _key(4))
    assert admin.names() == ["a", "b", "c"]
    assert admin.get("a").api_key.reveal() == _key(1)["api_key"]
    assert [admin.describe(n).version for n in ("a", "b", "c")] == [1, 2, 1]
    assert admin.verify_audit(remember=False).ok and verify(admin).ok


def test_batch_queue_is_inserted_in_parts(
    admin: AdminVault, monkeypatch: pytest.MonkeyPatch
) -> None:
    from vault.owner import writer as writer_module

    monkeypatch.setattr(writer_module, "BATCH_QUEUE_ROWS", 7)  # an add queues 5 rows
    with pytest.raises(RuntimeError), admin.batch():
        for i in range(6):
            admin.add(f"gone-{i}", "binance", _key(i))
        raise RuntimeError
    assert admin.names() == []
    with admin.batch():
        for i in range(6):
            admin.add(f"cred-{i}", "binance", _key(i))
        with pytest.raises(AlreadyExists):
            admin.add("cred-0", "binance", _key(9))  # inserted already
    assert len(admin.names()) == 6
    assert admin.verify_audit(remember=False).ok and verify(admin).ok


def test_batch_grants_and_rotations(admin: AdminVault, vault_location: str) -> None:
    from vault.owner import rotation
    from vault.runtime.client import ClientVault

    _client, token = admin.add_client("bot", max_scope="read")
    with admin.batch():
        admin.add("a", "binance", _key(1), permissions="read")
        admin.add("wide", "binance", _key(2), permissions="read,trade")
        admin.grant("bot", ["a"])
        with pytest.raises(AccessDenied):
            admin.grant("bot", ["wide"])
        rotation.start(admin, "a", _key(3))
        rotation.promote(admin, "a")
        rotation.finish(admin, "a", force=True)
    # The refusal is audited after the batch, in a transaction of its own.
    last = admin.audit_entries()[-1]
    assert (last.action, last.credential, last.outcome) == ("grant", "wide", "denied")
    with ClientVault.open(vault_location, token=token) as client:
        assert client.get("a").api_key.reveal() == _key(3)["api_key"]
    assert admin.verify_audit(remember=False).ok and verify(admin).ok


def test_batch_knows_the_names_it_adds_and_removes(stocked: AdminVault) -> None:
    with stocked.batch():
        with pytest.raises(AlreadyExists):
            stocked.add("binance-main", "binance", _key(1))  # there before the batch
        stocked.add("a", "binance", _key(2))
        stocked.remove("a")
        stocked.remove("kucoin-sub1")
        stocked.add("a", "binance", _key(3))
        stocked.add("kucoin-sub1", "binance", _key(4))
        with pytest.raises(AlreadyExists):
            stocked.add("a", "binance", _key(5))
    assert stocked.names() == ["a", "binance-main", "kucoin-sub1"]
    assert stocked.get("a").api_key.reveal() == _key(3)["api_key"]
    assert stocked.get("kucoin-sub1").exchange == "binance"
    assert verify(stocked).ok


def test_batch_inside_a_batch_joins_it(admin: AdminVault) -> None:
    with pytest.raises(RuntimeError), admin.batch():
        with admin.batch():
            admin.add("a", "binance", _key(1))
        raise RuntimeError
    assert admin.names() == []


def test_batch_holds_the_write_lock(admin: AdminVault, vault_location: str) -> None:
    import threading

    other = AdminVault.unlock(vault_location, PASSPHRASE)
    done = threading.Event()

    def write() -> None:
        other.add("other", "binance", _key(2))
        done.set()

    with other:
        with admin.batch():
            admin.add("first", "binance", _key(1))
            writer = threading.Thread(target=write)
            writer.start()
            assert not done.wait(1.0), "another writer got in during the batch"
        writer.join(30)
        assert done.is_set()
        assert other.names() == ["first", "other"]
        assert other.verify_audit(remember=False).ok


# ------------------------------------------------------------------------------ writer rules


def test_a_failed_write_leaves_no_row_and_no_audit_entry(admin: AdminVault) -> None:
    """Outside a batch, an operation that raises inside ``write()`` keeps nothing: not
    the head it re-signed, not the audit entry it appended; the handle writes on."""
    admin.add("a", "binance", _key(1))
    entries, policy = len(admin.audit_entries()), admin.policy("a")
    writer = admin.writer
    with pytest.raises(RuntimeError), writer.write() as session:
        head = writer.head(session, "a", for_update=True)
        head.policy = Policy.from_json(head.policy).with_limits(max_age_days=50).to_json()
        writer.sign_head(session, head)
        writer.audit(session, "policy", "a", detail="never kept")
        raise RuntimeError
    assert len(admin.audit_entries()) == entries
    assert admin.policy("a") == policy
    admin.set_policy("a", max_age_days=60)  # the handle's view of the log still holds
    assert admin.verify_audit(remember=False).ok and verify(admin).ok


def test_a_refusal_in_a_batch_is_kept_when_the_batch_rolls_back(admin: AdminVault) -> None:
    admin.add_client("bot", max_scope="read")
    admin.add("wide", "binance", _key(2), permissions="read,trade")
    with pytest.raises(RuntimeError), admin.batch():
        admin.add("gone", "binance", _key(3))
        with pytest.raises(AccessDenied):
            admin.grant("bot", ["wide"])
        raise RuntimeError
    assert admin.names() == ["wide"]
    last = admin.audit_entries()[-1]
    assert (last.action, last.credential, last.outcome) == ("grant", "wide", "denied")
    assert admin.verify_audit(remember=False).ok


def test_recipient_keys_are_the_root_then_each_client() -> None:
    root, client = b"r" * 32, b"c" * 32
    assert recipient_keys(root) == {Recipient.root(): root}
    assert recipient_keys(root, [("c1", client)]) == {
        Recipient.root(): root,
        Recipient.client("c1"): client,
    }


def test_open_version_refuses_a_stage_the_head_does_not_label(stocked: AdminVault) -> None:
    writer = stocked.writer
    with writer.read() as session:
        head = writer.head(session, "binance-main")
        meta, fields = writer.open_version(session, head, "current")
        assert meta.name == "binance-main" and fields["api_key"]
        with pytest.raises(NotFound):
            writer.open_version(session, head, "pending")


@pytest.mark.sqlite_only
def test_on_a_vault_file_the_owners_operations_never_touch_sqlalchemy(
    stocked: AdminVault, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On a vault file the owner's store is sqlite3's own, and every operation runs as
    statements of vault.db.queries: none asks for SQLAlchemy's session or engine."""
    from datetime import timedelta

    import vault.db.store
    from vault.db.sqlite_store import SqliteStore
    from vault.owner import clients, credentials, policies, rotation

    assert isinstance(stocked.store, SqliteStore)
    stocked.add_client("grid-bot", max_scope="read,trade")

    def refused(*_args: object, **_kwargs: object) -> None:
        raise AssertionError("SQLAlchemy was asked for")

    monkeypatch.setattr(vault.db.store, "orm_session", refused)
    monkeypatch.setattr(vault.db.store, "make_engine", refused)
    writer = stocked.writer
    clients.add_client(writer, "other-bot", max_scope="read")
    clients.grant(writer, "grid-bot", ["binance-main"])
    clients.grant(writer, "other-bot", ["kucoin-sub1"])
    assert credentials.edit(writer, "binance-main", ips=["203.0.113.8"]) == ("grid-bot",)
    assert credentials.get(writer, "binance-main").api_key.reveal()
    policies.set_policy(writer, "binance-main", max_age_days=60)
    assert policies.policy(writer, "binance-main").max_age_days == 60
    new_key = {"api_key": "a" * 24, "secret": "b" * 36, "passphrase": "c" * 12}
    rotation.start(stocked, "kucoin-sub1", new_key)
    rotation.promote(stocked, "kucoin-sub1", grace=timedelta(0))
    rotation.finish(stocked, "kucoin-sub1")
    clients.ungrant(writer, "grid-bot", ["binance-main"])
    assert clients.revoke_client(writer, "other-bot", []) == ["kucoin-sub1"]
    credentials.remove(writer, "kucoin-sub1")
    monkeypatch.undo()
    assert stocked.verify_audit(remember=False).ok and verify(stocked).ok


@pytest.mark.postgresql_only
def test_for_update_lookups_lock_the_row_on_postgresql(
    stocked: AdminVault, vault_location: str
) -> None:
    """A head or client read ``for_update`` holds its row lock until the transaction ends
    (two hosts changing one credential queue); a plain read takes none."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.exc import OperationalError

    from vault.db.location import resolve

    stocked.add_client("grid-bot")
    other = create_engine(resolve(vault_location))

    def lockable(table: str, name: str) -> bool:
        with other.connect() as conn, conn.begin():
            conn.execute(text("SET LOCAL lock_timeout = 200"))
            try:
                conn.execute(text(f"SELECT 1 FROM {table} WHERE name = :n FOR UPDATE"), {"n": name})
            except OperationalError:
                return False
            return True

    writer = stocked.writer
    try:
        with writer.write() as session:
            writer.head(session, "binance-main")
            writer.client(session, "grid-bot")
            assert lockable("credentials", "binance-main") and lockable("clients", "grid-bot")
            writer.head(session, "binance-main", for_update=True)
            writer.client(session, "grid-bot", for_update=True)
            assert not lockable("credentials", "binance-main")
            assert not lockable("clients", "grid-bot")
            assert lockable("credentials", "kucoin-sub1")
        assert lockable("credentials", "binance-main") and lockable("clients", "grid-bot")
    finally:
        other.dispose()
