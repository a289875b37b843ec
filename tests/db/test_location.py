"""Where a vault lives (vault/db/location.py): paths, URLs and the environment."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from vault.db.location import ENV_PATH, ENV_URL, resolve
from vault.db.url import sqlite_path
from vault.errors import InvalidInput


@pytest.fixture(autouse=True)
def _no_location_in_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(ENV_URL, raising=False)
    monkeypatch.delenv(ENV_PATH, raising=False)


def test_relative_path_is_made_absolute(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert sqlite_path(resolve("v.db")) == tmp_path / "v.db"


def test_home_is_expanded(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    assert sqlite_path(resolve("~/v.db")) == tmp_path / "v.db"


@pytest.mark.parametrize("where", ["~nosuchuser-exvault/vault.db", "~nosuchuser-exvault", "~0"])
def test_home_of_an_unknown_user_is_refused(where: str) -> None:
    """Path.expanduser() raises RuntimeError here; it used to escape as an internal error."""
    user = where.split("/")[0]
    with pytest.raises(InvalidInput) as info:
        resolve(where)
    assert str(info.value) == (
        f"cannot find the home directory of {user} in the vault path {where}"
    )


def test_path_that_is_not_utf8_is_refused() -> None:
    """SQLite takes file names as text, and messages print the path."""
    with pytest.raises(InvalidInput) as info:
        resolve("/srv/vault-\udc80.db")
    assert str(info.value) == (
        "the vault path /srv/vault-\\udc80.db is not valid UTF-8 text (at character 12)"
    )


def test_path_from_the_environment_is_checked(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENV_PATH, "~nosuchuser-exvault/v.db")
    with pytest.raises(InvalidInput, match="home directory"):
        resolve()


def test_control_characters_in_messages_are_escaped() -> None:
    with pytest.raises(InvalidInput) as info:
        resolve("~no\x1b[2Jone/v.db")
    assert "\x1b" not in str(info.value) and "~no\\x1b[2Jone" in str(info.value)


@pytest.mark.parametrize(
    "url", ["foo://:", "x://h:port/", "postgresql://[::1", "postgresql://h:-1x/db"]
)
def test_malformed_url_is_refused(url: str) -> None:
    """make_url reads the port with int(): its ValueError used to escape."""
    with pytest.raises(InvalidInput) as info:
        resolve(url)
    assert str(info.value).startswith(f'malformed database URL "{url}" (expected e.g. ')


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("postgresql://bob:hunter2@db:port/vault", "postgresql://***@db:port/vault"),
        ("x://:hunter2@h:p", "x://***@h:p"),
        ("x://bob:hunt@er2@h:p/", "x://***@h:p/"),  # an unescaped @ in the password
    ],
)
def test_malformed_url_never_shows_its_password(url: str, shown: str) -> None:
    with pytest.raises(InvalidInput) as info:
        resolve(url)
    assert f'"{shown}"' in str(info.value)
    assert "hunt" not in str(info.value) and "bob" not in str(info.value)


def test_malformed_url_is_shown_whole() -> None:
    """Longer than other input may be echoed, but a URL without its password is no
    secret, and a cut one would not show what is wrong."""
    url = "postgresql+psycopg://db.example.net:54x32/exvault"
    with pytest.raises(InvalidInput) as info:
        resolve(url)
    assert str(info.value).startswith(f'malformed database URL "{url}" ')


def test_url_that_is_not_utf8_is_refused() -> None:
    with pytest.raises(InvalidInput) as info:
        resolve("postgresql://bob:pw\udc80@db/vault")
    assert str(info.value) == (
        'the database URL "postgresql://***@db/vault" is not valid UTF-8 text (at character 20)'
    )


@given(st.text(max_size=40).map(lambda s: "postgresql://" + s))
def test_any_url_parses_or_is_refused_as_input(url: str) -> None:
    try:
        resolve(url)
    except InvalidInput as exc:
        assert str(exc).isprintable()
