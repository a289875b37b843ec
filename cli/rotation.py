"""Commands about key lifetimes: ``check``, ``rotate``, ``policy``, ``schedule``."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import sys
from datetime import timedelta
from typing import IO, TYPE_CHECKING, Any

import click

from . import output
from .credentials import _date, _read_payload
from .options import (
    from_json_option,
    json_option,
    open_admin,
    open_inventory,
    passphrase_file_option,
    vault_option,
)

if TYPE_CHECKING:
    from vault.ops.checks import Report

ENV_NOTIFY_URL = "EXVAULT_NOTIFY_URL"
EXIT_CHECK_USAGE = 64  # check keeps 1 and 2 for findings; see cli/main.py


# ---------------------------------------------------------------------------------- check


def _prometheus_label(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def render_prometheus(report: Report) -> str:
    """The report in the Prometheus text format (node_exporter textfile collector)."""
    from vault.ops.checks import RANK, SEVERITIES

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
    from vault.errors import VaultError
    from vault.format.model import utc_now
    from vault.ops.checks import check as run_check
    from vault.ops.notify import check_url, post_json

    if as_json:
        fmt = "json"
    url = notify_url or os.environ.get(ENV_NOTIFY_URL)
    if url:
        check_url(url)  # up front: a URL that cannot be sent is a mistake, not a finding
    with open_inventory(vault_location) as inv:
        report = run_check(inv, utc_now())
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


# --------------------------------------------------------------------------------- rotate


@click.group()
def rotate() -> None:
    """Rotate a key in stages: start, verify, promote, finish (or abort)."""


def _step(result: Any) -> None:
    click.echo(
        f"{result.credential}: {result.message}."
        if result.changed
        else f"{result.credential}: nothing to do ({result.message})."
    )


@rotate.command(name="start")
@click.argument("name")
@from_json_option('Read the new key\'s fields from JSON (FILE or "-").')
@click.option(
    "--permissions",
    "-p",
    default=None,
    help="Permissions of the new key [default: as the current one].",
)
@click.option(
    "--ip", "ips", multiple=True, help="IP whitelist of the new key [default: as the current one]."
)
@click.option("--issued", callback=_date, help="Date the new key was created [default: today].")
@click.option("--expires", callback=_date, help="Exchange expiry of the new key.")
@vault_option
@passphrase_file_option
def rotate_start(
    name: str,
    from_json: IO[bytes] | None,
    permissions: str | None,
    ips: tuple[str, ...],
    issued: Any,
    expires: Any,
    vault_location: str | None,
    passphrase_file: str | None,
) -> None:
    """Stage a new key for NAME as `pending` (hidden prompts or --from-json)."""
    from vault.owner import rotation

    with open_inventory(vault_location) as inv:
        exchange = inv.describe(name).metadata.exchange
    with open_admin(vault_location, passphrase_file) as admin:
        payload = _read_payload(from_json, exchange, ())
        result = rotation.start(
            admin,
            name,
            payload,
            permissions=permissions,
            ips=ips or None,
            issued_on=issued,
            expires_on=expires,
        )
    _step(result)
    if result.changed:
        click.echo(f"Next: exvault rotate verify {name}, then exvault rotate promote {name}")


@rotate.command(name="verify")
@click.argument("name")
@vault_option
@passphrase_file_option
@json_option
def rotate_verify(
    name: str, vault_location: str | None, passphrase_file: str | None, as_json: bool
) -> None:
    """Check the pending key of NAME; exits 1 when a check fails."""
    from vault.owner import rotation

    with open_admin(vault_location, passphrase_file) as admin:
        checks = rotation.verify(admin, name)
    if as_json:
        output.emit_json(
            [{"check": c.name, "passed": c.passed, "detail": c.detail} for c in checks]
        )
    else:
        for c in checks:
            click.echo(f"{'ok  ' if c.passed else 'FAIL'}  {c.name}: {c.detail}")
    if not all(c.passed for c in checks):
        raise click.exceptions.Exit(1)


@rotate.command(name="promote")
@click.argument("name")
@click.option(
    "--grace",
    metavar="DURATION",
    help="How long the previous key stays readable [default: policy, 24h].",
)
@vault_option
@passphrase_file_option
def rotate_promote(
    name: str, grace: str | None, vault_location: str | None, passphrase_file: str | None
) -> None:
    """Make the pending key current; the old one stays readable as `previous` for a while."""
    from vault.durations import parse_duration
    from vault.owner import rotation

    period = parse_duration(grace) if grace else None
    with open_admin(vault_location, passphrase_file) as admin:
        _step(rotation.promote(admin, name, grace=period))


@rotate.command(name="finish")
@click.argument("name")
@vault_option
@passphrase_file_option
def rotate_finish(name: str, vault_location: str | None, passphrase_file: str | None) -> None:
    """Drop the previous key of NAME (then delete it at the exchange)."""
    from vault.owner import rotation

    with open_admin(vault_location, passphrase_file) as admin:
        _step(rotation.finish(admin, name))


@rotate.command(name="abort")
@click.argument("name")
@vault_option
@passphrase_file_option
def rotate_abort(name: str, vault_location: str | None, passphrase_file: str | None) -> None:
    """Drop the pending key of NAME."""
    from vault.owner import rotation

    with open_admin(vault_location, passphrase_file) as admin:
        _step(rotation.abort(admin, name))


# --------------------------------------------------------------------------------- policy


@click.group()
def policy() -> None:
    """Set a credential's rotation policy and accepted risks."""


def _whole(text: str | None, unit: timedelta, what: str) -> int | None:
    if text is None:
        return None
    from vault.durations import parse_duration
    from vault.errors import InvalidInput

    period = parse_duration(text)
    if period % unit:
        raise InvalidInput(f"{what} must be a whole number of {'days' if unit.days else 'hours'}")
    return period // unit


def _policy_dict(p: Any) -> dict[str, Any]:
    return {
        "max_age_days": p.max_age_days,
        "warn_before_days": p.warn_before_days,
        "stale_days": p.stale_days,
        "grace_hours": p.grace_hours,
        "accepted": {
            k: {"reason": v.reason, "accepted_at": v.accepted_at} for k, v in p.accepted.items()
        },
    }


def _show_policy(p: Any, as_json: bool) -> None:
    if as_json:
        output.emit_json(_policy_dict(p))
        return
    output.fields(
        [
            ("Maximum age", f"{p.max_age_days}d"),
            ("Warn before", f"{p.warn_before_days}d"),
            ("Stale after", f"{p.stale_days}d"),
            ("Grace period", f"{p.grace_hours}h"),
            *[
                (f"Accepted {k}", f"{v.accepted_at:%Y-%m-%d}: {v.reason}")
                for k, v in p.accepted.items()
            ],
        ]
    )


@policy.command(name="set")
@click.argument("name")
@click.option("--max-age", metavar="DAYS", help="Rotate at this age, e.g. 60d [default: 90d].")
@click.option(
    "--warn-before", metavar="DAYS", help="Warn this long before, e.g. 10d [default: 14d]."
)
@click.option(
    "--stale-after", metavar="DAYS", help="Unread this long counts as stale [default: 30d]."
)
@click.option(
    "--grace", metavar="HOURS", help="How long a previous key stays readable [default: 24h]."
)
@vault_option
@passphrase_file_option
@json_option
def policy_set(
    name: str,
    max_age: str | None,
    warn_before: str | None,
    stale_after: str | None,
    grace: str | None,
    vault_location: str | None,
    passphrase_file: str | None,
    as_json: bool,
) -> None:
    """Change the rotation limits of NAME."""
    day, hour = timedelta(days=1), timedelta(hours=1)
    limits = {
        "max_age_days": _whole(max_age, day, "--max-age"),
        "warn_before_days": _whole(warn_before, day, "--warn-before"),
        "stale_days": _whole(stale_after, day, "--stale-after"),
        "grace_hours": _whole(grace, hour, "--grace"),
    }
    if all(v is None for v in limits.values()):
        raise click.UsageError(
            "nothing to change: give --max-age, --warn-before, --stale-after or --grace"
        )
    with open_admin(vault_location, passphrase_file) as admin:
        result = admin.set_policy(name, **limits)
    _show_policy(result, as_json)


@policy.command(name="accept-risk")
@click.argument("name")
@click.argument(
    "risk", type=click.Choice(["withdraw", "trade-without-ip", "stale", "duplicate-api-key"])
)
@click.option("--reason", required=True, help="Why this risk is acceptable (recorded and shown).")
@vault_option
@passphrase_file_option
def policy_accept_risk(
    name: str, risk: str, reason: str, vault_location: str | None, passphrase_file: str | None
) -> None:
    """Accept RISK for NAME, with a reason; check then reports it as ok."""
    with open_admin(vault_location, passphrase_file) as admin:
        admin.accept_risk(name, risk, reason)
    click.echo(f'Accepted "{risk}" for {name}.')


@policy.command(name="clear-risk")
@click.argument("name")
@click.argument(
    "risk", type=click.Choice(["withdraw", "trade-without-ip", "stale", "duplicate-api-key"])
)
@vault_option
@passphrase_file_option
def policy_clear_risk(
    name: str, risk: str, vault_location: str | None, passphrase_file: str | None
) -> None:
    """Stop accepting RISK for NAME."""
    with open_admin(vault_location, passphrase_file) as admin:
        admin.clear_risk(name, risk)
    click.echo(f'No longer accepting "{risk}" for {name}.')


@policy.command(name="show")
@click.argument("name")
@vault_option
@json_option
def policy_show(name: str, vault_location: str | None, as_json: bool) -> None:
    """Show the rotation policy of NAME (no passphrase needed)."""
    from vault.format.policy import Policy

    with open_inventory(vault_location) as inv:
        _show_policy(Policy.from_json(dict(inv.describe(name).policy)), as_json)


# ------------------------------------------------------------------------------- schedule

_CRON_FIELD = re.compile(r"^[\d*/,\-A-Za-z]+$")


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
@vault_option
def schedule(
    cron_spec: str | None, systemd: bool, on_calendar: str, fail_on: str, vault_location: str | None
) -> None:
    """Print what runs `exvault check` regularly (nothing is installed).

    cron mails the output of a job that prints something: with --quiet, that is
    exactly when a finding reaches --fail-on. Put a webhook URL in EXVAULT_NOTIFY_URL
    rather than on the command line if it carries a secret.
    """
    from vault.db.location import resolve
    from vault.db.url import describe_location

    if bool(cron_spec) == systemd:
        raise click.UsageError("give exactly one of --cron SPEC or --systemd")
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
    click.echo(
        f"""# /etc/systemd/system/exvault-check.service  (or ~/.config/systemd/user/)
[Unit]
Description=exvault rotation check

[Service]
Type=oneshot
ExecStart={command.replace("%", "%%")}
# A webhook URL often holds a secret and unit files are world-readable: put
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


COMMANDS = (check, rotate, policy, schedule)
