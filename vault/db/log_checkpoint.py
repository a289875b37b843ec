"""The owner's verified prefix of the signed audit log, kept between processes.

:class:`vault.db.access_history.VerifiedLog` remembers what it verified of the log
only per handle, so a one-shot command (every CLI command) would walk and hash the
whole chain, and verify the signature of every owner's entry about the credential it
asks about. :class:`FileCheckpoint` keeps that state (:class:`LogState`: the head of
the verified prefix, the facts folded from it, the owner's entries still waiting) in
``$XDG_STATE_HOME/exvault/signed-log-<vault id>.bin`` (next to the audit witness),
0600 in a 0700 directory, both owned by the user (:mod:`vault.db.state_files`).

The file is authenticated: a MAC over a SHA-256 of its whole content, computed with
the vault's root key (:meth:`vault.format.identities.RootKeys.keyed_fingerprint`,
which the unlock agent computes without handing the key out), and it names the vault
id, the root's verify public key, the version of exvault that walked it (a later one
may walk more strictly) and a digest of the prefix's rows as they were walked
(:class:`vault.db.access_history.PrefixDigest`). Someone who can write the
database, or the state directory, cannot forge one; whoever holds the unlocked root
keys (the passphrase, or the unlocked agent) could, but that is the same user, who can
already sign entries. A file that fails the MAC, is of another vault or root key (a
rekey changes both) or of another version of exvault, has other modes or owner, is not
a regular file, is damaged or of an unknown format is ignored (the log is walked from
the start) and replaced; never an error.

The resumed state goes through every check of an in-memory prefix, and its prefix's
rows must be those walked (:class:`vault.db.access_history.VerifiedLog`), so it saves
work but never changes the facts nor where the chain breaks.

The content: :data:`MAGIC`, the 16-byte MAC, then canonical JSON (sorted keys, bytes as
hex, sets as sorted lists), parsed only once the MAC verifies.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from vault import version
from vault.db import state_files
from vault.db.access_history import (
    AccessFacts,
    FactsFold,
    LogState,
    RepeatedVersion,
    SignedEntry,
    WaitingEntry,
)
from vault.errors import VaultError
from vault.format import aead, encoding

MAGIC = b"exvault signed-log checkpoint 1\n"
"""The first bytes of the file (the format's version is in them)."""
MAC_LABEL = "exvault-v1 signed-log checkpoint"
"""The label of the root key's keyed fingerprint that authenticates the file."""
MAC_SIZE = 16

Fingerprint = Callable[[str, str], bytes]
"""``RootKeys.keyed_fingerprint``: (label, value) -> a MAC under the root key."""


def checkpoint_path(vault_id: bytes) -> Path | None:
    """Where the owner's verified prefix of this vault's signed log is kept; None
    without a state directory (:func:`vault.db.state_files.state_directory`), where it
    is then neither read nor written."""
    return state_files.state_file(f"signed-log-{vault_id.hex()}.bin")


class FileCheckpoint:
    """A :class:`vault.db.access_history.LogCheckpoint` in the user's state directory,
    for one vault and root key."""

    def __init__(self, vault_id: bytes, root_public: bytes, fingerprint: Fingerprint) -> None:
        self._vault_id = vault_id
        self._root_public = root_public
        self._fingerprint = fingerprint

    @property
    def path(self) -> Path | None:
        """The file (None: see :func:`checkpoint_path`)."""
        return checkpoint_path(self._vault_id)

    def load(self) -> LogState | None:
        """The state saved last; None when the file is missing or not to be trusted
        (see the module docstring). Never raises."""
        path = self.path
        data = None if path is None else state_files.private_bytes(path)
        if data is None or not data.startswith(MAGIC):
            return None
        mac, body = data[len(MAGIC) : len(MAGIC) + MAC_SIZE], data[len(MAGIC) + MAC_SIZE :]
        expected = self._mac(body)
        if expected is None or not aead.constant_time_equal(mac, expected):
            return None
        try:
            return decode(body, self._vault_id, self._root_public)
        except (ValueError, TypeError, KeyError, IndexError, AttributeError, RecursionError):
            return None

    def save(self, state: LogState) -> None:
        """Replace the file with ``state`` (atomically, 0600). Never raises: a failure
        (the disk, the agent) only costs the next process a full walk."""
        path = self.path
        if path is None:  # before the MAC: the agent's round trip for nothing
            return
        body = encode(state, self._vault_id, self._root_public)
        mac = self._mac(body)
        if mac is not None:
            state_files.write_private(path, MAGIC + mac + body)

    def _mac(self, body: bytes) -> bytes | None:
        """The MAC of ``body``; None when the root keys cannot compute it now (an agent
        that stopped answering)."""
        digest = encoding.sha256(MAGIC + body).hex()
        try:
            mac = self._fingerprint(MAC_LABEL, digest)
        except (VaultError, OSError):
            return None
        return mac if len(mac) == MAC_SIZE else None


def encode(state: LogState, vault_id: bytes, root_public: bytes) -> bytes:
    """The canonical JSON form of ``state``, bound to the vault and root key."""
    facts = state.fold.facts
    content = {
        # The verdict it vouches for is this version's walk: a later one may be stricter.
        "exvault": version.__version__,
        "vault": vault_id.hex(),
        "root": root_public.hex(),
        "head": [state.head[0], state.head[1].hex()],
        "prefix": state.prefix.hex(),
        "granted": facts.granted,
        "ungranted": facts.ungranted,
        "revoked": facts.revoked,
        "reads": {
            name: {client: sorted(versions) for client, versions in readers.items()}
            for name, readers in facts.reads.items()
        },
        "repeated": [
            [r.credential, r.version, r.first_seq, r.second_seq] for r in facts.repeated_versions
        ],
        "created": {
            name: sorted([version, seq] for version, seq in versions.items())
            for name, versions in state.fold.created.items()
        },
        "waiting": {
            name: [
                [
                    w.entry.seq,
                    w.entry.action,
                    w.entry.credential,
                    w.entry.version,
                    w.entry.detail,
                    w.entry.signer,
                    w.entry_hash.hex(),
                    w.signature.hex(),
                    w.key.hex(),
                ]
                for w in entries
            ]
            for name, entries in state.waiting.items()
        },
    }
    return json.dumps(content, sort_keys=True, separators=(",", ":")).encode()


def decode(body: bytes, vault_id: bytes, root_public: bytes) -> LogState | None:
    """The state ``body`` (:func:`encode`) holds; None when it is of another vault,
    root key or version of exvault.

    :raises ValueError: (or TypeError, KeyError, IndexError) when it is malformed.
    """
    content = _dict(json.loads(body))
    if (
        content["vault"] != vault_id.hex()
        or content["root"] != root_public.hex()
        or content["exvault"] != version.__version__
    ):
        return None
    seq, head_hash = _list(content["head"], 2)
    facts = AccessFacts(
        granted=_nested_seqs(content["granted"]),
        ungranted=_nested_seqs(content["ungranted"]),
        revoked=_seqs(content["revoked"]),
        reads={
            name: {
                client: {_int(v) for v in _list(versions)}
                for client, versions in _dict(readers).items()
            }
            for name, readers in _dict(content["reads"]).items()
        },
        repeated_versions=[
            RepeatedVersion(_str(name), _int(version), _int(first), _int(second))
            for name, version, first, second in (_list(r, 4) for r in _list(content["repeated"]))
        ],
    )
    created = {
        name: {_int(version): _int(at) for version, at in (_list(p, 2) for p in _list(pairs))}
        for name, pairs in _dict(content["created"]).items()
    }
    waiting = {
        name: [_waiting(_list(w, 9)) for w in _list(entries)]
        for name, entries in _dict(content["waiting"]).items()
    }
    return LogState(
        (_int(seq), _hex(head_hash)),
        FactsFold(facts, created),
        waiting,
        _hex(content["prefix"]),
    )


def _waiting(fields: list[Any]) -> WaitingEntry:
    seq, action, credential, version, detail, signer, hash_, signature, key = fields
    entry = SignedEntry(
        _int(seq),
        _str(action),
        None if credential is None else _str(credential),
        None if version is None else _int(version),
        _str(detail),
        _str(signer),
    )
    # Never ``checked``: a remembered entry's signature is verified when it is folded.
    return WaitingEntry(entry, _hex(hash_), _hex(signature), _hex(key))


def _nested_seqs(value: object) -> dict[str, dict[str, int]]:
    return {name: _seqs(inner) for name, inner in _dict(value).items()}


def _seqs(value: object) -> dict[str, int]:
    return {name: _int(seq) for name, seq in _dict(value).items()}


def _dict(value: object) -> dict[str, Any]:
    if not isinstance(value, dict) or not all(isinstance(k, str) for k in value):
        raise ValueError("not an object")
    return value


def _list(value: object, length: int | None = None) -> list[Any]:
    if not isinstance(value, list) or (length is not None and len(value) != length):
        raise ValueError("not a list of the expected length")
    return value


def _int(value: object) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise ValueError("not an integer")
    return value


def _str(value: object) -> str:
    if not isinstance(value, str):
        raise ValueError("not a string")
    return value


def _hex(value: object) -> bytes:
    return bytes.fromhex(_str(value))


__all__ = [
    "MAC_LABEL",
    "MAC_SIZE",
    "MAGIC",
    "FileCheckpoint",
    "Fingerprint",
    "checkpoint_path",
    "decode",
    "encode",
]
