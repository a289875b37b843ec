"""Files holding a secret (passphrase, token, recovery key): what is refused."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.conftest import without_blocking_on
from vault.errors import InvalidInput
from vault.runtime.secretfile import read_secret_file
from vault.runtime.token import find_token


def test_a_fifo_as_passphrase_file_is_refused_at_once(tmp_path: Path) -> None:
    fifo = tmp_path / "pass"
    os.mkfifo(fifo, 0o600)
    with pytest.raises(InvalidInput, match="is not a regular file"):
        without_blocking_on(fifo, lambda: read_secret_file(fifo))


def test_a_fifo_as_token_file_is_refused_at_once(tmp_path: Path) -> None:
    fifo = tmp_path / "token"
    os.mkfifo(fifo, 0o600)
    with pytest.raises(InvalidInput, match=r"token file .* is not a regular file"):
        without_blocking_on(fifo, lambda: find_token({"EXVAULT_TOKEN_FILE": str(fifo)}))


def test_a_fifo_as_systemd_credential_is_refused_at_once(tmp_path: Path) -> None:
    fifo = tmp_path / "exvault-token"
    os.mkfifo(fifo, 0o600)
    with pytest.raises(InvalidInput, match="is not a regular file"):
        without_blocking_on(fifo, lambda: find_token({"CREDENTIALS_DIRECTORY": str(tmp_path)}))


def test_a_directory_as_passphrase_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match="is not a regular file"):
        read_secret_file(tmp_path)
