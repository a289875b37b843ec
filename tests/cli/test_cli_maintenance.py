"""verify, doctor, backup, restore and audit through the CLI."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

import vault.format.model
from tests.cli.conftest import check_one_error_line
from tests.conftest import PASSPHRASE, Cli, sql, write_secret_file


@pytest.fixture(autouse=True)
def state_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))


def test_verify_ok(stocked_cli) -> None:  # type: ignore[no-untyped-def]
    r = stocked_cli.unlocked("verify", "--json")
    assert r.exit_code == 0, r.output
    report = json.loads(r.stdout)
    assert report["ok"] and report["credentials"] == 2 and report["decrypted"] == 2


def test_verify_without_a_terminal_draws_no_progress_bar(stocked_cli) -> None:  # type: ignore[no-untyped-def]
    r = stocked_cli.unlocked("verify")
    assert r.exit_code == 0, r.output
    assert r.stderr == ""  # neither bar nor its label: a log stays clean
    assert r.stdout.startswith("Vault verified: 2 credentials")


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
    assert r.stderr == ""  # no progress bar without a terminal
    sql(stocked_cli.vault_path, "DELETE FROM audit_log WHERE seq = 1")
    r = stocked_cli("audit", "--vault", str(stocked_cli.vault_path), "verify")
    assert r.exit_code == 3 and "entry 1 is missing" in r.output


def test_audit_verify_says_when_the_head_cannot_be_remembered(  # type: ignore[no-untyped-def]
    stocked_cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    r = stocked_cli("audit", "verify", "--vault", str(stocked_cli.vault_path), "--json")
    assert r.exit_code == 0 and json.loads(r.stdout)["head_remembered"] is True
    blocker = tmp_path / "blocker"  # a regular file: no directory can be made under it
    blocker.write_bytes(b"")
    monkeypatch.setenv("XDG_STATE_HOME", str(blocker))
    r = stocked_cli("audit", "verify", "--vault", str(stocked_cli.vault_path))
    assert r.exit_code == 0, r.output
    assert r.stdout.startswith("Audit log intact: ")
    assert r.stderr.count("\n") == 1
    assert r.stderr.startswith("exvault: note: this machine could not remember the head")
    r = stocked_cli("audit", "verify", "--vault", str(stocked_cli.vault_path), "--json")
    assert r.exit_code == 0 and json.loads(r.stdout)["head_remembered"] is False


def test_audit_verify_says_when_the_state_directory_is_not_private(  # type: ignore[no-untyped-def]
    stocked_cli, tmp_path: Path
) -> None:
    # Made by another tool, or chmod'ed: a witness there is not trusted (another user
    # could rewrite it), so none is remembered.
    (tmp_path / "state" / "exvault").mkdir(parents=True)
    (tmp_path / "state" / "exvault").chmod(0o755)
    r = stocked_cli("audit", "verify", "--vault", str(stocked_cli.vault_path))
    assert r.exit_code == 0, r.output
    assert r.stderr.startswith("exvault: note: this machine could not remember the head")
    r = stocked_cli("audit", "verify", "--vault", str(stocked_cli.vault_path), "--json")
    assert r.exit_code == 0 and json.loads(r.stdout)["head_remembered"] is False


@pytest.mark.usefixtures("no_state_directory")
def test_check_and_audit_verify_without_a_state_directory(stocked_cli) -> None:  # type: ignore[no-untyped-def]
    r = stocked_cli("audit", "verify", "--vault", str(stocked_cli.vault_path))
    assert r.exit_code == 0 and "could not remember the head" in r.stderr, r.output
    r = stocked_cli("check", "--vault", str(stocked_cli.vault_path), "--json")
    assert r.exit_code in (0, 1, 2) and "internal error" not in r.stderr, r.output
    assert isinstance(json.loads(r.stdout), dict)


def test_audit_verify_remembers_no_head_of_a_broken_log(  # type: ignore[no-untyped-def]
    stocked_cli,
) -> None:
    sql(stocked_cli.vault_path, "DELETE FROM audit_log WHERE seq = 1")
    r = stocked_cli("audit", "verify", "--vault", str(stocked_cli.vault_path), "--json")
    assert r.exit_code == 3
    report = json.loads(r.stdout)
    assert not report["ok"] and report["head_remembered"] is None


def test_unknown_database_driver(cli) -> None:  # type: ignore[no-untyped-def]
    check_one_error_line(cli("list", "--vault", "nosuchdb://host/x"), 7)


def test_show_stage_needs_reveal(stocked_cli) -> None:  # type: ignore[no-untyped-def]
    assert stocked_cli.v("show", "binance-main", "--stage", "pending").exit_code == 2


def _backup(cli, tmp_path: Path) -> Path:  # type: ignore[no-untyped-def]
    """A backup of ``cli``'s vault, alone in a directory of its own."""
    place = tmp_path / "backups"
    place.mkdir(mode=0o700)
    r = cli.v("backup", str(place / "backup.db"))
    assert r.exit_code == 0, r.output
    return place / "backup.db"


def _restore(cli, backup_file: Path, *extra: str, input: str | None = None):  # type: ignore[no-untyped-def]
    return cli(
        "restore",
        str(backup_file),
        "--vault",
        str(cli.vault_path),
        "--backup-passphrase-file",
        str(cli.passphrase_file),
        *extra,
        input=input,
    )


def _identity(cli) -> tuple[str, str]:  # type: ignore[no-untyped-def]
    info = json.loads(cli.v("info", "--json").stdout)
    return info["vault_id"], info["fingerprint"]


def test_backup_is_one_self_contained_private_file(stocked_cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    saved = _backup(stocked_cli, tmp_path)
    assert sorted(p.name for p in saved.parent.iterdir()) == ["backup.db"]
    assert saved.stat().st_mode & 0o777 == 0o600
    header = saved.read_bytes()[:100]
    assert header[:16] == b"SQLite format 3\0"
    assert (header[18], header[19]) == (1, 1)  # rollback journal: 2, 2 would be WAL


def test_restore_writes_nothing_beside_the_backup(stocked_cli, tmp_path: Path, file_sha256) -> None:  # type: ignore[no-untyped-def]
    saved = _backup(stocked_cli, tmp_path)
    before = (sorted(p.name for p in saved.parent.iterdir()), file_sha256(saved))
    r = _restore(stocked_cli, saved, "--yes")
    assert r.exit_code == 0, r.output
    assert (sorted(p.name for p in saved.parent.iterdir()), file_sha256(saved)) == before


def test_restore_of_a_wal_mode_backup_writes_nothing_beside_it(  # type: ignore[no-untyped-def]
    stocked_cli, tmp_path: Path, file_sha256
) -> None:
    """A backup in WAL mode, as exvault's backups were, restores and stays untouched."""
    saved = _backup(stocked_cli, tmp_path)
    sql(saved, "PRAGMA journal_mode = WAL")
    for side in saved.parent.glob("backup.db-*"):
        side.unlink()
    assert saved.read_bytes()[18:20] == b"\2\2"
    before = (sorted(p.name for p in saved.parent.iterdir()), file_sha256(saved))
    assert stocked_cli.unlocked("remove", "kucoin-sub1", "--yes").exit_code == 0
    r = _restore(stocked_cli, saved, "--yes")
    assert r.exit_code == 0, r.output
    assert (sorted(p.name for p in saved.parent.iterdir()), file_sha256(saved)) == before
    names = [c["name"] for c in json.loads(stocked_cli.v("list", "--json").stdout)]
    assert names == ["binance-main", "kucoin-sub1"]


@pytest.fixture
def other_backup(tmp_path: Path):  # type: ignore[no-untyped-def]
    """A backup of another vault (same passphrase), and that vault's id and fingerprint."""
    other = Cli(tmp_path / "other" / "vault.db", write_secret_file(tmp_path / "p2", PASSPHRASE))
    assert other.init().exit_code == 0
    return _backup(other, tmp_path), _identity(other)


def test_restore_of_another_vaults_backup_is_refused_without_a_terminal(  # type: ignore[no-untyped-def]
    stocked_cli, other_backup, snapshot
) -> None:
    saved, (other_id, other_fp) = other_backup
    mine_id, mine_fp = _identity(stocked_cli)
    before = snapshot()
    line = check_one_error_line(_restore(stocked_cli, saved, input="y\ny\n"), 7)
    assert "another vault" in line and "--yes" in line
    assert other_fp in line and mine_fp in line and other_id in line and mine_id in line
    assert snapshot() == before
    assert not list(stocked_cli.vault_path.parent.glob("*.restoring*"))


def test_restore_of_another_vaults_backup_asks_at_a_terminal(  # type: ignore[no-untyped-def]
    stocked_cli, other_backup, snapshot, terminal
) -> None:
    saved, (_, other_fp) = other_backup
    _, mine_fp = _identity(stocked_cli)
    before = snapshot()
    r = _restore(stocked_cli, saved, input="n\n")
    assert r.exit_code == 1, r.output
    warning = r.stderr.splitlines()[0]
    assert warning.startswith("exvault: warning: the backup is of another vault")
    assert other_fp in warning and mine_fp in warning
    assert "Replace this vault with another vault?" in r.stderr
    assert snapshot() == before
    assert not list(stocked_cli.vault_path.parent.glob("*.restoring*"))


def test_restore_of_another_vaults_backup_with_yes_warns(stocked_cli, other_backup) -> None:  # type: ignore[no-untyped-def]
    saved, identity = other_backup
    r = _restore(stocked_cli, saved, "--yes")
    assert r.exit_code == 0, r.output
    assert r.stderr.startswith("exvault: warning: the backup is of another vault")
    assert identity[1] in r.stderr
    assert _identity(stocked_cli) == identity
    assert json.loads(stocked_cli.v("list", "--json").stdout) == []


def test_restore_of_the_same_vault_says_nothing_of_identity(stocked_cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    saved = _backup(stocked_cli, tmp_path)
    r = _restore(stocked_cli, saved, "--yes")
    assert (r.exit_code, r.stderr) == (0, ""), r.output


def _invalid_utf8_entry(stocked_cli) -> int:  # type: ignore[no-untyped-def]
    """Append an unsigned entry (a wrong passphrase), then give it a detail that is not
    UTF-8; returns its seq."""
    from vault.errors import IntegrityError
    from vault.owner.admin import AdminVault

    with pytest.raises(IntegrityError):
        AdminVault.unlock(stocked_cli.vault_path, "wrong passphrase")
    ((seq,),) = sql(stocked_cli.vault_path, "SELECT max(seq) FROM audit_log")
    sql(
        stocked_cli.vault_path,
        "UPDATE audit_log SET detail = CAST(X'41FF42' AS TEXT) WHERE seq = ?",
        seq,
    )
    return int(seq)  # type: ignore[call-overload]


def test_audit_verify_names_an_entry_that_is_not_utf8(stocked_cli) -> None:  # type: ignore[no-untyped-def]
    seq = _invalid_utf8_entry(stocked_cli)
    r = stocked_cli("audit", "--vault", str(stocked_cli.vault_path), "verify")
    assert r.exit_code == 3
    assert r.output == f"exvault: audit: entry {seq}: its detail is not UTF-8 text\n"


def test_verify_names_an_audit_entry_that_is_not_utf8(stocked_cli) -> None:  # type: ignore[no-untyped-def]
    seq = _invalid_utf8_entry(stocked_cli)
    r = stocked_cli.unlocked("verify")
    assert r.exit_code != 0 and "Traceback" not in r.output
    assert f"audit log: entry {seq}: its detail is not UTF-8 text" in r.output


def test_audit_lists_an_entry_that_is_not_utf8_escaped(stocked_cli) -> None:  # type: ignore[no-untyped-def]
    seq = _invalid_utf8_entry(stocked_cli)
    r = stocked_cli.v("audit")
    assert r.exit_code == 0, r.output
    (line,) = [x for x in r.output.splitlines() if x.startswith(f"{seq} ")]
    assert line.endswith("A\\udcffB")


# ------------------------------------------------------------ backup into a directory


def test_backup_into_a_directory_writes_a_timestamped_file(  # type: ignore[no-untyped-def]
    stocked_cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, file_sha256
) -> None:
    when = datetime(2027, 3, 1, 8, 0, 5, tzinfo=timezone.utc)
    monkeypatch.setattr(vault.format.model, "utc_now", lambda: when)
    place = tmp_path / "backups"
    place.mkdir(mode=0o700)
    r = stocked_cli.v("backup", str(place) + "/")
    assert r.exit_code == 0, r.output
    saved = place / "vault-20270301T080005Z.db"
    assert sorted(place.iterdir()) == [saved]
    assert r.stdout == f"Backed up 2 credentials to {saved}.\n"
    assert saved.stat().st_mode & 0o777 == 0o600
    assert _restore(stocked_cli, saved, "--yes").exit_code == 0
    # The same second again: refused, the first backup untouched.
    before = file_sha256(saved)
    check_one_error_line(stocked_cli.v("backup", str(place) + "/"), 5)
    assert file_sha256(saved) == before
    # Without the slash, an existing directory is a directory too.
    later = when + timedelta(days=1)
    monkeypatch.setattr(vault.format.model, "utc_now", lambda: later)
    r = stocked_cli.v("backup", str(place))
    assert r.exit_code == 0, r.output
    assert sorted(p.name for p in place.iterdir()) == [
        "vault-20270301T080005Z.db",
        "vault-20270302T080005Z.db",
    ]


def test_backup_into_a_missing_directory_is_refused(stocked_cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    missing = tmp_path / "nowhere"
    line = check_one_error_line(stocked_cli.v("backup", str(missing) + "/"), 8)
    assert "no directory" in line and str(missing) in line
    assert not missing.exists()


# -------------------------------------------------- doctor: copies restore left behind


def test_doctor_reports_replaced_vaults_and_how_to_remove_them(stocked_cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    def replaced() -> dict[str, str]:
        [d] = [
            d
            for d in json.loads(stocked_cli.v("doctor", "--json").stdout)
            if d["check"] == "replaced vaults"
        ]
        return d

    assert replaced()["status"] == "ok"
    saved = _backup(stocked_cli, tmp_path)
    assert _restore(stocked_cli, saved, "--yes").exit_code == 0
    copies = sorted(stocked_cli.vault_path.parent.glob("vault.db.replaced-*"))
    assert copies
    found = replaced()
    assert found["status"] == "warn"
    command = found["message"].split("once no longer needed: ", 1)[1]
    words = shlex.split(command)
    assert words[:2] == ["rm", "--"] and words[2:] == [str(c) for c in copies]
    # The command printed removes them, and doctor is content again.
    subprocess.run(command, shell=True, check=True)
    assert not list(stocked_cli.vault_path.parent.glob("vault.db.replaced-*"))
    assert stocked_cli.vault_path.is_file()
    assert replaced()["status"] == "ok"
    table = stocked_cli.v("doctor").stdout
    assert "replaced vaults" in table
