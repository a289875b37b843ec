"""The user's state directory (vault/db/state_files.py): where it is, and when there is none."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from vault.db import state_files


def test_xdg_state_home_when_absolute(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path))
    assert state_files.state_directory() == tmp_path / "exvault"


def test_the_home_directory_without_xdg_state_home(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("XDG_STATE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path))
    assert state_files.state_directory() == tmp_path / ".local" / "state" / "exvault"


def test_a_relative_xdg_state_home_is_ignored(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The XDG Base Directory specification: a relative path is invalid and ignored (it
    # would name a different directory in each working directory).
    monkeypatch.setenv("XDG_STATE_HOME", "state")
    monkeypatch.setenv("HOME", str(tmp_path))
    assert state_files.state_directory() == tmp_path / ".local" / "state" / "exvault"


@pytest.mark.usefixtures("no_state_directory")
def test_none_without_xdg_state_home_nor_a_home() -> None:
    assert state_files.state_directory() is None


@pytest.mark.parametrize("durable", [True, False])
def test_a_write_is_private_and_flushed_to_disk_only_when_durable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, durable: bool
) -> None:
    synced: list[int] = []
    real_fsync = os.fsync

    def fsync(fd: int) -> None:
        synced.append(fd)
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    path = tmp_path / "exvault" / "file.bin"
    assert state_files.write_private(path, b"evidence", durable=durable)
    # The file's data before the rename, then its directory: the rename itself is on
    # disk only once the directory is (POSIX), or a crash brings back the last witness.
    assert len(synced) == (2 if durable else 0)
    assert path.stat().st_mode & 0o777 == 0o600
    assert path.parent.stat().st_mode & 0o777 == 0o700
    assert state_files.private_bytes(path) == b"evidence"


def test_a_write_under_a_regular_file_fails_without_raising(tmp_path: Path) -> None:
    # A state directory that cannot be made (here its parent is a file: refused even to
    # root, as the test suite runs in CI): False, and nothing left behind.
    blocker = tmp_path / "blocker"
    blocker.write_bytes(b"")
    assert not state_files.write_private(blocker / "exvault" / "file.bin", b"x", durable=True)
    assert sorted(tmp_path.iterdir()) == [blocker]


@pytest.mark.parametrize("home", ["relative", "./here", "~"])
def test_a_relative_home_gives_no_state_directory(
    monkeypatch: pytest.MonkeyPatch, home: str
) -> None:
    # Like a relative $XDG_STATE_HOME: it would name another directory in every working
    # directory, so the witness written in one would not be found from another.
    monkeypatch.delenv("XDG_STATE_HOME")
    monkeypatch.setenv("HOME", home)
    assert state_files.state_directory() is None


def test_a_durable_write_syncs_the_directory_after_the_rename(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "exvault" / "file.bin"
    synced: list[tuple[bool, bool]] = []  # (a directory?, the new file in place yet?)
    real_fsync = os.fsync

    def fsync(fd: int) -> None:
        synced.append((stat.S_ISDIR(os.fstat(fd).st_mode), path.exists()))
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    assert state_files.write_private(path, b"evidence", durable=True)
    assert synced == [(False, False), (True, True)]
