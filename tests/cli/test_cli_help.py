"""The help every command shows (cli/groups.py and the options of every command).

These tests walk every command and subcommand ``exvault`` has, so a command added
later is held to the same rules: its summary in a group's listing is a whole sentence,
never cut with "...", at any terminal width; every option says what it does, and names
what it takes with a placeholder of its own (never click's TEXT or INTEGER); every
date or duration goes through the one type (``DURATION`` or ``WHEN``); JSON output is
``--json`` alone; and ``rotate`` lists its steps in the order they are used.
"""

from __future__ import annotations

import json
import re
from datetime import datetime

import click
import pytest
from click.testing import CliRunner

from tests.conftest import Cli
from vault.cli.arguments import TimeParam
from vault.cli.groups import WHOLE, CommandGroup
from vault.cli.main import cli
from vault.cli.rotation import ROTATION_STEPS
from vault.format import model


def every_command() -> list[tuple[str, click.Command]]:
    """Every command under ``exvault`` with its path (a lazy group loads each one)."""
    found: list[tuple[str, click.Command]] = []
    pending: list[tuple[str, click.Command]] = [("exvault", cli)]
    while pending:
        path, command = pending.pop()
        found.append((path, command))
        if isinstance(command, click.Group):
            ctx = click.Context(command)
            for name in command.list_commands(ctx):
                sub = command.get_command(ctx, name)
                assert sub is not None, (path, name)
                pending.append((f"{path} {name}", sub))
    return sorted(found, key=lambda item: item[0])


COMMANDS = every_command()
GROUPS = [(path, command) for path, command in COMMANDS if isinstance(command, click.Group)]
OPTIONS = [
    (f"{path} {max(param.opts, key=len)}", param)
    for path, command in COMMANDS
    for param in command.params
    if isinstance(param, click.Option) and not param.hidden
]


def test_the_walk_sees_the_groups_and_their_commands() -> None:
    paths = {path for path, _ in COMMANDS}
    assert {"exvault", "exvault client", "exvault rotate", "exvault policy"} <= {
        path for path, _ in GROUPS
    }
    assert {"exvault rotate finish", "exvault audit verify", "exvault show"} <= paths


def listing(args: list[str], width: int) -> dict[str, str]:
    """The "Commands:" rows of ``exvault ARGS --help`` at ``width`` columns, each
    summary joined back from the lines it was wrapped onto."""
    result = CliRunner().invoke(cli, [*args, "--help"], terminal_width=width)
    assert result.exit_code == 0, result.output
    rows: dict[str, str] = {}
    name = ""
    for line in result.output.split("Commands:\n", 1)[1].splitlines():
        if line.startswith("  ") and not line.startswith("   "):
            name, _, text = line.strip().partition(" ")
            rows[name] = text.strip()
        elif line.strip():
            rows[name] += " " + line.strip()
    return rows


@pytest.mark.parametrize("width", [80, 50])
@pytest.mark.parametrize(("path", "group"), GROUPS, ids=[path for path, _ in GROUPS])
def test_every_summary_is_listed_whole_and_ends_a_sentence(
    path: str, group: click.Group, width: int
) -> None:
    rows = listing(path.split()[1:], width)
    ctx = click.Context(group)
    commands = {name: group.get_command(ctx, name) for name in group.list_commands(ctx)}
    assert list(rows) == [n for n, c in commands.items() if c is not None and not c.hidden]
    for name, shown in rows.items():
        command = commands[name]
        assert command is not None
        whole = command.get_short_help_str(WHOLE)
        assert shown == whole, (path, name)
        assert not shown.endswith("..."), (path, name, shown)
        assert re.search(r"[.!?][)`'\"]?$", shown), (path, name, shown)


# Each rule below is one test over every visible option of every command: a failure
# lists every offender at once.


def test_every_option_says_what_it_does() -> None:
    assert [where for where, option in OPTIONS if not (option.help or "").strip()] == []


# An option by one of these names takes a time, as does one whose help gives an example
# of a duration (90d, 12h) or a date's form.
TIME_NAMES = re.compile(
    r"--(expires|issued|since|until|max-age|warn-before|stale-after|grace|idle|max|"
    r"within|older-than|newer-than|before|after|timeout|interval)$"
)
TIME_EXAMPLE = re.compile(r"\b[0-9]+[smhdw]\b|YYYY-MM-DD")


def takes_a_time(option: click.Option) -> bool:
    """Whether the option's name or help says it takes a date or a duration."""
    names = [*option.opts, *option.secondary_opts]
    by_name = any(TIME_NAMES.search(n) for n in names)
    return not option.is_flag and (by_name or bool(TIME_EXAMPLE.search(option.help or "")))


def test_the_time_options_are_the_ones_expected() -> None:
    """The rule below finds what it should (and a renamed option is noticed)."""
    found = {where for where, option in OPTIONS if takes_a_time(option)}
    assert {
        "exvault add --expires",
        "exvault add --issued",
        "exvault edit --expires",
        "exvault client add --expires",
        "exvault audit --since",
        "exvault audit --until",
        "exvault policy set --max-age",
        "exvault policy set --grace",
        "exvault rotate promote --grace",
        "exvault rotate start --issued",
        "exvault unlock --idle",
        "exvault unlock --max",
    } <= found


def test_every_date_or_duration_goes_through_the_one_type() -> None:
    ctx = click.Context(click.Command("x"))
    offenders = [
        (where, option.metavar, option.make_metavar(ctx))
        for where, option in OPTIONS
        if takes_a_time(option) != isinstance(option.type, TimeParam)
        or (
            takes_a_time(option)
            # the type's placeholder, never one set by hand (DAYS, HOURS, DATE...)
            and (option.metavar is not None or option.make_metavar(ctx) not in ("DURATION", "WHEN"))
        )
    ]
    assert offenders == []


# click's own placeholders: the name of a type, which says nothing of what to type.
TYPE_NAMES = frozenset({"TEXT", "INTEGER", "FLOAT", "BOOLEAN", "FILENAME", "DIRECTORY", "UUID"})


def test_every_value_has_a_placeholder_of_its_own() -> None:
    ctx = click.Context(click.Command("x"))
    offenders = [
        (where, option.make_metavar(ctx))
        for where, option in OPTIONS
        if not option.is_flag and option.make_metavar(ctx).rstrip(".") in TYPE_NAMES
    ]
    assert offenders == []


def json_switch_is_wrong(option: click.Option) -> bool:
    """An output-format option, or a JSON option other than --json and --from-json."""
    names = [*option.opts, *option.secondary_opts]
    if {"--format", "--output", "-o"} & set(names):
        return True
    allowed = (names == ["--json"] and option.is_flag) or names == ["--from-json"]
    return any("json" in n for n in names) and not allowed


def test_json_output_is_asked_for_with_json_alone() -> None:
    assert [where for where, option in OPTIONS if json_switch_is_wrong(option)] == []


# ------------------------------------------------------------------ check --format


@pytest.fixture
def frozen_clock(monkeypatch: pytest.MonkeyPatch) -> datetime:
    fixed = model.utc_now()
    monkeypatch.setattr(model, "utc_now", lambda: fixed)
    return fixed


def test_check_format_is_hidden_from_help() -> None:
    result = CliRunner().invoke(cli, ["check", "--help"])
    assert result.exit_code == 0, result.output
    assert "--format" not in result.output
    assert "--json" in result.output and "--prometheus" in result.output


@pytest.mark.parametrize(
    ("old", "new"),
    [
        (("--format", "json"), ("--json",)),
        (("--format", "prometheus"), ("--prometheus",)),
        (("--format", "table"), ()),
        (("--format", "prometheus", "--json"), ("--json",)),  # --json always won
    ],
    ids=["json", "prometheus", "table", "json-wins"],
)
def test_check_format_stays_a_deprecated_alias(
    stocked_cli: Cli, frozen_clock: datetime, old: tuple[str, ...], new: tuple[str, ...]
) -> None:
    before = stocked_cli.v("check", *old)
    after = stocked_cli.v("check", *new)
    assert before.exit_code == after.exit_code != 64, before.output
    assert before.stdout == after.stdout
    if "json" in new:
        assert json.loads(after.stdout)["credentials"] == 2


def test_check_json_and_prometheus_exclude_each_other(stocked_cli: Cli) -> None:
    result = stocked_cli.v("check", "--json", "--prometheus")
    assert result.exit_code == 64, result.output  # check's usage error
    assert "--json and --prometheus exclude each other" in result.stderr


# ------------------------------------------------------------------ order


def test_rotate_lists_its_steps_in_workflow_order() -> None:
    rows = listing(["rotate"], 80)
    assert ROTATION_STEPS == ("start", "verify", "promote", "finish", "rollback", "abort")
    assert list(rows)[: len(ROTATION_STEPS)] == list(ROTATION_STEPS)


def test_a_group_lists_declared_names_first_then_the_others_sorted() -> None:
    group = CommandGroup("g", order=("second", "first", "missing"))
    for name in ("zeta", "first", "alpha", "second"):
        group.add_command(click.Command(name, help=f"Do {name}."))
    group.add_command(click.Command("ghost", help="Hidden.", hidden=True))
    ctx = click.Context(group)
    assert group.list_commands(ctx) == ["second", "first", "alpha", "ghost", "zeta"]
    result = CliRunner().invoke(group, ["--help"])
    assert list(result.output.split("Commands:\n", 1)[1].split()[::3]) == [
        "second",
        "first",
        "alpha",
        "zeta",
    ]
