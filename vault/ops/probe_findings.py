"""What a probe's answer means: findings from comparing it with the declared metadata.

Pure rules over a declared key (its name, permissions and IP whitelist as stored in
the vault), one :class:`~vault.exchanges.key_report.ProbeOutcome` and an injected
clock. ``exvault probe`` applies them to the answer it just got; ``exvault check``
applies them to each credential's latest stored observation (:mod:`vault.ops.observations`).
No rule reads the clock, the database or the network.

Every finding has a stable code (docs/rotation.md): ``exchange-permission-wider``,
``exchange-permission-narrower``, ``exchange-ip-unrestricted``, ``exchange-ip-mismatch``,
``exchange-expires-soon``, ``exchange-rejected-key``, ``clock-skew`` and ``probe-stale``.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable, Sequence
from datetime import datetime, timedelta
from typing import Protocol

from vault.errors import InvalidInput
from vault.exchanges.key_report import KeyReport, ProbeOutcome
from vault.format.policy import Policy
from vault.network import WILDCARDS, parse_ip_whitelist
from vault.ops.finding import Finding

EXPIRY_WARN = timedelta(days=14)
EXPIRY_CRITICAL = timedelta(days=3)
SKEW_WARN_MS = 1000
DANGEROUS = frozenset({"withdraw", "transfer"})
"""Rights that move funds out: a key wider by one of these is critical."""
_UNBOUND_CRITICAL = frozenset({"withdraw", "trade", "margin", "futures"})
"""Rights that make an unrestricted key critical: moving funds, or trading them away."""
_IMPLIED = frozenset({"read"})
# Every key can read: whether the metadata or the exchange names it says nothing.

_REJECTED = {
    "invalid-key": "the key is unknown or deleted at the exchange",
    "bad-signature": "the secret does not match the key",
    "wrong-passphrase": "the API passphrase is wrong",
    "ip-not-allowed": "this host's address is not on the key's whitelist",
    "expired": "the key has expired",
    "permission-denied": "the key may not read its own settings",
}


class DeclaredKey(Protocol):
    """What the rules read of a credential as the vault declares it
    (:class:`vault.format.model.CredentialMetadata` and ``Credential`` both fit)."""

    @property
    def name(self) -> str: ...

    @property
    def permissions(self) -> Sequence[str]: ...

    @property
    def ips(self) -> Sequence[str]: ...


def _when(outcome: ProbeOutcome) -> str:
    return f"(probe of {outcome.observed_at:%Y-%m-%d %H:%M} UTC)"


def _days(n: int) -> str:
    return f"{n} day{'' if n == 1 else 's'}"


def _names(rights: Iterable[str]) -> str:
    return ", ".join(rights)


def _permissions(
    declared: DeclaredKey, report: KeyReport, policy: Policy, seen: str
) -> Iterable[Finding]:
    if report.permissions is None:
        return
    observed = set(report.permissions) - _IMPLIED
    stated = set(declared.permissions) - _IMPLIED
    wider = [p for p in report.permissions if p in observed - stated]
    narrower = [p for p in declared.permissions if p in stated - observed]
    if wider:
        severity = "critical" if DANGEROUS & set(wider) else "warn"
        yield Finding(
            severity,
            "exchange-permission-wider",
            declared.name,
            f"the exchange grants {_names(wider)}, not declared {seen}: remove "
            f"{'it' if len(wider) == 1 else 'them'} at the exchange, or record "
            f"{'it' if len(wider) == 1 else 'them'}: exvault edit {declared.name} "
            f"--permissions {','.join(report.permissions)}",
        )
    if narrower:
        yield Finding(
            "ok" if "exchange-permission-narrower" in policy.accepted else "warn",
            "exchange-permission-narrower",
            declared.name,
            f"declared {_names(narrower)}, which the exchange does not grant {seen}: correct "
            f"the metadata (exvault edit {declared.name} --permissions "
            f"{','.join(report.permissions)}) or the key",
        )


def _masked_pattern(entry: str) -> re.Pattern[str] | None:
    """A regular expression for a whitelist entry whose octets the exchange masked
    (KuCoin shows ``203.**.7``: a run of ``*`` stands for one octet or more), or None
    for an entry without a mask."""
    if "*" not in entry or entry in WILDCARDS:
        return None
    parts = [
        r"\d{1,3}(?:\.\d{1,3})*" if part.strip("*") == "" else re.escape(part)
        for part in entry.split(".")
    ]
    return re.compile(r"\.".join(parts))


def _normalized(entry: str) -> str:
    try:
        return parse_ip_whitelist([entry])[0]
    except (InvalidInput, IndexError):
        return entry  # as the exchange wrote it: compared as text


def _covers(entry: str, others: Collection[str]) -> bool:
    """Whether the observed or declared whitelist entry ``entry`` appears in ``others``,
    a masked entry on either side matching the addresses it could stand for."""
    if entry in others:
        return True
    pattern = _masked_pattern(entry)
    if pattern is not None:
        return any(pattern.fullmatch(other) for other in others)
    return any((p := _masked_pattern(other)) is not None and p.fullmatch(entry) for other in others)


def _unbound(report: KeyReport) -> bool:
    if report.ip_restricted is False:
        return True
    return report.ips is not None and not WILDCARDS.isdisjoint(report.ips)


def _whitelist(
    declared: DeclaredKey, report: KeyReport, policy: Policy, seen: str
) -> Iterable[Finding]:
    if _unbound(report):
        rights = set(report.permissions if report.permissions is not None else declared.permissions)
        critical = bool(rights & _UNBOUND_CRITICAL)
        accepted = not critical and "exchange-ip-unrestricted" in policy.accepted
        severity = "critical" if critical else "ok" if accepted else "warn"
        yield Finding(
            severity,
            "exchange-ip-unrestricted",
            declared.name,
            f"the exchange lets any address use this key {seen}: bind it to your bot's IPs "
            "at the exchange",
        )
        return
    if report.ips is None:
        if report.ip_restricted and not [ip for ip in declared.ips if ip not in WILDCARDS]:
            yield Finding(
                "warn",
                "exchange-ip-mismatch",
                declared.name,
                f"the exchange binds the key to IPs, but none are declared {seen}: record "
                f"them: exvault edit {declared.name} --ip ...",
            )
        return
    observed = [_normalized(ip) for ip in report.ips]
    stated = list(declared.ips)
    missing = [ip for ip in stated if not _covers(ip, observed)]
    extra = [ip for ip in observed if not _covers(ip, stated)]
    if missing or extra:
        parts = []
        if extra:
            parts.append(f"the exchange also allows {_names(extra)}")
        if missing:
            parts.append(f"declared {_names(missing)} is not on the exchange's whitelist")
        yield Finding(
            "warn",
            "exchange-ip-mismatch",
            declared.name,
            f"{'; '.join(parts)} {seen}: make the whitelist and exvault edit "
            f"{declared.name} --ip agree",
        )


def _expiry(
    declared: DeclaredKey, report: KeyReport, now: datetime, seen: str
) -> Iterable[Finding]:
    if report.expires_at is None:
        return
    left = report.expires_at - now
    if left > EXPIRY_WARN:
        return
    when = f"{report.expires_at:%Y-%m-%d %H:%M} UTC"
    rotate = f"rotate it: exvault rotate start {declared.name}"
    if left <= timedelta(0):
        message = f"the exchange says this key expired on {when} {seen}: {rotate}"
    else:
        message = (
            f"the exchange expires this key on {when} (in {_days(left.days)}) {seen}: {rotate}"
        )
    yield Finding(
        "critical" if left <= EXPIRY_CRITICAL else "warn",
        "exchange-expires-soon",
        declared.name,
        message,
    )


def _skew(declared: DeclaredKey, outcome: ProbeOutcome, seen: str) -> Iterable[Finding]:
    if outcome.error is not None and outcome.error.kind == "clock-skew":
        yield Finding(
            "critical",
            "clock-skew",
            declared.name,
            f"the exchange refused the request's timestamp {seen}: sync this host's clock (NTP)",
        )
        return
    if outcome.skew_ms is None or abs(outcome.skew_ms) <= SKEW_WARN_MS:
        return
    window = outcome.receive_window_ms
    beyond = window is not None and abs(outcome.skew_ms) > window
    limit = f", beyond the exchange's {window} ms window" if beyond else ""
    yield Finding(
        "critical" if beyond else "warn",
        "clock-skew",
        declared.name,
        f"this host's clock is {outcome.skew_ms:+d} ms off the exchange's{limit} {seen}: sync "
        "it (NTP)",
    )


def _rejected(declared: DeclaredKey, outcome: ProbeOutcome, seen: str) -> Iterable[Finding]:
    error = outcome.error
    if error is None or error.kind != "rejected-key":
        return
    why = _REJECTED.get(error.reason or "", "the exchange refused the key")
    code = f" (error {error.code})" if error.code else ""
    yield Finding(
        "critical",
        "exchange-rejected-key",
        declared.name,
        f"{why}{code} {seen}: fix the key or rotate it (exvault rotate start {declared.name})",
    )


def _stale(
    declared: DeclaredKey,
    outcome: ProbeOutcome,
    policy: Policy,
    now: datetime,
    last_success: datetime | None,
) -> Iterable[Finding]:
    if outcome.ok and (last_success is None or outcome.observed_at > last_success):
        last_success = outcome.observed_at
    # A key that never answered is stale from its latest probe on (the rejection, if
    # any, is its own critical finding).
    since = last_success or outcome.observed_at
    if now - since <= timedelta(days=policy.probe_stale_days):
        return
    what = (
        f"last answered a probe on {since:%Y-%m-%d}"
        if last_success
        else f"has not answered a probe since {since:%Y-%m-%d}"
    )
    yield Finding(
        "ok",
        "probe-stale",
        declared.name,
        f"the exchange {what}, over {_days(policy.probe_stale_days)} ago: exvault probe "
        f"{declared.name}",
    )


def findings(
    declared: DeclaredKey,
    outcome: ProbeOutcome | None,
    policy: Policy,
    now: datetime,
    *,
    last_success: datetime | None = None,
) -> list[Finding]:
    """The findings about ``declared`` from ``outcome``, as of ``now`` (timezone-aware
    UTC); none when the key was never probed (``outcome`` None).

    ``last_success`` is when the exchange last answered with a report on this key
    (``outcome.observed_at`` counts too when ``outcome.ok``); ``probe-stale`` fires when
    it is older than ``policy.probe_stale_days``, with severity ``ok``: ``check``'s
    informational level, listed by ``check --all``, never changing an exit code.
    An ``unreachable``, ``malformed`` or ``unsupported`` outcome yields no finding
    about the key itself (the clock-skew measure still counts).
    """
    if outcome is None:
        return []
    seen = _when(outcome)
    out: list[Finding] = []
    report = outcome.report
    if report is not None:
        out += _permissions(declared, report, policy, seen)
        out += _whitelist(declared, report, policy, seen)
        out += _expiry(declared, report, now, seen)
    out += _rejected(declared, outcome, seen)
    out += _skew(declared, outcome, seen)
    out += _stale(declared, outcome, policy, now, last_success)
    return out


__all__ = ["DANGEROUS", "DeclaredKey", "findings"]
