"""Commands that watch key lifetimes without a key: ``check`` (for cron) and
``schedule`` (the cron line or systemd timer that runs it)."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import sys

import click

from vault.db.location import resolve
from vault.db.url import describe_location
from vault.errors import VaultError
from vault.format import model
from vault.ops.checks import RANK, SEVERITIES, Report
from vault.ops.checks import check as run_check
from vault.ops.notify import check_url, post_json

from . import output
from .options import json_option, open_inventory, vault_option

ENV_NOTIFY_URL = "EXVAULT_NOTIFY_URL"


def _prometheus_label(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def render_prometheus(report: Report) -> str:
    """The report in the Prometheus text format (node_exporter textfile collector)."""
    lines = [
        "# HELP exvault_credentials Credentials in the vault.",
        "# TYPE exvault_credentials gauge",
        f"exvault_credentials {report.credentials}",
        "# HELP exvault_findings Findings of exvault check, by severity.",
        "# TYPE exvault_findings gauge",
    ]
    for severity in SEVERITIES:
        count = sum(1 for f in report.findings if f.severity == severity)
        lines.append(f'exvault_findings{{severity="{severity}"}} {count}')
    lines += [
        "# HELP exvault_finding One finding (value: 0 ok, 1 warn, 2 critical).",
        "# TYPE exvault_finding gauge",
    ]
    for f in report.findings:
        labels = (
            f'credential="{_prometheus_label(f.credential or "")}",'
            f'code="{_prometheus_label(f.code)}",severity="{f.severity}"'
        )
        if f.client is not None:  # vault-wide findings about a client: one series each
            labels += f',client="{_prometheus_label(f.client)}"'
        lines.append(f"exvault_finding{{{labels}}} {RANK[f.severity]}")
    lines += [
        "# HELP exvault_check_timestamp_seconds When the check ran (Unix time).",
        "# TYPE exvault_check_timestamp_seconds gauge",
        f"exvault_check_timestamp_seconds {report.generated_at.timestamp():.0f}",
    ]
    return "\n".join(lines) + "\n"


@click.command()
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["table", "json", "prometheus"]),
    default="table",
    show_default=True,
)
@json_option
@click.option(
    "--quiet",
    "-q",
    is_flag=True,
    help="Print nothing unless a finding reaches --fail-on (for cron).",
)
@click.option(
    "--fail-on",
    type=click.Choice(["warn", "critical"]),
    default="critical",
    show_default=True,
    help="Lowest severity that makes the exit code non-zero.",
)
@click.option("--all", "show_all", is_flag=True, help="Also list ok findings (accepted risks).")
@click.option(
    "--notify-url",
    metavar="URL",
    default=None,
    help=f"POST the JSON report here when there are findings [default: ${ENV_NOTIFY_URL}].",
)
@vault_option
def check(
    fmt: str,
    as_json: bool,
    quiet: bool,
    fail_on: str,
    show_all: bool,
    notify_url: str | None,
    vault_location: str | None,
) -> None:
    """Check every credential's age, expiry, scope and usage (no passphrase needed).

    Exit code: 0 when no finding reaches --fail-on; otherwise 1 when the worst
    finding is a warning, 2 when it is critical. Errors exit 3 or more (see docs/cli.md).
    A failing webhook is reported on stderr and does not change the exit code; a
    notify URL that cannot be sent is refused before the check (exit 7).
    """
    if as_json:
        fmt = "json"
    url = notify_url or os.environ.get(ENV_NOTIFY_URL)
    if url:
        check_url(url)  # up front: a URL that cannot be sent is a mistake, not a finding
    with open_inventory(vault_location) as inv:
        report = run_check(inv, model.utc_now())
    code = report.exit_code(fail_on)
    shown = report.findings if show_all else report.at_least("warn")
    if not (quiet and code == 0):
        if fmt == "json":
            output.emit_json(report.as_dict())
        elif fmt == "prometheus":
            click.echo(render_prometheus(report), nl=False)
        elif shown:
            output.table(
                ("SEVERITY", "CREDENTIAL", "CODE", "MESSAGE"),
                [(f.severity.upper(), f.credential or "(vault)", f.code, f.message) for f in shown],
            )
        else:
            click.echo(f"All {output.plural(report.credentials, 'credential')} ok.")
    if url and report.at_least("warn"):
        try:
            post_json(url, report.as_dict())
        except VaultError as exc:
            click.echo(f"exvault: warning: could not notify: {exc}", err=True)
    raise click.exceptions.Exit(code)


_CRON_FIELD = re.compile(r"^[\d*/,\-A-Za-z]+$")


PASSPHRASE_CREDENTIAL = "exvault-passphrase"  # noqa: S105 (a credential's name)
"""The name of the sealed passphrase ``schedule --systemd --verify`` loads."""


def _exvault_command() -> str:
    if os.path.basename(sys.argv[0]) == "exvault" and os.path.isfile(sys.argv[0]):
        return shlex.quote(os.path.abspath(sys.argv[0]))
    found = shutil.which("exvault")
    if found:
        return shlex.quote(os.path.abspath(found))
    return f"{shlex.quote(sys.executable)} -m vault.cli.main"


@click.command()
@click.option(
    "--cron", "cron_spec", metavar="SPEC", help='Print a crontab line, e.g. --cron "0 8 * * *".'
)
@click.option("--systemd", is_flag=True, help="Print a systemd service and timer unit pair.")
@click.option(
    "--on-calendar",
    default="*-*-* 08:00:00",
    show_default=True,
    help="systemd OnCalendar= of the timer.",
)
@click.option(
    "--fail-on", type=click.Choice(["warn", "critical"]), default="warn", show_default=True
)
@click.option(
    "--verify",
    "with_verify",
    is_flag=True,
    help="With --systemd: also run `exvault verify`, unlocked with a passphrase sealed "
    "by systemd-creds (LoadCredentialEncrypted=).",
)
@vault_option
def schedule(
    cron_spec: str | None,
    systemd: bool,
    on_calendar: str,
    fail_on: str,
    with_verify: bool,
    vault_location: str | None,
) -> None:
    """Print what runs `exvault check` regularly (nothing is installed).

    cron mails the output of a job that prints something: with --quiet, that is
    exactly when a finding reaches --fail-on. Put a webhook URL in EXVAULT_NOTIFY_URL
    rather than on the command line if it carries a secret. With --systemd --verify
    the service also runs `exvault verify`, which needs the passphrase: systemd
    decrypts it (sealed to this machine's TPM or host key) into the service's
    credentials directory only while the job runs.
    """
    if bool(cron_spec) == systemd:
        raise click.UsageError("give exactly one of --cron SPEC or --systemd")
    if with_verify and not systemd:
        raise click.UsageError("--verify goes with --systemd (cron has no sealed credentials)")
    url = resolve(vault_location)
    # A database URL may hold a password: the job should take it from its environment
    # (EXVAULT_URL, or ~/.pgpass), never from a crontab line or a unit file.
    sqlite = url.get_backend_name() == "sqlite"
    where = f" --vault {shlex.quote(describe_location(url))}" if sqlite else ""
    command = f"{_exvault_command()} check --quiet --fail-on {fail_on}{where}"
    if cron_spec:
        fields = cron_spec.split()
        if len(fields) != 5 or not all(_CRON_FIELD.match(f) for f in fields):
            raise click.UsageError('--cron needs five fields, e.g. "0 8 * * *"')
        click.echo("# exvault rotation check; add with: crontab -e")
        if not where:
            click.echo("# give the job EXVAULT_URL (e.g. a crontab line EXVAULT_URL=...)")
        # cron turns an unescaped % into a newline.
        click.echo(f"{' '.join(fields)} {command.replace('%', chr(92) + '%')}")
        return
    unlocked = ""
    if with_verify:
        verify = f"{_exvault_command()} verify{where}"
        unlocked = f"""ExecStart={verify.replace("%", "%%")}
# The passphrase, sealed to this machine (TPM2 or host key) once, as root:
#   systemd-ask-password -n | systemd-creds encrypt --name={PASSPHRASE_CREDENTIAL} - \\
#       /etc/credstore.encrypted/{PASSPHRASE_CREDENTIAL}
# systemd decrypts it into $CREDENTIALS_DIRECTORY (mode 0400) while the job runs.
LoadCredentialEncrypted={PASSPHRASE_CREDENTIAL}:/etc/credstore.encrypted/{PASSPHRASE_CREDENTIAL}
Environment=EXVAULT_PASSPHRASE_FILE=%d/{PASSPHRASE_CREDENTIAL}
"""
    click.echo(
        f"""# /etc/systemd/system/exvault-check.service  (or ~/.config/systemd/user/)
[Unit]
Description=exvault rotation check

[Service]
Type=oneshot
ExecStart={command.replace("%", "%%")}
{unlocked}# A webhook URL often holds a secret and unit files are world-readable: put
# EXVAULT_NOTIFY_URL=... in a 0600 file and name it here instead:
# EnvironmentFile=/etc/exvault/notify.env

# /etc/systemd/system/exvault-check.timer
[Unit]
Description=Run the exvault rotation check

[Timer]
OnCalendar={on_calendar}
Persistent=true

[Install]
WantedBy=timers.target

# then: systemctl daemon-reload && systemctl enable --now exvault-check.timer"""
    )
