"""A running agent for the agent's tests, and what they ask of it."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from vault.agent import client, launch
from vault.format.identities import RootIdentity

VAULT_ID = b"v" * 16
STATE = b"s" * 32


def agent_pid(path: Path | None = None) -> int:
    conn = client.connect(path)
    assert conn is not None, "no agent answers"
    with conn:
        return client.status(conn).pid


def wait_gone(pid: int, seconds: float = 5.0) -> bool:
    """True once process ``pid`` (a child of ours or not) has exited."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            done, _ = os.waitpid(pid, os.WNOHANG)
            if done == pid:
                return True
        except ChildProcessError:  # not our child, or reaped already
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                return True
        time.sleep(0.02)
    return False


@pytest.fixture
def started() -> Iterator[Path]:
    """A running agent (in this test's own runtime directory): its socket."""
    with launch.connect_or_start():
        pass
    yield client.socket_path()


def hand_over(identity: RootIdentity, vault_id: bytes = VAULT_ID) -> None:
    with launch.connect_or_start() as conn:
        client.unlock(conn, vault_id, STATE, identity.to_bytes(), "test", 600, 3600, None)
