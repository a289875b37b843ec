"""PostgreSQL as the shared store of a fleet: roles, concurrency, migrations.

Runs against the real server of tests/postgres.py (skipped with an install hint when
PostgreSQL is absent, failed instead under EXVAULT_REQUIRE_POSTGRES=1 as in CI).
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Iterator

import pytest
from sqlalchemy import delete, update
from sqlalchemy.exc import ProgrammingError

import vault
from tests import postgres
from tests.conftest import BINANCE_SECRET, PASSPHRASE, db_exec
from tests.postgres import READER_GRANTS
from vault import rotation
from vault.admin import AdminVault
from vault.checks import check
from vault.errors import AccessDenied, Conflict, VaultError
from vault.inventory import Inventory
from vault.model import utc_now
from vault.store import SCHEMA_VERSION, CredentialRecord, VersionRecord


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
            s.execute(delete(CredentialRecord))
        with pytest.raises(AccessDenied), inv.store.write() as s:
            s.execute(update(VersionRecord).values(permissions="read"))
    assert stocked.get("binance-main").permissions == ("read", "trade")
    assert stocked.names() == ["binance-main", "kucoin-sub1"]


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
    stocked.close()
    db_exec(vault_location, "DROP INDEX ix_audit_log_reads")
    db_exec(vault_location, "ALTER TABLE keyslots DROP COLUMN signature")
    db_exec(vault_location, "UPDATE exvault_schema SET schema_version = 1")
    with Inventory.open(vault_location) as inv:
        assert inv.status().credentials == 2
    with AdminVault.unlock(vault_location, PASSPHRASE):
        pass
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
