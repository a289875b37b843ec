"""The vault's own commands through the CLI: init, passwd, recover, info."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

from tests.conftest import (
    BINANCE_API_KEY,
    BINANCE_SECRET,
    KUCOIN_PASSPHRASE,
    KUCOIN_SECRET,
    PASSPHRASE,
    db_exec,
    write_secret_file,
)
from vault.format import kdf_params
from vault.format.kdf_params import KdfParams
from vault.runtime.client import ClientVault

NEW_PASSPHRASE = "tr0ub4dor&3 but longer"
RECOVERY_KEY = re.compile(r"[A-Z2-7]{4}(-[A-Z2-7]{1,4})+")

# Every value stored by the stocked_cli fixture, by (name, field).
STOCKED = {
    ("binance-main", "api_key"): BINANCE_API_KEY,
    ("binance-main", "secret"): BINANCE_SECRET,
    ("kucoin-sub1", "secret"): KUCOIN_SECRET,
    ("kucoin-sub1", "passphrase"): KUCOIN_PASSPHRASE,
}


def init_json(cli) -> dict[str, object]:  # type: ignore[no-untyped-def]
    r = cli.init(["--json"])
    assert r.exit_code == 0, r.output
    data = json.loads(r.stdout)
    assert isinstance(data, dict)
    return data


def show_field(cli, passphrase_file: Path, name: str, field_name: str):  # type: ignore[no-untyped-def]
    return cli(
        "show",
        name,
        "--field",
        field_name,
        "--vault",
        str(cli.vault_path),
        "--passphrase-file",
        str(passphrase_file),
    )


def assert_all_readable(cli, passphrase_file: Path) -> None:  # type: ignore[no-untyped-def]
    for (name, field_name), value in STOCKED.items():
        r = show_field(cli, passphrase_file, name, field_name)
        assert r.exit_code == 0, r.output
        assert r.stdout == value + "\n"


# ------------------------------------------------------------------------------ init


def test_init_asks_twice_and_prints_the_recovery_key(cli, terminal) -> None:
    r = cli(
        "init",
        "--vault",
        str(cli.vault_path),
        "--insecure-test-kdf",
        input=f"{PASSPHRASE}\n{PASSPHRASE}\n",
    )
    assert r.exit_code == 0, r.output
    assert "Enter vault passphrase" in r.stderr
    assert "Repeat vault passphrase" in r.stderr
    assert PASSPHRASE not in r.output
    assert f"Created vault at {cli.vault_path}" in r.stdout
    assert "Recovery key" in r.stdout
    keys = [m.group(0) for m in RECOVERY_KEY.finditer(r.stdout) if len(m.group(0)) > 40]
    assert len(keys) == 1
    assert cli.vault_path.is_file()


def test_init_two_stdin_lines_without_terminal(cli) -> None:
    r = cli.init()
    assert r.exit_code == 0, r.output
    assert cli.v("list").exit_code == 0
    assert cli.unlocked("verify").exit_code == 0  # unlocked, no "x"


def test_init_with_differing_entries_creates_nothing(cli, one_error_line) -> None:
    r = cli(
        "init",
        "--vault",
        str(cli.vault_path),
        "--insecure-test-kdf",
        input=f"{PASSPHRASE}\n{PASSPHRASE}x\n",
    )
    line = one_error_line(r, 7)
    assert "differ" in line
    assert not cli.vault_path.exists()


def test_init_json_prints_the_recovery_key_once(cli) -> None:
    data = init_json(cli)
    assert RECOVERY_KEY.fullmatch(str(data["recovery_key"]))
    assert data["location"] == str(cli.vault_path)
    assert data["kdf"] == {
        "algorithm": "argon2id",
        "time_cost": 1,
        "memory_kib": 64,
        "parallelism": 1,
    }
    info = cli.v("info", "--json")
    assert info.exit_code == 0, info.output
    assert str(data["recovery_key"]) not in info.output
    assert json.loads(info.stdout)["fingerprint"] == data["fingerprint"]


def test_init_refuses_an_existing_vault(cli_vault, file_sha256, one_error_line) -> None:
    before = file_sha256(cli_vault.vault_path)
    assert "exists" in one_error_line(cli_vault.init(), 5)
    assert file_sha256(cli_vault.vault_path) == before
    assert cli_vault.unlocked("verify").exit_code == 0


def test_init_refuses_an_existing_vault_before_asking(cli_vault, terminal, one_error_line):
    r = cli_vault(
        "init",
        "--vault",
        str(cli_vault.vault_path),
        "--insecure-test-kdf",
        input=f"{PASSPHRASE}\n{PASSPHRASE}\n",
    )
    one_error_line(r, 5)  # the only line: no prompt, no "Calibrating..." line


def test_init_from_passphrase_file(cli) -> None:
    r = cli(
        "init",
        "--vault",
        str(cli.vault_path),
        "--insecure-test-kdf",
        "--passphrase-file",
        str(cli.passphrase_file),
        input="",
    )
    assert r.exit_code == 0, r.output
    assert cli.unlocked("verify").exit_code == 0


def test_init_real_kdf_is_calibrated_to_at_least_the_default(cli) -> None:
    """The one test that pays for real Argon2id (about a second or two)."""
    r = cli("init", "--vault", str(cli.vault_path), "--json", input=f"{PASSPHRASE}\n{PASSPHRASE}\n")
    assert r.exit_code == 0, r.output
    kdf = json.loads(r.stdout)["kdf"]
    assert kdf["algorithm"] == "argon2id"
    assert kdf["time_cost"] >= 3
    assert kdf["memory_kib"] >= 256 * 1024
    assert kdf["parallelism"] >= 4
    info = json.loads(cli.v("info", "--json").stdout)
    assert info["kdf"] == kdf


# ------------------------------------------------------------------------------ info


def test_info_json(stocked_cli) -> None:
    r = stocked_cli.v("info", "--json")
    assert r.exit_code == 0, r.output
    data = json.loads(r.stdout)
    assert data["format_version"] == 1
    assert data["credentials"] == 2
    assert data["location"] == str(stocked_cli.vault_path)
    assert re.fullmatch(r"[0-9a-f]{32}", data["vault_id"])


def test_info_text(stocked_cli) -> None:
    r = stocked_cli.v("info")
    assert r.exit_code == 0, r.output
    assert "exvault vault format v1" in r.stdout
    assert re.search(r"Credentials:\s+2$", r.stdout, re.MULTILINE)


# ------------------------------------------------------------------------------ passwd


def test_passwd_old_refused_new_accepted_all_readable(stocked_cli, tmp_path) -> None:
    r = stocked_cli.unlocked(
        "passwd", "--insecure-test-kdf", input=f"{NEW_PASSPHRASE}\n{NEW_PASSPHRASE}\n"
    )
    assert r.exit_code == 0, r.output
    assert "Passphrase changed" in r.stdout
    assert NEW_PASSPHRASE not in r.output
    old = stocked_cli.unlocked("show", "binance-main", "--field", "secret")
    assert old.exit_code == 3, old.output
    assert BINANCE_SECRET not in old.output
    new_file = write_secret_file(tmp_path / "new-passphrase", NEW_PASSPHRASE)
    assert_all_readable(stocked_cli, new_file)


def test_passwd_rewraps_only_the_keyslot(stocked_cli, rows) -> None:
    before_all = rows(stocked_cli.vault_path)
    before = rows(stocked_cli.vault_path, skip=("keyslots",))
    assert before["payloads"]
    assert before["dek_wraps"]
    r = stocked_cli.unlocked(
        "passwd", "--insecure-test-kdf", input=f"{NEW_PASSPHRASE}\n{NEW_PASSPHRASE}\n"
    )
    assert r.exit_code == 0, r.output
    assert rows(stocked_cli.vault_path, skip=("keyslots",)) == before
    assert rows(stocked_cli.vault_path)["keyslots"] != before_all["keyslots"]


def test_passwd_keeps_the_kdf_parameters(stocked_cli) -> None:
    before = json.loads(stocked_cli.v("info", "--json").stdout)["kdf"]
    r = stocked_cli.unlocked(
        "passwd", "--insecure-test-kdf", input=f"{NEW_PASSPHRASE}\n{NEW_PASSPHRASE}\n"
    )
    assert r.exit_code == 0, r.output
    assert json.loads(stocked_cli.v("info", "--json").stdout)["kdf"] == before


def test_passwd_via_hidden_prompts(stocked_cli, terminal, tmp_path) -> None:
    r = stocked_cli.v(
        "passwd", "--insecure-test-kdf", input=f"{PASSPHRASE}\n{NEW_PASSPHRASE}\n{NEW_PASSPHRASE}\n"
    )
    assert r.exit_code == 0, r.output
    assert "Vault passphrase" in r.stderr
    assert "Enter new passphrase" in r.stderr
    assert "Repeat new passphrase" in r.stderr
    assert PASSPHRASE not in r.output
    assert NEW_PASSPHRASE not in r.output
    assert_all_readable(stocked_cli, write_secret_file(tmp_path / "new", NEW_PASSPHRASE))


def test_passwd_differing_entries_refused_vault_unchanged(
    stocked_cli, snapshot, one_error_line
) -> None:
    before = snapshot()
    r = stocked_cli.unlocked(
        "passwd", "--insecure-test-kdf", input=f"{NEW_PASSPHRASE}\n{NEW_PASSPHRASE}!\n"
    )
    line = one_error_line(r, 7)
    assert "differ" in line
    assert NEW_PASSPHRASE not in r.output
    assert snapshot() == before
    assert_all_readable(stocked_cli, stocked_cli.passphrase_file)


def test_passwd_empty_new_passphrase_refused(stocked_cli, snapshot, one_error_line) -> None:
    before = snapshot()
    one_error_line(stocked_cli.unlocked("passwd", "--insecure-test-kdf", input="\n\n"), 7)
    assert snapshot() == before


def test_passwd_missing_second_line_refused(stocked_cli, snapshot, one_error_line) -> None:
    before = snapshot()
    one_error_line(
        stocked_cli.unlocked("passwd", "--insecure-test-kdf", input=f"{NEW_PASSPHRASE}\n"), 7
    )
    assert snapshot() == before


def test_passwd_with_wrong_current_passphrase(stocked_cli, tmp_path, snapshot, one_error_line):
    before = snapshot()
    wrong = write_secret_file(tmp_path / "wrong", "not the passphrase")
    r = stocked_cli(
        "passwd",
        "--vault",
        str(stocked_cli.vault_path),
        "--passphrase-file",
        str(wrong),
        input=f"{NEW_PASSPHRASE}\n{NEW_PASSPHRASE}\n",
    )
    one_error_line(r, 3)
    assert snapshot() == before


# ------------------------------------------------------------------------------ recover


def test_recover_with_the_printed_key(cli, binance_payload, tmp_path) -> None:
    key = str(init_json(cli)["recovery_key"])
    r = cli.unlocked(
        "add",
        "binance-main",
        "-e",
        "binance",
        "--from-json",
        "-",
        input=json.dumps(binance_payload),
    )
    assert r.exit_code == 0, r.output
    r = cli.v(
        "recover", "--insecure-test-kdf", input=f"{key}\n{NEW_PASSPHRASE}\n{NEW_PASSPHRASE}\n"
    )
    assert r.exit_code == 0, r.output
    assert "new passphrase" in r.stdout
    assert key not in r.output
    assert NEW_PASSPHRASE not in r.output
    # The old passphrase no longer opens it; the new one does, and the secrets are there.
    old = cli.unlocked("show", "binance-main", "--field", "secret")
    assert old.exit_code == 3, old.output
    new_file = write_secret_file(tmp_path / "new", NEW_PASSPHRASE)
    r = show_field(cli, new_file, "binance-main", "secret")
    assert r.exit_code == 0, r.output
    assert r.stdout == BINANCE_SECRET + "\n"


def test_recover_key_typed_in_lower_case_without_dashes(cli) -> None:
    key = str(init_json(cli)["recovery_key"])
    sloppy = key.replace("-", " ").lower()
    r = cli.v(
        "recover", "--insecure-test-kdf", input=f"{sloppy}\n{NEW_PASSPHRASE}\n{NEW_PASSPHRASE}\n"
    )
    assert r.exit_code == 0, r.output


def test_recover_via_hidden_prompts(cli, terminal, tmp_path) -> None:
    key = str(init_json(cli)["recovery_key"])
    r = cli.v(
        "recover", "--insecure-test-kdf", input=f"{key}\n{NEW_PASSPHRASE}\n{NEW_PASSPHRASE}\n"
    )
    assert r.exit_code == 0, r.output
    assert "Recovery key" in r.stderr
    assert key not in r.output
    new_file = write_secret_file(tmp_path / "new", NEW_PASSPHRASE)
    assert show_field(cli, new_file, "x", "secret").exit_code == 4  # unlocked, no "x"


def test_recover_with_a_key_file(cli, tmp_path) -> None:
    key = str(init_json(cli)["recovery_key"])
    key_file = write_secret_file(tmp_path / "recovery", key)
    r = cli.v(
        "recover",
        "--insecure-test-kdf",
        "--recovery-key-file",
        str(key_file),
        input=f"{NEW_PASSPHRASE}\n{NEW_PASSPHRASE}\n",
    )
    assert r.exit_code == 0, r.output
    assert cli.unlocked("verify").exit_code == 3


def test_recover_keeps_the_recovery_key_valid(cli) -> None:
    key = str(init_json(cli)["recovery_key"])
    for new in (NEW_PASSPHRASE, "a third passphrase"):
        r = cli.v("recover", "--insecure-test-kdf", input=f"{key}\n{new}\n{new}\n")
        assert r.exit_code == 0, r.output


def _mistype(key: str) -> str:
    i = next(i for i, c in enumerate(key) if c != "-")
    return key[:i] + ("B" if key[i] != "B" else "C") + key[i + 1 :]


def test_recover_mistyped_key_gives_a_clear_error(cli, snapshot, one_error_line) -> None:
    key = str(init_json(cli)["recovery_key"])
    before = snapshot()
    r = cli.v(
        "recover",
        "--insecure-test-kdf",
        input=f"{_mistype(key)}\n{NEW_PASSPHRASE}\n{NEW_PASSPHRASE}\n",
    )
    line = one_error_line(r, 7)
    assert "recovery key" in line
    assert "mistyped" in line
    assert snapshot() == before
    assert cli.unlocked("verify").exit_code == 0  # old one still works


def test_recover_truncated_key_refused(cli, snapshot, one_error_line) -> None:
    key = str(init_json(cli)["recovery_key"])
    before = snapshot()
    r = cli.v(
        "recover", "--insecure-test-kdf", input=f"{key[:-5]}\n{NEW_PASSPHRASE}\n{NEW_PASSPHRASE}\n"
    )
    assert "recovery key" in one_error_line(r, 7)
    assert snapshot() == before


def test_recover_with_another_vaults_key(cli, tmp_path, snapshot, one_error_line) -> None:
    init_json(cli)
    other = cli(
        "init",
        "--vault",
        str(tmp_path / "other" / "vault.db"),
        "--insecure-test-kdf",
        "--json",
        input=f"{PASSPHRASE}\n{PASSPHRASE}\n",
    )
    assert other.exit_code == 0, other.output
    foreign = json.loads(other.stdout)["recovery_key"]
    before = snapshot()
    r = cli.v(
        "recover", "--insecure-test-kdf", input=f"{foreign}\n{NEW_PASSPHRASE}\n{NEW_PASSPHRASE}\n"
    )
    one_error_line(r, 3)
    assert snapshot() == before


def test_recover_differing_new_entries(cli, snapshot, one_error_line) -> None:
    key = str(init_json(cli)["recovery_key"])
    before = snapshot()
    r = cli.v(
        "recover", "--insecure-test-kdf", input=f"{key}\n{NEW_PASSPHRASE}\n{NEW_PASSPHRASE}?\n"
    )
    assert "differ" in one_error_line(r, 7)
    assert snapshot() == before


def test_recover_after_a_kdf_downgrade_writes_calibrated_parameters(cli) -> None:
    """A database writer lowers the passphrase slot's Argon2id parameters; the owner's
    unlock fails, the owner recovers: the new slot gets a calibration, not those."""
    key = str(init_json(cli)["recovery_key"])
    db_exec(
        cli.vault_path,
        "UPDATE keyslots SET kdf_time_cost = 1, kdf_memory_kib = 8, kdf_parallelism = 1 "
        "WHERE kind = 'passphrase'",
    )
    assert cli.unlocked("verify").exit_code == 3
    r = cli.v("recover", input=f"{key}\n{NEW_PASSPHRASE}\n{NEW_PASSPHRASE}\n")
    assert r.exit_code == 0, r.output
    kdf = json.loads(cli.v("info", "--json").stdout)["kdf"]
    params = KdfParams(kdf["time_cost"], kdf["memory_kib"], kdf["parallelism"])
    assert params.at_least(kdf_params.KDF_FLOOR)
    assert str(params) in r.stdout


def test_info_says_the_kdf_parameters_are_not_authenticated(stocked_cli) -> None:
    r = stocked_cli.v("info")
    assert r.exit_code == 0, r.output
    assert re.search(r"Key derivation:.*as stored", r.stdout)
    data = json.loads(stocked_cli.v("info", "--json").stdout)
    assert data["kdf_authenticated"] is False


# ------------------------------------------------------------------------------ passwd --rekey

TOKEN = re.compile(r"exv1-[A-Za-z0-9_-]+")


def _add_bot(cli) -> str:  # type: ignore[no-untyped-def]
    r = cli.unlocked("client", "add", "bot", "--json")
    assert r.exit_code == 0, r.output
    assert cli.unlocked("grant", "bot", "binance-main").exit_code == 0
    return str(json.loads(r.stdout)["token"])


def test_passwd_rekey_prints_a_new_recovery_key_and_tokens(stocked_cli, tmp_path) -> None:
    old_token = _add_bot(stocked_cli)
    before = json.loads(stocked_cli.v("info", "--json").stdout)["fingerprint"]
    r = stocked_cli.unlocked(
        "passwd", "--rekey", "--insecure-test-kdf", input=f"{NEW_PASSPHRASE}\n{NEW_PASSPHRASE}\n"
    )
    assert r.exit_code == 0, r.output
    assert NEW_PASSPHRASE not in r.output
    assert "Re-keying" not in r.stderr  # no progress bar without a terminal
    after = json.loads(stocked_cli.v("info", "--json").stdout)["fingerprint"]
    assert after != before and f"New fingerprint: {after}" in r.stdout
    found = RECOVERY_KEY.search(r.stdout.split("New recovery key", 1)[1])
    assert found is not None
    recovery = found.group(0)
    tokens = TOKEN.findall(r.stdout)
    assert len(tokens) == 1 and old_token not in r.stdout
    assert_all_readable(stocked_cli, write_secret_file(tmp_path / "new", NEW_PASSPHRASE))
    with ClientVault.open(stocked_cli.vault_path, token=tokens[0]) as bot:
        assert bot.get("binance-main").secret.reveal() == BINANCE_SECRET
    r = stocked_cli.v(
        "recover", "--insecure-test-kdf", input=f"{recovery}\n{PASSPHRASE}\n{PASSPHRASE}\n"
    )
    assert r.exit_code == 0, r.output


def test_passwd_rekey_tokens_dir_writes_0600_files(stocked_cli, tmp_path) -> None:
    _add_bot(stocked_cli)
    tokens_dir = tmp_path / "tokens"
    tokens_dir.mkdir()
    r = stocked_cli.unlocked(
        "passwd",
        "--rekey",
        "--insecure-test-kdf",
        "--tokens-dir",
        str(tokens_dir),
        input=f"{NEW_PASSPHRASE}\n{NEW_PASSPHRASE}\n",
    )
    assert r.exit_code == 0, r.output
    token_file = tokens_dir / "bot.token"
    assert token_file.stat().st_mode & 0o777 == 0o600
    token = token_file.read_text().strip()
    assert TOKEN.fullmatch(token) and token not in r.output
    assert str(token_file) in r.stdout


def test_passwd_rekey_refuses_an_existing_token_file_vault_unchanged(
    stocked_cli, tmp_path, snapshot, one_error_line
) -> None:
    _add_bot(stocked_cli)
    tokens_dir = tmp_path / "tokens"
    tokens_dir.mkdir()
    (tokens_dir / "bot.token").write_text("keep me\n")
    before = snapshot()
    r = stocked_cli.unlocked(
        "passwd",
        "--rekey",
        "--insecure-test-kdf",
        "--tokens-dir",
        str(tokens_dir),
        input=f"{NEW_PASSPHRASE}\n{NEW_PASSPHRASE}\n",
    )
    assert "exists" in one_error_line(r, 7)
    assert snapshot() == before
    assert (tokens_dir / "bot.token").read_text() == "keep me\n"


def test_tokens_dir_without_rekey_refused(stocked_cli, tmp_path, one_error_line) -> None:
    r = stocked_cli.unlocked(
        "passwd", "--tokens-dir", str(tmp_path), input=f"{NEW_PASSPHRASE}\n{NEW_PASSPHRASE}\n"
    )
    assert "--rekey" in one_error_line(r, 7)


# ------------------------------------------------- a new passphrase's strength (zxcvbn)

WEAK_PASSPHRASE = "password1"  # zxcvbn: 0 of 4, "This is a very common password."


def init_with(cli, passphrase: str, *extra: str):  # type: ignore[no-untyped-def]
    return cli(
        "init",
        "--vault",
        str(cli.vault_path),
        "--insecure-test-kdf",
        *extra,
        input=f"{passphrase}\n{passphrase}\n",
    )


def test_init_refuses_a_weak_passphrase_saying_why(cli, one_error_line) -> None:
    r = init_with(cli, WEAK_PASSPHRASE)
    line = one_error_line(r, 7)
    assert line == (
        "exvault: error: the vault passphrase is too weak (strength 0 of 4, at least 3 "
        "needed: This is a very common password. Add another word or two. Uncommon words "
        "are better); choose a stronger one, or add --allow-weak-passphrase"
    )
    assert WEAK_PASSPHRASE not in r.output
    assert not cli.vault_path.exists()


def test_init_refuses_a_one_character_passphrase(cli, one_error_line) -> None:
    assert "too weak (strength 0 of 4" in one_error_line(init_with(cli, "x"), 7)
    assert not cli.vault_path.exists()


def test_init_refuses_a_weak_passphrase_file(cli, tmp_path, one_error_line) -> None:
    weak = write_secret_file(tmp_path / "weak", WEAK_PASSPHRASE)
    r = cli(
        "init",
        "--vault",
        str(cli.vault_path),
        "--insecure-test-kdf",
        "--passphrase-file",
        str(weak),
    )
    assert "too weak" in one_error_line(r, 7)
    assert not cli.vault_path.exists()


def test_init_allow_weak_passphrase(cli, tmp_path) -> None:
    r = init_with(cli, WEAK_PASSPHRASE, "--allow-weak-passphrase")
    assert r.exit_code == 0, r.output
    weak = write_secret_file(tmp_path / "weak", WEAK_PASSPHRASE)
    assert show_field(cli, weak, "x", "secret").exit_code == 4  # unlocked, no "x"


def test_init_says_where_the_vault_will_be_created_before_asking(cli, terminal) -> None:
    r = init_with(cli, PASSPHRASE)
    assert r.exit_code == 0, r.output
    said = r.stderr.index(f"Creating a new vault at {cli.vault_path}")
    assert said < r.stderr.index("Enter vault passphrase")


def test_passwd_refuses_a_weak_passphrase_vault_unchanged(
    stocked_cli, snapshot, one_error_line
) -> None:
    before = snapshot()
    r = stocked_cli.unlocked(
        "passwd", "--insecure-test-kdf", input=f"{WEAK_PASSPHRASE}\n{WEAK_PASSPHRASE}\n"
    )
    assert "the new passphrase is too weak" in one_error_line(r, 7)
    assert snapshot() == before
    assert_all_readable(stocked_cli, stocked_cli.passphrase_file)


def test_passwd_rekey_refuses_a_weak_passphrase(stocked_cli, snapshot, one_error_line) -> None:
    before = snapshot()
    r = stocked_cli.unlocked(
        "passwd", "--rekey", "--insecure-test-kdf", input=f"{WEAK_PASSPHRASE}\n{WEAK_PASSPHRASE}\n"
    )
    assert "too weak" in one_error_line(r, 7)
    assert snapshot() == before


def test_passwd_allow_weak_passphrase(stocked_cli, tmp_path) -> None:
    r = stocked_cli.unlocked(
        "passwd",
        "--insecure-test-kdf",
        "--allow-weak-passphrase",
        input=f"{WEAK_PASSPHRASE}\n{WEAK_PASSPHRASE}\n",
    )
    assert r.exit_code == 0, r.output
    assert_all_readable(stocked_cli, write_secret_file(tmp_path / "weak", WEAK_PASSPHRASE))


def test_recover_refuses_a_weak_passphrase(cli, one_error_line) -> None:
    key = str(init_json(cli)["recovery_key"])
    r = cli.v(
        "recover", "--insecure-test-kdf", input=f"{key}\n{WEAK_PASSPHRASE}\n{WEAK_PASSPHRASE}\n"
    )
    assert "too weak" in one_error_line(r, 7)
    assert key not in r.output
    assert cli.unlocked("verify").exit_code == 0  # old one still opens


def test_without_zxcvbn_a_new_passphrase_is_refused_not_let_through(
    cli, monkeypatch, one_error_line
) -> None:
    monkeypatch.setitem(sys.modules, "zxcvbn", None)  # import zxcvbn raises ImportError
    line = one_error_line(init_with(cli, PASSPHRASE), 7)
    assert line == (
        "exvault: error: estimating the vault passphrase's strength needs zxcvbn: install "
        "exvault with its strength extra, pip install '.[strength]' in its source tree "
        "(or add --allow-weak-passphrase)"
    )
    assert not cli.vault_path.exists()
    assert init_with(cli, PASSPHRASE, "--allow-weak-passphrase").exit_code == 0
