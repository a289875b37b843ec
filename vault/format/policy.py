"""Per-credential rotation policy: maximum age, warning window, accepted risks.

Stored as JSON in the credential head (signed with it), so ``exvault check`` reads it
without any key and nobody without the passphrase can relax it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from vault.errors import IntegrityError, InvalidInput, check_utf8, quoted

DEFAULT_MAX_AGE_DAYS = 90
DEFAULT_WARN_BEFORE_DAYS = 14
DEFAULT_STALE_DAYS = 30
DEFAULT_GRACE_HOURS = 24
DEFAULT_PROBE_STALE_DAYS = 7

ACCEPTABLE_FINDINGS: Mapping[str, str] = {
    "withdraw-enabled": "withdraw permission on a key bound to IPs",
    "trade-without-ip": "trading permission without an IP whitelist",
    "stale": "a key granted to no client and not read for the stale period",
    "unread": "a key granted to clients but not read for the stale period",
    "duplicate-api-key": "the same API key stored under two or more names",
    "exchange-permission-narrower": "the exchange grants fewer rights than declared (a right "
    "kept in the metadata on purpose)",
    "exchange-ip-unrestricted": "a key without trade or withdraw rights that the exchange lets "
    "any address use (with either right it stays critical)",
}
"""The finding codes of ``exvault check`` whose risk the owner may accept, with a
reason (``policy accept-risk``): each describes a choice, and accepting it turns that
finding to ``ok``. The checker and the policy both use these names."""

UNACCEPTABLE_FINDINGS: Mapping[str, str] = {
    "withdraw-without-ip": "a key that can withdraw from any address is never safe: bind it "
    "to IPs or remove withdraw at the exchange",
    "ip-unrestricted": "a wildcard whitelist lets any address use the key: list your bot's IPs",
    "exposed": "an exposed key stays exposed whatever the reason: rotate it",
    "expired": "the exchange refuses an expired key whatever the reason: rotate it",
    "expires-soon": "the exchange expires the key whatever the reason: rotate it",
    "age-overdue": "the age limit is the policy itself: change it with exvault policy set "
    "NAME --max-age",
    "age-due-soon": "the age limit is the policy itself: change it with exvault policy set "
    "NAME --max-age",
    "rotation-pending": "a rotation in progress ends with promote or abort",
    "rotation-unfinished": "a rotation in progress ends with finish",
    "client-expired": "a finding about a client, not a credential: exvault client revoke",
    "client-expiring": "a finding about a client, not a credential: create a new client",
    "kdf-weak": "a finding about the vault, not a credential: exvault passwd --recalibrate",
    "kdf-below-policy": "a finding about the vault, not a credential: exvault passwd --recalibrate",
    "audit-file-unreadable": "a finding about the vault, not a credential",
    "exchange-permission-wider": "the exchange grants rights the metadata does not declare: "
    "remove them at the exchange, or record them with exvault edit NAME --permissions",
    "exchange-ip-mismatch": "the exchange's whitelist is the fact: correct the metadata with "
    "exvault edit NAME --ip, or the whitelist at the exchange",
    "exchange-expires-soon": "the exchange expires the key whatever the reason: rotate it",
    "exchange-rejected-key": "a key the exchange refuses is broken whatever the reason: fix or "
    "rotate it",
    "clock-skew": "a finding about this host's clock, not a credential: sync it (NTP)",
    "probe-evidence-missing": "a probe's evidence was removed or altered in the database: "
    "find out who changed it (exvault verify), then probe again",
    "probe-stale": "informational already (severity ok, shown by check --all): change its "
    "period with exvault policy set NAME --probe-stale",
}
"""The other finding codes of ``exvault check`` (the exchanges' rules aside, see
:data:`EXCHANGE_RULE_REASON`), each with why no reason can accept it: facts, not
choices."""

EXCHANGE_RULE_REASON = (
    "the exchange disables or deletes the key by its own rule whatever the reason: "
    "bind the key to IPs or rotate it"
)
"""Why a finding named after an exchange's lifetime rule cannot be accepted."""


def exchange_rule_finding(rule_code: str) -> str:
    """The finding code ``exvault check`` prints for an exchange lifetime rule's code
    (``okx_unbound_inactive`` -> ``okx-unbound-inactive``)."""
    return rule_code.replace("_", "-")


_LIMITS = ("max_age_days", "warn_before_days", "stale_days", "grace_hours", "probe_stale_days")
# The limits stored when they differ from the defaults (a policy of defaults is "{}").


@dataclass(frozen=True)
class AcceptedRisk:
    """The owner's recorded decision to live with one finding."""

    reason: str
    accepted_at: datetime


ON_PROMOTE_MAX = 1000
"""The longest ``--on-promote`` command kept."""


@dataclass(frozen=True)
class Policy:
    """Rotation policy of one credential.

    ``rotate_via`` names the master credential whose key rotates this one at the
    exchange (automated rotation), ``sub_account`` the sub-account (uid or name, as the
    exchange's calls name it), ``auto`` whether ``rotate due --auto`` may rotate it
    unattended, ``on_promote`` a command run after each promote (to restart services
    that cannot reload).
    """

    max_age_days: int = DEFAULT_MAX_AGE_DAYS
    warn_before_days: int = DEFAULT_WARN_BEFORE_DAYS
    stale_days: int = DEFAULT_STALE_DAYS
    grace_hours: int = DEFAULT_GRACE_HOURS
    probe_stale_days: int = DEFAULT_PROBE_STALE_DAYS
    accepted: Mapping[str, AcceptedRisk] = field(default_factory=dict)
    rotate_via: str | None = None
    sub_account: str | None = None
    auto: bool = False
    on_promote: str | None = None

    @classmethod
    def from_json(cls, text: str | Mapping[str, object] | None) -> Policy:
        """Parse the stored form (missing keys take the defaults).

        :raises IntegrityError: when the stored policy is malformed.
        """
        try:
            data: dict[str, Any] = (
                json.loads(text or "{}") if not isinstance(text, Mapping) else dict(text)
            )
            accepted = {
                code: AcceptedRisk(str(v["reason"]), datetime.fromisoformat(str(v["accepted_at"])))
                for code, v in dict(data.get("accepted", {})).items()
            }
            return cls(
                max_age_days=int(data.get("max_age_days", DEFAULT_MAX_AGE_DAYS)),
                warn_before_days=int(data.get("warn_before_days", DEFAULT_WARN_BEFORE_DAYS)),
                stale_days=int(data.get("stale_days", DEFAULT_STALE_DAYS)),
                grace_hours=int(data.get("grace_hours", DEFAULT_GRACE_HOURS)),
                probe_stale_days=int(data.get("probe_stale_days", DEFAULT_PROBE_STALE_DAYS)),
                accepted=accepted,
                rotate_via=_optional_text(data.get("rotate_via")),
                sub_account=_optional_text(data.get("sub_account")),
                auto=_flag(data.get("auto", False)),
                on_promote=_optional_text(data.get("on_promote")),
            )
        except (ValueError, TypeError, KeyError, AttributeError):
            raise IntegrityError("damaged vault: a credential policy is malformed") from None

    def to_json(self) -> str:
        """The stored form: only what differs from the defaults, keys sorted."""
        data: dict[str, object] = {}
        defaults = Policy()
        for key in _LIMITS:
            if getattr(self, key) != getattr(defaults, key):
                data[key] = getattr(self, key)
        for key in ("rotate_via", "sub_account", "on_promote"):
            if getattr(self, key) is not None:
                data[key] = getattr(self, key)
        if self.auto:
            data["auto"] = True
        if self.accepted:
            data["accepted"] = {
                code: {"reason": r.reason, "accepted_at": r.accepted_at.isoformat()}
                for code, r in sorted(self.accepted.items())
            }
        return json.dumps(data, sort_keys=True, separators=(",", ":"))

    def with_limits(
        self,
        *,
        max_age_days: int | None = None,
        warn_before_days: int | None = None,
        stale_days: int | None = None,
        grace_hours: int | None = None,
        probe_stale_days: int | None = None,
    ) -> Policy:
        """A copy with the given limits changed.

        :raises InvalidInput: when the warning window is not shorter than the maximum age.
        """
        new = replace(
            self,
            max_age_days=self.max_age_days if max_age_days is None else max_age_days,
            warn_before_days=self.warn_before_days
            if warn_before_days is None
            else warn_before_days,
            stale_days=self.stale_days if stale_days is None else stale_days,
            grace_hours=self.grace_hours if grace_hours is None else grace_hours,
            probe_stale_days=self.probe_stale_days
            if probe_stale_days is None
            else probe_stale_days,
        )
        if not (1 <= new.max_age_days <= 3650):
            raise InvalidInput("the maximum age must be between 1 day and 10 years")
        if not (0 <= new.warn_before_days < new.max_age_days):
            raise InvalidInput("the warning window must be shorter than the maximum age")
        if not (1 <= new.stale_days <= 3650):
            raise InvalidInput("the stale period must be between 1 day and 10 years")
        if not (1 <= new.grace_hours <= 24 * 90):
            raise InvalidInput("the grace period must be between 1 hour and 90 days")
        if not (1 <= new.probe_stale_days <= 3650):
            raise InvalidInput("the probe-stale period must be between 1 day and 10 years")
        return new

    def with_link(
        self,
        *,
        rotate_via: str | object | None = ...,
        sub_account: str | object | None = ...,
        auto: bool | None = None,
        on_promote: str | object | None = ...,
    ) -> Policy:
        """A copy with the automated-rotation fields given changed (``...``: unchanged;
        ``rotate_via=None`` unlinks and clears ``sub_account`` and ``auto``).

        :raises InvalidInput: for ``auto`` or a sub-account without a master, an empty
            or overlong value, or text that is not UTF-8.
        """
        new = self
        if rotate_via is not ...:
            new = replace(new, rotate_via=_given(rotate_via, "the master credential", 200))
            if new.rotate_via is None:
                new = replace(new, sub_account=None, auto=False)
        if sub_account is not ...:
            new = replace(new, sub_account=_given(sub_account, "the sub-account", 200))
        if auto is not None:
            new = replace(new, auto=auto)
        if on_promote is not ...:
            new = replace(
                new, on_promote=_given(on_promote, "the --on-promote command", ON_PROMOTE_MAX)
            )
        if new.rotate_via is None and (new.auto or new.sub_account is not None):
            raise InvalidInput(
                "--auto and --sub-account need a master credential: --rotate-via MASTER"
            )
        return new

    def accept(self, code: str, reason: str, now: datetime) -> Policy:
        """A copy that accepts the finding ``code`` (a key of :data:`ACCEPTABLE_FINDINGS`).

        :raises InvalidInput: for a finding that cannot be accepted (saying why), a code
            ``exvault check`` never prints, an empty reason or one that is not UTF-8 text.
        """
        check_acceptable(code)
        if not reason.strip():
            raise InvalidInput("accepting a risk needs a --reason")
        check_utf8(reason, "the reason")
        accepted = dict(self.accepted)
        accepted[code] = AcceptedRisk(reason.strip()[:300], now)
        return replace(self, accepted=accepted)

    def clear(self, code: str) -> Policy:
        """A copy that no longer accepts the finding ``code``.

        :raises InvalidInput: for a code that cannot be accepted in the first place.
        """
        check_acceptable(code)
        accepted = dict(self.accepted)
        accepted.pop(code, None)
        return replace(self, accepted=accepted)


def _optional_text(value: object) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not value:
        raise ValueError("not a text")
    return value


def _flag(value: object) -> bool:
    if not isinstance(value, bool):
        raise ValueError("not a boolean")
    return value


def _given(value: object, what: str, longest: int) -> str | None:
    """A text option as stored: None stays None; anything else must be non-empty,
    short enough and UTF-8.

    :raises InvalidInput: otherwise.
    """
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip():
        raise InvalidInput(f"{what} cannot be empty")
    if len(value) > longest:
        raise InvalidInput(f"{what} is longer than {longest} characters")
    return check_utf8(value, what)


def check_acceptable(code: str) -> str:
    """``code`` itself, when it names a finding the owner may accept.

    :raises InvalidInput: naming why a finding cannot be accepted, or listing the
        acceptable codes for one ``exvault check`` never prints.
    """
    if code in ACCEPTABLE_FINDINGS:
        return code
    acceptable = ", ".join(ACCEPTABLE_FINDINGS)
    if code in UNACCEPTABLE_FINDINGS:
        raise InvalidInput(f"cannot accept {quoted(code)}: {UNACCEPTABLE_FINDINGS[code]}")
    hint = " (did you mean withdraw-enabled?)" if code == "withdraw" else ""
    raise InvalidInput(
        f"{quoted(code)} is not a finding code of exvault check{hint}; acceptable: {acceptable}"
    )
