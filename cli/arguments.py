"""Arguments as the command line gives them: every one must be UTF-8 text, and every
date or duration is read by one type, :class:`TimeParam`."""

from __future__ import annotations

import os
from collections.abc import Callable
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING, Any, Literal

import click

from vault.durations import day_of, format_duration, moment_of, parse_duration, parse_when
from vault.errors import InvalidInput, check_utf8, quoted
from vault.format import model

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


def _refuse_undecodable(
    ctx: click.Context | None, param: click.Parameter | None, text: str
) -> None:
    """:raises click.BadParameter: when ``text`` is not UTF-8 (a usage error, exit 2)."""
    try:
        check_utf8(text, quoted(text))
    except InvalidInput as exc:
        raise click.BadParameter(str(exc), ctx, param) from None


def _utf8_checked(callback: Callback | None) -> Callback:
    def check(ctx: click.Context, param: click.Parameter, value: Any) -> Any:
        for item in value if isinstance(value, tuple) else (value,):
            text = os.fspath(item) if isinstance(item, os.PathLike) else item
            if isinstance(text, str):
                _refuse_undecodable(ctx, param, text)
        return value if callback is None else callback(ctx, param, value)

    return check


TimeResult = Literal["duration", "day", "moment"]

if TYPE_CHECKING:
    _TimeParamBase = click.ParamType[timedelta | date]
else:
    # click >= 8.2 declares ParamType generic for type checkers; 8.1 cannot subscript it.
    _TimeParamBase = click.ParamType


class TimeParam(_TimeParamBase):
    """The type of every option that takes a date or a duration, in the one grammar of
    :mod:`vault.durations`.

    ``duration`` options (``--max-age``, ``--grace``, ``--idle``) take a duration
    (``90d``, ``12h``; a bare number means days) and give a :class:`timedelta`; a date
    there is refused with its own message. The others take a date or a duration
    (placeholder ``WHEN``): ``day`` options give a :class:`date`, ``moment`` options a
    :class:`datetime` in UTC (a date meaning 00:00 UTC). A duration counts from now,
    forward, or back for ``back`` options (``--since 7d``, ``--issued 30d``).

    A malformed value is invalid input (exit 7, as it has always been), its message
    prefixed with the option's name; text that is not UTF-8 stays a usage error.
    """

    name = "time"

    def __init__(
        self, result: TimeResult, *, back: bool = False, unit: timedelta | None = None
    ) -> None:
        """:param result: what the option gives the command.
        :param back: a duration counts back from now (``day`` and ``moment``).
        :param unit: a ``duration`` must be a whole number of it (days, hours).
        :raises: nothing.
        """
        self.result = result
        self.back = back
        self.unit = unit

    def get_metavar(self, param: click.Parameter, ctx: click.Context | None = None) -> str:
        """``DURATION`` or ``WHEN`` (a date or a duration from now).

        (``ctx`` is optional: click 8.1 passes none.)
        """
        return "DURATION" if self.result == "duration" else "WHEN"

    def convert(
        self, value: Any, param: click.Parameter | None, ctx: click.Context | None
    ) -> timedelta | date | datetime:
        """The value of the option (see the class).

        :raises InvalidInput: for a malformed or out-of-range value.
        :raises click.BadParameter: for text that is not UTF-8.
        """
        if isinstance(value, (timedelta, date)):
            return value
        if not isinstance(value, str):
            raise InvalidInput(f"{self._option(param)}: bad value {value!r}")
        _refuse_undecodable(ctx, param, value)
        try:
            return self._read(value)
        except InvalidInput as exc:
            raise InvalidInput(f"{self._option(param)}: {exc}") from None

    def _read(self, text: str) -> timedelta | date | datetime:
        if self.result == "duration":
            period = parse_duration(text)
            if self.unit is not None and period % self.unit:
                raise InvalidInput(
                    f"{quoted(text)} is not a whole number of {_unit_name(self.unit)}"
                )
            return period
        now = model.utc_now()
        when = parse_when(text)
        if self.result == "day":
            return day_of(when, now.date(), back=self.back)
        return moment_of(when, now, back=self.back)

    @staticmethod
    def _option(param: click.Parameter | None) -> str:
        if param is None:
            return "value"
        return max(param.opts, key=len) if param.opts else (param.name or "value")


def _unit_name(unit: timedelta) -> str:
    return {timedelta(days=1): "days", timedelta(hours=1): "hours"}.get(
        unit, f"{format_duration(unit)} periods"
    )


DURATION = TimeParam("duration")
"""A duration (``--idle``, ``--max``, ``rotate promote --grace``)."""
WHOLE_DAYS = TimeParam("duration", unit=timedelta(days=1))
"""A duration in whole days (``policy set --max-age``)."""
WHOLE_HOURS = TimeParam("duration", unit=timedelta(hours=1))
"""A duration in whole hours (``policy set --grace``)."""
DAY_AHEAD = TimeParam("day")
"""A day, given as a date or a duration from today (a key's ``--expires``)."""
DAY_BACK = TimeParam("day", back=True)
"""A day, given as a date or how long ago (``--issued``)."""
MOMENT_AHEAD = TimeParam("moment")
"""A moment, given as a date or a duration from now (``client add --expires``)."""
MOMENT_BACK = TimeParam("moment", back=True)
"""A moment, given as a date or how long ago (``audit --since``)."""
