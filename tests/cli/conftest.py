"""Fixtures for the CLI tests (tests/conftest.py provides ``cli`` and ``cli_vault``).

Helpers are fixtures that return callables, so that no test module has to import
another (tests/ is not a package).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from click.testing import Result

from tests.conftest import (
    BINANCE_API_KEY,
    BINANCE_SECRET,
    KUCOIN_API_KEY,
    KUCOIN_PASSPHRASE,
    KUCOIN_SECRET,
    PASSPHRASE,
    Cli,
    write_secret_file,
)


@pytest.fixture(autouse=True)
def _restore_umask() -> Iterator[None]:
    """The CLI sets the process umask to 0o077; give the next test the one it had."""
    old = os.umask(0o077)
    os.umask(old)
    yield
    os.umask(old)


@pytest.fixture
def terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make the CLI believe a person sits at a terminal, so it uses hidden prompts."""
    import vault.cli.prompts

    monkeypatch.setattr(vault.cli.prompts, "stdin_is_terminal", lambda: True)


BINANCE = {"api_key": BINANCE_API_KEY, "secret": BINANCE_SECRET}
KUCOIN = {"api_key": KUCOIN_API_KEY, "secret": KUCOIN_SECRET, "passphrase": KUCOIN_PASSPHRASE}


@pytest.fixture(scope="session")
def _stocked_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A vault holding binance-main and kucoin-sub1, made once through the CLI.

    Adding is the slow part (synchronous=FULL writes), so each test gets a copy.
    """
    base = tmp_path_factory.mktemp("stocked-template")
    cli = Cli(base / "vaultdir" / "vault.db", write_secret_file(base / "pass", PASSPHRASE))
    r = cli.init()
    assert r.exit_code == 0, r.output
    for name, exchange, permissions, ip, payload in (
        ("binance-main", "binance", "read,trade", "203.0.113.7", BINANCE),
        ("kucoin-sub1", "kucoin", "read", "198.51.100.0/24", KUCOIN),
    ):
        r = cli.unlocked(
            "add",
            name,
            "--exchange",
            exchange,
            "--permissions",
            permissions,
            "--ip",
            ip,
            "--issued",
            "2025-09-01",
            "--from-json",
            "-",
            input=json.dumps(payload),
        )
        assert r.exit_code == 0, r.output
    return cli.vault_path.parent


@pytest.fixture
def stocked_cli(
    cli: Cli,
    _stocked_template: Path,
    binance_payload: dict[str, str],
    kucoin_payload: dict[str, str],
) -> Cli:
    """``cli`` bound to a vault holding binance-main and kucoin-sub1, added via the CLI.

    binance-main: binance, read,trade, IP 203.0.113.7; kucoin-sub1: kucoin, read,
    198.51.100.0/24; both issued 2025-09-01. Their secret fields are the
    ``binance_payload`` and ``kucoin_payload`` fixtures. The vault is a copy of one
    made once per session.
    """
    assert binance_payload == BINANCE
    assert kucoin_payload == KUCOIN
    assert not cli.vault_path.parent.exists()
    shutil.copytree(_stocked_template, cli.vault_path.parent)
    return cli


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def vault_rows(path: Path, skip: tuple[str, ...] = ()) -> dict[str, list[tuple[object, ...]]]:
    """Every row of every table (sorted), but the audit log and the tables in ``skip``.

    The audit log is left out on purpose: a refused attempt may well be recorded there.
    """
    con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        names = [
            n
            for (n,) in con.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
            if not n.startswith("audit") and n not in skip
        ]
        assert {"keyslots", "credentials", "payloads", "dek_wraps"} & set(names)
        return {n: sorted(con.execute(f'SELECT * FROM "{n}"'), key=repr) for n in names}
    finally:
        con.close()


@pytest.fixture
def snapshot(cli):  # type: ignore[no-untyped-def]
    """A callable giving every row of the vault (but the audit log) and ``list --json``.

    Compare two snapshots to show that a refused command changed nothing. (Bound to
    ``cli``: the vault must exist when it is called, not when the test is set up.)
    """

    def take() -> tuple[object, object]:
        listed = cli.v("list", "--json")
        assert listed.exit_code == 0, listed.output
        return vault_rows(cli.vault_path), json.loads(listed.stdout)

    return take


@pytest.fixture
def rows() -> Callable[..., dict[str, list[tuple[object, ...]]]]:
    """See :func:`vault_rows`."""
    return vault_rows


@pytest.fixture
def file_sha256() -> Callable[[Path], str]:
    """The sha256 of a file's bytes."""
    return _sha256


def check_one_error_line(result: Result, exit_code: int) -> str:
    """Assert a clean failure: the exit code, one ``exvault: error:`` line, no traceback."""
    assert result.exit_code == exit_code, (result.exit_code, result.output)
    assert isinstance(result.exception, SystemExit), repr(result.exception)
    assert "Traceback" not in result.output
    assert result.stdout == "", result.stdout
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("exvault: error: "), lines[0]
    return lines[0]


@pytest.fixture
def one_error_line() -> Callable[[Result, int], str]:
    """See :func:`check_one_error_line`."""
    return check_one_error_line
