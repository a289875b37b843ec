"""Commands that change a key's lifetime: ``rotate`` and ``policy`` (``check`` and
``schedule``, which need no key, are in :mod:`vault.cli.checks`)."""

from __future__ import annotations

from datetime import date, timedelta
from typing import IO, Any

import click

from vault.errors import InvalidInput
from vault.format.credential_info import CredentialInfo
from vault.format.model import to_epoch
from vault.format.policy import ACCEPTABLE_FINDINGS, Policy
from vault.owner import policies, rotation
from vault.owner.credentials import UNCHANGED, credential_metadata

from . import output
from .arguments import DAY_AHEAD, DAY_BACK, DURATION, WHOLE_DAYS, WHOLE_HOURS
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
    vault_location: str | None,
    passphrase_file: str | None,
) -> None:
    """Stage a new key for NAME as `pending`.

    Its fields come from hidden prompts or --from-json.
    """
    if expires and no_expires:
        raise click.UsageError("--expires and --no-expires exclude each other")
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
    """Check the pending key of NAME; exits 1 when a check fails."""
    require_credential(vault_location, name)
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
    type=DURATION,
    help="How long the previous key stays readable, e.g. 2h [default: the policy's, 24h].",
)
@vault_option
@passphrase_file_option
def rotate_promote(
    name: str, grace: timedelta | None, vault_location: str | None, passphrase_file: str | None
) -> None:
    """Make the pending key of NAME current.

    The old one stays readable as `previous` for the grace period.
    """
    require_credential(vault_location, name)
    with open_admin(vault_location, passphrase_file) as admin:
        _step(rotation.promote(admin, name, grace=grace))


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

    Once its grace period is over (earlier with --force); then delete it at the exchange.
    """
    info = require_credential(vault_location, name)
    if not force and info.previous_version is not None:
        rotation.refuse_finish_in_grace(name, previous_until(info))
    with open_admin(vault_location, passphrase_file) as admin:
        _step(rotation.finish(admin, name, force=force))


@rotate.command(name="abort")
@click.argument("name")
@vault_option
@passphrase_file_option
def rotate_abort(name: str, vault_location: str | None, passphrase_file: str | None) -> None:
    """Drop the pending key of NAME."""
    require_credential(vault_location, name)
    with open_admin(vault_location, passphrase_file) as admin:
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
    vault_location: str | None,
    passphrase_file: str | None,
    as_json: bool,
) -> None:
    """Change the rotation limits of NAME."""
    day, hour = timedelta(days=1), timedelta(hours=1)
    limits = {
        "max_age_days": _count(max_age, day),
        "warn_before_days": _count(warn_before, day),
        "stale_days": _count(stale_after, day),
        "grace_hours": _count(grace, hour),
        "probe_stale_days": _count(probe_stale, day),
    }
    if all(v is None for v in limits.values()):
        raise click.UsageError(
            "nothing to change: give --max-age, --warn-before, --stale-after, --grace "
            "or --probe-stale"
        )
    require_credential(vault_location, name)
    with open_admin(vault_location, passphrase_file) as admin:
        result = admin.set_policy(name, **limits)
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
