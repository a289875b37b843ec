"""Templates filled with credentials, and the output kept off persistent storage."""

from __future__ import annotations

import os
import stat
import subprocess
import threading
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.conftest import BINANCE_API_KEY, BINANCE_SECRET
from vault.errors import AlreadyExists, InsecureFile, InvalidInput
from vault.ops import render
from vault.runtime.credential import Credential
from vault.secret import Secret


class Stub:
    """What :func:`render.fill` reads of a credential: its fields."""

    def __init__(self, **fields: str) -> None:
        self.fields = {k: Secret(v) for k, v in fields.items()}


def creds(**by_name: Stub) -> dict[str, Credential]:
    return by_name  # type: ignore[return-value]


BINANCE = Stub(api_key=BINANCE_API_KEY, secret=BINANCE_SECRET)


def test_references_are_filled_with_or_without_spaces() -> None:
    template = 'key = "{{ exvault://binance-main/api_key }}"\nsecret = "{{exvault://binance-main/secret}}"\n'
    assert render.credential_names(template) == ["binance-main"]
    assert render.fill(template, creds(**{"binance-main": BINANCE})) == (
        f'key = "{BINANCE_API_KEY}"\nsecret = "{BINANCE_SECRET}"\n'
    )


@pytest.mark.parametrize(
    "bad",
    [
        "{{ exvault://binance main/secret }}",
        "{{ exvault:binance/secret }}",
        "{{ exvault://binance/Secret }}",
        "{{ exvault://binance/secret/x }}",
    ],
)
def test_a_malformed_reference_names_its_line(bad: str) -> None:
    with pytest.raises(InvalidInput, match="template line 3: a reference must read"):
        render.references(f"a\nb\n{bad}\n")


def test_a_missing_credential_or_field_is_an_error_naming_no_value() -> None:
    with pytest.raises(InvalidInput, match='line 1: no credential "kraken"'):
        render.fill("{{ exvault://kraken/secret }}", creds(binance=BINANCE))
    with pytest.raises(InvalidInput, match='no field "uid" \\(it has: api_key, secret\\)') as e:
        render.fill("{{ exvault://binance/uid }}", creds(binance=BINANCE))
    assert BINANCE_SECRET[:12] not in str(e.value)


TEXT = st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=200)


@given(before=TEXT, value=TEXT, after=TEXT)
def test_filling_replaces_exactly_the_references(before: str, value: str, after: str) -> None:
    # Text with no reference stays as it is; a value is put in once, never read again as
    # a template (even when it looks like a reference).
    if "exvault:" in before + after:
        return
    filled = render.fill(
        before + "{{ exvault://x/secret }}" + after + "{{ exvault://x/secret }}",
        creds(x=Stub(secret=value + "{{ exvault://x/secret }}")),
    )
    twice = value + "{{ exvault://x/secret }}"
    assert filled == before + twice + after + twice


def test_statfs_tells_memory_file_systems_apart() -> None:
    for path in (Path("/dev/shm"), Path(__file__).parent):
        named = subprocess.run(
            ["stat", "-f", "-c", "%T", str(path)], capture_output=True, text=True, check=False
        ).stdout.strip()
        expected = named if named in ("tmpfs", "ramfs") else None
        assert render.file_system_type(path) == expected


@pytest.fixture
def on_disk(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(render, "file_system_type", lambda _path: None)


@pytest.fixture
def in_memory(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(render, "file_system_type", lambda _path: "tmpfs")


@pytest.mark.usefixtures("on_disk")
def test_persistent_storage_is_refused_unless_allowed(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match="persistent storage"):
        render.write_output(tmp_path / "out.json", "secret")
    assert not (tmp_path / "out.json").exists()
    render.write_output(tmp_path / "out.json", "secret", allow_disk=True)
    assert (tmp_path / "out.json").read_text() == "secret"


@pytest.mark.usefixtures("in_memory")
def test_a_new_file_is_0600_whatever_the_umask(tmp_path: Path) -> None:
    old = os.umask(0)
    try:
        render.write_output(tmp_path / "out.json", BINANCE_SECRET)
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "out.json").stat().st_mode) == 0o600


@pytest.mark.usefixtures("in_memory")
def test_an_existing_file_is_replaced_only_with_overwrite_and_becomes_0600(tmp_path: Path) -> None:
    out = tmp_path / "out.json"
    out.write_text("old")
    out.chmod(0o644)
    with pytest.raises(AlreadyExists, match="--overwrite"):
        render.write_output(out, "new")
    assert out.read_text() == "old"
    render.write_output(out, "new", overwrite=True)
    assert out.read_text() == "new"
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    assert [p.name for p in tmp_path.iterdir()] == ["out.json"]


@pytest.mark.usefixtures("in_memory")
def test_a_symlink_or_a_directory_is_refused(tmp_path: Path) -> None:
    (tmp_path / "target").write_text("x")
    (tmp_path / "link").symlink_to(tmp_path / "target")
    with pytest.raises(InvalidInput, match="symbolic link"):
        render.write_output(tmp_path / "link", "secret", overwrite=True)
    assert (tmp_path / "target").read_text() == "x"
    with pytest.raises(InvalidInput, match="no directory"):
        render.write_output(tmp_path / "none" / "out", "secret")


def test_a_fifo_receives_the_text(tmp_path: Path) -> None:
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo, 0o600)
    got: list[bytes] = []
    reader = threading.Thread(target=lambda: got.append(fifo.read_bytes()), daemon=True)
    reader.start()
    render.write_output(fifo, BINANCE_SECRET)  # a FIFO is fine on any file system
    reader.join(10)
    assert got == [BINANCE_SECRET.encode()]


def test_a_fifo_others_can_open_is_refused(tmp_path: Path) -> None:
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    fifo.chmod(0o644)
    with pytest.raises(InsecureFile, match="can be opened by others"):
        render.write_output(fifo, "secret")


@pytest.mark.usefixtures("in_memory")
def test_a_fifo_put_in_place_after_the_check_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # In a shared directory (/dev/shm), another user can mkfifo the path between the
    # check of a new file and its opening: the FIFO opened must be checked itself.
    out = tmp_path / "out.json"
    checked = render.check_output
    got: list[bytes] = []
    attacker = threading.Thread(target=lambda: got.append(out.read_bytes()), daemon=True)

    def check_then_race(path: Path, **options: bool) -> None:
        checked(path, **options)
        os.mkfifo(path)
        path.chmod(0o666)
        attacker.start()

    monkeypatch.setattr(render, "check_output", check_then_race)
    with pytest.raises(InsecureFile, match="can be opened by others"):
        render.write_output(out, BINANCE_SECRET)
    attacker.join(10)
    assert got == [b""]


@pytest.mark.usefixtures("in_memory")
def test_a_replace_refused_by_the_directory_is_one_error_and_leaves_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A sticky directory (/dev/shm) refuses to rename over another user's file.
    out = tmp_path / "out.json"
    out.write_text("theirs")

    def refuse(source: object, target: object) -> None:
        raise PermissionError(1, "Operation not permitted")

    monkeypatch.setattr(os, "replace", refuse)
    with pytest.raises(InvalidInput, match=r"cannot replace .*out\.json: Operation not permitted"):
        render.write_output(out, BINANCE_SECRET, overwrite=True)
    assert [p.name for p in tmp_path.iterdir()] == ["out.json"]
    assert out.read_text() == "theirs"
