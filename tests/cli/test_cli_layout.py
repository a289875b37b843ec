"""``exvault share`` and what the owner's commands show of a shared vault.

These run as one user, with that user's own group as the bots' group (tests/
test_layout.py runs a bot as a second uid). A client of the same uid reading a shared
vault appends to the audit file too, which is what the listing tests use.
"""

from __future__ import annotations

import grp
import json
import os
import stat
from datetime import timedelta
from pathlib import Path

import pytest

import vault
from tests.cli.conftest import check_one_error_line
from tests.conftest import Cli
from vault.db import sqlite_file
from vault.db.inventory import Inventory
from vault.format.model import utc_now
from vault.ops.checks import check

GROUP = grp.getgrgid(os.getgid()).gr_name


@pytest.fixture(autouse=True)
def state_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))


@pytest.fixture
def token(stocked_cli: Cli) -> str:
    """The token of client grid-bot, granted binance-main."""
    r = stocked_cli.unlocked("client", "add", "grid-bot", "--max-scope", "trade", "--json")
    assert r.exit_code == 0, r.output
    assert stocked_cli.unlocked("grant", "grid-bot", "binance-main").exit_code == 0
    return str(json.loads(r.stdout)["token"])


@pytest.fixture
def shared_cli(stocked_cli: Cli, token: str) -> Cli:
    r = stocked_cli.unlocked("share", "--group", GROUP)
    assert r.exit_code == 0, r.output
    return stocked_cli


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def _doctor(cli: Cli) -> dict[str, dict[str, str]]:
    return {d["check"]: d for d in json.loads(cli.v("doctor", "--json").stdout)}


def test_share_sets_the_layout(stocked_cli: Cli, token: str) -> None:
    r = stocked_cli.unlocked("share", "--group", GROUP)
    path = stocked_cli.vault_path
    audit_path = sqlite_file.audit_file_path(path)
    assert r.exit_code == 0, r.output
    assert r.stdout == f"Vault layout: shared with group {GROUP}; bots append to {audit_path}.\n"
    assert [_mode(p) for p in (path.parent, path, audit_path.parent, audit_path)] == [
        0o750,
        0o640,
        0o2770,
        0o660,
    ]
    entries = json.loads(stocked_cli.v("audit", "--json").stdout)
    assert (entries[-1]["action"], entries[-1]["log"]) == ("share", "vault")


def test_doctor_says_which_layout(stocked_cli: Cli, token: str) -> None:
    assert _doctor(stocked_cli)["layout"]["message"] == "single-user file"
    assert stocked_cli.unlocked("share", "--group", GROUP).exit_code == 0
    results = _doctor(stocked_cli)
    audit_path = sqlite_file.audit_file_path(stocked_cli.vault_path)
    assert results["layout"]["message"] == (
        f"shared with group {GROUP}; bots append to {audit_path}"
    )
    wanted = ("vault directory", "vault file", "audit directory", "audit file", "journal")
    assert [results[c]["status"] for c in wanted] == ["ok"] * len(wanted)


@pytest.mark.parametrize(
    ("which", "mode", "status"),
    [
        ("vault file", 0o660, "fail"),  # bots could write the vault
        ("vault directory", 0o770, "fail"),  # bots could replace it
        ("vault file", 0o600, "warn"),  # bots cannot read it
    ],
)
def test_doctor_flags_a_wrong_mode_of_the_shared_layout(
    shared_cli: Cli, which: str, mode: int, status: str
) -> None:
    path = shared_cli.vault_path
    os.chmod(path if which == "vault file" else path.parent, mode)
    result = _doctor(shared_cli)[which]
    assert result["status"] == status, result


def test_a_bots_read_is_listed_from_the_audit_file(shared_cli: Cli, token: str) -> None:
    path = shared_cli.vault_path
    vault.load("binance-main", where=path, token=token)
    r = shared_cli.v("audit")
    assert r.exit_code == 0, r.output
    (line,) = [line for line in r.stdout.splitlines() if " read " in line]
    assert line.startswith("vault.audit#1 ") and "client:grid-bot" in line
    r = shared_cli.v("audit", "verify", "--json")
    assert r.exit_code == 0, r.output
    vault_only = sqlite_file.connect(path, read_only=True)
    in_vault = vault_only.execute("SELECT count(*) FROM audit_log").fetchone()[0]
    vault_only.close()
    assert json.loads(r.stdout)["entries"] == in_vault + 1


def test_check_counts_a_read_recorded_in_the_audit_file(shared_cli: Cli, token: str) -> None:
    # Past the default stale_days; half a day more, so that the read made a moment
    # after this is still 60 whole days before it.
    later = utc_now() + timedelta(days=60, hours=12)

    def unread(inv: Inventory) -> str:
        (finding,) = [
            f
            for f in check(inv, later).findings
            if (f.code, f.credential) == ("unread", "binance-main")
        ]
        return finding.message

    with Inventory.open(shared_cli.vault_path) as inv:
        assert "but never read" in unread(inv)
        vault.load("binance-main", where=shared_cli.vault_path, token=token)
        assert "but not read for 60 days" in unread(inv)


def test_verify_checks_the_audit_file(shared_cli: Cli, token: str) -> None:
    vault.load("binance-main", where=shared_cli.vault_path, token=token)
    audit_path = sqlite_file.audit_file_path(shared_cli.vault_path)
    db = sqlite_file.connect(audit_path)
    db.execute("UPDATE audit_log SET detail = 'pending'")
    db.close()
    r = shared_cli.unlocked("verify")
    assert r.exit_code == 3
    assert "(vault): audit log: vault.audit: entry 1 was edited" in r.stdout


def test_backup_copies_the_audit_file(shared_cli: Cli, token: str, tmp_path: Path) -> None:
    vault.load("binance-main", where=shared_cli.vault_path, token=token)
    destination = tmp_path / "safe" / "copy.db"
    destination.parent.mkdir()
    r = shared_cli.v("backup", str(destination))
    assert r.exit_code == 0, r.output
    copied = destination.with_name("copy.audit") / "audit.db"
    assert _mode(copied) == 0o600 and _mode(copied.parent) == 0o700
    db = sqlite_file.connect(copied, read_only=True)
    assert db.execute("SELECT actor FROM audit_log").fetchall() == [("client:grid-bot",)]
    db.close()


def test_share_off_returns_to_one_file(shared_cli: Cli, token: str) -> None:
    path = shared_cli.vault_path
    vault.load("binance-main", where=path, token=token)
    r = shared_cli.unlocked("share", "--off", "--json")
    assert r.exit_code == 0, r.output
    retired = Path(json.loads(r.stdout)["retired_audit_directory"])
    assert retired.name.startswith("vault.audit-until-") and _mode(retired) == 0o700
    assert [_mode(path.parent), _mode(path)] == [0o700, 0o600]
    assert _doctor(shared_cli)["layout"]["message"] == "single-user file"
    logs = [e["log"] for e in json.loads(shared_cli.v("audit", "--json").stdout)]
    assert retired.name in logs
    assert shared_cli.v("audit", "verify").exit_code == 0


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        ((), 7, "give either --group GROUP or --off"),
        (("--group", GROUP, "--off"), 7, "give either --group GROUP or --off"),
        (("--group", "no-such-group-x"), 7, 'no group named "no-such-group-x"'),
        (("--off",), 7, "the vault is not shared"),
    ],
)
def test_share_bad_input_changes_nothing(
    stocked_cli: Cli, file_sha256, args: tuple[str, ...], code: int, message: str
) -> None:  # type: ignore[no-untyped-def]
    path = stocked_cli.vault_path
    before = (file_sha256(path), sorted(p.name for p in path.parent.iterdir()), _mode(path))
    r = stocked_cli.unlocked("share", *args)
    assert message in check_one_error_line(r, code)
    after = (file_sha256(path), sorted(p.name for p in path.parent.iterdir()), _mode(path))
    assert after == before


def test_share_while_a_bot_has_the_vault_open_changes_nothing(
    stocked_cli: Cli, token: str, file_sha256
) -> None:  # type: ignore[no-untyped-def]
    path = stocked_cli.vault_path
    with vault.open(path, token=token) as handle:
        handle.get("binance-main")
        before = (file_sha256(path), sorted(p.name for p in path.parent.iterdir()), _mode(path))
        r = stocked_cli.unlocked("share", "--group", GROUP)
        message = check_one_error_line(r, 9)
        after = (file_sha256(path), sorted(p.name for p in path.parent.iterdir()), _mode(path))
    assert "cannot switch the vault to journal mode DELETE: database is locked" in message
    assert after == before
