"""The unlock agent: a per-user process that keeps unlocked vaults' root keys.

``exvault unlock`` hands it a vault's root keys (after the passphrase opened the
vault's keyslot in the ``exvault`` process); owner commands then ask it to sign,
to unwrap a data key wrapped for the root recipient, or to compute a keyed
fingerprint. It never sends a private key back, as ssh-agent signs without
exporting. Each request names the vault id and the *unlock state* (a digest of the
vault's header and passphrase keyslot rows, taken when it was unlocked): a request
for a vault it does not hold is refused, and one whose state differs (``passwd``,
``recover``, ``rekey`` or ``restore`` ran since) locks that vault and is refused.

It serves one Unix socket, mode 0600, in a 0700 directory; every connection is
checked with ``SO_PEERCRED`` and only this uid is served. A vault locks when idle
longer than its idle lifetime, when older than its maximum lifetime, on ``lock``,
and every vault on SIGHUP; SIGTERM and SIGINT lock every vault and stop the agent,
as does the removal (or replacement) of its socket. At start it turns core dumps
and ptrace off (``PR_SET_DUMPABLE``) and, where ``RLIMIT_MEMLOCK`` allows it, locks
its memory (``mlockall``) so keys are not written to swap.

Run by :mod:`vault.agent.client` as ``python -m vault.agent.server SOCKET``.
"""

from __future__ import annotations

import ctypes
import os
import resource
import selectors
import signal
import socket
import stat
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType

from vault.agent import protocol
from vault.agent.protocol import Message
from vault.errors import IntegrityError
from vault.format.aead import constant_time_equal
from vault.format.encoding import Field
from vault.format.identities import RootIdentity
from vault.format.keywrap import WrappedKey
from vault.runtime.hardening import disable_core_dumps, is_dumpable

POLL_SECONDS = 0.2
"""How often the agent checks lifetimes, signals and its socket."""

IDLE_CONNECTION_SECONDS = 600.0
"""A connection that sends nothing for this long is closed (the client reconnects)."""

MAX_CONNECTIONS = 32
"""Connections served at once; more are closed at once."""

MAX_LIFETIME_SECONDS = 7 * 86400
"""The longest an unlock may last (a week): longer is refused at ``unlock``."""

_MCL_CURRENT, _MCL_FUTURE = 1, 2


@dataclass
class Unlocked:
    """One vault held by the agent: its keys and when it locks."""

    identity: RootIdentity = field(repr=False)
    state: bytes
    label: str
    idle_seconds: int
    max_seconds: int
    unlocked_at: float
    last_used: float
    kdf: tuple[Field, Field, Field]

    def locks_in(self, now: float) -> float:
        """Seconds until this vault locks (idle or maximum lifetime, whichever first)."""
        return min(
            self.last_used + self.idle_seconds - now, self.unlocked_at + self.max_seconds - now
        )


class Agent:
    """The unlocked vaults and the requests about them; no sockets (see :func:`serve`).

    Thread-safe: every connection's thread calls :meth:`reply`. ``clock`` is a
    monotonic clock in seconds (tests inject one).
    """

    def __init__(
        self, clock: Callable[[], float] = time.monotonic, memory_locked: bool = False
    ) -> None:
        self._clock = clock
        self._vaults: dict[bytes, Unlocked] = {}
        self._lock = threading.Lock()
        self.memory_locked = memory_locked

    def reply(self, request: Message) -> bytes:
        """The framed reply to ``request`` (an ERROR reply for any refusal)."""
        try:
            protocol.check_request(request)
        except protocol.ProtocolError as exc:
            return protocol.error_reply(protocol.MALFORMED, str(exc))
        with self._lock:
            self._expire()
            try:
                return protocol.encode(protocol.OK, *self._perform(request))
            except _Refusal as refusal:
                return protocol.error_reply(refusal.code, refusal.message)

    def expire(self) -> list[bytes]:
        """Lock the vaults past their idle or maximum lifetime; their ids."""
        with self._lock:
            return self._expire()

    def lock_all(self) -> int:
        """Lock every vault; how many were unlocked."""
        with self._lock:
            count = len(self._vaults)
            self._vaults.clear()
            return count

    def held(self) -> list[bytes]:
        """The ids of the vaults unlocked now."""
        with self._lock:
            return list(self._vaults)

    def _expire(self) -> list[bytes]:
        now = self._clock()
        gone = [vid for vid, held in self._vaults.items() if held.locks_in(now) <= 0]
        for vault_id in gone:
            del self._vaults[vault_id]
        return gone

    def _perform(self, request: Message) -> tuple[Field, ...]:
        kind, fields = request.kind, request.fields
        if kind == protocol.STATUS:
            return self._status()
        if kind == protocol.UNLOCK:
            return self._unlock(fields)
        if kind == protocol.LOCK:
            (vault_id,) = fields
            if vault_id is None:
                count = len(self._vaults)
                self._vaults.clear()
                return (count,)
            assert isinstance(vault_id, bytes)
            return (1 if self._vaults.pop(vault_id, None) is not None else 0,)
        held = self._held(fields[0], fields[1])
        held.last_used = self._clock()
        if kind == protocol.DESCRIBE:
            return (
                held.identity.encryption_public,
                held.identity.verify_public,
                *held.kdf,
            )
        if kind == protocol.SIGN:
            assert isinstance(fields[2], bytes)
            return (held.identity.sign(fields[2]),)
        if kind == protocol.UNWRAP:
            ephemeral, body, ad = fields[2], fields[3], fields[4]
            assert isinstance(ephemeral, bytes) and isinstance(body, bytes)
            assert isinstance(ad, bytes)
            try:
                return (held.identity.unwrap(WrappedKey(ephemeral, body), ad),)
            except IntegrityError:
                raise _Refusal(protocol.FAILED, "the data key does not unwrap") from None
        # FINGERPRINT
        label, value = fields[2], fields[3]
        assert isinstance(label, str) and isinstance(value, str)
        return (held.identity.keyed_fingerprint(label, value),)

    def _held(self, vault_id: Field, state: Field) -> Unlocked:
        assert isinstance(vault_id, bytes) and isinstance(state, bytes)
        held = self._vaults.get(vault_id)
        if held is None:
            raise _Refusal(protocol.NOT_UNLOCKED, "this vault is not unlocked in the agent")
        if not constant_time_equal(held.state, state):
            # Its passphrase keyslot or header changed since the unlock: lock it.
            del self._vaults[vault_id]
            raise _Refusal(
                protocol.CHANGED,
                "the vault's passphrase or keys changed since it was unlocked; the agent locked it",
            )
        return held

    def _unlock(self, fields: tuple[Field, ...]) -> tuple[Field, ...]:
        vault_id, state, keys, label, idle, max_seconds, *kdf = fields
        assert isinstance(vault_id, bytes) and isinstance(state, bytes)
        assert isinstance(keys, bytes) and isinstance(label, str)
        assert isinstance(idle, int) and isinstance(max_seconds, int)
        if (
            len(vault_id) != protocol.VAULT_ID_SIZE
            or len(state) != protocol.STATE_SIZE
            or len(keys) != protocol.KEYS_SIZE
        ):
            raise _Refusal(protocol.MALFORMED, "a vault id, state or key of the wrong size")
        if not (idle > 0 and 0 < max_seconds <= MAX_LIFETIME_SECONDS):
            raise _Refusal(protocol.MALFORMED, "lifetimes must be positive, at most a week")
        try:
            identity = RootIdentity.from_bytes(keys)
        except (IntegrityError, ValueError):
            raise _Refusal(protocol.MALFORMED, "the keys do not load") from None
        now = self._clock()
        self._vaults[vault_id] = Unlocked(
            identity=identity,
            state=state,
            label=label,
            idle_seconds=min(idle, max_seconds),
            max_seconds=max_seconds,
            unlocked_at=now,
            last_used=now,
            kdf=(kdf[0], kdf[1], kdf[2]),
        )
        return ()

    def _status(self) -> tuple[Field, ...]:
        now = self._clock()
        out: list[Field] = [os.getpid(), int(self.memory_locked), len(self._vaults)]
        for vault_id, held in sorted(self._vaults.items(), key=lambda item: item[1].label):
            out += [
                vault_id,
                held.label,
                held.idle_seconds,
                held.max_seconds,
                int(held.locks_in(now)),
                int(now - held.unlocked_at),
            ]
        return tuple(out)


class _Refusal(Exception):
    """A request the agent answers with an ERROR reply."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def serve_connection(agent: Agent, conn: socket.socket) -> None:
    """Answer the requests of one connection until it closes or sends a bad message.

    A malformed, truncated or oversized message gets an ERROR reply when the socket
    still takes one, then the connection is closed; the agent goes on serving others.
    """
    with conn:
        while True:
            try:
                request = protocol.read(conn, IDLE_CONNECTION_SECONDS)
            except protocol.ProtocolError as exc:
                _send_quietly(conn, protocol.error_reply(protocol.MALFORMED, str(exc)))
                return
            except OSError:  # timeouts included: the peer is gone or stalled
                return
            if request is None:
                return
            try:
                conn.sendall(agent.reply(request))
            except OSError:
                return


def _send_quietly(conn: socket.socket, data: bytes) -> None:
    try:
        conn.settimeout(protocol.FRAME_SECONDS)
        conn.sendall(data)
    except OSError:
        pass


class Stop:
    """What the signal handlers ask of the serving loop (set from a handler)."""

    def __init__(self) -> None:
        self.stop = False
        self.lock_all = False


def serve(agent: Agent, listener: socket.socket, path: Path, stop: Stop) -> None:
    """Accept connections on ``listener`` (bound at ``path``) until ``stop`` or until
    ``path`` is removed or replaced; lock every vault on the way out.

    Each same-uid connection is served in its own thread; another uid's is closed
    without a reply.
    """
    bound = os.stat(path).st_ino
    slots = threading.BoundedSemaphore(MAX_CONNECTIONS)
    selector = selectors.DefaultSelector()
    listener.setblocking(False)
    selector.register(listener, selectors.EVENT_READ)
    try:
        while not stop.stop and _still_bound(path, bound):
            if stop.lock_all:
                stop.lock_all = False
                agent.lock_all()
            for _ in selector.select(POLL_SECONDS):
                try:
                    conn, _ = listener.accept()
                except OSError:
                    continue
                _admit(agent, conn, slots)
            agent.expire()
    finally:
        agent.lock_all()
        selector.close()


def _admit(agent: Agent, conn: socket.socket, slots: threading.BoundedSemaphore) -> None:
    conn.setblocking(True)
    try:
        same_user = protocol.peer_uid(conn) == os.getuid()
    except OSError:
        same_user = False
    if not same_user or not slots.acquire(blocking=False):
        conn.close()
        return

    def run() -> None:
        try:
            serve_connection(agent, conn)
        finally:
            slots.release()

    threading.Thread(target=run, daemon=True).start()


def _still_bound(path: Path, inode: int) -> bool:
    # The socket file removed (or its directory), or replaced by another agent's.
    try:
        return os.stat(path).st_ino == inode
    except OSError:
        return False


def lock_memory() -> bool:
    """Lock this process's memory (``mlockall``) when ``RLIMIT_MEMLOCK`` is unlimited;
    True when it did.

    Best effort: with a limit, locking future pages would make allocations fail once
    the limit is reached, so nothing is locked and ``agent status`` says so.
    """
    soft, _hard = resource.getrlimit(resource.RLIMIT_MEMLOCK)
    if soft != resource.RLIM_INFINITY or not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return bool(libc.mlockall(_MCL_CURRENT | _MCL_FUTURE) == 0)
    except (OSError, AttributeError):
        return False


def listen(path: Path) -> socket.socket:
    """A Unix socket listening at ``path``, created mode 0600.

    :raises OSError: when ``path`` cannot be bound (e.g. it exists).
    """
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    old = os.umask(0o177)
    try:
        listener.bind(os.fspath(path))
    finally:
        os.umask(old)
    os.chmod(path, stat.S_IRUSR | stat.S_IWUSR)
    listener.listen(16)
    return listener


def main(argv: list[str]) -> int:
    """Run the agent on the socket path ``argv[0]``, then remove that socket."""
    disable_core_dumps()
    if is_dumpable():
        return 1  # refuse to hold keys in a process others of this uid could read
    path = Path(argv[0])
    os.chdir("/")
    stop = Stop()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        if signum == signal.SIGHUP:
            stop.lock_all = True
        else:
            stop.stop = True

    for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(signum, on_signal)
    agent = Agent(memory_locked=lock_memory())
    listener = listen(path)
    bound = os.stat(path).st_ino
    try:
        serve(agent, listener, path, stop)
    finally:
        listener.close()
        if _still_bound(path, bound):
            path.unlink()
    return 0


if __name__ == "__main__":  # pragma: no cover (run as a process by the client)
    sys.exit(main(sys.argv[1:]))
