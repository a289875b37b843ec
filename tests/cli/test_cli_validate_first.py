"""Every value a command can check is checked before the passphrase is read (issue 16,
item 4): a typo is reported in one line and the passphrase file, named here as one that
does not exist, is never opened, so a person at a prompt would not have typed it."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import Cli

VALIDATION_FIRST = [
    # (command line after "exvault", the start of the one-line error)
    (("add", "new-key", "--exchange", "nosuchx"), "unknown exchange"),
    (("add", "new-key", "--exchange", "binance", "--ip", "300.1.1.1"), "IP"),
    (("add", "new-key", "--exchange", "binance", "--permissions", "fly"), "permission"),
    (("add", "new-key", "--exchange", "binance", "--issued", "2999-01-01"), "future"),
    (("add", "new-key", "--exchange", "binance", "--expires", "2001-01-01"), "before"),
    (("add", "new-key", "--exchange", "binance", "--ask", "Bad-Field"), "field"),
    (("add", "binance-main", "--exchange", "binance"), "exists already"),
    (("add", "bad name!", "--exchange", "binance"), "name"),
    (("edit", "binance-main", "--ip", "not-an-ip"), "IP"),
    (("edit", "binance-main", "--permissions", "fly"), "permission"),
    (("edit", "binance-main", "--expires", "2001-01-01"), "before"),
    (("edit", "nosuch", "--permissions", "read"), "no credential"),
    (("grant", "nosuch-bot", "binance-main"), "no client"),
    (("ungrant", "nosuch-bot", "binance-main"), "no client"),
    (("client", "add", "bot2", "--max-scope", "fly"), "permission"),
    (("client", "add", "bot2", "--expires", "soon"), ""),
    (("client", "add", "bot2", "--expires", "2001-01-01"), "the client's expiry is in the past"),
    (("client", "revoke", "nosuch-bot"), "no client"),
    (("rotate", "start", "binance-main", "--ip", "300.1.1.1"), "IP"),
    (("rotate", "start", "binance-main", "--permissions", "fly"), "permission"),
    (("rotate", "start", "nosuch"), "no credential"),
    (("policy", "set", "nosuch", "--max-age", "30d"), "no credential"),
    (("policy", "set", "binance-main", "--grace", "1.5x"), ""),
    (("policy", "clear-risk", "nosuch", "withdraw-enabled"), "no credential"),
    (("policy", "accept-risk", "nosuch", "withdraw-enabled", "--reason", "r"), "no credential"),
    (("rotate", "verify", "nosuch"), "no credential"),
    (("rotate", "promote", "nosuch"), "no credential"),
    (("rotate", "rollback", "nosuch"), "no credential"),
    (("rotate", "finish", "nosuch"), "no credential"),
    (("rotate", "abort", "nosuch"), "no credential"),
    (("show", "nosuch", "--field", "secret"), "no credential"),
]


@pytest.mark.parametrize(
    ("args", "error"), VALIDATION_FIRST, ids=lambda a: " ".join(a) if isinstance(a, tuple) else None
)
def test_a_bad_value_is_reported_before_the_passphrase_is_read(
    stocked_cli: Cli, tmp_path: Path, args: tuple[str, ...], error: str
) -> None:
    missing = tmp_path / "no-such-passphrase-file"
    before = stocked_cli.vault_path.read_bytes()
    result = stocked_cli(
        *args, "--vault", str(stocked_cli.vault_path), "--passphrase-file", str(missing)
    )
    assert result.exit_code not in (0, 1), result.output  # 1 would be an unexpected error
    assert "Traceback" not in result.output
    assert "passphrase file" not in result.output, result.output
    assert str(missing) not in result.output
    assert error.lower() in result.output.lower()
    lines = [line for line in result.output.splitlines() if line.startswith("exvault:")]
    assert len(lines) == 1 or "Usage:" in result.output, result.output
    assert stocked_cli.vault_path.read_bytes() == before


def test_grant_of_a_missing_credential_is_reported_before_the_passphrase(
    stocked_cli: Cli, tmp_path: Path
) -> None:
    assert stocked_cli.unlocked("client", "add", "bot").exit_code == 0
    missing = tmp_path / "no-such-passphrase-file"
    for command in ("grant", "ungrant"):
        result = stocked_cli(
            command,
            "bot",
            "binance-main",
            "nosuch",
            "--vault",
            str(stocked_cli.vault_path),
            "--passphrase-file",
            str(missing),
        )
        assert result.exit_code == 4, result.output  # NotFound
        assert 'no credential named "nosuch"' in result.output
        assert "passphrase file" not in result.output


def test_client_add_of_a_taken_name_is_reported_before_the_passphrase(
    stocked_cli: Cli, tmp_path: Path
) -> None:
    assert stocked_cli.unlocked("client", "add", "bot").exit_code == 0
    result = stocked_cli(
        "client",
        "add",
        "bot",
        "--vault",
        str(stocked_cli.vault_path),
        "--passphrase-file",
        str(tmp_path / "no-such-passphrase-file"),
    )
    assert result.exit_code != 0
    assert 'a client named "bot" exists already' in result.output


def test_bad_json_is_reported_before_the_passphrase(stocked_cli: Cli, tmp_path: Path) -> None:
    result = stocked_cli(
        "add",
        "new-key",
        "--exchange",
        "binance",
        "--from-json",
        "-",
        "--vault",
        str(stocked_cli.vault_path),
        "--passphrase-file",
        str(tmp_path / "no-such-passphrase-file"),
        input="not json",
    )
    assert result.exit_code == 7, result.output  # InvalidInput
    assert "malformed JSON" in result.output
    assert "passphrase file" not in result.output


def test_with_good_values_the_passphrase_file_is_then_read(
    stocked_cli: Cli, tmp_path: Path
) -> None:
    """The control: the same kind of command line with valid values reaches the file."""
    missing = tmp_path / "no-such-passphrase-file"
    result = stocked_cli(
        "edit",
        "binance-main",
        "--ip",
        "203.0.113.8",
        "--vault",
        str(stocked_cli.vault_path),
        "--passphrase-file",
        str(missing),
    )
    assert result.exit_code != 0
    assert "passphrase file" in result.output
