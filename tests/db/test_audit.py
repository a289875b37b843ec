"""The audit log: what is recorded, that no secret is, and that tampering is detected."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest

import vault
from tests.conftest import (
    BINANCE_API_KEY,
    BINANCE_SECRET,
    KUCOIN_PASSPHRASE,
    KUCOIN_SECRET,
    PASSPHRASE,
    sql,
)
from vault.db import audit
from vault.db.inventory import Inventory
from vault.db.tables import AuditRecord
from vault.errors import AccessDenied, IntegrityError
from vault.owner.admin import AdminVault

BACKENDS = ("sqlite", "postgresql")


@pytest.fixture(autouse=True)
def state_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Keep the audit witness files of the tests apart from the user's."""
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    return tmp_path / "state"


@pytest.fixture
def busy(stocked: AdminVault, vault_location: str) -> AdminVault:
    """A vault whose log holds every kind of entry."""
    _, token = stocked.add_client("grid-bot", max_scope="trade")
    stocked.grant("grid-bot", ["binance-main"])
    vault.load("binance-main", where=vault_location, token=token)
    with pytest.raises(AccessDenied):
        vault.load("kucoin-sub1", where=vault_location, token=token)
    with pytest.raises(IntegrityError):
        AdminVault.unlock(vault_location, "wrong passphrase")
    stocked.edit("kucoin-sub1", permissions="read,trade")
    stocked.get("kucoin-sub1")
    stocked.ungrant("grid-bot", ["binance-main"])
    stocked.revoke_client("grid-bot")
    stocked.remove("kucoin-sub1")
    stocked.change_passphrase("another passphrase", insecure_test_kdf=True)
    return stocked


def test_every_kind_of_event_is_recorded(busy: AdminVault) -> None:
    seen = [(e.actor, e.action, e.outcome, e.credential) for e in busy.audit_entries()]
    assert seen == [
        ("admin", "add", "ok", "binance-main"),
        ("admin", "add", "ok", "kucoin-sub1"),
        ("admin", "client-add", "ok", None),
        ("admin", "grant", "ok", "binance-main"),
        ("client:grid-bot", "read", "ok", "binance-main"),
        ("client:grid-bot", "read", "denied", "kucoin-sub1"),
        ("admin", "unlock", "denied", None),
        ("admin", "edit", "ok", "kucoin-sub1"),
        ("admin", "read", "ok", "kucoin-sub1"),
        ("admin", "ungrant", "ok", "binance-main"),
        ("admin", "client-revoke", "ok", None),
        ("admin", "remove", "ok", "kucoin-sub1"),
        ("admin", "passwd", "ok", None),
    ]
    entries = busy.audit_entries()
    assert all(e.host and e.pid > 0 for e in entries)
    assert entries[4].version == 1 and entries[4].signed
    assert not entries[6].signed  # a failed unlock has no key to sign with


def test_no_secret_in_the_audit_table(busy: AdminVault, vault_location: str) -> None:
    dump = repr(sql(vault_location, "SELECT * FROM audit_log"))
    for secret in (
        BINANCE_SECRET,
        BINANCE_API_KEY,
        KUCOIN_SECRET,
        KUCOIN_PASSPHRASE,
        PASSPHRASE,
        "another passphrase",
    ):
        assert secret not in dump


def test_intact_chain_verifies(busy: AdminVault) -> None:
    told: list[tuple[int, int]] = []
    report = busy.verify_audit(progress=lambda *p: told.append(p))
    assert report.ok and report.entries == 13 and report.head_seq == 13
    assert told == [(n, 13) for n in range(1, 14)]  # what a progress bar is told


def _problems(vault_location: str) -> tuple[str, ...]:
    with Inventory.open(vault_location) as inv:
        return inv.verify_audit(remember=False).problems


def test_deleted_entry_detected(busy: AdminVault, vault_location: str) -> None:
    sql(vault_location, "DELETE FROM audit_log WHERE seq = 5")
    assert any("entry 5 is missing" in p for p in _problems(vault_location))


def test_edited_entry_detected(busy: AdminVault, vault_location: str) -> None:
    sql(vault_location, "UPDATE audit_log SET outcome = 'ok' WHERE seq = 6")
    assert any("entry 6 was edited" in p for p in _problems(vault_location))


def test_edited_entry_with_recomputed_hash_detected(busy: AdminVault, vault_location: str) -> None:
    """Recomputing the edited entry's hash breaks its signature and the next link."""
    session_rows = sql(vault_location, "SELECT vault_id FROM vault_header")
    vault_id = session_rows[0][0]
    cols = [c.name for c in AuditRecord.__table__.columns]
    (values,) = sql(vault_location, f"SELECT {', '.join(cols)} FROM audit_log WHERE seq = 5")
    row = {
        c: bytes(v) if isinstance(v, memoryview) else v for c, v in zip(cols, values, strict=True)
    }
    rec = AuditRecord(**{**row, "credential": "kucoin-sub1"})
    new_hash = audit.entry_hash(vault_id, rec)  # type: ignore[arg-type]
    sql(
        vault_location,
        "UPDATE audit_log SET credential = 'kucoin-sub1', entry_hash = ? WHERE seq = 5",
        new_hash,
    )
    problems = _problems(vault_location)
    assert any("entry 5 has a bad signature" in p for p in problems)
    assert any("entry 6 does not link" in p for p in problems)


def test_reordered_entries_detected(busy: AdminVault, vault_location: str) -> None:
    cols = (
        "at, actor, host, pid, action, credential, version, outcome, detail, "
        "prev_hash, entry_hash, signer, signature"
    )
    a = sql(vault_location, f"SELECT {cols} FROM audit_log WHERE seq = 3")[0]
    b = sql(vault_location, f"SELECT {cols} FROM audit_log WHERE seq = 4")[0]
    setter = ", ".join(f"{c.strip()} = ?" for c in cols.split(","))
    sql(vault_location, f"UPDATE audit_log SET {setter} WHERE seq = 3", *b)
    sql(vault_location, f"UPDATE audit_log SET {setter} WHERE seq = 4", *a)
    assert _problems(vault_location)


def test_forged_signature_detected(busy: AdminVault, vault_location: str) -> None:
    from vault.format import identities

    other = identities.RootIdentity.generate()
    sql(vault_location, "UPDATE audit_log SET signature = ? WHERE seq = 2", other.sign(b"x"))
    assert any("entry 2 has a bad signature" in p for p in _problems(vault_location))


def test_unsigned_success_claim_detected(busy: AdminVault, vault_location: str) -> None:
    """Appending a forged 'ok' entry without a signature is flagged."""
    with busy.store.write() as session:
        audit.append(
            session, busy.vault_id, actor="admin", action="remove", credential="binance-main"
        )
    assert any("unsigned" in p for p in _problems(vault_location))


def test_truncate_and_rewrite_detected_against_the_witness(
    busy: AdminVault, vault_location: str
) -> None:
    """Cut the last entries, then append new (anonymous) ones with valid hashes: the chain
    alone is consistent, but the head the last verification saw is gone."""
    assert busy.verify_audit().ok  # remembers head 13
    sql(vault_location, "DELETE FROM audit_log WHERE seq >= 10")
    with busy.store.write() as session:
        for _ in range(5):
            audit.append(session, busy.vault_id, actor="unknown", action="open", outcome="denied")
    with Inventory.open(vault_location) as inv:
        report = inv.verify_audit()
    assert not report.ok and any("cut off" in p for p in report.problems)


def test_truncation_alone_is_a_documented_limit_without_witness(
    busy: AdminVault, vault_location: str, state_home: Path
) -> None:
    """Without a remembered head, a shortened chain is still a valid chain (SECURITY.md)."""
    sql(vault_location, "DELETE FROM audit_log WHERE seq >= 10")
    with Inventory.open(vault_location) as inv:
        report = inv.verify_audit(remember=False)
    assert report.ok and report.head_seq == 9


def test_witness_file_is_private(busy: AdminVault, state_home: Path) -> None:
    busy.verify_audit()
    # The witness, and the signed log's checkpoint (vault.db.log_checkpoint): all private.
    files = list((state_home / "exvault").iterdir())
    assert audit.witness_path(busy.vault_id) in files
    for path in files:
        assert path.stat().st_mode & 0o777 == 0o600, path
    assert (state_home / "exvault").stat().st_mode & 0o777 == 0o700


@pytest.mark.usefixtures("no_state_directory")
def test_without_a_state_directory_verify_works_and_remembers_nothing(
    busy: AdminVault, vault_location: str
) -> None:
    assert audit.witness_path(busy.vault_id) is None
    with Inventory.open(vault_location) as inv:
        report = inv.verify_audit()
    assert report.ok and report.head_seq > 0
    assert audit.read_witness(busy.vault_id) is None
    assert not audit.write_witness(busy.vault_id, report.head_seq, report.head_hash)


def test_a_state_directory_that_cannot_be_written_leaves_the_verification_standing(
    busy: AdminVault, vault_location: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Its parent is a regular file: refused even to root (CI runs the suite as root).
    blocker = tmp_path / "blocker"
    blocker.write_bytes(b"")
    monkeypatch.setenv("XDG_STATE_HOME", str(blocker))
    with Inventory.open(vault_location) as inv:
        report = inv.verify_audit()
    assert report.ok and report.head_seq > 0
    assert audit.read_witness(busy.vault_id) is None
    assert blocker.read_bytes() == b""


def test_a_witness_written_is_read_back(busy: AdminVault, state_home: Path) -> None:
    assert audit.write_witness(busy.vault_id, 7, b"\x01" * 32)
    assert audit.read_witness(busy.vault_id) == (7, b"\x01" * 32)


WITNESSED = bytes(range(16))
"""The id of a vault that only has a witness (the reading of witness files alone)."""


def test_a_fifo_in_place_of_the_witness_hangs_nothing(state_home: Path) -> None:
    # check and probe run from cron, and read the witness too (vault.ops.observations).
    path = audit.witness_path(WITNESSED)
    assert path is not None
    path.parent.mkdir(mode=0o700, parents=True)
    os.mkfifo(path, 0o600)
    read: list[tuple[int, bytes] | None] = []
    reader = threading.Thread(target=lambda: read.append(audit.read_witness(WITNESSED)))
    reader.daemon = True
    reader.start()
    reader.join(5)
    hung = reader.is_alive()
    if hung:  # let it go: a writer opens the FIFO's other end, then closes it
        os.close(os.open(path, os.O_WRONLY | os.O_NONBLOCK))
        reader.join(5)
    assert not hung
    assert read == [None]


def test_a_witness_another_user_could_have_written_is_not_trusted(state_home: Path) -> None:
    # A witness naming an early entry of the log would hide every cut after it.
    assert audit.write_witness(WITNESSED, 7, b"\x01" * 32)
    path = audit.witness_path(WITNESSED)
    assert path is not None and audit.read_witness(WITNESSED) == (7, b"\x01" * 32)
    path.parent.chmod(0o777)
    assert audit.read_witness(WITNESSED) is None
    path.parent.chmod(0o700)
    path.chmod(0o666)
    assert audit.read_witness(WITNESSED) is None
    path.chmod(0o600)
    elsewhere = state_home / "witness.json"
    path.rename(elsewhere)
    path.symlink_to(elsewhere)
    assert audit.read_witness(WITNESSED) is None


def test_entry_signed_by_a_client_in_the_admins_name_detected(
    busy: AdminVault, vault_location: str
) -> None:
    """A client with database write access signs an entry naming the admin."""
    _, token = busy.add_client("writer")
    from vault.runtime.token import parse_token

    tok = parse_token(token)
    with busy.store.write() as session:
        audit.append(
            session,
            busy.vault_id,
            actor="admin",
            action="remove",
            credential="binance-main",
            signer=(tok.client_id, tok.keys[1].sign),
        )
    assert any(
        "names admin but was signed by client:writer" in p for p in _problems(vault_location)
    )


def test_anonymous_success_detected(busy: AdminVault, vault_location: str) -> None:
    with busy.store.write() as session:
        audit.append(
            session, busy.vault_id, actor="unknown", action="read", credential="binance-main"
        )
    assert any("successful action unsigned" in p for p in _problems(vault_location))


def test_unsigned_refusal_in_a_clients_name_detected(busy: AdminVault, vault_location: str) -> None:
    """A client's refusals are signed by the client: an unsigned one is forged."""
    with busy.store.write() as session:
        audit.append(session, busy.vault_id, actor="client:bot", action="read", outcome="denied")
    assert any("names client:bot but is unsigned" in p for p in _problems(vault_location))


def test_unsigned_anonymous_and_admin_failures_are_allowed(
    busy: AdminVault, vault_location: str
) -> None:
    """Nobody proved a key for these (a wrong passphrase, a token of no client)."""
    with busy.store.write() as session:
        audit.append(session, busy.vault_id, actor="unknown", action="open", outcome="denied")
        audit.append(session, busy.vault_id, actor="admin", action="unlock", outcome="denied")
    assert _problems(vault_location) == ()


def test_client_success_after_its_revocation_detected(
    stocked: AdminVault, vault_location: str
) -> None:
    """A stolen token keeps signing 'read ok' entries after the owner revoked its client."""
    from vault.runtime.token import parse_token

    _, token = stocked.add_client("stolen")
    stocked.revoke_client("stolen")
    tok = parse_token(token)
    with stocked.store.write() as session:
        audit.append(
            session,
            stocked.vault_id,
            actor="client:stolen",
            action="read",
            credential="binance-main",
            version=1,
            signer=(tok.client_id, tok.keys[1].sign),
        )
    revoke_seq = stocked.audit_entries()[-2].seq
    assert any(
        f"written by client:stolen after its revocation (entry {revoke_seq})" in p
        for p in _problems(vault_location)
    )


def test_client_refusal_after_its_revocation_is_allowed(
    stocked: AdminVault, vault_location: str
) -> None:
    """A revoked client opening the vault is refused, and that refusal is signed by it."""
    _, token = stocked.add_client("gone")
    stocked.revoke_client("gone")
    with pytest.raises(AccessDenied):
        vault.load("binance-main", where=vault_location, token=token)
    assert stocked.audit_entries()[-1].actor == "client:gone"
    assert _problems(vault_location) == ()


@pytest.mark.sqlite_only
def test_invalid_utf8_in_an_unsigned_row_is_reported_by_seq(
    stocked: AdminVault, vault_location: str
) -> None:
    """SQLite keeps any bytes as TEXT: one such row used to stop the whole walk with a
    message naming nothing."""
    with pytest.raises(IntegrityError):
        AdminVault.unlock(vault_location, "wrong passphrase")  # unsigned entry 3
    stocked.get("binance-main")  # entry 4
    sql(vault_location, "UPDATE audit_log SET detail = CAST(X'41FF42' AS TEXT) WHERE seq = 3")
    sql(vault_location, "UPDATE audit_log SET host = 'elsewhere' WHERE seq = 4")
    assert _problems(vault_location) == (
        "entry 3: its detail is not UTF-8 text",
        "entry 4 was edited (its hash does not match)",
    )
    assert [e.detail for e in stocked.audit_entries()][2] == "A\udcffB"


@pytest.mark.parametrize(
    "change",
    [
        "DELETE FROM audit_log WHERE seq = 5",  # out of the middle
        "DELETE FROM audit_log WHERE seq >= 10",  # off the end
        "UPDATE audit_log SET detail = 'x' WHERE seq = 3",  # edited
        "UPDATE audit_log SET seq = seq + 100 WHERE seq = 13",  # renumbered
    ],
)
def test_chain_intact_up_to_a_remembered_head(
    busy: AdminVault, vault_location: str, change: str
) -> None:
    with busy.store.read() as session:
        head = audit.last_entry(session)
        assert head is not None
        assert audit.chain_intact_up_to(session, busy.vault_id, *head)
    sql(vault_location, change)
    with busy.store.read() as session:
        assert not audit.chain_intact_up_to(session, busy.vault_id, *head)


@pytest.mark.sqlite_only
def test_chain_intact_up_to_is_false_over_text_that_is_not_utf8(
    busy: AdminVault, vault_location: str
) -> None:
    """Read through tolerant_text: the damaged row fails to hash, the query does not fail."""
    with busy.store.read() as session:
        head = audit.last_entry(session)
        assert head is not None
    sql(vault_location, "UPDATE audit_log SET detail = CAST(X'41FF42' AS TEXT) WHERE seq = 3")
    with busy.store.read() as session:
        assert not audit.chain_intact_up_to(session, busy.vault_id, *head)
        assert audit.audit_rows(session)[2].detail == "A\udcffB"
        assert audit.chain_contains(session, *head)


def test_append_returns_the_row_it_stored(busy: AdminVault) -> None:
    with busy.store.write() as session:
        before = audit.count(session)
        row = audit.append(session, busy.vault_id, actor="unknown", action="open", outcome="denied")
        assert audit.last_entry(session) == (row.seq, row.entry_hash)
    with busy.store.read() as session:
        assert audit.count(session) == before + 1 == row.seq
        assert audit.audit_rows(session, row.seq) == [row]
        assert audit.chain_contains(session, row.seq, row.entry_hash)
        assert not audit.chain_contains(session, row.seq + 1, row.entry_hash)
