"""The ``exvault`` entry point: the command group, its context object and error mapping.

Exit codes (docs/cli.md): 0 success; 2 usage error (click; also an argument that is
not UTF-8); 3 wrong passphrase or damaged vault; 4 not found; 5 already exists;
6 access denied; 7 invalid input; 8 no vault; 9 conflict; 10 insecure file;
11 unsupported format; 12 database error; 70 internal error; 130 interrupted.
``exvault check``, ``doctor`` and ``probe`` keep 1 and 2 for their findings and exit
64 on a usage error; ``probe`` exits 69 when no exchange could be reached.
"""

# Annotations are not postponed here (no `from __future__ import annotations`):
# typing.NamedTuple compiles each postponed (string) field annotation when its class
# is built, about 10 µs each, and every command and bot builds these at start.
import gc
import importlib
import os
import sys
from collections.abc import Sequence
from typing import Any, NamedTuple

import click

from vault import errors
from vault.collector import collector_paused
from vault.runtime.hardening import disable_core_dumps
from vault.version import __version__

from .arguments import refuse_undecodable_arguments
from .groups import WHOLE, CommandGroup

EXIT_CODES: dict[type[errors.VaultError], int] = {
    errors.IntegrityError: 3,
    errors.NotFound: 4,
    errors.AlreadyExists: 5,
    errors.AccessDenied: 6,
    errors.InvalidInput: 7,
    errors.VaultUnavailable: 8,
    errors.Conflict: 9,
    errors.InsecureFile: 10,
    errors.UnsupportedFormat: 11,
    errors.StoreError: 12,
    errors.ExchangeError: 13,
    errors.ExchangeUnreachable: 14,
}
EXIT_CHECK_USAGE = 64
EXIT_INTERNAL = 70
EXIT_INTERRUPTED = 130


def exit_code_for(exc: errors.VaultError) -> int:
    """The exit code of a vault error: the most specific class listed wins."""
    for cls in type(exc).__mro__:
        if cls in EXIT_CODES:
            return EXIT_CODES[cls]
    return 1


class VaultCommandError(click.ClickException):
    """A :class:`VaultError` as click reports it: one line on stderr, our exit code.

    The code is ``status``: click declares ``exit_code`` once per exception class.
    """

    def __init__(self, exc: errors.VaultError) -> None:
        super().__init__(str(exc))
        self.status = exit_code_for(exc)

    def show(self, file: Any = None) -> None:
        click.echo(f"exvault: error: {errors.printable(self.format_message())}", err=True)


def _harden_process() -> None:
    """Owner-only files, and no core dump that could carry a decrypted secret."""
    os.umask(0o077)
    disable_core_dumps()


class Subcommand(NamedTuple):
    """Where a subcommand lives, and the summary ``exvault --help`` shows for it."""

    target: str
    """``module:attribute`` of the click command."""
    summary: str
    """The first paragraph of the command's help (a test keeps the two equal)."""


SUBCOMMANDS: dict[str, Subcommand] = {
    "add": Subcommand("vault.cli.credentials:add", "Store a new exchange key as NAME."),
    "agent": Subcommand("vault.cli.agent:agent", "The unlock agent that `exvault unlock` starts."),
    "audit": Subcommand(
        "vault.cli.audit:audit",
        "Show the audit log: who read or changed what, when and where.",
    ),
    "backup": Subcommand(
        "vault.cli.maintenance:backup",
        "Write a consistent copy of the vault to DESTINATION.",
    ),
    "check": Subcommand(
        "vault.cli.checks:check",
        "Check every credential's age, expiry, scope and usage.",
    ),
    "client": Subcommand(
        "vault.cli.access:client",
        "Manage client identities (one per bot or job) and their tokens.",
    ),
    "doctor": Subcommand(
        "vault.cli.maintenance:doctor",
        "Check file modes, secret files, WAL, KDF and clock.",
    ),
    "edit": Subcommand(
        "vault.cli.credentials:edit",
        "Change a credential's metadata or secrets; writes a new version.",
    ),
    "exchanges": Subcommand(
        "vault.cli.exchanges:exchanges_",
        "List the known exchanges with their required fields.",
    ),
    "grant": Subcommand(
        "vault.cli.access:grant",
        "Let CLIENT read CREDENTIALS (refused beyond its maximum scope).",
    ),
    "history": Subcommand(
        "vault.cli.listing:history",
        "List a credential's versions with dates and stage labels.",
    ),
    "import": Subcommand(
        "vault.cli.importing:import_",
        "Import keys from freqtrade, .env, hummingbot or KeePass.",
    ),
    "info": Subcommand(
        "vault.cli.keys:info",
        "Show the vault's location, id, fingerprint, format and KDF.",
    ),
    "init": Subcommand(
        "vault.cli.keys:init",
        "Create a new vault and print its recovery key once.",
    ),
    "list": Subcommand(
        "vault.cli.listing:list_",
        "List credentials with their metadata, never a secret.",
    ),
    "lock": Subcommand(
        "vault.cli.agent:lock",
        "Lock the vault in the unlock agent now (--all: every vault).",
    ),
    "passwd": Subcommand("vault.cli.keys:passwd", "Change the vault passphrase."),
    "policy": Subcommand(
        "vault.cli.rotation:policy",
        "Set a credential's rotation policy and accepted risks.",
    ),
    "probe": Subcommand(
        "vault.cli.probe:probe",
        "Ask each exchange what the stored keys can really do.",
    ),
    "recover": Subcommand("vault.cli.keys:recover", "Set a new passphrase with the recovery key."),
    "remove": Subcommand(
        "vault.cli.credentials:remove",
        "Delete a credential and every version of it (asks first).",
    ),
    "render": Subcommand(
        "vault.cli.render:render",
        "Fill a template's secret references into a file on tmpfs.",
    ),
    "restore": Subcommand(
        "vault.cli.maintenance:restore",
        "Replace the vault with the backup FILE, once it verifies.",
    ),
    "rotate": Subcommand(
        "vault.cli.rotation:rotate",
        "Rotate a key in stages: start, verify, promote, finish.",
    ),
    "run": Subcommand(
        "vault.cli.run:run",
        "Run COMMAND with credentials in its environment, never in argv.",
    ),
    "schedule": Subcommand(
        "vault.cli.checks:schedule",
        "Print (or --install) what runs `exvault check` regularly.",
    ),
    "share": Subcommand(
        "vault.cli.layout:share",
        "Let other users' bots read the vault, but not change it.",
    ),
    "show": Subcommand(
        "vault.cli.show:show",
        "Show a credential's metadata, or its secrets (--reveal, --field).",
    ),
    "ungrant": Subcommand("vault.cli.access:ungrant", "Stop CLIENT from reading CREDENTIALS."),
    "unlock": Subcommand(
        "vault.cli.agent:unlock",
        "Unlock once: owner commands then run without a prompt.",
    ),
    "verify": Subcommand(
        "vault.cli.maintenance:verify",
        "Authenticate every record of the vault with the passphrase.",
    ),
}
"""Every subcommand of ``exvault``, imported only when it runs or shows its help."""


class LazyGroup(CommandGroup):
    """A group that imports a subcommand's module only when that command is used.

    click's lazy-loading pattern: the group knows each subcommand as ``module:attribute``
    (:data:`SUBCOMMANDS`), so ``exvault list`` never imports what ``exvault rotate``
    needs, and the cli modules keep their imports at the top. ``exvault --help`` shows
    the stored summaries and imports no command at all.
    """

    def known_names(self, ctx: click.Context) -> set[str]:
        return {*self.commands, *SUBCOMMANDS}

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in self.commands and cmd_name in SUBCOMMANDS:
            command = load_subcommand(cmd_name)
            # Checked once, when loaded: every parameter refuses text that is not UTF-8.
            refuse_undecodable_arguments(command)
            self.add_command(command, cmd_name)
        return self.commands.get(cmd_name)

    def summary(self, ctx: click.Context, name: str) -> str | None:
        """The stored summary, taken as the command's own would be, without importing it."""
        if name in SUBCOMMANDS and name not in self.commands:
            return click.Command(name, help=SUBCOMMANDS[name].summary).get_short_help_str(WHOLE)
        return super().summary(ctx, name)


def load_subcommand(name: str) -> click.Command:
    """Import the command ``name`` of :data:`SUBCOMMANDS` from its module.

    :raises TypeError: when the attribute named there is not a click command.
    """
    module_name, attribute = SUBCOMMANDS[name].target.split(":")
    with collector_paused():  # tens of thousands of objects, no garbage (vault.collector)
        module = importlib.import_module(module_name)
    command = getattr(module, attribute)
    if not isinstance(command, click.Command):
        raise TypeError(f"{SUBCOMMANDS[name].target} is not a click command")
    return command


class ExvaultGroup(LazyGroup):
    """A group that turns every :class:`VaultError` into one line and an exit code.

    Anything else unexpected also becomes one line (with EXVAULT_DEBUG=1 the
    traceback is shown): a traceback's text could carry data we never meant to print.
    Usage errors, too, are one line (exit 2) instead of click's usage block. Every
    error line goes through :func:`vault.errors.printable`: click's usage messages
    repeat the argument as typed ("No such command '...'"), control characters and all.
    """

    def main(self, *args: Any, **kwargs: Any) -> Any:
        kwargs["standalone_mode"] = False
        try:
            result = super().main(*args, **kwargs)
        except click.exceptions.NoArgsIsHelpError as exc:  # bare `exvault`: help, not an error
            click.echo(exc.ctx.get_help() if exc.ctx is not None else "", err=True)
            sys.exit(exc.exit_code)
        except click.UsageError as exc:
            where = exc.ctx.command_path if exc.ctx is not None else "exvault"
            message = errors.printable(exc.format_message())
            click.echo(f"exvault: error: {message} (see: {where} --help)", err=True)
            # check's, doctor's and probe's exit codes 1 and 2 mean findings; usage
            # errors must not.
            graded = where.endswith((" check", " doctor", " probe"))
            sys.exit(EXIT_CHECK_USAGE if graded else exc.exit_code)
        except VaultCommandError as exc:
            exc.show()
            sys.exit(exc.status)
        except click.ClickException as exc:
            exc.show()
            sys.exit(exc.exit_code)
        except click.Abort:
            click.echo("exvault: aborted", err=True)
            sys.exit(1)
        except click.exceptions.Exit as exc:
            sys.exit(exc.exit_code)
        sys.exit(result if isinstance(result, int) else 0)

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except errors.VaultError as exc:
            raise VaultCommandError(exc) from None
        except (click.ClickException, click.exceptions.Exit, click.Abort):
            raise
        except KeyboardInterrupt:
            click.echo("exvault: interrupted", err=True)
            ctx.exit(EXIT_INTERRUPTED)
        except BrokenPipeError:
            # The reader went away (`exvault list | head -1`): not our failure. Point
            # stdout at /dev/null so the interpreter's final flush does not fail too.
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            ctx.exit(1)
        except Exception as exc:
            if os.environ.get("EXVAULT_DEBUG") == "1":
                raise
            click.echo(
                f"exvault: internal error ({type(exc).__name__}); "
                "run again with EXVAULT_DEBUG=1 to see the traceback",
                err=True,
            )
            ctx.exit(EXIT_INTERNAL)


@click.group(cls=ExvaultGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="exvault")
def cli() -> None:
    """exvault: an encrypted vault for crypto-exchange API credentials.

    Keys are encrypted at rest under a passphrase (Argon2id) and handed at run time
    only to the programs you granted them to.
    """
    _harden_process()


refuse_undecodable_arguments(cli)


def main() -> None:
    """Console-script entry point."""
    load_named_command(sys.argv[1:])
    # Everything made so far (modules, classes, functions) lives as long as the
    # process: out of the collector's sight, no collection during the command walks it
    # again (the use gc.freeze is documented for). An owner's command through the
    # agent starts about 5 ms sooner; long commands still collect what they make.
    gc.freeze()
    try:
        cli(prog_name="exvault")
    finally:
        # The process ends next: its shutdown need not walk what the command made.
        # atexit handlers (weakref.finalize among them) still run, and so does the
        # destructor of anything reference counting frees, but not that of an object
        # left in a reference cycle: what must happen at exit (a store disposed, a file
        # closed) is done explicitly, never left to such a destructor.
        gc.freeze()


def load_named_command(args: Sequence[str]) -> None:
    """Load the subcommand ``args`` name, before click parses them.

    The group takes no option with a value, so its first argument that is not an
    option is the command's name; anything else (``--help``, a typo) is left to click.
    A command that fails to load is left to click too: it loads it again when it
    resolves the name, and reports the failure as any other (one line, exit 70).

    :raises SystemExit: 130, after one line, for Ctrl-C while the command loads.
    """
    name = next((arg for arg in args if not arg.startswith("-")), None)
    if name not in SUBCOMMANDS:
        return
    try:
        cli.get_command(click.Context(cli), name)
    except KeyboardInterrupt:
        click.echo("exvault: interrupted", err=True)
        sys.exit(EXIT_INTERRUPTED)
    except Exception:  # noqa: S110 (click's resolving the name reports it, as one line)
        pass


if __name__ == "__main__":  # pragma: no cover
    main()
