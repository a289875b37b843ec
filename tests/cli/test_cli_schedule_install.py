"""``exvault schedule --install``: the crontab line and the systemd user units.

No cron daemon runs in the test environment, so the crontab tests put a stand-in
``crontab`` first on PATH: a small script that keeps the table in a file and behaves
as cron's own for the two forms exvault uses (``crontab -l`` prints the table, or
"no crontab for USER" on stderr with exit 1 when there is none; ``crontab -`` replaces
the table with stdin, refusing a table whose last line lacks its newline as cron
does). The real binary is used instead when one is installed.
"""

from __future__ import annotations

import os
import shlex
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from tests.cli.conftest import check_one_error_line

CRONTAB_STANDIN = """#!{python}
import os, sys
table = os.environ["CRONTAB_STANDIN_FILE"]
if sys.argv[1:] == ["-l"]:
    if not os.path.exists(table):
        sys.stderr.write("no crontab for tester\\n")
        sys.exit(1)
    sys.stdout.write(open(table).read())
elif sys.argv[1:] == ["-"]:
    text = sys.stdin.read()
    if text and not text.endswith("\\n"):
        sys.stderr.write("premature EOF\\n")
        sys.exit(1)
    open(table, "w").write(text)
else:
    sys.stderr.write("usage: crontab [-l | -]\\n")
    sys.exit(1)
"""

INSTALLED = Path(sys.executable).parent  # where pip put the exvault script


@pytest.fixture
def crontab(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    """A callable reading the user's crontab; PATH holds crontab and the installed exvault."""
    real = shutil.which("crontab")
    bindir = tmp_path / "bin"
    bindir.mkdir()
    if real is None:
        standin = bindir / "crontab"
        standin.write_text(CRONTAB_STANDIN.format(python=sys.executable))
        standin.chmod(0o755)
        monkeypatch.setenv("CRONTAB_STANDIN_FILE", str(tmp_path / "crontab.txt"))
    assert (INSTALLED / "exvault").is_file()
    monkeypatch.setenv("PATH", f"{bindir}{os.pathsep}{INSTALLED}{os.pathsep}/usr/bin:/bin")

    def read() -> str:
        done = subprocess.run(
            [shutil.which("crontab") or "crontab", "-l"], capture_output=True, text=True
        )
        return done.stdout if done.returncode == 0 else ""

    return read


def test_install_adds_the_line_and_keeps_the_others(stocked_cli, crontab) -> None:  # type: ignore[no-untyped-def]
    subprocess.run(
        [shutil.which("crontab"), "-"],
        input="MAILTO=me@example.net\n5 4 * * * backup.sh\n",
        text=True,
        check=True,
    )
    r = stocked_cli.v("schedule", "--cron", "@daily", "--install")
    assert r.exit_code == 0, r.output
    lines = crontab().splitlines()
    assert lines[:2] == ["MAILTO=me@example.net", "5 4 * * * backup.sh"]
    assert lines[2] == "# exvault rotation check (exvault schedule --install)"
    words = shlex.split(lines[3])
    # The installed exvault script, never `python -m` from wherever the code lies.
    assert words[:2] == ["@daily", str(INSTALLED / "exvault")]
    assert words[2:] == [
        "check",
        "--quiet",
        "--fail-on",
        "warn",
        "--vault",
        str(stocked_cli.vault_path),
    ]
    assert r.stdout.startswith(f"Installed in your crontab: {lines[3]}")
    # Installing again replaces exvault's line instead of adding a second one.
    again = stocked_cli.v("schedule", "--cron", "0 8 * * 1-5", "--install", "--fail-on", "critical")
    assert again.exit_code == 0, again.output
    lines = crontab().splitlines()
    assert len(lines) == 4 and lines[:2] == ["MAILTO=me@example.net", "5 4 * * * backup.sh"]
    assert lines[3].startswith("0 8 * * 1-5 ") and "--fail-on critical" in lines[3]
    # The installed command runs as cron would run it (kdf-weak: exit 2).
    done = subprocess.run(
        lines[3].split(" ", 5)[5], shell=True, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 2 and "kdf-weak" in done.stdout


def test_install_into_an_empty_crontab(stocked_cli, crontab) -> None:  # type: ignore[no-untyped-def]
    assert crontab() == ""
    assert stocked_cli.v("schedule", "--cron", "0 8 * * *", "--install").exit_code == 0
    assert len(crontab().splitlines()) == 2


def test_install_refuses_a_bad_schedule_and_changes_nothing(stocked_cli, crontab) -> None:  # type: ignore[no-untyped-def]
    check_one_error_line(stocked_cli.v("schedule", "--cron", "61 8 * * *", "--install"), 2)
    assert crontab() == ""


def test_install_needs_an_installed_exvault(stocked_cli, crontab, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("PATH", str(Path(shutil.which("crontab")).parent))
    line = check_one_error_line(stocked_cli.v("schedule", "--cron", "0 8 * * *", "--install"), 8)
    assert "install exvault first" in line
    assert crontab() == ""


def test_install_without_crontab(stocked_cli, tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("PATH", str(INSTALLED))
    line = check_one_error_line(stocked_cli.v("schedule", "--cron", "0 8 * * *", "--install"), 8)
    assert "no crontab command" in line


def test_systemd_install_writes_user_units(stocked_cli, tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.setenv("PATH", f"{INSTALLED}{os.pathsep}/usr/bin:/bin")
    r = stocked_cli.v("schedule", "--systemd", "--install", "--on-calendar", "daily")
    assert r.exit_code == 0, r.output
    units = tmp_path / "config" / "systemd" / "user"
    service = (units / "exvault-check.service").read_text()
    timer = (units / "exvault-check.timer").read_text()
    assert sorted(p.name for p in units.iterdir()) == [
        "exvault-check.service",
        "exvault-check.timer",
    ]
    [exec_start] = [x for x in service.splitlines() if x.startswith("ExecStart=")]
    assert shlex.split(exec_start.removeprefix("ExecStart="))[0] == str(INSTALLED / "exvault")
    assert "Type=oneshot" in service and "OnCalendar=daily" in timer
    assert "WantedBy=timers.target" in timer
    assert stat.S_IMODE((units / "exvault-check.service").stat().st_mode) == 0o644
    assert "systemctl --user enable --now exvault-check.timer" in r.stdout
    # Again: replaced in place.
    assert stocked_cli.v("schedule", "--systemd", "--install").exit_code == 0
    assert "OnCalendar=*-*-* 08:00:00" in (units / "exvault-check.timer").read_text()
    assert len(list(units.iterdir())) == 2


def test_systemd_install_defaults_to_dot_config(stocked_cli, tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.delenv("XDG_CONFIG_HOME", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("PATH", str(INSTALLED))
    assert stocked_cli.v("schedule", "--systemd", "--install").exit_code == 0
    assert (tmp_path / "home" / ".config" / "systemd" / "user" / "exvault-check.timer").is_file()


def test_systemd_verify_is_not_installed_as_a_user_unit(stocked_cli, tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    check_one_error_line(stocked_cli.v("schedule", "--systemd", "--verify", "--install"), 2)
    assert not (tmp_path / "config").exists()


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="needs systemd-analyze")
def test_systemd_installed_units_pass_systemd_analyze(stocked_cli, tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """systemd's own checker accepts the units (it refuses a timer with a bad OnCalendar=,
    so this can fail)."""
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.setenv("PATH", f"{INSTALLED}{os.pathsep}/usr/bin:/bin")
    assert stocked_cli.v("schedule", "--systemd", "--install").exit_code == 0
    units = tmp_path / "config" / "systemd" / "user"
    done = subprocess.run(
        [
            "systemd-analyze",
            "verify",
            "--man=no",
            str(units / "exvault-check.service"),
            str(units / "exvault-check.timer"),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stdout + done.stderr
