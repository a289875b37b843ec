"""File modes: the vault file 0600 in a 0700 directory, whatever the caller's umask."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import PASSPHRASE


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def permissive_umask():  # type: ignore[no-untyped-def]
    old = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(old)


def test_init_creates_0700_directory_and_0600_file(cli, permissive_umask) -> None:
    assert not cli.vault_path.parent.exists()
    r = cli.init()
    assert r.exit_code == 0, r.output
    assert mode(cli.vault_path.parent) == 0o700
    assert mode(cli.vault_path) == 0o600


def test_nested_missing_directories_are_0700(cli, tmp_path, permissive_umask) -> None:
    deep = tmp_path / "a" / "b" / "vault.db"
    r = cli(
        "init",
        "--vault",
        str(deep),
        "--insecure-test-kdf",
        input=f"{PASSPHRASE}\n{PASSPHRASE}\n",
    )
    assert r.exit_code == 0, r.output
    assert mode(deep.parent) == 0o700
    assert mode(deep) == 0o600


def test_every_file_stays_0600_after_writes(cli, binance_payload, permissive_umask) -> None:
    assert cli.init().exit_code == 0
    os.umask(0o022)  # the CLI tightened it; loosen again before each command
    r = cli.unlocked(
        "add", "b", "-e", "binance", "--from-json", "-", input=json.dumps(binance_payload)
    )
    assert r.exit_code == 0, r.output
    os.umask(0o022)
    assert cli.unlocked("edit", "b", "--permissions", "read").exit_code == 0
    os.umask(0o022)
    assert (
        cli.unlocked(
            "passwd", "--insecure-test-kdf", input="new passphrase\nnew passphrase\n"
        ).exit_code
        == 0
    )
    files = list(cli.vault_path.parent.iterdir())
    assert cli.vault_path in files
    for path in files:
        assert mode(path) == 0o600, path


def test_real_process_with_umask_022(tmp_path) -> None:
    vault = tmp_path / "proc" / "vault.db"
    script = Path(sys.executable).parent / "exvault"
    command = [str(script)] if script.is_file() else [sys.executable, "-m", "vault.cli.main"]
    r = subprocess.run(
        [*command, "init", "--vault", str(vault), "--insecure-test-kdf"],
        input=f"{PASSPHRASE}\n{PASSPHRASE}\n",
        capture_output=True,
        text=True,
        timeout=60,
        preexec_fn=lambda: os.umask(0o022),
    )
    assert r.returncode == 0, r.stderr
    assert mode(vault.parent) == 0o700
    assert mode(vault) == 0o600
