"""Credentials through the CLI: add, list, show, edit, history, remove, exchanges."""

from __future__ import annotations

import importlib.metadata
import json
import sqlite3
from datetime import date, datetime, timezone

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from tests.conftest import (
    BINANCE_API_KEY,
    BINANCE_SECRET,
    KUCOIN_API_KEY,
    KUCOIN_PASSPHRASE,
    KUCOIN_SECRET,
    PASSPHRASE,
)

ALL_SECRETS = (BINANCE_API_KEY, BINANCE_SECRET, KUCOIN_API_KEY, KUCOIN_SECRET, KUCOIN_PASSPHRASE)


def today() -> date:
    return datetime.now(timezone.utc).date()


def assert_no_secret(text: str) -> None:
    for value in ALL_SECRETS:
        assert value not in text


def field(cli, name: str, field_name: str) -> str:  # type: ignore[no-untyped-def]
    """``show NAME --field FIELD``: the value printed, without the final newline."""
    r = cli.unlocked("show", name, "--field", field_name)
    assert r.exit_code == 0, r.output
    assert r.stdout.endswith("\n")
    return str(r.stdout[:-1])


def listed(cli) -> list[dict[str, object]]:  # type: ignore[no-untyped-def]
    r = cli.v("list", "--json")
    assert r.exit_code == 0, r.output
    data = json.loads(r.stdout)
    assert isinstance(data, list)
    return data


def by_name(cli) -> dict[str, dict[str, object]]:  # type: ignore[no-untyped-def]
    return {str(item["name"]): item for item in listed(cli)}


# ------------------------------------------------------------------------------ add


def test_add_from_json_stores_every_field(cli_vault, binance_payload) -> None:
    r = cli_vault.unlocked(
        "add",
        "binance-main",
        "--exchange",
        "binance",
        "--permissions",
        "read,trade",
        "--ip",
        "203.0.113.7",
        "--from-json",
        "-",
        input=json.dumps(binance_payload),
    )
    assert r.exit_code == 0, r.output
    assert r.stdout == 'Stored "binance-main" (binance), version 1.\n'
    assert_no_secret(r.output)
    assert field(cli_vault, "binance-main", "api_key") == BINANCE_API_KEY
    assert field(cli_vault, "binance-main", "secret") == BINANCE_SECRET


def test_add_from_json_file(cli_vault, binance_payload, tmp_path) -> None:
    source = tmp_path / "key.json"
    source.write_text(json.dumps(binance_payload))
    r = cli_vault.unlocked("add", "b", "--exchange", "binance", "--from-json", str(source))
    assert r.exit_code == 0, r.output
    assert field(cli_vault, "b", "secret") == BINANCE_SECRET


def test_add_from_json_accepts_ccxt_names(cli_vault) -> None:
    payload = {"apiKey": KUCOIN_API_KEY, "secret": KUCOIN_SECRET, "password": KUCOIN_PASSPHRASE}
    r = cli_vault.unlocked(
        "add", "k", "--exchange", "kucoin", "--from-json", "-", input=json.dumps(payload)
    )
    assert r.exit_code == 0, r.output
    assert field(cli_vault, "k", "passphrase") == KUCOIN_PASSPHRASE


def test_add_records_metadata(cli_vault, binance_payload) -> None:
    r = cli_vault.unlocked(
        "add",
        "binance-main",
        "--exchange",
        "Binance",
        "--permissions",
        "trade,read",
        "--ip",
        "203.0.113.7",
        "--ip",
        "198.51.100.0/24",
        "--issued",
        "2025-09-01",
        "--expires",
        "2026-03-01",
        "--from-json",
        "-",
        "--json",
        input=json.dumps(binance_payload),
    )
    assert r.exit_code == 0, r.output
    data = json.loads(r.stdout)
    assert data["name"] == "binance-main"
    assert data["exchange"] == "binance"
    assert data["permissions"] == ["read", "trade"]
    assert data["ips"] == ["203.0.113.7", "198.51.100.0/24"]
    assert data["issued_on"] == "2025-09-01"
    assert data["expires_on"] == "2026-03-01"
    assert data["version"] == 1
    assert data["age_days"] == (today() - date(2025, 9, 1)).days
    assert_no_secret(r.output)


def test_add_issued_in_the_future_is_refused(cli_vault, binance_payload) -> None:
    r = cli_vault.unlocked(
        "add",
        "b",
        "-e",
        "binance",
        "--issued",
        "2999-01-01",
        "--from-json",
        "-",
        input=json.dumps(binance_payload),
    )
    assert r.exit_code == 7, r.output
    assert r.stderr.splitlines() == ["exvault: error: the issue date 2999-01-01 is in the future"]
    assert listed(cli_vault) == []


def test_add_issued_defaults_to_today(cli_vault, binance_payload) -> None:
    r = cli_vault.unlocked(
        "add", "b", "-e", "binance", "--from-json", "-", "--json", input=json.dumps(binance_payload)
    )
    assert r.exit_code == 0, r.output
    data = json.loads(r.stdout)
    assert data["issued_on"] == today().isoformat()
    assert data["expires_on"] is None
    assert data["age_days"] == 0


def test_add_via_hidden_prompts(cli_vault, terminal) -> None:
    r = cli_vault.unlocked(
        "add",
        "binance-main",
        "--exchange",
        "binance",
        input=f"{BINANCE_API_KEY}\n{BINANCE_SECRET}\n",
    )
    assert r.exit_code == 0, r.output
    assert "API key" in r.stderr
    assert "API secret" in r.stderr
    assert "API passphrase" not in r.stderr  # binance has none
    assert_no_secret(r.output)  # hidden input is not echoed
    assert field(cli_vault, "binance-main", "api_key") == BINANCE_API_KEY
    assert field(cli_vault, "binance-main", "secret") == BINANCE_SECRET


def test_add_reads_secret_lines_from_stdin_without_a_terminal(cli_vault) -> None:
    r = cli_vault.unlocked(
        "add",
        "kucoin-sub1",
        "--exchange",
        "kucoin",
        input=f"{KUCOIN_API_KEY}\n{KUCOIN_SECRET}\n{KUCOIN_PASSPHRASE}\n",
    )
    assert r.exit_code == 0, r.output
    assert_no_secret(r.output)
    assert field(cli_vault, "kucoin-sub1", "passphrase") == KUCOIN_PASSPHRASE


def test_add_kucoin_prompts_for_the_api_passphrase(cli_vault, terminal) -> None:
    r = cli_vault.unlocked(
        "add",
        "kucoin-sub1",
        "--exchange",
        "kucoin",
        input=f"{KUCOIN_API_KEY}\n{KUCOIN_SECRET}\n{KUCOIN_PASSPHRASE}\n",
    )
    assert r.exit_code == 0, r.output
    prompts = r.stderr
    assert prompts.index("API key") < prompts.index("API secret") < prompts.index("API passphrase")
    assert_no_secret(r.output)
    assert field(cli_vault, "kucoin-sub1", "api_key") == KUCOIN_API_KEY
    assert field(cli_vault, "kucoin-sub1", "secret") == KUCOIN_SECRET
    assert field(cli_vault, "kucoin-sub1", "passphrase") == KUCOIN_PASSPHRASE


@pytest.mark.parametrize("exchange", ["okx", "bitget"])
def test_add_other_passphrase_exchanges_prompt_for_it(cli_vault, terminal, exchange) -> None:
    api_key, secret = "a1b2c3d4-0000-4e8b-9f6c-0a1b2c3d4e5f", "0123456789ABCDEF0123456789ABCDEF"
    r = cli_vault.unlocked(
        "add", "x", "--exchange", exchange, input=f"{api_key}\n{secret}\n{KUCOIN_PASSPHRASE}\n"
    )
    assert r.exit_code == 0, r.output
    assert "API passphrase" in r.stderr
    assert field(cli_vault, "x", "passphrase") == KUCOIN_PASSPHRASE


def test_add_ask_prompts_for_an_optional_field(cli_vault, terminal) -> None:
    r = cli_vault.unlocked(
        "add",
        "b",
        "--exchange",
        "binance",
        "--ask",
        "uid",
        input=f"{BINANCE_API_KEY}\n{BINANCE_SECRET}\n123456789\n",
    )
    assert r.exit_code == 0, r.output
    assert "UID" in r.stderr
    assert field(cli_vault, "b", "uid") == "123456789"


def test_add_pem_key_pasted_over_several_hidden_lines(cli_vault, terminal) -> None:
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    lines = pem.strip().splitlines()
    assert len(lines) >= 3
    r = cli_vault.unlocked(
        "add",
        "binance-ed",
        "--exchange",
        "binance",
        "--permissions",
        "read,trade",
        "--ip",
        "203.0.113.7",
        input="binance-ed25519-key-id\n" + "\n".join(lines) + "\n",
    )
    assert r.exit_code == 0, r.output
    assert lines[1] not in r.output
    stored = field(cli_vault, "binance-ed", "secret")
    assert stored.strip() == pem.strip()
    loaded = serialization.load_pem_private_key(stored.encode(), password=None)
    raw = serialization.Encoding.Raw, serialization.PublicFormat.Raw
    assert loaded.public_key().public_bytes(*raw) == key.public_key().public_bytes(*raw)
    assert field(cli_vault, "binance-ed", "api_key") == "binance-ed25519-key-id"


# ------------------------------------------------------------------------------ list


def test_list_table(stocked_cli) -> None:
    r = stocked_cli.v("list")
    assert r.exit_code == 0, r.output
    lines = r.stdout.splitlines()
    assert lines[0].split() == ["NAME", "EXCHANGE", "PERMISSIONS", "IPS", "AGE", "VERSION"]
    age = f"{(today() - date(2025, 9, 1)).days}d"
    assert lines[1].split() == ["binance-main", "binance", "read,trade", "203.0.113.7", age, "1"]
    assert lines[2].split() == ["kucoin-sub1", "kucoin", "read", "198.51.100.0/24", age, "1"]
    assert len(lines) == 3
    assert_no_secret(r.output)


def test_list_json(stocked_cli) -> None:
    r = stocked_cli.v("list", "--json")
    assert r.exit_code == 0, r.output
    data = json.loads(r.stdout)
    assert [d["name"] for d in data] == ["binance-main", "kucoin-sub1"]
    b = data[0]
    assert b["exchange"] == "binance"
    assert b["permissions"] == ["read", "trade"]
    assert b["ips"] == ["203.0.113.7"]
    assert b["version"] == 1
    assert b["issued_on"] == "2025-09-01"
    assert b["age_days"] == (today() - date(2025, 9, 1)).days
    assert_no_secret(r.output)


def test_list_needs_no_passphrase(stocked_cli, terminal) -> None:
    # A terminal is there to ask, yet list asks nothing: metadata is readable keyless.
    r = stocked_cli.v("list", input="")
    assert r.exit_code == 0, r.output
    assert "passphrase" not in r.output.lower()


def test_list_empty_vault(cli_vault) -> None:
    r = cli_vault.v("list")
    assert r.exit_code == 0, r.output
    assert r.stdout == ""
    assert "No credentials" in r.stderr
    r = cli_vault.v("list", "--json")
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout) == []


# ------------------------------------------------------------------------------ show


def test_show_metadata_without_secrets(stocked_cli) -> None:
    r = stocked_cli.v("show", "kucoin-sub1")
    assert r.exit_code == 0, r.output
    pairs = dict(
        (k.strip(), v.strip()) for k, v in (line.split(":", 1) for line in r.stdout.splitlines())
    )
    assert pairs["Name"] == "kucoin-sub1"
    assert pairs["Exchange"] == "kucoin"
    assert pairs["Permissions"] == "read"
    assert pairs["IPs"] == "198.51.100.0/24"
    assert pairs["Version"] == "1"
    assert pairs["Issued on"] == "2025-09-01"
    assert_no_secret(r.output)


def test_show_json_metadata(stocked_cli) -> None:
    r = stocked_cli.v("show", "binance-main", "--json")
    assert r.exit_code == 0, r.output
    data = json.loads(r.stdout)
    assert data["name"] == "binance-main"
    assert data["permissions"] == ["read", "trade"]
    assert "fields" not in data
    assert_no_secret(r.output)


def test_show_reveal_confirmed(stocked_cli) -> None:
    r = stocked_cli.unlocked("show", "kucoin-sub1", "--reveal", input="y\n")
    assert r.exit_code == 0, r.output
    assert "Show the secret values on screen?" in r.stderr
    assert KUCOIN_API_KEY in r.stdout
    assert KUCOIN_SECRET in r.stdout
    assert KUCOIN_PASSPHRASE in r.stdout
    assert "Name:" in r.stdout  # the metadata too


def test_show_reveal_refused_aborts_without_secret(stocked_cli) -> None:
    r = stocked_cli.unlocked("show", "kucoin-sub1", "--reveal", input="n\n")
    assert r.exit_code == 1, r.output
    assert "Show the secret values on screen?" in r.stderr
    for value in (KUCOIN_API_KEY, KUCOIN_SECRET, KUCOIN_PASSPHRASE):
        assert value not in r.output
    assert "Traceback" not in r.output


def test_show_reveal_yes_skips_the_question(stocked_cli) -> None:
    r = stocked_cli.unlocked("show", "binance-main", "--reveal", "--yes", "--json")
    assert r.exit_code == 0, r.output
    assert "Show the secret values" not in r.output
    data = json.loads(r.stdout)
    assert data["fields"] == {"api_key": BINANCE_API_KEY, "secret": BINANCE_SECRET}


@pytest.mark.parametrize(
    ("name", "field_name", "value"),
    [
        ("binance-main", "api_key", BINANCE_API_KEY),
        ("binance-main", "secret", BINANCE_SECRET),
        ("kucoin-sub1", "secret", KUCOIN_SECRET),
        ("kucoin-sub1", "passphrase", KUCOIN_PASSPHRASE),
    ],
)
def test_show_field_prints_exactly_the_value(stocked_cli, name, field_name, value) -> None:
    r = stocked_cli.unlocked("show", name, "--field", field_name)
    assert r.exit_code == 0, r.output
    assert r.stdout == value + "\n"
    assert r.stderr == ""


def test_show_field_absent_is_not_found(stocked_cli, one_error_line) -> None:
    r = stocked_cli.unlocked("show", "binance-main", "--field", "passphrase")
    line = one_error_line(r, 4)
    assert "passphrase" in line


def test_show_field_with_prompted_passphrase(stocked_cli, terminal) -> None:
    r = stocked_cli.v("show", "binance-main", "--field", "secret", input=PASSPHRASE + "\n")
    assert r.exit_code == 0, r.output
    assert r.stdout == BINANCE_SECRET + "\n"
    assert "Vault passphrase" in r.stderr
    assert PASSPHRASE not in r.output


# ------------------------------------------------------------------------------ edit


def test_edit_writes_a_new_version_with_new_metadata(stocked_cli) -> None:
    r = stocked_cli.unlocked(
        "edit",
        "binance-main",
        "--permissions",
        "read",
        "--ip",
        "203.0.113.8",
        "--expires",
        "2027-03-01",
    )
    assert r.exit_code == 0, r.output
    assert r.stdout == 'Updated "binance-main": now version 2.\n'
    info = by_name(stocked_cli)["binance-main"]
    assert info["version"] == 2
    assert info["permissions"] == ["read"]
    assert info["ips"] == ["203.0.113.8"]
    assert info["expires_on"] == "2027-03-01"
    assert info["issued_on"] == "2025-09-01"  # unchanged
    assert field(stocked_cli, "binance-main", "api_key") == BINANCE_API_KEY
    assert field(stocked_cli, "binance-main", "secret") == BINANCE_SECRET
    # The other credential is untouched.
    assert by_name(stocked_cli)["kucoin-sub1"]["version"] == 1


def test_edit_keeps_what_is_not_named(stocked_cli) -> None:
    r = stocked_cli.unlocked("edit", "binance-main", "--expires", "2027-03-01", "--json")
    assert r.exit_code == 0, r.output
    data = json.loads(r.stdout)
    assert data["version"] == 2
    assert data["permissions"] == ["read", "trade"]
    assert data["ips"] == ["203.0.113.7"]
    assert data["expires_on"] == "2027-03-01"


def test_edit_clear_ips_and_no_expires(stocked_cli) -> None:
    assert stocked_cli.unlocked("edit", "binance-main", "--expires", "2027-03-01").exit_code == 0
    r = stocked_cli.unlocked("edit", "binance-main", "--clear-ips", "--no-expires", "--json")
    assert r.exit_code == 0, r.output
    data = json.loads(r.stdout)
    assert data["ips"] == []
    assert data["expires_on"] is None
    table = stocked_cli.v("list").stdout.splitlines()
    assert table[1].split()[3] == "any"


def test_edit_secrets_from_json(stocked_cli) -> None:
    new = {"api_key": "new-binance-key-0001", "secret": "N3wS3cretValueForBinance0123456789abcdef"}
    r = stocked_cli.unlocked("edit", "binance-main", "--from-json", "-", input=json.dumps(new))
    assert r.exit_code == 0, r.output
    assert new["secret"] not in r.output
    assert field(stocked_cli, "binance-main", "api_key") == new["api_key"]
    assert field(stocked_cli, "binance-main", "secret") == new["secret"]
    info = by_name(stocked_cli)["binance-main"]
    assert info["version"] == 2
    assert info["permissions"] == ["read", "trade"]


def test_edit_secrets_via_prompts(stocked_cli, terminal) -> None:
    r = stocked_cli.unlocked(
        "edit", "kucoin-sub1", "--secrets", input=f"{KUCOIN_API_KEY}\nN3wKuc0inS3cret\nN3wPass!\n"
    )
    assert r.exit_code == 0, r.output
    assert "API passphrase" in r.stderr
    assert field(stocked_cli, "kucoin-sub1", "secret") == "N3wKuc0inS3cret"
    assert field(stocked_cli, "kucoin-sub1", "passphrase") == "N3wPass!"


def test_edit_with_nothing_to_change_is_refused(stocked_cli) -> None:
    # Otherwise a bare `edit NAME` would write a new version and retire the old one.
    r = stocked_cli.unlocked("edit", "binance-main")
    assert r.exit_code == 2, r.output
    assert len(r.stderr.splitlines()) == 1
    assert r.stderr.startswith("exvault: error: nothing to change")
    assert by_name(stocked_cli)["binance-main"]["version"] == 1
    history = json.loads(stocked_cli.v("history", "binance-main", "--json").stdout)
    assert len(history) == 1


# ------------------------------------------------------------------------------ history


def test_history_shows_current_and_retired(stocked_cli) -> None:
    assert stocked_cli.unlocked("edit", "binance-main", "--permissions", "read").exit_code == 0
    r = stocked_cli.v("history", "binance-main")
    assert r.exit_code == 0, r.output
    lines = r.stdout.splitlines()
    assert lines[0].split() == ["VERSION", "CREATED", "STAGES", "PERMISSIONS", "IPS", "EXPIRES"]
    v2, v1 = lines[1].split(), lines[2].split()
    assert (v2[0], v2[3], v2[4]) == ("2", "current", "read")
    assert (v1[0], v1[3], v1[4]) == ("1", "retired", "read,trade")
    # CREATED is a date and a time.
    datetime.strptime(f"{v2[1]} {v2[2]}", "%Y-%m-%d %H:%M")
    assert len(lines) == 3


def test_history_json(stocked_cli) -> None:
    assert stocked_cli.unlocked("edit", "binance-main", "--ip", "203.0.113.8").exit_code == 0
    r = stocked_cli.v("history", "binance-main", "--json")
    assert r.exit_code == 0, r.output
    data = json.loads(r.stdout)
    assert [(v["version"], v["stages"], v["readable"]) for v in data] == [
        (2, ["current"], True),
        (1, [], False),
    ]
    assert data[0]["ips"] == ["203.0.113.8"]
    assert data[1]["ips"] == ["203.0.113.7"]
    datetime.fromisoformat(data[0]["created_at"])


def test_history_of_a_new_credential(stocked_cli) -> None:
    r = stocked_cli.v("history", "kucoin-sub1", "--json")
    assert r.exit_code == 0, r.output
    assert [(v["version"], v["stages"]) for v in json.loads(r.stdout)] == [(1, ["current"])]


# ------------------------------------------------------------------------------ remove


def test_remove_with_yes(stocked_cli) -> None:
    r = stocked_cli.unlocked("remove", "binance-main", "--yes")
    assert r.exit_code == 0, r.output
    assert 'Removed "binance-main"' in r.stdout
    assert list(by_name(stocked_cli)) == ["kucoin-sub1"]
    assert stocked_cli.v("show", "binance-main").exit_code == 4


def test_remove_confirmed_at_the_prompt(stocked_cli) -> None:
    r = stocked_cli.unlocked("remove", "binance-main", input="y\n")
    assert r.exit_code == 0, r.output
    assert "Delete" in r.stderr
    assert list(by_name(stocked_cli)) == ["kucoin-sub1"]


def test_remove_refused_at_the_prompt_keeps_it(stocked_cli) -> None:
    r = stocked_cli.unlocked("remove", "binance-main", input="n\n")
    assert r.exit_code == 1, r.output
    assert "Removed" not in r.output
    assert list(by_name(stocked_cli)) == ["binance-main", "kucoin-sub1"]
    assert field(stocked_cli, "binance-main", "secret") == BINANCE_SECRET


def test_remove_then_add_the_same_name(stocked_cli, binance_payload) -> None:
    assert stocked_cli.unlocked("remove", "binance-main", "--yes").exit_code == 0
    r = stocked_cli.unlocked(
        "add",
        "binance-main",
        "-e",
        "binance",
        "--from-json",
        "-",
        input=json.dumps(binance_payload),
    )
    assert r.exit_code == 0, r.output
    assert by_name(stocked_cli)["binance-main"]["version"] == 1


# ------------------------------------------------------------------------------ exchanges


def test_exchanges_table(cli) -> None:
    r = cli("exchanges")
    assert r.exit_code == 0, r.output
    rows = {line.split()[0]: line for line in r.stdout.splitlines()[1:]}
    for exchange in ("binance", "kucoin", "okx", "bitget", "other"):
        assert exchange in rows
    assert "api_key,secret,passphrase" in rows["kucoin"]


def test_exchanges_json(cli) -> None:
    r = cli("exchanges", "--json")
    assert r.exit_code == 0, r.output
    data = {p["id"]: p for p in json.loads(r.stdout)}
    for exchange in ("kucoin", "okx", "bitget"):
        assert "passphrase" in data[exchange]["required_fields"]
    assert data["binance"]["required_fields"] == ["api_key", "secret"]
    assert data["other"]["required_fields"] == ["api_key", "secret"]


def test_version_option(cli) -> None:
    """The version printed is the installed distribution's (one source: pyproject reads
    it from vault/__init__.py, which ``--version`` prints without importlib.metadata)."""
    r = cli("--version")
    assert r.exit_code == 0, r.output
    assert r.stdout == f"exvault, version {importlib.metadata.version('exchange-vault')}\n"


# ------------------------------------------------------------------------------ round trip


def test_full_round_trip(cli, terminal, binance_payload) -> None:
    """init -> add (JSON and prompts) -> list -> show -> edit -> history -> remove -> list."""
    r = cli(
        "init",
        "--vault",
        str(cli.vault_path),
        "--insecure-test-kdf",
        input=f"{PASSPHRASE}\n{PASSPHRASE}\n",
    )
    assert r.exit_code == 0, r.output
    r = cli.unlocked(
        "add",
        "binance-main",
        "--exchange",
        "binance",
        "--permissions",
        "read,trade",
        "--ip",
        "203.0.113.7",
        "--issued",
        "2025-09-01",
        "--expires",
        "2026-03-01",
        "--from-json",
        "-",
        input=json.dumps(binance_payload),
    )
    assert r.exit_code == 0, r.output
    r = cli.unlocked(
        "add",
        "kucoin-sub1",
        "--exchange",
        "kucoin",
        input=f"{KUCOIN_API_KEY}\n{KUCOIN_SECRET}\n{KUCOIN_PASSPHRASE}\n",
    )
    assert r.exit_code == 0, r.output
    assert [d["name"] for d in listed(cli)] == ["binance-main", "kucoin-sub1"]
    assert field(cli, "kucoin-sub1", "passphrase") == KUCOIN_PASSPHRASE
    r = cli.unlocked(
        "edit",
        "binance-main",
        "--permissions",
        "read",
        "--ip",
        "203.0.113.8",
        "--expires",
        "2027-03-01",
    )
    assert r.exit_code == 0, r.output
    assert field(cli, "binance-main", "secret") == BINANCE_SECRET
    hist = json.loads(cli.v("history", "binance-main", "--json").stdout)
    assert [v["stages"] for v in hist] == [["current"], []]
    assert cli.unlocked("remove", "binance-main", "--yes").exit_code == 0
    assert cli.unlocked("remove", "kucoin-sub1", input="y\n").exit_code == 0
    assert listed(cli) == []


def test_edit_names_the_clients_it_wrapped_for(stocked_cli) -> None:
    for args in (("client", "add", "bot-b"), ("client", "add", "bot-a")):
        assert stocked_cli.unlocked(*args).exit_code == 0
    r = stocked_cli.unlocked("grant", "bot-b", "binance-main")
    assert r.exit_code == 0, r.output
    assert stocked_cli.unlocked("grant", "bot-a", "binance-main").exit_code == 0
    r = stocked_cli.unlocked("edit", "binance-main", "--ip", "203.0.113.8")
    assert r.exit_code == 0, r.output
    assert r.stdout == (
        'Updated "binance-main": now version 2; wrapped for clients: bot-a, bot-b.\n'
    )
    r = stocked_cli.unlocked("edit", "binance-main", "--ip", "203.0.113.9", "--json")
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["wrapped_for"] == ["bot-a", "bot-b"]


def test_edit_refuses_a_grant_put_back_after_ungrant(stocked_cli, snapshot, one_error_line) -> None:
    """The grant row and the head from before the ungrant (its signed grantee set
    still names the client) put back: the signed audit log refuses the wrap."""
    assert stocked_cli.unlocked("client", "add", "bot").exit_code == 0
    assert stocked_cli.unlocked("grant", "bot", "binance-main").exit_code == 0
    db = sqlite3.connect(stocked_cli.vault_path)
    (grant,) = db.execute("SELECT * FROM grants").fetchall()
    head = db.execute("SELECT * FROM credentials WHERE name = 'binance-main'").fetchone()
    assert stocked_cli.unlocked("ungrant", "bot", "binance-main").exit_code == 0
    with db:
        db.execute("INSERT INTO grants VALUES (?, ?, ?, ?)", grant)
        db.execute("DELETE FROM credentials WHERE id = ?", (head[0],))
        db.execute(f"INSERT INTO credentials VALUES ({', '.join('?' * len(head))})", head)
    db.close()
    before = snapshot()
    r = stocked_cli.unlocked("edit", "binance-main", "--ip", "203.0.113.8")
    line = one_error_line(r, 3)
    assert 'damaged vault: "binance-main" is granted to client "bot"' in line
    assert "run exvault verify" in line
    assert snapshot() == before


# ------------------------------------------------------------- withdraw without IPs


def withdraw_warning(name: str) -> str:
    return (
        f'warning: "{name}" can withdraw and has no IP whitelist: check reports it as '
        "critical (withdraw-without-ip), which no reason can accept; bind the key to IPs "
        f"(exvault edit {name} --ip ...) or remove withdraw at the exchange\n"
    )


@pytest.mark.parametrize(
    ("ips", "warned"),
    [((), True), (("--ip", "0.0.0.0/0"), True), (("--ip", "203.0.113.7"), False)],
)
def test_add_withdraw_without_ip_warns_at_once(cli_vault, binance_payload, ips, warned) -> None:
    r = cli_vault.unlocked(
        "add",
        "w",
        "--exchange",
        "gate",
        "--permissions",
        "read,withdraw",
        *ips,
        "--from-json",
        "-",
        input=json.dumps(binance_payload),
    )
    assert r.exit_code == 0, r.output
    assert r.stdout == 'Stored "w" (gate), version 1.\n'
    assert r.stderr == (withdraw_warning("w") if warned else "")


def test_add_trade_without_ip_does_not_warn(cli_vault, binance_payload) -> None:
    r = cli_vault.unlocked(
        "add", "t", "--exchange", "gate", "--permissions", "read,trade",
        "--from-json", "-", input=json.dumps(binance_payload),
    )  # fmt: skip
    assert (r.exit_code, r.stderr) == (0, "")


def test_edit_to_withdraw_without_ip_warns_at_once(stocked_cli) -> None:
    r = stocked_cli.unlocked("edit", "binance-main", "--permissions", "read,withdraw")
    assert (r.exit_code, r.stderr) == (0, "")  # still bound to 203.0.113.7
    r = stocked_cli.unlocked("edit", "binance-main", "--clear-ips")
    assert r.exit_code == 0, r.output
    assert r.stderr == withdraw_warning("binance-main")
    # Any later edit of such a key warns again, as long as it stays unbound.
    r = stocked_cli.unlocked("edit", "binance-main", "--no-expires")
    assert r.stderr == withdraw_warning("binance-main")
    r = stocked_cli.unlocked("edit", "binance-main", "--ip", "203.0.113.8")
    assert (r.exit_code, r.stderr) == (0, "")


# ------------------------------------------------------------------------------ endpoint


def test_add_with_an_endpoint_lists_and_shows_it(cli_vault, binance_payload) -> None:
    r = cli_vault.unlocked(
        "add",
        "b",
        "--exchange",
        "binance",
        "--endpoint",
        "https://API.Binance.US/",
        "--from-json",
        "-",
        input=json.dumps(binance_payload),
    )
    assert r.exit_code == 0, r.output
    assert by_name(cli_vault)["b"]["endpoint"] == "https://api.binance.us"
    shown = cli_vault.v("show", "b")
    assert "Endpoint:" in shown.stdout and "https://api.binance.us" in shown.stdout
    assert json.loads(cli_vault.v("show", "b", "--json").stdout)["endpoint"] == (
        "https://api.binance.us"
    )
    table = cli_vault.v("list").stdout.splitlines()
    assert table[0].split()[-1] == "ENDPOINT" and table[1].split()[-1] == "https://api.binance.us"


def test_a_live_endpoint_is_not_shown(stocked_cli) -> None:
    assert all("endpoint" not in item for item in listed(stocked_cli))
    assert "ENDPOINT" not in stocked_cli.v("list").stdout
    assert "Endpoint" not in stocked_cli.v("show", "binance-main").stdout
    assert "endpoint" not in json.loads(stocked_cli.v("show", "binance-main", "--json").stdout)


def test_list_json_fast_and_plain_paths_agree_on_endpoints(stocked_cli) -> None:
    r = stocked_cli.unlocked("edit", "kucoin-sub1", "--endpoint", "testnet")
    assert r.exit_code == 0, r.output
    fast = listed(stocked_cli)  # piped: the fast path
    assert [i.get("endpoint") for i in fast] == [None, "testnet"]
    from vault.cli.listing import info_dict, utc_today
    from vault.cli.output import json_default
    from vault.db.inventory import Inventory

    with Inventory.open(stocked_cli.vault_path) as inv:
        plain = [info_dict(i, utc_today()) for i in inv.listing()]
    assert json.loads(json.dumps(plain, default=json_default)) == fast


def test_edit_endpoint_and_back_to_live(stocked_cli) -> None:
    r = stocked_cli.unlocked("edit", "binance-main", "--endpoint", "http://127.0.0.1:8080")
    assert r.exit_code == 0, r.output
    assert by_name(stocked_cli)["binance-main"]["endpoint"] == "http://127.0.0.1:8080"
    r = stocked_cli.unlocked("edit", "binance-main", "--endpoint", "live")
    assert r.exit_code == 0, r.output
    assert "endpoint" not in by_name(stocked_cli)["binance-main"]
    assert by_name(stocked_cli)["binance-main"]["version"] == 3
    assert field(stocked_cli, "binance-main", "secret") == BINANCE_SECRET


def test_rotation_keeps_the_endpoint(stocked_cli, kucoin_payload) -> None:
    stocked_cli.unlocked("edit", "kucoin-sub1", "--endpoint", "https://api.kucoin.example")
    new = {**kucoin_payload, "api_key": "64f1c0ffee5ca1ab1e00d1e6"}
    r = stocked_cli.unlocked(
        "rotate", "start", "kucoin-sub1", "--from-json", "-", input=json.dumps(new)
    )
    assert r.exit_code == 0, r.output
    history = json.loads(stocked_cli.v("history", "kucoin-sub1", "--json").stdout)
    assert history  # the pending version carries it: checked through show after promote
    r = stocked_cli.unlocked("rotate", "promote", "kucoin-sub1")
    assert r.exit_code == 0, r.output
    assert by_name(stocked_cli)["kucoin-sub1"]["endpoint"] == "https://api.kucoin.example"


@pytest.mark.parametrize(
    "endpoint", ["http://api.binance.com", "https://api.binance.com/api", "mainnet"]
)
def test_a_bad_endpoint_is_one_line_before_any_prompt(cli_vault, one_error_line, endpoint) -> None:
    r = cli_vault.v("add", "b", "--exchange", "binance", "--endpoint", endpoint)
    line = one_error_line(r, 7)
    assert line.startswith("exvault: error: bad endpoint")
    assert "Passphrase" not in r.output
    assert listed(cli_vault) == []


def test_a_bad_endpoint_on_edit_changes_nothing(stocked_cli, one_error_line) -> None:
    before = by_name(stocked_cli)["binance-main"]
    r = stocked_cli.unlocked("edit", "binance-main", "--endpoint", "https://u:pw1234@x.example")
    line = one_error_line(r, 7)
    assert "pw1234" not in r.output and "bad endpoint" in line
    assert by_name(stocked_cli)["binance-main"] == before
