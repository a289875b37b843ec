"""What every exchange's sub-account key module shares: the keys it lists and creates,
the labels that find them again, the passphrases it generates, and the interface
(:class:`SubAccountKeys`) each exchange module implements.

A key's grants are kept in the exchange's own vocabulary (``Spot:SpotTrade`` for Bybit,
``spot:read`` for Gate...): a new key is created with exactly the grants the current
key has, as the exchange lists them, so it can never be wider; the normalized names
(:data:`vault.exchanges.fields.PERMISSIONS`) serve the withdraw rule and the stored
metadata.
"""

from __future__ import annotations

import hashlib
import itertools
import re
import secrets
import string
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any, NamedTuple, Protocol, TypeVar

from vault.errors import ExchangeError, ExchangeUnreachable, InvalidInput, VaultError
from vault.exchanges.fields import PERMISSIONS
from vault.secret import Secret

T = TypeVar("T")

LABEL_PREFIX = "exvault"
LABEL_MAX = 24
"""Every exchange's label limit met at once: KuCoin's remark is the shortest (24)."""
ROTATION_ID_LENGTH = 8
_ROTATION_ID = re.compile(r"^[0-9a-f]{8}$")
_LABEL = re.compile(r"^exvault ([0-9a-f]{8})(?: |$)")


def new_rotation_id() -> str:
    """A fresh random rotation id: 8 lower-case hex digits."""
    return secrets.token_hex(ROTATION_ID_LENGTH // 2)


def label_for(name: str, rotation_id: str) -> str:
    """The label of the key a rotation creates: ``exvault <rotation id> <name>``, cut to
    :data:`LABEL_MAX` characters (the rotation id, not the name, finds it again).

    :raises InvalidInput: for a malformed rotation id.
    """
    if not _ROTATION_ID.match(rotation_id):
        raise InvalidInput("a rotation id is 8 lower-case hex digits")
    return f"{LABEL_PREFIX} {rotation_id} {name}"[:LABEL_MAX].rstrip()


def rotation_id_of(label: str) -> str | None:
    """The rotation id of a label made by :func:`label_for` (None for any other)."""
    match = _LABEL.match(label)
    return match.group(1) if match else None


def new_passphrase(length: int = 32, specials: str = "", *, seed: bytes | None = None) -> Secret:
    """An API passphrase of ``length`` characters holding at least one lower-case
    letter, one upper-case letter, one digit and (when ``specials`` is given) one of
    ``specials``: random, or derived from ``seed`` (the same seed, the same passphrase).

    The alphabet never holds characters a query string would need to escape: ccxt
    sends some exchanges' parameters unencoded (KuCoin's key deletion).
    """
    classes = [string.ascii_lowercase, string.ascii_uppercase, string.digits]
    if specials:
        classes.append(specials)
    alphabet = "".join(classes)
    stream = _bytes_from(seed) if seed is not None else None
    while True:
        if stream is None:
            text = "".join(secrets.choice(alphabet) for _ in range(length))
        else:
            text = "".join(alphabet[_below(stream, len(alphabet))] for _ in range(length))
        if all(any(c in group for c in text) for group in classes):
            return Secret(text)


def _bytes_from(seed: bytes) -> Iterator[int]:
    # SHA-256 in counter mode: an endless byte stream determined by the seed.
    for counter in itertools.count():
        yield from hashlib.sha256(seed + counter.to_bytes(8, "big")).digest()


def _below(stream: Iterator[int], n: int) -> int:
    # A uniform number below n (< 256), by rejection.
    limit = 256 - 256 % n
    while True:
        value = next(stream)
        if value < limit:
            return value % n


def split(text: object) -> tuple[str, ...]:
    """Comma-separated text (or a list) as a sorted tuple of its non-empty parts."""
    parts = text if isinstance(text, list) else str(text or "").split(",")
    return tuple(sorted({str(part).strip() for part in parts if str(part).strip()}))


def normalized(names: Iterable[str | None]) -> tuple[str, ...]:
    """The given normalized permission names (None skipped), in canonical order."""
    present = {name for name in names if name}
    return tuple(name for name in PERMISSIONS if name in present)


class SignedRequests(Protocol):
    """What the key calls are made through: one exchange's ccxt client holding one key
    (:class:`vault.ops.exchange_api.KeyClient`, which this package does not import, so
    that loading it never loads ccxt)."""

    exchange: str

    def request(
        self, what: str, method: str, params: Mapping[str, object], *, unknown: bool = False
    ) -> Any:
        """The decoded answer of ccxt's implicit method ``method``.

        :raises ExchangeError: the exchange refused.
        :raises ExchangeUnreachable: the outcome is unknown.
        """
        ...


def parsed(what: str, read: Callable[[], T], *, unknown: bool = False) -> T:
    """``read()``, the reading of an answer to the call ``what``, with a missing or
    mistyped member turned into an error (``unknown``: the call may have acted).

    :raises ExchangeError: the answer is unreadable and the call changed nothing.
    :raises ExchangeUnreachable: the answer is unreadable and ``unknown``.
    """
    try:
        return read()
    except (KeyError, IndexError, TypeError, ValueError, AttributeError):
        error: VaultError = (
            ExchangeUnreachable(
                f"{what} was answered in a shape exvault cannot read: whether it acted is unknown"
            )
            if unknown
            else ExchangeError(f"{what} was answered in a shape exvault cannot read")
        )
    # Raised outside the except block: the answer may hold a secret.
    raise error


class ListedKey(NamedTuple):
    """One key of a sub-account as the master key lists it: no secret.

    ``grants`` are the exchange's own permission names, sorted; ``ips`` the whitelist
    (empty: any address).
    """

    api_key: str
    label: str
    grants: tuple[str, ...]
    ips: tuple[str, ...]


class NewKey:
    """A key the exchange has just created: its secret and passphrase stay
    :class:`Secret` until they are sealed into a version (:meth:`payload`)."""

    __slots__ = ("api_key", "label", "passphrase", "secret")

    def __init__(self, api_key: str, secret: Secret, passphrase: Secret | None, label: str) -> None:
        self.api_key = api_key
        self.secret = secret
        self.passphrase = passphrase
        self.label = label

    def payload(self) -> dict[str, str]:
        """The payload fields of the new version (revealed: hand them to the vault only)."""
        fields = {"api_key": self.api_key, "secret": self.secret.reveal()}
        if self.passphrase is not None:
            fields["passphrase"] = self.passphrase.reveal()
        return fields

    def __repr__(self) -> str:
        return f"NewKey(api_key={self.api_key!r}, label={self.label!r})"

    def __reduce__(self) -> Any:
        raise TypeError("a NewKey cannot be pickled")


class SubAccountKeys:
    """One exchange's sub-account key management, through a client holding the master
    key (:class:`SignedRequests`). Each method is one exchange call (or a listing's
    pages).

    ``sub_account`` is what the exchange's calls name a sub-account by (OKX and KuCoin:
    its name; Bybit and Gate: its uid).
    """

    exchange: str = ""
    sub_account_by: str = "name"
    passphrase_rules: tuple[int, str] | None = None
    """The length and special characters of the API passphrase the caller chooses
    (:func:`new_passphrase`), or None for an exchange whose keys have none."""

    def passphrase(self, seed: bytes) -> Secret | None:
        """The passphrase of the key created with ``seed`` (None when keys have none)."""
        if self.passphrase_rules is None:
            return None
        length, specials = self.passphrase_rules
        return new_passphrase(length, specials, seed=seed)

    def list_keys(self, client: SignedRequests, sub_account: str) -> list[ListedKey]:
        """The sub-account's keys.

        :raises ExchangeError: when the exchange refuses.
        :raises ExchangeUnreachable: when it cannot be reached.
        """
        raise NotImplementedError

    def create_key(
        self,
        client: SignedRequests,
        sub_account: str,
        label: str,
        grants: tuple[str, ...],
        ips: tuple[str, ...],
        passphrase: Secret | None,
    ) -> NewKey:
        """Create a key with exactly ``grants`` and ``ips`` (and ``passphrase``, from
        :meth:`passphrase`, where the exchange needs one).

        :raises InvalidInput: when ``ips`` is empty (exvault never creates an unbound key),
            or ``passphrase`` is missing where the exchange's keys have one (checked by
            the exchanges that have them, which read it).
        :raises ExchangeError: when the exchange refuses (nothing was created).
        :raises ExchangeUnreachable: when the outcome is unknown (the key may exist).
        """
        # The rule every exchange shares is checked once, here, before any call.
        if not ips:
            raise InvalidInput("exvault creates no key without an IP whitelist")
        return self._create(client, sub_account, label, grants, ips, passphrase)

    def _create(
        self,
        client: SignedRequests,
        sub_account: str,
        label: str,
        grants: tuple[str, ...],
        ips: tuple[str, ...],
        passphrase: Secret | None,
    ) -> NewKey:
        """The exchange's own creation call, the shared rules checked (see
        :meth:`create_key`)."""
        raise NotImplementedError

    def delete_key(
        self, client: SignedRequests, sub_account: str, api_key: str, passphrase: Secret | None
    ) -> None:
        """Delete one key (KuCoin needs its passphrase).

        :raises ExchangeError: when the exchange refuses.
        :raises ExchangeUnreachable: when the outcome is unknown.
        """
        raise NotImplementedError

    def permissions(self, grants: tuple[str, ...]) -> tuple[str, ...]:
        """The normalized permissions of the exchange's ``grants``, in canonical order."""
        raise NotImplementedError
