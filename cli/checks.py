"""Commands that watch key lifetimes without a key: ``check`` (for cron) and
``schedule`` (the cron line or systemd timer that runs it)."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import click

from vault.db.location import resolve
from vault.db.url import describe_location
from vault.errors import VaultError, VaultUnavailable, printable
from vault.format import model
from vault.ops.checks import Report
from vault.ops.checks import check as run_check
from vault.ops.finding import RANK, SEVERITIES
from vault.ops.notify import check_url, send

from . import output
from .options import json_option, open_inventory, vault_option

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry
    from prometheus_client.metrics_core import Metric

ENV_NOTIFY_URL = "EXVAULT_NOTIFY_URL"
METRICS_EXTRA = (
    "install exvault with its metrics extra, pip install '.[metrics]' in its source tree"
)
# prometheus_client (the optional `metrics` extra) is imported inside the functions
# below: only --format prometheus and --textfile need it, and `check` from cron
# (and `schedule`, in this module) must run without it.


class _ReportCollector:
    """A prometheus_client collector serving one check report's gauges.

    Written as a collector (not Gauge objects) because a finding about a client has a
    ``client`` label the others lack: prometheus_client's Gauge fixes one label set.
    """

    def __init__(self, report: Report) -> None:
        self.report = report

    def collect(self) -> Iterator[Metric]:
        """Yield every metric family of the report."""
        report = self.report
        yield _gauge("exvault_credentials", "Credentials in the vault.", [({}, report.credentials)])
        yield _gauge(
            "exvault_findings",
            "Findings of exvault check, by severity.",
            [
                ({"severity": s}, sum(1 for f in report.findings if f.severity == s))
                for s in SEVERITIES
            ],
        )
        findings: list[tuple[dict[str, str], float]] = []
        worst: dict[str, int] = {}
        for f in report.findings:
            labels = {"credential": f.credential or "", "code": f.code, "severity": f.severity}
            if f.client is not None:  # vault-wide findings about a client: one series each
                labels["client"] = f.client
            findings.append((labels, RANK[f.severity]))
            if f.credential is not None:
                worst[f.credential] = max(worst.get(f.credential, 0), RANK[f.severity])
        yield _gauge("exvault_finding", "One finding (value: 0 ok, 1 warn, 2 critical).", findings)
        yield _gauge(
            "exvault_credential_age_days",
            "Days since the credential's current version was issued.",
            [({"credential": a.name}, a.age_days) for a in report.ages],
        )
        yield _gauge(
            "exvault_credential_days_to_expiry",
            "Days until the exchange expires the key (negative once expired; "
            "credentials without an expiry have no series).",
            [
                ({"credential": a.name}, a.days_to_expiry)
                for a in report.ages
                if a.days_to_expiry is not None
            ],
        )
        yield _gauge(
            "exvault_credential_worst_severity",
            "The credential's worst finding (0 ok or none, 1 warn, 2 critical).",
            [({"credential": a.name}, worst.get(a.name, 0)) for a in report.ages],
        )
        yield _gauge(
            "exvault_credential_last_probe_timestamp_seconds",
            "When exvault probe last got the exchange's report on the credential's current "
            "key (Unix time; credentials never probed successfully have no series).",
            [
                ({"credential": a.name}, round(a.last_probe_at.timestamp()))
                for a in report.ages
                if a.last_probe_at is not None
            ],
        )
        yield _gauge(
            "exvault_check_timestamp_seconds",
            "When the check ran (Unix time).",
            [({}, round(report.generated_at.timestamp()))],
        )


def _gauge(name: str, documentation: str, samples: list[tuple[dict[str, str], float]]) -> Metric:
    from prometheus_client.metrics_core import Metric

    family = Metric(name, documentation, "gauge")
    for labels, value in samples:
        family.add_sample(name, labels, value)
    return family


def _registry(report: Report) -> CollectorRegistry:
    """A registry serving ``report``.

    :raises VaultUnavailable: when prometheus_client is not installed.
    """
    try:
        from prometheus_client import CollectorRegistry
    except ImportError:
        raise VaultUnavailable(
            f"Prometheus output needs prometheus_client: {METRICS_EXTRA}"
        ) from None
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_ReportCollector(report))
    return registry


def render_prometheus(report: Report) -> str:
    """The report in the Prometheus text format (node_exporter textfile collector).

    :raises VaultUnavailable: when prometheus_client is not installed.
    """
    registry = _registry(report)
    from prometheus_client import generate_latest

    return generate_latest(registry).decode("utf-8")


def write_textfile(report: Report, path: str) -> None:
    """Write the report's metrics to ``path`` atomically (a temporary file renamed over
    it), so node_exporter's textfile collector never reads half a file.

    :raises VaultUnavailable: when it cannot be written, or prometheus_client is not
        installed.
    """
    registry = _registry(report)
    from prometheus_client import write_to_textfile

    try:
        write_to_textfile(path, registry)
    except OSError as exc:
        raise VaultUnavailable(f"cannot write {printable(path)}: {exc.strerror}") from None


@click.command()
@json_option
@click.option(
    "--prometheus",
    is_flag=True,
    help="Print the Prometheus text format (node_exporter's textfile collector).",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["table", "json", "prometheus"]),
    default=None,
    hidden=True,
    help="Deprecated: --json and --prometheus say the same.",
)
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
    "--textfile",
    metavar="PATH",
    type=click.Path(dir_okay=False),
    default=None,
    help="Also write the Prometheus metrics to PATH, atomically (for node_exporter's "
    "textfile collector), whatever --json, --prometheus and --quiet say.",
)
@click.option(
    "--notify-url",
    metavar="URL",
    default=None,
    help="When there are findings: POST the JSON report to an http(s) URL, or send a "
    "summary to an apprise URL (tgram://, discord://, slack://, ntfy://, mailto://...) "
    f"[default: ${ENV_NOTIFY_URL}].",
)
@vault_option
def check(
    as_json: bool,
    prometheus: bool,
    fmt: str | None,
    quiet: bool,
    fail_on: str,
    show_all: bool,
    textfile: str | None,
    notify_url: str | None,
    vault_location: str | None,
) -> None:
    """Check every credential's age, expiry, scope and usage.

    No passphrase is needed.
    Exit code: 0 when no finding reaches --fail-on; otherwise 1 when the worst
    finding is a warning, 2 when it is critical. Errors exit 3 or more (see docs/cli.md).
    A failing webhook is reported on stderr and does not change the exit code; a
    notify URL that cannot be sent is refused before the check (exit 7).
    """
    fmt = output_format(as_json, prometheus, fmt)
    url = notify_url or os.environ.get(ENV_NOTIFY_URL)
    if url:
        check_url(url)  # up front: a URL that cannot be sent is a mistake, not a finding
    with open_inventory(vault_location) as inv:
        report = run_check(inv, model.utc_now())
    code = report.exit_code(fail_on)
    if textfile:
        write_textfile(report, textfile)
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
            send(url, report.as_dict())
        except VaultError as exc:
            click.echo(f"exvault: warning: could not notify: {exc}", err=True)
    raise click.exceptions.Exit(code)


def output_format(as_json: bool, prometheus: bool, fmt: str | None) -> str:
    """``table``, ``json`` or ``prometheus``, from ``--json`` or ``--prometheus``, else the
    hidden ``--format`` they replace (still accepted as it was: cron lines use it).

    :raises click.UsageError: when both --json and --prometheus are given.
    """
    if as_json and prometheus:
        raise click.UsageError("--json and --prometheus exclude each other")
    if as_json:
        return "json"  # --json has always won over --format
    if prometheus:
        return "prometheus"
    return fmt or "table"


# A crontab line's time: five fields (minute hour day month weekday) or a nickname;
# croniter judges the values, this keeps a shell-active character out of the line.
_CRON_TEXT = re.compile(r"^(@[a-z]+|[\d*/,\-A-Za-z?LW#]+( [\d*/,\-A-Za-z?LW#]+){4})$")
_CRON_NICKNAMES = ("@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly")
CRONTAB_MARKER = "# exvault rotation check (exvault schedule --install)"
"""The comment above the crontab line ``schedule --install`` manages."""
UNIT_NAME = "exvault-check"


PASSPHRASE_CREDENTIAL = "exvault-passphrase"  # noqa: S105 (a credential's name)
"""The name of the sealed passphrase ``schedule --systemd --verify`` loads."""


def _exvault_command() -> str | None:
    """The installed ``exvault`` script (the one running, else the first on PATH)."""
    if os.path.basename(sys.argv[0]) == "exvault" and os.path.isfile(sys.argv[0]):
        return shlex.quote(os.path.abspath(sys.argv[0]))
    found = shutil.which("exvault")
    if found:
        return shlex.quote(os.path.abspath(found))
    return None


def cron_time(spec: str) -> str:
    """A crontab time spec, normalised to single spaces.

    :raises click.UsageError: unless croniter accepts it as five fields or a nickname
        cron knows (``@daily``...), in characters that mean nothing to a shell.
    :raises VaultUnavailable: when croniter is not installed.
    """
    # Imported here: croniter is the optional `schedule` extra, and `check`, which
    # shares this module, runs from cron without it.
    try:
        from croniter import croniter
    except ImportError:
        raise VaultUnavailable(
            "schedule --cron needs croniter: install exvault with its schedule extra, "
            "pip install '.[schedule]' in its source tree"
        ) from None
    fields = " ".join(spec.split())
    nickname = fields.startswith("@")
    if (
        not _CRON_TEXT.fullmatch(fields)
        or (nickname and fields not in _CRON_NICKNAMES)
        or not croniter.is_valid(fields)
    ):
        raise click.UsageError(
            f'--cron needs five fields or a nickname such as @daily, e.g. "0 8 * * *"; '
            f"{spec!r} is not a valid schedule"
        )
    return fields


def _run_crontab(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    """Run the user's ``crontab`` (found on PATH).

    :raises VaultUnavailable: when there is no crontab command or it cannot run.
    """
    binary = shutil.which("crontab")
    if binary is None:
        raise VaultUnavailable("no crontab command on PATH (install cron, or use --systemd)")
    try:
        return subprocess.run(  # noqa: S603 (fixed arguments, no shell)
            [binary, *args], input=stdin, capture_output=True, text=True, timeout=30
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise VaultUnavailable(f"cannot run crontab: {type(exc).__name__}") from None


def install_cron_line(line: str) -> None:
    """Put ``line`` under :data:`CRONTAB_MARKER` in the user's crontab, replacing the
    line an earlier install put there and keeping every other line.

    :raises VaultUnavailable: when crontab cannot be read or written.
    """
    listed = _run_crontab("-l")
    if listed.returncode != 0 and "no crontab" not in listed.stderr.lower():
        raise VaultUnavailable(f"crontab -l failed: {listed.stderr.strip()[:200]}")
    kept: list[str] = []
    skip_next = False
    for existing in (listed.stdout if listed.returncode == 0 else "").splitlines():
        if skip_next:
            skip_next = False
            continue
        if existing == CRONTAB_MARKER:
            skip_next = True  # the job line an earlier install wrote below it
            continue
        kept.append(existing)
    kept += [CRONTAB_MARKER, line]
    written = _run_crontab("-", stdin="\n".join(kept) + "\n")
    if written.returncode != 0:
        raise VaultUnavailable(f"crontab refused the new table: {written.stderr.strip()[:200]}")


def systemd_user_directory() -> Path:
    """Where user units go: ``$XDG_CONFIG_HOME/systemd/user`` (``~/.config`` by default)."""
    config = os.environ.get("XDG_CONFIG_HOME") or os.path.join(os.path.expanduser("~"), ".config")
    return Path(config) / "systemd" / "user"


def _write_unit(path: Path, text: str) -> None:
    """Replace ``path`` with ``text`` atomically (a reader sees the old or new unit).

    :raises VaultUnavailable: when it cannot be written.
    """
    temporary = path.with_name(path.name + ".tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary.write_text(text, encoding="utf-8")
        os.chmod(temporary, 0o644)  # units hold no secret (see the EnvironmentFile note)
        os.replace(temporary, path)
    except OSError as exc:
        temporary.unlink(missing_ok=True)
        raise VaultUnavailable(f"cannot write {path}: {exc.strerror}") from None


def _systemd_units(command: str, on_calendar: str, unlocked: str) -> tuple[str, str]:
    """The service and timer units' text."""
    service = f"""[Unit]
Description=exvault rotation check

[Service]
Type=oneshot
ExecStart={command.replace("%", "%%")}
{unlocked}# A webhook URL often holds a secret and unit files are world-readable: put
# EXVAULT_NOTIFY_URL=... in a 0600 file and name it here instead:
# EnvironmentFile=/etc/exvault/notify.env
"""
    timer = f"""[Unit]
Description=Run the exvault rotation check

[Timer]
OnCalendar={on_calendar}
Persistent=true

[Install]
WantedBy=timers.target
"""
    return service, timer


@click.command()
@click.option(
    "--cron",
    "cron_spec",
    metavar="SPEC",
    help='Print a crontab line for this schedule, e.g. --cron "0 8 * * *" or --cron @daily.',
)
@click.option("--systemd", is_flag=True, help="Print a systemd service and timer unit pair.")
@click.option(
    "--on-calendar",
    metavar="SPEC",
    default="*-*-* 08:00:00",
    show_default=True,
    help='The timer\'s systemd OnCalendar= time, e.g. daily or "Mon *-*-* 08:00".',
)
@click.option(
    "--fail-on",
    type=click.Choice(["warn", "critical"]),
    default="warn",
    show_default=True,
    help="Lowest severity that makes the job fail (and cron mail its output).",
)
@click.option(
    "--verify",
    "with_verify",
    is_flag=True,
    help="With --systemd: also run `exvault verify`, unlocked with a passphrase sealed "
    "by systemd-creds (LoadCredentialEncrypted=).",
)
@click.option(
    "--install",
    is_flag=True,
    help="Install instead of printing: the line into your crontab, or the units into "
    "$XDG_CONFIG_HOME/systemd/user.",
)
@vault_option
def schedule(
    cron_spec: str | None,
    systemd: bool,
    on_calendar: str,
    fail_on: str,
    with_verify: bool,
    install: bool,
    vault_location: str | None,
) -> None:
    """Print (or --install) what runs `exvault check` regularly.

    cron mails the output of a job that prints something: with --quiet, that is
    exactly when a finding reaches --fail-on. Put a webhook URL in EXVAULT_NOTIFY_URL
    rather than on the command line if it carries a secret. With --systemd --verify
    the service also runs `exvault verify`, which needs the passphrase: systemd
    decrypts it (sealed to this machine's TPM or host key) into the service's
    credentials directory only while the job runs. Both run the installed `exvault`.
    """
    if (cron_spec is not None) == systemd:
        raise click.UsageError("give exactly one of --cron SPEC or --systemd")
    if with_verify and not systemd:
        raise click.UsageError("--verify goes with --systemd (cron has no sealed credentials)")
    if with_verify and install:
        raise click.UsageError(
            "--verify units use root's sealed credentials: print them and install them as root"
        )
    when = cron_time(cron_spec) if cron_spec is not None else ""
    exvault = _exvault_command()
    if exvault is None:
        if install:
            raise VaultUnavailable(
                "no installed exvault command on PATH for the job to run; install exvault first"
            )
        exvault = f"{shlex.quote(sys.executable)} -m vault.cli.main"
    url = resolve(vault_location)
    # A database URL may hold a password: the job should take it from its environment
    # (EXVAULT_URL, or ~/.pgpass), never from a crontab line or a unit file.
    sqlite = url.get_backend_name() == "sqlite"
    where = f" --vault {shlex.quote(describe_location(url))}" if sqlite else ""
    command = f"{exvault} check --quiet --fail-on {fail_on}{where}"
    if cron_spec is not None:
        # cron turns an unescaped % into a newline.
        line = f"{when} {command.replace('%', chr(92) + '%')}"
        if install:
            install_cron_line(line)
            click.echo(f"Installed in your crontab: {line}")
            if not where:
                click.echo("Give the job EXVAULT_URL (a crontab line EXVAULT_URL=...).")
            return
        click.echo("# exvault rotation check; add with: crontab -e (or schedule --install)")
        if not where:
            click.echo("# give the job EXVAULT_URL (e.g. a crontab line EXVAULT_URL=...)")
        click.echo(line)
        return
    unlocked = ""
    if with_verify:
        verify = f"{exvault} verify{where}"
        unlocked = f"""ExecStart={verify.replace("%", "%%")}
# The passphrase, sealed to this machine (TPM2 or host key) once, as root:
#   systemd-ask-password -n | systemd-creds encrypt --name={PASSPHRASE_CREDENTIAL} - \\
#       /etc/credstore.encrypted/{PASSPHRASE_CREDENTIAL}
# systemd decrypts it into $CREDENTIALS_DIRECTORY (mode 0400) while the job runs.
LoadCredentialEncrypted={PASSPHRASE_CREDENTIAL}:/etc/credstore.encrypted/{PASSPHRASE_CREDENTIAL}
Environment=EXVAULT_PASSPHRASE_FILE=%d/{PASSPHRASE_CREDENTIAL}
"""
    service, timer = _systemd_units(command, on_calendar, unlocked)
    if install:
        directory = systemd_user_directory()
        _write_unit(directory / f"{UNIT_NAME}.service", service)
        _write_unit(directory / f"{UNIT_NAME}.timer", timer)
        click.echo(f"Installed {UNIT_NAME}.service and {UNIT_NAME}.timer in {directory}.")
        click.echo(
            f"Start the timer: systemctl --user daemon-reload && "
            f"systemctl --user enable --now {UNIT_NAME}.timer"
        )
        return
    click.echo(
        f"""# /etc/systemd/system/{UNIT_NAME}.service  (or ~/.config/systemd/user/)
{service}
# /etc/systemd/system/{UNIT_NAME}.timer
{timer}
# then: systemctl daemon-reload && systemctl enable --now {UNIT_NAME}.timer"""
    )
