"""The unlock agent's wire format: small length-prefixed messages over a Unix socket.

A message is a 4-byte big-endian length, then that many bytes: a version byte
(:data:`VERSION`), a kind byte, and the message's fields in the canonical encoding
of :func:`vault.format.encoding.encode_fields` (type byte, 4-byte length, value).
Each kind has a fixed list of field types (:data:`REQUESTS`, checked strictly: a
missing, extra or mistyped field, a truncated field, a wrong version or an unknown
kind are all refused), and a message is at most :data:`MAX_MESSAGE` bytes: the
reader refuses a longer length before reading any of the body. A reply is either
:data:`OK` with the request's results or :data:`ERROR` with a code and a message.

Nothing here does I/O beyond reading and writing one message on a socket it is
given; both ends (:mod:`vault.agent.server`, :mod:`vault.agent.client`) use it.
"""

# Annotations are not postponed here (no `from __future__ import annotations`):
# typing.NamedTuple compiles each postponed (string) field annotation when its class
# is built, about 10 µs each, and every command and bot builds these at start.
import socket
import struct
from typing import NamedTuple

from vault.errors import VaultError
from vault.format.encoding import Field, encode_fields

VERSION = 1
"""The protocol version byte; a message with another is refused."""

MAX_MESSAGE = 64 * 1024
"""The largest message body either end accepts, in bytes (a signed row is far smaller)."""

FRAME_SECONDS = 5.0
"""How long the rest of a message may take once its first byte has arrived."""

# Request kinds.
STATUS = 1
UNLOCK = 2
DESCRIBE = 3
SIGN = 4
UNWRAP = 5
FINGERPRINT = 6
LOCK = 7
# Reply kinds.
OK = 0x80
ERROR = 0x81

# Error codes of an ERROR reply.
NOT_UNLOCKED = "not-unlocked"
CHANGED = "changed"
MALFORMED = "malformed"
FAILED = "failed"

VAULT_ID_SIZE = 16
STATE_SIZE = 32
KEYS_SIZE = 64

# The field types of each request, in order. ``None`` in a tuple of types means the
# field may also be absent (encoded as "none").
_Types = tuple[tuple[type, ...], ...]
REQUESTS: dict[int, _Types] = {
    STATUS: (),
    # vault id, unlock state, private keys, location label, idle s, max s, Argon2id t/m/p
    UNLOCK: ((bytes,), (bytes,), (bytes,), (str,), (int,), (int,)) + ((int, type(None)),) * 3,
    DESCRIBE: ((bytes,), (bytes,)),
    SIGN: ((bytes,), (bytes,), (bytes,)),
    # vault id, state, ephemeral public key, wrapped body, associated data
    UNWRAP: ((bytes,), (bytes,), (bytes,), (bytes,), (bytes,)),
    FINGERPRINT: ((bytes,), (bytes,), (str,), (str,)),
    # vault id, or none for every vault
    LOCK: ((bytes, type(None)),),
}

_LENGTH = struct.Struct(">I")
_PEERCRED = struct.Struct("3i")  # struct ucred: pid, uid, gid
_TAGS = {b"b": bytes, b"s": str, b"i": int, b"n": type(None)}


class ProtocolError(VaultError):
    """A message that does not follow this format (the connection is closed after it)."""


# A named tuple, not a dataclass: building a dataclass at import slows every command's start.
class Message(NamedTuple):
    """One decoded message: its kind and its fields."""

    kind: int
    fields: tuple[Field, ...]

    def __repr__(self) -> str:  # fields may hold keys, signatures or a passphrase's fruit
        return f"Message(kind={self.kind}, fields={len(self.fields)})"


def encode(kind: int, *fields: Field) -> bytes:
    """The framed bytes of a message of ``kind`` with ``fields``.

    :raises ProtocolError: when the message would exceed :data:`MAX_MESSAGE`.
    """
    body = bytes((VERSION, kind)) + encode_fields(*fields)
    if len(body) > MAX_MESSAGE:
        raise ProtocolError(f"message too large ({len(body)} bytes, at most {MAX_MESSAGE})")
    return _LENGTH.pack(len(body)) + body


def decode_fields(data: bytes) -> tuple[Field, ...]:
    """The fields of a canonical encoding (the inverse of ``encode_fields``).

    :raises ProtocolError: for an unknown type byte, a truncated field, an integer
        that is not 8 bytes, or text that is not UTF-8.
    """
    fields: list[Field] = []
    at = 0
    while at < len(data):
        if len(data) - at < 5:
            raise ProtocolError("truncated field header")
        tag, (length,) = data[at : at + 1], _LENGTH.unpack_from(data, at + 1)
        at += 5
        if tag not in _TAGS or length > len(data) - at:
            raise ProtocolError("unknown field type or truncated field")
        value = data[at : at + length]
        at += length
        kind = _TAGS[tag]
        if kind is bytes:
            fields.append(value)
        elif kind is str:
            try:
                fields.append(value.decode("utf-8"))
            except UnicodeDecodeError:
                raise ProtocolError("text field is not UTF-8") from None
        elif kind is int:
            if length != 8:
                raise ProtocolError("integer field is not 8 bytes")
            fields.append(int.from_bytes(value, "big", signed=True))
        else:
            if length != 0:
                raise ProtocolError("none field has a value")
            fields.append(None)
    return tuple(fields)


def decode(body: bytes) -> Message:
    """A message from its body (the bytes after the length prefix).

    :raises ProtocolError: for a wrong version or malformed fields.
    """
    if len(body) < 2:
        raise ProtocolError("message too short")
    if body[0] != VERSION:
        raise ProtocolError(f"unsupported protocol version {body[0]}")
    return Message(body[1], decode_fields(body[2:]))


def check_request(message: Message) -> None:
    """Refuse a request of an unknown kind or whose fields do not match its kind.

    :raises ProtocolError: naming what is wrong.
    """
    types = REQUESTS.get(message.kind)
    if types is None:
        raise ProtocolError(f"unknown request kind {message.kind}")
    if len(message.fields) != len(types):
        raise ProtocolError(f"request kind {message.kind} takes {len(types)} fields")
    for value, allowed in zip(message.fields, types, strict=True):
        if type(value) not in allowed:
            raise ProtocolError(f"request kind {message.kind} has a field of the wrong type")


def read(sock: socket.socket, first_byte_timeout: float | None = None) -> Message | None:
    """Read one message from ``sock``; None when the peer closed before sending one.

    Waits up to ``first_byte_timeout`` (forever when None) for the message to begin,
    then at most :data:`FRAME_SECONDS` for the rest of it.

    :raises ProtocolError: for an oversized, truncated or malformed message.
    :raises TimeoutError: when the message does not begin or end in time.
    """
    sock.settimeout(first_byte_timeout)
    first = sock.recv(1)
    if not first:
        return None
    sock.settimeout(FRAME_SECONDS)
    header = first + _read_exactly(sock, _LENGTH.size - 1)
    (length,) = _LENGTH.unpack(header)
    if length > MAX_MESSAGE:
        raise ProtocolError(f"message too large ({length} bytes, at most {MAX_MESSAGE})")
    return decode(_read_exactly(sock, length))


def _read_exactly(sock: socket.socket, size: int) -> bytes:
    # recv_into one buffer: a message arrives in few pieces, and never exceeds the cap.
    buffer = bytearray(size)
    view = memoryview(buffer)
    got = 0
    while got < size:
        n = sock.recv_into(view[got:])
        if n == 0:
            raise ProtocolError("truncated message (the connection closed inside it)")
        got += n
    return bytes(buffer)


def peer_uid(sock: socket.socket) -> int:
    """The uid of the process at the other end of a Unix socket (Linux ``SO_PEERCRED``).

    :raises OSError: where the platform has no ``SO_PEERCRED`` (the agent is Linux-only).
    """
    option = getattr(socket, "SO_PEERCRED", None)
    if option is None:
        raise OSError("SO_PEERCRED is not available on this platform")
    creds = sock.getsockopt(socket.SOL_SOCKET, option, _PEERCRED.size)
    _pid, uid, _gid = _PEERCRED.unpack(creds)
    return int(uid)


def error_reply(code: str, message: str) -> bytes:
    """The framed ERROR reply with ``code`` (one of the codes above) and ``message``."""
    return encode(ERROR, code, message)
