"""Staged rotation (vault/owner/rotation.py): start -> verify -> promote -> finish, abort.

What a running bot sees throughout (a client handle opened before the rotation),
idempotency of every step, the audit trail, a process killed between steps and at a
random moment, and readers running while the steps commit.
"""

from __future__ import annotations

import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from datetime import datetime, timedelta
from pathlib import Path

import pytest

import vault
import vault.owner.rotation
import vault.runtime.client
from tests.conftest import (
    BINANCE_API_KEY,
    BINANCE_SECRET,
    PASSPHRASE,
    TEST_KDF,
    copy_rows,
    put_rows,
    sql,
)
from vault.errors import AccessDenied, Conflict, InvalidInput, NotFound
from vault.format.model import utc_now
from vault.ops.verification import verify
from vault.owner import rotation
from vault.owner.admin import AdminVault

BACKENDS = ("sqlite", "postgresql")

NAME = "binance-main"
NEW_API_KEY = "Zr8kQ2wX7nB4vL1pT6yH3mJ9cF5dS0aGeRuIoKxNqWzEbVtYhCsMlPjDfAgUiOn2"
NEW_SECRET = "p4Lk9Qw2Er7Ty1Ui6Op3As8Df5Gh0Jk4Zx9Cv2Bn7Mq1Wz6Xe3Rc8Vt5By0Nu4Im"
OLD = {"api_key": BINANCE_API_KEY, "secret": BINANCE_SECRET}
NEW = {"api_key": NEW_API_KEY, "secret": NEW_SECRET}
REPO = Path(__file__).resolve().parents[2]
VERSION_TABLES = ("credential_versions", "payloads", "dek_wraps")


class Clock:
    """A settable ``utc_now`` (starts at the real time: issue dates stay valid)."""

    def __init__(self) -> None:
        self.now = utc_now()

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    """The clock of the rotation steps and of client reads."""
    c = Clock()
    monkeypatch.setattr(vault.owner.rotation, "utc_now", c)
    monkeypatch.setattr(vault.runtime.client, "utc_now", c)
    return c


@pytest.fixture
def token(stocked: AdminVault) -> str:
    """grid-bot (max scope trade) granted binance-main (v1: OLD, read,trade, one IP)."""
    _, tok = stocked.add_client("grid-bot", max_scope="trade")
    stocked.grant("grid-bot", [NAME])
    return tok


def secret_of(cred: vault.Credential) -> str:
    return cred.secret.reveal()


def rotation_actions(admin: AdminVault) -> list[tuple[str, int | None, str]]:
    return [
        (e.action, e.version, e.detail)
        for e in admin.audit_entries()
        if e.action.startswith("rotate-") and e.credential == NAME
    ]


# ------------------------------------------------------------------------- happy path


def test_happy_path_with_a_client_reading_throughout(
    stocked: AdminVault, token: str, vault_location: str, clock: Clock
) -> None:
    with vault.open(vault_location, token=token) as bot:
        cred = bot.get(NAME)
        assert (cred.version, secret_of(cred)) == (1, BINANCE_SECRET)

        started = rotation.start(stocked, NAME, NEW)
        assert (started.step, started.changed, started.version) == ("start", True, 2)
        info = stocked.describe(NAME)
        assert (info.version, info.pending_version, info.previous_version) == (1, 2, None)
        assert info.pending_since == clock.now
        # The bot keeps the old key as current; it can already read the pending one.
        assert (bot.get(NAME).version, secret_of(bot.get(NAME))) == (1, BINANCE_SECRET)
        pending = bot.get(NAME, stage="pending")
        assert (pending.version, pending.stage, secret_of(pending)) == (2, "pending", NEW_SECRET)
        assert pending.api_key.reveal() == NEW_API_KEY
        with pytest.raises(NotFound):
            bot.get(NAME, stage="previous")

        checks = rotation.verify(stocked, NAME)
        assert [(c.name, c.passed) for c in checks] == [
            ("decrypts", True),
            ("format", True),
            ("new-key", True),
            ("scope", True),
        ]

        promoted = rotation.promote(stocked, NAME)
        assert (promoted.changed, promoted.version) == (True, 2)
        info = stocked.describe(NAME)
        assert (info.version, info.pending_version, info.previous_version) == (2, None, 1)
        assert info.previous_until == clock.now + timedelta(hours=24)
        current = bot.get(NAME)
        assert (current.version, current.stage, secret_of(current)) == (2, "current", NEW_SECRET)
        assert secret_of(vault.load(NAME, where=vault_location, token=token)) == NEW_SECRET
        with pytest.raises(NotFound):
            bot.get(NAME, stage="pending")

        # previous: readable during the grace period, refused from its last second on.
        start = clock.now
        clock.now = start + timedelta(hours=23, minutes=59, seconds=59)
        previous = bot.get(NAME, stage="previous")
        assert (previous.version, previous.stage, secret_of(previous)) == (
            1,
            "previous",
            BINANCE_SECRET,
        )
        clock.now = start + timedelta(hours=24)
        with pytest.raises(AccessDenied, match="grace period"):
            bot.get(NAME, stage="previous")
        denied = [e for e in stocked.audit_entries() if e.outcome == "denied"]
        assert denied[-1].actor == "client:grid-bot" and denied[-1].version == 1
        assert bot.get(NAME).version == 2  # current unaffected

        finished = rotation.finish(stocked, NAME)  # the grace period is over
        assert (finished.changed, finished.version) == (True, 2)
        assert "delete that key at the exchange" in finished.message
        with pytest.raises(NotFound):
            bot.get(NAME, stage="previous")
        assert secret_of(bot.get(NAME)) == NEW_SECRET

    info = stocked.describe(NAME)
    assert (info.version, info.pending_version, info.previous_version) == (2, None, None)
    assert info.previous_until is None
    history = {v.version: v for v in stocked.history(NAME)}
    assert history[2].stages == ("current",) and history[2].readable
    assert history[1].stages == () and not history[1].readable  # ciphertext gone
    assert stocked.get(NAME).api_key.reveal() == NEW_API_KEY
    with pytest.raises(NotFound):
        stocked.get(NAME, stage="previous")
    assert rotation_actions(stocked) == [
        ("rotate-start", 2, ""),
        ("rotate-verify", 2, "passed"),
        ("rotate-promote", 2, ""),
        ("rotate-finish", 1, ""),
    ]
    assert stocked.verify_audit(remember=False).ok


def test_finish_waits_for_the_grace_period(stocked: AdminVault, clock: Clock) -> None:
    rotation.start(stocked, NAME, NEW)
    rotation.promote(stocked, NAME, grace=timedelta(hours=2))
    before = stocked.describe(NAME)
    clock.now += timedelta(hours=2) - timedelta(seconds=1)
    with pytest.raises(Conflict, match="--force"):
        rotation.finish(stocked, NAME)
    assert stocked.describe(NAME) == before
    assert rotation_actions(stocked)[-1][0] == "rotate-promote"
    clock.now += timedelta(seconds=1)
    assert rotation.finish(stocked, NAME).changed is True


def test_finish_forced_during_the_grace_period(stocked: AdminVault, clock: Clock) -> None:
    rotation.start(stocked, NAME, NEW)
    rotation.promote(stocked, NAME)
    assert rotation.finish(stocked, NAME, force=True).changed is True
    assert stocked.describe(NAME).previous_version is None


def test_rollback_during_the_grace_period(
    stocked: AdminVault, token: str, vault_location: str, clock: Clock
) -> None:
    with vault.open(vault_location, token=token) as bot:
        rotation.start(stocked, NAME, NEW)
        rotation.promote(stocked, NAME, grace=timedelta(hours=2))
        assert secret_of(bot.get(NAME)) == NEW_SECRET
        clock.now += timedelta(hours=1)
        result = rotation.rollback(stocked, NAME)
        assert (result.changed, result.version) == (True, 1)
        # The bot reads the old key again, and can still read the rolled-back one
        # as pending.
        assert (bot.get(NAME).version, secret_of(bot.get(NAME))) == (1, BINANCE_SECRET)
        assert secret_of(bot.get(NAME, stage="pending")) == NEW_SECRET
    info = stocked.describe(NAME)
    assert (info.version, info.pending_version, info.previous_version) == (1, 2, None)
    assert rotation_actions(stocked)[-1] == ("rotate-rollback", 1, "")
    assert stocked.verify_audit(remember=False).ok
    assert verify(stocked).ok
    again = rotation.rollback(stocked, NAME)
    assert (again.changed, again.version) == (False, 1)
    # Either way out: promote again, or abort.
    assert rotation.promote(stocked, NAME).version == 2


def test_rollback_then_abort(stocked: AdminVault) -> None:
    rotation.start(stocked, NAME, NEW)
    rotation.promote(stocked, NAME)
    rotation.rollback(stocked, NAME)
    rotation.abort(stocked, NAME)
    info = stocked.describe(NAME)
    assert (info.version, info.pending_version, info.previous_version) == (1, None, None)
    assert stocked.get(NAME).secret.reveal() == BINANCE_SECRET
    assert {v.version: v.readable for v in stocked.history(NAME)} == {1: True, 2: False}


def test_rollback_refused_after_the_grace_period(stocked: AdminVault, clock: Clock) -> None:
    rotation.start(stocked, NAME, NEW)
    rotation.promote(stocked, NAME, grace=timedelta(hours=2))
    clock.now += timedelta(hours=2)
    before = stocked.describe(NAME)
    with pytest.raises(Conflict, match=r"grace period .* ended"):
        rotation.rollback(stocked, NAME)
    assert stocked.describe(NAME) == before


def test_rollback_refused_while_another_rotation_is_pending(stocked: AdminVault) -> None:
    rotation.start(stocked, NAME, NEW)
    rotation.promote(stocked, NAME)
    rotation.start(stocked, NAME, {"api_key": "X" * 64, "secret": "Y" * 64})
    with pytest.raises(Conflict, match="abort it first"):
        rotation.rollback(stocked, NAME)
    info = stocked.describe(NAME)
    assert (info.version, info.pending_version, info.previous_version) == (2, 3, 1)


def test_rollback_without_a_previous_version(stocked: AdminVault) -> None:
    result = rotation.rollback(stocked, NAME)
    assert (result.changed, result.version) == (False, 1)
    with pytest.raises(NotFound):
        rotation.rollback(stocked, "nope")


def test_new_version_keeps_the_expiry_and_policy(stocked: AdminVault) -> None:
    issued = stocked.describe(NAME).metadata.issued_on
    stocked.edit(NAME, expires_on=issued + timedelta(days=90))
    stocked.set_policy(NAME, grace_hours=6)
    stocked.accept_risk(NAME, "stale", "spare key")
    policy = stocked.policy(NAME)
    today = utc_now().date()
    result = rotation.start(stocked, NAME, NEW)
    assert f"expiring on {today + timedelta(days=90)}" in result.message
    pending = stocked.get(NAME, stage="pending")
    assert (pending.issued_on, pending.expires_on) == (today, today + timedelta(days=90))
    rotation.promote(stocked, NAME)
    assert stocked.policy(NAME) == policy
    until = stocked.describe(NAME).previous_until
    assert until is not None and until - utc_now() <= timedelta(hours=6)


def test_new_version_expiry_changed_or_cleared(stocked: AdminVault) -> None:
    stocked.edit(NAME, expires_on=utc_now().date() + timedelta(days=30))
    rotation.start(stocked, NAME, NEW, expires_on=None)
    assert stocked.get(NAME, stage="pending").expires_on is None
    rotation.abort(stocked, NAME)
    later = utc_now().date() + timedelta(days=365)
    rotation.start(stocked, NAME, NEW, expires_on=later)
    assert stocked.get(NAME, stage="pending").expires_on == later


def test_new_version_without_expiry_stays_without(stocked: AdminVault) -> None:
    assert stocked.describe(NAME).metadata.expires_on is None
    rotation.start(stocked, NAME, NEW)
    assert stocked.get(NAME, stage="pending").expires_on is None


def test_new_version_inherits_scope_unless_given(stocked: AdminVault, token: str) -> None:
    rotation.start(stocked, NAME, NEW)
    pending = stocked.get(NAME, stage="pending")
    assert pending.permissions == ("read", "trade") and pending.ips == ("203.0.113.7",)
    assert pending.issued_on == utc_now().date() and pending.expires_on is None
    rotation.abort(stocked, NAME)
    rotation.start(stocked, NAME, NEW, permissions="read", ips=["198.51.100.9"], expires_on=None)
    rotation.promote(stocked, NAME)
    meta = stocked.describe(NAME).metadata
    assert meta.permissions == ("read",) and meta.ips == ("198.51.100.9",)


def test_start_refuses_permissions_beyond_a_grantee(stocked: AdminVault, token: str) -> None:
    with pytest.raises(Conflict, match="grid-bot"):
        rotation.start(stocked, NAME, NEW, permissions="read,trade,withdraw")
    assert stocked.describe(NAME).pending_version is None


def test_start_validates_the_new_key(stocked: AdminVault) -> None:
    with pytest.raises(InvalidInput):
        rotation.start(stocked, NAME, {"api_key": NEW_API_KEY})  # no secret
    with pytest.raises(InvalidInput):
        rotation.start(stocked, NAME, NEW, ips=["not-an-ip"])
    assert stocked.describe(NAME).pending_version is None


def test_every_grantee_gets_the_new_version(
    stocked: AdminVault, token: str, vault_location: str
) -> None:
    _, second = stocked.add_client("dca-bot")
    stocked.grant("dca-bot", [NAME])
    rotation.start(stocked, NAME, NEW)
    _, late = stocked.add_client("late-bot")
    stocked.grant("late-bot", [NAME])  # granted while pending: gets pending too
    for tok in (token, second, late):
        assert secret_of(vault.load(NAME, stage="pending", where=vault_location, token=tok)) == (
            NEW_SECRET
        )
    rotation.promote(stocked, NAME)
    for tok in (token, second, late):
        assert secret_of(vault.load(NAME, where=vault_location, token=tok)) == NEW_SECRET
        assert secret_of(vault.load(NAME, stage="previous", where=vault_location, token=tok)) == (
            BINANCE_SECRET
        )


# --------------------------------------------------------------------- abort, conflict


def test_abort(stocked: AdminVault, token: str, vault_location: str) -> None:
    rotation.start(stocked, NAME, NEW)
    aborted = rotation.abort(stocked, NAME)
    assert (aborted.step, aborted.changed, aborted.version) == ("abort", True, 1)
    info = stocked.describe(NAME)
    assert (info.version, info.pending_version, info.pending_since) == (1, None, None)
    with pytest.raises(NotFound):
        vault.load(NAME, stage="pending", where=vault_location, token=token)
    assert secret_of(vault.load(NAME, where=vault_location, token=token)) == BINANCE_SECRET
    history = {v.version: v for v in stocked.history(NAME)}
    assert history[2].stages == () and not history[2].readable
    again = rotation.abort(stocked, NAME)
    assert again.changed is False and "no rotation is pending" in again.message
    # A new rotation can start after an abort (a fresh version number).
    assert rotation.start(stocked, NAME, NEW).version == 3
    assert rotation_actions(stocked) == [
        ("rotate-start", 2, ""),
        ("rotate-abort", 2, ""),
        ("rotate-start", 3, ""),
    ]


def test_a_deleted_version_row_does_not_let_its_number_be_reused(
    stocked: AdminVault, token: str, vault_location: str
) -> None:
    """A DB writer keeps the rows of an aborted version K2, deletes its version row so
    that the next rotation would take its number, and after that rotation K3 is done
    puts K2's rows back: nobody may read K2 as current, and verify must say so."""
    (cid,) = sql(vault_location, "SELECT id FROM credentials WHERE name = ?", NAME)[0]
    discarded = {"api_key": "K2" + NEW_API_KEY[2:], "secret": "K2" + NEW_SECRET[2:]}
    rotation.start(stocked, NAME, discarded)
    where = "credential_id = :cid AND version = 2"
    saved = {t: copy_rows(vault_location, t, where, cid=cid) for t in VERSION_TABLES}
    rotation.abort(stocked, NAME)
    sql(
        vault_location,
        "DELETE FROM credential_versions WHERE credential_id = ? AND version = 2",
        cid,
    )
    rotation.start(stocked, NAME, NEW)
    rotation.promote(stocked, NAME)
    rotation.finish(stocked, NAME, force=True)
    for table in VERSION_TABLES:  # parents first
        put_rows(vault_location, table, saved[table], where, cid=cid)

    assert secret_of(vault.load(NAME, where=vault_location, token=token)) == NEW_SECRET
    assert secret_of(stocked.get(NAME)) == NEW_SECRET
    assert not verify(stocked).ok
    stocked.edit(NAME, ips=["203.0.113.8"])  # copies the current key into a new version
    assert secret_of(stocked.get(NAME)) == NEW_SECRET


def test_start_while_pending(stocked: AdminVault) -> None:
    rotation.start(stocked, NAME, NEW)
    other = {"api_key": "X" * 64, "secret": "Y" * 64}
    with pytest.raises(Conflict, match=r"already pending \(version 2\).*exvault rotate abort"):
        rotation.start(stocked, NAME, other)
    repeat = rotation.start(stocked, NAME, NEW)  # the same start again: a no-op
    assert (repeat.changed, repeat.version) == (False, 2)
    assert "already pending" in repeat.message
    assert [v.version for v in stocked.history(NAME)] == [2, 1]
    assert secret_of(stocked.get(NAME, stage="pending")) == NEW_SECRET
    assert [a for a, _, _ in rotation_actions(stocked)] == ["rotate-start"]


def test_steps_are_idempotent(stocked: AdminVault) -> None:
    with pytest.raises(Conflict, match="nothing to promote"):
        rotation.promote(stocked, NAME)
    assert rotation.finish(stocked, NAME, force=True).changed is False
    assert rotation.abort(stocked, NAME).changed is False
    rotation.start(stocked, NAME, NEW)
    assert rotation.promote(stocked, NAME).changed is True
    second = rotation.promote(stocked, NAME)
    assert (second.changed, second.version) == (False, 2)
    assert "already promoted" in second.message
    assert rotation.abort(stocked, NAME).changed is False  # nothing pending any more
    assert rotation.finish(stocked, NAME, force=True).changed is True
    assert rotation.finish(stocked, NAME, force=True).changed is False
    assert [a for a, _, _ in rotation_actions(stocked)] == [
        "rotate-start",
        "rotate-promote",
        "rotate-finish",
    ]
    assert stocked.describe(NAME).version == 2


def test_promote_over_an_unfinished_previous(stocked: AdminVault) -> None:
    rotation.start(stocked, NAME, NEW)
    rotation.promote(stocked, NAME)
    third = {"api_key": "T" * 64, "secret": "U" * 64}
    rotation.start(stocked, NAME, third)
    rotation.promote(stocked, NAME)
    info = stocked.describe(NAME)
    assert (info.version, info.previous_version) == (3, 2)
    assert not {v.version: v for v in stocked.history(NAME)}[1].readable


@pytest.mark.parametrize("same", ["api_key", "secret"])
def test_verify_fails_when_the_key_did_not_change(stocked: AdminVault, same: str) -> None:
    pending = dict(NEW)
    pending[same] = OLD[same]
    rotation.start(stocked, NAME, pending)
    checks = {c.name: c for c in rotation.verify(stocked, NAME)}
    assert not checks["new-key"].passed
    assert ("API key" if same == "api_key" else "secret") in checks["new-key"].detail
    assert "create a new key at the exchange" in checks["new-key"].detail
    assert all(c.passed for n, c in checks.items() if n != "new-key")
    assert rotation_actions(stocked)[-1] == ("rotate-verify", 2, "failed: new-key")


def test_verify_needs_a_pending_version(stocked: AdminVault) -> None:
    with pytest.raises(NotFound, match="no rotation"):
        rotation.verify(stocked, NAME)


def test_edit_refused_while_pending(stocked: AdminVault) -> None:
    rotation.start(stocked, NAME, NEW)
    with pytest.raises(Conflict, match="pending"):
        stocked.edit(NAME, permissions="read")
    rotation.abort(stocked, NAME)
    assert stocked.edit(NAME, permissions="read").metadata.permissions == ("read",)


def test_steps_on_an_unknown_credential(stocked: AdminVault) -> None:
    for step in (rotation.verify, rotation.promote, rotation.finish, rotation.abort):
        with pytest.raises(NotFound):
            step(stocked, "nope")
    with pytest.raises(NotFound):
        rotation.start(stocked, "nope", NEW)


# ------------------------------------------------------------------ crash between steps
#
# Each step runs in a child process (a fresh interpreter that unlocks the vault with the
# passphrase file), which is killed with SIGKILL once it reports the step committed;
# the parent then resumes. Children start in parallel, one vault each, because the
# interpreter start-up (imports) is most of their cost.

CHILD = r"""
import json, sys, time
import vault
from vault.owner import rotation
from vault.runtime.secretfile import read_secret_file

path, passfile, step, name = sys.argv[1:5]
new_key = json.loads(sys.stdin.readline())
admin = vault.unlock(path, read_secret_file(passfile, "passphrase file"))
print("ready", flush=True)
assert sys.stdin.readline().strip() == "go"
if step == "start":
    changed = rotation.start(admin, name, new_key).changed
elif step == "verify":
    changed = all(c.passed for c in rotation.verify(admin, name))
else:
    force = {"force": True} if step == "finish" else {}
    changed = getattr(rotation, step)(admin, name, **force).changed
print("committed", json.dumps(changed), flush=True)
time.sleep(120)
"""


def _spawn(script: str, *args: str, stdin: str = "") -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        [sys.executable, "-c", script, *args],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=REPO,
    )
    _send(proc, stdin)
    return proc


def _send(proc: subprocess.Popen[str], text: str) -> None:
    assert proc.stdin is not None
    proc.stdin.write(text)
    proc.stdin.flush()


def _await_line(proc: subprocess.Popen[str], timeout: float = 60) -> str:
    stdout = proc.stdout
    assert stdout is not None
    result: list[str] = []
    reader = threading.Thread(target=lambda: result.append(stdout.readline()), daemon=True)
    reader.start()
    reader.join(timeout)
    if not result or not result[0]:
        proc.kill()
        _, err = proc.communicate()
        pytest.fail(f"child produced no line; stderr:\n{err}")
    return result[0].strip()


def _kill(proc: subprocess.Popen[str]) -> None:
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    for stream in (proc.stdin, proc.stdout, proc.stderr):
        if stream is not None:
            stream.close()


def _state(admin: AdminVault) -> tuple[int, int | None, int | None]:
    info = admin.describe(NAME)
    return info.version, info.pending_version, info.previous_version


def _new_vault(path: Path) -> tuple[AdminVault, str]:
    """A vault like ``stocked``'s binance-main, granted to grid-bot; returns the token."""
    admin, _ = AdminVault.create(path, PASSPHRASE, kdf=TEST_KDF, insecure_test_kdf=True)
    admin.add(NAME, "binance", OLD, permissions="read,trade", ips=["203.0.113.7"])
    _, tok = admin.add_client("grid-bot", max_scope="trade")
    admin.grant("grid-bot", [NAME])
    return admin, tok


def assert_consistent(vault_location: str, known: dict[int, str] | None = None) -> AdminVault:
    """Open the vault afresh and check that the rotation state is whole.

    Every staged version decrypts (and, when ``known`` maps versions to secrets, holds
    the secret written with it); every unstaged version lost its ciphertext; the
    pending and previous labels come with their times; the last rotation entry in the
    audit log (committed in the same transaction) agrees with the state.
    """
    db = sqlite3.connect(vault_location)
    try:
        assert db.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
    finally:
        db.close()
    admin = AdminVault.unlock(vault_location, PASSPHRASE)
    info = admin.describe(NAME)
    assert (info.pending_version is None) == (info.pending_since is None)
    assert (info.previous_version is None) == (info.previous_until is None)
    for v in admin.history(NAME):
        assert v.readable == bool(v.stages), v
        for stage in v.stages:
            cred = admin.get(NAME, stage=stage)
            assert cred.version == v.version
            if known is not None:
                assert secret_of(cred) == known[v.version]
    last = [a for a, _, _ in rotation_actions(admin) if a != "rotate-verify"]
    if info.pending_version is not None:
        assert last[-1] == "rotate-start"
    elif last:
        assert last[-1] in ("rotate-abort", "rotate-promote", "rotate-finish")
        assert (last[-1] == "rotate-promote") == (info.previous_version is not None)
    assert admin.verify_audit(remember=False).ok
    return admin


def _do(admin: AdminVault, step: str, new_key: dict[str, str] = NEW) -> bool:
    """Run one step; True when it changed something (verify: when every check passed)."""
    if step == "start":
        return rotation.start(admin, NAME, new_key).changed
    if step == "verify":
        return all(c.passed for c in rotation.verify(admin, NAME))
    force = {"force": True} if step == "finish" else {}  # no grace period to wait out
    return bool(getattr(rotation, step)(admin, NAME, **force).changed)


# step the killed child runs: (steps the parent runs first, state after the kill,
# step the parent resumes with, state after that)
CRASHES = {
    "start": ((), (1, 2, None), "verify", (1, 2, None)),
    "verify": (("start",), (1, 2, None), "promote", (2, None, 1)),
    "promote": (("start",), (2, None, 1), "finish", (2, None, None)),
    "finish": (("start", "promote"), (2, None, None), "start", (2, 3, None)),
    "abort": (("start",), (1, None, None), "start", (1, 3, None)),
}


def test_killed_after_each_step_then_resumed(tmp_path: Path, passphrase_file: Path) -> None:
    known = {1: BINANCE_SECRET, 2: NEW_SECRET, 3: BINANCE_SECRET}
    runs = {}
    for step in CRASHES:
        path = tmp_path / step / "vault.db"
        admin, tok = _new_vault(path)
        proc = _spawn(
            CHILD, str(path), str(passphrase_file), step, NAME, stdin=json.dumps(NEW) + "\n"
        )
        runs[step] = (path, admin, tok, proc)
    try:
        for step, (_path, admin, _tok, proc) in runs.items():
            for done in CRASHES[step][0]:
                assert _do(admin, done), step
            assert _await_line(proc) == "ready", step
            _send(proc, "go\n")
        for step, (_path, _admin, _tok, proc) in runs.items():
            assert _await_line(proc) == "committed true", step
            _kill(proc)
    finally:
        for *_, proc in runs.values():
            if proc.poll() is None:
                proc.kill()
                proc.wait()

    for step, (path, parent, tok, _proc) in runs.items():
        parent.close()
        _before, after_kill, resume, after_resume = CRASHES[step]
        with assert_consistent(path, known) as admin:
            assert _state(admin) == after_kill, step
            # Running the killed step again is harmless: nothing is left to do.
            assert _do(admin, step) is (step == "verify"), step
            assert _state(admin) == after_kill, step
            # ...and the next step goes on from there (a restart takes a third key).
            assert _do(admin, resume, OLD), step
            assert _state(admin) == after_resume, step
        # The bot reads whatever is current, whole.
        cred = vault.load(NAME, where=path, token=tok)
        assert cred.version == after_resume[0], step
        assert secret_of(cred) == known[cred.version], step
        assert_consistent(path, known).close()


LOOP = r"""
import json, sys, time
import vault
from vault.owner import rotation
from vault.runtime.secretfile import read_secret_file

path, passfile, name, cycle = sys.argv[1:5]
keys = json.loads(sys.stdin.readline())
admin = vault.unlock(path, read_secret_file(passfile, "passphrase file"))
print("ready", flush=True)
i = 0
while True:
    rotation.start(admin, name, keys[i % 2])
    if cycle == "abort":
        rotation.abort(admin, name)
    else:
        rotation.verify(admin, name)
        rotation.promote(admin, name)
        rotation.finish(admin, name, force=True)
    i += 1
    time.sleep(0.02)  # room for the readers' audit entries (SQLite has one writer)
"""


@pytest.fixture
def kill_rounds(request: pytest.FixtureRequest) -> int:
    """Random kills per cycle: a few by default, many with --long or EXVAULT_LONG=1."""
    try:
        long = bool(request.getfixturevalue("long_run"))
    except pytest.FixtureLookupError:
        long = os.environ.get("EXVAULT_LONG") == "1"
    return 25 if long else 1


def test_killed_at_a_random_moment(tmp_path: Path, passphrase_file: Path, kill_rounds: int) -> None:
    """A child loops start/abort (another start/verify/promote/finish) and is killed at a
    random moment; the vault opens and the rotation is either pending or not, never half,
    and it can be taken on from there."""
    # Two new keys alternate, so every start writes a new version; each secret is
    # recognised by its api_key.
    keys = [NEW, {"api_key": "Q" * 64, "secret": "R" * 64}]
    pairs = {BINANCE_API_KEY: BINANCE_SECRET, NEW_API_KEY: NEW_SECRET, "Q" * 64: "R" * 64}
    seed = random.SystemRandom().randrange(2**32)
    rng = random.Random(seed)
    cycles = {}
    for cycle in ("abort", "full"):
        path = tmp_path / cycle / "vault.db"
        admin, tok = _new_vault(path)
        admin.close()  # only the children write
        cycles[cycle] = (path, tok)
    bots = [vault.open(path, token=tok) for path, tok in cycles.values()]
    reads = 0
    for round_ in range(kill_rounds):
        procs = {
            cycle: _spawn(
                LOOP,
                str(path),
                str(passphrase_file),
                NAME,
                cycle,
                stdin=json.dumps(keys) + "\n",
            )
            for cycle, (path, _tok) in cycles.items()
        }
        try:
            for proc in procs.values():
                assert _await_line(proc) == "ready"
            delays = {cycle: rng.uniform(0.0, 0.4) for cycle in procs}
            started = time.monotonic()
            # Until each kill, this process reads as the bots do, while the child writes:
            # every read is one whole version (the secret belongs to the api_key).
            for cycle, delay in sorted(delays.items(), key=lambda kv: kv[1]):
                while True:
                    for handle in bots:
                        for stage in ("current", "pending", "previous"):
                            try:
                                cred = handle.get(NAME, stage=stage)
                            except NotFound:
                                continue
                            assert cred.stage == stage
                            assert pairs[cred.api_key.reveal()] == secret_of(cred), seed
                            reads += 1
                    if time.monotonic() >= started + delay:
                        break
                _kill(procs[cycle])
        finally:
            for proc in procs.values():
                if proc.poll() is None:
                    proc.kill()
                    proc.wait()
        for cycle, (path, tok) in cycles.items():
            where = (cycle, round_, seed)
            with assert_consistent(path) as admin:
                for v in admin.history(NAME):
                    for stage in v.stages:
                        cred = admin.get(NAME, stage=stage)
                        assert pairs[cred.api_key.reveal()] == secret_of(cred), where
                # Resume: the rotation can always be taken to a clean state.
                rotation.abort(admin, NAME)
                rotation.finish(admin, NAME, force=True)
                assert _state(admin)[1:] == (None, None), where
            cred = vault.load(NAME, where=path, token=tok)
            assert pairs[cred.api_key.reveal()] == secret_of(cred), where
    for handle in bots:
        handle.close()
    assert reads > 0


# ----------------------------------------------------------- clients reading meanwhile


def test_clients_keep_reading_whole_versions(
    stocked: AdminVault, token: str, vault_location: str
) -> None:
    expected = {1: BINANCE_SECRET, 2: NEW_SECRET, 3: BINANCE_SECRET}
    seen: list[tuple[str, int, str]] = []
    errors: list[BaseException] = []
    stop = threading.Event()

    def read_loop() -> None:
        try:
            with vault.open(vault_location, token=token) as bot:
                while not stop.is_set():
                    for stage in ("current", "pending", "previous"):
                        try:
                            cred = bot.get(NAME, stage=stage)
                        except NotFound:
                            continue  # that stage is not there right now
                        seen.append((stage, cred.version, secret_of(cred)))
                        assert cred.stage == stage
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    reader = threading.Thread(target=read_loop)
    reader.start()
    try:
        deadline = time.monotonic() + 10
        while not seen and time.monotonic() < deadline:
            time.sleep(0.01)
        for step in ("start", "verify", "promote", "finish"):
            if step == "start":
                rotation.start(stocked, NAME, NEW)
            else:
                force = {"force": True} if step == "finish" else {}
                getattr(rotation, step)(stocked, NAME, **force)
            time.sleep(0.05)
        # A second rotation, aborted, while the bot still reads.
        rotation.start(stocked, NAME, OLD)
        time.sleep(0.05)
        rotation.abort(stocked, NAME)
        time.sleep(0.05)
    finally:
        stop.set()
        reader.join(30)
    assert not reader.is_alive()
    assert not errors, errors
    for stage, version, secret in seen:
        assert secret == expected[version], (stage, version)
    currents = [v for s, v, _ in seen if s == "current"]
    assert currents[0] == 1 and currents[-1] == 2
    assert currents == sorted(currents)  # never back to the old key once promoted
    assert {v for s, v, _ in seen if s == "pending"} <= {2, 3}
    assert {v for s, v, _ in seen if s == "previous"} <= {1}
