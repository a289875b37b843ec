"""The client's two ways to the database: sqlite3 directly for a vault file, SQLAlchemy
for a URL. Both must read, refuse and audit alike."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import threading
from pathlib import Path

import pytest

import vault
from tests.conftest import BINANCE_SECRET, KUCOIN_SECRET, sql
from vault.db.client_sql import EngineClientStore, SqliteClientStore, open_client_store
from vault.db.schema_version import SCHEMA_VERSION
from vault.db.url import sqlite_url
from vault.errors import (
    AccessDenied,
    IntegrityError,
    StoreError,
    UnsupportedFormat,
    VaultUnavailable,
)
from vault.format.schema import ObservationRow
from vault.owner.admin import AdminVault
from vault.runtime.client import ClientVault


@pytest.fixture
def token(stocked: AdminVault) -> str:
    _, tok = stocked.add_client("grid-bot")
    stocked.grant("grid-bot", ["binance-main"])
    return tok


def test_a_vault_file_is_opened_with_sqlite3(token: str, vault_path: Path) -> None:
    store = open_client_store(vault_path, lambda: pytest.fail("no URL is needed"))
    try:
        assert isinstance(store, SqliteClientStore)
    finally:
        store.close()


def test_a_url_goes_through_the_sqlalchemy_store(token: str, vault_path: Path) -> None:
    store = open_client_store(None, lambda: sqlite_url(vault_path))
    try:
        assert isinstance(store, EngineClientStore)
    finally:
        store.close()


@pytest.mark.parametrize("as_url", [False, True], ids=["path", "url"])
def test_both_paths_read_refuse_and_audit_alike(
    stocked: AdminVault, token: str, vault_path: Path, as_url: bool
) -> None:
    where = f"sqlite:///{vault_path}" if as_url else str(vault_path)
    with ClientVault.open(where, token=token) as handle:
        assert handle.get("binance-main").secret.reveal() == BINANCE_SECRET
        with pytest.raises(AccessDenied):
            handle.get("kucoin-sub1")
    entries = stocked.audit_entries()
    read, refused = entries[-2], entries[-1]
    assert (read.actor, read.action, read.outcome, read.signed) == (
        "client:grid-bot",
        "read",
        "ok",
        True,
    )
    assert (refused.action, refused.outcome, refused.credential) == (
        "read",
        "denied",
        "kucoin-sub1",
    )
    assert stocked.verify_audit(remember=False).ok


def test_a_new_process_reading_a_vault_file_never_imports_sqlalchemy(
    token: str, vault_path: Path
) -> None:
    # What keeps a bot's cold start short (docs/benchmarks.md, figure 2): neither
    # SQLAlchemy nor the KDF nor the exchange profiles load to read a credential, nor
    # the owner's, the checks' or the storage layer's modules, nor socket (the audit
    # entry's host name comes from os.uname), nor dataclasses and the inspect, ast and
    # dis it pulls (no dataclass on the path), nor hashlib and hmac (cryptography's
    # SHA-256 and HMAC, the C compare_digest), nor unicodedata (passphrases only), nor
    # ccxt (only `exvault probe` talks to exchanges).
    code = (
        "import sys, vault\n"
        "c = vault.load('binance-main')\n"
        "assert c.secret.reveal() == sys.argv[1], 'wrong secret'\n"
        "top = {m.split('.')[0] for m in sys.modules}\n"
        "heavy = sorted(top & {'sqlalchemy', 'argon2', 'socket', 'selectors', 'dataclasses',\n"
        "    'inspect', 'ast', 'dis', 'hashlib', 'hmac', '_hashlib', 'unicodedata', 'ccxt'})\n"
        "heavy += sorted(m for m in sys.modules if m.startswith(tuple(sys.argv[2:])))\n"
        "print(' '.join(heavy))\n"
    )
    not_for_a_bot = (
        "vault.exchanges",
        "vault.owner",
        "vault.ops",
        "vault.cli",
        "vault.db.store",
        "vault.db.inventory",
        "vault.db.audit",
        "vault.db.keyslots",
        "vault.format.policy",
        "vault.format.access",
        "vault.format.credential_info",
        "vault.format.kdf_params",
        "vault.format.passphrase_kdf",
        "vault.format.recovery",
        # the libraries of `exvault import` (the optional `import` extra)
        "dotenv",
        "pykeepass",
        "eth_keyfile",
        "rapidjson",
        "yaml",
    )
    env = {**os.environ, "EXVAULT_PATH": str(vault_path), "EXVAULT_TOKEN": token}
    env.pop("EXVAULT_URL", None)
    done = subprocess.run(
        [sys.executable, "-c", code, BINANCE_SECRET, *not_for_a_bot],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == ""


def test_one_handle_serves_many_threads(stocked: AdminVault, vault_path: Path) -> None:
    _, tok = stocked.add_client("fleet")
    stocked.grant("fleet", ["binance-main", "kucoin-sub1"])
    errors: list[BaseException] = []
    with ClientVault.open(str(vault_path), token=tok) as handle:

        def work(name: str, secret: str) -> None:
            try:
                for _ in range(25):
                    assert handle.get(name).secret.reveal() == secret
            except BaseException as exc:  # reported below
                errors.append(exc)

        threads = [
            threading.Thread(target=work, args=pair)
            for pair in [("binance-main", BINANCE_SECRET), ("kucoin-sub1", KUCOIN_SECRET)] * 4
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert errors == []
    assert stocked.verify_audit(remember=False).ok


def test_missing_file(tmp_path: Path, token: str) -> None:
    with pytest.raises(VaultUnavailable, match="no vault at"):
        vault.load("binance-main", where=str(tmp_path / "none.db"), token=token)
    assert not (tmp_path / "none.db").exists()


def test_file_that_is_not_a_database(tmp_path: Path, token: str) -> None:
    garbage = tmp_path / "garbage.db"
    garbage.write_bytes(os.urandom(8192))
    with pytest.raises(IntegrityError, match="not a readable exvault database"):
        vault.load("binance-main", where=str(garbage), token=token)


def test_sqlite_database_of_another_program(tmp_path: Path, token: str) -> None:
    other = tmp_path / "other.db"
    with sqlite3.connect(other) as db:
        db.execute("CREATE TABLE t (x)")
    with pytest.raises(VaultUnavailable, match="no vault at"):
        vault.load("binance-main", where=str(other), token=token)


def test_newer_schema_refused(token: str, vault_path: Path) -> None:
    sql(vault_path, "UPDATE exvault_schema SET schema_version = ?", SCHEMA_VERSION + 1)
    with pytest.raises(UnsupportedFormat, match="newer"):
        vault.load("binance-main", where=str(vault_path), token=token)


def test_missing_header_is_damage(token: str, vault_path: Path) -> None:
    sql(vault_path, "DELETE FROM vault_header")
    with pytest.raises(IntegrityError, match="header is missing"):
        vault.load("binance-main", where=str(vault_path), token=token)


def test_database_failure_while_reading_is_a_one_line_store_error(
    token: str, vault_path: Path
) -> None:
    with ClientVault.open(str(vault_path), token=token) as handle:
        sql(vault_path, "DROP TABLE dek_wraps")
        with pytest.raises(StoreError, match=r"^database error: no such table: dek_wraps$"):
            handle.get("binance-main")


def test_a_failed_audit_append_leaves_no_transaction_open(token: str, vault_path: Path) -> None:
    store = SqliteClientStore(vault_path)
    try:
        sql(vault_path, "ALTER TABLE audit_log RENAME TO audit_log_gone")
        with pytest.raises(StoreError):
            store.append_audit(b"\0" * 16, actor="admin", action="read", signer=None)
        sql(vault_path, "ALTER TABLE audit_log_gone RENAME TO audit_log")
        # The lock was released and the connection is usable for the next append.
        store.append_audit(b"\0" * 16, actor="x", action="read", outcome="denied")
    finally:
        store.close()
    assert sql(vault_path, "SELECT actor FROM audit_log ORDER BY seq DESC LIMIT 1") == [("x",)]


def test_a_shared_vault_file_takes_no_observation_from_a_client(
    stocked: AdminVault, vault_path: Path
) -> None:
    # In the shared layout the client's process opens the vault file read-only and
    # appends only to the bots' audit file: an observation has nowhere to go.
    store = SqliteClientStore(vault_path)
    store._shared = True
    row = ObservationRow(0, "c" * 32, 1, "binance-main", 0, "report", "{}", "x", b"")
    try:
        with pytest.raises(AccessDenied, match="single-user layout"):
            store.record_observation(stocked.vault_id, row, actor="client:x", action="probe")
    finally:
        store.close()
    assert sql(vault_path, "SELECT COUNT(*) FROM probe_observations") == [(0,)]
