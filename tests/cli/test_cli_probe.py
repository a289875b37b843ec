"""``exvault probe`` through the CLI against the mock exchanges: the JSON shape, the
exit codes (findings, nothing reachable, usage), observations recorded for the owner
and for a monitor client, network failures never a finding, and no secret in any
output, the audit log or a log line."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import pytest
from click.testing import Result

import vault.cli.probe as probe_cli
from tests.conftest import PASSPHRASE, Cli, db_exec, write_secret_file
from tests.mock_exchange.registry import Account, ApiKey, Fault
from tests.mock_exchange.server import MockExchanges
from tests.mock_exchange.test_ccxt_against_mock import KEYS, WHITELISTED_IP
from vault.db.inventory import Inventory
from vault.ops import observations
from vault.owner.admin import AdminVault

JSON_KEYS = {
    "name",
    "exchange",
    "ok",
    "observed_at",
    "permissions",
    "ip_restricted",
    "ips",
    "expires_at",
    "created_at",
    "skew_ms",
    "error",
    "findings",
}
# name -> (exchange, declared permissions, the exchange's own permission names)
CREDENTIALS = {
    "okx-bot": ("okx", "read,trade", ("read_only", "trade")),
    "kucoin-bot": ("kucoin", "read", ("General",)),
    "binance-bot": ("binance", "read,trade", ("enableReading", "enableSpotAndMarginTrading")),
}


@pytest.fixture
def exchanges(mock_exchanges: MockExchanges) -> MockExchanges:
    """The mocks, with each sample key registered."""
    for exchange, _, native in CREDENTIALS.values():
        sample = KEYS[exchange]
        mock = mock_exchanges[exchange]
        mock.state.client_ip = WHITELISTED_IP
        mock.add_key(
            ApiKey(
                sample["api_key"],
                sample["secret"],
                Account("1001"),
                passphrase=sample.get("passphrase"),
                permissions=native,
                ip_whitelist=(WHITELISTED_IP,),
            )
        )
    return mock_exchanges


@pytest.fixture
def vault_cli(cli_vault: Cli, exchanges: MockExchanges) -> Cli:
    for name, (exchange, permissions, _) in CREDENTIALS.items():
        sample = KEYS[exchange]
        payload = {"api_key": sample["api_key"], "secret": sample["secret"]}
        if "passphrase" in sample:
            payload["passphrase"] = sample["passphrase"]
        result = cli_vault.unlocked(
            "add", name, "--exchange", exchange, "--permissions", permissions,
            "--ip", WHITELISTED_IP, "--endpoint", exchanges[exchange].url,
            "--from-json", "-", input=json.dumps(payload),
        )  # fmt: skip
        assert result.exit_code == 0, result.output
    return cli_vault


def probe(cli: Cli, *args: str) -> Result:
    return cli.unlocked("probe", *args)


def as_json(result: Result) -> list[dict[str, Any]]:
    data = json.loads(result.stdout)
    assert isinstance(data, list)
    return data


def latest(cli: Cli) -> dict[str, observations.ObservationState]:
    inventory = Inventory.open(str(cli.vault_path))
    try:
        return observations.latest(inventory)
    finally:
        inventory.close()


def test_all_fine_exits_0_with_the_json_shape_and_records(vault_cli: Cli) -> None:
    result = probe(vault_cli, "--all", "--json")
    assert result.exit_code == 0, result.output
    rows = as_json(result)
    assert [row["name"] for row in rows] == sorted(CREDENTIALS)
    for row in rows:
        assert set(row) == JSON_KEYS
        assert row["ok"] is True and row["error"] is None and row["findings"] == []
        assert row["ip_restricted"] is True and isinstance(row["skew_ms"], int)
    binance = next(row for row in rows if row["exchange"] == "binance")
    assert binance["ips"] is None and binance["permissions"] == ["read", "trade"]
    okx = next(row for row in rows if row["exchange"] == "okx")
    assert okx["ips"] == [WHITELISTED_IP]
    assert set(latest(vault_cli)) == set(CREDENTIALS)
    assert result.stderr == ""  # no progress bar, nor its label, without a terminal


def test_a_wider_key_at_the_exchange_is_critical(vault_cli: Cli, exchanges: MockExchanges) -> None:
    key = exchanges["okx"].state.key(KEYS["okx"]["api_key"])
    assert key is not None
    key.permissions = ("read_only", "trade", "withdraw")
    result = probe(vault_cli, "okx-bot", "--json")
    assert result.exit_code == 2, result.output
    (row,) = as_json(result)
    codes = {(f["code"], f["severity"]) for f in row["findings"]}
    assert ("exchange-permission-wider", "critical") in codes


def test_a_rejected_key_is_critical_and_says_why(vault_cli: Cli, exchanges: MockExchanges) -> None:
    key = exchanges["kucoin"].state.key(KEYS["kucoin"]["api_key"])
    assert key is not None
    key.passphrase = "another-passphrase"
    result = probe(vault_cli, "kucoin-bot", "--json")
    assert result.exit_code == 2, result.output
    (row,) = as_json(result)
    assert row["ok"] is False
    assert row["error"]["kind"] == "rejected-key" and row["error"]["code"] == "400004"
    assert "passphrase" in row["error"]["message"]
    assert [f["code"] for f in row["findings"]] == ["exchange-rejected-key"]


def test_nothing_reachable_exits_69_without_a_finding_or_a_record(
    vault_cli: Cli, exchanges: MockExchanges
) -> None:
    for name in ("okx", "kucoin", "binance"):
        exchanges[name].stop()
    result = probe(vault_cli, "--all", "--json")
    assert result.exit_code == 69, result.output
    rows = as_json(result)
    assert {row["error"]["kind"] for row in rows} == {"unreachable"}
    assert all(row["findings"] == [] for row in rows)
    assert latest(vault_cli) == {}


def test_an_unreachable_exchange_is_no_finding_for_the_others(
    vault_cli: Cli, exchanges: MockExchanges
) -> None:
    exchanges["okx"].inject(Fault.server_error(503))
    result = probe(vault_cli, "--all", "--json")
    assert result.exit_code == 0, result.output
    by_name = {row["name"]: row for row in as_json(result)}
    assert by_name["okx-bot"]["error"]["kind"] == "unreachable"
    assert by_name["okx-bot"]["findings"] == []
    assert by_name["kucoin-bot"]["ok"] is True
    assert "okx-bot" not in latest(vault_cli)


def test_429_with_retry_after_is_waited_for(vault_cli: Cli, exchanges: MockExchanges) -> None:
    exchanges["okx"].inject(
        Fault.too_many_requests(retry_after=0.3, path="/api/v5/account/config", times=1)
    )
    result = probe(vault_cli, "okx-bot", "--json")
    assert result.exit_code == 0, result.output
    assert as_json(result)[0]["ok"] is True


def test_exchange_filter_and_text_output(vault_cli: Cli) -> None:
    result = probe(vault_cli, "--exchange", "okx")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0].split()[:3] == ["NAME", "EXCHANGE", "RESULT"]
    assert [line.split()[0] for line in lines[1:]] == ["okx-bot"]


@pytest.mark.parametrize(
    ("args", "code"),
    [
        ((), 64),
        (("--all", "okx-bot"), 64),
        (("no-such-key",), 4),
        (("--timeout", "0"), 7),
        (("--all", "--timeout", "121s"), 7),
        (("--timeout", "soon"), 7),
    ],
)
def test_bad_usage(vault_cli: Cli, args: tuple[str, ...], code: int) -> None:
    result = probe(vault_cli, *args)
    assert result.exit_code == code, result.output
    assert "Traceback" not in result.output


def test_an_exchange_with_no_credential_is_not_found(vault_cli: Cli) -> None:
    result = probe(vault_cli, "--exchange", "mexc")
    assert result.exit_code == 4, result.output
    assert "no credential of mexc to probe" in result.stderr
    assert latest(vault_cli) == {}


def test_a_monitor_granted_nothing_is_told_so(vault_cli: Cli, tmp_path: Path) -> None:
    admin = AdminVault.unlock(str(vault_cli.vault_path), PASSPHRASE)
    try:
        _, token = admin.add_client("idle-monitor", max_scope="read")
    finally:
        admin.close()
    token_file = write_secret_file(tmp_path / "idle.token", token)
    result = vault_cli(
        "probe", "--all", "--json", "--vault", str(vault_cli.vault_path),
        "--token-file", str(token_file),
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == []
    assert "nothing to probe: no credential granted to this client" in result.stderr


def test_a_monitor_client_probes_what_it_is_granted(vault_cli: Cli, tmp_path: Path) -> None:
    admin = AdminVault.unlock(str(vault_cli.vault_path), PASSPHRASE)
    try:
        _, token = admin.add_client("monitor", max_scope="read,trade")
        admin.grant("monitor", ["okx-bot", "binance-bot"])
    finally:
        admin.close()
    token_file = write_secret_file(tmp_path / "monitor.token", token)
    result = vault_cli(
        "probe", "--all", "--json", "--vault", str(vault_cli.vault_path),
        "--token-file", str(token_file),
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert [row["name"] for row in as_json(result)] == ["binance-bot", "okx-bot"]
    states = latest(vault_cli)
    assert set(states) == {"binance-bot", "okx-bot"}
    assert {state.latest.signer for state in states.values()} != {"root"}
    refused = vault_cli(
        "probe", "kucoin-bot", "--vault", str(vault_cli.vault_path),
        "--token-file", str(token_file),
    )  # fmt: skip
    assert refused.exit_code == 4, refused.output


def test_no_secret_reaches_any_output(
    vault_cli: Cli, exchanges: MockExchanges, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    outputs = [probe(vault_cli, "--all", "--json"), probe(vault_cli, "--all")]
    key = exchanges["kucoin"].state.key(KEYS["kucoin"]["api_key"])
    assert key is not None
    key.passphrase = "changed-at-the-exchange"  # a refusal, with its error text
    exchanges["okx"].inject(Fault.malformed())
    outputs.append(probe(vault_cli, "--all", "--json"))
    exchanges["binance"].stop()
    outputs.append(probe(vault_cli, "--all"))
    audit = vault_cli("audit", "--json", "--vault", str(vault_cli.vault_path))
    assert audit.exit_code == 0, audit.output
    seen = "".join(r.stdout + r.stderr for r in outputs) + audit.stdout + caplog.text
    seen += repr(latest(vault_cli))
    for exchange in ("okx", "kucoin", "binance"):
        sample = KEYS[exchange]
        for secret in (sample["secret"], sample.get("passphrase")):
            if secret:
                assert secret not in seen, exchange
    assert "signature=" not in seen.lower() and "OK-ACCESS-SIGN" not in seen


def test_without_ccxt_probe_says_which_extra_to_install(
    cli_vault: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    import sys

    monkeypatch.setitem(sys.modules, "ccxt", None)  # `import ccxt` now fails
    for module in ("vault.cli.probe", "vault.ops.probing", "vault.ops.exchange_api"):
        monkeypatch.delitem(sys.modules, module, raising=False)
    from vault.cli.main import cli

    monkeypatch.delitem(cli.commands, "probe", raising=False)
    result = probe(cli_vault, "--all")
    assert result.exit_code == 8, result.output
    assert "exchanges extra" in result.stderr and "Traceback" not in result.output


def test_ctrl_c_prints_and_keeps_what_was_done(
    vault_cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    record = probe_cli._Recorder.__call__
    pressed: list[bool] = []

    def record_then_interrupt(self: probe_cli._Recorder, result: Any) -> None:
        record(self, result)
        if not pressed:  # one Ctrl-C, after the first result (a second one aborts)
            pressed.append(True)
            raise KeyboardInterrupt

    monkeypatch.setattr(probe_cli._Recorder, "__call__", record_then_interrupt)
    result = probe(vault_cli, "--all", "--json")
    assert result.exit_code == 130, result.output
    rows = as_json(result)
    assert 1 <= len(rows) < len(CREDENTIALS)
    assert "interrupted" in result.stderr
    assert set(latest(vault_cli)) == {row["name"] for row in rows}


def test_progress_is_reported_to_the_terminal_bar(
    vault_cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    from vault.cli import output

    calls: list[tuple[int, int]] = []
    monkeypatch.setattr(
        output.TerminalProgress, "__call__", lambda self, done, total: calls.append((done, total))
    )
    result = probe(vault_cli, "--all", "--json")
    assert result.exit_code == 0, result.output
    assert calls == [(1, 3), (2, 3), (3, 3)]


def test_a_monitor_trusts_no_header_but_its_tokens(cli_vault: Cli) -> None:
    # The endpoints decide where keys are sent: a header swapped in the database must
    # not vouch for them.
    from vault.errors import IntegrityError
    from vault.format import identities
    from vault.runtime.token import ClientToken

    location = str(cli_vault.vault_path)
    inventory = Inventory.open(location)
    try:
        real = identities.fingerprint(inventory.verify_public)
        vault_id = inventory.vault_id
    finally:
        inventory.close()
    other = ClientToken(vault_id, bytes(len(real)), "c1", bytes(32))
    with pytest.raises(IntegrityError):
        probe_cli._pinned_inventory(location, other)
    probe_cli._pinned_inventory(location, ClientToken(vault_id, real, "c1", bytes(32))).close()


def test_in_a_terminal_probe_draws_a_progress_bar(vault_cli: Cli) -> None:
    import os
    import sys

    import pexpect

    env = {k: v for k, v in os.environ.items() if not k.startswith("EXVAULT_")}
    child = pexpect.spawn(
        sys.executable,
        [
            "-m", "vault.cli.main", "probe", "--all", "--no-agent",
            "--vault", str(vault_cli.vault_path),
            "--passphrase-file", str(vault_cli.passphrase_file),
        ],
        env=env,
        timeout=60,
        encoding="utf-8",
    )  # fmt: skip
    child.expect("probing")
    child.expect("100%")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0, child.before
    assert "okx-bot" in str(child.before)


def test_a_bad_probe_erased_from_the_database_is_caught_by_check(
    vault_cli: Cli, exchanges: MockExchanges
) -> None:
    # A database writer without any key deletes the bad observation and its audit
    # entry, out of the middle of the log: check, run by cron, must not say all fine.
    key = exchanges["okx"].state.key(KEYS["okx"]["api_key"])
    assert key is not None
    key.permissions = ("read_only", "trade", "withdraw")
    assert probe(vault_cli, "okx-bot").exit_code == 2
    assert probe(vault_cli, "kucoin-bot").exit_code == 0  # entries after the bad one
    path = str(vault_cli.vault_path)
    db_exec(path, "DELETE FROM probe_observations WHERE name = 'okx-bot'")
    db_exec(path, "DELETE FROM audit_log WHERE action = 'probe' AND credential = 'okx-bot'")
    result = vault_cli("check", "--json", "--vault", path)
    assert result.exit_code == 2, result.output
    codes = {(f["credential"], f["code"]) for f in json.loads(result.stdout)["findings"]}
    assert ("kucoin-bot", "probe-evidence-missing") in codes
