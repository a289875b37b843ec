"""``AdminVault.rekey`` (``exvault passwd --rekey``): new root keys, one transaction.

The cure for an old keyslot row put back (an old passphrase reviving): after a rekey
no slot written before it opens the vault.
"""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import BINANCE_SECRET, KUCOIN_PASSPHRASE, PASSPHRASE, TEST_KDF, db_exec
from vault.errors import IntegrityError, InvalidToken
from vault.ops.verification import verify
from vault.owner.admin import AdminVault
from vault.runtime.client import ClientVault

BACKENDS = ("sqlite", "postgresql")

NEW_PASSPHRASE = "the passphrase after the rekey"
SLOT_COLUMNS = (
    "id, kind, salt, kdf_time_cost, kdf_memory_kib, kdf_parallelism, nonce, wrapped, "
    "created_at, signature"
)


def _passphrase_slot(location: str) -> tuple[object, ...]:
    [row] = db_exec(location, f"SELECT {SLOT_COLUMNS} FROM keyslots WHERE kind = 'passphrase'")
    return row


def _put_back(location: str, row: tuple[object, ...]) -> None:
    """Replace the passphrase slot by an old row, as someone with a backup can."""
    db_exec(location, "DELETE FROM keyslots WHERE kind = 'passphrase'")
    names = [n.strip() for n in SLOT_COLUMNS.split(",")]
    db_exec(
        location,
        f"INSERT INTO keyslots ({SLOT_COLUMNS}) VALUES ({', '.join(':' + n for n in names)})",
        **dict(zip(names, row, strict=True)),
    )


def test_old_passphrase_slot_put_back_after_passwd_opens_the_vault(
    stocked: AdminVault, vault_location: str
) -> None:
    """The limit that rekey cures: passwd alone does not stop an old slot."""
    old = _passphrase_slot(vault_location)
    stocked.change_passphrase(NEW_PASSPHRASE, insecure_test_kdf=True)
    _put_back(vault_location, old)
    AdminVault.unlock(vault_location, PASSPHRASE).close()


def test_old_passphrase_slot_put_back_after_rekey_does_not_open(
    stocked: AdminVault, vault_location: str
) -> None:
    old = _passphrase_slot(vault_location)
    stocked.rekey(NEW_PASSPHRASE, insecure_test_kdf=True)
    _put_back(vault_location, old)
    with pytest.raises(IntegrityError):
        AdminVault.unlock(vault_location, PASSPHRASE)


def test_old_recovery_key_refused_after_rekey_new_one_opens(
    created: tuple[AdminVault, str], vault_location: str
) -> None:
    admin, old_recovery = created
    done = admin.rekey(NEW_PASSPHRASE, insecure_test_kdf=True)
    with pytest.raises(IntegrityError):
        AdminVault.unlock_with_recovery_key(vault_location, old_recovery)
    AdminVault.unlock_with_recovery_key(vault_location, done.recovery_key).close()


def test_rekey_keeps_every_secret_and_verifies(stocked: AdminVault, vault_location: str) -> None:
    _info, old_token = stocked.add_client("bot", max_scope="read,trade")
    stocked.grant("bot", ["binance-main"])
    stocked.get("binance-main")  # a root-signed read entry before the rekey
    with ClientVault.open(vault_location, token=old_token) as bot:
        bot.get("binance-main")  # a client-signed entry before the rekey
    old_fingerprint = stocked.fingerprint
    told: list[tuple[int, int]] = []
    done = stocked.rekey(NEW_PASSPHRASE, insecure_test_kdf=True, progress=lambda *p: told.append(p))
    assert told == [(1, 2), (2, 2)]  # after each of the two versions
    assert done.kdf == TEST_KDF
    assert stocked.fingerprint != old_fingerprint
    assert set(done.tokens) == {"bot"}
    with AdminVault.unlock(vault_location, NEW_PASSPHRASE) as again:
        assert again.fingerprint == stocked.fingerprint
        assert again.get("binance-main").secret.reveal() == BINANCE_SECRET
        assert again.get("kucoin-sub1").passphrase.reveal() == KUCOIN_PASSPHRASE  # type: ignore[union-attr]
        report = verify(again)
        assert report.ok, report.problems
        assert again.verify_audit(remember=False).ok
        assert [e.action for e in again.audit_entries()].count("rekey") == 2  # root, bot
    with ClientVault.open(vault_location, token=done.tokens["bot"]) as bot:
        assert bot.get("binance-main").secret.reveal() == BINANCE_SECRET
    with pytest.raises(InvalidToken, match="fingerprint"):
        ClientVault.open(vault_location, token=old_token)


def test_rekey_twice_keeps_the_audit_chain_verifiable(
    stocked: AdminVault, vault_location: str
) -> None:
    stocked.add_client("bot")
    stocked.grant("bot", ["binance-main"])
    first = stocked.rekey(NEW_PASSPHRASE, insecure_test_kdf=True)
    with ClientVault.open(vault_location, token=first.tokens["bot"]) as bot:
        bot.get("binance-main")  # signed with the client's second key
    stocked.get("kucoin-sub1")
    stocked.rekey("a third passphrase", insecure_test_kdf=True)
    report = stocked.verify_audit(remember=False)
    assert report.ok, report.problems


def test_rekey_with_many_clients_keeps_their_entries_verifiable(
    stocked: AdminVault, vault_location: str
) -> None:
    """Each replaced client key is named in an entry of its own (details are cut to 500
    characters), so their entries before the rekey still verify, however many."""
    for i in range(8):
        _info, token = stocked.add_client(f"bot-{i}")
        stocked.grant(f"bot-{i}", ["binance-main"])
        with ClientVault.open(vault_location, token=token) as bot:
            bot.get("binance-main")
    done = stocked.rekey(NEW_PASSPHRASE, insecure_test_kdf=True)
    assert len(done.tokens) == 8
    report = stocked.verify_audit(remember=False)
    assert report.ok, report.problems


def test_a_rekey_entry_naming_another_key_is_not_believed(
    stocked: AdminVault, vault_location: str
) -> None:
    """A rekey entry whose detail was edited to name the attacker's key (so that
    entries they forged before it would verify) is refused, and so is what it names."""
    stocked.rekey(NEW_PASSPHRASE, insecure_test_kdf=True)
    db_exec(
        vault_location,
        "UPDATE audit_log SET detail = :detail WHERE action = 'rekey'",
        detail="root keys replaced; old signing key " + "ab" * 32,
    )
    problems = stocked.verify_audit(remember=False).problems
    assert any("was edited" in p for p in problems)
    assert any("bad signature" in p for p in problems)  # the entries before it


def test_rekey_recomputes_api_key_fingerprints(stocked: AdminVault, vault_location: str) -> None:
    query = (
        "SELECT credential_id, version, api_key_fingerprint FROM credential_versions "
        "ORDER BY credential_id, version"
    )
    before = db_exec(vault_location, query)
    stocked.rekey(NEW_PASSPHRASE, insecure_test_kdf=True)
    after = db_exec(vault_location, query)
    assert len(after) == len(before)
    assert all(a[2] != b[2] for a, b in zip(after, before, strict=True))


def test_rekey_refuses_a_forged_row_and_changes_nothing(
    stocked: AdminVault, vault_location: str
) -> None:
    """A forged row must not be laundered by the new key's signature."""
    db_exec(vault_location, "UPDATE credentials SET policy = '{\"max_age_days\": 999}'")
    before = db_exec(vault_location, "SELECT * FROM vault_header")
    with pytest.raises(IntegrityError):
        stocked.rekey(NEW_PASSPHRASE, insecure_test_kdf=True)
    assert db_exec(vault_location, "SELECT * FROM vault_header") == before
    AdminVault.unlock(vault_location, PASSPHRASE).close()


# ------------------------------------------------------------------ crash safety

_REKEY_CHILD = """
import sys
from vault.owner.admin import AdminVault
admin = AdminVault.unlock(sys.argv[1], sys.argv[2])
print("go", flush=True)
admin.rekey(sys.argv[3], insecure_test_kdf=True)
print("done", flush=True)
"""


def _run_rekey_child(path: Path, kill_after: float | None) -> bool:
    """Rekey the vault at ``path`` in a child process, SIGKILLed ``kill_after`` seconds
    after it starts the rekey; whether it finished."""
    child = subprocess.Popen(
        [sys.executable, "-c", _REKEY_CHILD, str(path), PASSPHRASE, NEW_PASSPHRASE],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert child.stdout is not None
    assert child.stdout.readline() == "go\n"
    started = time.perf_counter()
    if kill_after is not None:
        time.sleep(kill_after)
        child.send_signal(signal.SIGKILL)
    child.wait(timeout=120)
    assert child.stdout.read() in ("done\n", "")
    child.stdout.close()
    if kill_after is None:
        _run_rekey_child.seconds = time.perf_counter() - started  # type: ignore[attr-defined]
    return child.returncode == 0


@pytest.mark.sqlite_only
def test_a_kill_mid_rekey_leaves_the_old_or_the_new_vault(
    stocked: AdminVault, vault_path: Path, tmp_path: Path
) -> None:
    stocked.add_client("bot")
    stocked.grant("bot", ["binance-main"])
    with stocked.batch():  # enough rows for the rekey to take a while
        for i in range(300):
            stocked.add(f"extra-{i}", "binance", {"api_key": f"k{i:019d}", "secret": "s" * 32})
    stocked.close()
    template = tmp_path / "template.db"
    shutil.copy(vault_path, template)
    trial = tmp_path / "trial.db"
    shutil.copy(template, trial)
    assert _run_rekey_child(trial, None)
    seconds: float = _run_rekey_child.seconds  # type: ignore[attr-defined]
    outcomes = []
    for fraction in (0.05, 0.3, 0.6, 0.9, 1.5):
        for suffix in ("", "-wal", "-shm"):
            Path(str(trial) + suffix).unlink(missing_ok=True)
        shutil.copy(template, trial)
        _run_rekey_child(trial, seconds * fraction)
        try:
            admin = AdminVault.unlock(trial, PASSPHRASE)
            outcomes.append("old")
        except IntegrityError:
            admin = AdminVault.unlock(trial, NEW_PASSPHRASE)
            outcomes.append("new")
        with admin:
            report = verify(admin)
            assert report.ok, (fraction, report.problems)
            assert admin.get("binance-main").secret.reveal() == BINANCE_SECRET
            assert admin.verify_audit(remember=False).ok
    assert "old" in outcomes, outcomes  # some kills did land before the commit


def test_signed_history_still_counts_after_a_rekey(
    stocked: AdminVault, vault_location: str
) -> None:
    """Grants and reads signed before a rekey (with the keys it replaced) still back the
    owner's wraps and still count for check's last read; the heads' stage digests
    follow the re-signed versions."""
    from datetime import timedelta

    from vault.db.inventory import Inventory
    from vault.format.model import utc_now
    from vault.ops.checks import check

    _, token = stocked.add_client("bot")
    stocked.grant("bot", ["binance-main"])
    with ClientVault.open(vault_location, token=token) as bot:
        bot.get("binance-main")
    done = stocked.rekey(NEW_PASSPHRASE, insecure_test_kdf=True)
    with Inventory.open(vault_location) as inv:
        report = check(inv, utc_now() + timedelta(days=40))
    (unread,) = [f for f in report.findings if f.code == "unread"]
    assert "not read for 40 days" in unread.message  # the read signed by the old key
    assert stocked.edit("binance-main", ips=["203.0.113.8"]).wrapped_for == ("bot",)
    assert verify(stocked).ok
    with ClientVault.open(vault_location, token=done.tokens["bot"]) as bot:
        assert bot.get("binance-main").secret.reveal() == BINANCE_SECRET


def test_rekey_refuses_a_client_record_put_back_from_before_its_revocation(
    stocked: AdminVault, vault_location: str
) -> None:
    """The record verifies with the old key, but the signed log revokes the client: a
    rekey must not hand it a fresh token."""
    stocked.add_client("bot")
    ((signature,),) = db_exec(vault_location, "SELECT signature FROM clients WHERE name = 'bot'")
    stocked.revoke_client("bot")
    db_exec(
        vault_location,
        "UPDATE clients SET revoked_at = NULL, signature = :sig WHERE name = 'bot'",
        sig=signature,
    )
    with pytest.raises(IntegrityError, match='client "bot" is revoked in the signed audit log'):
        stocked.rekey(NEW_PASSPHRASE, insecure_test_kdf=True)
    assert verify(stocked).problems  # the put-back record is reported, nothing rekeyed
