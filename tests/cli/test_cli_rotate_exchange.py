"""exvault policy set --rotate-via, and automated rotation through the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.cli.test_cli_lazy import _imported_by
from tests.cli.test_cli_rotation import Hook
from tests.conftest import PASSPHRASE, Cli
from tests.mock_exchange import subaccount_keys as sk
from tests.mock_exchange.fixtures import mock_exchanges
from tests.mock_exchange.registry import ApiKey, Fault
from tests.mock_exchange.server import MockExchanges
from tests.ops.exchange_setup import SUB, Setup, make_setup
from vault.ops.exchange_rotation import holder_alive, process_holder
from vault.owner.admin import AdminVault
from vault.owner.journal import Journal

__all__ = ["mock_exchanges"]

KUCOIN_MASTER = {
    "api_key": "64f1c0ffee5ca1ab1e00aaaa",
    "secret": "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0",
    "passphrase": "Master-Pass1",
}


def add_master(cli: Cli, name: str = "kucoin-master", exchange: str = "kucoin") -> None:
    r = cli.unlocked(
        "add",
        name,
        "--exchange",
        exchange,
        "--permissions",
        "read,subaccount",
        "--ip",
        "203.0.113.7",
        "--from-json",
        "-",
        input=json.dumps(KUCOIN_MASTER),
    )
    assert r.exit_code == 0, r.output


def shown(cli: Cli, name: str) -> dict[str, object]:
    r = cli.v("policy", "show", name, "--json")
    assert r.exit_code == 0, r.output
    return dict(json.loads(r.stdout))


def test_link_show_and_unlink(stocked_cli: Cli) -> None:
    add_master(stocked_cli)
    r = stocked_cli.unlocked(
        "policy",
        "set",
        "kucoin-sub1",
        "--rotate-via",
        "kucoin-master",
        "--sub-account",
        "gridsub",
        "--auto",
        "--on-promote",
        "systemctl restart grid",
    )
    assert r.exit_code == 0, r.output
    lines = r.stdout.splitlines()
    assert any(ln.startswith("Rotated via:") and ln.endswith(" kucoin-master") for ln in lines)
    assert any(ln.startswith("Automatic:") and ln.endswith(" yes") for ln in lines)
    policy = shown(stocked_cli, "kucoin-sub1")
    assert (policy["rotate_via"], policy["sub_account"], policy["auto"]) == (
        "kucoin-master",
        "gridsub",
        True,
    )
    assert policy["on_promote"] == "systemctl restart grid"
    r = stocked_cli.unlocked("policy", "set", "kucoin-sub1", "--no-auto")
    assert r.exit_code == 0 and shown(stocked_cli, "kucoin-sub1")["auto"] is False
    r = stocked_cli.unlocked("policy", "set", "kucoin-sub1", "--unlink", "--no-on-promote")
    assert r.exit_code == 0, r.output
    policy = shown(stocked_cli, "kucoin-sub1")
    assert (policy["rotate_via"], policy["sub_account"], policy["on_promote"]) == (None, None, None)
    audit = stocked_cli.v("audit", "--json")
    assert "rotate via kucoin-master (auto)" in audit.stdout


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (("--rotate-via", "kucoin-sub1"), 7, "cannot rotate itself"),
        (("--rotate-via", "nobody"), 4, "nobody"),
        (("--rotate-via", "binance-main"), 7, "binance"),  # another exchange
        (("--auto",), 7, "--rotate-via"),  # auto without a master
        (("--sub-account", "x"), 7, "--rotate-via"),
        (("--rotate-via", "kucoin-master", "--unlink"), 2, "exclude"),
        (("--on-promote", "x", "--no-on-promote"), 2, "exclude"),
    ],
)
def test_bad_links_are_refused_and_change_nothing(
    stocked_cli: Cli, one_error_line, snapshot, args: tuple[str, ...], code: int, message: str
) -> None:
    add_master(stocked_cli)
    before = snapshot()
    line = one_error_line(stocked_cli.unlocked("policy", "set", "kucoin-sub1", *args), code)
    assert message in line
    assert snapshot() == before


def test_binance_cannot_be_linked_saying_why(stocked_cli: Cli, one_error_line) -> None:
    add_master(stocked_cli, "binance-master", "binance")
    line = one_error_line(
        stocked_cli.unlocked("policy", "set", "binance-main", "--rotate-via", "binance-master"), 7
    )
    assert "broker accounts only" in line


def test_a_master_rotated_through_a_master_is_refused(stocked_cli: Cli, one_error_line) -> None:
    add_master(stocked_cli)
    add_master(stocked_cli, "kucoin-top")
    r = stocked_cli.unlocked("policy", "set", "kucoin-master", "--rotate-via", "kucoin-top")
    assert r.exit_code == 0, r.output
    line = one_error_line(
        stocked_cli.unlocked("policy", "set", "kucoin-sub1", "--rotate-via", "kucoin-master"), 7
    )
    assert "itself rotated through a master" in line


# ------------------------------------------------------------------ at the exchange


@pytest.fixture
def okx_cli(cli: Cli, mock_exchanges: MockExchanges) -> tuple[Cli, Setup]:
    """An initialized vault holding okx-master and okx-grid (linked, auto), with the
    mock OKX holding their keys; both credentials' endpoint is the mock's URL."""
    assert cli.init().exit_code == 0
    mock = mock_exchanges["okx"]
    with AdminVault.unlock(cli.vault_path, PASSPHRASE) as admin:
        setup = make_setup(admin, mock)
    return cli, setup


def test_the_whole_rotation_through_the_cli(okx_cli: tuple[Cli, Setup], tmp_path) -> None:  # type: ignore[no-untyped-def]
    cli, setup = okx_cli
    marker = tmp_path / "restarted"
    r = cli.unlocked("policy", "set", "okx-grid", "--on-promote", f"touch {marker}")
    assert r.exit_code == 0, r.output
    r = cli.unlocked("rotate", "start", "okx-grid", "--at-exchange")
    assert r.exit_code == 0, r.output
    assert r.stdout.startswith("okx-grid: version 2 staged as pending")
    assert len(setup.sub_keys()) == 2
    r = cli.unlocked("rotate", "verify", "okx-grid", "--json")
    assert r.exit_code == 0, r.output
    assert {c["check"] for c in json.loads(r.stdout)} >= {"exchange-probe", "exchange-scope"}
    r = cli.unlocked("rotate", "promote", "okx-grid")
    assert r.exit_code == 0, r.output
    assert "okx-grid: on-promote command ran." in r.stdout and marker.exists()
    r = cli.unlocked("rotate", "finish", "okx-grid")
    assert r.exit_code == 9 and "grace period" in r.stderr
    assert setup.mock.state.key(setup.first_key) is not None
    r = cli.unlocked("rotate", "finish", "okx-grid", "--force")
    assert r.exit_code == 0, r.output
    assert setup.mock.state.key(setup.first_key) is None and len(setup.sub_keys()) == 1


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (("--at-exchange", "--permissions", "read"), 2, "--permissions cannot be given"),
        (("--at-exchange", "--ip", "1.2.3.4"), 2, "--ip cannot be given"),
        (("--allow-withdraw",), 2, "goes with --at-exchange"),
    ],
)
def test_start_at_exchange_refuses_other_options(
    okx_cli: tuple[Cli, Setup], one_error_line, args: tuple[str, ...], code: int, message: str
) -> None:
    cli, setup = okx_cli
    line = one_error_line(cli.unlocked("rotate", "start", "okx-grid", *args), code)
    assert message in line
    assert len(setup.sub_keys()) == 1


def test_start_at_exchange_of_an_unlinked_credential(
    okx_cli: tuple[Cli, Setup], one_error_line
) -> None:
    cli, _ = okx_cli
    line = one_error_line(cli.unlocked("rotate", "start", "okx-master", "--at-exchange"), 7)
    assert "--rotate-via MASTER" in line


def test_an_unreachable_exchange_is_exit_14_with_no_secret(
    okx_cli: tuple[Cli, Setup], one_error_line
) -> None:
    cli, setup = okx_cli
    setup.mock.stop()
    line = one_error_line(cli.unlocked("rotate", "start", "okx-grid", "--at-exchange"), 14)
    assert "the key listing: could not reach okx" in line
    assert setup.master_fields["secret"] not in line


def test_rotate_due_lists_keylessly_then_rotates(okx_cli: tuple[Cli, Setup]) -> None:
    cli, setup = okx_cli
    r = cli.v("rotate", "due", "--json")  # no passphrase
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout) == [
        {
            "credential": "okx-grid",
            "action": "start",
            "reason": "100 days old (rotate at 76)",
            "auto": True,
        }
    ]
    r = cli.v("rotate", "due", "--auto", "--dry-run")
    assert r.exit_code == 0 and "okx-grid" in r.stdout and len(setup.sub_keys()) == 1
    r = cli.unlocked("rotate", "due", "--auto", "--json")
    assert r.exit_code == 0, r.output
    (result,) = json.loads(r.stdout)
    assert result["ok"] and [s.split(":")[0] for s in result["steps"]] == [
        "started",
        "verified",
        "promoted",
    ]
    r = cli.unlocked("rotate", "due", "--auto")
    assert r.exit_code == 0 and r.stdout == "Nothing is due.\n"  # in its grace period
    r = cli.v("rotate", "due")
    assert "wait" in r.stdout


def test_rotate_due_auto_reports_a_failure_and_the_next_run_settles_it(
    okx_cli: tuple[Cli, Setup],
) -> None:
    cli, setup = okx_cli
    setup.mock.inject(Fault.server_error(502, **sk.create_fault("okx", SUB), times=1))
    r = cli.unlocked("rotate", "due", "--auto")
    assert r.exit_code == 1
    assert r.stdout.startswith(
        "okx-grid: FAILED: the key creation: okx answered HTTP 502; whether it acted is unknown"
    )
    r = cli.unlocked("rotate", "due", "--auto")
    assert r.exit_code == 0, r.output
    assert "no key had been created" in r.stdout and "promoted" in r.stdout


@pytest.mark.parametrize("args", [("--dry-run",), ("--allow-withdraw",)])
def test_rotate_due_options_need_auto(okx_cli: tuple[Cli, Setup], one_error_line, args) -> None:  # type: ignore[no-untyped-def]
    cli, _ = okx_cli
    assert "go with --auto" in one_error_line(cli.v("rotate", "due", *args), 2)


def test_start_at_exchange_waits_for_no_one(okx_cli: tuple[Cli, Setup], one_error_line) -> None:
    cli, setup = okx_cli
    with AdminVault.unlock(cli.vault_path, PASSPHRASE) as admin:
        # Another live process (this one) holds the lease.
        held = Journal(admin.writer).claim("okx-grid", "0123abcd", process_holder(), holder_alive)
    assert held is not None
    line = one_error_line(cli.unlocked("rotate", "start", "okx-grid", "--at-exchange"), 9)
    assert "another exvault process is rotating" in line
    assert len(setup.sub_keys()) == 1


def test_no_secret_in_any_output_of_a_rotation(okx_cli: tuple[Cli, Setup]) -> None:
    cli, setup = okx_cli
    outputs = [
        cli.unlocked("rotate", "start", "okx-grid", "--at-exchange"),
        cli.unlocked("rotate", "verify", "okx-grid", "--json"),
        cli.unlocked("rotate", "due", "--auto", "--json"),
        cli.unlocked("rotate", "finish", "okx-grid", "--force"),
        cli.v("rotate", "due", "--json"),
        cli.v("audit", "--json"),
        cli.v("show", "okx-grid", "--json"),
        cli.v("history", "okx-grid", "--json"),
    ]
    with AdminVault.unlock(cli.vault_path, PASSPHRASE) as admin:
        current = admin.get("okx-grid")
        rows = Journal(admin.writer).entries()
    secrets_ = [
        current.secret.reveal(),
        current.passphrase.reveal(),  # type: ignore[union-attr]
        setup.master_fields["secret"],
        setup.master_fields["passphrase"],
    ]
    text = "\n".join([r.output for r in outputs] + [repr(row) for row in rows])
    assert "okx-grid" in text
    for secret in secrets_:
        assert secret not in text


def test_rotate_due_auto_notifies_a_failure_as_check_does(okx_cli: tuple[Cli, Setup]) -> None:
    cli, setup = okx_cli
    hook = Hook()
    try:
        setup.mock.inject(Fault.server_error(502, **sk.create_fault("okx", SUB), times=1))
        r = cli.unlocked("rotate", "due", "--auto", "--notify-url", hook.url)
        assert r.exit_code == 1
        (_, _, body) = hook.received[0]
        sent = json.loads(body)
        assert sent["worst"] == "warn"
        (finding,) = sent["findings"]
        assert (finding["code"], finding["credential"]) == ("rotation-failed", "okx-grid")
        assert setup.master_fields["secret"] not in body.decode()
        r = cli.unlocked("rotate", "due", "--auto", "--notify-url", hook.url)
        assert r.exit_code == 0 and len(hook.received) == 1  # a success sends nothing
    finally:
        hook.close()


@pytest.mark.parametrize("args", [(), ("--auto", "--dry-run")])
def test_rotate_due_without_acting_never_loads_ccxt(
    okx_cli: tuple[Cli, Setup], tmp_path: Path, args: tuple[str, ...]
) -> None:
    cli, _ = okx_cli
    process, imports = _imported_by(
        ["rotate", "due", *args, "--vault", str(cli.vault_path)], tmp_path
    )
    assert process.returncode == 0, process.stderr
    assert "okx-grid" in process.stdout
    assert not {m for m in imports if m.split(".")[0] == "ccxt" or m == "vault.ops.exchange_api"}


def test_credentials_added_with_endpoint_are_rotated_there(
    cli: Cli, mock_exchanges: MockExchanges
) -> None:
    # Everything through the command line: `add --endpoint http://127.0.0.1:PORT`
    # points both credentials at the mock, as a user points one at a local server.
    mock = mock_exchanges["bybit"]
    mock.add_account(sk.SAMPLE_MASTER)
    mock.add_account(SUB)
    mock.state.client_ip = sk.SAMPLE_IP
    master = {"api_key": "BYBITMASTERKEY01", "secret": "bybit-master-secret-0123456789"}
    grid = {"api_key": "BYBITGRIDKEY0001", "secret": "bybit-grid-secret-012345678901"}
    for fields, account, rights in (
        (master, sk.SAMPLE_MASTER, sk.SAMPLE_MASTER_RIGHTS["bybit"]),
        (grid, SUB, sk.SAMPLE_GRANTS["bybit"]),
    ):
        mock.add_key(
            ApiKey(
                fields["api_key"],
                fields["secret"],
                account,
                permissions=rights,
                ip_whitelist=(sk.SAMPLE_IP,),
                label="by hand",
            )
        )
    assert cli.init().exit_code == 0
    for name, fields, permissions in (
        ("bybit-master", master, "read,transfer"),
        ("bybit-grid", grid, "read,trade"),
    ):
        r = cli.unlocked(
            "add",
            name,
            "--exchange",
            "bybit",
            "--permissions",
            permissions,
            "--ip",
            sk.SAMPLE_IP,
            "--endpoint",
            mock.url,
            "--from-json",
            "-",
            input=json.dumps(fields),
        )
        assert r.exit_code == 0, r.output
    r = cli.unlocked(
        "policy", "set", "bybit-grid", "--rotate-via", "bybit-master", "--sub-account", SUB.uid
    )
    assert r.exit_code == 0, r.output
    r = cli.unlocked("rotate", "start", "bybit-grid", "--at-exchange")
    assert r.exit_code == 0, r.output
    r = cli.unlocked("rotate", "verify", "bybit-grid", "--json")
    assert r.exit_code == 0, r.output
    checks = {c["check"]: c["passed"] for c in json.loads(r.stdout)}
    assert checks["exchange-probe"] and checks["exchange-scope"]
    assert len(mock.state.keys_of(SUB.uid)) == 2
    assert {r.api_key for r in mock.requests()} >= {master["api_key"], grid["api_key"]}
