"""Commands of the unlock agent: ``unlock``, ``lock``, ``agent status``."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import click

from vault.agent import client
from vault.durations import format_duration
from vault.errors import InvalidInput
from vault.owner.agent_handover import unlock_into_agent
from vault.owner.agent_unlock import lock_everything_in_agent, lock_in_agent

from . import output, prompts
from .arguments import DURATION
from .groups import CommandGroup
from .options import bare_passphrase_file_option, json_option, open_inventory, vault_option

MAX_UNLOCK = timedelta(days=7)
"""The longest ``--max`` accepted (the agent refuses longer)."""


@click.command()
@vault_option
@bare_passphrase_file_option
@click.option(
    "--idle",
    type=DURATION,
    default="15m",
    show_default=True,
    help="Lock after this long without use, e.g. 30m or 2h.",
)
@click.option(
    "--max",
    "max_lifetime",
    type=DURATION,
    default="8h",
    show_default=True,
    help="Lock this long after the unlock, used or not, e.g. 12h (at most 7d).",
)
@click.option(
    "--status",
    "show_status",
    is_flag=True,
    help="Only say which vaults are unlocked and when each locks.",
)
@json_option
def unlock(
    vault_location: str | None,
    passphrase_file: str | None,
    idle: timedelta,
    max_lifetime: timedelta,
    show_status: bool,
    as_json: bool,
) -> None:
    """Unlock once: owner commands then run without a prompt.

    Asks for the passphrase (or reads --passphrase-file, $EXVAULT_PASSPHRASE_FILE),
    starts your agent if none runs (or hands the vault to the one running) and keeps
    the vault unlocked there until it has been idle for --idle, or --max after the
    unlock, or `exvault lock`. Any process running as you can use an unlocked vault
    meanwhile, as with ssh-agent: see SECURITY.md.
    """
    if show_status:
        _print_status(as_json)
        return
    if max_lifetime > MAX_UNLOCK:
        raise InvalidInput(f"--max is at most {format_duration(MAX_UNLOCK)}")
    idle = min(idle, max_lifetime)
    open_inventory(vault_location).close()  # "no vault here" before the prompt
    handed = unlock_into_agent(
        vault_location, prompts.passphrase(passphrase_file), idle, max_lifetime
    )
    if as_json:
        output.emit_json(
            {
                "location": handed.location,
                "vault_id": handed.vault_id.hex(),
                "idle_seconds": int(idle.total_seconds()),
                "max_seconds": int(max_lifetime.total_seconds()),
            }
        )
        return
    click.echo(
        f"Unlocked {handed.location} in the agent: it locks after "
        f"{format_duration(idle)} without use, or {format_duration(max_lifetime)} from now."
    )


@click.command()
@vault_option
@click.option("--all", "every_vault", is_flag=True, help="Lock every vault the agent holds.")
def lock(vault_location: str | None, every_vault: bool) -> None:
    """Lock the vault in the unlock agent now (--all: every vault).

    Owner commands then ask for the passphrase again. Nothing to lock is not an error.
    """
    if every_vault:
        count = lock_everything_in_agent()
        click.echo(f"Locked {output.plural(count, 'vault')}.")
        return
    if lock_in_agent(vault_location):
        click.echo("Locked.")
    else:
        click.echo("The vault was not unlocked.")


@click.group(cls=CommandGroup)
def agent() -> None:
    """The unlock agent that `exvault unlock` starts."""


@agent.command("status")
@json_option
def agent_status(as_json: bool) -> None:
    """Say whether the agent runs and which vaults it holds.

    For each vault, when it locks.
    """
    _print_status(as_json)


def _print_status(as_json: bool) -> None:
    conn = client.connect()
    if conn is None:
        if as_json:
            output.emit_json({"running": False, "vaults": []})
        else:
            click.echo("No unlock agent is running.")
        return
    with conn:
        status = client.status(conn)
    now = datetime.now(timezone.utc).replace(microsecond=0)
    vaults = [
        {
            "vault_id": held.vault_id.hex(),
            "location": held.label,
            "idle_seconds": held.idle_seconds,
            "max_seconds": held.max_seconds,
            "locks_in_seconds": max(held.locks_in, 0),
            "locks_at": now + timedelta(seconds=max(held.locks_in, 0)),
        }
        for held in status.vaults
    ]
    if as_json:
        output.emit_json(
            {
                "running": True,
                "pid": status.pid,
                "memory_locked": status.memory_locked,
                "vaults": vaults,
            }
        )
        return
    locked = "locked in RAM" if status.memory_locked else "not locked in RAM (RLIMIT_MEMLOCK)"
    click.echo(f"Unlock agent running (pid {status.pid}; memory {locked}).")
    if not vaults:
        click.echo("No vault is unlocked.")
        return
    output.table(
        ["VAULT", "LOCKS AT (UTC)", "IDLE", "MAX"],
        [
            [
                v["location"],
                f"{v['locks_at']:%Y-%m-%d %H:%M:%S}",
                format_duration(timedelta(seconds=held.idle_seconds)),
                format_duration(timedelta(seconds=held.max_seconds)),
            ]
            for v, held in zip(vaults, status.vaults, strict=True)
        ],
    )


COMMANDS = (unlock, lock, agent)
