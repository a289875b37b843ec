"""``exvault run`` end to end: the installed console script in a subprocess, a vault
made by the library, a client token in a 0600 file named by EXVAULT_TOKEN_FILE."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

import pytest

from tests.conftest import (
    KUCOIN_API_KEY,
    KUCOIN_PASSPHRASE,
    KUCOIN_SECRET,
    write_secret_file,
)
from vault.owner.admin import AdminVault

UID = "4815162342"
SECRETS = (KUCOIN_API_KEY, KUCOIN_SECRET, KUCOIN_PASSPHRASE, UID)

# The child shows its freqtrade variables, its argv and its /proc/self/cmdline, and
# whether any exvault variable reached it.
SHOW = """
import os, sys
for k in sorted(os.environ):
    if k.startswith("FREQTRADE__") or k.startswith("KC_"):
        print(k + "=" + os.environ[k])
print("ARGV=" + repr(sys.argv))
if os.path.exists("/proc/self/cmdline"):
    with open("/proc/self/cmdline", "rb") as f:
        print("CMDLINE=" + repr(f.read()))
else:
    print("CMDLINE=" + repr(sys.argv))
print("VAULT_VARS=" + ",".join(k for k in sorted(os.environ) if k.startswith("EXVAULT_TOKEN")
                               or k == "EXVAULT_PASSPHRASE_FILE"))
"""


def exvault_command() -> list[str]:
    script = Path(sys.executable).parent / "exvault"
    if script.exists():
        return [str(script)]
    return [sys.executable, "-m", "vault.cli.main"]


@pytest.fixture
def kucoin_vault(admin: AdminVault) -> AdminVault:
    admin.add(
        "kucoin-sub1",
        "kucoin",
        {
            "api_key": KUCOIN_API_KEY,
            "secret": KUCOIN_SECRET,
            "passphrase": KUCOIN_PASSPHRASE,
            "uid": UID,
        },
        permissions="read,trade",
        ips=["198.51.100.7"],
    )
    return admin


@pytest.fixture
def token_file(kucoin_vault: AdminVault, tmp_path: Path) -> Path:
    _, token = kucoin_vault.add_client("freqtrade-bot", max_scope="trade")
    kucoin_vault.grant("freqtrade-bot", ["kucoin-sub1"])
    return write_secret_file(tmp_path / "bot.token", token)


def base_env() -> dict[str, str]:
    """This process's environment without any exvault setting of the developer's."""
    return {k: v for k, v in os.environ.items() if not k.startswith("EXVAULT_")}


def exvault_run(
    vault_path: Path,
    args: Sequence[str],
    child: Sequence[str],
    env: dict[str, str],
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*exvault_command(), "run", "--vault", str(vault_path), *args, "--", *child],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def show(vault_path: Path, token_file: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return exvault_run(
        vault_path,
        ["--cred", "kucoin-sub1", "--preset", "freqtrade", *extra],
        [sys.executable, "-c", SHOW],
        {**base_env(), "EXVAULT_TOKEN_FILE": str(token_file)},
    )


def lines(result: subprocess.CompletedProcess[str], prefix: str) -> list[str]:
    return [line for line in result.stdout.splitlines() if line.startswith(prefix)]


def test_preset_freqtrade_values_are_masked(vault_path: Path, token_file: Path) -> None:
    result = show(vault_path, token_file)
    assert result.returncode == 0, result.stderr
    assert lines(result, "FREQTRADE__") == [
        "FREQTRADE__EXCHANGE__KEY=********",
        "FREQTRADE__EXCHANGE__PASSWORD=********",
        "FREQTRADE__EXCHANGE__SECRET=********",
        "FREQTRADE__EXCHANGE__UID=********",
    ]
    for value in SECRETS:
        assert value not in result.stdout + result.stderr
    assert lines(result, "VAULT_VARS=") == ["VAULT_VARS="]


def test_no_masking_shows_real_values_never_in_argv(vault_path: Path, token_file: Path) -> None:
    result = show(vault_path, token_file, "--no-masking")
    assert result.returncode == 0, result.stderr
    assert lines(result, "FREQTRADE__") == [
        f"FREQTRADE__EXCHANGE__KEY={KUCOIN_API_KEY}",
        f"FREQTRADE__EXCHANGE__PASSWORD={KUCOIN_PASSPHRASE}",
        f"FREQTRADE__EXCHANGE__SECRET={KUCOIN_SECRET}",
        f"FREQTRADE__EXCHANGE__UID={UID}",
    ]
    # Neither the values nor the token are in the child's argv; exvault's own
    # variables are not passed on.
    token = token_file.read_text().strip()
    (argv,) = lines(result, "ARGV=")
    (cmdline,) = lines(result, "CMDLINE=")
    for value in (*SECRETS, token):
        assert value not in argv
        assert value not in cmdline
    assert lines(result, "VAULT_VARS=") == ["VAULT_VARS="]
    assert token not in result.stdout + result.stderr


def test_generic_env_mapping_with_token_in_environment(vault_path: Path, token_file: Path) -> None:
    token = token_file.read_text().strip()
    result = exvault_run(
        vault_path,
        ["--cred", "kucoin-sub1", "--env", "KC_KEY=api_key", "--env", "KC_PASS=passphrase"],
        [sys.executable, "-c", SHOW],
        {**base_env(), "EXVAULT_TOKEN": token},
    )
    assert result.returncode == 0, result.stderr
    assert lines(result, "KC_") == ["KC_KEY=********", "KC_PASS=********"]
    assert lines(result, "FREQTRADE__") == []
    assert lines(result, "VAULT_VARS=") == ["VAULT_VARS="]
    assert token not in result.stdout + result.stderr


def test_exit_code_of_the_child_passed_through(vault_path: Path, token_file: Path) -> None:
    result = exvault_run(
        vault_path,
        ["--cred", "kucoin-sub1", "--preset", "freqtrade"],
        [sys.executable, "-c", "import sys; print('bye'); sys.exit(42)"],
        {**base_env(), "EXVAULT_TOKEN_FILE": str(token_file)},
    )
    assert result.returncode == 42
    assert result.stdout == "bye\n"


def test_token_file_readable_by_others_is_refused(vault_path: Path, token_file: Path) -> None:
    os.chmod(token_file, 0o644)
    token = token_file.read_text().strip()
    result = show(vault_path, token_file)
    assert result.returncode == 10
    assert result.stdout == ""
    assert len(result.stderr.splitlines()) == 1
    assert result.stderr.startswith("exvault: error: ")
    assert "0644" in result.stderr and "chmod 600" in result.stderr
    assert "Traceback" not in result.stderr
    assert token not in result.stderr


def test_admin_mode_with_passphrase_file(
    vault_path: Path, kucoin_vault: AdminVault, passphrase_file: Path
) -> None:
    result = exvault_run(
        vault_path,
        [
            "--cred",
            "kucoin-sub1",
            "--preset",
            "freqtrade",
            "--passphrase-file",
            str(passphrase_file),
        ],
        [sys.executable, "-c", SHOW],
        base_env(),
    )
    assert result.returncode == 0, result.stderr
    assert lines(result, "FREQTRADE__EXCHANGE__KEY=") == ["FREQTRADE__EXCHANGE__KEY=********"]
    assert lines(result, "VAULT_VARS=") == ["VAULT_VARS="]


def test_admin_mode_without_token_or_passphrase_fails_cleanly(
    vault_path: Path, kucoin_vault: AdminVault
) -> None:
    result = subprocess.run(
        [
            *exvault_command(),
            "run",
            "--vault",
            str(vault_path),
            "--cred",
            "kucoin-sub1",
            "--preset",
            "freqtrade",
            "--",
            sys.executable,
            "-c",
            "print('should not run')",
        ],
        env=base_env(),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 7
    assert "should not run" not in result.stdout
    assert "passphrase" in result.stderr and "Traceback" not in result.stderr


# The child prints half of its secret, in two writes a moment apart (two reads for
# exvault), on stdout and on stderr.
HALF = """
import os, sys, time
secret = os.environ["FREQTRADE__EXCHANGE__SECRET"]
half = secret[: len(secret) // 2]
for stream in (sys.stdout, sys.stderr):
    stream.write("half=" + half[:5])
    stream.flush()
    time.sleep(0.2)
    stream.write(half[5:] + "\\n")
    stream.flush()
"""


def test_half_a_secret_printed_in_two_writes_is_masked(vault_path: Path, token_file: Path) -> None:
    assert len(KUCOIN_SECRET) // 2 >= 12
    result = exvault_run(
        vault_path,
        ["--cred", "kucoin-sub1", "--preset", "freqtrade"],
        [sys.executable, "-c", HALF],
        {**base_env(), "EXVAULT_TOKEN_FILE": str(token_file)},
    )
    assert result.returncode == 0, result.stderr
    assert (result.stdout, result.stderr) == ("half=********\n", "half=********\n")
