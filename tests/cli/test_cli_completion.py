"""Shell completion (click's): ``_EXVAULT_COMPLETE=SHELL_source exvault`` prints the
script for bash, zsh and fish, and the completions it asks for come from the lazy group.
"""

from __future__ import annotations

import subprocess
import sys

import pytest
from click.testing import CliRunner, Result

from vault.cli.main import cli

FIRST_LINES = {
    "bash": "_exvault_completion() {",
    "zsh": "#compdef exvault",
    "fish": "function _exvault_completion;",
}


def complete(env: dict[str, str]) -> Result:
    return CliRunner().invoke(cli, [], env=env, prog_name="exvault")


@pytest.mark.parametrize("shell", sorted(FIRST_LINES))
def test_the_completion_script_is_produced(shell: str) -> None:
    r = complete({"_EXVAULT_COMPLETE": f"{shell}_source"})
    assert r.exit_code == 0, r.output
    assert r.stdout.splitlines()[0] == FIRST_LINES[shell]
    assert f"_EXVAULT_COMPLETE={shell}_complete" in r.stdout


def test_bash_loads_the_script() -> None:
    """The script printed by the console entry point, evaluated by a real bash."""
    script = subprocess.run(
        [sys.executable, "-m", "vault.cli.main"],
        env={"_EXVAULT_COMPLETE": "bash_source", "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout
    loaded = subprocess.run(
        ["bash", "-c", 'eval "$1" && complete -p exvault', "bash", script],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    assert loaded.stdout.strip() == "complete -o nosort -F _exvault_completion exvault"


@pytest.mark.parametrize(
    ("words", "index", "expected"),
    [
        ("exvault ro", 1, ["rotate"]),
        (
            "exvault rotate ",
            2,
            ["abort", "due", "finish", "promote", "rollback", "start", "verify"],
        ),
        ("exvault init --allow", 2, ["--allow-weak-passphrase"]),
    ],
)
def test_bash_completes_commands_and_options(words: str, index: int, expected: list[str]) -> None:
    r = complete(
        {"_EXVAULT_COMPLETE": "bash_complete", "COMP_WORDS": words, "COMP_CWORD": str(index)}
    )
    assert r.exit_code == 0, r.output
    # Sorted: the order of a group's subcommands is the group's own business.
    assert sorted(line.split(",", 1)[1] for line in r.stdout.splitlines()) == expected
