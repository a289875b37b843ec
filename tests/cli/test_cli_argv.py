"""A secret never travels on the command line (SECURITY.md section 3.8).

Two checks: the CLI offers no option that takes a secret value, and a real ``exvault
add`` process, seen from outside through /proc, carries none of the secrets in its
argv or environment while it waits for them on stdin.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import click
import pytest

from tests.conftest import BINANCE_API_KEY, BINANCE_SECRET, PASSPHRASE

# An option whose name mentions one of these takes a secret value, unless it is a flag
# or names a file the secret is read from (or a directory it is written to).
SECRET_WORDS = re.compile(
    r"secret|api[-_]?key|passphrase|password|passwd|token|private[-_]?key|recovery[-_]?key|"
    r"apikey|seed|mnemonic",
    re.IGNORECASE,
)


def walk(command: click.Command, path: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    """Every (sub)command path under ``command`` (a lazy group loads each one)."""
    yield path
    if isinstance(command, click.Group):
        ctx = click.Context(command)
        for name in command.list_commands(ctx):
            sub = command.get_command(ctx, name)
            assert sub is not None, (path, name)
            yield from walk(sub, (*path, name))


def command_at(path: tuple[str, ...]) -> click.Command:
    from vault.cli.main import cli

    command: click.Command = cli
    for name in path:
        assert isinstance(command, click.Group)
        sub = command.get_command(click.Context(command), name)
        assert sub is not None, (path, name)
        command = sub
    return command


def all_params() -> list[tuple[str, click.Parameter]]:
    from vault.cli.main import cli

    return [
        (" ".join(path) or "exvault", param)
        for path in walk(cli)
        for param in command_at(path).params
    ]


def test_the_walk_sees_every_command() -> None:
    from vault.cli.main import cli

    names = {p[0] for p in walk(cli) if p}
    assert {
        "init",
        "add",
        "list",
        "show",
        "edit",
        "history",
        "remove",
        "passwd",
        "recover",
        "exchanges",
        "info",
    } <= names


def test_no_option_takes_a_secret_value() -> None:
    offenders = []
    for where, param in all_params():
        if not isinstance(param, click.Option):
            continue
        names = [*param.opts, *param.secondary_opts, param.name or ""]
        if not any(SECRET_WORDS.search(n) for n in names):
            continue
        if param.is_flag or param.count:
            continue
        # A file the secret is read from, or a directory new secrets are written to
        # (passwd --rekey --tokens-dir): a path, never the secret.
        if all(n.endswith(("-file", "-dir")) for n in [*param.opts, *param.secondary_opts]):
            assert isinstance(param.type, click.Path), (where, param.opts)
            continue
        offenders.append((where, param.opts))
    assert offenders == []


@pytest.mark.parametrize("command", ["init", "add", "show", "edit", "remove", "passwd"])
def test_unlocking_commands_take_a_passphrase_file(command) -> None:
    options = {
        opt: param
        for param in command_at((command,)).params
        if isinstance(param, click.Option)
        for opt in param.opts
    }
    assert "--passphrase-file" in options
    assert isinstance(options["--passphrase-file"].type, click.Path)


def test_no_argument_takes_a_secret() -> None:
    arguments = {
        (where, param.name) for where, param in all_params() if isinstance(param, click.Argument)
    }
    assert ("add", "name") in arguments, "the walk missed add NAME"
    offenders = [(w, n) for w, n in arguments if SECRET_WORDS.search(n or "")]
    assert offenders == []


def test_no_option_reads_an_environment_variable_with_a_secret() -> None:
    # click's envvar=/auto_envvar_prefix would let a secret in through the environment
    # of the process, which other users can read on some systems (ps e).
    for where, param in all_params():
        envvar = param.envvar if isinstance(param.envvar, str) else " ".join(param.envvar or ())
        assert not SECRET_WORDS.search(envvar or "") or envvar.endswith("_FILE"), where


def test_no_option_prompts_with_a_visible_default() -> None:
    # A prompt=True option would echo its default on screen and accept the value in argv.
    for where, param in all_params():
        if isinstance(param, click.Option) and param.prompt:
            assert param.hide_input, (where, param.opts)


def _exvault_command() -> list[str]:
    script = Path(sys.executable).parent / "exvault"
    if script.is_file():
        return [str(script)]
    found = shutil.which("exvault")
    if found:
        return [found]
    return [sys.executable, "-m", "vault.cli.main"]


@pytest.mark.skipif(not Path("/proc/self/cmdline").exists(), reason="needs /proc")
def test_real_add_process_has_no_secret_in_argv(cli_vault) -> None:
    command = [
        *_exvault_command(),
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
        "--vault",
        str(cli_vault.vault_path),
        "--passphrase-file",
        str(cli_vault.passphrase_file),
    ]
    env = {k: v for k, v in os.environ.items() if not k.startswith("EXVAULT_")}
    proc = subprocess.Popen(
        command,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
        text=True,
    )
    try:
        # While it waits for stdin, look at the process as `ps` would.
        # (Wait for the exec: until then /proc shows the forked parent's argv.)
        deadline = time.monotonic() + 10
        cmdline = environ = b""
        while time.monotonic() < deadline and b"binance-main" not in cmdline:
            cmdline = Path(f"/proc/{proc.pid}/cmdline").read_bytes()
            environ = Path(f"/proc/{proc.pid}/environ").read_bytes()
            time.sleep(0.005)
        payload = json.dumps({"api_key": BINANCE_API_KEY, "secret": BINANCE_SECRET})
        out, err = proc.communicate(payload, timeout=30)
    finally:
        if proc.poll() is None:  # pragma: no cover
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, err
    argv = cmdline.decode().split("\0")
    assert "add" in argv and "binance-main" in argv
    for value in (BINANCE_API_KEY, BINANCE_SECRET, PASSPHRASE):
        assert value not in cmdline.decode()
        assert value not in environ.decode(errors="replace")
        assert value not in out
        assert value not in err
    # And it did store what came on stdin.
    shown = cli_vault.unlocked("show", "binance-main", "--field", "secret")
    assert shown.stdout == BINANCE_SECRET + "\n"


def test_real_process_with_a_secret_option_is_refused(cli_vault) -> None:
    r = subprocess.run(
        [
            *_exvault_command(),
            "add",
            "x",
            "--exchange",
            "binance",
            "--secret",
            BINANCE_SECRET,
            "--vault",
            str(cli_vault.vault_path),
        ],
        capture_output=True,
        text=True,
        timeout=30,
        stdin=subprocess.DEVNULL,
    )
    assert r.returncode == 2
    assert "No such option" in r.stderr
    assert BINANCE_SECRET not in r.stderr + r.stdout
