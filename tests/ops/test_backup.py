"""Backups and restores of a SQLite vault."""

from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path

import pytest

from tests.conftest import BINANCE_SECRET, PASSPHRASE, sql, without_blocking_on
from vault.errors import AlreadyExists, IntegrityError, InvalidInput, VaultUnavailable
from vault.ops.backup import backup, discard, replace_with, stage_restore
from vault.owner.admin import AdminVault


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_backup_is_a_private_vault_that_opens(stocked: AdminVault, tmp_path: Path) -> None:
    dest = backup(stocked.store, tmp_path / "b.db")
    assert dest.stat().st_mode & 0o777 == 0o600
    with AdminVault.unlock(dest, PASSPHRASE) as copy:
        assert copy.get("binance-main").secret.reveal() == BINANCE_SECRET


def test_backup_refuses_to_overwrite(stocked: AdminVault, tmp_path: Path) -> None:
    (tmp_path / "b.db").write_text("keep me")
    with pytest.raises(AlreadyExists):
        backup(stocked.store, tmp_path / "b.db")
    assert (tmp_path / "b.db").read_text() == "keep me"


def test_backup_path_with_uri_characters(stocked: AdminVault, tmp_path: Path) -> None:
    odd = tmp_path / "we?ird#na%me"
    odd.mkdir()
    dest = backup(stocked.store, odd / "b.db")
    AdminVault.unlock(dest, PASSPHRASE).close()


def test_restore_round_trip(stocked: AdminVault, vault_path: Path, tmp_path: Path) -> None:
    saved = backup(stocked.store, tmp_path / "b.db")
    before = digest(saved)
    stocked.remove("kucoin-sub1")
    staged = stage_restore(stocked.store, saved, PASSPHRASE)
    assert staged.ok and staged.credentials == 2
    aside = replace_with(stocked.store, staged)
    assert digest(saved) == before  # the backup itself is never written
    assert aside.exists() and vault_path.exists()
    with AdminVault.unlock(vault_path, PASSPHRASE) as restored:
        assert restored.names() == ["binance-main", "kucoin-sub1"]
        last = restored.audit_entries()[-1]
        assert (last.action, last.actor, last.signed) == ("restore", "admin", True)
        assert restored.verify_audit(remember=False).ok
    with AdminVault.unlock(aside, PASSPHRASE) as old:
        assert old.names() == ["binance-main"]


def test_restore_with_a_wrong_passphrase_changes_nothing(
    stocked: AdminVault, vault_path: Path, tmp_path: Path
) -> None:
    saved = backup(stocked.store, tmp_path / "b.db")
    names = stocked.names()
    with pytest.raises(IntegrityError):
        stage_restore(stocked.store, saved, "wrong")
    assert not vault_path.with_name(vault_path.name + ".restoring").exists()
    assert stocked.names() == names


def test_restore_of_a_tampered_backup_is_refused(stocked: AdminVault, tmp_path: Path) -> None:
    saved = backup(stocked.store, tmp_path / "b.db")
    sql(saved, "UPDATE credential_versions SET permissions = 'read,withdraw'")
    staged = stage_restore(stocked.store, saved, PASSPHRASE)
    assert not staged.ok and any("forged or edited" in p for p in staged.problems)
    assert not staged.path.exists()
    with pytest.raises(VaultUnavailable):
        replace_with(stocked.store, staged)


def test_restore_of_garbage_is_refused(stocked: AdminVault, tmp_path: Path) -> None:
    junk = tmp_path / "junk.db"
    junk.write_bytes(b"\0" * 4096)
    with pytest.raises((IntegrityError, VaultUnavailable)):
        stage_restore(stocked.store, junk, PASSPHRASE)


def test_discarded_restore_leaves_no_file(stocked: AdminVault, tmp_path: Path) -> None:
    staged = stage_restore(stocked.store, backup(stocked.store, tmp_path / "b.db"), PASSPHRASE)
    discard(staged)
    assert not staged.path.exists()


def test_restore_keeps_the_transactions_in_a_wal_beside_the_backup(
    stocked: AdminVault, vault_path: Path, tmp_path: Path, binance_payload: dict[str, str]
) -> None:
    """A vault copied by hand while in use: its -wal holds committed writes."""
    stocked.store.checkpoint()
    stocked.add("late-one", "binance", binance_payload, permissions="read")
    wal = vault_path.with_name(vault_path.name + "-wal")
    assert wal.stat().st_size > 0  # the add is in the WAL only (its connection is open)
    hand = tmp_path / "hand"
    hand.mkdir()
    shutil.copyfile(vault_path, hand / "b.db")
    shutil.copyfile(wal, hand / "b.db-wal")
    staged = stage_restore(stocked.store, hand / "b.db", PASSPHRASE)
    assert staged.ok and staged.credentials == 3
    discard(staged)
    assert sorted(p.name for p in hand.iterdir()) == ["b.db", "b.db-wal"]


def test_restore_of_a_fifo_is_refused_at_once(stocked: AdminVault, tmp_path: Path) -> None:
    fifo = tmp_path / "b.db"
    os.mkfifo(fifo, 0o600)
    with pytest.raises(InvalidInput, match="is not a regular file"):
        without_blocking_on(fifo, lambda: stage_restore(stocked.store, fifo, PASSPHRASE))
