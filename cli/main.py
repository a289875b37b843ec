"""The ``exvault`` entry point: the command group, its context object and error mapping.

Exit codes (docs/cli.md): 0 success; 2 usage error (click; also an argument that is
not UTF-8); 3 wrong passphrase or damaged vault; 4 not found; 5 already exists;
6 access denied; 7 invalid input; 8 no vault; 9 conflict; 10 insecure file;
11 unsupported format; 12 database error; 70 internal error; 130 interrupted.
``exvault check`` keeps 1 and 2 for its findings and exits 64 on a usage error.
"""

from __future__ import annotations

import os
import sys
from typing import Any

import click

from vault import errors

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
}
EXIT_DATABASE = 12
EXIT_CHECK_USAGE = 64
EXIT_INTERNAL = 70
EXIT_INTERRUPTED = 130


def exit_code_for(exc: errors.VaultError) -> int:
    """The exit code of a vault error: the most specific class listed wins."""
    for cls in type(exc).__mro__:
        if cls in EXIT_CODES:
            return EXIT_CODES[cls]
    if type(exc).__name__ == "StoreError":
        return EXIT_DATABASE
    return 1


class VaultCommandError(click.ClickException):
    """A :class:`VaultError` as click reports it: one line on stderr, our exit code."""

    def __init__(self, exc: errors.VaultError) -> None:
        super().__init__(str(exc))
        self.exit_code = exit_code_for(exc)

    def show(self, file: Any = None) -> None:
        click.echo(f"exvault: error: {errors.printable(self.format_message())}", err=True)


def _harden_process() -> None:
    """Owner-only files, and no core dump that could carry a decrypted secret."""
    from vault.runtime.hardening import disable_core_dumps

    os.umask(0o077)
    disable_core_dumps()


class ExvaultGroup(click.Group):
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
            # check's and doctor's exit codes 1 and 2 mean findings; usage errors must not.
            graded = where.endswith((" check", " doctor"))
            sys.exit(EXIT_CHECK_USAGE if graded else exc.exit_code)
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
@click.version_option(package_name="exchange-vault", prog_name="exvault")
def cli() -> None:
    """exvault: an encrypted vault for crypto-exchange API credentials.

    Keys are encrypted at rest under a passphrase (Argon2id) and handed at run time
    only to the programs you granted them to.
    """
    _harden_process()


def _register() -> None:
    from . import access, audit, credentials, keys, layout, maintenance, rotation, run
    from .options import refuse_undecodable_arguments

    for command in (
        *keys.COMMANDS,
        *credentials.COMMANDS,
        *access.COMMANDS,
        *run.COMMANDS,
        *rotation.COMMANDS,
        *audit.COMMANDS,
        *maintenance.COMMANDS,
        *layout.COMMANDS,
    ):
        cli.add_command(command)
    refuse_undecodable_arguments(cli)


_register()


def main() -> None:
    """Console-script entry point."""
    cli(prog_name="exvault")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
