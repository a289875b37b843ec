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

# Findings whose risk the owner may accept (with a reason). withdraw-without-ip,
# exposure and expiry are facts no reason changes, so they cannot be accepted.
ACCEPTABLE_RISKS = {
    "withdraw": "withdraw-enabled",
    "trade-without-ip": "trade-without-ip",
    "stale": "stale",
    "duplicate-api-key": "duplicate-api-key",
}


@dataclass(frozen=True)
class AcceptedRisk:
    """The owner's recorded decision to live with one finding."""

    reason: str
    accepted_at: datetime


@dataclass(frozen=True)
class Policy:
    """Rotation policy of one credential."""

    max_age_days: int = DEFAULT_MAX_AGE_DAYS
    warn_before_days: int = DEFAULT_WARN_BEFORE_DAYS
    stale_days: int = DEFAULT_STALE_DAYS
    grace_hours: int = DEFAULT_GRACE_HOURS
    accepted: Mapping[str, AcceptedRisk] = field(default_factory=dict)

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
                accepted=accepted,
            )
        except (ValueError, TypeError, KeyError, AttributeError):
            raise IntegrityError("damaged vault: a credential policy is malformed") from None

    def to_json(self) -> str:
        """The stored form: only what differs from the defaults, keys sorted."""
        data: dict[str, object] = {}
        defaults = Policy()
        for key in ("max_age_days", "warn_before_days", "stale_days", "grace_hours"):
            if getattr(self, key) != getattr(defaults, key):
                data[key] = getattr(self, key)
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
        )
        if not (1 <= new.max_age_days <= 3650):
            raise InvalidInput("the maximum age must be between 1 day and 10 years")
        if not (0 <= new.warn_before_days < new.max_age_days):
            raise InvalidInput("the warning window must be shorter than the maximum age")
        if not (1 <= new.stale_days <= 3650):
            raise InvalidInput("the stale period must be between 1 day and 10 years")
        if not (1 <= new.grace_hours <= 24 * 90):
            raise InvalidInput("the grace period must be between 1 hour and 90 days")
        return new

    def accept(self, risk: str, reason: str, now: datetime) -> Policy:
        """A copy that accepts ``risk`` (a key of :data:`ACCEPTABLE_RISKS`).

        :raises InvalidInput: for another risk, an empty reason or one that is not UTF-8
            text.
        """
        if risk not in ACCEPTABLE_RISKS:
            raise InvalidInput(
                f"cannot accept the risk {quoted(risk)} "
                f"(acceptable: {', '.join(sorted(ACCEPTABLE_RISKS))})"
            )
        if not reason.strip():
            raise InvalidInput("accepting a risk needs a --reason")
        check_utf8(reason, "the reason")
        accepted = dict(self.accepted)
        accepted[ACCEPTABLE_RISKS[risk]] = AcceptedRisk(reason.strip()[:300], now)
        return replace(self, accepted=accepted)

    def clear(self, risk: str) -> Policy:
        """A copy that no longer accepts ``risk``."""
        accepted = dict(self.accepted)
        accepted.pop(ACCEPTABLE_RISKS.get(risk, risk), None)
        return replace(self, accepted=accepted)
