"""Exchange profiles: credential fields, permission vocabularies, IP limits, key lifetimes.

Facts come from each exchange's own documentation (every lifetime rule names its page
in ``source``; docs/rotation.md lists them) and from ccxt 4.5.90's
``requiredCredentials``. Where the documentation gives no fact (e.g. Binance's IP
limit), the profile sets no limit rather than a guessed one: refusing a valid whitelist
would be worse than missing a check the exchange makes anyway.

ascendex is deliberately absent: it left ccxt (not in 4.5.90), so a vault credential
for it could not be handed to ``ccxt.ascendex``; such keys use the ``other`` profile.
"""

# Annotations are not postponed here (no `from __future__ import annotations`):
# typing.NamedTuple compiles each postponed (string) field annotation when its class
# is built, about 10 µs each, and every command and bot builds these at start.
import ipaddress
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import NamedTuple

from vault.errors import InvalidInput, quoted
from vault.exchanges.fields import PERMISSIONS, STANDARD_FIELDS, validate_field_name
from vault.exchanges.keyformats import (
    PayloadCheck,
    coinbase_api_key,
    coinbase_secret,
    kraken_secret,
    load_private_pem,
    looks_like_pem,
    normalize_payload,
    okx_passphrase,
    passphrase_length,
    secret_hmac_or_pem,
)
from vault.network import WILDCARDS, parse_ip_whitelist

__all__ = [
    "APPLIES_WHEN",
    "ExchangeProfile",
    "LifetimeRule",
    "all_profiles",
    "get_profile",
]

# C0 controls, DEL and C1 controls: never part of a key, secret or passphrase.
_CONTROL_CHARACTER = re.compile("[\x00-\x1f\x7f-\x9f]")

#: The conditions a :class:`LifetimeRule` can name, with their exact meaning for the
#: rotation engine. "No IP whitelist" means :func:`vault.network.is_unrestricted`.
APPLIES_WHEN: Mapping[str, str] = MappingProxyType(
    {
        "no_ip": "the key has no IP whitelist; counts from the key's issue date",
        "no_ip_trade": "the key has no IP whitelist and the trade permission; counts from "
        "the key's issue date",
        "no_ip_withdraw": "the key has no IP whitelist and the withdraw permission",
        "no_ip_inactive": "the key has no IP whitelist and the trade or withdraw permission, "
        "and has not been used for `days` days",
        "no_ip_password_change": "the key has no IP whitelist; counts from the last change "
        "of the account's password",
        "expiry_set": "the key was created with an exchange-side expiry; the credential's "
        "recorded exchange expiry date applies",
    }
)


# A named tuple, not a dataclass: building a dataclass at import slows every command's start.
class LifetimeRule(NamedTuple):
    """An exchange-side rule that ends (or cripples) a key after some time.

    Data only; the rotation engine decides what to do with it.

    :param code: stable identifier, used in findings (e.g. ``"okx_unbound_inactive"``).
    :param description: one sentence for the user.
    :param days: the period; ``0`` means from the start, ``None`` means the period is
        per key (see ``choices_days`` and the credential's recorded expiry).
    :param applies_when: a key of :data:`APPLIES_WHEN`.
    :param source: where the fact comes from.
    :param choices_days: the periods the exchange offers, when the user picks one.
    """

    code: str
    description: str
    days: int | None
    applies_when: str
    source: str
    choices_days: tuple[int, ...] = ()


_PERMISSION_SPLIT = re.compile(r"[,\s]+")


# Stays a dataclass (unlike LifetimeRule): __post_init__ checks and freezes the aliases as
# each profile is built, and its hash and equality leave out fields a tuple's would not.
@dataclass(frozen=True)
class ExchangeProfile:
    """What exvault knows about one exchange's API keys.

    :param id: the ccxt id (``"binance"``), or ``"other"``.
    :param display_name: the exchange's name for people.
    :param required_fields: payload fields a key cannot work without (our names:
        ccxt's ``password`` is our ``passphrase``).
    :param optional_fields: further payload fields the exchange can use.
    :param permission_aliases: the exchange's own permission names (matched
        case-insensitively) -> a name of :data:`PERMISSIONS`.
    :param max_ips: most whitelist entries per key, ``None`` when unknown or unlimited.
    :param ip_ranges_allowed: whether whitelist entries may be networks.
    :param ipv6_allowed: whether whitelist entries may be IPv6.
    :param notes: one or two sentences shown by ``exvault exchanges``.
    :param lifetime_rules: exchange-side key lifetime facts.
    :param payload_checks: exchange-specific checks run by :meth:`validate_payload`.
    """

    id: str
    display_name: str
    required_fields: tuple[str, ...]
    optional_fields: tuple[str, ...] = ()
    # hash=False: a mapping is unhashable; profiles stay usable as dict keys.
    permission_aliases: Mapping[str, str] = field(
        default_factory=lambda: MappingProxyType({}), hash=False
    )
    max_ips: int | None = None
    ip_ranges_allowed: bool = True
    ipv6_allowed: bool = True
    notes: str = ""
    lifetime_rules: tuple[LifetimeRule, ...] = ()
    payload_checks: tuple[PayloadCheck, ...] = field(default=(), repr=False, compare=False)
    _lookup: Mapping[str, str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        """Freeze the aliases and build the case-insensitive lookup.

        :raises ValueError: an alias maps to no permission, or two spellings of one
            alias disagree (a bug in the profile table, not user input).
        """
        aliases = MappingProxyType(dict(self.permission_aliases))
        lookup: dict[str, str] = {}
        for alias, permission in aliases.items():
            if permission not in PERMISSIONS:
                raise ValueError(f"{self.id}: alias {alias!r} maps to unknown {permission!r}")
            if lookup.setdefault(alias.lower(), permission) != permission:
                raise ValueError(f"{self.id}: alias {alias!r} is ambiguous")
        # The dataclass is frozen; these two assignments complete construction.
        object.__setattr__(self, "permission_aliases", aliases)
        object.__setattr__(self, "_lookup", MappingProxyType(lookup))

    def normalize_permissions(self, items: Iterable[str]) -> tuple[str, ...]:
        """Map permission names to normalized ones.

        Accepts the names of :data:`PERMISSIONS` and this exchange's vocabulary, in
        any case, several per item separated by commas or whitespace. Where the
        exchange's word is also one of ours with another meaning, the exchange's
        meaning wins (Coinbase's "Transfer" can send funds out: it is ``withdraw``),
        because a user typing it is copying the exchange's page.

        :param items: permission names; a single string is taken as one item.
        :returns: unique normalized names in :data:`PERMISSIONS` order.
        :raises InvalidInput: a name is unknown; the message lists the valid ones.
        """
        if isinstance(items, str):
            items = (items,)
        found: set[str] = set()
        for item in items:
            if not isinstance(item, str):
                raise InvalidInput(f"bad permission {item!r}: expected text")
            for part in _PERMISSION_SPLIT.split(item):
                if not part:
                    continue
                key = part.lower()
                name = self._lookup.get(key, key)
                if name not in PERMISSIONS:
                    raise InvalidInput(self._unknown_permission(part))
                found.add(name)
        return tuple(name for name in PERMISSIONS if name in found)

    def _unknown_permission(self, part: str) -> str:
        message = f"unknown permission {quoted(part)} for {self.id}; use {', '.join(PERMISSIONS)}"
        if self.permission_aliases and self.id != "other":
            message += f" or {self.id}'s own names: {', '.join(self.permission_aliases)}"
        return message

    def validate_ips(self, ips: tuple[str, ...]) -> None:
        """Check a whitelist against this exchange's limits.

        Wildcards (``*``, ``0.0.0.0/0``, ``::/0``) stand for "no binding" and are not
        counted or treated as ranges: the key really is unrestricted, which the
        rotation checker reports.

        :param ips: a whitelist, normally from :func:`vault.network.parse_ip_whitelist`
            (it is parsed again, so raw entries are checked too).
        :raises InvalidInput: an entry is malformed, is IPv6 or a range where the
            exchange takes neither, or there are more entries than the exchange allows.
        """
        specific = [ip for ip in parse_ip_whitelist(ips) if ip not in WILDCARDS]
        for entry in specific:
            network = ipaddress.ip_network(entry)
            if network.version == 6 and not self.ipv6_allowed:
                raise InvalidInput(f'{self.id} accepts IPv4 addresses only, not "{entry}"')
            if network.prefixlen != network.max_prefixlen and not self.ip_ranges_allowed:
                raise InvalidInput(
                    f'{self.id} does not accept IP ranges ("{entry}"); list single addresses'
                )
        if self.max_ips is not None and len(specific) > self.max_ips:
            raise InvalidInput(
                f"{self.id} allows at most {self.max_ips} IP entries per key, got {len(specific)}"
            )

    def validate_payload(self, payload: Mapping[str, str]) -> None:
        """Check a secret payload for this exchange.

        The payload is first passed through
        :func:`~vault.exchanges.keyformats.normalize_payload` (PEM keys with literal
        ``\\n``, empty fields dropped), so the normalized form is what must be stored:
        use :meth:`prepare_payload` to get it. Messages name the exchange and the field,
        never a value.

        :param payload: field name -> value.
        :raises InvalidInput: a field name is malformed, a value is not text, a required
            field is missing or empty, a value has surrounding whitespace or a control
            character, or a value has the wrong shape for this exchange.
        """
        for name in payload:
            validate_field_name(name)
        clean = normalize_payload(payload)
        for name in self.required_fields:
            if name not in clean:
                raise InvalidInput(f'{self.id} needs the field "{name}" (missing or empty)')
        for name, value in clean.items():
            if value != value.strip():
                raise InvalidInput(
                    f'{self.id} field "{name}" has leading or trailing whitespace '
                    "(a copy-paste error?)"
                )
            # Newlines only belong in PEM texts; anything else with a control character
            # was cut from a terminal or a document along with formatting.
            if not looks_like_pem(value) and _CONTROL_CHARACTER.search(value):
                raise InvalidInput(
                    f'{self.id} field "{name}" contains a control character (a copy-paste error?)'
                )
        if looks_like_pem(clean.get("api_key", "")):
            raise InvalidInput(
                f"{self.id} api_key holds a PEM key; the api_key is the key's name or id, "
                "the private key goes in secret"
            )
        if "private_key" in clean:
            load_private_pem(clean["private_key"], exchange=self.id, field="private_key")
        for check in self.payload_checks:
            check(clean, self.id)

    def prepare_payload(self, payload: Mapping[str, str]) -> dict[str, str]:
        """Validate a payload and return it in the form to store.

        :param payload: field name -> value, as entered.
        :returns: the normalized payload (see :meth:`validate_payload`).
        :raises InvalidInput: as :meth:`validate_payload`.
        """
        self.validate_payload(payload)
        return normalize_payload(payload)


_PROFILES: tuple[ExchangeProfile, ...] = (
    ExchangeProfile(
        id="binance",
        display_name="Binance",
        required_fields=("api_key", "secret"),
        permission_aliases={
            "enableReading": "read",
            "enableSpotAndMarginTrading": "trade",
            "enableMargin": "margin",
            "enableFutures": "futures",
            "enableWithdrawals": "withdraw",
            "enableInternalTransfer": "transfer",
            "permitsUniversalTransfer": "transfer",
            # Options are derivatives; our vocabulary files them under futures.
            "enableVanillaOptions": "futures",
        },
        notes="Secret: an HMAC string, or a self-generated RSA or Ed25519 private key "
        "(PEM). Withdrawals need an IP-restricted key.",
        lifetime_rules=(
            LifetimeRule(
                code="binance_unbound_trading",
                description="Binance disables spot & margin trading on a key without an IP "
                "restriction 30 days after it was created",
                days=30,
                applies_when="no_ip_trade",
                source="Binance API key management FAQ",
            ),
            LifetimeRule(
                code="binance_withdraw_needs_ip",
                description="Binance allows withdrawals only on IP-restricted keys",
                days=0,
                applies_when="no_ip_withdraw",
                source="Binance API key management FAQ",
            ),
        ),
        payload_checks=(secret_hmac_or_pem("rsa", "ed25519"),),
    ),
    ExchangeProfile(
        id="kucoin",
        display_name="KuCoin",
        required_fields=("api_key", "secret", "passphrase"),
        permission_aliases={
            "General": "read",
            "Spot": "trade",
            "Margin": "margin",
            "Futures": "futures",
            "InnerTransfer": "transfer",
            "Withdrawal": "withdraw",
        },
        max_ips=20,
        notes="The passphrase is the API passphrase chosen when the key was made "
        "(7-32 characters). Keys can be given an expiry at creation.",
        lifetime_rules=(
            LifetimeRule(
                code="kucoin_expiry_option",
                description="KuCoin keys can be created to expire after 30, 90, 180 or 360 "
                "days, or never; record the chosen date as the exchange expiry",
                days=None,
                applies_when="expiry_set",
                source="KuCoin API docs, sub-account API key 'expire'",
                choices_days=(30, 90, 180, 360),
            ),
        ),
        payload_checks=(passphrase_length(7, 32),),
    ),
    ExchangeProfile(
        id="okx",
        display_name="OKX",
        required_fields=("api_key", "secret", "passphrase"),
        permission_aliases={"read_only": "read", "trade": "trade", "withdraw": "withdraw"},
        max_ips=20,
        notes="The passphrase (8-32 characters, with a digit, upper and lower case and a "
        "special character) was chosen when the key was made.",
        lifetime_rules=(
            LifetimeRule(
                code="okx_unbound_inactive",
                description="OKX deletes a key with trade or withdraw permission and no IP "
                "binding after 14 days without use",
                days=14,
                applies_when="no_ip_inactive",
                source="OKX help center, API key IP binding",
            ),
        ),
        payload_checks=(okx_passphrase,),
    ),
    ExchangeProfile(
        id="bitget",
        display_name="Bitget",
        required_fields=("api_key", "secret", "passphrase"),
        # Bitget's own permission names are not mapped yet (no documented source checked):
        # normalized names only.
        notes="The passphrase was chosen when the key was made.",
    ),
    ExchangeProfile(
        id="htx",
        display_name="HTX",
        required_fields=("api_key", "secret"),
        permission_aliases={"readOnly": "read", "trade": "trade", "withdraw": "withdraw"},
        max_ips=10,
        notes="Formerly Huobi. Up to 10 IP entries per key, networks allowed.",
        lifetime_rules=(
            LifetimeRule(
                code="htx_unbound",
                description="HTX expires a key without an IP binding 90 days after creation",
                days=90,
                applies_when="no_ip",
                source="HTX API key settings",
            ),
        ),
    ),
    ExchangeProfile(
        id="bybit",
        display_name="Bybit",
        required_fields=("api_key", "secret"),
        permission_aliases={
            "readOnly": "read",
            "Spot": "trade",
            "SpotTrade": "trade",
            # Convert (coin exchange), Earn and copy trading all place funds in orders.
            "Exchange": "trade",
            "Earn": "trade",
            "CopyTrading": "trade",
            "ContractTrade": "futures",
            "Derivatives": "futures",
            "DerivativesTrade": "futures",
            # Options are derivatives; our vocabulary files them under futures.
            "Options": "futures",
            "OptionsTrade": "futures",
            "Wallet": "transfer",
            "AccountTransfer": "transfer",
            "SubMemberTransfer": "transfer",
            "SubMemberTransferList": "transfer",
            "Withdraw": "withdraw",
        },
        notes="Secret: an HMAC string, or a self-generated RSA private key (PEM).",
        lifetime_rules=(
            LifetimeRule(
                code="bybit_unbound",
                description="Bybit invalidates a key without an IP binding 90 days after creation",
                days=90,
                applies_when="no_ip",
                source="Bybit API key management; GET /v5/user/query-api expiredAt",
            ),
            LifetimeRule(
                code="bybit_unbound_password_change",
                description="After an account password change, Bybit invalidates keys "
                "without an IP binding within 7 days",
                days=7,
                applies_when="no_ip_password_change",
                source="Bybit API key management",
            ),
        ),
        payload_checks=(secret_hmac_or_pem("rsa"),),
    ),
    ExchangeProfile(
        id="gate",
        display_name="Gate",
        required_fields=("api_key", "secret"),
        # Gate grants each scope read-only or read-write; these names mean read-write.
        # A read-only scope is recorded as "read".
        permission_aliases={
            "spot": "trade",
            "earn": "trade",
            "futures": "futures",
            "delivery": "futures",
            "options": "futures",
            "margin": "margin",
            "loan": "margin",
            "unified": "margin",
            "wallet": "transfer",
            # Read-write "account" reaches sub-account and key management: the broader
            # reading is the safer one for a rotation checker.
            "account": "subaccount",
        },
        max_ips=20,
        ip_ranges_allowed=False,
        ipv6_allowed=False,
        notes="Up to 20 IPv4 addresses per key, no ranges. Scope names mean read-write; "
        "read-only scopes count as read.",
    ),
    ExchangeProfile(
        id="kraken",
        display_name="Kraken",
        required_fields=("api_key", "secret"),
        permission_aliases={
            "query-funds": "read",
            "deposit-funds": "read",
            "query-open-trades": "read",
            "query-closed-trades": "read",
            "query-trades": "read",
            "query-ledger": "read",
            "export-data": "read",
            "access-websockets": "read",
            "modify-trades": "trade",
            "cancel-close-trades": "trade",
            "earn-funds": "trade",
            "withdraw-funds": "withdraw",
        },
        notes="The secret is the base64 private key Kraken shows (88 characters).",
        lifetime_rules=(
            LifetimeRule(
                code="kraken_valid_until",
                description="Kraken keys can carry an expiry (validUntil); record it as the "
                "exchange expiry",
                days=None,
                applies_when="expiry_set",
                source="Kraken API key settings",
            ),
        ),
        payload_checks=(kraken_secret,),
    ),
    ExchangeProfile(
        id="coinbase",
        display_name="Coinbase Advanced",
        required_fields=("api_key", "secret"),
        optional_fields=("token",),
        # Coinbase's "Transfer" permission can send funds off the exchange: withdraw.
        permission_aliases={"View": "read", "Trade": "trade", "Transfer": "withdraw"},
        notes="CDP keys: api_key organizations/{org}/apiKeys/{id} (or the key id), secret "
        "an EC P-256 PEM key or an Ed25519 key (88 base64 characters).",
        payload_checks=(coinbase_api_key, coinbase_secret),
    ),
)


def _other_aliases() -> dict[str, str]:
    """Every exchange's vocabulary, minus words the exchanges disagree on.

    ``other`` covers keys of any exchange, so it understands every name the known
    exchanges use. A word with two meanings (Coinbase's "transfer" is our withdraw,
    our "transfer" is an internal move) keeps our own meaning here.
    """
    merged: dict[str, str] = {}
    clashes: set[str] = set(PERMISSIONS)
    for profile in _PROFILES:
        for alias, permission in profile.permission_aliases.items():
            key = alias.lower()
            if merged.setdefault(key, permission) != permission:
                clashes.add(key)
    return {alias: permission for alias, permission in merged.items() if alias not in clashes}


_OTHER = ExchangeProfile(
    id="other",
    display_name="Other exchange",
    required_fields=("api_key", "secret"),
    optional_fields=tuple(name for name in STANDARD_FIELDS if name not in ("api_key", "secret")),
    permission_aliases=_other_aliases(),
    notes="Any exchange without a profile: api_key and secret required, any extra field "
    "allowed, no IP limits checked.",
)

_BY_ID: Mapping[str, ExchangeProfile] = MappingProxyType(
    {profile.id: profile for profile in (*_PROFILES, _OTHER)}
)

# Former ccxt ids that users still type.
_FORMER_IDS: Mapping[str, str] = MappingProxyType({"huobi": "htx", "gateio": "gate"})


def get_profile(exchange_id: str) -> ExchangeProfile:
    """Look up an exchange profile by ccxt id, case-insensitively.

    The former ccxt ids ``huobi`` and ``gateio`` resolve to ``htx`` and ``gate``.

    :param exchange_id: e.g. ``"binance"``, ``"OKX"``, ``"other"``.
    :returns: the profile.
    :raises InvalidInput: no profile has that id.
    """
    key = exchange_id.strip().lower() if isinstance(exchange_id, str) else ""
    profile = _BY_ID.get(_FORMER_IDS.get(key, key))
    if profile is None:
        shown = quoted(exchange_id)
        raise InvalidInput(
            f'unknown exchange {shown}; run "exvault exchanges" for the list, '
            "or use --exchange other"
        )
    return profile


def all_profiles() -> tuple[ExchangeProfile, ...]:
    """Every profile: the known exchanges in a fixed order, then ``other``.

    :raises: nothing.
    """
    return (*_PROFILES, _OTHER)
