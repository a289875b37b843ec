"""Formatting for people (aligned tables) and for programs (``--json``)."""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from datetime import date, datetime
from typing import Any

import click


def json_default(value: object) -> object:
    """JSON form of the values exvault prints besides JSON's own: dates and times in
    ISO 8601, bytes in hex, tuples as lists (``json.dumps``'s ``default``)."""
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, tuple):
        return list(value)
    raise TypeError(type(value).__name__)


def emit_json(data: Any) -> None:
    """Print ``data`` as JSON on stdout: indented for a terminal, compact for a pipe.

    Compact output uses json's C encoder, several times faster than the indenting
    one: it matters for ``list --json`` over 100,000 credentials.
    """
    click.echo(json.dumps(data, default=json_default, indent=2 if indented() else None))


def indented() -> bool:
    """True when JSON is printed indented (for a person at a terminal)."""
    return sys.stdout.isatty()


def emit_text(text: str) -> None:
    """Print ``text``, already formatted, on stdout (one write)."""
    click.echo(text)


def table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> None:
    """Print an aligned text table (no secret ever reaches this function)."""
    cells = [[str(c) for c in headers], *[["" if c is None else str(c) for c in r] for r in rows]]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    for i, row in enumerate(cells):
        line = "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip()
        click.echo(click.style(line, bold=True) if i == 0 else line)


def fields(pairs: Sequence[tuple[str, object]]) -> None:
    """Print ``key: value`` lines, keys aligned."""
    width = max((len(k) for k, _ in pairs), default=0)
    for key, value in pairs:
        click.echo(f"{key + ':':<{width + 1}} {'' if value is None else value}")


def plural(n: int, word: str) -> str:
    """``1 credential`` / ``2 credentials``."""
    return f"{n} {word if n == 1 else (word[:-1] + 'ies' if word.endswith('y') else word + 's')}"


class TerminalProgress:
    """A progress bar on stderr (click's), shown only when stderr is a terminal.

    Called as ``progress(done, total)``; the bar is drawn at the first call, once the
    total is known. Without a terminal nothing is written: click would still print
    the label, which only clutters a log or a pipe. stdout stays free for the result.
    Use as a context manager, so the bar's line is ended whatever happens.
    """

    def __init__(self, label: str) -> None:
        self.label = label
        self.stream = sys.stderr  # read at each command: CliRunner swaps it
        self.shown = self.stream.isatty()
        self.bar: Any = None
        self.done = 0

    def __call__(self, done: int, total: int) -> None:
        if not self.shown:
            return
        if self.bar is None:
            self.bar = click.progressbar(length=total, label=self.label, file=self.stream)
            self.bar.__enter__()
        self.bar.update(done - self.done)
        self.done = done

    def __enter__(self) -> TerminalProgress:
        return self

    def __exit__(self, *_exc: object) -> None:
        if self.bar is not None:
            self.bar.__exit__(None, None, None)
