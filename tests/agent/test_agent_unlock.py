"""Owner work through the agent: the same signed, audited rows as with the passphrase,
on SQLite and PostgreSQL, and the agent locks when the passphrase or keys change."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from tests import postgres
from tests.conftest import BINANCE_API_KEY, PASSPHRASE, TEST_KDF
from vault.agent import client, launch
from vault.agent.client import AgentIdentity
from vault.db.inventory import open_store
from vault.errors import AccessDenied, AgentRefused, IntegrityError
from vault.format.identities import RootIdentity
from vault.ops import verification
from vault.owner.admin import AdminVault
from vault.owner.agent_handover import unlock_into_agent
from vault.owner.agent_unlock import (
    lock_everything_in_agent,
    lock_in_agent,
    open_through_agent,
    unlock_state,
)
from vault.runtime.client import ClientVault

BACKENDS = ("sqlite", "postgresql")

IDLE, MAX = timedelta(minutes=15), timedelta(hours=8)


@pytest.fixture
def made(vault_location: str) -> str:
    """A new, closed test vault at ``vault_location``."""
    admin, _ = AdminVault.create(vault_location, PASSPHRASE, kdf=TEST_KDF, insecure_test_kdf=True)
    admin.close()
    return vault_location


@pytest.fixture
def unlocked(made: str) -> str:
    """The test vault, unlocked in the agent."""
    unlock_into_agent(made, PASSPHRASE, IDLE, MAX)
    return made


@pytest.fixture
def through_agent(unlocked: str) -> Iterator[AdminVault]:
    admin = open_through_agent(unlocked)
    assert admin is not None
    with admin:
        yield admin


def owner_work(admin: AdminVault, binance_payload: dict[str, str]) -> str:
    """A walk through the owner's writes; the client token it made."""
    admin.add("binance-main", "binance", binance_payload, permissions="read,trade")
    _, token = admin.add_client("grid-bot", max_scope="trade")
    admin.grant("grid-bot", ["binance-main"])
    admin.edit("binance-main", permissions="read", ips="203.0.113.7")
    admin.set_policy("binance-main", max_age_days=90)
    assert admin.get("binance-main").field("secret").reveal() == binance_payload["secret"]
    return token


def facts(location: str) -> tuple[object, ...]:
    """What ``verify`` and ``audit verify`` say of the vault, and its audit trail's shape."""
    with AdminVault.unlock(location, PASSPHRASE) as admin:
        report = verification.verify(admin)
        chain = admin.verify_audit(remember=False)
        trail = [
            (e.actor, e.action, e.credential, e.outcome, e.signed) for e in admin.audit_entries()
        ]
    assert report.ok, report.problems
    assert chain.ok, chain.problems
    counts = (report.credentials, report.versions, report.decrypted, report.wraps, report.clients)
    return counts, report.audit_entries, chain.entries, trail


def test_the_handle_uses_the_agent_identity(through_agent: AdminVault) -> None:
    assert isinstance(through_agent.identity, AgentIdentity)


def test_owner_work_through_the_agent_verifies_as_with_the_passphrase(
    unlocked: str,
    vault_location: str,
    backend: str,
    binance_payload: dict[str, str],
    request: pytest.FixtureRequest,
    tmp_path: Path,
) -> None:
    admin = open_through_agent(unlocked)
    assert admin is not None
    with admin:
        token = owner_work(admin, binance_payload)
    # The same work on another vault, with the passphrase.
    if backend == "sqlite":
        other = str(tmp_path / "other" / "vault.db")
        compare(other, binance_payload, unlocked)
    else:
        with postgres.database(request.getfixturevalue("postgres_server")) as other:
            compare(other, binance_payload, unlocked)
    # And a bot reads what the agent granted it.
    with ClientVault.open(unlocked, token=token) as bot:
        assert bot.get("binance-main").field("api_key").reveal() == BINANCE_API_KEY


def compare(other: str, binance_payload: dict[str, str], unlocked: str) -> None:
    admin, _ = AdminVault.create(other, PASSPHRASE, kdf=TEST_KDF, insecure_test_kdf=True)
    with admin:
        owner_work(admin, binance_payload)
    assert facts(unlocked) == facts(other)


def test_a_vault_the_agent_does_not_hold_is_not_opened_through_it(
    unlocked: str, tmp_path: Path
) -> None:
    other = tmp_path / "b" / "vault.db"
    AdminVault.create(other, PASSPHRASE, kdf=TEST_KDF, insecure_test_kdf=True)[0].close()
    assert open_through_agent(other) is None


def test_without_an_agent_nothing_opens_through_it(made: str) -> None:
    assert open_through_agent(made) is None


def test_a_passphrase_change_locks_the_vault_in_the_agent(unlocked: str) -> None:
    with AdminVault.unlock(unlocked, PASSPHRASE) as admin:
        admin.change_passphrase("a new one", kdf=TEST_KDF, insecure_test_kdf=True)
    assert open_through_agent(unlocked) is None
    conn = client.connect()
    assert conn is not None
    with conn:
        assert client.status(conn).vaults == []  # locked on the mismatch, not just refused


def test_a_rekey_locks_the_vault_in_the_agent(unlocked: str) -> None:
    with AdminVault.unlock(unlocked, PASSPHRASE) as admin:
        admin.rekey(PASSPHRASE, kdf=TEST_KDF, insecure_test_kdf=True)
    assert open_through_agent(unlocked) is None


def test_a_handle_through_the_agent_cannot_change_the_passphrase(
    through_agent: AdminVault,
) -> None:
    with pytest.raises(AccessDenied, match="passphrase itself"):
        through_agent.change_passphrase("new", kdf=TEST_KDF, insecure_test_kdf=True)


def test_a_lock_during_a_command_stops_its_writes(
    through_agent: AdminVault, unlocked: str, binance_payload: dict[str, str]
) -> None:
    assert lock_in_agent(unlocked)
    with pytest.raises(AgentRefused, match="not unlocked"):
        through_agent.add("binance-main", "binance", binance_payload)
    assert through_agent.credentials() == []


def test_lock_all_and_lock_without_an_agent(unlocked: str) -> None:
    assert lock_everything_in_agent() == 1
    assert lock_everything_in_agent() == 0
    assert not lock_in_agent(unlocked)


def test_the_status_kdf_stays_authenticated_through_the_agent(
    through_agent: AdminVault,
) -> None:
    assert through_agent.status().kdf_authenticated


def test_a_wrong_passphrase_hands_nothing_to_the_agent(made: str) -> None:
    with pytest.raises(IntegrityError):
        unlock_into_agent(made, "wrong", IDLE, MAX)
    assert client.connect() is None  # not even started


def test_the_agent_refuses_keys_other_than_the_header_s(unlocked: str) -> None:
    """An agent answering with another vault's keys is not believed."""
    store, header = open_store(unlocked)
    with store.read() as session:
        state = unlock_state(session)
    store.dispose()
    with launch.connect_or_start() as conn:
        impostor = RootIdentity.generate().to_bytes()
        client.unlock(conn, header.vault_id, state, impostor, "x", 60, 60, None)
    with pytest.raises(IntegrityError, match="other keys"):
        open_through_agent(unlocked)


def test_the_unlock_state_is_the_digest_of_every_column_as_before(made: str) -> None:
    """The state is the digest of the header row, then each passphrase keyslot row by
    id, every column in table order: the bytes an agent started by an older exvault
    holds (computed here as that one did, through SQLAlchemy's tables)."""
    from sqlalchemy import select

    from vault.db.store import orm_session
    from vault.db.tables import HeaderRecord, KeyslotRecord
    from vault.format import encoding

    store, _ = open_store(made)
    try:
        with store.read() as transaction:
            session = orm_session(transaction)
            header, slots = HeaderRecord.__table__, KeyslotRecord.__table__
            values: list[encoding.Field] = [b"exvault-agent-state"]
            for row in session.execute(select(header).order_by(header.c.id)):
                values += list(row)
            query = select(slots).where(slots.c.kind == "passphrase").order_by(slots.c.id)
            for row in session.execute(query):
                values += list(row)
            assert len(values) == 1 + 7 + 10
            assert unlock_state(transaction) == encoding.digest(*values)
    finally:
        store.dispose()
