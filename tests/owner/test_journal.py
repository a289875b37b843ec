"""The rotation journal (vault/owner/journal.py, vault/format/journal.py): entries
committed before the call they announce, settled once, signed, leases."""

from __future__ import annotations

import sqlite3
import threading

import pytest

from vault.errors import Conflict, IntegrityError
from vault.format import journal
from vault.format.schema import TABLES, JournalRow
from vault.ops.verification import verify
from vault.owner.admin import AdminVault
from vault.owner.journal import Journal

BACKENDS = ("sqlite", "postgresql")


def test_the_row_type_is_the_tables_columns() -> None:
    assert JournalRow._fields == TABLES["rotation_journal"].column_names


@pytest.mark.sqlite_only
def test_an_intent_is_committed_before_begin_returns(
    admin: AdminVault, vault_location: str
) -> None:
    entry = Journal(admin.writer).begin("okx-sub", "0123abcd", journal.CREATE)
    assert (entry.state, entry.attempts, entry.id > 0) == (journal.INTENT, 0, True)
    # Another connection sees it: it is on disk, not in an open transaction.
    with sqlite3.connect(vault_location) as con:
        rows = con.execute("SELECT credential, step, state FROM rotation_journal").fetchall()
    assert rows == [("okx-sub", "create", "intent")]


def test_settle_once_with_the_key_and_detail(admin: AdminVault) -> None:
    book = Journal(admin.writer)
    entry = book.begin("okx-sub", "0123abcd", journal.CREATE)
    again = book.settle(entry, journal.INTENT)
    assert again.attempts == 1 and again.state == journal.INTENT
    done = book.settle(entry, journal.DONE, api_key="AK-1", detail="version 2")
    assert (done.state, done.api_key, done.detail) == ("done", "AK-1", "version 2")
    assert book.entries(open_only=True) == []
    assert book.entries() == [done]
    with pytest.raises(Conflict):
        book.settle(entry, journal.ABANDONED)


def test_a_forged_or_edited_entry_is_refused(admin: AdminVault, vault_path) -> None:  # type: ignore[no-untyped-def]
    book = Journal(admin.writer)
    book.begin("okx-sub", "0123abcd", journal.DELETE, api_key="AK-old")
    with admin.writer.write() as session:
        session.execute("UPDATE rotation_journal SET api_key = 'AK-current'")
    with pytest.raises(IntegrityError):
        book.entries()


def test_a_malformed_step_is_refused(admin: AdminVault) -> None:
    book = Journal(admin.writer)
    entry = book.begin("okx-sub", "0123abcd", journal.CREATE)
    forged = journal.signed(admin.writer.identity, admin.writer.vault_id, entry._replace(step="x"))
    with pytest.raises(IntegrityError):
        journal.verify(admin.writer.verify_public, admin.writer.vault_id, forged)


def test_a_live_lease_keeps_others_out_and_a_dead_one_is_taken_over(admin: AdminVault) -> None:
    book = Journal(admin.writer)
    first = book.claim("okx-sub", "0123abcd", "host:1", alive=lambda holder: True)
    assert first is not None and first.holder == "host:1"
    assert book.claim("okx-sub", "4567cdef", "host:2", alive=lambda holder: True) is None
    assert book.claim("other", "4567cdef", "host:2", alive=lambda holder: True) is not None
    second = book.claim("okx-sub", "4567cdef", "host:2", alive=lambda holder: holder != "host:1")
    assert second is not None
    states = {(e.holder, e.credential): e.state for e in book.entries()}
    assert states[("host:1", "okx-sub")] == journal.ABANDONED
    assert states[("host:2", "okx-sub")] == journal.INTENT


def test_two_threads_claiming_at_once_get_one_lease(admin: AdminVault) -> None:
    book = Journal(admin.writer)
    won: list[object] = []
    barrier = threading.Barrier(4)

    def claim(n: int) -> None:
        barrier.wait()
        won.append(book.claim("okx-sub", "0123abcd", f"host:{n}", alive=lambda holder: True))

    threads = [threading.Thread(target=claim, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sum(lease is not None for lease in won) == 1


def test_exvault_verify_reports_an_edited_entry(admin: AdminVault) -> None:
    book = Journal(admin.writer)
    book.begin("okx-sub", "0123abcd", journal.DELETE, api_key="AK-old")
    assert verify(admin).ok
    with admin.writer.write() as session:
        session.execute("UPDATE rotation_journal SET state = 'done'")
    problems = [p.message for p in verify(admin).problems]
    assert problems == ["rotation journal entry 1 does not verify"]


def test_an_entry_passed_off_as_another_is_refused(admin: AdminVault) -> None:
    book = Journal(admin.writer)
    book.begin("okx-sub", "0123abcd", journal.DELETE, api_key="AK-old")
    book.begin("okx-sub", "4567cdef", journal.CREATE)
    with admin.writer.write() as session:  # swap the two rows' numbers
        run = session.execute
        run("UPDATE rotation_journal SET id = 100 WHERE id = 1")
        run("UPDATE rotation_journal SET id = 1 WHERE id = 2")
        run("UPDATE rotation_journal SET id = 2 WHERE id = 100")
    with pytest.raises(IntegrityError):
        book.entries()


def test_dead_leases_are_released_and_live_ones_kept(admin: AdminVault) -> None:
    book = Journal(admin.writer)
    book.claim("a", "0123abcd", "host:1:1", lambda h: True)
    book.claim("b", "4567cdef", "host:2:2", lambda h: True)
    book.begin("b", "89abcdef", journal.CREATE)  # not a lease: never released here
    assert book.release_dead(lambda holder: holder == "host:2:2") == 1
    states = {(e.credential, e.step): e.state for e in book.entries()}
    assert states == {
        ("a", journal.LEASE): journal.ABANDONED,
        ("b", journal.LEASE): journal.INTENT,
        ("b", journal.CREATE): journal.INTENT,
    }
    assert book.release_dead(lambda holder: True) == 0
