"""The agent's wire format: what it encodes decodes back, and what is malformed is refused."""

from __future__ import annotations

import os
import socket
import struct

import pytest

from vault.agent import protocol
from vault.format.encoding import encode_fields


def _body(framed: bytes) -> bytes:
    (length,) = struct.unpack(">I", framed[:4])
    assert length == len(framed) - 4
    return framed[4:]


def test_a_request_decodes_to_what_was_encoded() -> None:
    framed = protocol.encode(protocol.SIGN, b"\x01" * 16, b"\x02" * 32, b"message")
    message = protocol.decode(_body(framed))
    assert message.kind == protocol.SIGN
    assert message.fields == (b"\x01" * 16, b"\x02" * 32, b"message")
    protocol.check_request(message)


def test_every_field_type_round_trips() -> None:
    fields = (b"raw", "text \u00e9", -5, 2**62, None, b"")
    assert protocol.decode_fields(encode_fields(*fields)) == fields


def test_a_message_repr_shows_no_field() -> None:
    message = protocol.decode(_body(protocol.encode(protocol.SIGN, b"k" * 16, b"s" * 32, b"x")))
    assert "k" * 16 not in repr(message) and "fields=3" in repr(message)


def test_a_message_str_and_format_show_no_field() -> None:
    # A named tuple's str and format go through its repr, not the tuple's items.
    message = protocol.decode(_body(protocol.encode(protocol.SIGN, b"k" * 16, b"s" * 32, b"x")))
    for shown in (str(message), f"{message}", format(message, "")):
        assert "k" * 16 not in shown and "fields=3" in shown


def test_another_version_is_refused() -> None:
    body = bytearray(_body(protocol.encode(protocol.STATUS)))
    body[0] = protocol.VERSION + 1
    with pytest.raises(protocol.ProtocolError, match="version"):
        protocol.decode(bytes(body))


def test_an_empty_body_is_refused() -> None:
    with pytest.raises(protocol.ProtocolError, match="too short"):
        protocol.decode(b"\x01")


def test_an_unknown_field_type_is_refused() -> None:
    with pytest.raises(protocol.ProtocolError):
        protocol.decode_fields(b"x\x00\x00\x00\x01a")


def test_a_truncated_field_is_refused() -> None:
    with pytest.raises(protocol.ProtocolError):
        protocol.decode_fields(encode_fields(b"abcdef")[:-2])


def test_a_truncated_field_header_is_refused() -> None:
    with pytest.raises(protocol.ProtocolError, match="header"):
        protocol.decode_fields(b"b\x00\x00")


def test_an_integer_of_another_size_is_refused() -> None:
    with pytest.raises(protocol.ProtocolError, match="8 bytes"):
        protocol.decode_fields(b"i\x00\x00\x00\x02\x00\x01")


def test_text_that_is_not_utf8_is_refused() -> None:
    with pytest.raises(protocol.ProtocolError, match="UTF-8"):
        protocol.decode_fields(b"s\x00\x00\x00\x01\xff")


def test_a_none_with_a_value_is_refused() -> None:
    with pytest.raises(protocol.ProtocolError, match="none"):
        protocol.decode_fields(b"n\x00\x00\x00\x01\x00")


def test_an_unknown_request_kind_is_refused() -> None:
    with pytest.raises(protocol.ProtocolError, match="unknown request kind"):
        protocol.check_request(protocol.Message(99, ()))


def test_a_request_with_a_missing_field_is_refused() -> None:
    with pytest.raises(protocol.ProtocolError, match="takes 3 fields"):
        protocol.check_request(protocol.Message(protocol.SIGN, (b"a", b"b")))


def test_a_request_with_a_field_of_the_wrong_type_is_refused() -> None:
    with pytest.raises(protocol.ProtocolError, match="wrong type"):
        protocol.check_request(protocol.Message(protocol.SIGN, (b"a", b"b", "text")))


def test_a_message_over_the_cap_is_not_encoded() -> None:
    with pytest.raises(protocol.ProtocolError, match="too large"):
        protocol.encode(protocol.SIGN, b"", b"", b"x" * protocol.MAX_MESSAGE)


def test_an_oversized_length_is_refused_before_its_body_is_read() -> None:
    mine, theirs = socket.socketpair()
    with mine, theirs:
        theirs.sendall(struct.pack(">I", protocol.MAX_MESSAGE + 1))  # and no body at all
        with pytest.raises(protocol.ProtocolError, match="too large"):
            protocol.read(mine, 1.0)


def test_a_message_cut_short_is_refused() -> None:
    mine, theirs = socket.socketpair()
    with mine:
        theirs.sendall(protocol.encode(protocol.STATUS, b"padding")[:-3])
        theirs.close()
        with pytest.raises(protocol.ProtocolError, match="truncated"):
            protocol.read(mine, 1.0)


def test_a_closed_connection_reads_as_none() -> None:
    mine, theirs = socket.socketpair()
    theirs.close()
    with mine:
        assert protocol.read(mine, 1.0) is None


def test_peer_uid_is_this_process_uid() -> None:
    mine, theirs = socket.socketpair(socket.AF_UNIX)
    with mine, theirs:
        assert protocol.peer_uid(mine) == os.getuid()
