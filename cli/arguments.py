"""Arguments as the command line gives them: every one must be UTF-8 text."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import click

from vault.errors import InvalidInput, check_utf8, quoted

Callback = Callable[[click.Context, click.Parameter, Any], Any]


def refuse_undecodable_arguments(command: click.Command) -> None:
    """Make every argument and option of ``command`` and its subcommands refuse text
    that is not UTF-8, as a usage error (exit 2).

    Python hands argv bytes that are not UTF-8 (``exvault show $'\\x80'``) over as
    lone surrogates, which would fail deep in a query or when printed back. One check
    on every parameter, chained before its own callback, means no new option can
    forget it. ``run``'s program and arguments (``UNPROCESSED``) are left alone: they
    are passed on to the program as they came.
    """
    for param in command.params:
        if not isinstance(param.type, click.types.UnprocessedParamType):
            param.callback = _utf8_checked(param.callback)
    if isinstance(command, click.Group):
        for subcommand in command.commands.values():
            refuse_undecodable_arguments(subcommand)


def _utf8_checked(callback: Callback | None) -> Callback:
    def check(ctx: click.Context, param: click.Parameter, value: Any) -> Any:
        for item in value if isinstance(value, tuple) else (value,):
            text = os.fspath(item) if isinstance(item, os.PathLike) else item
            if isinstance(text, str):
                try:
                    check_utf8(text, quoted(text))
                except InvalidInput as exc:
                    raise click.BadParameter(str(exc), ctx, param) from None
        return value if callback is None else callback(ctx, param, value)

    return check
