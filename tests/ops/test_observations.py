"""Probe observations (vault/ops/observations.py): recorded by the owner or a monitor
client, read back keyless by check, and every way a database writer could forge,
edit, replace or delete one."""

from __future__ import annotations

import sqlite3
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

import vault
from tests.conftest import PASSPHRASE, db_exec, sql
from vault.agent.client import AgentIdentity
from vault.db import audit
from vault.db.inventory import Inventory
from vault.errors import AccessDenied, NotFound
from vault.exchanges.key_report import KeyReport, ProbeError, ProbeOutcome
from vault.format import observation
from vault.ops import observations
from vault.ops.checks import Report, check
from vault.ops.verification import verify
from vault.owner.admin import AdminVault
from vault.owner.agent_handover import unlock_into_agent
from vault.owner.agent_unlock import lock_in_agent, open_through_agent

BACKENDS = ("sqlite", "postgresql")
UTC = timezone.utc
NOW = datetime.now(UTC).replace(microsecond=0)
GOOD = KeyReport(("read", "trade"), True, ("203.0.113.7",), None, None)
WIDE = KeyReport(("read", "trade", "withdraw"), True, ("203.0.113.7",), None, None)


def outcome(report: KeyReport | None = GOOD, *, minutes: int = 0, **kw: object) -> ProbeOutcome:
    fields: dict[str, object] = {
        "observed_at": NOW + timedelta(minutes=minutes),
        "report": report,
        "error": None,
        "skew_ms": 10,
        "receive_window_ms": 5000,
    }
    fields.update(kw)
    return ProbeOutcome(**fields)  # type: ignore[arg-type]


def rejected(minutes: int = 0) -> ProbeOutcome:
    error = ProbeError("rejected-key", "invalid-key", "-2015", "API-key format invalid")
    return outcome(None, minutes=minutes, error=error, skew_ms=None)


def codes(admin: AdminVault, name: str = "binance-main") -> dict[str, str]:
    report: Report = check(admin, NOW + timedelta(hours=1))
    return {f.code: f.severity for f in report.findings if f.credential == name}


def test_a_report_as_declared_adds_no_finding(stocked: AdminVault) -> None:
    before = codes(stocked)
    observations.record(stocked, "binance-main", 1, outcome())
    assert codes(stocked) == before
    state = observations.latest(stocked)["binance-main"]
    assert state.latest is not None and state.latest.outcome == outcome()
    assert state.latest.signer == audit.ROOT_SIGNER


def test_check_reports_the_latest_observation(stocked: AdminVault) -> None:
    observations.record(stocked, "binance-main", 1, outcome())
    observations.record(stocked, "binance-main", 1, outcome(WIDE, minutes=1))
    assert codes(stocked)["exchange-permission-wider"] == "critical"
    observations.record(stocked, "binance-main", 1, outcome(minutes=2))
    assert "exchange-permission-wider" not in codes(stocked)


def test_the_observation_is_chained_into_the_audit_log(stocked: AdminVault) -> None:
    observations.record(stocked, "binance-main", 1, outcome())
    entry = stocked.audit_entries()[-1]
    assert (entry.action, entry.credential, entry.version) == ("probe", "binance-main", 1)
    assert entry.detail.startswith("report ")
    assert stocked.verify_audit().ok
    assert verify(stocked).ok


@pytest.mark.sqlite_only
@pytest.mark.parametrize("kind", ["unreachable", "malformed", "unsupported"])
def test_a_failure_without_a_verdict_is_not_stored(stocked: AdminVault, kind: str) -> None:
    observations.record(stocked, "binance-main", 1, outcome(WIDE))
    failure = outcome(None, minutes=1, error=ProbeError(kind, None, "503", "down"))
    observations.record(stocked, "binance-main", 1, failure)
    assert sql(stocked_path(stocked), "SELECT COUNT(*) FROM probe_observations") == [(1,)]
    assert codes(stocked)["exchange-permission-wider"] == "critical"


def test_a_rejected_key_replaces_the_report(stocked: AdminVault) -> None:
    observations.record(stocked, "binance-main", 1, outcome(WIDE))
    observations.record(stocked, "binance-main", 1, rejected(minutes=1))
    found = codes(stocked)
    assert found["exchange-rejected-key"] == "critical"
    assert "exchange-permission-wider" not in found


def test_a_refused_timestamp_keeps_what_the_last_report_said(stocked: AdminVault) -> None:
    observations.record(stocked, "binance-main", 1, outcome(WIDE))
    skew = ProbeError("clock-skew", None, "-1021", "timestamp outside recvWindow")
    observations.record(
        stocked, "binance-main", 1, outcome(None, minutes=1, error=skew, skew_ms=None)
    )
    found = codes(stocked)
    assert found["clock-skew"] == "critical"
    assert found["exchange-permission-wider"] == "critical"


def test_an_unknown_version_or_credential_is_refused(stocked: AdminVault) -> None:
    with pytest.raises(NotFound):
        observations.record(stocked, "binance-main", 7, outcome())
    with pytest.raises(NotFound):
        observations.record(stocked, "nope", 1, outcome())


def test_observations_of_an_older_version_do_not_count(stocked: AdminVault) -> None:
    observations.record(stocked, "binance-main", 1, outcome(WIDE))
    stocked.edit("binance-main", permissions="read,trade")
    assert "exchange-permission-wider" not in codes(stocked)


@pytest.mark.sqlite_only
def test_the_secret_never_reaches_the_observation_or_audit(stocked: AdminVault) -> None:
    observations.record(stocked, "binance-main", 1, rejected())
    path = stocked_path(stocked)
    dump = "\n".join(
        "\n".join(map(str, row))
        for table in ("probe_observations", "audit_log")
        for row in sql(path, f"SELECT * FROM {table}")
    )
    secret = stocked.get("binance-main").secret.reveal()
    assert secret not in dump
    assert stocked.get("binance-main").api_key.reveal() not in dump


# ------------------------------------------------------------------ a monitor client


@pytest.fixture
def monitor(stocked: AdminVault) -> str:
    _info, token = stocked.add_client("monitor")
    stocked.grant("monitor", ["binance-main"])
    return token


@pytest.mark.sqlite_only
def test_a_monitor_client_records_with_its_own_key(
    stocked: AdminVault, monitor: str, vault_path: Path
) -> None:
    with vault.open(vault_path, token=monitor) as client:
        observations.record(client, "binance-main", 1, outcome(WIDE))
    state = observations.latest(stocked)["binance-main"]
    assert state.latest is not None and state.latest.signer != audit.ROOT_SIGNER
    assert codes(stocked)["exchange-permission-wider"] == "critical"
    assert stocked.verify_audit().ok


@pytest.mark.sqlite_only
def test_a_monitor_client_without_the_grant_is_refused(
    stocked: AdminVault, monitor: str, vault_path: Path
) -> None:
    with vault.open(vault_path, token=monitor) as client, pytest.raises(AccessDenied):
        observations.record(client, "kucoin-sub1", 1, outcome())
    assert sql(vault_path, "SELECT COUNT(*) FROM probe_observations") == [(0,)]


@pytest.mark.sqlite_only
def test_an_observation_of_an_ungranted_client_does_not_count(
    stocked: AdminVault, monitor: str, vault_path: Path
) -> None:
    with vault.open(vault_path, token=monitor) as client:
        observations.record(client, "binance-main", 1, outcome(WIDE))
    stocked.ungrant("monitor", ["binance-main"])
    assert "binance-main" not in observations.latest(stocked)


# ------------------------------------------------------------------ tampering


def stocked_path(admin: AdminVault) -> str:
    """The SQLite file of ``admin``'s vault (the tests that edit it are SQLite only)."""
    path = admin.store.path
    assert path is not None
    return str(path)


def observed(admin: AdminVault) -> None:
    observations.record(admin, "binance-main", 1, outcome(WIDE))
    assert codes(admin)["exchange-permission-wider"] == "critical"


@pytest.mark.sqlite_only
def test_editing_the_latest_observation_is_caught(stocked: AdminVault) -> None:
    observed(stocked)
    body = observation.encode_body(outcome())
    db_exec(stocked_path(stocked), "UPDATE probe_observations SET body = :b", b=body)
    found = codes(stocked)
    assert found["probe-evidence-missing"] == "critical"
    assert "exchange-permission-wider" not in found


@pytest.mark.sqlite_only
def test_deleting_the_latest_observation_is_caught(stocked: AdminVault) -> None:
    observations.record(stocked, "binance-main", 1, outcome())
    observations.record(stocked, "binance-main", 1, outcome(WIDE, minutes=1))
    db_exec(
        stocked_path(stocked),
        "DELETE FROM probe_observations WHERE kind = 'report' "
        "AND id = (SELECT MAX(id) FROM probe_observations)",
    )
    assert codes(stocked)["probe-evidence-missing"] == "critical"


@pytest.mark.sqlite_only
def test_deleting_the_observation_and_its_entry_breaks_the_chain(stocked: AdminVault) -> None:
    observed(stocked)
    stocked.verify_audit()  # the witness remembers the entry
    path = stocked_path(stocked)
    db_exec(path, "DELETE FROM probe_observations")
    db_exec(path, "DELETE FROM audit_log WHERE seq = (SELECT MAX(seq) FROM audit_log)")
    assert not Inventory.open(path).verify_audit().ok


@pytest.mark.sqlite_only
def test_a_forged_observation_without_an_entry_counts_for_nothing(stocked: AdminVault) -> None:
    observed(stocked)
    path = stocked_path(stocked)
    (row,) = sql(
        path,
        "SELECT credential_id, version, name, observed_at, kind, signer, "
        "signature FROM probe_observations",
    )
    db_exec(
        path,
        "INSERT INTO probe_observations (credential_id, version, name, observed_at, kind, "
        "body, signer, signature) VALUES (:c, :v, :n, :t, :k, :b, :s, :sig)",
        c=row[0],
        v=row[1],
        n=row[2],
        t=row[3] + 60,
        k=row[4],
        b=observation.encode_body(outcome(minutes=1)),
        s=row[5],
        sig=row[6],
    )
    assert codes(stocked)["exchange-permission-wider"] == "critical"


@pytest.mark.sqlite_only
def test_a_forged_probe_entry_counts_for_nothing(stocked: AdminVault) -> None:
    observed(stocked)
    path = stocked_path(stocked)
    db_exec(
        path,
        "INSERT INTO audit_log SELECT seq + 1, at, actor, host, pid, action, credential, "
        "version, outcome, 'report ' || hex(zeroblob(32)), prev_hash, entry_hash, signer, "
        "signature FROM audit_log WHERE seq = (SELECT MAX(seq) FROM audit_log)",
    )
    found = codes(stocked)
    assert found["exchange-permission-wider"] == "critical"
    assert "probe-evidence-missing" not in found


@pytest.mark.sqlite_only
def test_an_older_good_observation_put_back_does_not_hide_the_latest(
    stocked: AdminVault,
) -> None:
    observations.record(stocked, "binance-main", 1, outcome())
    path = stocked_path(stocked)
    good = sql(path, "SELECT * FROM probe_observations")
    observations.record(stocked, "binance-main", 1, outcome(WIDE, minutes=1))
    db_exec(path, "DELETE FROM probe_observations")
    db = sqlite3.connect(path)
    with db:
        db.executemany("INSERT INTO probe_observations VALUES (?,?,?,?,?,?,?,?,?)", good)
    db.close()
    assert codes(stocked)["probe-evidence-missing"] == "critical"


@pytest.mark.sqlite_only
def test_verify_reports_a_tampered_observation(stocked: AdminVault) -> None:
    observed(stocked)
    db_exec(stocked_path(stocked), "UPDATE probe_observations SET signature = zeroblob(64)")
    assert not verify(stocked).ok


@pytest.mark.postgresql_only
def test_a_monitor_client_on_postgresql_is_refused(
    stocked: AdminVault, vault_location: str
) -> None:
    _info, token = stocked.add_client("monitor")
    stocked.grant("monitor", ["binance-main"])
    with (
        vault.open(vault_location, token=token) as client,
        pytest.raises(AccessDenied, match="probe as the owner"),
    ):
        observations.record(client, "binance-main", 1, outcome())
    assert observations.latest(stocked) == {}


def test_observations_survive_a_rekey(stocked: AdminVault) -> None:
    observations.record(stocked, "binance-main", 1, outcome(WIDE))
    stocked.rekey("another passphrase for the rekey", insecure_test_kdf=True)
    assert codes(stocked)["exchange-permission-wider"] == "critical"
    assert verify(stocked).ok


@pytest.mark.sqlite_only
def test_verify_reports_a_deleted_observation(stocked: AdminVault) -> None:
    observed(stocked)
    db_exec(stocked_path(stocked), "DELETE FROM probe_observations")
    problems = [p.message for p in verify(stocked).problems]
    assert any("observation of probe entry" in p for p in problems), problems


@pytest.mark.sqlite_only
def test_the_owner_records_through_the_unlock_agent(stocked: AdminVault, vault_path: Path) -> None:
    stocked.close()
    unlock_into_agent(str(vault_path), PASSPHRASE, timedelta(minutes=5), timedelta(hours=1))
    try:
        admin = open_through_agent(str(vault_path))
        assert admin is not None
        with admin:
            assert isinstance(admin.identity, AgentIdentity)  # the agent signs
            observations.record(admin, "binance-main", 1, outcome(WIDE))
        with Inventory.open(vault_path) as inv:
            state = observations.latest(inv)["binance-main"]
            assert state.latest is not None and state.latest.signer == audit.ROOT_SIGNER
            assert inv.verify_audit().ok
    finally:
        lock_in_agent(str(vault_path))


def _bad_probe_then_reads(admin: AdminVault) -> None:
    """A good probe, then a bad one remembered as probe does, then other entries."""
    observations.record(admin, "binance-main", 1, outcome())
    observations.record(admin, "binance-main", 1, outcome(WIDE, minutes=1))
    observations.remember_head(admin)
    assert codes(admin)["exchange-permission-wider"] == "critical"


def _erase_the_bad_probe(admin: AdminVault) -> None:
    path = stocked_path(admin)
    db_exec(
        path, "DELETE FROM probe_observations WHERE id = (SELECT MAX(id) FROM probe_observations)"
    )
    db_exec(
        path,
        "DELETE FROM audit_log WHERE seq = (SELECT MAX(seq) FROM audit_log WHERE action = 'probe')",
    )


@pytest.mark.sqlite_only
def test_a_bad_probe_cut_off_the_end_of_the_log_is_caught_by_check(stocked: AdminVault) -> None:
    _bad_probe_then_reads(stocked)
    _erase_the_bad_probe(stocked)
    found = codes(stocked)
    assert found["probe-evidence-missing"] == "critical"


@pytest.mark.sqlite_only
def test_a_bad_probe_cut_out_of_the_middle_of_the_log_is_caught_by_check(
    stocked: AdminVault,
) -> None:
    _bad_probe_then_reads(stocked)
    stocked.get("binance-main")  # an entry after the probe's: the cut is in the middle
    observations.remember_head(stocked)
    _erase_the_bad_probe(stocked)
    assert codes(stocked)["probe-evidence-missing"] == "critical"


@pytest.mark.sqlite_only
def test_an_intact_log_after_remember_head_adds_no_finding(stocked: AdminVault) -> None:
    observations.record(stocked, "binance-main", 1, outcome())
    observations.remember_head(stocked)
    stocked.get("binance-main")
    assert "probe-evidence-missing" not in codes(stocked)


@pytest.mark.sqlite_only
def test_remember_head_keeps_a_witness_whose_entry_was_cut(stocked: AdminVault) -> None:
    _bad_probe_then_reads(stocked)
    before = audit.read_witness(stocked.vault_id)
    _erase_the_bad_probe(stocked)
    observations.record(stocked, "binance-main", 1, outcome(minutes=2))
    observations.remember_head(stocked)
    assert audit.read_witness(stocked.vault_id) == before
    assert codes(stocked)["probe-evidence-missing"] == "critical"
