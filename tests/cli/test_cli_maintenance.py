"""verify, doctor, backup, restore and audit through the CLI."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from tests.cli.conftest import check_one_error_line
from tests.conftest import sql, write_secret_file


@pytest.fixture(autouse=True)
def state_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))


def test_verify_ok(stocked_cli) -> None:  # type: ignore[no-untyped-def]
    r = stocked_cli.unlocked("verify", "--json")
    assert r.exit_code == 0, r.output
    report = json.loads(r.stdout)
    assert report["ok"] and report["credentials"] == 2 and report["decrypted"] == 2


def test_verify_reports_tampering_by_credential(stocked_cli) -> None:  # type: ignore[no-untyped-def]
    sql(
        stocked_cli.vault_path,
        "UPDATE credential_versions SET ips = '0.0.0.0/0' WHERE name = 'kucoin-sub1'",
    )
    r = stocked_cli.unlocked("verify")
    assert r.exit_code == 3
    assert "kucoin-sub1: version 1: metadata or signature forged or edited" in r.stdout


def test_doctor(stocked_cli) -> None:  # type: ignore[no-untyped-def]
    r = stocked_cli.v("doctor", "--json")
    results = {d["check"]: d["status"] for d in json.loads(r.stdout)}
    assert results["vault file"] == "ok" and results["vault directory"] == "ok"
    assert results["kdf"] == "fail"  # the cheap test KDF is below RFC 9106's floor
    assert r.exit_code == 2


def test_doctor_says_the_kdf_parameters_are_unauthenticated(stocked_cli) -> None:  # type: ignore[no-untyped-def]
    r = stocked_cli.v("doctor", "--json")
    [kdf] = [d for d in json.loads(r.stdout) if d["check"] == "kdf"]
    assert "as stored, unauthenticated" in kdf["message"]


def test_doctor_flags_a_readable_vault_file(stocked_cli) -> None:  # type: ignore[no-untyped-def]
    os.chmod(stocked_cli.vault_path, 0o644)
    r = stocked_cli.v("doctor", "--json")
    results = {d["check"]: d for d in json.loads(r.stdout)}
    assert (
        results["vault file"]["status"] == "fail"
        and "chmod 600" in results["vault file"]["message"]
    )


def test_doctor_flags_a_readable_token_file(stocked_cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    token = write_secret_file(tmp_path / "tok", "exv1-x", mode=0o644)
    r = stocked_cli(
        "doctor",
        "--vault",
        str(stocked_cli.vault_path),
        "--json",
        env={"EXVAULT_TOKEN_FILE": str(token)},
    )
    assert any(d["status"] == "fail" and "token file" in d["check"] for d in json.loads(r.stdout))


def test_doctor_usage_error_is_not_a_finding_code(stocked_cli) -> None:  # type: ignore[no-untyped-def]
    assert stocked_cli.v("doctor", "--bogus").exit_code == 64


def test_backup_and_restore(stocked_cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    dest = tmp_path / "backup.db"
    r = stocked_cli.v("backup", str(dest))
    assert r.exit_code == 0, r.output
    assert stocked_cli.unlocked("remove", "kucoin-sub1", "--yes").exit_code == 0
    r = stocked_cli(
        "restore",
        str(dest),
        "--vault",
        str(stocked_cli.vault_path),
        "--yes",
        "--backup-passphrase-file",
        str(stocked_cli.passphrase_file),
    )
    assert r.exit_code == 0, r.output
    assert "replaced vault is kept at" in r.stdout
    names = [c["name"] for c in json.loads(stocked_cli.v("list", "--json").stdout)]
    assert names == ["binance-main", "kucoin-sub1"]


def test_restore_declined_changes_nothing(stocked_cli, tmp_path: Path, snapshot) -> None:  # type: ignore[no-untyped-def]
    dest = tmp_path / "backup.db"
    stocked_cli.v("backup", str(dest))
    before = snapshot()
    r = stocked_cli(
        "restore",
        str(dest),
        "--vault",
        str(stocked_cli.vault_path),
        "--backup-passphrase-file",
        str(stocked_cli.passphrase_file),
        input="n\n",
    )
    assert r.exit_code == 1
    assert snapshot() == before
    assert not list(stocked_cli.vault_path.parent.glob("*.restoring*"))


def test_restore_without_passphrase_names_the_right_option(stocked_cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    dest = tmp_path / "backup.db"
    stocked_cli.v("backup", str(dest))
    r = stocked_cli("restore", str(dest), "--vault", str(stocked_cli.vault_path), "--yes")
    assert "--backup-passphrase-file" in check_one_error_line(r, 7)


def test_restore_of_a_missing_backup(stocked_cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    r = stocked_cli(
        "restore", str(tmp_path / "none.db"), "--vault", str(stocked_cli.vault_path), "--yes"
    )
    check_one_error_line(r, 8)


def test_audit_verify_takes_the_vault_from_the_group(stocked_cli) -> None:  # type: ignore[no-untyped-def]
    r = stocked_cli("audit", "--vault", str(stocked_cli.vault_path), "verify")
    assert r.exit_code == 0, r.output
    sql(stocked_cli.vault_path, "DELETE FROM audit_log WHERE seq = 1")
    r = stocked_cli("audit", "--vault", str(stocked_cli.vault_path), "verify")
    assert r.exit_code == 3 and "entry 1 is missing" in r.output


def test_unknown_database_driver(cli) -> None:  # type: ignore[no-untyped-def]
    check_one_error_line(cli("list", "--vault", "nosuchdb://host/x"), 7)


def test_show_stage_needs_reveal(stocked_cli) -> None:  # type: ignore[no-untyped-def]
    assert stocked_cli.v("show", "binance-main", "--stage", "pending").exit_code == 2
