"""The runtime side: a bot reads the credentials it was granted, with its token.

::

    cred = vault.load("binance-main")          # token from the environment
    with vault.open(token=tok) as v:
        v.get("kucoin-sub1"); v.get("kucoin-sub1", stage="previous")

The check is cryptographic: a client can decrypt only versions whose data key was
wrapped for its own X25519 key. It trusts only records signed by the vault whose
fingerprint its token pins, whatever the database says.

Every :meth:`ClientVault.get` re-reads the rows (so a rotation by another process is
seen at once), checks the payload digest and decrypts with AES-GCM under its
associated data. The public-key work (Ed25519 verification of rows already verified
byte for byte, X25519 unwrapping of a wrap already opened) is cached per handle.

A SQLite vault is read through :mod:`sqlite3` directly, not SQLAlchemy, so that a
new process reaches its secret quickly (:mod:`vault.db.client_sql`).
"""

from __future__ import annotations

import contextlib
import os
import threading
from typing import TYPE_CHECKING, Any

from vault.db import location
from vault.db.client_sql import ClientStore, open_client_store
from vault.errors import (
    AccessDenied,
    IntegrityError,
    InvalidToken,
    NotFound,
    TokenExpired,
    VaultError,
    quoted,
)
from vault.format import aead, identities, observation, records, stages
from vault.format.audit_entry import Signer, client_actor
from vault.format.keywrap import Recipient
from vault.format.model import from_epoch, lookup_name, to_epoch, utc_now
from vault.format.schema import ClientRow, HeaderRow, HeadRow
from vault.runtime.credential import Credential
from vault.runtime.token import ClientToken, find_token, parse_token

if TYPE_CHECKING:
    from types import TracebackType

    from sqlalchemy.engine import URL

    from vault.db.inventory import Where
    from vault.exchanges.key_report import ProbeOutcome

AUDIT_REFRESH_SECONDS = 3600


def _client_store(where: Where) -> ClientStore:
    # A vault file (the usual case for a bot) is read without SQLAlchemy; a URL, or a
    # URL object, goes through the SQLAlchemy store.
    if where is None or isinstance(where, (str, os.PathLike)):
        return open_client_store(location.file_path(where), lambda: location.resolve(where))
    url: URL = where
    return open_client_store(None, lambda: url)


def _failure(
    store: ClientStore,
    vault_id: bytes,
    actor: str,
    action: str,
    detail: str,
    *,
    signer: Signer | None = None,
    **about: Any,
) -> None:
    # Audit a refusal; failing to write it (a read-only database role, a full disk)
    # must not mask the refusal itself.
    with contextlib.suppress(VaultError):
        store.append_audit(
            vault_id,
            actor=actor,
            action=action,
            outcome="denied",
            detail=detail,
            signer=signer,
            **about,
        )


class ClientVault:
    """A vault opened with a client token: reads what the client was granted."""

    def __init__(
        self, store: ClientStore, header: HeaderRow, token: ClientToken, client: ClientRow
    ) -> None:
        self._store = store
        self._vault_id = header.vault_id
        self._verify_public = header.verify_public
        self._token = token
        self._decryption_key, self._signing_key = token.keys
        self._name = client.name
        self._expires_at = client.expires_at
        self._verified: set[bytes] = set()
        self._deks: dict[tuple[str, int, bytes, bytes], bytes] = {}
        self._audited: dict[tuple[str, int], int] = {}
        # Credential id -> the highest head revision this handle has verified: an older
        # head put back (a rollback) is refused, at least by a handle that saw a newer one.
        self._revisions: dict[str, int] = {}
        self._lock = threading.Lock()

    @classmethod
    def open(cls, where: Where = None, *, token: str | ClientToken | None = None) -> ClientVault:
        """Open the vault at ``where`` as the client of ``token``.

        Without ``token``, it comes from ``$EXVAULT_TOKEN``, the 0600 file named by
        ``$EXVAULT_TOKEN_FILE``, or ``$CREDENTIALS_DIRECTORY/exvault-token``.

        :raises InvalidToken: no token, a malformed one, or one of another vault.
        :raises TokenExpired: the client's expiry has passed.
        :raises AccessDenied: the client is revoked.
        :raises IntegrityError: the client record was forged or edited.
        """
        if token is None:
            token = find_token()
        elif isinstance(token, str):
            token = parse_token(token)
        store = _client_store(where)
        try:
            header = records.check_header(store.header())
            client = cls._check_client(store, header, token)
        except BaseException:
            store.close()
            raise
        return cls(store, header, token, client)

    @staticmethod
    def _check_client(store: ClientStore, header: HeaderRow, token: ClientToken) -> ClientRow:
        if not (
            aead.constant_time_equal(token.vault_id, header.vault_id)
            and aead.constant_time_equal(
                token.fingerprint, identities.fingerprint(header.verify_public)
            )
        ):
            _failure(store, header.vault_id, "unknown", "open", "token of another vault")
            raise InvalidToken("this token belongs to another vault (its fingerprint differs)")
        client = store.client(token.client_id)
        if client is None:
            _failure(store, header.vault_id, "unknown", "open", "token of no client")
            raise InvalidToken("this token's client does not exist in the vault")
        records.verify_client(header.verify_public, header.vault_id, client)
        if not (
            aead.constant_time_equal(client.encryption_public, token.encryption_public)
            and aead.constant_time_equal(client.verify_public, token.verify_public)
        ):
            _failure(store, header.vault_id, "unknown", "open", "token keys mismatch")
            raise InvalidToken("this token does not match its client's keys")
        signer = (client.id, token.keys[1].sign)
        actor = client_actor(client.name)
        if client.revoked_at is not None:
            _failure(store, header.vault_id, actor, "open", "revoked", signer=signer)
            raise AccessDenied(
                f'client "{client.name}" was revoked on {from_epoch(client.revoked_at):%Y-%m-%d}'
            )
        if client.expires_at is not None and client.expires_at <= to_epoch(utc_now()):
            _failure(store, header.vault_id, actor, "open", "expired", signer=signer)
            raise TokenExpired(
                f'the token of client "{client.name}" expired on '
                f"{from_epoch(client.expires_at):%Y-%m-%d %H:%M} UTC; ask the vault owner "
                "for a new client"
            )
        return client

    @property
    def client_name(self) -> str:
        """The name of the client this handle acts as."""
        return self._name

    def __repr__(self) -> str:
        return f"ClientVault(client={self._name!r})"

    def close(self) -> None:
        """Release the database connections and forget cached data keys."""
        with self._lock:
            self._deks.clear()
        self._store.close()

    def __enter__(self) -> ClientVault:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # ------------------------------------------------------------------ reading

    def _signer(self) -> Signer:
        return (self._token.client_id, self._signing_key.sign)

    def _refuse(
        self, error: AccessDenied | IntegrityError, credential: str, version: int | None = None
    ) -> None:
        _failure(
            self._store,
            self._vault_id,
            client_actor(self._name),
            "read",
            str(error),
            credential=credential,
            version=version,
            signer=self._signer(),
        )
        raise error

    def get(self, name: str, stage: str = "current") -> Credential:
        """Decrypt the ``stage`` version of credential ``name`` (default ``current``).

        ``previous`` is readable only during the grace period after a rotation.

        :raises AccessDenied: the client was not granted it (or is revoked); audited.
        :raises TokenExpired: the client's expiry passed while the handle was open.
        :raises NotFound: no such credential or stage.
        :raises InvalidInput: for a name that is not UTF-8 text.
        :raises IntegrityError: a row failed verification.
        """
        stages.check_stage(stage)
        now = to_epoch(utc_now())
        if self._expires_at is not None and self._expires_at <= now:
            self._refuse(TokenExpired(f'the token of client "{self._name}" has expired'), name)
        found = self._store.stage(lookup_name(name), stage, Recipient.client(self._token.client_id))
        if found is None:
            raise NotFound(f"no credential named {quoted(name)}")
        head, version_row, payload, wrap = found
        version = stages.number_at(head, stage)
        records.verify_head(self._verify_public, self._vault_id, head, verified=self._verified)
        records.check_head_name(head, name)
        self._check_revision(head, name)
        if version is None:
            raise NotFound(f'credential "{name}" has no {stage} version')
        if stage == "previous" and (head.previous_until or 0) <= now:
            self._refuse(
                AccessDenied(f'the grace period of the previous version of "{name}" is over'),
                name,
                version,
            )
        if wrap is None:
            self._refuse(
                AccessDenied(f'client "{self._name}" is not granted {quoted(name)}'), name, version
            )
        if version_row is None or payload is None:
            raise IntegrityError(f'damaged vault: version {version} of "{name}" is incomplete')
        meta = records.check_staged_version(
            self._verify_public, self._vault_id, head, stage, version_row, verified=self._verified
        )
        assert wrap is not None
        dek_key = (head.id, version, wrap.ephemeral_public, wrap.body)
        dek = self._deks.get(dek_key)
        if dek is None:
            dek = records.unwrap_dek(self._vault_id, version_row, wrap, self._decryption_key)
            with self._lock:
                self._deks[dek_key] = dek
        fields = records.open_payload(self._vault_id, version_row, payload, dek)
        self._audit_read(name, version, stage)
        return Credential.from_plaintext(meta, version, stage, fields)

    def record_observation(self, name: str, version: int, outcome: ProbeOutcome) -> None:
        """Store ``outcome``, the probe of version ``version`` of credential ``name``,
        signed with this client's key and chained into the audit log by a ``probe``
        entry (see :mod:`vault.ops.observations`, which calls this).

        The client must hold ``name``: the version must be wrapped for it.

        :raises NotFound: no credential ``name``, or ``version`` is none of its stages.
        :raises AccessDenied: the client does not hold ``name`` (audited), or cannot
            write this vault's tables (a shared vault, PostgreSQL).
        :raises TokenExpired: the client's expiry passed while the handle was open.
        :raises IntegrityError: the head does not verify.
        """
        if self._expires_at is not None and self._expires_at <= to_epoch(utc_now()):
            self._refuse(TokenExpired(f'the token of client "{self._name}" has expired'), name)
        recipient = Recipient.client(self._token.client_id)
        found = self._store.stage(lookup_name(name), "current", recipient)
        if found is None:
            raise NotFound(f"no credential named {quoted(name)}")
        head = found[0]
        records.verify_head(self._verify_public, self._vault_id, head, verified=self._verified)
        records.check_head_name(head, name)
        self._check_revision(head, name)
        stage = next((s for s in stages.STAGES if stages.number_at(head, s) == version), None)
        if stage is None:
            raise NotFound(f"credential {quoted(name)} has no version {version} in use")
        if stage != "current":
            found = self._store.stage(name, stage, recipient) or found
        if found[3] is None:
            self._refuse(
                AccessDenied(f'client "{self._name}" is not granted {quoted(name)}'), name, version
            )
        row = observation.signed_row(
            self._vault_id,
            head.id,
            name,
            version,
            outcome,
            self._token.client_id,
            self._signing_key.sign,
        )
        self._store.record_observation(
            self._vault_id,
            row,
            actor=client_actor(self._name),
            action=observation.AUDIT_ACTION,
            credential=name,
            version=version,
            detail=observation.audit_detail(self._vault_id, row),
            signer=self._signer(),
        )

    def _check_revision(self, head: HeadRow, name: str) -> None:
        """Refuse a head (verified) older than one this handle verified before.

        A head put back from an older copy verifies, and names versions that may still
        be there (the previous key during a grace period); its revision gives it away.

        :raises IntegrityError: naming the credential (its name is no secret); audited,
            for the owner to see that someone put rows back.
        """
        with self._lock:
            seen = self._revisions.get(head.id, 0)
            if head.revision >= seen:
                self._revisions[head.id] = head.revision
                return
        self._refuse(
            IntegrityError(
                f"damaged vault: the head of {quoted(name)} is older (revision "
                f"{head.revision}) than one this handle read before (revision {seen}): "
                "rows put back from an older copy?"
            ),
            name,
        )

    def _audit_read(self, name: str, version: int, stage: str) -> None:
        # The first read of each version by this handle is audited, then again at most
        # once an hour: a bot polling its key through one handle would otherwise turn
        # every read into a disk write, yet must not look unused to `exvault check`.
        key = (name, version)
        now = to_epoch(utc_now())
        if now - self._audited.get(key, -AUDIT_REFRESH_SECONDS) < AUDIT_REFRESH_SECONDS:
            return
        self._store.append_audit(
            self._vault_id,
            actor=client_actor(self._name),
            action="read",
            credential=name,
            version=version,
            detail=stage,
            signer=self._signer(),
        )
        with self._lock:
            self._audited[key] = now


def open(where: Where = None, *, token: str | ClientToken | None = None) -> ClientVault:
    """Open the vault as a client; see :meth:`ClientVault.open`."""
    return ClientVault.open(where, token=token)


def load(
    name: str,
    *,
    stage: str = "current",
    where: Where = None,
    token: str | ClientToken | None = None,
) -> Credential:
    """Open, read one credential, close: the one-line runtime API.

    :raises VaultError: as :meth:`ClientVault.open` and :meth:`ClientVault.get`.
    """
    with ClientVault.open(where, token=token) as handle:
        return handle.get(name, stage)
