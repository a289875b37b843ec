"""Owner commands through the unlock agent, next to the same commands with the passphrase.

Run on its own (not among the figures of ``python -m benchmarks``)::

    python -m benchmarks.agent [--repeats 7] [--python PATH] [--importtime] [--breakdown]
                               [--test-kdf]

A vault is made with ``exvault init`` (Argon2id calibrated on this machine, as a user
gets it), holding one binance credential and one client, and ``exvault unlock`` hands
it to an agent. Then each of ``grant``, ``edit`` and ``show --field secret`` runs as a
whole new ``exvault`` process, ``--repeats`` times, in pairs: with ``--no-agent
--passphrase-file`` (Argon2id every time), then at once through the agent. The medians
of wall time (and the agent's CPU time) are printed side by side with the median of
the pairs' ratios (agent / passphrase), and ``exvault --version`` as the floor every
process pays (interpreter, click, the command group).

``--importtime`` adds where an agent-backed ``show`` spends its import time (``python
-X importtime``), by top-level package. ``--breakdown`` adds the CPU time of new
processes of the same Python that only import, layer on layer: the interpreter, the
command group, the format layer (``cryptography``), the owner commands' modules; the
difference between two lines is what that layer costs a command. Its last line is
what such a command no longer loads on a vault file: SQLAlchemy's Core and ORM alone.

The agent lives in a runtime directory of its own under ``--workdir`` and is stopped
at the end. ``--test-kdf`` makes the vault with the test suite's cheap KDF: a smoke
run whose "passphrase" column means nothing.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import sqlite3
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

from benchmarks.common import (
    clean_env,
    exvault_argv,
    median,
    paired_ratio,
    run_checked,
    run_measured,
    write_secret,
)

PASSPHRASE = "correct horse battery staple (agent benchmark)"
PAYLOAD = {"api_key": "A" * 64, "secret": "S" * 64}
TARGET_SECONDS = 0.100


def _setup(exvault: list[str], vault: Path, env: dict[str, str], pw: Path, test_kdf: bool) -> None:
    cheap = ["--insecure-test-kdf"] if test_kdf else []
    run_checked(
        [*exvault, "init", "--vault", str(vault), *cheap],
        env=env,
        stdin=f"{PASSPHRASE}\n{PASSPHRASE}\n".encode(),
    )
    owner = ["--vault", str(vault), "--passphrase-file", str(pw), "--no-agent"]
    run_checked(
        [*exvault, "add", "binance-main", "--exchange", "binance", "--from-json", "-", *owner],
        env=env,
        stdin=json.dumps(PAYLOAD).encode(),
    )
    run_checked([*exvault, "client", "add", "grid-bot", "--max-scope", "trade", *owner], env=env)


def _commands(i: int) -> dict[str, tuple[list[str], list[str] | None]]:
    """Each timed command, and the untimed one that undoes it for its next run."""
    return {
        "grant": (["grant", "grid-bot", "binance-main"], ["ungrant", "grid-bot", "binance-main"]),
        "edit": (["edit", "binance-main", "--ip", f"203.0.113.{i % 250 + 1}"], None),
        "show --field secret": (["show", "binance-main", "--field", "secret"], None),
    }


class Paired:
    """One command's runs, with the passphrase and through the agent, pair by pair."""

    def __init__(self) -> None:
        self.prompted: list[float] = []
        self.agent: list[float] = []
        self.agent_cpu: list[float] = []

    def line(self, label: str) -> str:
        """The command's row: medians in milliseconds, the median pair's ratio."""
        agent_wall = median(self.agent)
        met = "met" if agent_wall <= TARGET_SECONDS else "missed"
        ratio = paired_ratio(self.agent, self.prompted)
        return (
            f"{label:<22} {median(self.prompted) * 1000:>9.0f} ms {agent_wall * 1000:>7.0f} ms "
            f"{median(self.agent_cpu) * 1000:>7.0f} ms {ratio:>7.2f}x  {met}"
        )


def measure(
    exvault: list[str], vault: Path, env: dict[str, str], pw: Path, repeats: int
) -> dict[str, Paired]:
    """Each command with the passphrase, then at once through the agent (which holds
    the vault), ``repeats`` times: pairs made back to back, so that their ratio holds
    when the machine's load moves."""
    where = ["--vault", str(vault)]
    prompted = ["--no-agent", "--passphrase-file", str(pw)]
    runs: dict[str, Paired] = {}
    for i in range(repeats):
        for label, (timed, undo) in _commands(i).items():
            paired = runs.setdefault(label, Paired())
            for through_agent in (False, True):
                unlock = [] if through_agent else prompted
                done = run_measured([*exvault, *timed, *where, *unlock], env=env)
                if through_agent:
                    paired.agent.append(done.seconds)
                    paired.agent_cpu.append(done.cpu_seconds)
                else:
                    paired.prompted.append(done.seconds)
                if undo is not None:
                    run_checked([*exvault, *undo, *where], env=env)
    return runs


IMPORT_LAYERS = (
    ("the interpreter", "pass"),
    ("+ click and the command group", "import vault.cli.main"),
    ("+ the format layer (cryptography)", "import vault.cli.main, vault.format.records"),
    (
        "+ the owner commands' modules",
        "import vault.cli.main, vault.cli.show, vault.cli.credentials, vault.cli.access",
    ),
    ("(not loaded) SQLAlchemy's Core and ORM alone", "import sqlalchemy.orm"),
)
"""What ``--breakdown`` imports, each line in new processes of its own."""


def layer_breakdown(
    python: str, env: dict[str, str], repeats: int, cwd: Path
) -> list[tuple[str, float]]:
    """Median CPU seconds of a new process importing each of :data:`IMPORT_LAYERS`, run
    in ``cwd`` (not a source checkout, whose ``vault`` folder would shadow an install)."""
    return [
        (
            label,
            median(
                [
                    run_measured([python, "-c", statement], env=env, cwd=cwd).cpu_seconds
                    for _ in range(repeats)
                ]
            ),
        )
        for label, statement in IMPORT_LAYERS
    ]


def import_breakdown(python: str, vault: Path, env: dict[str, str]) -> list[tuple[str, float]]:
    """Cumulative import time (seconds) of each top-level package an agent-backed
    ``show --field secret`` imports, largest first (run beside the vault: ``-m`` puts
    the working directory first on the path)."""
    proc = subprocess.run(
        [
            *(python, "-X", "importtime", "-m", "vault.cli.main"),
            *("show", "binance-main", "--field", "secret", "--vault", str(vault)),
        ],
        env=env,
        capture_output=True,
        text=True,
        check=True,
        cwd=vault.parent,
    )
    totals: dict[str, float] = {}
    for line in proc.stderr.splitlines():
        parts = line.split("|")
        if len(parts) != 3 or not parts[1].strip().isdigit():
            continue  # the header line
        name = parts[2][1:]  # one space after the bar; nested imports are indented more
        if name.startswith(" "):
            continue
        package = name.split(".")[0]
        totals[package] = totals.get(package, 0.0) + int(parts[1]) / 1e6
    return sorted(totals.items(), key=lambda item: -item[1])


def audit_entries(vault: Path) -> int:
    """How many entries the vault's audit log holds (read-only, with sqlite3)."""
    with contextlib.closing(sqlite3.connect(f"file:{vault}?mode=ro", uri=True)) as db:
        return int(db.execute("SELECT count(*) FROM audit_log").fetchone()[0])


def _stop_agent(exvault: list[str], env: dict[str, str]) -> None:
    out = run_checked([*exvault, "agent", "status", "--json"], env=env)
    status = json.loads(out)
    if status.get("running"):
        os.kill(int(status["pid"]), signal.SIGTERM)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.agent")
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--python", default=None, help="the Python whose exvault to run")
    parser.add_argument("--workdir", type=Path, default=None)
    parser.add_argument("--importtime", action="store_true")
    parser.add_argument("--breakdown", action="store_true", help="import costs, layer by layer")
    parser.add_argument(
        "--test-kdf", action="store_true", help="a cheap KDF (a smoke run: no figure)"
    )
    args = parser.parse_args(argv)
    python = args.python or sys.executable
    exvault = exvault_argv(python)
    with tempfile.TemporaryDirectory(dir=args.workdir, prefix="exvault-agent-bench-") as top:
        work = Path(top)
        run = work / "run"
        run.mkdir(mode=0o700)
        # The audit witness and the signed log's checkpoint of this throwaway vault stay
        # in its directory, not in the user's state directory.
        env = clean_env({"XDG_RUNTIME_DIR": str(run), "XDG_STATE_HOME": str(work / "state")})
        vault = work / "vault.db"
        pw = write_secret(work / "passphrase", PASSPHRASE)
        _setup(exvault, vault, env, pw, args.test_kdf)
        layers = layer_breakdown(python, env, args.repeats, work) if args.breakdown else []
        floor = median(
            [run_measured([*exvault, "--version"], env=env).seconds for _ in range(args.repeats)]
        )
        run_checked(
            [*exvault, "unlock", "--vault", str(vault), "--passphrase-file", str(pw)], env=env
        )
        try:
            runs = measure(exvault, vault, env, pw, args.repeats)
            breakdown = import_breakdown(python, vault, env) if args.importtime else []
            entries = audit_entries(vault)
        finally:
            _stop_agent(exvault, env)
    print(f"exvault --version (the floor of every process): {floor * 1000:.0f} ms")
    print(
        f"{'command':<22} {'passphrase':>12} {'agent':>10} {'agent CPU':>10} {'ratio':>8}"
        "  target 100 ms"
    )
    for label, paired in runs.items():
        print(paired.line(label))
    print(
        f"(the vault's audit log at the end: {entries} entries; grant and edit check the "
        "signed log, so they take longer as it grows)"
    )
    for name, seconds in breakdown[:8]:
        print(f"  import {name:<20} {seconds * 1000:7.0f} ms (cumulative)")
    for label, seconds in layers:
        print(f"  imports: {label:<34} {seconds * 1000:6.0f} ms CPU")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
