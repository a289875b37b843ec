"""``exvault import`` through the CLI: plans, confirmation, the one transaction, the
report, the notes after the import, --remove-source, and no secret in any output."""

from __future__ import annotations

import json
import os
import re
import shutil
import stat
import sys
from collections.abc import Callable
from pathlib import Path

import pexpect
import pytest
from click.testing import Result

from tests.conftest import (
    BINANCE_API_KEY,
    BINANCE_SECRET,
    KUCOIN_PASSPHRASE,
    PASSPHRASE,
    Cli,
    write_secret_file,
)
from tests.import_sources import (
    HUMMINGBOT_PASSWORD,
    KEEPASS_PASSWORD,
    SECRETS,
    env_file,
    freqtrade_config,
    hummingbot_conf,
)
from vault.errors import StoreError
from vault.owner.admin import AdminVault


def no_secret_in(result: Result) -> None:
    for text in (result.stdout, result.stderr):
        for secret in SECRETS:
            assert secret[:12] not in text, secret[:6]


def field(cli: Cli, name: str, field_name: str) -> str:
    shown = cli.unlocked("show", name, "--field", field_name)
    assert shown.exit_code == 0, shown.output
    return shown.stdout.strip()


@pytest.fixture
def freqtrade_files(tmp_path: Path) -> tuple[Path, Path]:
    return freqtrade_config(tmp_path)


def test_dry_run_shows_the_plan_and_writes_nothing(
    cli_vault: Cli, freqtrade_files: tuple[Path, Path], snapshot: Callable[[], object]
) -> None:
    before = snapshot()
    result = cli_vault.unlocked("import", "freqtrade", *map(str, freqtrade_files), "--dry-run")
    assert result.exit_code == 0, result.output
    assert "binance  binance   api_key,secret  add" in result.stdout
    assert "Dry run: nothing was written." in result.stdout
    assert snapshot() == before
    no_secret_in(result)


def test_freqtrade_import_then_the_notes(
    cli_vault: Cli, freqtrade_files: tuple[Path, Path]
) -> None:
    result = cli_vault.unlocked("import", "freqtrade", *map(str, freqtrade_files), "--yes")
    assert result.exit_code == 0, result.output
    assert "Imported 1 credential: binance." in result.stdout
    assert "The source still holds the secrets" in result.stdout
    assert "config-private.json" in result.stdout
    assert "exvault run --cred binance --preset freqtrade" in result.stdout
    assert "does not guarantee" in result.stdout
    assert field(cli_vault, "binance", "secret") == BINANCE_SECRET
    no_secret_in(result)


def test_env_import_with_prefix_and_json_report(cli_vault: Cli, tmp_path: Path) -> None:
    path = env_file(tmp_path / ".env")
    result = cli_vault.unlocked("import", "env", str(path), "--prefix", "bot-", "--yes", "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["imported"] == ["bot-kucoin", "bot-binance-sub1"]
    assert [(k["name"], k["fields"], k["version"]) for k in report["keys"]] == [
        ("bot-kucoin", ["api_key", "secret", "passphrase"], 1),
        ("bot-binance-sub1", ["api_key", "secret"], 1),
    ]
    assert report["skipped"] == [{"from": "LOG_LEVEL", "reason": "not exchange keys"}]
    assert any("--preset ccxt" in note for note in report["notes"])
    assert field(cli_vault, "bot-kucoin", "passphrase") == KUCOIN_PASSPHRASE
    no_secret_in(result)


def test_an_existing_name_is_skipped_and_replace_writes_a_new_version(
    stocked_cli: Cli, tmp_path: Path
) -> None:
    path = tmp_path / ".env"
    path.write_text(
        f"BINANCE_MAIN_API_KEY={BINANCE_API_KEY}\nBINANCE_MAIN_SECRET=S{BINANCE_SECRET[1:]}\n"
    )
    skipped = stocked_cli.unlocked("import", "env", str(path), "--yes", "--json")
    assert skipped.exit_code == 0, skipped.output
    (key,) = json.loads(skipped.stdout)["keys"]
    assert (key["action"], key["reason"]) == (
        "skip",
        "exists in the vault (--replace writes a new version)",
    )
    replaced = stocked_cli.unlocked("import", "env", str(path), "--yes", "--replace")
    assert replaced.exit_code == 0, replaced.output
    assert "Replaced with a new version: binance-main (version 2)." in replaced.stdout
    history = stocked_cli.v("history", "binance-main", "--json")
    assert len(json.loads(history.stdout)) == 2  # the old version is kept in the history
    assert field(stocked_cli, "binance-main", "secret") == "S" + BINANCE_SECRET[1:]


def test_confirmation_no_imports_nothing_yes_imports(
    cli_vault: Cli, freqtrade_files: tuple[Path, Path], snapshot: Callable[[], object]
) -> None:
    before = snapshot()
    args = ("import", "freqtrade", *map(str, freqtrade_files))
    refused = cli_vault.unlocked(*args, input="n\n")
    assert refused.exit_code == 1
    assert "Import 1 credential into the vault?" in refused.stderr
    assert snapshot() == before
    accepted = cli_vault.unlocked(*args, input="y\n")
    assert accepted.exit_code == 0, accepted.output
    assert cli_vault.v("list", "--json").stdout.count('"binance"') == 2  # name, exchange


def test_a_failure_part_way_leaves_the_vault_unchanged(
    cli_vault: Cli,
    tmp_path: Path,
    snapshot: Callable[[], object],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    real_add = AdminVault.add
    calls: list[str] = []

    def add_then_fail(self: AdminVault, name: str, *args: object, **kwargs: object) -> object:
        calls.append(name)
        if len(calls) == 2:
            raise StoreError("database error: disk full")
        return real_add(self, name, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(AdminVault, "add", add_then_fail)
    before = snapshot()
    result = cli_vault.unlocked("import", "env", str(env_file(tmp_path / ".env")), "--yes")
    assert result.exit_code == 12, result.output
    assert calls == ["kucoin", "binance-sub1"]
    assert snapshot() == before


def test_hummingbot_with_a_password_file(cli_vault: Cli, tmp_path: Path) -> None:
    root = hummingbot_conf(tmp_path / "hummingbot")
    password = write_secret_file(tmp_path / "hb-pass", HUMMINGBOT_PASSWORD)
    result = cli_vault.unlocked(
        "import", "hummingbot", str(root), "--password-file", str(password), "--yes"
    )
    assert result.exit_code == 0, result.output
    assert "Imported 2 credentials: binance, kucoin." in result.stdout
    assert "hummingbot reads its keys only from its own encrypted connector files" in result.stdout
    assert result.stderr == ""  # no progress bar, nor its label, without a terminal
    assert field(cli_vault, "kucoin", "passphrase") == KUCOIN_PASSPHRASE
    no_secret_in(result)


@pytest.mark.usefixtures("terminal")
def test_hummingbot_asks_its_password_at_the_terminal(cli_vault: Cli, tmp_path: Path) -> None:
    root = hummingbot_conf(tmp_path / "hummingbot")
    result = cli_vault.unlocked(
        "import", "hummingbot", str(root), "--dry-run", input=HUMMINGBOT_PASSWORD + "\n"
    )
    assert result.exit_code == 0, result.output
    assert "hummingbot password" in result.stderr
    assert HUMMINGBOT_PASSWORD not in result.output
    no_secret_in(result)


def test_a_wrong_hummingbot_password_is_one_line_exit_3(
    cli_vault: Cli,
    tmp_path: Path,
    one_error_line: Callable[[Result, int], str],
    snapshot: Callable[[], object],
) -> None:
    root = hummingbot_conf(tmp_path / "hummingbot")
    password = write_secret_file(tmp_path / "hb-pass", "wrong")
    before = snapshot()
    result = cli_vault.unlocked(
        "import", "hummingbot", str(root), "--password-file", str(password), "--yes"
    )
    assert "wrong hummingbot password" in one_error_line(result, 3)
    assert snapshot() == before


def test_keepass_with_group_and_password_file(
    cli_vault: Cli, tmp_path: Path, keepass_template: Path
) -> None:
    database = shutil.copy(keepass_template, tmp_path / "keys.kdbx")
    password = write_secret_file(tmp_path / "kp-pass", KEEPASS_PASSWORD)
    args = ("import", "keepass", str(database), "--password-file", str(password))
    result = cli_vault.unlocked(*args, "--group", "Exchanges", "--yes", "--json")
    assert result.exit_code == 0, result.output
    assert sorted(json.loads(result.stdout)["imported"]) == ["KuCoin-bot", "binance-main"]
    assert field(cli_vault, "KuCoin-bot", "passphrase") == KUCOIN_PASSPHRASE
    no_secret_in(result)
    # Without --group, the Mail entry names no exchange: skipped, with the reason.
    whole = cli_vault.unlocked(*args, "--dry-run")
    assert re.search(
        r"\nwebmail +\? +api_key,secret +skip: the source does not say which exchange", whole.stdout
    )
    refused = cli_vault.unlocked(*args, "--group", "Exchanges", "--remove-source", "--replace")
    assert refused.exit_code == 7
    assert "keepass source holds more than exchange keys" in refused.stderr
    assert Path(database).exists()


@pytest.mark.parametrize(
    ("name", "text", "message"),
    [
        ("config.json", '{"exchange": {"key": "abc" "secret": "x"}}', "is not valid JSON"),
        (".env", 'BINANCE_API_KEY="abc\n', "line 1 is not NAME=value"),
    ],
)
def test_a_malformed_source_is_one_line_and_imports_nothing(
    cli_vault: Cli,
    tmp_path: Path,
    one_error_line: Callable[[Result, int], str],
    snapshot: Callable[[], object],
    name: str,
    text: str,
    message: str,
) -> None:
    path = tmp_path / name
    path.write_text(text)
    before = snapshot()
    kind = "freqtrade" if name.endswith(".json") else "env"
    assert message in one_error_line(cli_vault.unlocked("import", kind, str(path), "--yes"), 7)
    assert snapshot() == before


def test_remove_source_overwrites_and_deletes_a_file_of_keys_only(
    cli_vault: Cli, tmp_path: Path
) -> None:
    path = tmp_path / "keys.env"
    path.write_text(f"BINANCE_API_KEY={BINANCE_API_KEY}\nBINANCE_SECRET={BINANCE_SECRET}\n")
    result = cli_vault.unlocked("import", "env", str(path), "--yes", "--remove-source")
    assert result.exit_code == 0, result.output
    assert not path.exists()
    assert "overwritten, then deleted" in result.stdout
    assert "SSDs remap writes" in result.stdout


def test_remove_source_refuses_a_file_holding_more_before_importing(
    cli_vault: Cli, tmp_path: Path, snapshot: Callable[[], object]
) -> None:
    path = env_file(tmp_path / ".env")
    before = snapshot()
    result = cli_vault.unlocked("import", "env", str(path), "--yes", "--remove-source")
    assert result.exit_code == 7
    assert "holds other variables (LOG_LEVEL)" in result.stderr
    assert snapshot() == before
    assert path.exists()


def test_no_vault_is_reported_before_any_source_password(tmp_path: Path, cli: Cli) -> None:
    root = hummingbot_conf(tmp_path / "hummingbot")
    result = cli.unlocked("import", "hummingbot", str(root), "--yes")
    assert result.exit_code == 8, result.output
    assert "password" not in result.stderr.lower().replace("passphrase", "")


def test_the_vault_files_keep_their_modes(cli_vault: Cli, tmp_path: Path) -> None:
    result = cli_vault.unlocked("import", "env", str(env_file(tmp_path / ".env")), "--yes")
    assert result.exit_code == 0, result.output
    assert stat.S_IMODE(cli_vault.vault_path.stat().st_mode) == 0o600


def test_without_the_import_extra_the_error_names_it(
    cli_vault: Cli,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    one_error_line: Callable[[Result, int], str],
) -> None:
    monkeypatch.setitem(sys.modules, "dotenv", None)  # import dotenv raises ImportError
    monkeypatch.setitem(sys.modules, "dotenv.parser", None)
    result = cli_vault.unlocked("import", "env", str(env_file(tmp_path / ".env")), "--yes")
    assert "exchange-vault[import]" in one_error_line(result, 8)


def test_no_terminal_and_no_password_file_is_one_clear_error(
    cli_vault: Cli, tmp_path: Path, one_error_line: Callable[[Result, int], str]
) -> None:
    root = hummingbot_conf(tmp_path / "hummingbot")
    result = cli_vault.unlocked("import", "hummingbot", str(root), "--yes")
    assert "--password-file FILE" in one_error_line(result, 7)


def test_at_a_real_terminal_both_passwords_are_asked_hidden(cli_vault: Cli, tmp_path: Path) -> None:
    root = hummingbot_conf(tmp_path / "hummingbot")
    env = {k: v for k, v in os.environ.items() if not k.startswith("EXVAULT_")}
    child = pexpect.spawn(
        sys.executable,
        [
            "-m",
            "vault.cli.main",
            "import",
            "hummingbot",
            str(root),
            "--yes",
            "--vault",
            str(cli_vault.vault_path),
        ],
        env=env,
        timeout=60,
        encoding="utf-8",
    )
    child.expect("hummingbot password: ")  # the source's first: the plan needs it
    child.sendline(HUMMINGBOT_PASSWORD)
    child.expect("Reading the source")  # a progress bar over the keystores' scrypt
    child.expect("100%")
    child.expect("Vault passphrase: ")
    child.sendline(PASSPHRASE)
    child.expect("Importing")  # and over the writes
    child.expect("100%")
    child.expect(pexpect.EOF)
    child.close()
    shown = str(child.before)
    assert child.exitstatus == 0, shown
    assert "Imported 2 credentials: binance, kucoin." in shown
    for secret in (HUMMINGBOT_PASSWORD, PASSPHRASE, *SECRETS):
        assert secret[:12] not in shown
