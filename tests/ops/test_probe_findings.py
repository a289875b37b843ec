"""The probe's finding rules (vault/ops/probe_findings.py): each code fired and not, at
its boundaries, and properties over random declared keys and reports."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from vault.exchanges.fields import PERMISSIONS
from vault.exchanges.key_report import REJECTION_REASONS, KeyReport, ProbeError, ProbeOutcome
from vault.format.model import CredentialMetadata
from vault.format.policy import ACCEPTABLE_FINDINGS, UNACCEPTABLE_FINDINGS, Policy
from vault.ops.checks import SEVERITIES, Finding
from vault.ops.probe_findings import findings

UTC = timezone.utc
NOW = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
IP = ("203.0.113.7",)
CODES = {
    "exchange-permission-wider",
    "exchange-permission-narrower",
    "exchange-ip-unrestricted",
    "exchange-ip-mismatch",
    "exchange-expires-soon",
    "exchange-rejected-key",
    "clock-skew",
    "probe-stale",
}


def declared(permissions: tuple[str, ...] = ("read", "trade"), ips: tuple[str, ...] = IP):
    return CredentialMetadata("k", "binance", permissions, ips, date(2026, 1, 1), None)


def report(
    permissions: tuple[str, ...] | None = ("read", "trade"),
    ip_restricted: bool | None = True,
    ips: tuple[str, ...] | None = IP,
    expires_at: datetime | None = None,
) -> KeyReport:
    return KeyReport(permissions, ip_restricted, ips, expires_at, None)


def ok(
    rep: KeyReport | None = None, skew_ms: int | None = 0, window: int | None = 5000
) -> ProbeOutcome:
    return ProbeOutcome(NOW, rep or report(), None, skew_ms, window)


def failed(kind: str, reason: str | None = None, code: str | None = None) -> ProbeOutcome:
    return ProbeOutcome(NOW, None, ProbeError(kind, reason, code, "refused"), None, None)


def run(outcome: ProbeOutcome | None, key=None, policy: Policy | None = None, **kw):
    return findings(key or declared(), outcome, policy or Policy(), kw.pop("now", NOW), **kw)


def codes(found: list[Finding]) -> dict[str, str]:
    return {f.code: f.severity for f in found}


def test_a_key_as_declared_has_no_finding() -> None:
    assert run(ok()) == []


def test_never_probed_has_no_finding() -> None:
    assert run(None) == []


# ---------------------------------------------------------------- permissions


@pytest.mark.parametrize("right", ["withdraw", "transfer"])
def test_wider_by_a_right_that_moves_funds_is_critical(right: str) -> None:
    assert codes(run(ok(report(("read", "trade", right))))) == {
        "exchange-permission-wider": "critical"
    }


def test_wider_by_another_right_is_a_warning_naming_it() -> None:
    found = run(ok(report(("read", "trade", "futures"))))
    assert codes(found) == {"exchange-permission-wider": "warn"}
    assert "futures" in found[0].message
    # The command that records what the exchange grants, whole: it can be pasted.
    assert found[0].message.endswith("--permissions read,trade,futures")


def test_narrower_is_a_warning_naming_the_missing_right() -> None:
    found = run(ok(report(("read",))))
    assert codes(found) == {"exchange-permission-narrower": "warn"}
    assert "trade" in found[0].message
    assert "--permissions read)" in found[0].message


def test_narrower_accepted_is_ok() -> None:
    policy = Policy().accept("exchange-permission-narrower", "kept on purpose", NOW)
    assert codes(run(ok(report(("read",))), policy=policy)) == {
        "exchange-permission-narrower": "ok"
    }


def test_read_is_implied_on_either_side() -> None:
    assert run(ok(report(("trade",)))) == []
    assert run(ok(report(("read", "trade"))), declared(("trade",))) == []


def test_unknown_permissions_say_nothing() -> None:
    assert run(ok(report(None))) == []


# ---------------------------------------------------------------- whitelist


@pytest.mark.parametrize("rights", [("read", "trade"), ("read", "withdraw"), ("futures",)])
def test_unrestricted_with_trade_or_withdraw_is_critical(rights: tuple[str, ...]) -> None:
    found = run(ok(report(rights, ip_restricted=False, ips=())), declared(rights))
    assert codes(found) == {"exchange-ip-unrestricted": "critical"}


def test_unrestricted_read_only_is_a_warning_and_acceptable() -> None:
    rep = report(("read",), ip_restricted=False, ips=None)
    assert codes(run(ok(rep), declared(("read",)))) == {"exchange-ip-unrestricted": "warn"}
    policy = Policy().accept("exchange-ip-unrestricted", "read-only dashboards", NOW)
    assert codes(run(ok(rep), declared(("read",)), policy)) == {"exchange-ip-unrestricted": "ok"}


def test_accepting_unrestricted_never_softens_a_trading_key() -> None:
    policy = Policy().accept("exchange-ip-unrestricted", "because", NOW)
    rep = report(ip_restricted=False, ips=())
    assert codes(run(ok(rep), policy=policy)) == {"exchange-ip-unrestricted": "critical"}


def test_a_wildcard_on_the_exchange_is_unrestricted() -> None:
    assert codes(run(ok(report(ips=("0.0.0.0/0",))))) == {"exchange-ip-unrestricted": "critical"}


def test_unrestricted_falls_back_on_the_declared_rights_when_the_exchange_hides_them() -> None:
    rep = report(None, ip_restricted=False, ips=None)
    assert codes(run(ok(rep))) == {"exchange-ip-unrestricted": "critical"}


def test_an_extra_address_at_the_exchange_is_a_mismatch() -> None:
    found = run(ok(report(ips=(*IP, "198.51.100.1"))))
    assert codes(found) == {"exchange-ip-mismatch": "warn"}
    assert "198.51.100.1" in found[0].message


def test_a_declared_address_missing_at_the_exchange_is_a_mismatch() -> None:
    found = run(ok(report(ips=IP)), declared(ips=(*IP, "198.51.100.1")))
    assert codes(found) == {"exchange-ip-mismatch": "warn"}
    assert "198.51.100.1" in found[0].message


@pytest.mark.parametrize("masked", ["203.**.7", "203.*.*.7", "203.0.**.7", "**.7"])
def test_kucoin_masked_octets_match_the_declared_address(masked: str) -> None:
    assert run(ok(report(ips=(masked,)))) == []


@pytest.mark.parametrize("masked", ["203.**.8", "198.**.7", "10.*.*.7"])
def test_kucoin_masked_octets_that_cannot_be_the_declared_address(masked: str) -> None:
    assert codes(run(ok(report(ips=(masked,))))) == {"exchange-ip-mismatch": "warn"}


def test_the_exchange_spelling_of_an_address_is_normalized() -> None:
    assert run(ok(report(ips=("203.0.113.7/32",)))) == []


def test_binance_restricted_without_a_list_against_no_declared_ips() -> None:
    rep = report(ip_restricted=True, ips=None)
    assert run(ok(rep)) == []
    assert codes(run(ok(rep), declared(ips=()))) == {"exchange-ip-mismatch": "warn"}


# ---------------------------------------------------------------- expiry


@pytest.mark.parametrize(
    ("left", "severity"),
    [
        (timedelta(days=15), None),
        (timedelta(days=14, seconds=1), None),
        (timedelta(days=14), "warn"),
        (timedelta(days=3, seconds=1), "warn"),
        (timedelta(days=3), "critical"),
        (timedelta(0), "critical"),
        (timedelta(days=-2), "critical"),
    ],
)
def test_expiry_boundaries(left: timedelta, severity: str | None) -> None:
    found = codes(run(ok(report(expires_at=NOW + left))))
    assert found.get("exchange-expires-soon") == severity


# ---------------------------------------------------------------- rejection and clock


@pytest.mark.parametrize("reason", REJECTION_REASONS)
def test_a_rejected_key_is_critical_saying_why(reason: str) -> None:
    found = run(failed("rejected-key", reason, "-2015"))
    assert codes(found) == {"exchange-rejected-key": "critical"}
    assert "-2015" in found[0].message
    assert "refused" not in found[0].message  # the exchange side's text is not echoed


def test_rejection_reasons_are_told_apart() -> None:
    messages = {run(failed("rejected-key", r))[0].message for r in REJECTION_REASONS}
    assert len(messages) == len(REJECTION_REASONS)


@pytest.mark.parametrize("kind", ["unreachable", "malformed", "unsupported"])
def test_no_verdict_no_finding(kind: str) -> None:
    assert run(failed(kind)) == []


@pytest.mark.parametrize(
    ("skew", "window", "severity"),
    [
        (1000, 5000, None),
        (-1000, 5000, None),
        (1001, 5000, "warn"),
        (-5000, 5000, "warn"),
        (5001, 5000, "critical"),
        (-5001, 5000, "critical"),
        (60_000, None, "warn"),
        (None, 5000, None),
    ],
)
def test_clock_skew_boundaries(skew: int | None, window: int | None, severity: str | None) -> None:
    assert codes(run(ok(skew_ms=skew, window=window))).get("clock-skew") == severity


def test_a_refused_timestamp_is_critical_skew() -> None:
    assert codes(run(failed("clock-skew"))) == {"clock-skew": "critical"}


# ---------------------------------------------------------------- probe-stale


def test_a_fresh_success_is_not_stale() -> None:
    assert run(ok(), now=NOW + timedelta(days=7)) == []


def test_stale_after_the_policy_period_with_severity_ok() -> None:
    found = run(ok(), now=NOW + timedelta(days=7, seconds=1))
    assert codes(found) == {"probe-stale": "ok"}


def test_stale_period_follows_the_policy() -> None:
    policy = Policy().with_limits(probe_stale_days=30)
    assert run(ok(), policy=policy, now=NOW + timedelta(days=20)) == []


def test_a_failure_after_an_old_success_is_stale() -> None:
    old = NOW - timedelta(days=8)
    found = codes(run(failed("unsupported"), last_success=old))
    assert found == {"probe-stale": "ok"}
    assert run(failed("unsupported"), last_success=NOW - timedelta(days=1)) == []


def test_never_answered_is_stale_from_its_latest_probe() -> None:
    assert codes(run(failed("unsupported"))) == {}
    found = codes(run(failed("unsupported"), now=NOW + timedelta(days=8)))
    assert found == {"probe-stale": "ok"}


# ---------------------------------------------------------------- properties


rights = st.lists(st.sampled_from(PERMISSIONS), unique=True).map(tuple)
addresses = st.lists(
    st.tuples(*[st.integers(0, 255)] * 4).map(lambda t: ".".join(map(str, t))),
    unique=True,
    max_size=4,
).map(tuple)


@st.composite
def outcomes(draw: st.DrawFn) -> ProbeOutcome:
    if draw(st.booleans()):
        rep = KeyReport(
            draw(st.none() | rights),
            draw(st.none() | st.booleans()),
            draw(st.none() | addresses),
            draw(st.none() | st.integers(-30, 60).map(lambda d: NOW + timedelta(days=d))),
            None,
        )
        return ProbeOutcome(NOW, rep, None, draw(st.none() | st.integers(-(10**6), 10**6)), 5000)
    kind = draw(st.sampled_from(["rejected-key", "clock-skew", "unreachable", "malformed"]))
    reason = draw(st.sampled_from(REJECTION_REASONS)) if kind == "rejected-key" else None
    return ProbeOutcome(NOW, None, ProbeError(kind, reason, None, "x"), None, None)


@given(rights, addresses, outcomes())
def test_every_finding_is_known_and_acceptable_or_not(
    perms: tuple[str, ...], ips: tuple[str, ...], outcome: ProbeOutcome
) -> None:
    for f in run(outcome, declared(perms, ips)):
        assert f.code in CODES
        assert f.severity in SEVERITIES
        assert f.credential == "k"
        assert (f.code in ACCEPTABLE_FINDINGS) != (f.code in UNACCEPTABLE_FINDINGS)
        assert "\n" not in f.message


@given(rights, addresses)
def test_a_report_equal_to_the_declaration_finds_nothing(
    perms: tuple[str, ...], ips: tuple[str, ...]
) -> None:
    rep = KeyReport(perms, bool(ips), ips, None, None)
    found = codes(run(ok(rep), declared(perms, ips)))
    found.pop("exchange-ip-unrestricted", None)  # an empty whitelist is unrestricted
    assert found == {}


@given(rights, rights)
def test_wider_and_narrower_are_exactly_the_set_differences(
    stated: tuple[str, ...], observed: tuple[str, ...]
) -> None:
    found = codes(run(ok(report(observed)), declared(stated)))
    assert ("exchange-permission-wider" in found) == bool(set(observed) - set(stated) - {"read"})
    assert ("exchange-permission-narrower" in found) == bool(set(stated) - set(observed) - {"read"})
