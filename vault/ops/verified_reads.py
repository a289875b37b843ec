"""The read entries whose signature ``exvault check`` already verified, remembered
outside the vault so that each is verified once, not at every run.

``check`` counts a credential's newest ``read ok`` entry only once its hash matches its
columns and its Ed25519 signature verifies with the key of the signer it names (one
verification per credential: tens of seconds at 100,000 credentials). An entry's
hash covers every column but the signature, and the signature covers the hash: once an
entry with a given (seq, hash) verified with a given key, the same (seq, hash) always
denotes the same entry, and it verifies again. So ``check`` remembers, per vault, a
digest of (vault id, seq, entry hash, actor, signer, signer's public key) for each
read entry it verified, and on the next run verifies only entries not remembered.

The file is ``$XDG_STATE_HOME/exvault/verified-reads-<vault id>.bin`` (next to the
audit witness), 0600 in a 0700 directory, both owned by the user running ``check``.
One with other modes or owner, of another vault, or damaged is ignored (and replaced).
Whoever can write it can make a forged read count, and so make an unused key look in
use; that is the same user, who can already change ``check`` itself.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

from vault.db import audit, state_files
from vault.errors import IntegrityError
from vault.format import aead, encoding, identities
from vault.format.audit_entry import AuditRow, entry_hash, signed_entry

MAGIC = b"exvault verified reads 1\n"
"""The first bytes of the file; then the 16-byte vault id, then 32-byte digests."""
DIGEST_SIZE = 32


def _cache_name(vault_id: bytes) -> str:
    return f"verified-reads-{vault_id.hex()}.bin"


def cache_path(vault_id: bytes) -> Path | None:
    """Where ``check`` remembers this vault's verified read entries; None without a
    state directory (:func:`vault.db.state_files.state_directory`), where every read
    entry is then verified at each run."""
    return state_files.state_file(_cache_name(vault_id))


class VerifiedReads:
    """The read entries of one vault verified so far, and those confirmed in this run.

    Obtain one with :meth:`load`; :meth:`signed` checks a read entry with the key
    :func:`vault.db.audit.signing_key` names, once ever; :meth:`save` keeps the
    entries confirmed in this run (the newest read of each credential), so the file
    does not grow with the log.
    """

    def __init__(self, vault_id: bytes, known: frozenset[bytes] = frozenset()) -> None:
        self._vault_id = vault_id
        self._known = known
        self._confirmed: set[bytes] = set()

    @classmethod
    def load(cls, vault_id: bytes) -> VerifiedReads:
        """The remembered entries of this vault; none when the file is missing,
        damaged, of another vault, or not private to this user (never raises)."""
        data = state_files.read_state(_cache_name(vault_id))
        header = MAGIC + vault_id
        if data is None or not data.startswith(header) or (len(data) - len(header)) % DIGEST_SIZE:
            return cls(vault_id)
        body = data[len(header) :]
        return cls(
            vault_id,
            frozenset(body[i : i + DIGEST_SIZE] for i in range(0, len(body), DIGEST_SIZE)),
        )

    def signed(
        self,
        entry: AuditRow,
        signers: Mapping[str, tuple[str, bytes]],
        rekeys: Sequence[audit.Rekey] = (),
    ) -> bool:
        """True when ``entry``'s hash matches its columns and its signature verifies
        with the key of the signer it names, whose actor it is
        (:func:`vault.db.audit.signing_key`, ``rekeys`` included); the signature is
        checked only for an entry not verified before. Never raises."""
        key = audit.signing_key(entry, signers, rekeys)
        if key is None or entry.signature is None:
            return False
        try:
            if not aead.constant_time_equal(entry_hash(self._vault_id, entry), entry.entry_hash):
                return False
            remembered = encoding.digest(
                b"exvault-verified-read",
                self._vault_id,
                entry.seq,
                entry.entry_hash,
                entry.actor,
                entry.signer,
                key,
            )
            if remembered not in self._known:
                identities.verify_signature(
                    key, signed_entry(self._vault_id, entry.entry_hash), entry.signature
                )
        except (IntegrityError, TypeError, ValueError):
            return False
        self._confirmed.add(remembered)
        return True

    def save(self) -> None:
        """Remember the entries confirmed in this run (0600 file in a 0700 directory),
        when they differ from those loaded. A failure to write is ignored: the file
        only saves time."""
        if self._confirmed == self._known:
            return
        state_files.write_state(
            _cache_name(self._vault_id),
            MAGIC + self._vault_id + b"".join(sorted(self._confirmed)),
        )


__all__ = ["DIGEST_SIZE", "MAGIC", "VerifiedReads", "cache_path"]
