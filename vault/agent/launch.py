"""Starting the unlock agent: only ``exvault unlock`` needs it.

:func:`connect_or_start` connects to the running agent (:mod:`vault.agent.client`) or
starts one, ``python -m vault.agent.server SOCKET`` in a session of its own, under a
lock file beside the socket so that two ``unlock`` at once start one agent; a stale
socket (a file nobody answers on, left by an agent killed with SIGKILL) is replaced.
Apart from :mod:`vault.agent.client` because starting a process loads ``subprocess``,
which an owner command talking to a running agent never needs.
"""

from __future__ import annotations

import errno
import fcntl
import os
import socket
import stat
import subprocess
import sys
import time
from pathlib import Path

from vault.agent import client
from vault.errors import InsecureFile, VaultUnavailable, printable

LOCK_NAME = "agent.lock"
"""The lock file, beside the socket, that makes starting an agent one process's turn."""
MAX_SOCKET_PATH = 107
"""The longest Unix socket path Linux takes (``sun_path`` is 108 bytes with its NUL)."""
START_SECONDS = 10.0
"""How long :func:`connect_or_start` waits for a new agent to answer."""


def connect_or_start(path: Path | None = None) -> client.AgentConnection:
    """A connection to the running agent, starting one when none answers.

    Under a lock file in the agent directory, so two ``unlock`` at once start one
    agent: a socket file nobody answers on is removed first.

    :raises InsecureFile: when the agent directory is unsafe, or a file that is not a
        socket sits where the socket goes.
    :raises VaultUnavailable: when the socket path is too long for a Unix socket, or
        a new agent does not answer in time.
    """
    path = client.socket_path(create=True) if path is None else path
    if len(os.fsencode(path)) > MAX_SOCKET_PATH:
        raise VaultUnavailable(
            f"the agent socket path {printable(str(path))} is too long for a Unix socket "
            f"(at most {MAX_SOCKET_PATH} bytes); set XDG_RUNTIME_DIR to a shorter directory"
        )
    found = client.connect(path)
    if found is not None:
        return found
    lock_fd = os.open(path.with_name(LOCK_NAME), os.O_CREAT | os.O_RDWR, 0o600)
    try:
        fcntl.flock(lock_fd, fcntl.LOCK_EX)
        found = client.connect(path)  # another process may have started one meanwhile
        if found is not None:
            return found
        remove_stale_socket(path)
        _start_agent(path)
        deadline = time.monotonic() + START_SECONDS
        while time.monotonic() < deadline:
            found = client.connect(path)
            if found is not None:
                return found
            time.sleep(0.02)
    finally:
        os.close(lock_fd)
    raise VaultUnavailable("the unlock agent did not start")


def remove_stale_socket(path: Path) -> bool:
    """Remove a socket file at ``path`` that no agent answers on; True when removed.

    :raises InsecureFile: when something other than a socket is there.
    """
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        return False
    if not stat.S_ISSOCK(info.st_mode):
        raise InsecureFile(f"{printable(str(path))} is not a socket; remove it by hand")
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        probe.connect(os.fspath(path))
    except OSError as exc:
        if exc.errno not in (errno.ECONNREFUSED, errno.ENOENT):
            raise
    else:
        return False  # someone answers: not stale
    finally:
        probe.close()
    path.unlink(missing_ok=True)
    return True


def _start_agent(path: Path) -> None:
    # A session of its own, no terminal, no inherited descriptors: it outlives this
    # command and is not hit by the terminal's signals.
    subprocess.Popen(  # noqa: S603 (our own interpreter and module)
        [sys.executable, "-m", "vault.agent.server", os.fspath(path)],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        close_fds=True,
        start_new_session=True,
    )
