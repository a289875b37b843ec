"""The agent's rules, in process with an injected clock: what it serves, refuses and locks."""

from __future__ import annotations

import os
import struct

import pytest

from vault.agent import protocol
from vault.agent.server import Agent
from vault.format import aead, encoding, identities, keywrap
from vault.format.identities import RootIdentity

VAULT_A = b"A" * 16
VAULT_B = b"B" * 16
STATE = b"s" * 32


class Clock:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def ask(agent: Agent, kind: int, *fields: encoding.Field) -> protocol.Message:
    framed = agent.reply(protocol.Message(kind, fields))
    (length,) = struct.unpack(">I", framed[:4])
    assert length == len(framed) - 4
    return protocol.decode(framed[4:])


def unlock(
    agent: Agent,
    identity: RootIdentity,
    vault_id: bytes = VAULT_A,
    idle: int = 900,
    max_seconds: int = 28800,
) -> protocol.Message:
    return ask(
        agent,
        protocol.UNLOCK,
        vault_id,
        STATE,
        identity.to_bytes(),
        "/somewhere/vault.db",
        idle,
        max_seconds,
        1,
        64,
        1,
    )


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def identity() -> RootIdentity:
    return RootIdentity.generate()


@pytest.fixture
def agent(clock: Clock, identity: RootIdentity) -> Agent:
    agent = Agent(clock)
    assert unlock(agent, identity).kind == protocol.OK
    return agent


def test_a_signature_verifies_with_the_vault_key(agent: Agent, identity: RootIdentity) -> None:
    reply = ask(agent, protocol.SIGN, VAULT_A, STATE, b"a row")
    assert reply.kind == protocol.OK
    (signature,) = reply.fields
    assert isinstance(signature, bytes)
    identities.verify_signature(identity.verify_public, b"a row", signature)


def test_a_data_key_unwraps_as_with_the_keys_themselves(
    agent: Agent, identity: RootIdentity
) -> None:
    dek = aead.random_key()
    wrapped = keywrap.wrap_for_recipient(dek, identity.encryption_public, b"ad")
    reply = ask(
        agent, protocol.UNWRAP, VAULT_A, STATE, wrapped.ephemeral_public, wrapped.body, b"ad"
    )
    assert reply.fields == (dek,)


def test_an_unwrap_with_another_ad_fails(agent: Agent, identity: RootIdentity) -> None:
    wrapped = keywrap.wrap_for_recipient(aead.random_key(), identity.encryption_public, b"ad")
    reply = ask(
        agent, protocol.UNWRAP, VAULT_A, STATE, wrapped.ephemeral_public, wrapped.body, b"x"
    )
    assert reply.kind == protocol.ERROR and reply.fields[0] == protocol.FAILED


def test_the_keyed_fingerprint_is_the_identity_s(agent: Agent, identity: RootIdentity) -> None:
    reply = ask(agent, protocol.FINGERPRINT, VAULT_A, STATE, "api_key", "KEY123")
    assert reply.fields == (identity.keyed_fingerprint("api_key", "KEY123"),)


def test_describe_gives_public_keys_and_kdf(agent: Agent, identity: RootIdentity) -> None:
    reply = ask(agent, protocol.DESCRIBE, VAULT_A, STATE)
    assert reply.fields == (identity.encryption_public, identity.verify_public, 1, 64, 1)


def test_no_reply_carries_a_private_key(agent: Agent, identity: RootIdentity, clock: Clock) -> None:
    private = identity.to_bytes()
    replies = [
        agent.reply(protocol.Message(kind, fields))
        for kind, fields in (
            (protocol.STATUS, ()),
            (protocol.DESCRIBE, (VAULT_A, STATE)),
            (protocol.SIGN, (VAULT_A, STATE, b"m")),
            (protocol.FINGERPRINT, (VAULT_A, STATE, "api_key", "v")),
        )
    ]
    for reply in replies:
        assert private[:32] not in reply and private[32:] not in reply
        assert identity.fingerprint_key() not in reply


def test_a_request_for_another_vault_is_refused(agent: Agent) -> None:
    reply = ask(agent, protocol.SIGN, VAULT_B, STATE, b"a row")
    assert reply.kind == protocol.ERROR and reply.fields[0] == protocol.NOT_UNLOCKED
    assert ask(agent, protocol.SIGN, VAULT_A, STATE, b"a row").kind == protocol.OK


def test_a_changed_state_is_refused_and_locks_the_vault(agent: Agent) -> None:
    reply = ask(agent, protocol.SIGN, VAULT_A, b"t" * 32, b"a row")
    assert reply.kind == protocol.ERROR and reply.fields[0] == protocol.CHANGED
    # Locked now: even the old state no longer opens it.
    again = ask(agent, protocol.SIGN, VAULT_A, STATE, b"a row")
    assert again.fields[0] == protocol.NOT_UNLOCKED


def test_idle_lifetime_locks(agent: Agent, clock: Clock) -> None:
    clock.now += 899
    assert ask(agent, protocol.SIGN, VAULT_A, STATE, b"m").kind == protocol.OK  # use renews
    clock.now += 899
    assert ask(agent, protocol.SIGN, VAULT_A, STATE, b"m").kind == protocol.OK
    clock.now += 900
    assert agent.expire() == [VAULT_A]
    assert ask(agent, protocol.SIGN, VAULT_A, STATE, b"m").fields[0] == protocol.NOT_UNLOCKED


def test_max_lifetime_locks_even_a_vault_in_use(clock: Clock, identity: RootIdentity) -> None:
    agent = Agent(clock)
    unlock(agent, identity, idle=60, max_seconds=200)
    for _ in range(3):
        clock.now += 59
        assert ask(agent, protocol.SIGN, VAULT_A, STATE, b"m").kind == protocol.OK
    clock.now += 24  # 201 s after the unlock
    assert ask(agent, protocol.SIGN, VAULT_A, STATE, b"m").fields[0] == protocol.NOT_UNLOCKED


def test_status_says_when_each_vault_locks(agent: Agent, clock: Clock) -> None:
    clock.now += 100
    pid, memory_locked, count, *rest = ask(agent, protocol.STATUS).fields
    assert (pid, memory_locked, count) == (os.getpid(), 0, 1)
    assert rest == [VAULT_A, "/somewhere/vault.db", 900, 28800, 800, 100]


def test_several_vaults_at_once_and_lock_one(agent: Agent, identity: RootIdentity) -> None:
    other = RootIdentity.generate()
    unlock(agent, other, VAULT_B)
    signature = ask(agent, protocol.SIGN, VAULT_B, STATE, b"m").fields[0]
    assert isinstance(signature, bytes)
    identities.verify_signature(other.verify_public, b"m", signature)
    assert ask(agent, protocol.LOCK, VAULT_B).fields == (1,)
    assert ask(agent, protocol.LOCK, VAULT_B).fields == (0,)
    assert ask(agent, protocol.SIGN, VAULT_A, STATE, b"m").kind == protocol.OK


def test_lock_all(agent: Agent, identity: RootIdentity) -> None:
    unlock(agent, RootIdentity.generate(), VAULT_B)
    assert ask(agent, protocol.LOCK, None).fields == (2,)
    assert agent.held() == []


def test_a_second_unlock_replaces_the_entry(agent: Agent, clock: Clock) -> None:
    other = RootIdentity.generate()
    clock.now += 500
    unlock(agent, other, idle=30)
    assert ask(agent, protocol.DESCRIBE, VAULT_A, STATE).fields[1] == other.verify_public
    clock.now += 31
    assert agent.expire() == [VAULT_A]


def test_an_unlock_with_keys_of_the_wrong_size_is_refused(clock: Clock) -> None:
    agent = Agent(clock)
    reply = ask(agent, protocol.UNLOCK, VAULT_A, STATE, b"k" * 63, "x", 60, 60, None, None, None)
    assert reply.kind == protocol.ERROR and reply.fields[0] == protocol.MALFORMED
    assert agent.held() == []


def test_an_unlock_longer_than_a_week_is_refused(clock: Clock, identity: RootIdentity) -> None:
    agent = Agent(clock)
    reply = unlock(agent, identity, max_seconds=7 * 86400 + 1)
    assert reply.kind == protocol.ERROR and agent.held() == []


def test_a_malformed_request_gets_an_error_reply(agent: Agent) -> None:
    reply = ask(agent, protocol.SIGN, VAULT_A, STATE)  # one field short
    assert reply.kind == protocol.ERROR and reply.fields[0] == protocol.MALFORMED
