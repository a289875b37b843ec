"""``exvault run`` end to end: the installed console script in a subprocess, a vault
made by the library, a client token in a 0600 file named by EXVAULT_TOKEN_FILE."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import (
    KUCOIN_API_KEY,
    KUCOIN_PASSPHRASE,
    KUCOIN_SECRET,
    Cli,
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


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--cred", "kucoin-sub1"], "say which variables to set"),
        (["--cred", "kucoin-sub1", "--preset", "hummingbot"], 'unknown preset "hummingbot"'),
        (["--cred", "kucoin-sub1", "--env", "1BAD=secret"], "bad --env"),
        (["--cred", "kucoin-sub1", "--env", "NOEQUALS"], "bad --env"),
        (["--cred", "a", "--cred", "b", "--preset", "ccxt"], "needs exactly one --cred"),
        (["--cred", "a", "--cred", "b", "--env", "K=secret"], "needs exactly one --cred"),
        (["--cred", "a", "--env", "K=b.secret"], "names a credential that is not a --cred"),
        (["--cred", "a", "--stage", "later", "--env", "K=secret"], "Invalid value for '--stage'"),
        (["--env", "K=secret"], "Missing option '--cred'"),
    ],
)
def test_usage_errors_exit_2_before_any_unlock(cli: Cli, args: list[str], message: str) -> None:
    """The vault does not exist: a usage error must be reported before it is looked at."""
    result = cli("run", "--vault", str(cli.vault_path), *args, "--", "true")
    assert result.exit_code == 2, result.output
    assert message in result.output
    assert result.output.count("\n") == 1 and "Traceback" not in result.output
    assert result.output.endswith(" run --help)\n")
    assert not cli.vault_path.exists()


def test_no_command_exits_2(cli: Cli) -> None:
    result = cli("run", "--vault", str(cli.vault_path), "--cred", "a", "--env", "K=secret")
    assert result.exit_code == 2 and "Missing argument 'COMMAND...'" in result.output


CCXT_SHOW = """
import os
for k in ("KUCOIN_API_KEY", "KUCOIN_SECRET", "KUCOIN_PASSWORD", "KUCOIN_UID"):
    print(k, len(os.environ[k]), os.environ[k])
"""


def test_preset_ccxt_sets_the_exchanges_variables_masked(
    vault_path: Path, token_file: Path
) -> None:
    result = exvault_run(
        vault_path,
        ["--cred", "kucoin-sub1", "--preset", "ccxt"],
        [sys.executable, "-c", CCXT_SHOW],
        {**base_env(), "EXVAULT_TOKEN_FILE": str(token_file)},
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        f"KUCOIN_API_KEY {len(KUCOIN_API_KEY)} ********",
        f"KUCOIN_SECRET {len(KUCOIN_SECRET)} ********",
        f"KUCOIN_PASSWORD {len(KUCOIN_PASSPHRASE)} ********",
        f"KUCOIN_UID {len(UID)} ********",
    ]


# Prints a line, then waits (up to 20 s) for the test to say it has read that line.
WAIT_FOR_READER = """
import os, sys, time
print("before the pause")
deadline = time.monotonic() + 20
while not os.path.exists(sys.argv[1]):
    if time.monotonic() > deadline:
        sys.exit(3)
    time.sleep(0.02)
print("after the pause")
"""


def test_a_pipe_gets_a_line_before_the_program_exits(
    vault_path: Path, token_file: Path, tmp_path: Path
) -> None:
    """exvault's stdout is a pipe: a Python program's line printed before a pause
    arrives while the program still runs (not when it exits)."""
    marker = tmp_path / "line-read"
    env = {k: v for k, v in base_env().items() if k != "PYTHONUNBUFFERED"}
    command = [
        *exvault_command(),
        "run",
        "--vault",
        str(vault_path),
        "--cred",
        "kucoin-sub1",
        "--preset",
        "ccxt",
        "--",
        sys.executable,
        "-c",
        WAIT_FOR_READER,
        str(marker),
    ]
    with subprocess.Popen(
        command,
        env={**env, "EXVAULT_TOKEN_FILE": str(token_file)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    ) as process:
        assert process.stdout is not None
        first = process.stdout.readline()
        running_then = process.poll() is None
        marker.touch()
        rest, err = process.communicate(timeout=60)
    assert first == b"before the pause\n", err
    assert running_then, "the line came only when the program exited"
    assert rest == b"after the pause\n"
    assert process.returncode == 0


TTY_SHOW = """
import os, sys
print("isatty", os.isatty(0), os.isatty(1), os.isatty(2))
print("size", *os.get_terminal_size(1))
print("\\x1b[31mred\\x1b[0m")
print("key=" + os.environ["KUCOIN_API_KEY"])
print("secret=" + os.environ["KUCOIN_SECRET"], file=sys.stderr)
"""


def spawn_run_in_a_terminal(
    vault_path: Path,
    token_file: Path,
    options: tuple[str, ...],
    program: str,
    dimensions: tuple[int, int],
) -> Any:
    """``exvault run --cred kucoin-sub1 OPTIONS -- python -c PROGRAM`` as the client of
    ``token_file``, on a real pseudo-terminal of ``dimensions`` (rows, columns)."""
    import pexpect

    command = exvault_command()
    return pexpect.spawn(
        command[0],
        [
            *command[1:],
            *("run", "--vault", str(vault_path), "--cred", "kucoin-sub1", *options),
            *("--", sys.executable, "-c", program),
        ],
        env={**base_env(), "EXVAULT_TOKEN_FILE": str(token_file)},
        timeout=60,
        dimensions=dimensions,
    )


def test_on_a_terminal_the_program_gets_one_and_its_output_is_masked(
    vault_path: Path, token_file: Path
) -> None:
    """A real pseudo-terminal: exvault's stdout and stderr are a terminal, so the
    program's are too, of the same size (colours pass), and what it prints is still
    masked."""
    pexpect = pytest.importorskip("pexpect")
    child = spawn_run_in_a_terminal(
        vault_path, token_file, ("--preset", "ccxt"), TTY_SHOW, dimensions=(33, 101)
    )
    child.expect(pexpect.EOF)
    child.close()
    output = child.before.decode()
    assert child.exitstatus == 0, output
    assert "isatty True True True" in output
    assert "size 101 33" in output  # the pseudo-terminal has the terminal's size
    assert "\x1b[31mred\x1b[0m" in output
    assert "key=********" in output and "secret=********" in output
    assert KUCOIN_API_KEY not in output and KUCOIN_SECRET not in output


# Says it is ready, then waits (up to 20 s) until its terminal is 120 x 40.
WAIT_FOR_RESIZE = """
import os, sys, time
print("ready", *os.get_terminal_size(1), flush=True)
deadline = time.monotonic() + 20
while tuple(os.get_terminal_size(1)) != (120, 40):
    if time.monotonic() > deadline:
        sys.exit(3)
    time.sleep(0.02)
print("resized", *os.get_terminal_size(1), flush=True)
"""


def test_resizing_the_terminal_resizes_the_programs(vault_path: Path, token_file: Path) -> None:
    pexpect = pytest.importorskip("pexpect")
    child = spawn_run_in_a_terminal(
        vault_path, token_file, ("--env", "K=api_key"), WAIT_FOR_RESIZE, dimensions=(24, 80)
    )
    child.expect("ready 80 24")
    child.setwinsize(40, 120)  # the kernel sends exvault SIGWINCH
    child.expect("resized 120 40")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0
