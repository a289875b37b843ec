"""Command groups as ``--help`` lists them: each subcommand's summary whole, never cut
to fit the terminal, and the subcommands in a declared order where one exists."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import click

WHOLE = 10_000
"""A length no summary reaches: click shortens a summary to fit and ends it with "...";
a summary shown whole (wrapped onto a second line when the terminal is narrow) is read
to its end."""


class CommandGroup(click.Group):
    """A group listing its subcommands with whole summaries, in ``order`` first (the
    order they are used in: ``rotate start, verify, promote...``), then any others by
    name.

    A summary is the first sentence of the subcommand's help, so the first sentence of
    every docstring is written to stand alone as a short summary.
    """

    def __init__(
        self,
        name: str | None = None,
        commands: dict[str, click.Command] | Sequence[click.Command] | None = None,
        *,
        order: Sequence[str] = (),
        **attrs: Any,
    ) -> None:
        """:param order: the names listed first, in this order.
        :raises: nothing.
        """
        super().__init__(name, commands, **attrs)
        self.order = tuple(order)

    def list_commands(self, ctx: click.Context) -> list[str]:
        """The declared names that exist, in order, then the others sorted."""
        names = self.known_names(ctx)
        return [n for n in self.order if n in names] + sorted(names - set(self.order))

    def known_names(self, ctx: click.Context) -> set[str]:
        """Every subcommand's name (a lazy group adds the ones it has not loaded)."""
        return set(self.commands)

    def summary(self, ctx: click.Context, name: str) -> str | None:
        """The summary of subcommand ``name`` as listed; None to leave it out (hidden).

        :raises: nothing.
        """
        command = self.get_command(ctx, name)
        if command is None or command.hidden:
            return None
        return command.get_short_help_str(WHOLE)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """click's "Commands:" section, with :meth:`summary` whole."""
        rows = [
            (name, summary)
            for name in self.list_commands(ctx)
            if (summary := self.summary(ctx, name)) is not None
        ]
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)
