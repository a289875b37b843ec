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
from vault.ops.importing import plan
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


@pytest.mark.parametrize(
    ("failure", "exit_code"),
    [(StoreError("database error: disk full"), 12), (KeyboardInterrupt(), 130)],
    ids=["disk-full", "ctrl-c"],
)
def test_a_failure_part_way_leaves_the_vault_unchanged(
    cli_vault: Cli,
    tmp_path: Path,
    snapshot: Callable[[], object],
    monkeypatch: pytest.MonkeyPatch,
    failure: BaseException,
    exit_code: int,
) -> None:
    real_add = AdminVault.add
    calls: list[str] = []

    def add_then_fail(self: AdminVault, name: str, *args: object, **kwargs: object) -> object:
        calls.append(name)
        if len(calls) == 2:
            raise failure
        return real_add(self, name, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(AdminVault, "add", add_then_fail)
    before = snapshot()
    result = cli_vault.unlocked("import", "env", str(env_file(tmp_path / ".env")), "--yes")
    assert result.exit_code == exit_code, result.output
    assert "Traceback" not in result.output
    assert calls == ["kucoin", "binance-sub1"]
    assert snapshot() == before


def test_remove_source_through_a_symlink_is_refused_before_importing(
    cli_vault: Cli, tmp_path: Path, snapshot: Callable[[], object]
) -> None:
    target = env_file(tmp_path / "real.env")
    target.write_text(target.read_text().replace("LOG_LEVEL=debug\n", ""))
    link = tmp_path / "link.env"
    link.symlink_to(target)
    before = snapshot()
    result = cli_vault.unlocked("import", "env", str(link), "--yes", "--remove-source")
    assert result.exit_code == 7, result.output
    assert "Traceback" not in result.output
    assert result.stderr.startswith("exvault: error: --remove-source refused: ")
    assert "link.env is a symbolic link" in result.stderr
    assert snapshot() == before
    assert link.is_symlink() and target.read_text().startswith("# exchange keys")


def test_control_characters_of_a_source_never_reach_the_terminal(
    cli_vault: Cli, tmp_path: Path
) -> None:
    # A variable named with an escape sequence would retitle or recolour the terminal.
    path = env_file(tmp_path / ".env")
    with path.open("a") as file:
        file.write("\x1b]0;pwned\x07X=1\n")
    args = ("import", "env", str(path), "--dry-run", "--remove-source")
    result = cli_vault.unlocked(*args)
    assert result.exit_code == 0, result.output
    assert "\x1b" not in result.stdout and "\x07" not in result.stdout
    assert "skipped LOG_LEVEL, \\x1b]0;pwned\\x07X: not exchange keys" in result.stdout
    assert "holds other variables (LOG_LEVEL, \\x1b]0;pwned\\x07X)" in result.stdout
    with path.open("a") as file:
        file.write("OKX_\x1b[2J_API_KEY=k\n")  # a label, in the name it makes
    result = cli_vault.unlocked(*args)
    assert "\x1b" not in result.stdout
    assert "okx-\\x1b[2j" in result.stdout


def test_hummingbot_with_a_password_file(cli_vault: Cli, tmp_path: Path) -> None:
    root = hummingbot_conf(tmp_path / "hummingbot")
    password = write_secret_file(tmp_path / "hb-pass", HUMMINGBOT_PASSWORD)
    result = cli_vault.unlocked(
        "import", "hummingbot", str(root), "--password-file", str(password), "--yes"
    )
    assert result.exit_code == 0, result.output
    assert "Imported 2 credentials: binance, kucoin." in result.stdout
    assert "hummingbot reads its keys only from its own encrypted connector files" in result.stdout
    # Not the other sources' advice, which hummingbot cannot follow: its files stay.
    assert "once the bot reads its keys from the vault" not in result.stdout
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


def test_keepass_with_a_key_file_and_no_password(
    cli_vault: Cli,
    tmp_path: Path,
    keepass_template: Path,
    one_error_line: Callable[[Result, int], str],
) -> None:
    # KeePassXC makes such databases ("key file only"); pykeepass then takes no password.
    from pykeepass import PyKeePass

    keyfile = tmp_path / "keys.keyx"
    keyfile.write_bytes(os.urandom(64))
    database = tmp_path / "keys.kdbx"
    kp = PyKeePass(str(keepass_template), KEEPASS_PASSWORD)
    kp.filename, kp.password, kp.keyfile = str(database), None, str(keyfile)
    kp.save()
    args = ("import", "keepass", str(database), "--keyfile", str(keyfile), "--group", "Exchanges")
    result = cli_vault.unlocked(*args, "--no-password", "--dry-run", "--json")
    assert result.exit_code == 0, result.output
    assert sorted(k["name"] for k in json.loads(result.stdout)["keys"]) == [
        "KuCoin-bot",
        "binance-main",
    ]
    alone = cli_vault.unlocked("import", "keepass", str(database), "--no-password", "--dry-run")
    assert "--no-password needs --keyfile" in one_error_line(alone, 2)


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


def test_a_removal_failing_after_the_import_says_the_keys_were_imported(
    cli_vault: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "keys.env"
    path.write_text(f"BINANCE_API_KEY={BINANCE_API_KEY}\nBINANCE_SECRET={BINANCE_SECRET}\n")

    def failing_disk(fd: int) -> None:
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(plan.os, "fsync", failing_disk)
    result = cli_vault.unlocked("import", "env", str(path), "--yes", "--remove-source")
    assert result.exit_code == 7, result.output
    assert result.stderr == (
        "exvault: error: imported binance, but --remove-source failed: "
        f"cannot remove {path}: Input/output error\n"
    )
    assert field(cli_vault, "binance", "api_key") == BINANCE_API_KEY


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


@pytest.mark.parametrize(
    ("kind", "where", "message"),
    [
        ("hummingbot", ".", "no hummingbot connectors folder"),
        ("keepass", "none.kdbx", "no KeePass database at"),
    ],
)
def test_a_wrong_source_path_is_reported_before_the_password(
    cli_vault: Cli,
    tmp_path: Path,
    one_error_line: Callable[[Result, int], str],
    kind: str,
    where: str,
    message: str,
) -> None:
    # Not "no terminal to ask", nor a password typed for nothing.
    result = cli_vault.unlocked("import", kind, str(tmp_path / where), "--yes")
    assert message in one_error_line(result, 7)


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
