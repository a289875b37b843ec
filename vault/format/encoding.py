"""The canonical encoding of vault format v1: the exact bytes every AD, signature and
digest covers (docs/format.md sections 5 to 7).

Pure functions over values (the standard library, and ``cryptography``'s SHA-256).
Every associated data, signed message and digest input of the format is a list of
typed fields encoded here; the other primitives (:mod:`vault.format.aead`,
:mod:`vault.format.identities`) only ever see its output.

Why length-prefixed typed fields, and not JSON or plain concatenation: the encoding
must be injective, so that no two field lists share an encoding. Concatenating
``"ab" || "c"`` and ``"a" || "bc"`` gives the same bytes, which would let someone who
can write the database shift a value from one signed column into the next and keep a
valid signature; JSON has several spellings of one value, so a second reader could not
recompute the exact bytes. One type byte and a 4-byte big-endian length before every
value leave exactly one encoding of each list, simple enough to write again in any
language, and a text field never equals a bytes field of the same value.

Why the format version and a purpose or kind in every AD and signed message: binding
them means a ciphertext or signature cannot be moved to another kind of record, into
another vault, or read by a future format as one of its own.
"""

from __future__ import annotations

import struct

from cryptography.hazmat.primitives import hashes

FORMAT_VERSION = 1
"""Version of the vault format this package implements; bound into every AD and
signed message."""

Field = bytes | str | int | None
"""One canonical field: bytes, text, a signed 64-bit integer, or none (SQL NULL)."""

_TAG_BYTES = b"b"
_TAG_TEXT = b"s"
_TAG_INT = b"i"
_TAG_NONE = b"n"


_PACK_LENGTH = struct.Struct(">I").pack
_PACK_INT = struct.Struct(">q").pack
_INT_HEADER = _TAG_INT + _PACK_LENGTH(8)
_NONE_FIELD = _TAG_NONE + _PACK_LENGTH(0)


def encode_fields(*fields: Field) -> bytes:
    """Encode a sequence of fields unambiguously (the input to every AD, MAC and signature).

    Each field is one type byte (``b`` bytes, ``s`` UTF-8 text, ``i`` signed 64-bit
    integer, ``n`` none), a 4-byte big-endian length, and the value. Length prefixes
    make the encoding injective: no two field lists share an encoding, so a value
    cannot be shifted from one field into the next.

    :raises TypeError: for a field of another type (a programming error).
    """
    # Every write hashes and signs several of these: precompiled structs, one join.
    out: list[bytes] = []
    for field in fields:
        if isinstance(field, str):
            data = field.encode("utf-8")
            out += (_TAG_TEXT, _PACK_LENGTH(len(data)), data)
        elif isinstance(field, bytes):
            out += (_TAG_BYTES, _PACK_LENGTH(len(field)), field)
        elif field is None:
            out.append(_NONE_FIELD)
        elif isinstance(field, bool):
            raise TypeError("bool is not a canonical field type")
        elif isinstance(field, int):
            out += (_INT_HEADER, _PACK_INT(field))
        else:
            raise TypeError(f"unsupported canonical field type {type(field).__name__}")
    return b"".join(out)


def associated_data(purpose: str, vault_id: bytes, *fields: Field) -> bytes:
    """The associated data of one AEAD call: format version, purpose, vault id, context.

    Binding the purpose and the vault id means a ciphertext cannot be moved to another
    kind of record, or into another vault, without failing authentication.
    """
    return encode_fields(b"exvault-ad", FORMAT_VERSION, purpose, vault_id, *fields)


def signed_message(kind: str, vault_id: bytes, *fields: Field) -> bytes:
    """The exact bytes an Ed25519 signature of a record of ``kind`` covers."""
    return encode_fields(b"exvault-sig", FORMAT_VERSION, kind, vault_id, *fields)


def digest(*fields: Field) -> bytes:
    """SHA-256 of the canonical encoding of ``fields`` (e.g. the metadata digest)."""
    return sha256(encode_fields(*fields))


def sha256(data: bytes) -> bytes:
    """SHA-256 of ``data``, the format's one hash."""
    # cryptography's, not hashlib's: a bot's new process then loads one OpenSSL
    # binding instead of two (docs/benchmarks.md, figure 2).
    hasher = hashes.Hash(hashes.SHA256())
    hasher.update(data)
    return hasher.finalize()
