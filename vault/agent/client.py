"""Finding and talking to the unlock agent, and its stand-in for the root keys.

The socket is ``$XDG_RUNTIME_DIR/exvault/agent.sock``, or, when that variable is
unset, ``exvault-agent-UID/agent.sock`` in the temporary directory; either directory
is created mode 0700 and refused when it is not a directory of this uid that only
this uid can enter. :func:`connect` finds an agent that answers (None when there is
none); starting one is :mod:`vault.agent.launch`'s, which only ``exvault unlock``
loads (every owner command imports this module: it stays light).

:class:`AgentIdentity` performs the owner's operations with the root keys
(:class:`vault.format.identities.RootKeys`) by asking the agent, never seeing the keys.
"""

# Annotations are not postponed here (no `from __future__ import annotations`):
# typing.NamedTuple compiles each postponed (string) field annotation when its class
# is built, about 10 µs each, and every command and bot builds these at start.
import contextlib
import os
import socket
import stat
from pathlib import Path
from typing import NamedTuple

from vault.agent import protocol
from vault.errors import AgentRefused, InsecureFile, IntegrityError, printable
from vault.format.encoding import Field
from vault.format.kdf_params import KdfParams
from vault.format.keywrap import WrappedKey

ENV_RUNTIME_DIR = "XDG_RUNTIME_DIR"
SOCKET_NAME = "agent.sock"


def agent_directory(*, create: bool = True) -> Path:
    """The agent's private directory, created mode 0700 when missing and ``create``.

    :raises InsecureFile: when it exists but is a symlink, not a directory, not this
        uid's, or open to others.
    :raises FileNotFoundError: when it is missing and not ``create``.
    """
    runtime = os.environ.get(ENV_RUNTIME_DIR)
    if runtime:
        directory = Path(runtime) / "exvault"
    else:
        # Here, not at the top: tempfile loads shutil, random, bz2 and lzma, a cost
        # every owner command would pay at start for a fallback it rarely takes.
        import tempfile

        directory = Path(tempfile.gettempdir()) / f"exvault-agent-{os.getuid()}"
    if create:
        with contextlib.suppress(FileExistsError):
            directory.mkdir(mode=0o700)
    info = os.lstat(directory)
    # In a shared temporary directory someone else could have made it first: an agent
    # there could be theirs, and would see what we ask it to sign.
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.getuid() or info.st_mode & 0o077:
        raise InsecureFile(
            f"the agent directory {printable(str(directory))} must be a directory of "
            "this user, mode 0700"
        )
    return directory


def socket_path(*, create: bool = True) -> Path:
    """Where the agent's socket is (its directory is created if missing and ``create``).

    :raises InsecureFile: when the directory is unsafe.
    :raises FileNotFoundError: when it is missing and not ``create``.
    """
    return agent_directory(create=create) / SOCKET_NAME


class AgentConnection:
    """One connection to the agent: requests and their replies, in turn.

    Use as a context manager or call :meth:`close`. Not for several threads.
    """

    def __init__(self, sock: socket.socket, path: Path) -> None:
        self._sock = sock
        self._path = path

    def __enter__(self) -> "AgentConnection":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the connection."""
        self._sock.close()

    def request(self, kind: int, *fields: Field) -> tuple[Field, ...]:
        """Send a request of ``kind``; the fields of the agent's OK reply.

        :raises AgentRefused: for an ERROR reply, or when the agent stopped answering.
        """
        return self.checked(self.ask(kind, *fields))

    @staticmethod
    def checked(reply: protocol.Message) -> tuple[Field, ...]:
        """The fields of an OK reply.

        :raises AgentRefused: for an ERROR reply or a reply of another kind.
        """
        if reply.kind == protocol.ERROR:
            code, message = (*reply.fields, "", "")[:2]
            if not isinstance(message, str):
                message = "a malformed refusal"
            if code == protocol.NOT_UNLOCKED:
                raise AgentRefused("this vault is not unlocked in the agent (run: exvault unlock)")
            raise AgentRefused(f"unlock agent: {message}")
        if reply.kind != protocol.OK:
            raise AgentRefused("the unlock agent sent a reply of an unknown kind")
        return reply.fields

    def ask(self, kind: int, *fields: Field) -> protocol.Message:
        """Send a request of ``kind``; the agent's reply, OK or ERROR.

        Reconnects once when the agent closed an idle connection.

        :raises AgentRefused: when the agent stopped answering.
        """
        data = protocol.encode(kind, *fields)
        for attempt in range(2):
            try:
                if attempt:
                    self._sock.close()
                    self._sock = _open_socket(self._path)
                reply = self._exchange(data)
            except (OSError, protocol.ProtocolError):
                continue
            if reply is not None:
                return reply
        raise AgentRefused("the unlock agent stopped answering; unlock the vault again")

    def _exchange(self, data: bytes) -> protocol.Message | None:
        self._sock.sendall(data)
        return protocol.read(self._sock, protocol.FRAME_SECONDS * 6)


def _open_socket(path: Path) -> socket.socket:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.connect(os.fspath(path))
        if protocol.peer_uid(sock) != os.getuid():  # only our own agent sees our requests
            raise ConnectionRefusedError("the agent socket is another user's")
    except BaseException:
        sock.close()
        raise
    return sock


def connect(path: Path | None = None) -> AgentConnection | None:
    """A connection to the running agent, or None when none answers.

    Never starts one, never removes anything: an owner command that finds no agent
    asks for the passphrase. Nor does it talk to a socket in an unsafe directory (one
    another user could have made): that is no agent either (``unlock`` says why).
    """
    try:
        path = socket_path(create=False) if path is None else path
        return AgentConnection(_open_socket(path), path)
    except (OSError, InsecureFile):  # no safe directory, no socket, nobody answering
        return None


# ----------------------------------------------------------------------------- requests


# A named tuple, not a dataclass: building a dataclass at import slows every command's start.
class HeldVault(NamedTuple):
    """A vault the agent holds, as ``agent status`` reports it."""

    vault_id: bytes
    label: str
    idle_seconds: int
    max_seconds: int
    locks_in: int
    unlocked_for: int


# A named tuple, not a dataclass: building a dataclass at import slows every command's start.
class AgentStatus(NamedTuple):
    """What the agent says of itself: its pid, whether its memory is locked, its vaults."""

    pid: int
    memory_locked: bool
    vaults: list[HeldVault]


def status(conn: AgentConnection) -> AgentStatus:
    """The agent's status.

    :raises AgentRefused: when the agent does not answer properly.
    """
    fields = conn.request(protocol.STATUS)
    try:
        pid, locked, count, *rest = fields
        assert isinstance(pid, int) and isinstance(locked, int) and isinstance(count, int)
        vaults = []
        for i in range(count):
            vault_id, label, idle, max_s, locks_in, age = rest[6 * i : 6 * i + 6]
            assert isinstance(vault_id, bytes) and isinstance(label, str)
            assert isinstance(idle, int) and isinstance(max_s, int)
            assert isinstance(locks_in, int) and isinstance(age, int)
            vaults.append(HeldVault(vault_id, label, idle, max_s, locks_in, age))
    except (AssertionError, ValueError):
        raise AgentRefused("the unlock agent sent a malformed status") from None
    return AgentStatus(pid, bool(locked), vaults)


def lock(conn: AgentConnection, vault_id: bytes | None) -> int:
    """Lock one vault (None: every vault); how many were unlocked.

    :raises AgentRefused: when the agent does not answer properly.
    """
    (count,) = conn.request(protocol.LOCK, vault_id)
    return count if isinstance(count, int) else 0


def unlock(
    conn: AgentConnection,
    vault_id: bytes,
    state: bytes,
    keys: bytes,
    label: str,
    idle_seconds: int,
    max_seconds: int,
    kdf: KdfParams | None,
) -> None:
    """Hand the agent a vault's root keys (``RootIdentity.to_bytes``) until it locks.

    :raises AgentRefused: when the agent refuses them.
    """
    conn.request(
        protocol.UNLOCK,
        vault_id,
        state,
        keys,
        label,
        idle_seconds,
        max_seconds,
        *((kdf.time_cost, kdf.memory_kib, kdf.parallelism) if kdf else (None, None, None)),
    )


class AgentIdentity:
    """The root keys of one vault as the agent holds them (:class:`RootKeys`).

    Every operation is a request naming the vault id and its unlock state, so the
    agent refuses it once the vault is locked or its keyslot or header changed.
    """

    def __init__(
        self,
        conn: AgentConnection,
        vault_id: bytes,
        state: bytes,
        encryption_public: bytes,
        verify_public: bytes,
    ) -> None:
        self._conn = conn
        self._vault_id = vault_id
        self._state = state
        self._encryption_public = encryption_public
        self._verify_public = verify_public

    @classmethod
    def describe(
        cls, conn: AgentConnection, vault_id: bytes, state: bytes
    ) -> "tuple[AgentIdentity, KdfParams | None]":
        """The identity of ``vault_id`` in the agent, and the Argon2id parameters of
        the passphrase slot it was unlocked with.

        :raises AgentRefused: when the agent does not hold that vault in that state.
        """
        fields = conn.request(protocol.DESCRIBE, vault_id, state)
        if len(fields) != 5 or not all(isinstance(f, bytes) for f in fields[:2]):
            raise AgentRefused("the unlock agent sent a malformed reply")
        encryption_public, verify_public, t, m, p = fields
        assert isinstance(encryption_public, bytes) and isinstance(verify_public, bytes)
        kdf = (
            KdfParams(t, m, p)
            if isinstance(t, int) and isinstance(m, int) and isinstance(p, int)
            else None
        )
        return cls(conn, vault_id, state, encryption_public, verify_public), kdf

    def __repr__(self) -> str:
        return f"AgentIdentity(vault_id={self._vault_id.hex()})"

    @property
    def encryption_public(self) -> bytes:
        """Raw X25519 public key (the root recipient)."""
        return self._encryption_public

    @property
    def verify_public(self) -> bytes:
        """Raw Ed25519 public key."""
        return self._verify_public

    def sign(self, message: bytes) -> bytes:
        """The agent's Ed25519 signature of ``message``.

        :raises AgentRefused: when the agent refuses.
        """
        return self._bytes(self._conn.request(protocol.SIGN, self._vault_id, self._state, message))

    def unwrap(self, wrapped: WrappedKey, ad: bytes) -> bytes:
        """A data key wrapped for the root recipient, unwrapped by the agent.

        :raises IntegrityError: when the wrap does not open.
        :raises AgentRefused: when the agent refuses.
        """
        reply = self._conn.ask(
            protocol.UNWRAP,
            self._vault_id,
            self._state,
            wrapped.ephemeral_public,
            wrapped.body,
            ad,
        )
        if reply.kind == protocol.ERROR and reply.fields[:1] == (protocol.FAILED,):
            raise IntegrityError()
        return self._bytes(self._conn.checked(reply))

    def keyed_fingerprint(self, label: str, value: str) -> bytes:
        """The agent's keyed fingerprint of ``value`` (its key never leaves the agent).

        :raises AgentRefused: when the agent refuses.
        """
        return self._bytes(
            self._conn.request(protocol.FINGERPRINT, self._vault_id, self._state, label, value)
        )

    @staticmethod
    def _bytes(fields: tuple[Field, ...]) -> bytes:
        if len(fields) != 1 or not isinstance(fields[0], bytes):
            raise AgentRefused("the unlock agent sent a malformed reply")
        return fields[0]
