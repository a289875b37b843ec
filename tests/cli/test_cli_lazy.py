"""The lazily loading command group: every subcommand it lists loads, and only when used.

``exvault`` knows each subcommand as ``module:attribute`` with the summary its help
listing shows (``vault.cli.main.SUBCOMMANDS``). A typo there, a summary that drifted
from the command's docstring, or a command left out must fail here, and so must an
``exvault --help`` that imports SQLAlchemy (it imports no command at all).
"""

from __future__ import annotations

import importlib
import pkgutil
import subprocess
import sys
import textwrap
from datetime import datetime, timezone
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

import vault.cli
from vault import errors
from vault.cli.main import (
    SUBCOMMANDS,
    Subcommand,
    cli,
    exit_code_for,
    load_named_command,
    load_subcommand,
)
from vault.exchanges.key_report import KeyReport, ProbeOutcome
from vault.ops import observations
from vault.owner.admin import AdminVault

# The modules that define commands; loading one command must not load the others.
COMMAND_MODULES = sorted({entry.target.split(":")[0] for entry in SUBCOMMANDS.values()})


@pytest.mark.parametrize("name", sorted(SUBCOMMANDS))
def test_every_listed_subcommand_imports_and_shows_its_help(name: str) -> None:
    command = load_subcommand(name)
    assert command.name == name
    result = CliRunner().invoke(cli, [name, "--help"])
    assert result.exit_code == 0, result.output
    assert result.output.startswith(f"Usage: cli {name} ")  # CliRunner names the group cli


@pytest.mark.parametrize("name", sorted(SUBCOMMANDS))
def test_every_summary_is_the_first_paragraph_of_the_commands_help(name: str) -> None:
    stored = click.Command(name, help=SUBCOMMANDS[name].summary)
    command = load_subcommand(name)
    for limit in (45, 70, 1000):  # as shortened for narrow and wide terminals, and whole
        assert stored.get_short_help_str(limit) == command.get_short_help_str(limit)


def test_every_command_of_the_cli_modules_is_listed() -> None:
    commands: dict[int, click.Command] = {}
    for module_info in pkgutil.iter_modules(vault.cli.__path__):
        module = importlib.import_module(f"vault.cli.{module_info.name}")
        for value in vars(module).values():
            if isinstance(value, click.Command) and value is not cli:
                commands[id(value)] = value
    nested = {
        id(sub)
        for command in commands.values()
        if isinstance(command, click.Group)
        for sub in command.commands.values()
    }
    top = {command.name for key, command in commands.items() if key not in nested}
    assert top == set(SUBCOMMANDS)


def test_a_wrong_target_fails_to_load(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(SUBCOMMANDS, "list", Subcommand("vault.cli.listing:lst", "x"))
    with pytest.raises(AttributeError):
        load_subcommand("list")
    monkeypatch.setitem(SUBCOMMANDS, "list", Subcommand("vault.cli.output:plural", "x"))
    with pytest.raises(TypeError):
        load_subcommand("list")


def test_help_lists_every_subcommand_in_order() -> None:
    result = CliRunner().invoke(cli, ["--help"])
    assert result.exit_code == 0, result.output
    listed = result.output.split("Commands:\n", 1)[1].splitlines()
    assert [line.split()[0] for line in listed] == sorted(SUBCOMMANDS)


# Runs exvault, then writes every module the process imported to the file named in argv[1]
# (-X importtime would miss the command modules: importlib.import_module loads them).
RECORD_IMPORTS = """
import atexit, sys
from pathlib import Path
record = Path(sys.argv[1])
atexit.register(lambda: record.write_text("\\n".join(sorted(sys.modules))))
sys.argv = ["exvault", *sys.argv[2:]]
from vault.cli.main import main
main()
"""


def _imported_by(
    args: list[str], tmp_path: Path
) -> tuple[subprocess.CompletedProcess[str], set[str]]:
    """Run ``exvault ARGS`` in a new process; the process and what it imported."""
    record = tmp_path / "modules"
    process = subprocess.run(
        [sys.executable, "-c", RECORD_IMPORTS, str(record), *args],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=60,
        check=False,
    )
    return process, set(record.read_text().split("\n"))


def test_help_imports_neither_sqlalchemy_nor_any_command(tmp_path: Path) -> None:
    process, imports = _imported_by(["--help"], tmp_path)
    assert process.returncode == 0, process.stderr
    assert "Commands:" in process.stdout
    assert "vault.errors" in imports  # the import log is there to read
    assert not {m for m in imports if m.split(".")[0] in ("sqlalchemy", "argon2")}
    assert not imports & set(COMMAND_MODULES)


@pytest.mark.parametrize(
    ("command", "module"), [("list", "vault.cli.listing"), ("check", "vault.cli.checks")]
)
def test_keyless_commands_import_only_their_own_module_and_no_owner_code(
    command: str, module: str, tmp_path: Path
) -> None:
    process, imports = _imported_by([command, "--vault", str(tmp_path / "none.db")], tmp_path)
    assert process.returncode == 8, process.stderr  # no vault there: the command ran
    assert imports & set(COMMAND_MODULES) == {module}
    assert not {m for m in imports if m.startswith(("vault.owner", "argon2"))}
    assert not {m for m in imports if m.split(".")[0] in IMPORT_LIBRARIES}
    assert not {m for m in imports if m.startswith("vault.ops.importing")}


# The optional `import` extra: each loaded only by the reader of `exvault import` that needs it.
IMPORT_LIBRARIES = ("dotenv", "pykeepass", "eth_keyfile", "rapidjson", "yaml")


def test_an_import_loads_only_the_library_of_its_source(
    admin: AdminVault, vault_path: Path, tmp_path: Path
) -> None:
    env = tmp_path / "keys.env"
    env.write_text("KRAKEN_API_KEY=k\n")
    process, imports = _imported_by(
        ["import", "env", str(env), "--dry-run", "--vault", str(vault_path)], tmp_path
    )
    assert process.returncode == 0, process.stderr
    loaded = {m.split(".")[0] for m in imports} & set(IMPORT_LIBRARIES)
    assert loaded == {"dotenv"}
    # Only commands that talk to an exchange load ccxt (the `exchanges` extra).
    assert not {m for m in imports if m.split(".")[0] == "ccxt" or m == "vault.ops.exchange_api"}


def test_a_store_error_exits_12_through_the_error_hierarchy() -> None:
    class DiskFull(errors.StoreError):
        pass

    assert exit_code_for(errors.StoreError("database error: disk full")) == 12
    assert exit_code_for(DiskFull("database error: disk full")) == 12
    assert exit_code_for(errors.TokenExpired("expired")) == 6
    assert exit_code_for(errors.VaultError("other")) == 1


@pytest.mark.parametrize("command", ["check", "list"])
def test_keyless_commands_over_probe_observations_load_no_exchange_code(
    stocked: AdminVault, vault_path: Path, tmp_path: Path, command: str
) -> None:
    # check reports the stored observations of probe: reading them must not load ccxt.
    report = KeyReport(("read", "trade", "withdraw"), True, None, None, None)
    now = datetime.now(timezone.utc).replace(microsecond=0)
    observations.record(stocked, "binance-main", 1, ProbeOutcome(now, report, None, 3, 5000))
    process, imports = _imported_by([command, "--vault", str(vault_path)], tmp_path)
    assert process.returncode == (2 if command == "check" else 0), process.stderr
    assert not {m for m in imports if m.split(".")[0] in ("ccxt", "requests")}
    assert "vault.ops.exchange_api" not in imports


@pytest.mark.parametrize(
    ("args", "loaded"),
    [
        (["show", "binance-main", "--field", "secret"], {"show"}),
        (["-h", "grant", "bot", "x"], {"grant"}),
        (["--version"], set()),
        (["no-such-command"], set()),
        ([], set()),
    ],
)
def test_the_console_script_loads_the_command_its_arguments_name(
    monkeypatch: pytest.MonkeyPatch, args: list[str], loaded: set[str]
) -> None:
    monkeypatch.setattr(cli, "commands", {})
    load_named_command(args)
    assert set(cli.commands) == loaded


# The console script, in a process of its own, with the command its argument names
# failing to load: a module that cannot be imported (a broken installation), or Ctrl-C
# while it is imported.
FAILING_PRELOAD = textwrap.dedent(
    """
    import sys
    from vault.cli import main as entry

    if sys.argv[1] == "import-error":
        entry.SUBCOMMANDS["list"] = entry.Subcommand("vault.cli.no_such_module:list_", "x")
    else:
        def interrupted(name):
            raise KeyboardInterrupt

        entry.load_subcommand = interrupted
    sys.argv = ["exvault", "list"]
    entry.main()
    """
)


@pytest.mark.parametrize(
    ("failure", "code", "line"),
    [
        (
            "import-error",
            70,
            "exvault: internal error (ModuleNotFoundError); "
            "run again with EXVAULT_DEBUG=1 to see the traceback",
        ),
        ("interrupt", 130, "exvault: interrupted"),
    ],
)
def test_a_command_failing_to_load_before_click_parses_is_one_line_not_a_traceback(
    failure: str, code: int, line: str
) -> None:
    # As when click loads the command itself (ExvaultGroup.invoke): a traceback's text
    # could carry what we never meant to print.
    done = subprocess.run(
        [sys.executable, "-c", FAILING_PRELOAD, failure],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert (done.returncode, done.stderr) == (code, line + "\n")


# The console script, in a process of its own: a finder that only looks notes whether
# the collector is on when the command's module is imported; click.echo, called by the
# command, notes whether it is on then and how many objects are frozen.
CONSOLE_SCRIPT_PROBE = textwrap.dedent(
    """
    import gc, sys
    import importlib.abc
    import click

    class Probe(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path, target=None):
            if name == "vault.cli.exchanges":
                print("import, collector on:", gc.isenabled(), file=sys.stderr)
            return None

    sys.meta_path.insert(0, Probe())
    echo = click.echo

    def noting_echo(*args, **kwargs):
        print("run, collector on:", gc.isenabled(), file=sys.stderr)
        print("run, frozen:", gc.get_freeze_count() > 10_000, file=sys.stderr)
        return echo(*args, **kwargs)

    click.echo = noting_echo
    sys.argv = ["exvault", "exchanges"]
    from vault.cli.main import main
    main()
    """
)


def test_the_console_script_imports_the_command_paused_and_runs_it_frozen() -> None:
    done = subprocess.run(
        [sys.executable, "-c", CONSOLE_SCRIPT_PROBE], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert "binance" in done.stdout
    notes = set(done.stderr.splitlines())
    assert notes == {
        "import, collector on: False",
        "run, collector on: True",
        "run, frozen: True",
    }


# Named tuples on the start path whose annotations stay postponed: their modules annotate
# with types only imported under TYPE_CHECKING (SQLAlchemy's records), a few fields each.
_POSTPONED_ON_THE_PATH = {
    "vault.db.audit.AuditEntry",
    "vault.db.audit.ChainReport",
    "vault.db.inventory.ListedCredential",
    "vault.db.inventory.VaultStatus",
    "vault.db.schema_version.OwnerKeys",
    "vault.db.schema_version.SchemaStep",
    "vault.format.audit_entry.AuditRow",
    "vault.format.records.SealedVersion",
}

# Dataclasses on the start path: the mutable ones (a named tuple cannot change), and
# ExchangeProfile, whose construction checks its fields (edit only).
_DATACLASSES_ON_THE_PATH = {
    "vault.db.access_history.AccessFacts",
    "vault.db.access_history.FactsFold",
    "vault.db.access_history.LogState",
    "vault.exchanges.profiles.ExchangeProfile",
    "vault.format.editable.EditableClient",
    "vault.format.editable.EditableHead",
    "vault.format.editable.EditableHeader",
    "vault.owner.writer._Batch",
}


def _start_path_classes(test: str) -> set[str]:
    """The classes of exvault's modules that ``test`` (an expression of ``cls``) holds
    for, among those that `grant`, `edit`, `show` and a bot's library load, in a new
    process."""
    code = textwrap.dedent(
        f"""
        import dataclasses, sys, typing
        import vault.runtime.client
        from vault.cli.main import load_named_command
        for name in ("grant", "edit", "show"):
            load_named_command([name])
        import vault.exchanges.profiles
        found = []
        for module in [m for n, m in sorted(sys.modules.items()) if n.startswith("vault")]:
            for cls in vars(module).values():
                if isinstance(cls, type) and cls.__module__ == module.__name__ and ({test}):
                    found.append(f"{{module.__name__}}.{{cls.__qualname__}}")
        print(" ".join(found))
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    return set(done.stdout.split())


def test_the_named_tuples_a_command_or_a_bot_builds_at_start_have_evaluated_annotations() -> None:
    # typing.NamedTuple compiles each postponed (string) annotation of its fields when
    # the class is built (about 10 µs each on Python 3.11): the modules that every
    # owner's command and a bot's read import keep theirs evaluated.
    postponed = _start_path_classes(
        "issubclass(cls, tuple) and hasattr(cls, '_fields') and any("
        "isinstance(a, (str, typing.ForwardRef)) for a in cls.__annotations__.values())"
    )
    assert postponed == _POSTPONED_ON_THE_PATH


def test_a_command_or_a_bot_builds_only_the_dataclasses_it_must_at_start() -> None:
    # Each dataclass compiles five or six methods when its module is imported (about
    # 0.5 ms on Python 3.11): immutable records on the start path are named tuples.
    assert _start_path_classes("dataclasses.is_dataclass(cls)") == _DATACLASSES_ON_THE_PATH
