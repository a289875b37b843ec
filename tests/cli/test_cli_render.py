"""``exvault render`` through the CLI: as the owner or a client, onto tmpfs or a FIFO,
persistent storage refused, nothing written when a reference is missing."""

from __future__ import annotations

import os
import stat
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from click.testing import Result

from tests.conftest import BINANCE_API_KEY, BINANCE_SECRET, KUCOIN_SECRET, Cli
from vault.ops import render as rendering
from vault.owner.admin import AdminVault

TEMPLATE = (
    '{"exchange": {"name": "binance",\n'
    '  "key": "{{ exvault://binance-main/api_key }}",\n'
    '  "secret": "{{ exvault://binance-main/secret }}"}}\n'
)
FILLED = (
    '{"exchange": {"name": "binance",\n'
    f'  "key": "{BINANCE_API_KEY}",\n'
    f'  "secret": "{BINANCE_SECRET}"}}}}\n'
)


@pytest.fixture
def template(tmp_path: Path) -> Path:
    path = tmp_path / "config.tmpl.json"
    path.write_text(TEMPLATE)
    return path


@pytest.fixture
def memory_dir() -> Iterator[Path]:
    """A fresh folder on a real tmpfs (/dev/shm)."""
    if rendering.file_system_type(Path("/dev/shm")) is None:
        pytest.skip("no tmpfs at /dev/shm")
    folder = Path("/dev/shm") / f"exvault-test-{os.getpid()}-{threading.get_ident()}"
    folder.mkdir(mode=0o700)
    yield folder
    for child in folder.iterdir():
        child.unlink()
    folder.rmdir()


def no_secret_in(result: Result) -> None:
    for secret in (BINANCE_API_KEY, BINANCE_SECRET, KUCOIN_SECRET):
        assert secret[:12] not in result.output


def test_the_owner_renders_onto_tmpfs_0600(
    stocked_cli: Cli, template: Path, memory_dir: Path
) -> None:
    out = memory_dir / "freqtrade.json"
    result = stocked_cli.unlocked("render", str(template), "--out", str(out))
    assert result.exit_code == 0, result.output
    assert out.read_text() == FILLED
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    assert "(1 credential)" in result.stderr
    no_secret_in(result)


def test_persistent_storage_is_refused_before_the_passphrase(
    stocked_cli: Cli,
    template: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    one_error_line: Callable[[Result, int], str],
) -> None:
    monkeypatch.setattr(rendering, "file_system_type", lambda _path: None)
    out = tmp_path / "out.json"
    # No passphrase file and no terminal: the refusal comes before any unlock.
    result = stocked_cli.v("render", str(template), "--out", str(out))
    assert "is on persistent storage" in one_error_line(result, 7)
    assert not out.exists()
    allowed = stocked_cli.unlocked("render", str(template), "--out", str(out), "--allow-disk")
    assert allowed.exit_code == 0, allowed.output
    assert out.read_text() == FILLED
    assert stat.S_IMODE(out.stat().st_mode) == 0o600


def test_a_missing_reference_writes_nothing(
    stocked_cli: Cli,
    tmp_path: Path,
    memory_dir: Path,
    one_error_line: Callable[[Result, int], str],
) -> None:
    template = tmp_path / "t"
    template.write_text(TEMPLATE + "{{ exvault://binance-main/uid }}\n")
    out = memory_dir / "out.json"
    result = stocked_cli.unlocked("render", str(template), "--out", str(out))
    assert 'line 4: credential "binance-main" has no field "uid"' in one_error_line(result, 7)
    assert not out.exists()
    gone = tmp_path / "t2"
    gone.write_text("{{ exvault://nope/secret }}")
    assert "no credential" in one_error_line(
        stocked_cli.unlocked("render", str(gone), "--out", str(out)), 4
    )
    assert not out.exists()


def test_a_client_token_renders_what_it_was_granted(
    stocked: AdminVault, vault_path: Path, template: Path, tmp_path: Path, memory_dir: Path
) -> None:
    _, token = stocked.add_client("bot", max_scope="trade")
    stocked.grant("bot", ["binance-main"])
    cli = Cli(vault_path, tmp_path / "no-passphrase")
    out = memory_dir / "out.json"
    env = {"EXVAULT_TOKEN": token}
    result = cli("render", str(template), "--out", str(out), "--vault", str(vault_path), env=env)
    assert result.exit_code == 0, result.output
    assert out.read_text() == FILLED
    other = tmp_path / "kucoin.tmpl"
    other.write_text("{{ exvault://kucoin-sub1/secret }}")
    refused = cli(
        "render", str(other), "--out", str(memory_dir / "k"), "--vault", str(vault_path), env=env
    )
    assert refused.exit_code == 6, refused.output
    assert not (memory_dir / "k").exists()
    no_secret_in(refused)


def test_a_fifo_gets_the_filled_text(stocked_cli: Cli, template: Path, tmp_path: Path) -> None:
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo, 0o600)
    got: list[str] = []
    reader = threading.Thread(target=lambda: got.append(fifo.read_text()), daemon=True)
    reader.start()
    result = stocked_cli.unlocked("render", str(template), "--out", str(fifo))
    reader.join(10)
    assert result.exit_code == 0, result.output
    assert got == [FILLED]
