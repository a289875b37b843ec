"""``exvault probe``: ask each exchange what the stored keys can really do.

The only command that talks to exchanges: it imports ccxt (the ``exchanges`` extra)
through ``vault.ops.exchange_api``; ``list``, ``check`` and a bot's ``vault.load``
never load it.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from datetime import datetime, timedelta
from typing import Any, NamedTuple

import click

from vault.db.inventory import Inventory
from vault.durations import format_duration
from vault.errors import (
    IntegrityError,
    InvalidInput,
    NotFound,
    VaultError,
    printable,
    quoted,
)
from vault.format import identities
from vault.format.credential_info import CredentialInfo
from vault.format.model import LIVE, utc_now
from vault.format.policy import Policy
from vault.ops import observations
from vault.ops.finding import RANK, Finding
from vault.ops.probe_findings import findings as probe_findings
from vault.ops.probing import ProbeResult, ProbeTarget
from vault.ops.probing import probe as run_probes
from vault.owner.admin import AdminVault
from vault.runtime.client import ClientVault
from vault.runtime.secretfile import read_secret_file
from vault.runtime.token import ClientToken, parse_token, token_in_environment

from . import output
from .arguments import DURATION
from .options import json_option, passphrase_file_option, vault_option
from .unlock import open_admin

EXIT_UNREACHABLE = 69
"""Nothing could be reached: no exchange gave a verdict on any key (sysexits'
EX_UNAVAILABLE). ``probe`` keeps 1 and 2 for its findings, as ``check`` does."""
EXIT_INTERRUPTED = 130

#: Error kinds that are a verdict of the exchange (it was reached and answered).
_VERDICTS = frozenset({"rejected-key", "clock-skew"})


class _Declared(NamedTuple):
    """A credential as the vault declares it, with its policy and endpoint."""

    name: str
    exchange: str
    permissions: tuple[str, ...]
    ips: tuple[str, ...]
    endpoint: str | None
    policy: Policy


@click.command("probe")
@click.argument("names", nargs=-1)
@click.option("--all", "probe_all", is_flag=True, help="Probe every credential you may read.")
@click.option(
    "--exchange",
    "exchanges",
    metavar="ID",
    multiple=True,
    help="Only credentials of exchange ID (repeatable).",
)
@click.option(
    "--timeout",
    type=DURATION,
    default="10s",
    show_default=True,
    help="How long each request may take, from 1s to 120s, e.g. 20s.",
)
@click.option(
    "--token-file",
    type=click.Path(dir_okay=False),
    default=None,
    help="Probe as the monitor client whose token is in FILE (mode 0600). "
    "Default: $EXVAULT_TOKEN_FILE or $EXVAULT_TOKEN when set, else the owner.",
)
@json_option
@vault_option
@passphrase_file_option
def probe(
    names: tuple[str, ...],
    probe_all: bool,
    exchanges: tuple[str, ...],
    timeout: timedelta,
    token_file: str | None,
    as_json: bool,
    vault_location: str | None,
    passphrase_file: str | None,
) -> None:
    """Ask each exchange what the stored keys can really do.

    Permissions, IP whitelist, expiry and clock skew, as the exchange reports them.

    Calls, with each credential's own key, its exchange's key-introspection endpoint
    and server time, compares the answer with the declared metadata and records it as
    a signed observation that `exvault check` then reports. Exit 0 when all is fine,
    1 for a warning, 2 for a critical finding, 69 when no exchange could be reached.
    As the owner (unlock agent or passphrase) or, with a client token, as a monitor
    client (the credentials it is granted).

    Example: exvault probe --all --json
    """
    ctx = click.get_current_context()
    if not names and not probe_all and not exchanges:
        raise click.UsageError("name credentials to probe, or use --all or --exchange", ctx)
    if names and probe_all:
        raise click.UsageError("--all probes every credential: name none with it", ctx)
    if not timedelta(seconds=1) <= timeout <= timedelta(seconds=120):
        raise InvalidInput(
            f"--timeout: {format_duration(timeout)} is out of range: from 1s to 120s"
        )
    token = _token(token_file, passphrase_file)
    with ExitStack() as stack:
        handle: AdminVault | ClientVault
        if token is not None:
            client = stack.enter_context(ClientVault.open(vault_location, token=token))
            inventory = stack.enter_context(_closing(_pinned_inventory(vault_location, token)))
            handle, readable = client, inventory.client(client.client_name).grants
        else:
            admin = stack.enter_context(open_admin(vault_location, passphrase_file))
            handle, inventory, readable = admin, admin, tuple(admin.names())
        chosen = _choose(readable, names, token is not None)
        declared = [_declared(inventory.describe(name)) for name in chosen]
        if exchanges:
            wanted = {exchange.strip().lower() for exchange in exchanges}
            declared = [each for each in declared if each.exchange.lower() in wanted]
            if not declared:
                raise NotFound(
                    f"no credential of {', '.join(sorted(wanted))} to probe; see: exvault list"
                )
        if not declared:
            # An empty vault, or a monitor granted nothing: said, not a failure (cron).
            whose = "granted to this client" if token is not None else "in this vault"
            click.echo(f"exvault: nothing to probe: no credential {whose}.", err=True)
        targets, versions = _targets(handle, declared)
        code = _run(handle, declared, targets, versions, timeout.total_seconds(), as_json)
        # So that check notices a probe entry cut out of the log (a bad one erased).
        observations.remember_head(inventory)
    raise click.exceptions.Exit(code)


@contextmanager
def _closing(inventory: Inventory) -> Iterator[Inventory]:
    try:
        yield inventory
    finally:
        inventory.close()


def _pinned_inventory(vault_location: str | None, token: ClientToken) -> Inventory:
    """The keyless view of the vault, its header pinned to the token's as the client's
    own reads are: the endpoints it reads decide where the keys are sent, so a header
    swapped in the database must not vouch for them.

    :raises IntegrityError: the header is not the one the token names.
    """
    inventory = Inventory.open(vault_location)
    if inventory.vault_id != token.vault_id or (
        identities.fingerprint(inventory.verify_public) != token.fingerprint
    ):
        inventory.close()
        raise IntegrityError("damaged vault: its header is not the one the client token names")
    return inventory


def _token(token_file: str | None, passphrase_file: str | None) -> ClientToken | None:
    """The monitor client's token: ``--token-file``, else one in the environment
    (unless the owner's ``--passphrase-file`` was given); ``None`` for the owner.

    :raises InvalidToken: a token that is malformed.
    :raises InsecureFile: a token file others can read.
    """
    if token_file is not None:
        return parse_token(read_secret_file(token_file, "token file"))
    return None if passphrase_file is not None else token_in_environment()


def _choose(readable: Sequence[str], names: Sequence[str], as_client: bool) -> list[str]:
    """The credentials to probe, in order, each once.

    :raises NotFound: a named credential is not one this caller may read.
    """
    allowed = set(readable)
    for name in names:
        if name not in allowed:
            whose = "granted to this client" if as_client else "in this vault"
            raise NotFound(f"no credential {quoted(name)} {whose}; see: exvault list")
    return list(dict.fromkeys(names)) if names else sorted(allowed)


def _declared(info: CredentialInfo) -> _Declared:
    meta = info.metadata
    return _Declared(
        meta.name,
        meta.exchange,
        meta.permissions,
        meta.ips,
        None if meta.endpoint == LIVE else meta.endpoint,
        Policy.from_json(info.policy),
    )


def _targets(
    handle: AdminVault | ClientVault, declared: Sequence[_Declared]
) -> tuple[list[ProbeTarget], dict[str, int]]:
    """Each credential's decrypted fields, and the version they are."""
    targets, versions = [], {}
    for each in declared:
        credential = handle.get(each.name)
        versions[each.name] = credential.version
        targets.append(ProbeTarget(each.name, each.exchange, each.endpoint, credential.fields))
    return targets, versions


def _run(
    handle: AdminVault | ClientVault,
    declared: Sequence[_Declared],
    targets: list[ProbeTarget],
    versions: dict[str, int],
    timeout: float,
    as_json: bool,
) -> int:
    by_name = {each.name: each for each in declared}
    recorder = _Recorder(handle, versions)
    with output.TerminalProgress("probing") as progress:
        run = run_probes(targets, timeout=timeout, progress=progress, on_result=recorder)
    now = utc_now()
    rows = [(result, _findings(by_name[result.name], result, now)) for result in run.results]
    if as_json:
        output.emit_json([_as_json(result, found) for result, found in rows])
    else:
        _print(rows)
    if run.interrupted:
        click.echo(
            f"exvault: interrupted: {output.plural(len(run.results), 'credential')} of "
            f"{len(targets)} probed",
            err=True,
        )
        return EXIT_INTERRUPTED
    reached = [r for r in run.results if _reached(r)]
    if targets and not reached:
        return EXIT_UNREACHABLE
    worst = max((RANK[f.severity] for _, found in rows for f in found), default=0)
    return worst


class _Recorder:
    """Records each outcome as it comes in; a vault that refuses the write (a client
    on the shared layout's read-only file) is said once on stderr, and probing goes
    on."""

    def __init__(self, handle: AdminVault | ClientVault, versions: dict[str, int]) -> None:
        self.handle = handle
        self.versions = versions
        self.failed = False

    def __call__(self, result: ProbeResult) -> None:
        if self.failed:
            return
        try:
            observations.record(
                self.handle, result.name, self.versions[result.name], result.outcome
            )
        except VaultError as exc:
            self.failed = True
            click.echo(f"exvault: warning: probe results not recorded: {printable(exc)}", err=True)


def _reached(result: ProbeResult) -> bool:
    error = result.outcome.error
    return result.outcome.ok or (error is not None and error.kind in _VERDICTS)


def _findings(declared: _Declared, result: ProbeResult, now: datetime) -> list[Finding]:
    found = probe_findings(declared, result.outcome, declared.policy, now)
    # probe-stale speaks of earlier runs; this one just answered (or was not reached).
    return [f for f in found if f.code != "probe-stale"]


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment is not None else None


def _as_json(result: ProbeResult, found: Sequence[Finding]) -> dict[str, Any]:
    outcome, report, error = result.outcome, result.outcome.report, result.outcome.error
    return {
        "name": result.name,
        "exchange": result.exchange,
        "ok": outcome.ok,
        "observed_at": outcome.observed_at.isoformat(),
        "permissions": list(report.permissions)
        if report is not None and report.permissions is not None
        else None,
        "ip_restricted": report.ip_restricted if report is not None else None,
        "ips": list(report.ips) if report is not None and report.ips is not None else None,
        "expires_at": _iso(report.expires_at) if report is not None else None,
        "created_at": _iso(report.created_at) if report is not None else None,
        "skew_ms": outcome.skew_ms,
        "error": {"kind": error.kind, "code": error.code, "message": error.message}
        if error is not None
        else None,
        "findings": [{"code": f.code, "severity": f.severity, "message": f.message} for f in found],
    }


def _status(result: ProbeResult) -> str:
    error = result.outcome.error
    return "ok" if error is None else error.kind


def _print(rows: Sequence[tuple[ProbeResult, Sequence[Finding]]]) -> None:
    def shown(values: tuple[str, ...] | None) -> str:
        return "?" if values is None else (",".join(values) or "-")

    table = []
    for result, _ in rows:
        report, skew = result.outcome.report, result.outcome.skew_ms
        table.append(
            (
                result.name,
                result.exchange,
                _status(result),
                shown(report.permissions) if report is not None else "",
                ""
                if report is None
                else (
                    "?" if report.ip_restricted is None else "yes" if report.ip_restricted else "no"
                ),
                f"{report.expires_at:%Y-%m-%d}" if report and report.expires_at else "",
                "" if skew is None else f"{skew:+d} ms",
            )
        )
    output.table(
        ("NAME", "EXCHANGE", "RESULT", "PERMISSIONS", "IP BOUND", "EXPIRES", "SKEW"), table
    )
    for result, _ in rows:
        error = result.outcome.error
        if error is not None:
            click.echo(f"{result.name}: {printable(error.message)}")
    listed = [
        (f.severity.upper(), result.name, f.code, printable(f.message))
        for result, found in rows
        for f in sorted(found, key=lambda f: -RANK[f.severity])
    ]
    if listed:
        click.echo()
        output.table(("SEVERITY", "CREDENTIAL", "CODE", "MESSAGE"), listed)
