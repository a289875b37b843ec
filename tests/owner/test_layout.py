"""The shared layout of a SQLite vault: a bot running as another uid reads what it was
granted, its reads are audited in the audit file, and it cannot change the vault.

The bot really runs as a second uid: the test forks and the child drops to a system
user of a bots' group (created here when missing; switching uid needs root, which CI
has). The child runs the bot's code with the modules already loaded, so it needs no
access to the interpreter's installation, and reports back through a pipe.
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import tempfile
import threading
import traceback
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

import vault
from tests.conftest import BINANCE_API_KEY, BOTS_GROUP, PASSPHRASE, TEST_KDF
from vault.db import audit_file, sqlite_file
from vault.db.inventory import Inventory
from vault.errors import VaultError
from vault.format import audit_entry
from vault.format.model import utc_now
from vault.ops import backup as backup_module
from vault.ops.checks import check
from vault.ops.verification import verify
from vault.owner.admin import AdminVault
from vault.owner.layout import layout_of, share, unshare
from vault.runtime.client import ClientVault


def as_bot(ids: tuple[int, int], action: Callable[[], Any]) -> Any:
    """Run ``action`` in a child process as the bot's uid and gid; returns its result
    (JSON), or raises AssertionError with the child's error."""
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: never returns into pytest
        status = 0
        try:
            os.close(read_end)
            os.setgroups([ids[1]])
            os.setgid(ids[1])
            os.setuid(ids[0])
            try:
                reply = {"ok": action()}
            except BaseException as exc:  # reported to the parent, which asserts
                reply = {"error": f"{type(exc).__name__}: {exc}", "trace": traceback.format_exc()}
            os.write(write_end, json.dumps(reply).encode())
        except BaseException:
            status = 1
        finally:
            os._exit(status)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as pipe:
        data = pipe.read()
    _, status = os.waitpid(pid, 0)
    assert status == 0 and data, "the bot's process failed before it could report"
    reply = json.loads(data)
    if "error" in reply:
        raise AssertionError(f"the bot failed: {reply['error']}\n{reply['trace']}")
    return reply["ok"]


@pytest.fixture
def reachable_dir() -> Iterator[Path]:
    """A directory others may traverse (pytest's own temporary directories are 0700)."""
    top = Path(tempfile.mkdtemp(prefix="exvault-layout-"))
    os.chmod(top, 0o711)
    try:
        yield top
    finally:
        shutil.rmtree(top)


@pytest.fixture
def shared(
    reachable_dir: Path, bot_ids: tuple[int, int], binance_payload: dict[str, str]
) -> Iterator[tuple[AdminVault, Path, str]]:
    """A vault holding binance-main, granted to client grid-bot, in the shared layout
    with the bots' group: (the owner's handle, the vault file, grid-bot's token)."""
    path = reachable_dir / "vaultdir" / "vault.db"
    admin, _recovery = AdminVault.create(path, PASSPHRASE, kdf=TEST_KDF, insecure_test_kdf=True)
    with admin:
        admin.add("binance-main", "binance", binance_payload, permissions="read,trade")
        _, token = admin.add_client("grid-bot", max_scope="trade")
        admin.grant("grid-bot", ["binance-main"])
        share(admin, BOTS_GROUP)
        yield admin, path, token


def _count(path: Path, table: str, **where: str) -> int:
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        clause = " AND ".join(f"{column} = ?" for column in where) or "1"
        return int(
            db.execute(
                f"SELECT count(*) FROM {table} WHERE {clause}", tuple(where.values())
            ).fetchone()[0]
        )
    finally:
        db.close()


def test_a_bot_of_another_uid_reads_its_key_and_is_audited_in_the_audit_file(
    shared: tuple[AdminVault, Path, str], bot_ids: tuple[int, int]
) -> None:
    admin, path, token = shared

    def read() -> str:
        return vault.load("binance-main", where=path, token=token).api_key.reveal()

    assert as_bot(bot_ids, read) == BINANCE_API_KEY
    audit_path = sqlite_file.audit_file_path(path)
    assert _count(audit_path, "audit_log", actor="client:grid-bot", action="read") == 1
    assert _count(path, "audit_log", action="read") == 0  # the vault was not written
    report = admin.verify_audit(remember=False)
    assert report.ok, report.problems
    listed = [e for e in admin.audit_entries() if e.action == "read"]
    assert [(e.actor, e.log, e.signed) for e in listed] == [
        ("client:grid-bot", "vault.audit", True)
    ]


@pytest.mark.parametrize(
    "attack",
    [
        "DELETE FROM grants",
        "UPDATE clients SET revoked_at = NULL",
        "INSERT INTO dek_wraps SELECT credential_id, version, 'forged', ephemeral_public, body "
        "FROM dek_wraps",
        "UPDATE credentials SET previous_until = 4102444800",
        "PRAGMA journal_mode = WAL",
    ],
)
def test_a_bot_cannot_change_the_vault(
    shared: tuple[AdminVault, Path, str], bot_ids: tuple[int, int], attack: str
) -> None:
    _admin, path, _token = shared
    before = path.read_bytes()

    def tamper() -> str:
        db = sqlite3.connect(path, isolation_level=None)  # read-write if it could
        try:
            db.execute(attack).fetchall()
        except sqlite3.Error as exc:
            return str(exc)
        finally:
            db.close()
        return "changed"

    assert "readonly" in as_bot(bot_ids, tamper)
    assert path.read_bytes() == before


@pytest.mark.parametrize("attack", ["replace", "delete", "create beside", "chmod"])
def test_a_bot_cannot_replace_the_vault_or_add_files_beside_it(
    shared: tuple[AdminVault, Path, str], bot_ids: tuple[int, int], attack: str
) -> None:
    _admin, path, _token = shared
    before = path.read_bytes()

    def tamper() -> str:
        try:
            if attack == "replace":
                fd, forged = tempfile.mkstemp(dir=path.parent.parent.parent)  # /tmp: its own
                os.close(fd)
                os.replace(forged, path)
            elif attack == "delete":
                path.unlink()
            elif attack == "create beside":
                path.with_name(path.name + "-journal").write_bytes(b"hot")
            else:
                os.chmod(path, 0o666)
        except PermissionError as exc:
            return exc.strerror or "denied"
        return "done"

    assert as_bot(bot_ids, tamper) in ("Permission denied", "Operation not permitted")
    assert path.read_bytes() == before
    assert sorted(p.name for p in path.parent.iterdir()) == ["vault.audit", "vault.db"]


def test_the_owners_audit_verify_catches_an_entry_the_bot_edited(
    shared: tuple[AdminVault, Path, str], bot_ids: tuple[int, int]
) -> None:
    admin, path, token = shared
    audit_path = sqlite_file.audit_file_path(path)

    def read_then_edit() -> int:
        vault.load("binance-main", where=path, token=token)
        db = sqlite3.connect(audit_path, isolation_level=None)
        try:
            return db.execute("UPDATE audit_log SET credential = 'kucoin-sub1'").rowcount
        finally:
            db.close()

    assert as_bot(bot_ids, read_then_edit) == 1  # the bots may write the audit file...
    problems = admin.verify_audit(remember=False).problems
    assert problems == ("vault.audit: entry 1 was edited (its hash does not match)",)


def test_an_owners_entry_copied_into_the_audit_file_is_reported(
    shared: tuple[AdminVault, Path, str], bot_ids: tuple[int, int]
) -> None:
    admin, path, _token = shared
    audit_path = sqlite_file.audit_file_path(path)
    vault_copy = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    first = vault_copy.execute("SELECT * FROM audit_log WHERE seq = 1").fetchone()
    vault_copy.close()

    def replay() -> None:
        db = sqlite3.connect(audit_path, isolation_level=None)
        try:
            db.execute(f"INSERT INTO audit_log VALUES ({', '.join('?' * len(first))})", first)
        finally:
            db.close()

    as_bot(bot_ids, replay)
    problems = admin.verify_audit(remember=False).problems
    assert problems == ("vault.audit: entry 1 is the owner's, who never writes there",)


def test_a_shared_vault_uses_a_rollback_journal_the_bots_need_not_write(
    shared: tuple[AdminVault, Path, str],
) -> None:
    _admin, path, _token = shared
    assert not path.with_name(path.name + "-wal").exists()
    assert not path.with_name(path.name + "-shm").exists()
    assert path.read_bytes()[18:20] == b"\x01\x01"  # the header's legacy (non-WAL) mode
    assert layout_of(path).describe() == (
        f"shared with group {BOTS_GROUP}; bots append to {sqlite_file.audit_file_path(path)}"
    )


def test_back_to_single_user_keeps_the_bots_entries(
    shared: tuple[AdminVault, Path, str], bot_ids: tuple[int, int]
) -> None:
    admin, path, token = shared
    as_bot(bot_ids, lambda: vault.load("binance-main", where=path, token=token).name)
    retired = unshare(admin)
    assert not layout_of(path).shared
    assert oct(path.stat().st_mode & 0o777) == oct(0o600)
    assert path.read_bytes()[18:20] == b"\x02\x02"  # WAL again
    assert audit_file.audit_files(path) == [retired / "audit.db"]
    assert [e.log for e in admin.audit_entries() if e.action == "read"] == [retired.name]
    assert admin.verify_audit(remember=False).ok
    # The owner's next read goes to the vault again.
    vault.load("binance-main", where=path, token=token)
    assert _count(path, "audit_log", action="read") == 1


def test_the_single_user_layout_is_unchanged(stocked: AdminVault, vault_path: Path) -> None:
    _, token = stocked.add_client("grid-bot", max_scope="trade")
    stocked.grant("grid-bot", ["binance-main"])
    assert vault.load("binance-main", where=vault_path, token=token).api_key.reveal() == (
        BINANCE_API_KEY
    )
    assert layout_of(vault_path).describe() == "single-user file"
    assert sorted(p.name for p in vault_path.parent.iterdir() if "audit" in p.name) == []
    assert _count(vault_path, "audit_log", actor="client:grid-bot", action="read") == 1
    assert vault_path.read_bytes()[18:20] == b"\x02\x02"  # WAL
    assert oct(vault_path.stat().st_mode & 0o777) == oct(0o600)


def test_a_missing_group_is_refused(admin: AdminVault, vault_path: Path) -> None:
    before = vault_path.read_bytes()
    with pytest.raises(VaultError, match='no group named "no-such-group-x"'):
        share(admin, "no-such-group-x")
    assert vault_path.read_bytes() == before
    assert not layout_of(vault_path).shared


def _interrupt_a_write(database: Path, journal_mode: str) -> None:
    """Leave a hot journal beside ``database``: a child process writes past its page
    cache (so pages reach the file) and dies before committing."""
    pid = os.fork()
    if pid == 0:
        try:
            db = sqlite3.connect(database, isolation_level=None)
            db.execute(f"PRAGMA journal_mode = {journal_mode}")
            db.execute("PRAGMA cache_size = 1")
            db.execute("BEGIN IMMEDIATE")
            db.execute("CREATE TABLE junk (x)")
            db.execute(
                "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 300) "
                "INSERT INTO junk SELECT randomblob(4000) FROM n"
            )
        finally:
            os._exit(0)
    os.waitpid(pid, 0)
    assert sqlite_file.journal_path(database).stat().st_size > 0


def test_a_bot_meeting_an_interrupted_write_of_the_owner_is_told_what_to_do(
    shared: tuple[AdminVault, Path, str], bot_ids: tuple[int, int]
) -> None:
    admin, path, token = shared
    admin.store.dispose()
    _interrupt_a_write(path, "DELETE")

    def read() -> str:
        try:
            vault.load("binance-main", where=path, token=token)
        except VaultError as exc:
            return str(exc)
        return "read"

    assert as_bot(bot_ids, read) == (
        f"cannot read {path}: a write to it was interrupted; the vault's owner must run any "
        "exvault command on it (e.g. exvault list) to roll it back"
    )
    assert admin.names() == ["binance-main"]  # the owner's read rolls it back
    assert as_bot(bot_ids, read) == "read"


def test_a_bots_interrupted_append_does_not_stop_the_next_bot(
    shared: tuple[AdminVault, Path, str], bot_ids: tuple[int, int]
) -> None:
    admin, path, token = shared
    audit_path = sqlite_file.audit_file_path(path)
    as_bot(bot_ids, lambda: _interrupt_a_write(audit_path, "DELETE"))
    assert as_bot(bot_ids, lambda: vault.load("binance-main", where=path, token=token).name) == (
        "binance-main"
    )
    assert _count(audit_path, "audit_log", action="read") == 1
    assert admin.verify_audit(remember=False).ok


def test_share_again_refuses_an_audit_file_a_bot_made_a_link_to_an_owners_file(
    shared: tuple[AdminVault, Path, str], bot_ids: tuple[int, int], reachable_dir: Path
) -> None:
    admin, path, _token = shared
    private = reachable_dir / "owner-private"
    private.write_text("not for bots")
    os.chmod(private, 0o600)
    gid = private.stat().st_gid
    audit_path = sqlite_file.audit_file_path(path)

    def swap() -> None:
        audit_path.unlink()
        audit_path.symlink_to(private)

    as_bot(bot_ids, swap)
    with pytest.raises(VaultError, match="is a symbolic link; refusing it"):
        share(admin, BOTS_GROUP)
    assert oct(private.stat().st_mode & 0o777) == oct(0o600)
    assert private.stat().st_gid == gid


def test_an_audit_file_a_bot_deleted_is_reported_and_share_makes_a_new_one(
    shared: tuple[AdminVault, Path, str], bot_ids: tuple[int, int]
) -> None:
    admin, path, token = shared
    audit_path = sqlite_file.audit_file_path(path)

    def read() -> str:
        try:
            return vault.load("binance-main", where=path, token=token).name
        except VaultError as exc:
            return str(exc)

    assert as_bot(bot_ids, read) == "binance-main"
    as_bot(bot_ids, audit_path.unlink)
    (problem,) = admin.verify_audit(remember=False).problems
    assert problem == (
        f"vault.audit: cannot be read: the audit file {audit_path} is missing (deleted by a "
        "member of the bots' group?); exvault share --group GROUP makes a new one"
    )
    assert as_bot(bot_ids, read).startswith(f"cannot append to the audit file {audit_path}")
    share(admin, BOTS_GROUP)
    assert as_bot(bot_ids, read) == "binance-main"
    assert _count(audit_path, "audit_log", action="read") == 1


# ----------------------------------------------------- found in review of the merged work


def test_a_read_forged_by_a_bot_for_a_credential_it_does_not_hold_does_not_count(
    shared: tuple[AdminVault, Path, str], kucoin_payload: dict[str, str]
) -> None:
    """grid-bot signs, into the bots' audit file, a read of kucoin-sub1, which it was
    never granted, dated now: check must still find kucoin-sub1 never read."""
    admin, path, token = shared
    admin.add("kucoin-sub1", "kucoin", kucoin_payload, permissions="read")
    with ClientVault.open(path, token=token) as bot:
        bot._audit_read("kucoin-sub1", 1, "current")  # what a hostile bot's code can do
    later = utc_now() + timedelta(days=400)
    with Inventory.open(path) as inv:
        (stale,) = [
            f
            for f in check(inv, later).findings
            if (f.code, f.credential) == ("stale", "kucoin-sub1")
        ]
    assert "never read" in stale.message


def test_a_read_dated_in_the_future_does_not_count(
    shared: tuple[AdminVault, Path, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    _admin, path, token = shared
    future = utc_now() + timedelta(days=3650)
    monkeypatch.setattr(audit_entry, "utc_now", lambda: future)
    with ClientVault.open(path, token=token) as bot:
        bot._audit_read("binance-main", 1, "current")
    monkeypatch.undo()
    later = utc_now() + timedelta(days=400)
    with Inventory.open(path) as inv:
        (unread,) = [
            f
            for f in check(inv, later).findings
            if (f.code, f.credential) == ("unread", "binance-main")
        ]
    assert "never read" in unread.message


def test_check_goes_on_when_a_bot_deleted_the_audit_file(
    shared: tuple[AdminVault, Path, str],
) -> None:
    _admin, path, _token = shared
    sqlite_file.audit_file_path(path).unlink()
    with Inventory.open(path) as inv:
        findings = check(inv, utc_now() + timedelta(days=400)).findings
    codes = {f.code for f in findings}
    assert "audit-file-unreadable" in codes
    assert "unread" in codes  # the other rules still ran


def test_a_fifo_in_place_of_the_audit_file_neither_hangs_nor_stops_a_backup(
    shared: tuple[AdminVault, Path, str], tmp_path: Path
) -> None:
    admin, path, _token = shared
    audit_path = sqlite_file.audit_file_path(path)
    audit_path.unlink()
    os.mkfifo(audit_path)
    outcome: list[object] = []

    def work() -> None:
        outcome.append(backup_module.backup(admin.store, tmp_path / "safe.db"))
        with Inventory.open(path) as inv:
            outcome.append({f.code for f in check(inv, utc_now()).findings})

    thread = threading.Thread(target=work, daemon=True)
    thread.start()
    thread.join(60)
    assert not thread.is_alive(), "a FIFO hung the owner's backup or check"
    assert outcome[0] == tmp_path / "safe.db"
    assert "audit-file-unreadable" in outcome[1]  # type: ignore[operator]


def test_the_bots_entries_still_verify_after_a_rekey(
    shared: tuple[AdminVault, Path, str],
) -> None:
    admin, path, token = shared
    with ClientVault.open(path, token=token) as bot:
        bot.get("binance-main")
    admin.rekey("a new passphrase for the rekey", insecure_test_kdf=True)
    assert admin.verify_audit(remember=False).ok, admin.verify_audit(remember=False).problems
    assert verify(admin).ok


def test_a_revocation_marks_what_a_bot_read_in_the_audit_file(
    shared: tuple[AdminVault, Path, str],
) -> None:
    """grid-bot reads, is ungranted (so neither rows nor grantees name it), then is
    revoked: its signed read in the bots' audit file still marks the key exposed."""
    admin, path, token = shared
    with ClientVault.open(path, token=token) as bot:
        bot.get("binance-main")
    admin.ungrant("grid-bot", ["binance-main"])
    assert admin.revoke_client("grid-bot") == ["binance-main"]
