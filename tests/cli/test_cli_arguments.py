"""One grammar for every date and duration the CLI takes (cli/arguments.py, ``TimeParam``).

Wherever a date is taken a duration is taken too (``--expires 90d`` and ``--expires
2027-03-01``), counting from now, forward for an expiry and back for ``--issued`` and
``--since``; where a duration is meant (``--max-age``, ``--idle``) a date is refused
with its own message. A bad value is one error line naming the option, exit 7 (invalid
input, as before), read while the command line is parsed, and the vault is left as it
was.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import date, datetime, timedelta, timezone

import click
import pytest
from click.testing import Result

from tests.conftest import BINANCE_API_KEY, BINANCE_SECRET, Cli
from vault.cli.arguments import DAY_AHEAD, DURATION, MOMENT_BACK, WHOLE_DAYS
from vault.errors import InvalidInput
from vault.format import model


@pytest.fixture
def now(monkeypatch: pytest.MonkeyPatch) -> datetime:
    """The CLI's clock held still for the test, so "90d from today" cannot cross midnight."""
    fixed = model.utc_now()
    monkeypatch.setattr(model, "utc_now", lambda: fixed)
    return fixed


def _json(result: Result) -> object:
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def _shown(cli: Cli, name: str) -> dict[str, object]:
    shown = _json(cli.v("show", name, "--json"))
    assert isinstance(shown, dict)
    return shown


# ------------------------------------------------------------------ dates: both forms


@pytest.mark.parametrize(
    ("value", "expected"),
    [("2027-03-01", lambda today: date(2027, 3, 1)), ("90d", lambda today: today + timedelta(90))],
    ids=["date", "duration"],
)
def test_edit_expires_takes_a_date_or_a_duration(
    stocked_cli: Cli, now: datetime, value: str, expected: Callable[[date], date]
) -> None:
    r = stocked_cli.unlocked("edit", "binance-main", "--expires", value)
    assert r.exit_code == 0, r.output
    assert _shown(stocked_cli, "binance-main")["expires_on"] == expected(now.date()).isoformat()


def test_add_issued_as_a_duration_counts_back_from_today(stocked_cli: Cli, now: datetime) -> None:
    payload = json.dumps({"api_key": BINANCE_API_KEY, "secret": BINANCE_SECRET})
    r = stocked_cli.unlocked(
        "add", "b2", "-e", "binance", "--issued", "30d", "--expires", "2w",
        "--from-json", "-", input=payload,
    )  # fmt: skip
    assert r.exit_code == 0, r.output
    shown = _shown(stocked_cli, "b2")
    assert shown["issued_on"] == (now.date() - timedelta(days=30)).isoformat()
    assert shown["expires_on"] == (now.date() + timedelta(days=14)).isoformat()


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2027-03-01", lambda now: datetime(2027, 3, 1, tzinfo=timezone.utc)),
        ("90d", lambda now: now + timedelta(days=90)),
        ("12h", lambda now: now + timedelta(hours=12)),
    ],
    ids=["date", "days", "hours"],
)
def test_client_add_expires_takes_a_date_or_a_duration(
    stocked_cli: Cli, now: datetime, value: str, expected: Callable[[datetime], datetime]
) -> None:
    added = _json(stocked_cli.unlocked("client", "add", "bot", "--expires", value, "--json"))
    assert isinstance(added, dict)
    assert datetime.fromisoformat(str(added["expires_at"])) == expected(now)


@pytest.mark.parametrize("since", ["2000-01-01", "1d"])
def test_audit_since_takes_a_date_or_a_duration(stocked_cli: Cli, since: str) -> None:
    everything = _json(stocked_cli.v("audit", "--json"))
    assert isinstance(everything, list) and everything
    recent = _json(stocked_cli.v("audit", "--since", since, "--json"))
    assert recent == everything  # the stocked vault was made moments ago


def test_audit_since_a_date_to_come_shows_nothing(stocked_cli: Cli) -> None:
    assert _json(stocked_cli.v("audit", "--since", "2999-01-01", "--json")) == []


def test_audit_until_cuts_the_log_before_a_moment(stocked_cli: Cli) -> None:
    everything = _json(stocked_cli.v("audit", "--json"))
    assert _json(stocked_cli.v("audit", "--until", "2999-01-01", "--json")) == everything
    assert _json(stocked_cli.v("audit", "--until", "2000-01-01", "--json")) == []
    assert _json(stocked_cli.v("audit", "--until", "36500d", "--json")) == []
    both = ("--since", "2000-01-01", "--until", "2999-01-01", "--json")
    assert _json(stocked_cli.v("audit", *both)) == everything


# ------------------------------------------------------------------ durations


def test_policy_set_takes_durations_and_bare_days(stocked_cli: Cli) -> None:
    shown = _json(
        stocked_cli.unlocked(
            "policy", "set", "binance-main", "--max-age", "60", "--warn-before", "1w",
            "--stale-after", "45d", "--grace", "36h", "--json",
        )
    )  # fmt: skip
    assert isinstance(shown, dict)
    # A bare number has always meant days, as the grammar says everywhere.
    assert (shown["max_age_days"], shown["warn_before_days"]) == (60, 7)
    assert (shown["stale_days"], shown["grace_hours"]) == (45, 36)


# ------------------------------------------------------------------ bad values

BAD_VALUES = [
    # (arguments after "exvault", what the one error line says after the option)
    (("policy", "set", "binance-main", "--max-age", "2027-03-01"), "--max-age", "is a date"),
    (("policy", "set", "binance-main", "--warn-before", "36h"), "--warn-before", "of days"),
    (("policy", "set", "binance-main", "--stale-after", "soon"), "--stale-after", "bad duration"),
    (("policy", "set", "binance-main", "--grace", "90m"), "--grace", "whole number of hours"),
    (("policy", "set", "binance-main", "--grace", "0h"), "--grace", "more than zero"),
    (("rotate", "promote", "binance-main", "--grace", "2027-03-01"), "--grace", "is a date"),
    (("unlock", "--idle", "2027-03-01"), "--idle", "is a date"),
    (("unlock", "--max", "1.5h"), "--max", "bad duration"),
    (("edit", "binance-main", "--expires", "12h"), "--expires", "not a whole number of days"),
    (("edit", "binance-main", "--expires", "2027-02-30"), "--expires", "no such day"),
    (("edit", "binance-main", "--issued", "20250901"), "--issued", "YYYY-MM-DD"),
    (("edit", "binance-main", "--issued", "yesterday"), "--issued", "bad date or duration"),
    (("rotate", "start", "binance-main", "--expires", "1d12h"), "--expires", "date or duration"),
    (("client", "add", "bot", "--expires", "36526d"), "--expires", "at most 100 years"),
    (("audit", "--since", "-7d"), "--since", "bad date or duration"),
    (("audit", "--until", "2027-13-01"), "--until", "no such day"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("args", "option", "message"), BAD_VALUES, ids=[" ".join(a[0]) for a in BAD_VALUES]
)
def test_a_bad_date_or_duration_is_one_line_naming_the_option(
    stocked_cli: Cli,
    snapshot: Callable[[], object],
    one_error_line: Callable[[Result, int], str],
    args: tuple[str, ...],
    option: str,
    message: str,
) -> None:
    before = snapshot()
    r = stocked_cli(*args, "--vault", str(stocked_cli.vault_path))
    line = one_error_line(r, 7)
    assert line.startswith(f"exvault: error: {option}: "), line
    assert message in line
    assert snapshot() == before


@pytest.mark.parametrize("args", [("audit", "--since"), ("unlock", "--idle")])
def test_a_time_value_that_is_not_utf8_stays_a_usage_error(
    stocked_cli: Cli, one_error_line: Callable[[Result, int], str], args: tuple[str, ...]
) -> None:
    line = one_error_line(stocked_cli(*args, "7\udcffd", "--vault", str(stocked_cli.vault_path)), 2)
    assert "not valid UTF-8" in line


# ------------------------------------------------------------------ the type itself


def test_the_placeholders_are_duration_and_when() -> None:
    ctx = click.Context(click.Command("x"))
    option = click.Option(["--x"])
    assert DURATION.get_metavar(option, ctx) == "DURATION"
    assert WHOLE_DAYS.get_metavar(option, ctx) == "DURATION"
    assert DAY_AHEAD.get_metavar(option, ctx) == "WHEN"
    assert MOMENT_BACK.get_metavar(option, ctx) == "WHEN"


def test_a_value_already_converted_is_kept() -> None:
    assert DURATION.convert(timedelta(hours=3), None, None) == timedelta(hours=3)
    assert DAY_AHEAD.convert(date(2027, 3, 1), None, None) == date(2027, 3, 1)


def test_without_an_option_the_message_says_value() -> None:
    with pytest.raises(InvalidInput, match=r"^value: bad duration"):
        DURATION.convert("soon", None, None)
