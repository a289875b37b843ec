"""Prompts at a real terminal: exvault run as a subprocess under a pseudo-terminal.

Hidden prompts read the terminal (/dev/tty), not stdin: a command whose stdin is a
file still asks for the passphrase in the terminal it was typed in. Without any
terminal (a new session, as under cron) the clear "no terminal" error stays.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pexpect

from tests.conftest import BINANCE_API_KEY, BINANCE_SECRET, PASSPHRASE, Cli

EXVAULT = [sys.executable, "-m", "vault.cli.main"]

ADD_FROM_STDIN = (
    "add",
    "binance-2",
    "--exchange",
    "binance",
    "--permissions",
    "read",
    "--ip",
    "203.0.113.9",
    "--from-json",
    "-",
)


def environment(**extra: str) -> dict[str, str]:
    """This process's environment (its private XDG dirs) without a passphrase file."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("EXVAULT_")}
    env.update(extra)
    return env


def spawn_with_stdin_from(stdin: Path, *args: str) -> pexpect.spawn:
    """``exvault ARGS < STDIN`` under a new pseudo-terminal, as typed in a shell."""
    return pexpect.spawn(
        "/bin/sh",
        ["-c", 'exec "$@" < "$EXVAULT_TEST_STDIN"', "sh", *EXVAULT, *args],
        env=environment(EXVAULT_TEST_STDIN=str(stdin)),
        timeout=60,
        encoding="utf-8",
    )


def finish(child: pexpect.spawn) -> str:
    """Everything the child writes until it exits (it is then closed)."""
    child.expect(pexpect.EOF)
    child.close()
    return str(child.before)


def keys_json(tmp_path: Path) -> Path:
    path = tmp_path / "keys.json"
    path.write_text(json.dumps({"api_key": BINANCE_API_KEY, "secret": BINANCE_SECRET}))
    return path


def test_add_from_json_on_stdin_asks_the_passphrase_in_the_terminal(
    stocked_cli: Cli, tmp_path: Path
) -> None:
    vault = str(stocked_cli.vault_path)
    child = spawn_with_stdin_from(keys_json(tmp_path), *ADD_FROM_STDIN, "--vault", vault)
    child.expect("Vault passphrase: ")
    child.sendline(PASSPHRASE)
    rest = finish(child)
    assert child.exitstatus == 0, rest
    assert 'Stored "binance-2" (binance), version 1.' in rest
    assert PASSPHRASE not in rest  # typed without echo
    shown = stocked_cli.unlocked("show", "binance-2", "--field", "secret")
    assert shown.exit_code == 0, shown.output
    assert shown.stdout == BINANCE_SECRET + "\n"


def test_unlock_with_stdin_redirected_asks_in_the_terminal(stocked_cli: Cli) -> None:
    """The unlock agent's prompt is the same prompt: stdin plays no part in it."""
    vault = str(stocked_cli.vault_path)
    child = spawn_with_stdin_from(Path(os.devnull), "unlock", "--vault", vault)
    child.expect("Vault passphrase: ")
    child.sendline(PASSPHRASE)
    rest = finish(child)
    assert child.exitstatus == 0, rest
    assert "Unlocked" in rest
    status = stocked_cli("agent", "status", "--json")
    assert [v["location"] for v in json.loads(status.stdout)["vaults"]] == [vault]


def test_without_a_terminal_the_clear_error_stays(stocked_cli: Cli, tmp_path: Path) -> None:
    """A new session has no controlling terminal, as under cron or systemd."""
    before = stocked_cli.v("list", "--json").stdout
    with keys_json(tmp_path).open("rb") as stdin:
        done = subprocess.run(
            [*EXVAULT, *ADD_FROM_STDIN, "--vault", str(stocked_cli.vault_path)],
            stdin=stdin,
            capture_output=True,
            text=True,
            env=environment(),
            start_new_session=True,
            timeout=60,
            check=False,
        )
    assert done.returncode == 7, done.stderr
    assert done.stderr == (
        "exvault: error: no terminal to ask for the passphrase; use --passphrase-file FILE "
        "(mode 0600) or set EXVAULT_PASSPHRASE_FILE\n"
    )
    assert done.stdout == ""
    assert stocked_cli.v("list", "--json").stdout == before


def test_init_in_a_terminal_says_where_then_refuses_a_weak_passphrase(cli: Cli) -> None:
    vault = str(cli.vault_path)
    child = spawn_with_stdin_from(Path("/dev/tty"), "init", "--vault", vault, "--insecure-test-kdf")
    child.expect(f"Creating a new vault at {vault}")
    # Three attempts, each refused at once (a weak one before its repeat is asked for).
    child.expect("Enter vault passphrase: ")
    child.sendline("password1")
    child.expect(r"the vault passphrase is too weak \(strength 0 of 4.*; try again\.")
    child.expect("Enter vault passphrase: ")
    child.sendline(PASSPHRASE)
    child.expect("Repeat vault passphrase: ")
    child.sendline(PASSPHRASE + "x")
    child.expect(r"the two entries of the vault passphrase differ; try again\.")
    child.expect("Enter vault passphrase: ")
    child.sendline("password1")
    rest = finish(child)
    assert child.exitstatus == 7, rest
    assert "exvault: error: the vault passphrase is too weak (strength 0 of 4" in rest
    assert "Repeat" not in rest
    assert "password1" not in child.before + rest
    assert not cli.vault_path.exists()


def test_init_in_a_terminal_takes_a_good_passphrase_at_the_second_attempt(cli: Cli) -> None:
    vault = str(cli.vault_path)
    child = spawn_with_stdin_from(Path("/dev/tty"), "init", "--vault", vault, "--insecure-test-kdf")
    child.expect("Enter vault passphrase: ")
    child.sendline("x")
    child.expect("try again")
    child.expect("Enter vault passphrase: ")
    child.sendline(PASSPHRASE)
    child.expect("Repeat vault passphrase: ")
    child.sendline(PASSPHRASE)
    rest = finish(child)
    assert child.exitstatus == 0, rest
    assert f"Created vault at {vault}" in rest
    assert cli.unlocked("verify").exit_code == 0  # the second attempt's passphrase opens it


def failed_unlocks(cli: Cli) -> int:
    """How many refused unlocks the audit log holds."""
    entries = json.loads(cli.v("audit", "--json").stdout)
    return sum(1 for e in entries if e["action"] == "unlock" and e["outcome"] != "ok")


EDIT_IP = ("edit", "binance-main", "--ip", "203.0.113.8", "--no-agent")


def test_a_mistyped_passphrase_may_be_typed_again_twice(stocked_cli: Cli) -> None:
    vault = str(stocked_cli.vault_path)
    child = spawn_with_stdin_from(Path(os.devnull), *EDIT_IP, "--vault", vault)
    for _ in range(2):
        child.expect("Vault passphrase: ")
        child.sendline("not the passphrase")
        child.expect("Wrong passphrase \\(or damaged vault\\); try again.")
    child.expect("Vault passphrase: ")
    child.sendline(PASSPHRASE)
    rest = finish(child)
    assert child.exitstatus == 0, rest
    assert 'Updated "binance-main": now version 2.' in rest
    assert failed_unlocks(stocked_cli) == 2  # each failed attempt audited, as one is


def test_after_three_wrong_passphrases_the_usual_error(stocked_cli: Cli) -> None:
    vault = str(stocked_cli.vault_path)
    before = stocked_cli.v("list", "--json").stdout
    child = spawn_with_stdin_from(Path(os.devnull), *EDIT_IP, "--vault", vault)
    for _ in range(3):
        child.expect("Vault passphrase: ")
        child.sendline("not the passphrase")
    rest = finish(child)
    assert child.exitstatus == 3, rest  # IntegrityError
    assert "exvault: error: wrong passphrase or damaged vault" in rest
    assert rest.count("try again") == 0  # the third failure is final, not "try again"
    assert failed_unlocks(stocked_cli) == 3
    assert stocked_cli.v("list", "--json").stdout == before


def test_a_wrong_passphrase_file_is_read_once(stocked_cli: Cli, tmp_path: Path) -> None:
    """No terminal retry for a file: it would read the same wrong passphrase again."""
    wrong = tmp_path / "wrong"
    wrong.write_text("not the passphrase\n")
    wrong.chmod(0o600)
    result = stocked_cli(
        *EDIT_IP, "--vault", str(stocked_cli.vault_path), "--passphrase-file", str(wrong)
    )
    assert result.exit_code == 3, result.output
    assert "try again" not in result.output
    assert failed_unlocks(stocked_cli) == 1


def draws_a_progress_bar(label: str, *args: str) -> str:
    """Run ``exvault ARGS`` under a pseudo-terminal, expect a bar labelled ``label`` to
    reach 100%, and return what follows once it exited 0."""
    child = pexpect.spawn(
        EXVAULT[0], [*EXVAULT[1:], *args], env=environment(), timeout=60, encoding="utf-8"
    )
    child.expect(label)
    child.expect("100%")
    rest = finish(child)
    assert child.exitstatus == 0, rest
    return rest


def test_verify_in_a_terminal_draws_a_progress_bar(stocked_cli: Cli) -> None:
    vault, passphrase = str(stocked_cli.vault_path), str(stocked_cli.passphrase_file)
    rest = draws_a_progress_bar(
        "Verifying credentials",
        *("verify", "--no-agent", "--vault", vault, "--passphrase-file", passphrase),
    )
    assert "Vault verified: 2 credentials" in rest


def test_audit_verify_in_a_terminal_draws_a_progress_bar(stocked_cli: Cli) -> None:
    rest = draws_a_progress_bar(
        "Verifying the audit log", "audit", "verify", "--vault", str(stocked_cli.vault_path)
    )
    assert "Audit log intact" in rest


def test_rekey_in_a_terminal_draws_a_progress_bar(stocked_cli: Cli) -> None:
    new = "a new one, " + PASSPHRASE
    vault, passphrase = str(stocked_cli.vault_path), str(stocked_cli.passphrase_file)
    child = pexpect.spawn(
        EXVAULT[0],
        [
            *EXVAULT[1:],
            *("passwd", "--rekey", "--insecure-test-kdf", "--vault", vault),
            *("--passphrase-file", passphrase),
        ],
        env=environment(),
        timeout=60,
        encoding="utf-8",
    )
    child.expect("Enter new passphrase: ")
    child.sendline(new)
    child.expect("Repeat new passphrase: ")
    child.sendline(new)
    child.expect("Re-keying credentials")
    child.expect("100%")
    rest = finish(child)
    assert child.exitstatus == 0, rest
    assert "root keys replaced" in rest


def test_restore_in_a_terminal_draws_a_progress_bar(stocked_cli: Cli, tmp_path: Path) -> None:
    # restore verifies the whole backup first: as long as verify on a large vault.
    saved = tmp_path / "backup.db"
    assert stocked_cli.v("backup", str(saved)).exit_code == 0
    vault, passphrase = str(stocked_cli.vault_path), str(stocked_cli.passphrase_file)
    rest = draws_a_progress_bar(
        "Verifying the backup",
        *("restore", str(saved), "--yes", "--vault", vault),
        *("--backup-passphrase-file", passphrase),
    )
    assert "Restored 2 credentials" in rest
