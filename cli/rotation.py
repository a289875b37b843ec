"""Commands that change a key's lifetime: ``rotate`` and ``policy`` (``check`` and
``schedule``, which need no key, are in :mod:`vault.cli.checks`)."""

from __future__ import annotations

import os
from datetime import date, timedelta
from typing import IO, Any

import click

from vault.errors import InvalidInput, VaultError
from vault.format.credential_info import CredentialInfo
from vault.format.model import to_epoch, utc_now
from vault.format.policy import ACCEPTABLE_FINDINGS, Policy
from vault.ops import exchange_keys
from vault.ops.exchange_rotation import DueItem, ExchangeRotation, due, find_due, report
from vault.ops.notify import check_url, send
from vault.owner import policies, rotation
from vault.owner.credentials import UNCHANGED, credential_metadata

from . import output
from .arguments import DAY_AHEAD, DAY_BACK, DURATION, WHOLE_DAYS, WHOLE_HOURS
from .checks import ENV_NOTIFY_URL
from .credentials import read_json_payload, read_payload, withdraw_warning, withdraws_unbound
from .groups import CommandGroup
from .options import (
    from_json_option,
    json_option,
    open_inventory,
    passphrase_file_option,
    vault_option,
)
from .unlock import open_admin


def require_credential(vault_location: str | None, name: str) -> CredentialInfo:
    """Check keylessly that the credential exists, before the passphrase is read, and
    return what its unverified metadata says (for checks made before the prompt too;
    the owner's step checks again on the verified head).

    :raises NotFound: when there is no credential ``name``.
    """
    with open_inventory(vault_location) as inv:
        return inv.describe(name)


def previous_until(info: CredentialInfo) -> int | None:
    """When the grace period of ``info``'s previous version ends (Unix time)."""
    return None if info.previous_until is None else to_epoch(info.previous_until)


def _linked(vault_location: str | None, name: str, *, required: bool = True) -> bool:
    """Whether ``name`` is rotated at the exchange (``policy set --rotate-via``), read
    keylessly before any passphrase prompt.

    :raises NotFound: when there is no credential ``name``.
    :raises InvalidInput: when ``required`` and it is not linked, or its exchange cannot
        be automated.
    """
    with open_inventory(vault_location) as inv:
        info = inv.describe(name)
    policy = Policy.from_json(dict(info.policy))
    if policy.rotate_via is None:
        if required:
            raise InvalidInput(
                f"{name} has no master key to rotate it at the exchange: "
                f"exvault policy set {name} --rotate-via MASTER --sub-account UID|NAME"
            )
        return False
    exchange_keys.for_exchange(info.metadata.exchange)
    return True


# --------------------------------------------------------------------------------- rotate


ROTATION_STEPS = ("start", "verify", "promote", "finish", "rollback", "abort")
"""``rotate``'s subcommands in the order a rotation uses them, as its help lists them."""


@click.group(cls=CommandGroup, order=ROTATION_STEPS)
def rotate() -> None:
    """Rotate a key in stages: start, verify, promote, finish.

    A staged key can be dropped (abort) and, during the grace period, the previous key
    made current again (rollback).
    """


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
    metavar="PERMS",
    default=None,
    help="Permissions of the new key [default: as the current one].",
)
@click.option(
    "--ip",
    "ips",
    metavar="IP",
    multiple=True,
    help="IP whitelist of the new key [default: as the current one].",
)
@click.option(
    "--issued",
    type=DAY_BACK,
    help="When the new key was created: a date, or how long ago (2d) [default: today].",
)
@click.option(
    "--expires",
    type=DAY_AHEAD,
    help="When the exchange expires the new key: a date, or a duration from today (90d) "
    "[default: the current key's lifetime from --issued].",
)
@click.option("--no-expires", is_flag=True, help="The new key has no exchange expiry.")
@click.option(
    "--at-exchange",
    is_flag=True,
    help="Create the new key at the exchange with NAME's master key (policy set --rotate-via).",
)
@click.option(
    "--allow-withdraw",
    is_flag=True,
    help="With --at-exchange: keep withdraw when the current key has it.",
)
@vault_option
@passphrase_file_option
def rotate_start(
    name: str,
    from_json: IO[bytes] | None,
    permissions: str | None,
    ips: tuple[str, ...],
    issued: date | None,
    expires: date | None,
    no_expires: bool,
    at_exchange: bool,
    allow_withdraw: bool,
    vault_location: str | None,
    passphrase_file: str | None,
) -> None:
    """Stage a new key for NAME as `pending`.

    Its fields come from hidden prompts, --from-json, or the exchange itself
    (--at-exchange, for a credential linked to a master key).
    """
    if expires and no_expires:
        raise click.UsageError("--expires and --no-expires exclude each other")
    if at_exchange:
        given = [
            option
            for option, value in (
                ("--from-json", from_json),
                ("--permissions", permissions),
                ("--ip", ips),
                ("--issued", issued),
                ("--expires", expires),
                ("--no-expires", no_expires),
            )
            if value
        ]
        if given:
            raise click.UsageError(
                f"--at-exchange copies the current key's scope at the exchange: "
                f"{', '.join(given)} cannot be given with it"
            )
        _linked(vault_location, name)
        with open_admin(vault_location, passphrase_file) as admin:
            engine = ExchangeRotation(admin)
            with engine.leased(name):
                for note in engine.resume(name):
                    click.echo(f"{name}: {note}.")
                result = engine.start(name, allow_withdraw=allow_withdraw)
        _step(result)
        click.echo(f"Next: exvault rotate verify {name}, then exvault rotate promote {name}")
        return
    if allow_withdraw:
        raise click.UsageError("--allow-withdraw goes with --at-exchange")
    with open_inventory(vault_location) as inv:
        current = inv.describe(name).metadata
    exchange = current.exchange
    # The new key's metadata, checked before any prompt (its default expiry is worked
    # out later from the current key's lifetime, so only a given one is checked here).
    credential_metadata(
        name,
        exchange,
        current.permissions if permissions is None else permissions,
        ips or current.ips,
        issued,
        None if no_expires else expires,
    )
    from_json_fields = read_json_payload(from_json)
    with open_admin(vault_location, passphrase_file) as admin:
        payload = read_payload(from_json_fields, exchange, ())
        result = rotation.start(
            admin,
            name,
            payload,
            permissions=permissions,
            ips=ips or None,
            issued_on=issued,
            expires_on=None if no_expires else (expires or UNCHANGED),
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
    """Check the pending key of NAME; exits 1 when a check fails.

    A key rotated at the exchange (policy set --rotate-via) is also checked there: it
    works, and has the current key's permissions and IPs exactly.
    """
    linked = _linked(vault_location, name, required=False)
    with open_admin(vault_location, passphrase_file) as admin:
        checks = ExchangeRotation(admin).verify(name) if linked else rotation.verify(admin, name)
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
    type=DURATION,
    help="How long the previous key stays readable, e.g. 2h [default: the policy's, 24h].",
)
@vault_option
@passphrase_file_option
def rotate_promote(
    name: str, grace: timedelta | None, vault_location: str | None, passphrase_file: str | None
) -> None:
    """Make the pending key of NAME current.

    The old one stays readable as `previous` for the grace period. Then runs the
    policy's --on-promote command, if any (policy set NAME --on-promote).
    """
    require_credential(vault_location, name)
    with open_admin(vault_location, passphrase_file) as admin:
        result, command = ExchangeRotation(admin).promote(name, grace=grace)
    _step(result)
    if command is not None:
        click.echo(f"{name}: {command}.")


@rotate.command(name="rollback")
@click.argument("name")
@vault_option
@passphrase_file_option
def rotate_rollback(name: str, vault_location: str | None, passphrase_file: str | None) -> None:
    """Make the previous key of NAME current again.

    Only during the grace period after promote; the promoted key is pending again.
    """
    info = require_credential(vault_location, name)
    if info.previous_version is not None:
        rotation.refuse_rollback(name, previous_until(info), info.pending_version)
    with open_admin(vault_location, passphrase_file) as admin:
        _step(rotation.rollback(admin, name))


@rotate.command(name="finish")
@click.argument("name")
@click.option(
    "--force",
    is_flag=True,
    help="Drop the previous key before its grace period ends (bots still on it fail).",
)
@vault_option
@passphrase_file_option
def rotate_finish(
    name: str, force: bool, vault_location: str | None, passphrase_file: str | None
) -> None:
    """Drop the previous key of NAME.

    Once its grace period is over (earlier with --force). A key rotated at the exchange
    (policy set --rotate-via) is deleted there first; delete any other one at the
    exchange yourself.
    """
    info = require_credential(vault_location, name)
    if not force and info.previous_version is not None:
        rotation.refuse_finish_in_grace(name, previous_until(info))
    linked = _linked(vault_location, name, required=False)
    with open_admin(vault_location, passphrase_file) as admin:
        if linked:
            engine = ExchangeRotation(admin)
            with engine.leased(name):
                for note in engine.resume(name):
                    click.echo(f"{name}: {note}.")
                _step(engine.finish(name, force=force))
        else:
            _step(rotation.finish(admin, name, force=force))


@rotate.command(name="due")
@click.option(
    "--auto",
    is_flag=True,
    help="Rotate what is due and whose policy says --auto: start, verify and promote in "
    "one run, finish in a later one after the grace period.",
)
@click.option("--dry-run", is_flag=True, help="With --auto: say what would be done, do nothing.")
@click.option(
    "--allow-withdraw",
    is_flag=True,
    help="With --auto: keep withdraw on new keys whose current key has it.",
)
@click.option(
    "--notify-url",
    metavar="URL",
    default=None,
    help="With --auto, when a rotation fails: notify as exvault check does "
    f"[default: ${ENV_NOTIFY_URL}].",
)
@vault_option
@passphrase_file_option
@json_option
def rotate_due(
    auto: bool,
    dry_run: bool,
    allow_withdraw: bool,
    notify_url: str | None,
    vault_location: str | None,
    passphrase_file: str | None,
    as_json: bool,
) -> None:
    """List the credentials rotated at the exchange that are due; --auto rotates them.

    Without --auto (or with --dry-run) no passphrase is needed. With --auto the vault
    is unlocked through the agent or --passphrase-file, each exchange call is
    journalled first, and what an earlier, interrupted run left open is settled first.
    Exit code 1 when a rotation failed (it is retried by the next run).
    """
    if (dry_run or allow_withdraw) and not auto:
        raise click.UsageError("--dry-run and --allow-withdraw go with --auto")
    url = notify_url or os.environ.get(ENV_NOTIFY_URL)
    if url and auto and not dry_run:
        check_url(url)
    now = utc_now()
    if not auto or dry_run:
        with open_inventory(vault_location) as inv:
            items = due(inv.credentials(), {}, now)
        _show_due([i for i in items if i.auto or not auto], as_json)
        return
    with open_admin(vault_location, passphrase_file) as admin:
        engine = ExchangeRotation(admin)
        engine.release_dead_leases()
        items = [i for i in find_due(admin, now) if i.auto and i.action != "wait"]
        results = [engine.run(item, allow_withdraw=allow_withdraw) for item in items]
        run_report = report(results, len(admin.names()), now)
    if as_json:
        output.emit_json([r.as_dict() for r in results])
    elif results:
        for r in results:
            click.echo(
                f"{r.name}: " + ("; ".join(r.steps) or "nothing to do")
                if r.ok
                else f"{r.name}: FAILED: {r.error}"
                + (f" (after: {'; '.join(r.steps)})" if r.steps else "")
            )
    else:
        click.echo("Nothing is due.")
    if url and run_report.at_least("warn"):
        try:
            send(url, run_report.as_dict())
        except VaultError as exc:
            click.echo(f"exvault: warning: could not notify: {exc}", err=True)
    if not all(r.ok for r in results):
        raise click.exceptions.Exit(1)


def _show_due(items: list[DueItem], as_json: bool) -> None:
    if as_json:
        output.emit_json([i.as_dict() for i in items])
    elif items:
        output.table(
            ("CREDENTIAL", "ACTION", "AUTO", "WHY"),
            [(i.name, i.action, "yes" if i.auto else "no", i.reason) for i in items],
        )
    else:
        click.echo("Nothing is due.")


@rotate.command(name="abort")
@click.argument("name")
@vault_option
@passphrase_file_option
def rotate_abort(name: str, vault_location: str | None, passphrase_file: str | None) -> None:
    """Drop the pending key of NAME.

    A key rotated at the exchange (policy set --rotate-via) is deleted there first.
    """
    linked = _linked(vault_location, name, required=False)
    with open_admin(vault_location, passphrase_file) as admin:
        if linked:
            engine = ExchangeRotation(admin)
            with engine.leased(name):
                for note in engine.resume(name):
                    click.echo(f"{name}: {note}.")
                _step(engine.abort(name))
        else:
            _step(rotation.abort(admin, name))


# --------------------------------------------------------------------------------- policy


@click.group(cls=CommandGroup)
def policy() -> None:
    """Set a credential's rotation policy and accepted risks."""


def _count(period: timedelta | None, unit: timedelta) -> int | None:
    """How many ``unit`` in ``period`` (whole: its option's type checked it)."""
    return None if period is None else period // unit


def _policy_dict(p: Any) -> dict[str, Any]:
    return {
        "max_age_days": p.max_age_days,
        "warn_before_days": p.warn_before_days,
        "stale_days": p.stale_days,
        "grace_hours": p.grace_hours,
        "probe_stale_days": p.probe_stale_days,
        "accepted": {
            k: {"reason": v.reason, "accepted_at": v.accepted_at} for k, v in p.accepted.items()
        },
        "rotate_via": p.rotate_via,
        "sub_account": p.sub_account,
        "auto": p.auto,
        "on_promote": p.on_promote,
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
            ("Probe stale after", f"{p.probe_stale_days}d"),
            *(
                [
                    ("Rotated via", p.rotate_via),
                    ("Sub-account", p.sub_account or "(the credential's uid field)"),
                    ("Automatic", "yes" if p.auto else "no"),
                ]
                if p.rotate_via
                else []
            ),
            *([("On promote", p.on_promote)] if p.on_promote else []),
            *[
                (f"Accepted {k}", f"{v.accepted_at:%Y-%m-%d}: {v.reason}")
                for k, v in p.accepted.items()
            ],
        ]
    )


@policy.command(name="set")
@click.argument("name")
@click.option(
    "--max-age", type=WHOLE_DAYS, help="Rotate at this age, in days, e.g. 60d [default: 90d]."
)
@click.option(
    "--warn-before",
    type=WHOLE_DAYS,
    help="Warn this long before, in days, e.g. 10d [default: 14d].",
)
@click.option(
    "--stale-after",
    type=WHOLE_DAYS,
    help="Unread this long counts as stale, in days, e.g. 30d [default: 30d].",
)
@click.option(
    "--grace",
    type=WHOLE_HOURS,
    help="How long a previous key stays readable, in hours, e.g. 12h [default: 24h].",
)
@click.option(
    "--probe-stale",
    type=WHOLE_DAYS,
    help="No successful exvault probe this long counts as probe-stale, in days, e.g. 14d "
    "[default: 7d].",
)
@click.option(
    "--rotate-via",
    metavar="MASTER",
    help="Rotate NAME at the exchange with the master account's key stored as MASTER.",
)
@click.option("--unlink", is_flag=True, help="Rotate NAME by hand again (drop --rotate-via).")
@click.option(
    "--sub-account",
    metavar="UID|NAME",
    help="NAME's sub-account, as the exchange names it (Bybit, Gate: uid; OKX, KuCoin: name).",
)
@click.option(
    "--auto/--no-auto",
    default=None,
    help="Whether exvault rotate due --auto rotates NAME unattended.",
)
@click.option("--on-promote", metavar="CMD", help="Command run after each promote of NAME.")
@click.option("--no-on-promote", is_flag=True, help="Run no command after a promote.")
@vault_option
@passphrase_file_option
@json_option
def policy_set(
    name: str,
    max_age: timedelta | None,
    warn_before: timedelta | None,
    stale_after: timedelta | None,
    grace: timedelta | None,
    probe_stale: timedelta | None,
    rotate_via: str | None,
    unlink: bool,
    sub_account: str | None,
    auto: bool | None,
    on_promote: str | None,
    no_on_promote: bool,
    vault_location: str | None,
    passphrase_file: str | None,
    as_json: bool,
) -> None:
    """Change the rotation limits of NAME, or link it to its master key."""
    day, hour = timedelta(days=1), timedelta(hours=1)
    limits = {
        "max_age_days": _count(max_age, day),
        "warn_before_days": _count(warn_before, day),
        "stale_days": _count(stale_after, day),
        "grace_hours": _count(grace, hour),
        "probe_stale_days": _count(probe_stale, day),
    }
    if rotate_via is not None and unlink:
        raise click.UsageError("--rotate-via and --unlink exclude each other")
    if on_promote is not None and no_on_promote:
        raise click.UsageError("--on-promote and --no-on-promote exclude each other")
    link: dict[str, Any] = {}
    if rotate_via is not None or unlink:
        link["rotate_via"] = None if unlink else rotate_via
    if sub_account is not None:
        link["sub_account"] = sub_account
    if auto is not None:
        link["auto"] = auto
    if on_promote is not None or no_on_promote:
        link["on_promote"] = None if no_on_promote else on_promote
    if all(v is None for v in limits.values()) and not link:
        raise click.UsageError(
            "nothing to change: give --max-age, --warn-before, --stale-after, --grace, "
            "--probe-stale, --rotate-via, --sub-account, --auto or --on-promote"
        )
    with open_inventory(vault_location) as inv:
        exchange = inv.describe(name).metadata.exchange
        if rotate_via is not None:
            inv.describe(rotate_via)  # the master exists (checked again when linking)
            if rotate_via == name:
                raise InvalidInput(f"{name} cannot rotate itself: name its master key")
            exchange_keys.for_exchange(exchange)
    with open_admin(vault_location, passphrase_file) as admin:
        result = None
        if any(v is not None for v in limits.values()):
            result = admin.set_policy(name, **limits)
        if link:
            result = admin.link_rotation(name, **link)
    assert result is not None
    _show_policy(result, as_json)


def _acceptable_code(_ctx: click.Context, _param: click.Parameter, code: str) -> str:
    """The CODE argument of accept-risk and clear-risk (a click callback): a finding
    the owner may accept. Checked while parsing, so a wrong code is a usage error
    (exit 2) before any passphrase prompt."""
    try:
        return policies.acceptable_code(code)
    except InvalidInput as exc:
        raise click.BadParameter(str(exc)) from None


@policy.command(
    name="accept-risk",
    help="Accept the finding CODE of NAME, with a reason.\n\nCODE as check prints it. "
    f"Acceptable: {', '.join(ACCEPTABLE_FINDINGS)}; check then reports that finding as ok. "
    "Any other code is refused with the reason.",
)
@click.argument("name")
@click.argument("risk", metavar="CODE", callback=_acceptable_code)
@click.option(
    "--reason",
    metavar="REASON",
    required=True,
    help="Why this risk is acceptable (recorded and shown).",
)
@vault_option
@passphrase_file_option
def policy_accept_risk(
    name: str, risk: str, reason: str, vault_location: str | None, passphrase_file: str | None
) -> None:
    """Accept the finding CODE of NAME (its help lists the acceptable codes)."""
    with open_inventory(vault_location) as inv:
        metadata = inv.describe(name).metadata
    with open_admin(vault_location, passphrase_file) as admin:
        admin.accept_risk(name, risk, reason)
    click.echo(f'Accepted "{risk}" for {name}.')
    if risk == "withdraw-enabled" and withdraws_unbound(metadata):
        click.echo(withdraw_warning(name), err=True)


@policy.command(name="clear-risk")
@click.argument("name")
@click.argument("risk", metavar="CODE", callback=_acceptable_code)
@vault_option
@passphrase_file_option
def policy_clear_risk(
    name: str, risk: str, vault_location: str | None, passphrase_file: str | None
) -> None:
    """Stop accepting the finding CODE for NAME."""
    require_credential(vault_location, name)
    with open_admin(vault_location, passphrase_file) as admin:
        admin.clear_risk(name, risk)
    click.echo(f'No longer accepting "{risk}" for {name}.')


@policy.command(name="show")
@click.argument("name")
@vault_option
@json_option
def policy_show(name: str, vault_location: str | None, as_json: bool) -> None:
    """Show the rotation policy of NAME (no passphrase needed)."""
    with open_inventory(vault_location) as inv:
        _show_policy(Policy.from_json(dict(inv.describe(name).policy)), as_json)
