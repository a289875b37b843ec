"""The rotation checker (vault/ops/checks.py): every finding code, triggered and not, at the
boundary dates, with an injected clock.

``check(inventory, now)`` takes the clock as an argument. The writes that stamp times
(issue and creation dates, audit entries that drive ``last_read``, client expiry,
rotation steps) read ``utc_now`` from their own modules; the ``clock`` fixture
patches all of them to one controllable time.
"""

from __future__ import annotations

import itertools
import re
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

import vault
import vault.format.audit_entry
import vault.owner.admin
import vault.owner.clients
import vault.owner.credentials
import vault.owner.passphrase
import vault.owner.policies
import vault.owner.rekey
import vault.owner.rotation
import vault.owner.writer
import vault.runtime.client
from tests.conftest import PASSPHRASE, TEST_KDF
from vault.db import audit
from vault.db.inventory import Inventory
from vault.exchanges.profiles import all_profiles
from vault.format import identities, kdf_params
from vault.format.credential_info import CredentialInfo
from vault.format.policy import (
    ACCEPTABLE_FINDINGS,
    UNACCEPTABLE_FINDINGS,
    exchange_rule_finding,
)
from vault.ops import checks, observations, probe_findings
from vault.ops.checks import Finding, Report, check
from vault.owner import rotation
from vault.owner.admin import AdminVault
from vault.runtime.token import parse_token

BACKENDS = ("sqlite", "postgresql")

UTC = timezone.utc
NOW = datetime(2026, 3, 2, 12, 0, 0, tzinfo=UTC)
TODAY = NOW.date()
IP = ("203.0.113.7",)


def at(days: float = 0, **delta: float) -> datetime:
    """NOW plus a number of days (and hours, seconds, ...)."""
    return NOW + timedelta(days=days, **delta)


class Clock:
    """A settable ``utc_now``."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    """Every time-stamping module reads this clock (starts at NOW)."""
    c = Clock(NOW)
    for module in (
        vault.owner.admin,
        vault.owner.writer,
        vault.owner.credentials,
        vault.owner.clients,
        vault.owner.policies,
        vault.owner.passphrase,
        vault.owner.rekey,
        vault.format.audit_entry,
        vault.runtime.client,
        vault.owner.rotation,
    ):
        monkeypatch.setattr(module, "utc_now", c)
    return c


@pytest.fixture
def av(clock: Clock, admin: AdminVault) -> AdminVault:
    """The empty test vault, written under the injected clock."""
    return admin


_serial = itertools.count(1)


def payload(exchange: str, api_key: str | None = None) -> dict[str, str]:
    """Valid secret fields for ``exchange``; a fresh API key unless one is given."""
    api_key = api_key or f"apikey-{next(_serial):06d}-{exchange}"
    fields = {"api_key": api_key, "secret": f"secret-{api_key}-0123456789abcdef"}
    if exchange == "okx":
        fields["passphrase"] = "Tr4d1ng!Bot"
    elif exchange == "kucoin":
        fields["passphrase"] = "kucoin-pass-1"
    return fields


def add(
    admin: AdminVault,
    name: str,
    exchange: str = "binance",
    *,
    age: int = 0,
    permissions: str = "read",
    ips: tuple[str, ...] = IP,
    expires_in: int | None = None,
    api_key: str | None = None,
) -> CredentialInfo:
    """Add a credential issued ``age`` days before TODAY (read-only, IP-bound by default:
    a key that triggers nothing but age and usage rules)."""
    return admin.add(
        name,
        exchange,
        payload(exchange, api_key),
        permissions=permissions,
        ips=list(ips),
        issued_on=TODAY - timedelta(days=age),
        expires_on=TODAY + timedelta(days=expires_in) if expires_in is not None else None,
    )


def find(report: Report, credential: str | None, code: str) -> Finding | None:
    hits = [f for f in report.findings if f.credential == credential and f.code == code]
    assert len(hits) <= 1, hits
    return hits[0] if hits else None


def severity(inv: Inventory, credential: str | None, code: str, when: datetime) -> str | None:
    """The severity of ``code`` about ``credential`` in a check at ``when`` (None: absent)."""
    hit = find(check(inv, when), credential, code)
    return hit.severity if hit else None


def timeline(
    inv: Inventory, credential: str | None, code: str, days: list[float]
) -> list[str | None]:
    return [severity(inv, credential, code, at(d)) for d in days]


def codes(report: Report, credential: str | None) -> set[str]:
    return {f.code for f in report.findings if f.credential == credential}


# ------------------------------------------------------------------------ report/exit


def _report(*severities: str) -> Report:
    return Report(
        generated_at=NOW,
        credentials=len(severities),
        findings=tuple(Finding(s, f"code-{i}", f"c{i}", "m") for i, s in enumerate(severities)),
    )


@pytest.mark.parametrize(
    ("severities", "fail_on", "expected"),
    [
        ((), "critical", 0),
        ((), "warn", 0),
        (("ok",), "warn", 0),
        (("ok",), "critical", 0),
        (("ok", "warn"), "critical", 0),
        (("ok", "warn"), "warn", 1),
        (("warn", "critical"), "warn", 2),
        (("warn", "critical"), "critical", 2),
        (("critical",), "warn", 2),
    ],
)
def test_exit_code(severities: tuple[str, ...], fail_on: str, expected: int) -> None:
    assert _report(*severities).exit_code(fail_on) == expected


def test_exit_code_defaults_to_critical() -> None:
    assert _report("warn").exit_code() == 0
    assert _report("critical").exit_code() == 2


def test_report_worst_at_least_and_json() -> None:
    report = _report("ok", "warn", "critical", "warn")
    assert report.worst == "critical"
    assert _report().worst == "ok"
    assert [f.severity for f in report.at_least("warn")] == ["warn", "critical", "warn"]
    assert len(report.at_least("ok")) == 4
    doc = report.as_dict()
    assert doc["generated_at"] == NOW.isoformat()
    assert doc["worst"] == "critical"
    assert doc["counts"] == {"ok": 1, "warn": 2, "critical": 1}
    assert doc["findings"][0] == {
        "severity": "ok",
        "code": "code-0",
        "credential": "c0",
        "message": "m",
    }


def test_findings_sorted_worst_first(av: AdminVault) -> None:
    add(av, "a-old", age=100)  # age-overdue (critical), stale (warn)
    add(av, "b-trade", permissions="read,trade", ips=())  # trade-without-ip (warn)
    report = check(av, NOW)
    ranks = [checks.RANK[f.severity] for f in report.findings]
    assert ranks == sorted(ranks, reverse=True)
    assert report.credentials == 2


def test_a_clean_credential_has_no_finding(av: AdminVault, vault_location: str) -> None:
    add(av, "clean")
    _, token = av.add_client("bot")
    av.grant("bot", ["clean"])
    vault.load("clean", where=vault_location, token=token)
    report = check(av, NOW)
    assert codes(report, "clean") == set()
    assert {f.code for f in report.findings} == {"kdf-weak"}  # the test vault's KDF


def test_check_needs_no_passphrase(av: AdminVault, vault_location: str) -> None:
    add(av, "old", age=95)
    with Inventory.open(vault_location) as inv:
        keyless = check(inv, NOW)
    assert keyless == check(av, NOW)
    assert find(keyless, "old", "age-overdue") is not None


# ------------------------------------------------------------------------------- age


def test_age_default_policy(av: AdminVault) -> None:
    """Max age 90 days, warning 14 days before: due-soon from day 76, overdue at 90."""
    add(av, "k")
    days = [0, 75, 76, 89, 90, 400]
    assert timeline(av, "k", "age-due-soon", days) == [None, None, "warn", "warn", None, None]
    assert timeline(av, "k", "age-overdue", days) == [None] * 4 + ["critical", "critical"]
    report = check(av, at(76))
    msg = find(report, "k", "age-due-soon").message  # type: ignore[union-attr]
    assert "76 days old" in msg and "due in 14 days" in msg and "exvault rotate start k" in msg


def test_age_from_issue_date(av: AdminVault) -> None:
    add(av, "imported", age=90)
    add(av, "recent", age=75)
    report = check(av, NOW)
    assert find(report, "imported", "age-overdue").severity == "critical"  # type: ignore[union-attr]
    assert codes(report, "recent") & {"age-overdue", "age-due-soon"} == set()


def test_age_after_set_policy(av: AdminVault) -> None:
    add(av, "k")
    policy = av.set_policy("k", max_age_days=60, warn_before_days=10)
    assert (policy.max_age_days, policy.warn_before_days) == (60, 10)
    days = [49, 50, 59, 60]
    assert timeline(av, "k", "age-due-soon", days) == [None, "warn", "warn", None]
    assert timeline(av, "k", "age-overdue", days) == [None, None, None, "critical"]
    # Only the limit given changes; the rest stays.
    av.set_policy("k", max_age_days=120)
    assert timeline(av, "k", "age-due-soon", [109, 110]) == [None, "warn"]
    assert timeline(av, "k", "age-overdue", [119, 120]) == [None, "critical"]


def test_set_policy_refuses_bad_limits(av: AdminVault) -> None:
    add(av, "k")
    with pytest.raises(vault.InvalidInput):
        av.set_policy("k", max_age_days=10, warn_before_days=10)
    with pytest.raises(vault.InvalidInput):
        av.set_policy("k", max_age_days=0)
    assert av.policy("k").max_age_days == 90


# ---------------------------------------------------------------------------- expiry


def test_expiry(av: AdminVault) -> None:
    add(av, "k", "kucoin", expires_in=30)
    days = [0, 15, 16, 29, 30, 31]
    assert timeline(av, "k", "expires-soon", days) == [None, None, "warn", "warn", None, None]
    assert timeline(av, "k", "expired", days) == [None] * 4 + ["critical", "critical"]
    report = check(av, at(16))
    assert "in 14 days" in find(report, "k", "expires-soon").message  # type: ignore[union-attr]


def test_expiry_warning_window_follows_policy(av: AdminVault) -> None:
    add(av, "k", expires_in=30)
    av.set_policy("k", warn_before_days=5)
    assert timeline(av, "k", "expires-soon", [24, 25]) == [None, "warn"]


def test_no_expiry_no_finding(av: AdminVault) -> None:
    add(av, "k")
    report = check(av, at(5000))
    assert codes(report, "k") & {"expired", "expires-soon"} == set()


# -------------------------------------------------------------------- exchange rules


@pytest.mark.parametrize(("exchange", "code"), [("bybit", "bybit-unbound"), ("htx", "htx-unbound")])
def test_unbound_90_days(av: AdminVault, exchange: str, code: str) -> None:
    add(av, "unbound", exchange, ips=())
    add(av, "wildcard", exchange, ips=("0.0.0.0/0",))
    add(av, "bound", exchange)
    days = [0, 75, 76, 89, 90, 91]
    expected = [None, None, "warn", "warn", "critical", "critical"]
    assert timeline(av, "unbound", code, days) == expected
    assert timeline(av, "wildcard", code, days) == expected
    assert timeline(av, "bound", code, days) == [None] * 6


def test_binance_unbound_trading(av: AdminVault) -> None:
    add(av, "trade", permissions="read,trade", ips=())
    add(av, "read-only", permissions="read", ips=())
    add(av, "trade-ip", permissions="read,trade")
    code = "binance-unbound-trading"
    days = [0, 15, 16, 29, 30, 60]
    assert timeline(av, "trade", code, days) == [None, None, "warn", "warn", "critical", "critical"]
    assert timeline(av, "read-only", code, days) == [None] * 6
    assert timeline(av, "trade-ip", code, days) == [None] * 6


def test_binance_rule_counts_from_issue_date(av: AdminVault) -> None:
    add(av, "old-trade", permissions="trade", ips=(), age=30)
    report = check(av, NOW)
    hit = find(report, "old-trade", "binance-unbound-trading")
    assert hit is not None and hit.severity == "critical"
    assert "Binance" in hit.message and "--ip" in hit.message


def test_okx_unbound_inactive(av: AdminVault) -> None:
    add(av, "okx-trade", "okx", permissions="read,trade", ips=())
    add(av, "okx-withdraw", "okx", permissions="read,withdraw", ips=())
    add(av, "okx-read", "okx", permissions="read", ips=())
    add(av, "okx-bound", "okx", permissions="read,trade")
    code = "okx-unbound-inactive"
    days = [0, 6, 7, 13, 14, 30]
    expected = [None, None, "warn", "warn", "critical", "critical"]
    assert timeline(av, "okx-trade", code, days) == expected
    assert timeline(av, "okx-withdraw", code, days) == expected
    assert timeline(av, "okx-read", code, days) == [None] * 6
    assert timeline(av, "okx-bound", code, days) == [None] * 6


def test_okx_client_read_resets_inactivity(
    av: AdminVault, clock: Clock, vault_location: str
) -> None:
    add(av, "okx-trade", "okx", permissions="read,trade", ips=())
    _, token = av.add_client("bot", max_scope="trade")
    av.grant("bot", ["okx-trade"])
    code = "okx-unbound-inactive"
    assert severity(av, "okx-trade", code, at(10)) == "warn"
    clock.now = at(10)
    vault.load("okx-trade", where=vault_location, token=token)  # audited: last_read = day 10
    reads = [e for e in av.audit_entries() if e.action == "read" and e.outcome == "ok"]
    assert [(e.actor, e.at) for e in reads] == [("client:bot", at(10))]
    days = [10, 16, 17, 23, 24]
    assert timeline(av, "okx-trade", code, days) == [None, None, "warn", "warn", "critical"]
    msg = find(check(av, at(24)), "okx-trade", code).message  # type: ignore[union-attr]
    assert "unused for 14 days" in msg


def test_okx_refused_read_does_not_count(av: AdminVault, clock: Clock, vault_location: str) -> None:
    add(av, "okx-trade", "okx", permissions="read,trade", ips=())
    _, token = av.add_client("other-bot")  # not granted okx-trade
    clock.now = at(10)
    with pytest.raises(vault.AccessDenied):
        vault.load("okx-trade", where=vault_location, token=token)
    assert severity(av, "okx-trade", "okx-unbound-inactive", at(14)) == "critical"


def test_okx_warning_follows_policy(av: AdminVault) -> None:
    add(av, "okx-trade", "okx", permissions="trade", ips=())
    av.set_policy("okx-trade", warn_before_days=3)
    assert timeline(av, "okx-trade", "okx-unbound-inactive", [10, 11]) == [None, "warn"]


def test_kucoin_expiry_option_uses_recorded_date(av: AdminVault) -> None:
    add(av, "kucoin", "kucoin", permissions="trade", ips=(), expires_in=30)
    report = check(av, at(30))
    assert find(report, "kucoin", "expired") is not None
    assert not any("kucoin-expiry-option" in f.code for f in report.findings)


def test_unknown_rules_do_not_fire(av: AdminVault) -> None:
    """gate, kraken and other have no day-counting rule; bybit's password-change rule
    needs facts exvault cannot know."""
    add(av, "gate", "gate", permissions="trade", ips=())
    add(av, "other", "other", permissions="trade", ips=())
    add(av, "bybit", "bybit", permissions="trade", ips=())
    report = check(av, at(20))
    rule_codes = {r.code.replace("_", "-") for p in all_profiles() for r in p.lifetime_rules}
    assert {f.code for f in report.findings} & rule_codes == set()


# ------------------------------------------------------------------------------ scope


def test_withdraw_enabled_and_accepted(av: AdminVault, clock: Clock) -> None:
    add(av, "w", permissions="read,withdraw")
    hit = find(check(av, NOW), "w", "withdraw-enabled")
    assert hit is not None and hit.severity == "critical"
    assert "accept-risk w withdraw-enabled --reason" in hit.message
    assert find(check(av, NOW), "w", "withdraw-without-ip") is None

    clock.now = at(1)
    policy = av.accept_risk("w", "withdraw-enabled", "treasury sweeper, IP-bound")
    assert policy.accepted["withdraw-enabled"].accepted_at == at(1)
    hit = find(check(av, at(2)), "w", "withdraw-enabled")
    assert hit is not None and hit.severity == "ok"
    assert "accepted on 2026-03-03: treasury sweeper, IP-bound" in hit.message
    assert all(f.code != "withdraw-enabled" for f in check(av, at(2)).at_least("warn"))

    av.clear_risk("w", "withdraw-enabled")
    assert severity(av, "w", "withdraw-enabled", at(2)) == "critical"


def test_withdraw_without_ip_cannot_be_accepted_away(av: AdminVault) -> None:
    add(av, "w", permissions="read,withdraw", ips=())
    add(av, "w-any", permissions="read,withdraw", ips=("0.0.0.0/0",))
    for name in ("w", "w-any"):
        assert severity(av, name, "withdraw-without-ip", NOW) == "critical"
        av.accept_risk(name, "withdraw-enabled", "I know")
        assert severity(av, name, "withdraw-without-ip", NOW) == "critical"
        assert find(check(av, NOW), name, "withdraw-enabled") is None


def test_read_only_key_without_ip_has_no_scope_finding(av: AdminVault) -> None:
    add(av, "r", permissions="read", ips=())
    report = check(av, NOW)
    assert codes(report, "r") == set()


@pytest.mark.parametrize("permissions", ["read,trade", "futures", "margin", "read,trade,futures"])
def test_trade_without_ip(av: AdminVault, permissions: str) -> None:
    add(av, "t", "gate", permissions=permissions, ips=())
    add(av, "t-ip", "gate", permissions=permissions)
    assert severity(av, "t", "trade-without-ip", NOW) == "warn"
    assert severity(av, "t-ip", "trade-without-ip", NOW) is None


def test_trade_without_ip_accepted(av: AdminVault) -> None:
    add(av, "t", "gate", permissions="trade", ips=())
    av.accept_risk("t", "trade-without-ip", "home server with a dynamic IP")
    hit = find(check(av, NOW), "t", "trade-without-ip")
    assert hit is not None and hit.severity == "ok"
    av.clear_risk("t", "trade-without-ip")
    assert severity(av, "t", "trade-without-ip", NOW) == "warn"


@pytest.mark.parametrize("wildcard", ["0.0.0.0/0", "::/0", "*"])
def test_ip_unrestricted(av: AdminVault, wildcard: str) -> None:
    add(av, "any", "gate", ips=(wildcard,))
    add(av, "mixed", "other", ips=("203.0.113.7", wildcard))
    add(av, "wide-but-real", "other", ips=("10.0.0.0/8", "2001:db8::/32"))
    report = check(av, NOW)
    for name in ("any", "mixed"):
        hit = find(report, name, "ip-unrestricted")
        assert hit is not None and hit.severity == "critical" and wildcard in hit.message
    assert find(report, "wide-but-real", "ip-unrestricted") is None


def test_wildcard_trading_key_is_unbound_too(av: AdminVault) -> None:
    add(av, "t", "gate", permissions="trade", ips=("*",))
    report = check(av, NOW)
    assert find(report, "t", "trade-without-ip").severity == "warn"  # type: ignore[union-attr]
    assert find(report, "t", "ip-unrestricted").severity == "critical"  # type: ignore[union-attr]


@pytest.mark.parametrize(
    "risk",
    ["withdraw-without-ip", "exposed", "expired", "age-overdue", "okx-unbound-inactive", ""],
)
def test_only_listed_risks_can_be_accepted(av: AdminVault, risk: str) -> None:
    add(av, "k")
    with pytest.raises(vault.InvalidInput):
        av.accept_risk("k", risk, "because")
    with pytest.raises(vault.InvalidInput, match="--reason"):
        av.accept_risk("k", "withdraw-enabled", "   ")
    assert av.policy("k").accepted == {}


def test_accept_risk_takes_the_codes_check_prints(av: AdminVault) -> None:
    """The alias of old ("withdraw") is not a code check prints: refused, with a hint."""
    add(av, "k")
    with pytest.raises(vault.InvalidInput, match="did you mean withdraw-enabled"):
        av.accept_risk("k", "withdraw", "because")
    for code in ACCEPTABLE_FINDINGS:
        assert code in av.accept_risk("k", code, "because").accepted


def _printed_codes() -> set[str]:
    """Every fixed finding code in the checker's source and the probe's rules it
    applies: the second argument of a ``Finding(...)``, or a code chosen just before one."""
    source = "".join(
        Path(module.__file__).read_text() for module in (checks, probe_findings, observations)
    )
    literal = re.findall(r'Finding\(\s*[^,()]+,\s*"([a-z-]+)"', source)
    chosen = re.findall(r'code = "([a-z-]+)" if .* else "([a-z-]+)"', source)
    return set(literal) | {c for pair in chosen for c in pair}


def test_every_finding_code_is_listed_once() -> None:
    """One list of the codes check prints, acceptable or not (the policy's)."""
    printed = _printed_codes()
    assert {"withdraw-without-ip", "expires-soon", "kdf-weak", "unread"} <= printed
    listed = set(ACCEPTABLE_FINDINGS) | set(UNACCEPTABLE_FINDINGS)
    assert not set(ACCEPTABLE_FINDINGS) & set(UNACCEPTABLE_FINDINGS)
    assert printed == listed
    rules = {exchange_rule_finding(r.code) for p in all_profiles() for r in p.lifetime_rules}
    assert not rules & listed
    table = Path(__file__).parents[2].joinpath("docs", "rotation.md").read_text()
    for code in listed:
        assert f"| `{code}` |" in table, code


# ------------------------------------------------------------------------------ usage


def test_stale_never_read(av: AdminVault) -> None:
    add(av, "k")
    assert timeline(av, "k", "stale", [0, 29, 30, 90]) == [None, None, "warn", "warn"]
    hit = find(check(av, at(30)), "k", "stale")
    assert hit is not None and "granted to no client and never read" in hit.message
    assert find(check(av, at(30)), "k", "unread") is None


def test_stale_counts_from_last_read(av: AdminVault, clock: Clock) -> None:
    add(av, "k")
    clock.now = at(10)
    av.get("k")  # the owner's read is a read too
    assert timeline(av, "k", "stale", [30, 39, 40]) == [None, None, "warn"]
    assert "not read for 30 days" in find(check(av, at(40)), "k", "stale").message  # type: ignore[union-attr]


def test_stale_follows_policy_and_acceptance(av: AdminVault) -> None:
    add(av, "k")
    av.set_policy("k", stale_days=60)
    assert timeline(av, "k", "stale", [59, 60]) == [None, "warn"]
    av.accept_risk("k", "stale", "cold backup key")
    assert severity(av, "k", "stale", at(60)) == "ok"


def test_unread_when_granted(av: AdminVault, clock: Clock, vault_location: str) -> None:
    add(av, "k")
    _, token = av.add_client("bot")
    av.grant("bot", ["k"])
    assert timeline(av, "k", "unread", [29, 30]) == [None, "warn"]
    assert find(check(av, at(30)), "k", "stale") is None
    hit = find(check(av, at(30)), "k", "unread")
    assert hit is not None and "granted to 1 client(s) but never read" in hit.message
    clock.now = at(5)
    vault.load("k", where=vault_location, token=token)
    assert timeline(av, "k", "unread", [30, 34, 35]) == [None, None, "warn"]


def forge_read(av: AdminVault, token: str) -> None:
    """Append a 'read ok' of credential k in bot's name, as someone with write access
    to the database could: signed, but by another key than bot's."""
    with av.store.write() as session:
        audit.append(
            session,
            av.vault_id,
            actor="client:bot",
            action="read",
            credential="k",
            version=1,
            signer=(parse_token(token).client_id, identities.RootIdentity.generate().sign),
        )


def test_read_entry_with_a_bogus_signature_does_not_count(
    av: AdminVault, clock: Clock, vault_location: str
) -> None:
    """Someone with write access to the database makes a dead key look in use: a
    'read ok' entry in the bot's name, its signature non-NULL but by another key."""
    add(av, "k")
    _, token = av.add_client("bot")
    av.grant("bot", ["k"])
    clock.now = at(5)
    forge_read(av, token)
    assert severity(av, "k", "unread", at(30)) == "warn"
    clock.now = at(6)
    vault.load("k", where=vault_location, token=token)  # a real read still counts
    assert severity(av, "k", "unread", at(30)) is None


def test_a_bogus_newer_read_falls_back_to_the_verified_one(
    av: AdminVault, clock: Clock, vault_location: str
) -> None:
    """The forged entry is the newest read: the real one before it still counts."""
    add(av, "k")
    _, token = av.add_client("bot")
    av.grant("bot", ["k"])
    clock.now = at(5)
    vault.load("k", where=vault_location, token=token)
    clock.now = at(20)
    forge_read(av, token)
    assert timeline(av, "k", "unread", [34, 35]) == [None, "warn"]
    assert "not read for 30 days" in find(check(av, at(35)), "k", "unread").message  # type: ignore[union-attr]


def test_revoked_client_grants_do_not_count(av: AdminVault) -> None:
    add(av, "k")
    av.add_client("bot")
    av.grant("bot", ["k"])
    av.revoke_client("bot")
    assert severity(av, "k", "stale", at(30)) == "warn"


def test_imported_old_key_is_not_stale_at_once(av: AdminVault, clock: Clock) -> None:
    """Idleness counts from when the vault got the key, not from its issue date."""
    add(av, "imported", age=45)
    assert find(check(av, NOW), "imported", "stale") is None
    assert timeline(av, "imported", "stale", [29, 30]) == [None, "warn"]


def test_long_lived_handle_keeps_the_key_in_use(
    av: AdminVault, clock: Clock, vault_location: str
) -> None:
    """A bot polling through one handle is re-audited (hourly), so it never looks unused."""
    add(av, "okx-trade", "okx", permissions="read,trade", ips=())
    _, token = av.add_client("bot", max_scope="trade")
    av.grant("bot", ["okx-trade"])
    with vault.open(vault_location, token=token) as handle:
        for day in range(0, 40, 2):
            clock.now = at(day)
            handle.get("okx-trade")
    report = check(av, at(40))
    assert find(report, "okx-trade", "okx-unbound-inactive") is None
    assert find(report, "okx-trade", "unread") is None


def test_polling_is_audited_at_most_hourly(
    av: AdminVault, clock: Clock, vault_location: str
) -> None:
    add(av, "k")
    _, token = av.add_client("bot")
    av.grant("bot", ["k"])
    with vault.open(vault_location, token=token) as handle:
        for minutes in (0, 1, 30, 59, 60, 61, 119, 120):
            clock.now = at(minutes=minutes)
            handle.get("k")
    reads = [e.at for e in av.audit_entries() if e.action == "read"]
    assert reads == [at(), at(minutes=60), at(minutes=120)]


# ------------------------------------------------------------------- exposure/rotation


def test_exposed_after_revoke_until_finish(av: AdminVault, clock: Clock) -> None:
    add(av, "k")
    add(av, "untouched")
    av.add_client("bot")
    av.grant("bot", ["k"])
    assert find(check(av, NOW), "k", "exposed") is None
    clock.now = at(1)
    assert av.revoke_client("bot") == ["k"]
    hit = find(check(av, at(1)), "k", "exposed")
    assert hit is not None and hit.severity == "critical"
    assert 'readable by revoked client "bot" since 2026-03-03' in hit.message
    assert find(check(av, at(1)), "untouched", "exposed") is None
    clock.now = at(2)  # the new key is made after the revocation
    rotation.start(av, "k", payload("binance"))
    assert severity(av, "k", "exposed", at(2)) == "critical"
    rotation.promote(av, "k")
    assert severity(av, "k", "exposed", at(2)) == "critical"  # the old key still works
    rotation.finish(av, "k", force=True)
    assert find(check(av, at(2)), "k", "exposed") is None


def test_exposure_while_pending_survives_the_rotation(av: AdminVault, clock: Clock) -> None:
    """A client revoked while a rotation is pending could read the pending key too."""
    add(av, "k")
    av.add_client("bot")
    av.grant("bot", ["k"])
    rotation.start(av, "k", payload("binance"))
    clock.now = at(1)
    av.revoke_client("bot")
    clock.now = at(2)
    rotation.promote(av, "k")
    rotation.finish(av, "k", force=True)
    assert severity(av, "k", "exposed", at(2)) == "critical"
    # A key made after the revocation ends it.
    rotation.start(av, "k", payload("binance"))
    rotation.promote(av, "k")
    rotation.finish(av, "k", force=True)
    assert severity(av, "k", "exposed", at(2)) is None


def test_exposure_of_the_new_key_survives_finish(av: AdminVault, clock: Clock) -> None:
    add(av, "k")
    av.add_client("bot")
    av.grant("bot", ["k"])
    rotation.start(av, "k", payload("binance"))
    rotation.promote(av, "k")  # bot holds a wrap of the new current version
    clock.now = at(1)
    av.revoke_client("bot")
    rotation.finish(av, "k", force=True)
    assert severity(av, "k", "exposed", at(1)) == "critical"


def test_rotation_pending_after_24_hours(av: AdminVault) -> None:
    add(av, "k")
    rotation.start(av, "k", payload("binance"))
    code = "rotation-pending"
    assert severity(av, "k", code, at(0)) is None
    assert severity(av, "k", code, at(hours=24)) is None
    assert severity(av, "k", code, at(hours=24, seconds=1)) == "warn"
    hit = find(check(av, at(3)), "k", code)
    assert hit is not None and "pending since 2026-03-02 12:00 UTC" in hit.message
    rotation.abort(av, "k")
    assert severity(av, "k", code, at(3)) is None


def test_rotation_unfinished_after_grace(av: AdminVault, clock: Clock) -> None:
    add(av, "k")
    add(av, "short")
    for name in ("k", "short"):
        rotation.start(av, name, payload("binance"))
    rotation.promote(av, "k")  # default grace: 24 hours
    rotation.promote(av, "short", grace=timedelta(hours=2))
    code = "rotation-unfinished"
    assert severity(av, "k", code, at(hours=24, seconds=-1)) is None
    assert severity(av, "k", code, at(hours=24)) == "warn"
    assert severity(av, "short", code, at(hours=2, seconds=-1)) is None
    assert severity(av, "short", code, at(hours=2)) == "warn"
    assert severity(av, "k", "rotation-pending", at(5)) is None
    rotation.finish(av, "k", force=True)
    assert severity(av, "k", code, at(5)) is None


def test_grace_follows_policy(av: AdminVault) -> None:
    add(av, "k")
    av.set_policy("k", grace_hours=6)
    rotation.start(av, "k", payload("binance"))
    rotation.promote(av, "k")
    assert av.describe("k").previous_until == at(hours=6)
    assert severity(av, "k", "rotation-unfinished", at(hours=6)) == "warn"


# -------------------------------------------------------------------------- duplicates


def test_duplicate_api_key(av: AdminVault) -> None:
    add(av, "one", api_key="shared-api-key-0001")
    add(av, "two", "bybit", api_key="shared-api-key-0001")
    add(av, "three", api_key="another-api-key-0002")
    report = check(av, NOW)
    for name, other in (("one", "two"), ("two", "one")):
        hit = find(report, name, "duplicate-api-key")
        assert hit is not None and hit.severity == "warn" and f"stored as {other}:" in hit.message
    assert find(report, "three", "duplicate-api-key") is None
    av.accept_risk("one", "duplicate-api-key", "read-only copy for the tax tool")
    report = check(av, NOW)
    assert find(report, "one", "duplicate-api-key").severity == "ok"  # type: ignore[union-attr]
    assert find(report, "two", "duplicate-api-key").severity == "warn"  # type: ignore[union-attr]


def test_duplicate_cleared_by_rotation(av: AdminVault) -> None:
    add(av, "one", api_key="shared-api-key-0001")
    add(av, "two", api_key="shared-api-key-0001")
    rotation.start(av, "two", payload("binance"))
    assert find(check(av, NOW), "two", "duplicate-api-key") is not None  # current unchanged
    rotation.promote(av, "two")
    assert find(check(av, NOW), "two", "duplicate-api-key") is None
    assert find(check(av, NOW), "one", "duplicate-api-key") is None


# ----------------------------------------------------------------------------- clients


def test_client_expiring(av: AdminVault) -> None:
    av.add_client("bot", expires_at=at(20))
    av.add_client("forever")
    code = "client-expiring"
    assert timeline(av, None, code, [0, 5, 6, 19]) == [None, None, "warn", "warn"]
    assert severity(av, None, code, at(20)) is None  # expired, no grants: nothing to do
    msg = find(check(av, at(6)), None, code).message  # type: ignore[union-attr]
    assert '"bot"' in msg and "2026-03-22 12:00 UTC" in msg
    assert "forever" not in " ".join(f.message for f in check(av, at(6)).findings)


def test_client_expired_with_grants(av: AdminVault) -> None:
    add(av, "k")
    av.add_client("bot", expires_at=at(20))
    av.add_client("idle", expires_at=at(20))
    av.grant("bot", ["k"])
    code = "client-expired"
    assert severity(av, None, code, at(20, seconds=-1)) is None
    hit = find(check(av, at(20)), None, code)
    assert hit is not None and hit.severity == "warn" and '"bot"' in hit.message
    assert "idle" not in hit.message
    av.revoke_client("bot")
    assert severity(av, None, code, at(20)) is None


# --------------------------------------------------------------------------------- KDF


def test_kdf_weak_on_test_vault(av: AdminVault) -> None:
    hit = find(check(av, NOW), None, "kdf-weak")
    assert hit is not None and hit.severity == "critical"
    assert str(TEST_KDF) in hit.message and "passwd --recalibrate" in hit.message
    assert find(check(av, NOW), None, "kdf-below-policy") is None


def test_kdf_finding_says_the_parameters_are_unauthenticated(av: AdminVault) -> None:
    # Read without a key, from a row anyone who can write the database can edit.
    hit = find(check(av, NOW), None, "kdf-weak")
    assert hit is not None and "as stored, unauthenticated" in hit.message


def test_kdf_at_floor_is_below_policy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    floor = kdf_params.KDF_FLOOR
    assert floor == kdf_params.KdfParams(3, 64 * 1024, 4)
    made, _ = AdminVault.create(tmp_path / "floor" / "vault.db", PASSPHRASE, kdf=floor)
    with made:
        report = check(made, NOW)
        assert find(report, None, "kdf-weak") is None
        hit = find(report, None, "kdf-below-policy")
        assert hit is not None and hit.severity == "warn" and "256 MiB" in hit.message
        # At or above the current default memory: no KDF finding.
        monkeypatch.setattr(kdf_params, "KDF_DEFAULT_MEMORY_KIB", floor.memory_kib)
        report = check(made, NOW)
        assert {f.code for f in report.findings} & {"kdf-weak", "kdf-below-policy"} == set()


# ---------------------------------------------------------------- every code, documented

ALL_CODES = {
    "age-overdue",
    "age-due-soon",
    "expired",
    "expires-soon",
    "bybit-unbound",
    "htx-unbound",
    "binance-unbound-trading",
    "okx-unbound-inactive",
    "withdraw-enabled",
    "withdraw-without-ip",
    "trade-without-ip",
    "ip-unrestricted",
    "stale",
    "unread",
    "exposed",
    "rotation-pending",
    "rotation-unfinished",
    "duplicate-api-key",
    "client-expiring",
    "client-expired",
    "kdf-weak",
    "kdf-below-policy",
}


def test_every_code_is_in_docs() -> None:
    docs = Path(__file__).resolve().parents[2] / "docs" / "rotation.md"
    text = docs.read_text()
    missing = [c for c in sorted(ALL_CODES) if f"`{c}`" not in text]
    assert not missing


def test_every_code_can_fire_in_one_vault(av: AdminVault, clock: Clock) -> None:
    """A smoke test over one vault holding a problem of every kind."""
    clock.now = at(-40)  # in the vault long enough to be stale / unread
    add(av, "old", age=55, api_key="dup-api-key-000001")
    add(av, "granted", age=40)
    clock.now = NOW
    add(av, "dup", age=80, api_key="dup-api-key-000001")
    add(av, "exp", expires_in=3)
    add(av, "gone", expires_in=1)
    add(av, "bybit", "bybit", ips=(), age=95)
    add(av, "htx", "htx", ips=(), age=80)
    add(av, "bin", permissions="trade", ips=(), age=31)
    add(av, "okx", "okx", permissions="trade", ips=(), age=20)
    add(av, "wd", permissions="withdraw")
    add(av, "wd-open", permissions="withdraw", ips=("*",))
    add(av, "gate", "gate", permissions="trade", ips=())
    add(av, "pend")
    add(av, "prev")
    av.add_client("expiring", expires_at=at(5))
    av.add_client("expired", expires_at=at(1))
    av.add_client("leaker")
    av.grant("expired", ["granted"])
    av.grant("leaker", ["prev"])
    av.revoke_client("leaker")
    rotation.start(av, "pend", payload("binance"))
    rotation.start(av, "prev", payload("binance"))
    rotation.promote(av, "prev", grace=timedelta(hours=1))
    report = check(av, at(2))
    assert {f.code for f in report.findings} == ALL_CODES - {"kdf-below-policy"}
    assert report.worst == "critical" and report.exit_code("critical") == 2


def test_the_clock_is_the_argument(av: AdminVault) -> None:
    add(av, "k")
    assert check(av, at(91)).generated_at == at(91)
    assert check(av, at(1)).findings != check(av, at(91)).findings


# ------------------------------------------------------------------ verified reads remembered


@pytest.fixture(autouse=True)
def state_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The owner's state directory, where check remembers the reads it verified (the
    test's own: every check of this module writes there)."""
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    return tmp_path / "state" / "exvault"


def read_checks(av: AdminVault, location: str, monkeypatch: pytest.MonkeyPatch) -> list[bytes]:
    """The messages of read entries whose signature is verified from now on."""
    from tests.conftest import db_exec
    from vault.format.audit_entry import signed_entry

    hashes = db_exec(location, "SELECT entry_hash FROM audit_log WHERE action = 'read'")
    reads = {signed_entry(av.vault_id, bytes(h)) for (h,) in hashes}  # type: ignore[arg-type]
    checked: list[bytes] = []
    original = identities.verify_signature

    def counting(public: bytes, message: bytes, signature: bytes) -> None:
        if message in reads:
            checked.append(message)
        original(public, message, signature)

    monkeypatch.setattr(identities, "verify_signature", counting)
    return checked


@pytest.fixture
def was_read(av: AdminVault, clock: Clock, vault_location: str, state_home: Path) -> str:
    """k, granted to bot, read by it on day 5; its token."""
    add(av, "k")
    _, token = av.add_client("bot")
    av.grant("bot", ["k"])
    clock.now = at(5)
    vault.load("k", where=vault_location, token=token)
    return token


def test_a_read_verified_once_is_not_verified_again(
    av: AdminVault, was_read: str, vault_location: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    check(av, at(6))
    checked = read_checks(av, vault_location, monkeypatch)
    assert severity(av, "k", "unread", at(34)) is None
    assert severity(av, "k", "unread", at(35)) == "warn"
    assert checked == []


def test_a_forged_read_does_not_count_with_a_cache_from_before(
    av: AdminVault, was_read: str, clock: Clock, state_home: Path
) -> None:
    check(av, at(6))
    assert list(state_home.glob("verified-reads-*"))
    clock.now = at(20)
    forge_read(av, was_read)
    assert severity(av, "k", "unread", at(35)) == "warn"


def test_a_cache_of_another_vault_is_ignored(
    av: AdminVault,
    was_read: str,
    vault_location: str,
    state_home: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """This vault's remembered digests, under another vault's id, at this vault's path."""
    from vault.ops.verified_reads import MAGIC, cache_path

    check(av, at(6))
    path = cache_path(av.vault_id)
    digests = path.read_bytes()[len(MAGIC) + len(av.vault_id) :]
    assert digests
    path.write_bytes(MAGIC + bytes(16) + digests)
    checked = read_checks(av, vault_location, monkeypatch)
    assert severity(av, "k", "unread", at(34)) is None
    assert len(checked) == 1


@pytest.mark.parametrize("damage", [b"", b"\0", b"x" * 31])
def test_a_damaged_cache_is_ignored_and_replaced(
    av: AdminVault,
    was_read: str,
    vault_location: str,
    state_home: Path,
    monkeypatch: pytest.MonkeyPatch,
    damage: bytes,
) -> None:
    from vault.ops.verified_reads import cache_path

    check(av, at(6))
    path = cache_path(av.vault_id)
    good = path.read_bytes()
    path.write_bytes(good[: len(good) // 2] + damage)
    checked = read_checks(av, vault_location, monkeypatch)
    assert severity(av, "k", "unread", at(34)) is None
    assert len(checked) == 1
    assert path.read_bytes() == good


@pytest.mark.parametrize(("file_mode", "dir_mode"), [(0o640, 0o700), (0o600, 0o750)])
def test_a_cache_others_could_write_is_ignored(
    av: AdminVault,
    was_read: str,
    vault_location: str,
    state_home: Path,
    monkeypatch: pytest.MonkeyPatch,
    file_mode: int,
    dir_mode: int,
) -> None:
    from vault.ops.verified_reads import cache_path

    check(av, at(6))
    cache_path(av.vault_id).chmod(file_mode)
    state_home.chmod(dir_mode)
    checked = read_checks(av, vault_location, monkeypatch)
    assert severity(av, "k", "unread", at(34)) is None
    assert len(checked) == 1


def test_the_cache_file_is_private(av: AdminVault, was_read: str, state_home: Path) -> None:
    from vault.ops.verified_reads import cache_path

    check(av, at(6))
    assert cache_path(av.vault_id).stat().st_mode & 0o777 == 0o600
    assert state_home.stat().st_mode & 0o777 == 0o700
