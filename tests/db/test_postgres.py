"""PostgreSQL as the shared store of a fleet: roles, concurrency, migrations.

Runs against the real server of tests/postgres.py (skipped with an install hint when
PostgreSQL is absent, failed instead under EXVAULT_REQUIRE_POSTGRES=1 as in CI).
"""

from __future__ import annotations

import multiprocessing
import threading
import time
from collections.abc import Callable, Iterator

import pytest
from sqlalchemy.exc import ProgrammingError

import vault
from tests import postgres
from tests.conftest import BINANCE_SECRET, PASSPHRASE, db_exec
from tests.postgres import READER_GRANTS
from vault.db import store as store_module
from vault.db.inventory import Inventory
from vault.db.schema_version import SCHEMA_VERSION
from vault.errors import AccessDenied, Conflict, UnsupportedFormat, VaultError
from vault.format import records
from vault.format.model import utc_now
from vault.format.schema import HeadRow
from vault.format.stages import STAGES
from vault.ops.checks import check
from vault.ops.verification import verify
from vault.owner import rotation
from vault.owner.admin import AdminVault

OKX_PAYLOAD = {
    "api_key": "okx-key-0001",
    "secret": "okx-secret-0123456789abcdef",
    "passphrase": "Tr4d1ng!Bot",
}


@pytest.fixture
def backend() -> str:
    return "postgresql"


@pytest.fixture
def token(stocked: AdminVault) -> str:
    _, tok = stocked.add_client("bot", max_scope="trade")
    stocked.grant("bot", ["binance-main"])
    return tok


@pytest.fixture
def reader_url(stocked: AdminVault, vault_location: str, postgres_server: str) -> Iterator[str]:
    role = "reader_" + vault_location.rsplit("_", 1)[1]
    yield postgres.create_role(
        postgres_server, role, [g.format(role=role) for g in READER_GRANTS], vault_location
    )


def test_read_only_role_loads_and_is_audited(
    token: str, reader_url: str, stocked: AdminVault
) -> None:
    cred = vault.load("binance-main", where=reader_url, token=token)
    assert cred.secret.reveal() == BINANCE_SECRET
    last = stocked.audit_entries()[-1]
    assert (last.actor, last.action, last.outcome) == ("client:bot", "read", "ok")
    with Inventory.open(reader_url) as inv:  # check runs with the reader role too
        assert [i.name for i in inv.credentials()] == ["binance-main", "kucoin-sub1"]
        assert inv.status().credentials == 2
        report = check(inv, utc_now())
        assert report.credentials == 2
    with pytest.raises(ProgrammingError, match="permission denied"):
        db_exec(reader_url, "SELECT wrapped FROM keyslots")  # the wrapped root key: off limits


def test_read_only_role_cannot_write(token: str, reader_url: str, stocked: AdminVault) -> None:
    # Not even the owner's passphrase helps on a bot host: the wrapped key is unreadable.
    with pytest.raises(AccessDenied, match="read-only database role"):
        AdminVault.unlock(reader_url, PASSPHRASE)
    with Inventory.open(reader_url) as inv:
        with pytest.raises(AccessDenied, match="read-only database role"), inv.store.write() as s:
            s.execute("DELETE FROM credentials")
        with pytest.raises(AccessDenied), inv.store.write() as s:
            s.execute("UPDATE credential_versions SET permissions = 'read'")
    assert stocked.get("binance-main").permissions == ("read", "trade")
    assert stocked.names() == ["binance-main", "kucoin-sub1"]
    with pytest.raises(ProgrammingError, match="permission denied for table exvault_audit_head"):
        db_exec(reader_url, "SELECT 1 FROM exvault_audit_head FOR UPDATE")  # the write lock


def _start_rotation(
    url: str, secret: str, barrier: multiprocessing.synchronize.Barrier, out: multiprocessing.Queue
) -> None:  # type: ignore[name-defined]
    try:
        with AdminVault.unlock(url, PASSPHRASE) as admin:
            barrier.wait(timeout=30)
            result = rotation.start(
                admin, "binance-main", {"api_key": "k-" + secret, "secret": secret}
            )
            out.put(("started", result.changed))
    except Conflict:
        out.put(("conflict", False))
    except VaultError as exc:
        out.put(("error", str(exc)))


def test_two_hosts_cannot_double_rotate(stocked: AdminVault, vault_location: str) -> None:
    ctx = multiprocessing.get_context("spawn")
    barrier, out = ctx.Barrier(2), ctx.Queue()
    procs = [
        ctx.Process(target=_start_rotation, args=(vault_location, s * 32, barrier, out))
        for s in ("A", "B")
    ]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
    results = sorted(out.get(timeout=5) for _ in procs)
    assert results == [("conflict", False), ("started", True)]
    assert stocked.describe("binance-main").pending_version == 2


def _load_many(url: str, token: str, count: int, out: multiprocessing.Queue) -> None:  # type: ignore[type-arg]
    try:
        for _ in range(count):
            vault.load("binance-main", where=url, token=token)
        out.put("ok")
    except VaultError as exc:
        out.put(f"error: {exc}")


def test_concurrent_readers_keep_the_audit_chain_whole(
    token: str, stocked: AdminVault, vault_location: str
) -> None:
    before = len(stocked.audit_entries())
    ctx = multiprocessing.get_context("spawn")
    out = ctx.Queue()
    procs = [
        ctx.Process(target=_load_many, args=(vault_location, token, 10, out)) for _ in range(4)
    ]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
    assert sorted(out.get(timeout=5) for _ in procs) == ["ok"] * 4
    assert len(stocked.audit_entries()) == before + 40
    assert stocked.verify_audit(remember=False).ok


def test_migration_on_postgresql(stocked: AdminVault, vault_location: str) -> None:
    """A vault at schema version 1, made from a new one: its index and its six head
    columns of version 3 dropped, its heads signed under the schema-2 kind (what
    exvault's code at those versions wrote). The owner's unlock brings it to the
    current schema: the index, the columns, the heads re-signed."""
    for column in ("revision", "version_counter", "grantees", *(f"{s}_digest" for s in STAGES)):
        db_exec(vault_location, f"ALTER TABLE credentials DROP COLUMN {column}")
    for row in db_exec(vault_location, "SELECT * FROM credentials"):
        head = HeadRow(*row, 0, 0, None, None, None, "")
        message = records.schema2_head_message(stocked.vault_id, head)
        signature = stocked.writer.identity.sign(message)
        db_exec(
            vault_location,
            "UPDATE credentials SET signature = :s WHERE id = :id",
            s=signature,
            id=head.id,
        )
    db_exec(vault_location, "DROP INDEX ix_audit_log_reads")
    db_exec(vault_location, "ALTER TABLE keyslots DROP COLUMN signature")
    db_exec(vault_location, "UPDATE exvault_schema SET schema_version = 1")
    stocked.close()
    with pytest.raises(UnsupportedFormat, match="once, as the owner"):
        Inventory.open(vault_location)
    with AdminVault.unlock(vault_location, PASSPHRASE) as admin:
        assert admin.get("binance-main").secret.reveal() == BINANCE_SECRET
        assert verify(admin).ok
    assert db_exec(vault_location, "SELECT count(*) FROM keyslots WHERE signature IS NULL") == [
        (0,)
    ]
    assert db_exec(vault_location, "SELECT schema_version FROM exvault_schema") == [
        (SCHEMA_VERSION,)
    ]
    names = db_exec(
        vault_location, "SELECT indexname FROM pg_indexes WHERE tablename = 'audit_log'"
    )
    assert ("ix_audit_log_reads",) in names
    assert db_exec(vault_location, "SELECT revision, version_counter FROM credentials") == [
        (1, 1),
        (1, 1),
    ]


def _psycopg(url: str):  # type: ignore[no-untyped-def]
    import psycopg

    return psycopg.connect(url.replace("postgresql+psycopg", "postgresql"), autocommit=True)


def _finishes(work: Callable[[], object], seconds: float) -> bool:
    """Run ``work`` in a thread; True when it ended (raising or not) within ``seconds``."""
    thread = threading.Thread(target=work, daemon=True)
    thread.start()
    thread.join(seconds)
    return not thread.is_alive()


def test_reader_holding_the_advisory_lock_does_not_stall_writes(
    token: str, reader_url: str, stocked: AdminVault
) -> None:
    """A bot host's role takes exvault's old advisory lock for its whole session and
    sits idle: owner writes and bot loads must go on."""
    outcome: list[str] = []

    def work() -> None:
        stocked.add("okx-main", "okx", OKX_PAYLOAD, permissions="read")
        vault.load("binance-main", where=reader_url, token=token)
        outcome.append("done")

    with _psycopg(reader_url) as squatter:
        squatter.execute("SELECT pg_advisory_lock(28561422484335732)")
        finished = _finishes(work, 20)
        squatter.close()  # lets a stuck write through, so that the test ends either way
    assert finished and outcome == ["done"]


def test_a_write_lock_held_too_long_is_a_conflict_not_a_hang(
    token: str, reader_url: str, stocked: AdminVault, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The reader can hold the write lock only inside a transaction (which the server's
    idle_in_transaction_session_timeout ends); meanwhile writers wait a bounded time."""
    monkeypatch.setattr(store_module, "WRITE_LOCK_TIMEOUT_MS", 300)
    with _psycopg(reader_url) as holder:
        holder.autocommit = False
        holder.execute("SELECT exvault_lock_writes()")
        started = time.monotonic()
        with pytest.raises(Conflict, match="held the vault's write lock too long"):
            stocked.add("okx-main", "okx", OKX_PAYLOAD, permissions="read")
        assert time.monotonic() - started < 10
        holder.rollback()
    assert stocked.add("okx-main", "okx", OKX_PAYLOAD, permissions="read").name == "okx-main"


_POISON = (
    "INSERT INTO audit_log (seq, at, actor, host, pid, action, credential, version, "
    "outcome, detail, prev_hash, entry_hash, signer, signature) "
    "SELECT 2147483647, at, actor, host, pid, action, credential, version, outcome, "
    "detail, prev_hash, entry_hash, signer, signature FROM audit_log WHERE seq = 1"
)


def test_reader_cannot_insert_a_poisoned_audit_row(
    token: str, reader_url: str, stocked: AdminVault
) -> None:
    """An audit row of seq 2^31 - 1 made every later append fail ("integer out of range")."""
    with pytest.raises(ProgrammingError, match="permission denied for table audit_log"):
        db_exec(reader_url, _POISON)
    vault.load("binance-main", where=reader_url, token=token)
    stocked.add("okx-main", "okx", OKX_PAYLOAD, permissions="read")
    assert [e.seq for e in stocked.audit_entries()][-2:] == [5, 6]
    assert stocked.verify_audit(remember=False).ok


def test_reader_cannot_append_out_of_the_chain(
    token: str, reader_url: str, stocked: AdminVault
) -> None:
    """The append function is the reader's way in: the database checks seq and link."""
    with _psycopg(reader_url) as conn, pytest.raises(Exception, match="does not follow"):
        conn.execute(
            "SELECT exvault_audit_append(2147483647, 0, 'client:x', 'h', 1, 'read', NULL, "
            "NULL, 'denied', '', %s, NULL, %s, NULL)",
            (b"\0" * 32, b"\0" * 32),
        )
    vault.load("binance-main", where=reader_url, token=token)
    assert stocked.verify_audit(remember=False).ok


def test_a_poisoned_row_put_by_the_database_admin_is_reported_not_fatal(
    token: str, reader_url: str, stocked: AdminVault, vault_location: str
) -> None:
    """Whoever administers the server can bypass every check; such a row is no entry
    of the chain: appends go on after the real head, and verification names it."""
    with _psycopg(vault_location) as conn, conn.transaction():
        conn.execute("SET LOCAL session_replication_role = replica")  # no triggers
        conn.execute(_POISON)
    vault.load("binance-main", where=reader_url, token=token)
    stocked.add("okx-main", "okx", OKX_PAYLOAD, permissions="read")
    problems = stocked.verify_audit(remember=False).problems
    assert problems and all("2147483647" in p for p in problems)
    assert [e.seq for e in stocked.audit_entries()][-3:] == [5, 6, 2147483647]


def _back_to_schema_3(vault_location: str) -> None:
    """The vault as schema 3 left it: no audit head row, functions or trigger."""
    for statement in (
        "DROP TRIGGER exvault_audit_chain ON audit_log",
        "DROP FUNCTION exvault_audit_chain(), exvault_lock_writes(), exvault_audit_append("
        "integer, bigint, text, text, integer, text, text, integer, text, text, bytea, text, "
        "bytea, bytea)",
        "DROP TABLE exvault_audit_head",
        "UPDATE exvault_schema SET schema_version = 3",
    ):
        db_exec(vault_location, statement)


def test_the_audit_head_starts_at_the_end_of_the_real_chain(
    stocked: AdminVault, vault_location: str
) -> None:
    """A row of seq 2^31 - 1 put in before the upgrade (the reader could INSERT then)
    must not become the head: appends go on after the upgrade, and verify names it."""
    stocked.close()
    _back_to_schema_3(vault_location)
    db_exec(vault_location, _POISON)
    with AdminVault.unlock(vault_location, PASSPHRASE) as admin:
        admin.add("okx-main", "okx", OKX_PAYLOAD, permissions="read")
        assert admin.audit_entries()[-1].action == "add"
        assert not admin.verify_audit(remember=False).ok  # the forged row is reported


def test_the_upgrade_takes_insert_on_the_audit_log_from_public(
    stocked: AdminVault, vault_location: str
) -> None:
    stocked.close()
    _back_to_schema_3(vault_location)
    db_exec(vault_location, "GRANT INSERT ON audit_log TO PUBLIC")
    with AdminVault.unlock(vault_location, PASSPHRASE) as admin:
        admin.add("okx-main", "okx", OKX_PAYLOAD, permissions="read")
    assert db_exec(
        vault_location,
        "SELECT count(*) FROM information_schema.role_table_grants "
        "WHERE table_name = 'audit_log' AND privilege_type = 'INSERT' AND grantee = 'PUBLIC'",
    ) == [(0,)]


def test_migration_to_the_audit_head_from_a_schema_2_fleet(
    token: str, stocked: AdminVault, vault_location: str, postgres_server: str
) -> None:
    """A vault as schema 3 (before the audit head) leaves it, its reader granted INSERT on
    audit_log:
    the owner's unlock installs the head row and functions and moves the reader's
    grant to them; bots refuse the vault until then."""
    stocked.close()
    _back_to_schema_3(vault_location)
    role = "old_" + vault_location.rsplit("_", 1)[1]
    old_grants = [
        'GRANT SELECT ON ALL TABLES IN SCHEMA public TO "{role}"',
        'GRANT INSERT ON audit_log TO "{role}"',
    ]
    url = postgres.create_role(
        postgres_server, role, [g.format(role=role) for g in old_grants], vault_location
    )
    with pytest.raises(UnsupportedFormat, match="once, as the owner"):
        vault.load("binance-main", where=url, token=token)
    with AdminVault.unlock(vault_location, PASSPHRASE) as admin:
        admin.add("okx-main", "okx", OKX_PAYLOAD, permissions="read")
        vault.load("binance-main", where=url, token=token)
        with pytest.raises(ProgrammingError, match="permission denied for table audit_log"):
            db_exec(url, _POISON)
        assert admin.verify_audit(remember=False).ok
        assert admin.audit_entries()[-1].actor == "client:bot"
    assert db_exec(vault_location, "SELECT schema_version FROM exvault_schema") == [
        (SCHEMA_VERSION,)
    ]
