"""``exvault unlock``, ``lock``, ``agent status`` and ``--no-agent``, through the CLI.

Without a terminal an owner command cannot ask for the passphrase: one that succeeds
without ``--passphrase-file`` went through the agent.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pexpect
import pytest

from tests.conftest import BINANCE_SECRET, PASSPHRASE, Cli
from vault.db.sqlite_store import SqliteStore


def unlock(cli: Cli, *extra: str) -> None:
    result = cli.unlocked("unlock", *extra)
    assert result.exit_code == 0, result.output


def agent_status(cli: Cli) -> dict[str, object]:
    result = cli("agent", "status", "--json")
    assert result.exit_code == 0, result.output
    status = json.loads(result.output)
    assert isinstance(status, dict)
    return status


def test_owner_commands_run_through_the_agent_without_the_passphrase(stocked_cli: Cli) -> None:
    unlock(stocked_cli)
    shown = stocked_cli.v("show", "binance-main", "--field", "secret")
    assert shown.exit_code == 0, shown.output
    assert shown.output.strip() == BINANCE_SECRET
    assert stocked_cli.v("client", "add", "grid-bot", "--max-scope", "trade").exit_code == 0
    granted = stocked_cli.v("grant", "grid-bot", "binance-main")
    assert granted.exit_code == 0, granted.output
    edited = stocked_cli.v("edit", "binance-main", "--ip", "203.0.113.8")
    assert edited.exit_code == 0, edited.output
    audit = stocked_cli.v("audit", "verify")
    assert audit.exit_code == 0, audit.output
    verified = stocked_cli.unlocked("verify", "--no-agent")
    assert verified.exit_code == 0, verified.output


class StoreOpenings:
    """Counts the vault's store being opened and disposed of in one command."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.opened = 0
        self.disposed = 0
        real_open = SqliteStore.open.__func__  # type: ignore[attr-defined]
        real_dispose = SqliteStore.dispose

        def counted_open(cls: type[SqliteStore], *args: Any, **kwargs: Any) -> SqliteStore:
            self.opened += 1
            return real_open(cls, *args, **kwargs)  # type: ignore[no-any-return]

        def counted_dispose(store: SqliteStore) -> None:
            self.disposed += 1
            real_dispose(store)

        monkeypatch.setattr(SqliteStore, "open", classmethod(counted_open))
        monkeypatch.setattr(SqliteStore, "dispose", counted_dispose)


def test_through_the_agent_a_command_opens_the_vault_once(
    stocked_cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert stocked_cli.unlocked("client", "add", "grid-bot", "--max-scope", "trade").exit_code == 0
    assert stocked_cli.unlocked("grant", "grid-bot", "kucoin-sub1").exit_code == 0
    unlock(stocked_cli)
    for command in (
        ("show", "binance-main", "--field", "secret"),
        ("grant", "grid-bot", "binance-main"),
        ("ungrant", "grid-bot", "kucoin-sub1"),
        ("edit", "binance-main", "--ip", "203.0.113.9"),
    ):
        stores = StoreOpenings(monkeypatch)
        result = stocked_cli.v(*command)
        assert result.exit_code == 0, (command, result.output)
        # The keyless check ("no such credential" before a prompt) read through the
        # agent's handle: one opening, closed at the end.
        assert (stores.opened, stores.disposed) == (1, 1), command


def test_through_the_agent_a_failed_check_closes_the_handle(
    stocked_cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    unlock(stocked_cli)
    stores = StoreOpenings(monkeypatch)
    result = stocked_cli.v("show", "no-such-key", "--field", "secret")
    assert result.exit_code == 4 and "no-such-key" in result.output
    assert (stores.opened, stores.disposed) == (1, 1)


def test_without_the_agent_the_check_comes_before_the_prompt(stocked_cli: Cli) -> None:
    unlock(stocked_cli)
    for command in (
        ("show", "no-such-key", "--field", "secret"),
        ("grant", "no-such-client", "binance-main"),
        ("edit", "no-such-key", "--ip", "203.0.113.9"),
    ):
        # No terminal, no passphrase file: reaching the prompt would fail with exit 7.
        result = stocked_cli.v(*command, "--no-agent")
        assert result.exit_code == 4, result.output
        assert "no-such" in result.output


def test_without_the_agent_the_command_asks(stocked_cli: Cli) -> None:
    shown = stocked_cli.v("show", "binance-main", "--field", "secret")
    assert shown.exit_code == 7 and "no terminal" in shown.output


def test_no_agent_forces_the_prompt(stocked_cli: Cli) -> None:
    unlock(stocked_cli)
    shown = stocked_cli.v("show", "binance-main", "--field", "secret", "--no-agent")
    assert shown.exit_code == 7 and "no terminal" in shown.output


def test_a_second_unlock_reuses_the_agent(stocked_cli: Cli) -> None:
    unlock(stocked_cli)
    first = agent_status(stocked_cli)
    unlock(stocked_cli, "--idle", "5m")
    second = agent_status(stocked_cli)
    assert first["pid"] == second["pid"]
    vaults = second["vaults"]
    assert isinstance(vaults, list) and len(vaults) == 1
    assert vaults[0]["idle_seconds"] == 300 and vaults[0]["max_seconds"] == 8 * 3600


def test_status_names_the_vault_and_when_it_locks(stocked_cli: Cli) -> None:
    unlock(stocked_cli, "--idle", "10m", "--max", "1h")
    text = stocked_cli("agent", "status")
    assert text.exit_code == 0
    assert str(stocked_cli.vault_path) in text.output and "10m" in text.output
    also = stocked_cli("unlock", "--status", "--json")
    vault = json.loads(also.output)["vaults"][0]
    assert vault["location"] == str(stocked_cli.vault_path)
    assert 0 < vault["locks_in_seconds"] <= 600


def test_status_without_an_agent(cli: Cli) -> None:
    assert agent_status(cli) == {"running": False, "vaults": []}
    assert "No unlock agent" in cli("agent", "status").output


def test_lock_makes_commands_ask_again(stocked_cli: Cli) -> None:
    unlock(stocked_cli)
    locked = stocked_cli.v("lock")
    assert locked.exit_code == 0 and "Locked." in locked.output
    shown = stocked_cli.v("show", "binance-main", "--field", "secret")
    assert shown.exit_code == 7
    assert "was not unlocked" in stocked_cli.v("lock").output


def test_lock_all(stocked_cli: Cli) -> None:
    unlock(stocked_cli)
    result = stocked_cli("lock", "--all")
    assert result.exit_code == 0 and "Locked 1 vault" in result.output
    assert agent_status(stocked_cli)["vaults"] == []


def test_passwd_locks_the_vault_in_the_agent(cli_vault: Cli) -> None:
    unlock(cli_vault)
    new = "other one entirely, and longer"
    changed = cli_vault.unlocked("passwd", "--insecure-test-kdf", input=f"{new}\n{new}\n")
    assert changed.exit_code == 0, changed.output
    assert agent_status(cli_vault)["vaults"] == []
    assert cli_vault.v("list").exit_code == 0  # keyless commands never needed it


def test_passwd_never_uses_the_agent(cli_vault: Cli) -> None:
    unlock(cli_vault)
    changed = cli_vault.v("passwd", input="other one\nother one\n")
    assert changed.exit_code == 7 and "no terminal" in changed.output


def test_a_wrong_passphrase_starts_no_agent(cli_vault: Cli, tmp_path: Path) -> None:
    wrong = tmp_path / "wrong"
    wrong.write_text("not it\n")
    wrong.chmod(0o600)
    result = cli_vault.v("unlock", "--passphrase-file", str(wrong))
    assert result.exit_code == 3
    assert agent_status(cli_vault)["running"] is False


def test_unlock_refuses_more_than_a_week(cli_vault: Cli) -> None:
    result = cli_vault.unlocked("unlock", "--max", "8d")
    assert result.exit_code == 7 and "at most 7d" in result.output


def test_unlock_refuses_a_bad_duration(cli_vault: Cli) -> None:
    result = cli_vault.unlocked("unlock", "--idle", "15 minutes")
    assert result.exit_code == 7 and "bad duration" in result.output


def test_unlock_of_no_vault_asks_nothing(cli: Cli) -> None:
    result = cli.unlocked("unlock")
    assert result.exit_code == 8


def test_schedule_systemd_verify_loads_the_sealed_passphrase(cli: Cli) -> None:
    result = cli.v("schedule", "--systemd", "--verify")
    assert result.exit_code == 0, result.output
    assert (
        "LoadCredentialEncrypted=exvault-passphrase:/etc/credstore.encrypted/exvault-passphrase"
        in result.output
    )
    assert "Environment=EXVAULT_PASSPHRASE_FILE=%d/exvault-passphrase" in result.output
    assert f"verify --vault {cli.vault_path}" in result.output


def test_schedule_without_verify_loads_no_passphrase(cli: Cli) -> None:
    result = cli.v("schedule", "--systemd")
    assert result.exit_code == 0 and "LoadCredentialEncrypted" not in result.output


def test_schedule_verify_needs_systemd(cli: Cli) -> None:
    result = cli.v("schedule", "--cron", "0 8 * * *", "--verify")
    assert result.exit_code == 2 and "--verify goes with --systemd" in result.output


def test_unlock_prompt_through_a_real_terminal(stocked_cli: Cli) -> None:
    vault = str(stocked_cli.vault_path)
    command = [sys.executable, "-m", "vault.cli.main"]
    env = dict(os.environ)
    env.pop("EXVAULT_PASSPHRASE_FILE", None)
    child = pexpect.spawn(
        command[0], [*command[1:], "unlock", "--vault", vault], env=env, timeout=60
    )
    child.expect("Vault passphrase: ")
    child.sendline(PASSPHRASE)
    child.expect("Unlocked")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0
    # Now a command at a terminal asks nothing.
    shown = pexpect.spawn(
        command[0],
        [*command[1:], "show", "binance-main", "--field", "secret", "--vault", vault],
        env=env,
        timeout=60,
    )
    index = shown.expect([BINANCE_SECRET, "passphrase"])
    shown.expect(pexpect.EOF)
    shown.close()
    assert index == 0 and shown.exitstatus == 0


@pytest.mark.parametrize("command", ["unlock", "lock"])
def test_help_mentions_the_agent(cli: Cli, command: str) -> None:
    assert "agent" in cli(command, "--help").output


_NOT_RUN = {
    # What these commands never run: making a vault, the passphrase and recovery key,
    # rekey, policies, probe observations (vault.owner.admin imports each when
    # called), a client's reads (cli/reading.py), starting an agent, and the exchange
    # profiles, which only a change of a key's fields or metadata checks against. Nor
    # cryptography's OpenSSL backend module, which its X25519 constructors load
    # (vault.format.x25519 says why and how it is avoided).
    "cryptography.hazmat.backends.openssl.backend",
    "hashlib",
    "vault.agent.launch",
    "vault.exchanges.key_report",
    "vault.exchanges.profiles",
    "vault.format.passphrase_kdf",
    "vault.format.policy",
    "vault.format.recovery",
    "vault.owner.agent_handover",
    "vault.owner.observations",
    "vault.owner.passphrase",
    "vault.owner.policies",
    "vault.owner.rekey",
    "vault.runtime.client",
}

_LOADED_AT_EXIT = (
    "import atexit, sys\n"
    "out_path = sys.argv[1]\n"
    "def report():\n"
    "    top = {m.split('.')[0] for m in sys.modules}\n"
    "    heavy = sorted(top & {'sqlalchemy', 'argon2', 'ccxt', 'psycopg'})\n"
    "    heavy += sorted(top & {'subprocess', 'tempfile'})\n"
    "    heavy += sorted(m for m in sys.modules if m.startswith(('vault.ops', 'vault.db.store')))\n"
    f"    heavy += sorted(set(sys.modules) & set({sorted(_NOT_RUN)!r}))\n"
    "    with open(out_path, 'w') as out:\n"
    "        out.write(' '.join(heavy))\n"
    "atexit.register(report)\n"
    "from vault.cli.main import main\n"
    "sys.argv = ['exvault', *sys.argv[2:]]\n"
    "main()\n"
)


@pytest.mark.parametrize(
    "command",
    [
        ("show", "binance-main", "--field", "secret"),
        ("edit", "binance-main", "--ip", "203.0.113.9"),
        ("grant", "grid-bot", "binance-main"),
    ],
    ids=["show", "edit", "grant"],
)
def test_an_owner_command_through_the_agent_loads_only_what_it_runs(
    stocked_cli: Cli, tmp_path: Path, command: tuple[str, ...]
) -> None:
    # What lets an owner's command through the agent start as fast as `exvault
    # --version` (docs/benchmarks.md, the unlock agent's section): on a vault file it
    # reads and writes through sqlite3 alone and runs no KDF, in a new process as a
    # user runs it. Nor does it load what only starting an agent needs (subprocess,
    # and tempfile for the agent directory without XDG_RUNTIME_DIR), nor the modules of
    # operations it does not run (_NOT_RUN): each costs every such command its import.
    unlock(stocked_cli)
    assert stocked_cli.v("client", "add", "grid-bot", "--max-scope", "trade").exit_code == 0
    report = tmp_path / "loaded"
    env = {**os.environ, "EXVAULT_PATH": str(stocked_cli.vault_path)}
    env.pop("EXVAULT_URL", None)
    done = subprocess.run(
        [sys.executable, "-c", _LOADED_AT_EXIT, str(report), *command],
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    if command[0] == "show":
        assert done.stdout.strip() == BINANCE_SECRET
    # edit checks the key's new IPs against the exchange's profile; nothing else is loaded.
    assert report.read_text() == ("vault.exchanges.profiles" if command[0] == "edit" else "")
