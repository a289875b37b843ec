"""The owner's reads of an audit file (shared layout): its entries, count and chain."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.conftest import sql
from vault.db import audit, audit_file
from vault.format import identities

VAULT_ID = bytes(range(16))


@pytest.fixture(autouse=True)
def state_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Keep the audit witness files of the tests apart from the user's."""
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    return tmp_path / "state"


@pytest.fixture
def audit_path(tmp_path: Path) -> Path:
    """An audit file holding an admin's refusal (out of place there) and an anonymous one."""
    directory = tmp_path / "vault.audit"
    audit_file.create(directory, os.getgid())
    path = directory / "audit.db"
    with audit_file.opened(path) as store, store.write() as session:
        first = audit.append(session, VAULT_ID, actor="admin", action="unlock", outcome="denied")
        audit.append(
            session,
            VAULT_ID,
            actor="unknown",
            action="open",
            outcome="denied",
            head=(first.seq, first.entry_hash),
        )
    return path


def test_an_audit_files_entries_are_counted_listed_and_labelled(audit_path: Path) -> None:
    assert audit_file.count(audit_path) == 2
    listed = audit_file.entries(audit_path)
    assert [(e.seq, e.actor, e.log) for e in listed] == [
        (1, "admin", "vault.audit"),
        (2, "unknown", "vault.audit"),
    ]


def test_an_audit_files_chain_names_the_owners_entry_and_text_that_is_not_utf8(
    audit_path: Path,
) -> None:
    """Text that is not UTF-8 is reported by its seq, the rest of the file still read."""
    root = identities.RootIdentity.generate()
    report = audit_file.verify(audit_path, VAULT_ID, root.verify_public, {})
    assert report.problems == ("vault.audit: entry 1 is the owner's, who never writes there",)
    sql(audit_path, "UPDATE audit_log SET detail = CAST(X'41FF42' AS TEXT) WHERE seq = 2")
    report = audit_file.verify(audit_path, VAULT_ID, root.verify_public, {})
    assert report.problems == (
        "vault.audit: entry 2: its detail is not UTF-8 text",
        "vault.audit: entry 1 is the owner's, who never writes there",
    )
    assert [e.detail for e in audit_file.entries(audit_path)][1] == "A\udcffB"


@pytest.mark.parametrize(
    "name", ["vault.audit", "a" * 64, "b" * 65, "c" * 120, "shared-" + "é" * 60]
)
def test_a_cut_off_the_end_of_an_audit_file_is_noticed_whatever_its_directorys_name(
    tmp_path: Path, name: str
) -> None:
    # A directory name spelled out in the witness's file name (in hex) up to 64 bytes,
    # hashed beyond: a name of more than about 96 bytes once made no witness at all.
    directory = tmp_path / name
    audit_file.create(directory, os.getgid())
    path = directory / "audit.db"
    with audit_file.opened(path) as store, store.write() as session:
        for _ in range(3):
            audit.append(session, VAULT_ID, actor="unknown", action="open", outcome="denied")
    root = identities.RootIdentity.generate()
    report = audit_file.verify(path, VAULT_ID, root.verify_public, {})
    assert report.ok and report.head_seq == 3
    audit_file.remember(VAULT_ID, path, report)
    sql(path, "DELETE FROM audit_log WHERE seq = 3")
    report = audit_file.verify(path, VAULT_ID, root.verify_public, {})
    assert report.problems == (
        f"{name}: entry 3, seen by the last verification on this machine, is gone or "
        "changed: entries were cut off the end of the file",
    )
