"""Starting the agent: one at a time, reusing a running one, replacing a stale socket,
and refusing an unsafe directory or a socket path too long."""

from __future__ import annotations

import os
import signal
import stat
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.agent.conftest import VAULT_ID, agent_pid, hand_over, wait_gone
from vault.agent import client, launch
from vault.errors import InsecureFile, VaultUnavailable
from vault.format.identities import RootIdentity


def test_a_directory_open_to_others_is_refused(private_runtime_dir: Path) -> None:
    (private_runtime_dir / "exvault").mkdir(mode=0o755)
    os.chmod(private_runtime_dir / "exvault", 0o755)
    with pytest.raises(InsecureFile):
        launch.connect_or_start()


def test_a_socket_path_too_long_is_refused_with_a_clear_error(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    deep = tmp_path / ("d" * 100)
    deep.mkdir()
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(deep))
    with pytest.raises(VaultUnavailable, match="too long"):
        launch.connect_or_start()


def test_a_file_that_is_not_a_socket_is_left_alone_and_refused() -> None:
    path = client.socket_path()
    path.write_bytes(b"not a socket")
    with pytest.raises(InsecureFile, match="not a socket"):
        launch.connect_or_start()
    assert path.read_bytes() == b"not a socket"


def test_a_second_start_reuses_the_running_agent(started: Path) -> None:
    first = agent_pid()
    identity = RootIdentity.generate()
    hand_over(identity)
    with launch.connect_or_start() as conn:
        assert client.status(conn).pid == first
        assert [v.vault_id for v in client.status(conn).vaults] == [VAULT_ID]


def test_two_starts_at_once_start_one_agent() -> None:
    def start() -> int:
        with launch.connect_or_start() as conn:
            return client.status(conn).pid

    with ThreadPoolExecutor(2) as pool:
        pids = list(pool.map(lambda _: start(), range(2)))
    assert pids[0] == pids[1] == agent_pid()
    lock_file = client.socket_path().with_name(launch.LOCK_NAME)
    assert stat.S_IMODE(os.lstat(lock_file).st_mode) == 0o600


def test_a_stale_socket_after_sigkill_is_replaced(started: Path) -> None:
    pid = agent_pid()
    os.kill(pid, signal.SIGKILL)
    assert wait_gone(pid)
    assert started.exists()  # left behind: nobody answers on it
    assert client.connect() is None
    assert launch.remove_stale_socket(started)
    assert not started.exists()
    with launch.connect_or_start() as conn:
        new = client.status(conn)
    assert new.pid != pid and new.vaults == []
    assert not launch.remove_stale_socket(started)  # someone answers: not stale
    assert started.exists()
