"""The README's install commands: the first one leaves ``exvault`` typeable, the second is
exactly what CI runs, and the names and extras it explains are the project's own."""

from __future__ import annotations

import re
import shlex
from importlib import metadata
from pathlib import Path

import vault

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")
DISTRIBUTION = metadata.distribution("exchange-vault")  # as installed from this tree


def first_commands() -> list[str]:
    """The lines of the README's first code block."""
    block = README.split("```sh\n", 1)[1].split("```", 1)[0]
    return block.splitlines()


def steps(line: str) -> list[list[str]]:
    """A ``a && b && c`` line as the words of each step."""
    return [shlex.split(step) for step in line.split("&&")]


def test_the_first_command_activates_the_environment_it_installs_into() -> None:
    install, _ = first_commands()
    done = steps(install)
    assert done[0] == ["python3", "-m", "venv", ".venv"]
    assert done[1] in ([".", ".venv/bin/activate"], ["source", ".venv/bin/activate"])
    assert done[2][:2] == ["pip", "install"] and done[2][2].startswith(".")
    # The bare command comes after the activation that puts .venv/bin on PATH.
    assert done[-1] == ["exvault", "init"]


def test_the_test_command_is_on_its_own_line_and_is_what_ci_runs() -> None:
    _, test = first_commands()
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8").splitlines()
    assert test in ci
    assert test.endswith(".venv/bin/python -m pytest")


def test_every_extra_the_readme_installs_exists() -> None:
    extras = set(DISTRIBUTION.metadata.get_all("Provides-Extra") or [])
    named = {
        extra.strip()
        for found in re.findall(r"pip install (?:-e )?'(?:\.|exchange-vault)\[([a-z,]+)\]'", README)
        for extra in found.split(",")
    }
    assert {"strength", "postgresql", "test"} <= named
    assert named <= extras


def test_the_three_names_are_the_projects() -> None:
    assert DISTRIBUTION.metadata["Name"] == "exchange-vault"
    scripts = {e.name: e.value for e in DISTRIBUTION.entry_points if e.group == "console_scripts"}
    assert scripts == {"exvault": "vault.cli.main:main"}
    assert vault.__name__ == "vault"
    assert (
        "**exchange-vault** is the distribution" in README
        and "**exvault** is the\ncommand" in README
        and "**vault** is the Python package" in README
    )
