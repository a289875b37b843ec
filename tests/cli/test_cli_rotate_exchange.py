"""exvault policy set --rotate-via, and automated rotation through the CLI."""

from __future__ import annotations

import json

import pytest

from tests.conftest import Cli

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
