"""``--json`` on every command that prints data: stdout is one JSON document."""

from __future__ import annotations

import json

import pytest

from tests.conftest import BINANCE_SECRET, PASSPHRASE

NEW_KEY = json.dumps(
    {"api_key": "json-test-key-0001", "secret": "JsonTestSecret0123456789abcdefAB"}
)

# (command line, whether it unlocks, stdin, expected JSON type)
CASES = {
    "list": (("list",), False, "", list),
    "show": (("show", "binance-main"), False, "", dict),
    "show-reveal": (("show", "binance-main", "--reveal"), True, "y\n", dict),
    "add": (("add", "new-one", "-e", "binance", "--from-json", "-"), True, NEW_KEY, dict),
    "edit": (("edit", "binance-main", "--permissions", "read"), True, "", dict),
    "history": (("history", "binance-main"), False, "", list),
    "info": (("info",), False, "", dict),
}


@pytest.mark.parametrize("command", list(CASES))
def test_json_output_parses(stocked_cli, command) -> None:
    args, unlocks, stdin, kind = CASES[command]
    r = (stocked_cli.unlocked if unlocks else stocked_cli.v)(*args, "--json", input=stdin)
    assert r.exit_code == 0, r.output
    data = json.loads(r.stdout)
    assert isinstance(data, kind)
    assert data


def test_show_reveal_json_has_the_fields(stocked_cli) -> None:
    r = stocked_cli.unlocked("show", "binance-main", "--reveal", "--json", input="y\n")
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["fields"]["secret"] == BINANCE_SECRET
    assert "Show the secret values" in r.stderr  # the question went to stderr


def test_init_json_parses(cli) -> None:
    r = cli.init(["--json"])
    assert r.exit_code == 0, r.output
    data = json.loads(r.stdout)
    assert set(data) >= {"location", "vault_id", "fingerprint", "kdf", "recovery_key"}
    assert "Calibrating" not in r.output


def test_init_json_with_prompts_keeps_stdout_clean(cli, terminal) -> None:
    r = cli(
        "init",
        "--vault",
        str(cli.vault_path),
        "--insecure-test-kdf",
        "--json",
        input=f"{PASSPHRASE}\n{PASSPHRASE}\n",
    )
    assert r.exit_code == 0, r.output
    assert isinstance(json.loads(r.stdout), dict)


def test_exchanges_json_parses(cli) -> None:
    r = cli("exchanges", "--json")
    assert r.exit_code == 0, r.output
    data = json.loads(r.stdout)
    assert isinstance(data, list)
    assert {"id", "name", "required_fields", "optional_fields"} <= set(data[0])


def test_list_json_on_an_empty_vault_is_an_empty_list(cli_vault) -> None:
    r = cli_vault.v("list", "--json")
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout) == []


def test_json_dates_are_iso(stocked_cli) -> None:
    from datetime import date, datetime

    data = json.loads(stocked_cli.v("show", "binance-main", "--json").stdout)
    date.fromisoformat(data["issued_on"])
    datetime.fromisoformat(data["created_at"])
    datetime.fromisoformat(data["updated_at"])


def test_show_field_json_parses(stocked_cli) -> None:
    r = stocked_cli.unlocked("show", "binance-main", "--field", "secret", "--json")
    assert r.exit_code == 0, r.output
    data = json.loads(r.stdout)
    assert data["name"] == "binance-main"
    assert data["version"] == 1
    assert data["secret"] == BINANCE_SECRET


def test_list_json_is_json_dumps_of_the_show_dicts(stocked_cli) -> None:
    """``list --json`` writes its text itself, from cached fragments: it must be exactly
    what json.dumps makes of the dicts ``show --json`` prints, whatever the stages."""
    from datetime import date

    from vault.cli.listing import info_dict
    from vault.cli.output import json_default
    from vault.db.inventory import Inventory
    from vault.format.model import utc_now
    from vault.owner import rotation
    from vault.owner.admin import AdminVault

    with AdminVault.unlock(stocked_cli.vault_path, PASSPHRASE) as admin:
        admin.edit("binance-main", expires_on=date(2031, 2, 3))
        rotation.start(admin, "binance-main", {"api_key": "k" * 20, "secret": "s" * 32})
        rotation.start(
            admin, "kucoin-sub1", {"api_key": "u" * 24, "secret": "t" * 32, "passphrase": "Pass-2!"}
        )
        rotation.promote(admin, "kucoin-sub1")
        admin.add_client("bot")
        admin.grant("bot", ["kucoin-sub1"])
        admin.revoke_client("bot")  # marks kucoin-sub1 exposed
    today = utc_now().date()
    with Inventory.open(stocked_cli.vault_path) as inv:
        expected = json.dumps(
            [info_dict(i, today) for i in inv.credentials()], default=json_default
        )
    r = stocked_cli.v("list", "--json")
    assert r.exit_code == 0, r.output
    assert r.stdout == expected + "\n"
    data = json.loads(r.stdout)
    assert data[0]["pending_version"] == 3 and data[0]["expires_on"] == "2031-02-03"
    assert data[1]["previous_version"] == 1 and data[1]["exposed_at"] is not None
