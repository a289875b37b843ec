"""The owner's verified prefix of the signed log, kept between processes.

A checkpoint only saves work: every handle below that resumes from one must say what a
handle that walks the whole log says, and anything wrong with the file (or with the
database under it) makes it walk the whole log again.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import vault
from benchmarks import signed_log
from tests.conftest import PASSPHRASE, db_exec
from vault.db import access_history, log_checkpoint
from vault.db.access_history import AccessFacts
from vault.errors import IntegrityError, VaultError
from vault.owner.admin import AdminVault
from vault.runtime import client as client_vault

BACKENDS = ("sqlite", "postgresql")
NAMES = ["binance-main", "kucoin-sub1"]


@pytest.fixture
def hashed(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The seqs of the entries whose hash the signed-log reader recomputes from now on."""
    seqs: list[int] = []
    original = access_history.entry_hash

    def counting(vault_id: bytes, row: access_history.AuditRow) -> bytes:
        seqs.append(row.seq)
        return original(vault_id, row)

    monkeypatch.setattr(access_history, "entry_hash", counting)
    return seqs


def path_of(admin: AdminVault) -> Path:
    path = log_checkpoint.checkpoint_path(admin.vault_id)
    assert path is not None  # the suite's own $XDG_STATE_HOME (tests/conftest.py)
    return path


def facts_of(location: str, *, resume: bool) -> AccessFacts:
    """What a new handle (a new process) says about NAMES, with or without the file."""
    with AdminVault.unlock(location, PASSPHRASE) as handle:
        path = path_of(handle)
        if not resume:
            saved = path.read_bytes() if path.exists() else None
            path.unlink(missing_ok=True)
        facts = handle.signed_access_facts(NAMES)
        if not resume and saved is not None:
            path.write_bytes(saved)
    return facts


@pytest.fixture
def granted(stocked: AdminVault, vault_location: str) -> Iterator[AdminVault]:
    """bot granted binance-main; a checkpoint saved by a former handle."""
    stocked.add_client("bot")
    stocked.grant("bot", ["binance-main"])
    stocked.signed_access_facts(NAMES)
    assert path_of(stocked).exists()
    yield stocked


def test_a_new_handle_hashes_only_the_entries_after_the_checkpoint(
    granted: AdminVault, vault_location: str, hashed: list[int]
) -> None:
    granted.edit("kucoin-sub1", ips=["203.0.113.8"])  # one entry after the checkpoint
    with AdminVault.unlock(vault_location, PASSPHRASE) as handle:
        handle.grant("bot", ["kucoin-sub1"])
    last = db_exec(vault_location, "SELECT max(seq) FROM audit_log")[0][0]
    # The remembered entry, then the edit's (the grant's own entry is not read back).
    assert len(hashed) <= 3
    assert hashed[-1] == last - 1
    hashed.clear()
    with AdminVault.unlock(vault_location, PASSPHRASE) as handle:
        handle.grant("bot", ["binance-main"])
    assert len(hashed) <= 2


def test_a_one_shot_grant_on_a_long_log_walks_only_the_new_entries_the_second_time(
    stocked: AdminVault, vault_location: str, hashed: list[int]
) -> None:
    _, token = stocked.add_client("reader")
    stocked.grant("reader", ["binance-main"])
    signed_log.pad_log(stocked, 5_000, token, "reader", "binance-main")  # a busy bot
    with AdminVault.unlock(vault_location, PASSPHRASE) as handle:
        handle.grant("reader", ["binance-main"])
    assert len(hashed) > 4_900  # the checkpoint was before the reads: they are walked
    hashed.clear()
    with AdminVault.unlock(vault_location, PASSPHRASE) as handle:
        handle.grant("reader", ["binance-main"])
    assert len(hashed) <= 2  # the remembered entry and the former grant's own


def test_resumed_facts_equal_a_full_walk_through_a_history(
    granted: AdminVault, vault_location: str
) -> None:
    """Grants, ungrants, a revocation, a name removed and added again, versions: after
    each step a new handle resuming says what a full walk says."""
    steps = [
        lambda a: a.add_client("ops"),
        lambda a: a.grant("ops", NAMES),
        lambda a: a.ungrant("bot", ["binance-main"]),
        lambda a: a.edit("kucoin-sub1", ips=["203.0.113.9"]),
        lambda a: a.grant("bot", ["binance-main"]),
        lambda a: a.revoke_client("ops"),
        lambda a: a.remove("kucoin-sub1"),
        lambda a: a.add("kucoin-sub1", "binance", {"api_key": "k" * 64, "secret": "s" * 64}),
        lambda a: a.grant("bot", ["kucoin-sub1"]),
    ]
    for step in steps:
        with AdminVault.unlock(vault_location, PASSPHRASE) as handle:
            step(handle)
        assert facts_of(vault_location, resume=True) == facts_of(vault_location, resume=False)
    facts = facts_of(vault_location, resume=True)
    assert facts.revoked.keys() == {"ops"}
    assert facts.grant_standing("bot", "kucoin-sub1")
    assert facts.grant_standing("bot", "binance-main")


def tamper_mac(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(log_checkpoint.MAGIC)] ^= 1
    path.write_bytes(bytes(data))


def tamper_body(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data.replace(b'"revoked":{}', b'"revoked":{"bot":1}'))


def truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[:40])


def garbage(path: Path) -> None:
    path.write_bytes(os.urandom(300))


def world_readable(path: Path) -> None:
    path.chmod(0o644)


def open_directory(path: Path) -> None:
    path.parent.chmod(0o755)


def symlink(path: Path) -> None:
    target = path.with_name("elsewhere.bin")
    path.rename(target)
    path.symlink_to(target)


def fifo(path: Path) -> None:
    path.unlink()
    os.mkfifo(path, 0o600)


@pytest.mark.parametrize(
    "tamper",
    [tamper_mac, tamper_body, truncate, garbage, world_readable, open_directory, symlink, fifo],
)
def test_a_checkpoint_not_to_trust_is_ignored_and_replaced(
    granted: AdminVault, vault_location: str, hashed: list[int], tamper: object
) -> None:
    path = path_of(granted)
    granted.ungrant("bot", ["binance-main"])
    granted.signed_access_facts(NAMES)
    assert callable(tamper)
    tamper(path)
    hashed.clear()
    resumed = facts_of(vault_location, resume=True)
    assert sorted(set(hashed)) == list(range(1, max(hashed) + 1))  # walked from the start
    assert resumed == facts_of(vault_location, resume=False)
    assert not resumed.grant_standing("bot", "binance-main")
    path.parent.chmod(0o700)
    if path.is_symlink() or not path.is_file():
        path.unlink()
    facts_of(vault_location, resume=True)
    hashed.clear()
    facts_of(vault_location, resume=True)
    assert len(hashed) <= 1  # replaced by a good one


def test_a_checkpoint_of_another_vault_or_root_key_is_ignored(
    granted: AdminVault, tmp_path: Path
) -> None:
    other, _ = AdminVault.create(
        str(tmp_path / "other.db"), PASSPHRASE, kdf=None, insecure_test_kdf=True
    )
    with other:
        other.signed_access_facts(NAMES)
        shutil.copy(path_of(granted), path_of(other))
        os.chmod(path_of(other), 0o600)
        mine = log_checkpoint.FileCheckpoint(
            other.vault_id, other.verify_public, other.writer.identity.keyed_fingerprint
        )
        assert mine.load() is None
    theirs = log_checkpoint.FileCheckpoint(
        granted.vault_id, granted.verify_public, granted.writer.identity.keyed_fingerprint
    )
    assert theirs.load() is not None
    wrong_root = log_checkpoint.FileCheckpoint(
        granted.vault_id, bytes(32), granted.writer.identity.keyed_fingerprint
    )
    assert wrong_root.load() is None


def test_a_checkpoint_of_another_version_of_exvault_is_walked_again(
    granted: AdminVault, vault_location: str, hashed: list[int], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The file vouches for the verdict of the walk that saved it: a later exvault may
    walk more strictly (a check added), so what an older one saved is walked again."""
    version = vault.version.__version__
    monkeypatch.setattr(vault.version, "__version__", "0.0.1")
    granted.ungrant("bot", ["binance-main"])
    facts_of(vault_location, resume=True)  # saved by "0.0.1"
    monkeypatch.setattr(vault.version, "__version__", version)
    hashed.clear()
    resumed = facts_of(vault_location, resume=True)
    assert sorted(set(hashed)) == list(range(1, max(hashed) + 1))  # walked from the start
    assert not resumed.grant_standing("bot", "binance-main")
    hashed.clear()
    facts_of(vault_location, resume=True)
    assert len(hashed) <= 1  # replaced by this version's


@pytest.mark.sqlite_only  # a copy of the file is the SQLite backup
def test_a_log_restored_from_an_older_backup_is_walked_again(
    granted: AdminVault, vault_location: str, tmp_path: Path
) -> None:
    backup = tmp_path / "backup.db"
    for suffix in ("", "-wal"):
        if Path(vault_location + suffix).exists():
            shutil.copy(vault_location + suffix, str(backup) + suffix)
    granted.ungrant("bot", ["binance-main"])
    granted.add_client("ops")
    granted.signed_access_facts(NAMES)  # the checkpoint is beyond the backup's end
    granted.close()
    for suffix in ("-wal", "-shm"):
        Path(vault_location + suffix).unlink(missing_ok=True)
    for suffix in ("", "-wal"):
        if Path(str(backup) + suffix).exists():
            shutil.copy(str(backup) + suffix, vault_location + suffix)
    resumed = facts_of(vault_location, resume=True)
    assert resumed == facts_of(vault_location, resume=False)
    assert resumed.grant_standing("bot", "binance-main")


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE audit_log SET detail = 'v' WHERE seq = (SELECT max(seq) FROM audit_log)",
        "UPDATE audit_log SET detail = 'v' WHERE seq = 2",
        "DELETE FROM audit_log WHERE seq = 2",
    ],
    ids=["the remembered entry edited", "an entry inside edited", "an entry inside deleted"],
)
def test_a_prefix_changed_under_the_checkpoint_is_refused_by_a_new_handle(
    granted: AdminVault, vault_location: str, statement: str
) -> None:
    """A full walk finds the chain broken: so must a handle that could resume."""
    last = db_exec(vault_location, "SELECT max(seq) FROM audit_log")[0][0]
    db_exec(vault_location, statement)
    broken = last if "max(seq)" in statement else 2
    with (
        AdminVault.unlock(vault_location, PASSPHRASE) as handle,
        pytest.raises(IntegrityError, match=f"the audit log is broken at entry {broken}\\b"),
    ):
        handle.edit("binance-main", ips=["203.0.113.8"])


def test_a_handles_own_entry_changed_after_its_write_is_not_vouched_for(
    granted: AdminVault, vault_location: str
) -> None:
    """The handle trusts the grant it signed without reading it back; the row as stored
    then gets a bad signature (a full walk drops the grant). The handle must not save a
    checkpoint that vouches for that row: a new handle says what a full walk says."""
    granted.add_client("ops")
    granted.grant("ops", ["binance-main"])
    db_exec(
        vault_location,
        "UPDATE audit_log SET signature = :bad "
        "WHERE seq = (SELECT max(seq) FROM audit_log WHERE action = 'grant')",
        bad=bytes(64),
    )
    granted.edit("kucoin-sub1", ips=["203.0.113.8"])
    granted.signed_access_facts(NAMES)
    resumed = facts_of(vault_location, resume=True)
    assert resumed == facts_of(vault_location, resume=False)
    assert not resumed.grant_standing("ops", "binance-main")


def test_entries_left_waiting_in_the_checkpoint_are_resumed_and_verified_again(
    granted: AdminVault, vault_location: str
) -> None:
    """A handle that resumes a checkpoint from before an ungrant (replayed) and asks
    only about binance-main leaves kucoin-sub1's newer entries waiting in the file,
    unverified: the ungrant (which must outlive the resume) and a grant whose signature
    was then damaged (a full walk drops it, so must the process that folds it from the
    file)."""
    granted.grant("bot", ["kucoin-sub1"])
    facts_of(vault_location, resume=True)  # saves bot's grant of kucoin-sub1, folded
    older = path_of(granted).read_bytes()
    with AdminVault.unlock(vault_location, PASSPHRASE) as handle:
        handle.ungrant("bot", ["kucoin-sub1"])
        handle.add_client("ops")
        handle.grant("ops", ["kucoin-sub1"])
    path_of(granted).write_bytes(older)  # replayed: from before the ungrant
    db_exec(
        vault_location,
        "UPDATE audit_log SET signature = :bad "
        "WHERE seq = (SELECT max(seq) FROM audit_log WHERE action = 'grant')",
        bad=bytes(64),
    )
    with AdminVault.unlock(vault_location, PASSPHRASE) as handle:
        handle.signed_access_facts(["binance-main"])
        saved = log_checkpoint.FileCheckpoint(
            handle.vault_id, handle.verify_public, handle.writer.identity.keyed_fingerprint
        ).load()
    assert saved is not None
    assert [w.entry.action for w in saved.waiting["kucoin-sub1"]] == ["ungrant", "grant"]
    resumed = facts_of(vault_location, resume=True)
    assert resumed == facts_of(vault_location, resume=False)
    assert not resumed.grant_standing("bot", "kucoin-sub1")
    assert not resumed.grant_standing("ops", "kucoin-sub1")


def test_the_files_form_keeps_every_part_of_the_state() -> None:
    """What is saved is what is resumed: every table of the facts, the versions created,
    the waiting entries with their hash, signature and key (never ``checked``)."""
    entry = access_history.SignedEntry(9, "edit", "kucoin-sub1", 3, "ips", "root")
    facts = AccessFacts(
        granted={"binance-main": {"bot": 4}, "kucoin-sub1": {}},
        ungranted={"kucoin-sub1": {"ops": 7}},
        revoked={"old": 5},
        reads={"binance-main": {"client-id": {1, 2}}},
        repeated_versions=[access_history.RepeatedVersion("binance-main", 1, 1, 6)],
    )
    state = access_history.LogState(
        (9, b"h" * 32),
        access_history.FactsFold(facts, {"binance-main": {1: 6, 2: 8}}),
        {"kucoin-sub1": [access_history.WaitingEntry(entry, b"e" * 32, b"s" * 64, b"k" * 32)]},
        b"p" * 32,
    )
    body = log_checkpoint.encode(state, b"v" * 16, b"r" * 32)
    assert log_checkpoint.decode(body, b"v" * 16, b"r" * 32) == state
    assert log_checkpoint.decode(body, b"w" * 16, b"r" * 32) is None
    assert log_checkpoint.decode(body, b"v" * 16, b"q" * 32) is None


def test_a_batch_writes_the_checkpoint_once(
    granted: AdminVault, monkeypatch: pytest.MonkeyPatch
) -> None:
    saved: list[int] = []
    original = log_checkpoint.FileCheckpoint.save

    def counting(self: log_checkpoint.FileCheckpoint, state: access_history.LogState) -> None:
        saved.append(state.head[0])
        original(self, state)

    monkeypatch.setattr(log_checkpoint.FileCheckpoint, "save", counting)
    granted.add_client("ops")
    for i in range(10):
        granted.add(f"other-{i}", "binance", {"api_key": "k" * 64, "secret": "s" * 64})
    saved.clear()
    with granted.batch():
        for i in range(10):
            granted.grant("ops", [f"other-{i}"])
    assert len(saved) <= 1


def test_after_a_rekey_the_old_keys_checkpoint_is_not_resumed(
    granted: AdminVault, vault_location: str, hashed: list[int]
) -> None:
    old = path_of(granted).read_bytes()
    granted.rekey(PASSPHRASE, kdf=None, insecure_test_kdf=True)
    path_of(granted).write_bytes(old)  # the old key's file, as before the rekey
    hashed.clear()
    resumed = facts_of(vault_location, resume=True)
    assert sorted(set(hashed)) == list(range(1, max(hashed) + 1))
    assert resumed == facts_of(vault_location, resume=False)
    assert resumed.grant_standing("bot", "binance-main")
    hashed.clear()
    with AdminVault.unlock(vault_location, PASSPHRASE) as handle:
        handle.grant("bot", ["kucoin-sub1"])  # the new key's checkpoint, resumed
    assert len(hashed) <= 1


OPERATIONS = st.lists(
    st.tuples(
        st.sampled_from(["grant", "ungrant", "edit", "revoke", "remove", "read", "facts"]),
        st.sampled_from(NAMES),
        st.sampled_from(["bot", "ops"]),
    ),
    min_size=1,
    max_size=12,
)


@settings(
    max_examples=15,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(operations=OPERATIONS, handles=st.lists(st.integers(1, 4), min_size=1, max_size=4))
def test_any_history_resumed_across_handles_says_what_a_full_walk_says(
    stocked: AdminVault,
    vault_location: str,
    operations: list[tuple[str, str, str]],
    handles: list[int],
) -> None:
    """Owner operations and client reads spread over several handles (processes), each
    resuming the checkpoint the one before left."""
    payload = {"api_key": "k" * 64, "secret": "s" * 64}
    with AdminVault.unlock(vault_location, PASSPHRASE) as handle:
        tokens = {}
        for client in ("bot", "ops"):
            if not db_exec(vault_location, "SELECT 1 FROM clients WHERE name = :n", n=client):
                tokens[client] = handle.add_client(client)[1]
    cuts = iter(handles)
    todo = list(operations)
    while todo:
        size = next(cuts, len(todo))
        part, todo = todo[:size], todo[size:]
        with AdminVault.unlock(vault_location, PASSPHRASE) as handle:
            for action, name, client in part:
                exists = bool(
                    db_exec(vault_location, "SELECT 1 FROM credentials WHERE name = :n", n=name)
                )
                try:
                    if action == "grant" and exists:
                        handle.grant(client, [name])
                    elif action == "ungrant" and exists:
                        handle.ungrant(client, [name])
                    elif action == "edit" and exists:
                        handle.edit(name, ips=["203.0.113.8"])
                    elif action == "revoke" and client == "ops":
                        handle.revoke_client("ops")
                    elif action == "remove" and exists:
                        handle.remove(name)
                    elif action == "remove":
                        handle.add(name, "binance", payload)
                    elif action == "read" and client in tokens and exists:
                        with client_vault.open(vault_location, token=tokens[client]) as bot:
                            bot.get(name)
                    elif action == "facts":
                        handle.signed_access_facts(NAMES)
                except VaultError:
                    pass  # refused (not granted, revoked): the log says so either way
        assert facts_of(vault_location, resume=True) == facts_of(vault_location, resume=False)


def test_without_a_state_directory_an_owners_write_still_works(
    granted: AdminVault, vault_location: str, no_state_directory: None
) -> None:
    """No state directory (a container's arbitrary uid): the checkpoint only saves
    time, so its missing place is no error; the log is walked."""
    with AdminVault.unlock(vault_location, PASSPHRASE) as handle:
        handle.grant("bot", ["kucoin-sub1"])
        assert handle.signed_access_facts(NAMES).grant_standing("bot", "kucoin-sub1")
