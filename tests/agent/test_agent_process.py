"""The agent as a process: its socket, its life, and the bad cases it survives."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import stat
import struct
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.agent.conftest import STATE, VAULT_ID, agent_pid, hand_over, wait_gone
from vault.agent import client, launch, protocol
from vault.agent.client import AgentIdentity
from vault.errors import AgentRefused, IntegrityError
from vault.format import aead, identities, keywrap
from vault.format.identities import RootIdentity
from vault.format.kdf_params import KdfParams


def raw_exchange(path: Path, data: bytes, *, close_write: bool = False) -> bytes:
    """Send ``data`` on a new connection; everything the agent sends back until it closes
    or stays silent for a second."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    with sock:
        sock.connect(os.fspath(path))
        sock.sendall(data)
        if close_write:
            sock.shutdown(socket.SHUT_WR)
        sock.settimeout(protocol.FRAME_SECONDS + 2)
        received = b""
        while True:
            try:
                chunk = sock.recv(4096)
            except (TimeoutError, ConnectionResetError):
                break
            if not chunk:
                break
            received += chunk
        return received


def error_code(framed: bytes) -> str:
    message = protocol.decode(framed[4:])
    assert message.kind == protocol.ERROR
    code = message.fields[0]
    assert isinstance(code, str)
    return code


def test_socket_is_0600_in_a_0700_directory(started: Path) -> None:
    assert stat.S_IMODE(os.lstat(started).st_mode) == 0o600
    assert stat.S_ISSOCK(os.lstat(started).st_mode)
    assert stat.S_IMODE(os.lstat(started.parent).st_mode) == 0o700


def test_without_xdg_runtime_dir_a_private_temporary_directory(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("XDG_RUNTIME_DIR")
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    tempfile.tempdir = None  # gettempdir() caches its answer
    try:
        directory = client.agent_directory()
    finally:
        tempfile.tempdir = None
    assert directory == tmp_path / f"exvault-agent-{os.getuid()}"
    assert stat.S_IMODE(os.lstat(directory).st_mode) == 0o700


def test_a_socket_in_a_directory_open_to_others_is_not_used(
    started: Path, private_runtime_dir: Path
) -> None:
    os.chmod(started.parent, 0o755)
    try:
        assert client.connect() is None  # an owner command then asks for the passphrase
    finally:
        os.chmod(started.parent, 0o700)


def test_no_agent_means_no_connection_and_no_directory(private_runtime_dir: Path) -> None:
    assert client.connect() is None
    assert not (private_runtime_dir / "exvault").exists()


def test_the_agent_signs_unwraps_and_fingerprints_for_its_vault(started: Path) -> None:
    identity = RootIdentity.generate()
    hand_over(identity)
    conn = client.connect()
    assert conn is not None
    with conn:
        through, kdf = AgentIdentity.describe(conn, VAULT_ID, STATE)
        assert kdf is None
        assert through.verify_public == identity.verify_public
        identities.verify_signature(identity.verify_public, b"m", through.sign(b"m"))
        dek = aead.random_key()
        wrapped = keywrap.wrap_for_recipient(dek, identity.encryption_public, b"ad")
        assert through.unwrap(wrapped, b"ad") == dek
        with pytest.raises(IntegrityError):
            through.unwrap(wrapped, b"other ad")
        assert through.keyed_fingerprint("api_key", "K") == identity.keyed_fingerprint(
            "api_key", "K"
        )


def test_a_request_for_another_vault_id_is_refused(started: Path) -> None:
    hand_over(RootIdentity.generate())
    conn = client.connect()
    assert conn is not None
    with conn, pytest.raises(AgentRefused, match="not unlocked"):
        AgentIdentity.describe(conn, b"w" * 16, STATE)


def test_garbage_is_refused_and_the_agent_serves_the_next_client(started: Path) -> None:
    reply = raw_exchange(started, struct.pack(">I", 5) + b"hello")
    assert error_code(reply) == protocol.MALFORMED
    agent_pid()  # still serving


def test_a_truncated_message_is_refused_and_the_agent_serves_the_next_client(
    started: Path,
) -> None:
    framed = protocol.encode(protocol.SIGN, VAULT_ID, STATE, b"x" * 100)
    reply = raw_exchange(started, framed[:60], close_write=True)
    assert error_code(reply) == protocol.MALFORMED
    agent_pid()


def test_an_oversized_message_is_refused_and_the_agent_serves_the_next_client(
    started: Path,
) -> None:
    reply = raw_exchange(started, struct.pack(">I", protocol.MAX_MESSAGE + 1) + b"x" * 1024)
    assert error_code(reply) == protocol.MALFORMED
    agent_pid()


def test_an_unknown_request_kind_is_refused_and_the_agent_goes_on(started: Path) -> None:
    # A well-framed request leaves the connection open for the next one; closing our
    # side makes the agent hang up after its reply instead of after its idle timeout.
    reply = raw_exchange(started, protocol.encode(0x42, b"x"), close_write=True)
    assert error_code(reply) == protocol.MALFORMED
    agent_pid()


def test_removing_the_socket_directory_makes_the_agent_exit(started: Path) -> None:
    pid = agent_pid()
    shutil.rmtree(started.parent)
    assert wait_gone(pid)


def test_sigterm_locks_and_stops_the_agent(started: Path) -> None:
    pid = agent_pid()
    os.kill(pid, signal.SIGTERM)
    assert wait_gone(pid)
    assert not started.exists()  # it removed its socket


def test_sighup_locks_every_vault_and_the_agent_goes_on(started: Path) -> None:
    hand_over(RootIdentity.generate())
    pid = agent_pid()
    os.kill(pid, signal.SIGHUP)
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        with launch.connect_or_start() as conn:
            if not client.status(conn).vaults:
                break
        time.sleep(0.05)
    with launch.connect_or_start() as conn:
        status = client.status(conn)
    assert status.pid == pid and status.vaults == []


def test_the_agent_writes_no_core_dump(started: Path) -> None:
    limits = Path(f"/proc/{agent_pid()}/limits").read_text()
    core = next(line for line in limits.splitlines() if line.startswith("Max core file size"))
    assert core.split()[4:6] == ["0", "0"]


def test_lifetimes_over_a_week_are_refused(started: Path) -> None:
    with launch.connect_or_start() as conn, pytest.raises(AgentRefused, match="week"):
        client.unlock(
            conn,
            VAULT_ID,
            STATE,
            RootIdentity.generate().to_bytes(),
            "x",
            60,
            8 * 86400,
            KdfParams(1, 64, 1),
        )


# ------------------------------------------------------------------ another uid


@pytest.fixture
def reachable_agent() -> Iterator[Path]:
    """An agent whose directory and socket another user may reach (as a careless
    setup would leave them): only its SO_PEERCRED check stands in the way."""
    top = Path(tempfile.mkdtemp(prefix="exvault-agent-"))
    os.chmod(top, 0o711)
    path = top / "agent.sock"
    process = subprocess.Popen([sys.executable, "-m", "vault.agent.server", str(path)])
    try:
        deadline = time.monotonic() + 10
        while client.connect(path) is None and time.monotonic() < deadline:
            time.sleep(0.02)
        os.chmod(path, 0o666)
        yield path
    finally:
        process.terminate()
        process.wait(10)
        shutil.rmtree(top)


def test_another_uid_is_refused(bot_ids: tuple[int, int], reachable_agent: Path) -> None:
    identity = RootIdentity.generate()
    conn = client.connect(reachable_agent)
    assert conn is not None
    with conn:
        client.unlock(conn, VAULT_ID, STATE, identity.to_bytes(), "x", 600, 600, None)
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child, as the other user: never returns into pytest
        try:
            os.close(read_end)
            os.setgroups([bot_ids[1]])
            os.setgid(bot_ids[1])
            os.setuid(bot_ids[0])
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                sock.connect(os.fspath(reachable_agent))
            except OSError as exc:
                os.write(write_end, json.dumps({"connected": False, "error": str(exc)}).encode())
                os._exit(0)
            reply = b""
            try:  # the agent may close before the request is even sent: that is its refusal
                sock.sendall(protocol.encode(protocol.SIGN, VAULT_ID, STATE, b"m"))
                sock.settimeout(protocol.FRAME_SECONDS + 2)
                while chunk := sock.recv(4096):
                    reply += chunk
            except (BrokenPipeError, ConnectionResetError):
                pass
            os.write(write_end, json.dumps({"connected": True, "reply": reply.hex()}).encode())
        finally:
            os._exit(0)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as pipe:
        data = pipe.read()
    os.waitpid(pid, 0)
    result = json.loads(data)
    assert result["connected"], result  # the socket was reachable: the agent had to refuse
    assert result["reply"] == ""  # closed without a word, let alone a signature
    assert agent_pid(reachable_agent) > 0  # and it goes on serving its own user
