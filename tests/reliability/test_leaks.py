"""Suite 5: secrets never leak (issue 5, suite 5; SECURITY.md section 3.8).

With logging at DEBUG for every logger (SQLAlchemy's engine, pool and ORM included),
every CLI command runs in turn against one vault, and the library is driven through
its public calls and the errors a bad read raises. Everything is captured: stdout and
stderr of each command, every log record (message and exception text), the ``str``,
``repr`` and formatted traceback of every exception, the ``repr`` of what the library
returns, the audit log rows, every file exvault wrote, and the argv of every process:
the arguments of each in-process run, and ``/proc/PID/cmdline`` of real ``exvault``
processes (one waiting on stdin for ``add --from-json -``, the child of ``exvault run``).

None of the known secret values (API keys, API secrets, API passphrases, the vault
passphrases, the recovery key, the client tokens) may appear anywhere, nor any 16
characters of one, except where printing it is the command's purpose: the secret
fields on the stdout of ``show --reveal`` and ``show --field`` (asserted present, then
that stdout alone is left out), the recovery key on the stdout of ``init``, a client's
token on the stdout of its ``client add`` (exactly once).

It also checks that a real ``exvault`` process cannot dump core: ``/proc/PID/limits``
shows a core file size of 0, and in a process that ran the CLI's group callback,
``prctl(PR_GET_DUMPABLE)`` is 0.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import shutil
import signal
import sqlite3
import stat
import subprocess
import sys
import textwrap
import time
import traceback
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from tests.conftest import (
    BINANCE_API_KEY,
    BINANCE_SECRET,
    KUCOIN_API_KEY,
    KUCOIN_PASSPHRASE,
    KUCOIN_SECRET,
    PASSPHRASE,
)

NEW_PASSPHRASE = "Ql7-wobbly-Harp-92-cinder"
NEWER_PASSPHRASE = "zx8 Frond tulip 4417 oxide"
BINANCE_V2 = {
    "api_key": "Q2lVb1dz0JrX9p7FbTqKc8HnLm3aRy6uEv4wGs1tPdZjNkMx5oBiCeYhVgSfAl0",
    "secret": "k8Jz2QmV4nXr7TbLw1PsYc9DfGh3UaEo5KiRt6MyNq0BvZx8CjWl2HdSgFe4Ap7",
}
BINANCE_V3 = {
    "api_key": "Zr4Tq8Lm2Nv6Bx0Kc3Jh7Gf1Ds5Ya9Wp4Eu8Ri2Oo6Ht0Ql3Mn7Vb1Xc5Zs9Ak2",
    "secret": "Pw7Es3Ud9Fr1Gt5Hy8Jk2Lm6Nb0Vc4Xz7As1Sd5Df9Gh3Jk7Lq2We6Rt0Yu4Io8",
}
KUCOIN_V2 = {
    "api_key": "65a0beefcafe00d15ea5e0ff",
    "secret": "9c8b7a65-4321-4fed-8cba-0987654321ab",
    "passphrase": "An0therB0tPass!",
}
BYBIT = {"api_key": "XbYbItKeY0123456789a", "secret": "yBySeCrEt0123456789abcdefghijKLMNOPQRST"}
GATE = {
    "api_key": "6f2a9c41d8e3b7a05c1f9e2d4b8a7c3e",
    "secret": "d41f8a2c9e7b3056a1c4f8e2d9b7a3c5e1f0a8d2c4b6e9f7a3d5c1b8e2f4a6c9",
}

# Every secret value the suite uses, by a name for messages; tokens and the recovery
# key are added when exvault prints them.
SECRETS: dict[str, str] = {
    "binance api_key": BINANCE_API_KEY,
    "binance secret": BINANCE_SECRET,
    "binance v2 api_key": BINANCE_V2["api_key"],
    "binance v2 secret": BINANCE_V2["secret"],
    "binance v3 api_key": BINANCE_V3["api_key"],
    "binance v3 secret": BINANCE_V3["secret"],
    "kucoin api_key": KUCOIN_API_KEY,
    "kucoin secret": KUCOIN_SECRET,
    "kucoin passphrase": KUCOIN_PASSPHRASE,
    "kucoin v2 api_key": KUCOIN_V2["api_key"],
    "kucoin v2 secret": KUCOIN_V2["secret"],
    "kucoin v2 passphrase": KUCOIN_V2["passphrase"],
    "bybit api_key": BYBIT["api_key"],
    "bybit secret": BYBIT["secret"],
    "gate api_key": GATE["api_key"],
    "gate secret": GATE["secret"],
    "vault passphrase": PASSPHRASE,
    "vault passphrase 2": NEW_PASSPHRASE,
    "vault passphrase 3": NEWER_PASSPHRASE,
}

WINDOW = 16  # no 16 characters in a row of a secret may show


def fragments(value: str) -> list[str]:
    """The pieces whose presence counts as a leak: every 16-character window of the
    value (the whole value when shorter), and its hex and base64 forms."""
    import base64

    pieces = (
        [value]
        if len(value) <= WINDOW
        else [value[i : i + WINDOW] for i in range(len(value) - WINDOW + 1)]
    )
    raw = value.encode()
    return [*pieces, raw.hex(), base64.b64encode(raw).decode().rstrip("=")]


@dataclass
class Leaks:
    """The known secrets and every place text was checked."""

    secrets: dict[str, str] = field(default_factory=lambda: dict(SECRETS))
    checked: dict[str, int] = field(default_factory=dict)  # kind of place -> count
    found: list[str] = field(default_factory=list)
    whole: bool = False  # look for whole values only, not 16-character pieces

    def add_secret(self, name: str, value: str) -> None:
        self.secrets[name] = value

    def check(self, kind: str, where: str, text: str | bytes, allowed: Sequence[str] = ()) -> None:
        """Record a leak of any secret (but the ``allowed`` ones) in ``text``."""
        self.checked[kind] = self.checked.get(kind, 0) + 1
        data = text if isinstance(text, str) else text.decode("utf-8", "replace")
        for name, value in self.secrets.items():
            if name in allowed:
                continue
            pieces = [value] if self.whole else fragments(value)
            hit = next((f for f in pieces if f in data), None)
            if hit is not None:
                self.found.append(f"{name} in {kind}: {where} (fragment {hit[:6]}...)")


# --------------------------------------------------------------------------------------
# Logging at DEBUG, everywhere
# --------------------------------------------------------------------------------------


class Recorder(logging.Handler):
    """Keeps every record, formatted with its exception and stack if any."""

    def __init__(self) -> None:
        super().__init__(level=logging.DEBUG)
        self.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        text = self.format(record)
        if record.exc_info and not record.exc_text:
            text += "\n" + "".join(traceback.format_exception(*record.exc_info))
        if record.stack_info:
            text += "\n" + record.stack_info
        self.lines.append(text)

    def take(self) -> str:
        out, self.lines = "\n".join(self.lines), []
        return out


@pytest.fixture
def debug_logs() -> Iterator[Recorder]:
    """Every logger at DEBUG (SQLAlchemy echo included) into a recorder."""
    logging.basicConfig(level=logging.DEBUG)
    recorder = Recorder()
    root = logging.getLogger()
    names = ["sqlalchemy", "sqlalchemy.engine", "sqlalchemy.pool", "sqlalchemy.orm"]
    names += list(logging.root.manager.loggerDict)
    saved = {name: logging.getLogger(name).level for name in names}
    saved_root = root.level
    root.addHandler(recorder)
    root.setLevel(logging.DEBUG)
    for name in names:
        logging.getLogger(name).setLevel(logging.DEBUG)
    try:
        yield recorder
    finally:
        root.removeHandler(recorder)
        root.setLevel(saved_root)
        for name, level in saved.items():
            logging.getLogger(name).setLevel(level)


@pytest.fixture(autouse=True)
def _restore_umask() -> Iterator[None]:
    old = os.umask(0o077)
    os.umask(old)
    yield
    os.umask(old)


# --------------------------------------------------------------------------------------
# Driving the CLI
# --------------------------------------------------------------------------------------

EXVAULT_VARIABLES = (
    "EXVAULT_TOKEN",
    "EXVAULT_TOKEN_FILE",
    "EXVAULT_PASSPHRASE_FILE",
    "EXVAULT_PATH",
    "EXVAULT_URL",
    "EXVAULT_DEBUG",
    "EXVAULT_NOTIFY_URL",
    "CREDENTIALS_DIRECTORY",
)


@dataclass
class Session:
    """One vault driven through the CLI, everything it prints checked for leaks."""

    root: Path
    logs: Recorder
    leaks: Leaks
    runner: CliRunner = field(default_factory=CliRunner)
    argvs: list[list[str]] = field(default_factory=list)
    commands: list[str] = field(default_factory=list)

    @property
    def vault(self) -> Path:
        return self.root / "vault" / "vault.db"

    @property
    def passphrase_file(self) -> Path:
        return self.root / "passphrase"

    def write_secret_file(self, name: str, text: str) -> Path:
        path = self.root / name
        path.write_text(text + "\n")
        os.chmod(path, 0o600)
        return path

    def env(self, **extra: str) -> dict[str, str | None]:
        env: dict[str, str | None] = dict.fromkeys(EXVAULT_VARIABLES)
        env["XDG_STATE_HOME"] = str(self.root / "state")
        env["XDG_DATA_HOME"] = str(self.root / "data")
        env.update(extra)
        return env

    def __call__(
        self,
        *args: str,
        stdin: str | None = None,
        unlock: bool = False,
        env: dict[str, str] | None = None,
        expect: int | Sequence[int] = 0,
        stdout_may_show: Sequence[str] = (),
        vault: bool = True,
    ) -> Result:
        """Run ``exvault ARGS --vault V`` and check all it printed and logged."""
        from vault.cli.main import cli

        ours = ["--vault", str(self.vault)] if vault else []
        if unlock:
            ours += ["--passphrase-file", str(self.passphrase_file)]
        # Options go before a "--": what follows it is the command `exvault run` starts.
        cut = args.index("--") if "--" in args else len(args)
        argv = [*args[:cut], *ours, *args[cut:]]
        self.argvs.append(argv)
        group = args[0] in ("client", "rotate", "policy", "audit") and len(args) > 1
        command = " ".join(args[:2] if group and not args[1].startswith("-") else args[:1])
        label = f"{command} #{len(self.commands) + 1}"
        self.commands.append(command)
        self.logs.take()
        r = self.runner.invoke(
            cli, argv, input=stdin, env=self.env(**(env or {})), catch_exceptions=True
        )
        codes = (expect,) if isinstance(expect, int) else tuple(expect)
        assert r.exit_code in codes, (label, r.exit_code, r.output, r.exception)
        assert "Traceback" not in r.output
        self.leaks.check("stdout", label, r.stdout, allowed=stdout_may_show)
        self.leaks.check("stderr", label, r.stderr)
        self.leaks.check("log records", label, self.logs.take())
        if r.exception is not None and not isinstance(r.exception, SystemExit):
            exc = r.exception
            self.leaks.check("exception", label, f"{exc}\n{exc!r}")
            self.leaks.check("traceback", label, "".join(traceback.format_exception(exc)))
        return r


def mistyped(recovery_key: str) -> str:
    """The recovery key with its first character changed (the last may be padding)."""
    return ("B" if recovery_key[0] == "A" else "A") + recovery_key[1:]


def token_secret(token: str) -> str:
    """The part of a client token that is secret: its seed (and checksum). The rest,
    the vault id, fingerprint and client id, is the same in every token of a vault."""
    return token[-48:]


def _token_in(output: str) -> str:
    found = re.findall(r"exv1-[A-Za-z0-9_-]+", output)
    assert len(found) == 1, output  # shown exactly once
    return found[0]


def _recovery_in(output: str) -> str:
    found = re.findall(r"\b(?:[A-Z2-7]{4}-){5,}[A-Z2-7]{1,4}\b", output)
    assert len(found) == 1, output
    return found[0]


CHILD = (
    "import os, sys; "
    "print('K=' + os.environ.get('K', '')); "
    "print('KEY=' + os.environ.get('FREQTRADE__EXCHANGE__KEY', '')); "
    "print('CMDLINE=' + open('/proc/self/cmdline', 'rb').read().decode(errors='replace'))"
)


def drive_every_command(s: Session, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every exvault command, in an order that makes each meaningful."""
    import vault.cli.prompts

    # ---- the vault and its credentials
    r = s(
        "init",
        "--insecure-test-kdf",
        stdin=f"{PASSPHRASE}\n{PASSPHRASE}\n",
        stdout_may_show=["recovery key"],
    )
    s.leaks.add_secret("recovery key", _recovery_in(r.stdout))
    s.write_secret_file("passphrase", PASSPHRASE)
    s("info")
    s("info", "--json")
    s("exchanges", vault=False)
    s("exchanges", "--json", vault=False)
    binance = {"api_key": BINANCE_API_KEY, "secret": BINANCE_SECRET}
    s(
        "add",
        "binance-main",
        "-e",
        "binance",
        "-p",
        "read,trade",
        "--ip",
        "203.0.113.7",
        "--from-json",
        "-",
        stdin=json.dumps(binance),
        unlock=True,
    )
    kucoin_file = s.write_secret_file(
        "kucoin.json",
        json.dumps(
            {"apiKey": KUCOIN_API_KEY, "secret": KUCOIN_SECRET, "password": KUCOIN_PASSPHRASE}
        ),
    )
    s(
        "add",
        "kucoin-sub1",
        "-e",
        "kucoin",
        "-p",
        "read",
        "--ip",
        "198.51.100.0/24",
        "--from-json",
        str(kucoin_file),
        "--json",
        unlock=True,
    )
    # Without a terminal, the fields come as stdin lines ...
    s(
        "add",
        "gate-x",
        "-e",
        "gate",
        "-p",
        "read",
        stdin=f"{GATE['api_key']}\n{GATE['secret']}\n",
        unlock=True,
    )
    # ... and at hidden prompts when there is one.
    with monkeypatch.context() as m:
        m.setattr(vault.cli.prompts, "stdin_is_terminal", lambda: True)
        s(
            "add",
            "bybit-bot",
            "-e",
            "bybit",
            "-p",
            "read,trade",
            "--ip",
            "192.0.2.1",
            stdin=f"{PASSPHRASE}\n{BYBIT['api_key']}\n{BYBIT['secret']}\n",
        )
    s("list")
    s("list", "--json")
    s("show", "binance-main")
    s("show", "binance-main", "--json")
    s("history", "binance-main")
    s("history", "binance-main", "--json")

    # ---- commands whose purpose is to print a secret
    shown = ["binance api_key", "binance secret"]
    for args in (
        ("show", "binance-main", "--reveal", "--yes"),
        ("show", "binance-main", "--reveal", "--yes", "--json"),
    ):
        r = s(*args, unlock=True, stdout_may_show=shown)
        assert BINANCE_API_KEY in r.stdout and BINANCE_SECRET in r.stdout
    r = s(
        "show",
        "kucoin-sub1",
        "--field",
        "passphrase",
        unlock=True,
        stdout_may_show=["kucoin passphrase"],
    )
    assert r.stdout.strip() == KUCOIN_PASSPHRASE
    with monkeypatch.context() as m:  # the confirmation question, answered at a terminal
        m.setattr(vault.cli.prompts, "stdin_is_terminal", lambda: True)
        r = s(
            "show",
            "kucoin-sub1",
            "--reveal",
            stdin=f"y\n{PASSPHRASE}\n",
            stdout_may_show=["kucoin api_key", "kucoin secret", "kucoin passphrase"],
        )
        assert KUCOIN_SECRET in r.stdout

    # ---- editing
    s("edit", "gate-x", "-p", "read,trade", unlock=True)
    s("edit", "kucoin-sub1", "--from-json", "-", stdin=json.dumps(KUCOIN_V2), unlock=True)
    with monkeypatch.context() as m:
        m.setattr(vault.cli.prompts, "stdin_is_terminal", lambda: True)
        s(
            "edit",
            "bybit-bot",
            "--secrets",
            stdin=f"{PASSPHRASE}\n{BYBIT['api_key']}\n{BYBIT['secret']}\n",
        )

    # ---- clients, grants, run
    r = s(
        "client",
        "add",
        "bot-a",
        "--max-scope",
        "trade",
        "--expires",
        "30d",
        unlock=True,
        stdout_may_show=["token bot-a"],
    )
    token_a = _token_in(r.stdout)
    s.leaks.secrets["token bot-a"] = token_secret(token_a)
    r = s("client", "add", "bot-b", "--json", unlock=True, stdout_may_show=["token bot-b"])
    token_b = json.loads(r.stdout)["token"]
    s.leaks.secrets["token bot-b"] = token_secret(token_b)
    assert r.stdout.count(token_b) == 1
    s("grant", "bot-a", "binance-main", "kucoin-sub1", unlock=True)
    s("grant", "bot-b", "gate-x", unlock=True)
    s("client", "list")
    s("client", "list", "--json")
    token_file = s.write_secret_file("bot-a.token", token_a)
    for env, extra in (
        ({"EXVAULT_TOKEN_FILE": str(token_file)}, ["--env", "K=api_key"]),
        ({}, ["--preset", "freqtrade"]),
    ):
        argv = ["run", "--cred", "binance-main", *extra]
        r = s(*argv, "--", sys.executable, "-c", CHILD, env=env, unlock=not env)
        assert "********" in r.stdout, r.stdout  # the child printed the key: masked
        assert "CMDLINE=" in r.stdout  # the child's argv went through the same check

    # ---- rotation and policy
    s(
        "rotate",
        "start",
        "binance-main",
        "--from-json",
        "-",
        stdin=json.dumps(BINANCE_V2),
        unlock=True,
    )
    s("rotate", "verify", "binance-main", unlock=True)
    s("rotate", "verify", "binance-main", "--json", unlock=True)
    s("rotate", "promote", "binance-main", "--grace", "2h", unlock=True)
    r = s(
        "run",
        "--cred",
        "binance-main",
        "--stage",
        "previous",
        "--env",
        "K=secret",
        "--",
        sys.executable,
        "-c",
        CHILD,
        env={"EXVAULT_TOKEN_FILE": str(token_file)},
    )
    assert "K=********" in r.stdout
    s("rotate", "finish", "binance-main", "--force", unlock=True)
    s(
        "rotate",
        "start",
        "binance-main",
        "--from-json",
        "-",
        stdin=json.dumps(BINANCE_V3),
        unlock=True,
    )
    s("rotate", "abort", "binance-main", unlock=True)
    s("policy", "set", "binance-main", "--max-age", "60d", "--grace", "12h", unlock=True)
    s("policy", "set", "gate-x", "--warn-before", "7d", "--json", unlock=True)
    s("policy", "accept-risk", "gate-x", "stale", "--reason", "spare key", unlock=True)
    s("policy", "show", "gate-x")
    s("policy", "show", "gate-x", "--json")
    s("policy", "clear-risk", "gate-x", "stale", unlock=True)

    # ---- reports
    s("audit")
    s("audit", "--json")
    s("audit", "--since", "1d")
    s("audit", "verify", expect=(0, 3))
    s("audit", "verify", "--json", expect=(0, 3))
    for fmt in ("table", "json", "prometheus"):
        s("check", "--format", fmt, "--all", expect=(0, 1, 2))
    s("check", "--json", expect=(0, 1, 2))
    s("check", "--quiet", expect=(0, 1, 2))
    s("verify", unlock=True)
    s("verify", "--json", unlock=True)
    s("doctor", expect=(0, 1, 2))
    s("doctor", "--json", expect=(0, 1, 2))

    # ---- backup, access changes, passphrases, removal, restore
    backup = s.root / "backup.db"
    s("backup", str(backup))
    backup_pass = s.write_secret_file("backup-passphrase", PASSPHRASE)
    s("ungrant", "bot-a", "kucoin-sub1", unlock=True)
    s("client", "revoke", "bot-b", unlock=True)
    s("passwd", "--insecure-test-kdf", stdin=f"{NEW_PASSPHRASE}\n{NEW_PASSPHRASE}\n", unlock=True)
    s.write_secret_file("passphrase", NEW_PASSPHRASE)
    recovery = s.leaks.secrets["recovery key"]
    s(
        "recover",
        "--insecure-test-kdf",
        stdin=f"{recovery}\n{NEWER_PASSPHRASE}\n{NEWER_PASSPHRASE}\n",
    )
    s.write_secret_file("passphrase", NEWER_PASSPHRASE)
    recovery_file = s.write_secret_file("recovery", recovery)
    s(
        "recover",
        "--insecure-test-kdf",
        "--recovery-key-file",
        str(recovery_file),
        stdin=f"{NEWER_PASSPHRASE}\n{NEWER_PASSPHRASE}\n",
    )
    s("remove", "gate-x", "--yes", unlock=True)
    s("restore", str(backup), "--yes", "--backup-passphrase-file", str(backup_pass))
    s.write_secret_file("passphrase", PASSPHRASE)
    s("verify", unlock=True)
    s("schedule", "--cron", "0 8 * * *")
    s("schedule", "--systemd")
    s("schedule", "--systemd", "--verify")

    # ---- the unlock agent: owner commands through it, then locked again
    s("unlock", "--idle", "5m", unlock=True)
    s("agent", "status", vault=False)
    s("agent", "status", "--json", vault=False)
    s("unlock", "--status", "--json", vault=False)
    r = s("show", "binance-main", "--field", "secret", stdout_may_show=["binance v2 secret"])
    assert r.stdout.strip() == BINANCE_V2["secret"]  # no --passphrase-file: the agent's work
    s("edit", "binance-main", "--ip", "203.0.113.9")
    s("lock")
    s("lock", "--all", vault=False)

    # ---- refusals: wrong passphrase, unknown names, bad token, damaged vault
    wrong = s.write_secret_file("wrong", "Correct Horse Battery Staple")
    s("show", "binance-main", "--field", "secret", "--passphrase-file", str(wrong), expect=3)
    s("show", "nope", "--reveal", "--yes", unlock=True, expect=4)
    s(
        "run",
        "--cred",
        "binance-main",
        "--env",
        "K=api_key",
        "--",
        "true",
        env={"EXVAULT_TOKEN": token_a[:-3] + "AAA"},
        expect=6,
    )
    s(
        "run",
        "--cred",
        "binance-main",
        "--env",
        "K=api_key",
        "--",
        "true",
        env={"EXVAULT_TOKEN_FILE": str(s.write_secret_file("b.token", token_b))},
        expect=6,
    )
    s("recover", stdin=f"{recovery[:-2]}\n", expect=7)


def damage_a_payload(vault: Path) -> None:
    """Flip one bit of every ciphertext (it stays a BLOB)."""
    db = sqlite3.connect(vault)
    with db:
        rows = db.execute("SELECT rowid, ciphertext FROM payloads").fetchall()
        for rowid, ciphertext in rows:
            damaged = bytes([ciphertext[0] ^ 1]) + ciphertext[1:]
            db.execute("UPDATE payloads SET ciphertext = ? WHERE rowid = ?", (damaged, rowid))
    db.close()


def test_every_cli_command(
    tmp_path: Path, debug_logs: Recorder, monkeypatch: pytest.MonkeyPatch
) -> None:
    leaks = Leaks()
    s = Session(tmp_path / "cli", debug_logs, leaks)
    s.root.mkdir()
    drive_every_command(s, monkeypatch)
    # A damaged vault refuses with the integrity error, and says nothing more.
    damage_a_payload(s.vault)
    s("show", "binance-main", "--field", "api_key", unlock=True, expect=3)
    s("verify", unlock=True, expect=3)
    s(
        "run",
        "--cred",
        "binance-main",
        "--env",
        "K=api_key",
        "--",
        "true",
        env={"EXVAULT_TOKEN_FILE": str(s.root / "bot-a.token")},
        expect=3,
    )

    for argv in s.argvs:  # no secret was ever needed on a command line
        leaks.check("argv", " ".join(argv[:3]), "\0".join(argv))
    check_audit_rows(leaks, s.vault)
    check_files(
        leaks,
        s.root,
        written_by_test={
            "passphrase",
            "kucoin.json",
            "bot-a.token",
            "b.token",
            "backup-passphrase",
            "recovery",
            "wrong",
        },
    )
    report(leaks, f"{len(s.commands)} CLI runs of {len(set(s.commands))} commands")
    print("commands: " + ", ".join(sorted(set(s.commands))))
    assert not leaks.found, "\n".join(leaks.found)


# --------------------------------------------------------------------------------------
# The audit log and the files exvault wrote
# --------------------------------------------------------------------------------------


def check_audit_rows(leaks: Leaks, vault: Path) -> None:
    db = sqlite3.connect(f"file:{vault}?mode=ro", uri=True)
    try:
        for row in db.execute("SELECT * FROM audit_log"):
            for value in row:
                if isinstance(value, (str, bytes)):
                    leaks.check("audit rows", f"entry {row[0]}", value)
    finally:
        db.close()


def check_files(leaks: Leaks, root: Path, written_by_test: set[str]) -> None:
    """Files exvault made hold no secret in clear and are readable by their owner only."""
    for path in sorted(root.rglob("*")):
        if path.is_dir() or path.name in written_by_test:
            continue
        mode = stat.S_IMODE(path.stat().st_mode)
        assert not mode & 0o077, f"{path} has mode {mode:04o}"
        leaks.check("files", str(path.relative_to(root)), path.read_bytes())


def report(leaks: Leaks, what: str) -> None:
    places = ", ".join(f"{k} {n}" for k, n in sorted(leaks.checked.items()))
    print(
        f"\nleak checks over {what}: {sum(leaks.checked.values())} texts ({places}); "
        f"{len(leaks.secrets)} secret values, {len(leaks.found)} leaks"
    )


# --------------------------------------------------------------------------------------
# The library: its calls, what they return, what they raise
# --------------------------------------------------------------------------------------


def test_library_calls(tmp_path: Path, debug_logs: Recorder) -> None:
    import vault
    from tests.conftest import TEST_KDF
    from vault.errors import VaultError
    from vault.owner import rotation
    from vault.owner.admin import AdminVault

    leaks = Leaks()
    path = tmp_path / "lib" / "vault.db"
    calls = 0

    def look(label: str, value: object) -> None:
        nonlocal calls
        calls += 1
        leaks.check("repr/str", label, f"{value!r}\n{value!s}")
        leaks.check("log records", label, debug_logs.take())

    def refused(label: str, call: Callable[[], object]) -> VaultError:
        nonlocal calls
        calls += 1
        with pytest.raises(VaultError) as caught:
            call()
        exc = caught.value
        leaks.check("exception", label, f"{exc}\n{exc!r}\n{exc.args!r}")
        leaks.check("traceback", label, "".join(traceback.format_exception(exc)))
        leaks.check("log records", label, debug_logs.take())
        return exc

    admin, recovery = AdminVault.create(path, PASSPHRASE, kdf=TEST_KDF, insecure_test_kdf=True)
    leaks.add_secret("recovery key", recovery)
    look("create", admin)
    with admin:
        look(
            "add",
            admin.add(
                "binance-main",
                "binance",
                {"api_key": BINANCE_API_KEY, "secret": BINANCE_SECRET},
                permissions="read,trade",
                ips=["203.0.113.7"],
            ),
        )
        look(
            "add",
            admin.add(
                "kucoin-sub1",
                "kucoin",
                {
                    "api_key": KUCOIN_API_KEY,
                    "secret": KUCOIN_SECRET,
                    "passphrase": KUCOIN_PASSPHRASE,
                },
                permissions="read",
            ),
        )
        cred = admin.get("binance-main")
        look("AdminVault.get", cred)
        look("Credential.api_key", cred.api_key)
        look("Credential.secret", cred.secret)
        look("Credential fields", cred.fields)
        look("f-string", f"{cred.secret} {cred.api_key:>10}")
        assert cred.secret.reveal() == BINANCE_SECRET
        kc = admin.get("kucoin-sub1")
        look("kucoin", (kc, kc.passphrase))
        with pytest.raises(TypeError) as pickled:
            import pickle

            pickle.dumps(cred)
        leaks.check("exception", "pickle", "".join(traceback.format_exception(pickled.value)))
        look("describe", admin.describe("binance-main"))
        look("history", admin.history("binance-main"))
        look("credentials", admin.credentials())
        info, token = admin.add_client("bot-a", max_scope="trade")
        leaks.add_secret("token bot-a", token_secret(token))
        look("add_client", info)
        admin.grant("bot-a", ["binance-main"])
        look("clients", admin.clients())
        look("rotate start", rotation.start(admin, "binance-main", BINANCE_V2))
        look("rotate verify", rotation.verify(admin, "binance-main"))
        look("rotate promote", rotation.promote(admin, "binance-main"))
        look("edit", admin.edit("kucoin-sub1", payload=KUCOIN_V2))
        look("audit", admin.audit_entries())
        look("status", admin.status())
        look("verify_audit", admin.verify_audit(remember=False))

        # Refusals that a caller would log or show.
        refused("wrong stage", lambda: admin.get("binance-main", "pending"))
        refused("unknown credential", lambda: admin.get("nope"))
        refused(
            "bad payload",
            lambda: admin.add("y", "kucoin", {"api_key": KUCOIN_API_KEY, "secret": KUCOIN_SECRET}),
        )
        refused(
            "scope",
            lambda: admin.edit("binance-main", permissions="read,trade,withdraw"),
        )
        admin.change_passphrase(NEW_PASSPHRASE, insecure_test_kdf=True)
    refused("wrong passphrase", lambda: AdminVault.unlock(path, PASSPHRASE))
    refused(
        "mistyped recovery key",
        lambda: AdminVault.unlock_with_recovery_key(path, mistyped(recovery)),
    )
    with AdminVault.unlock_with_recovery_key(path, recovery) as again:
        look("recovered", again)

    # The runtime side.
    loaded = vault.load("binance-main", where=path, token=token)
    look("vault.load", loaded)
    look("ccxt keys", sorted(loaded.ccxt()))
    with vault.open(path, token=token) as handle:
        look("vault.open", handle)
        look("ClientVault.get", handle.get("binance-main", "previous"))
        refused("not granted", lambda: handle.get("kucoin-sub1"))
        refused("no pending", lambda: handle.get("binance-main", "pending"))
    refused(
        "token of another vault",
        lambda: vault.load("binance-main", where=path, token=token[:-6] + "AAAAAA"),
    )
    refused("malformed token", lambda: vault.load("binance-main", where=path, token=token[:40]))
    old = os.environ.get("EXVAULT_TOKEN")
    os.environ["EXVAULT_TOKEN"] = token + "x"
    try:
        refused("token from the environment", lambda: vault.load("binance-main", where=path))
    finally:
        os.environ.pop("EXVAULT_TOKEN")
        if old is not None:
            os.environ["EXVAULT_TOKEN"] = old
    from vault.runtime.token import parse_token

    look("ClientToken", parse_token(token))
    with AdminVault.unlock(path, NEW_PASSPHRASE) as admin:
        admin.revoke_client("bot-a")
    refused("revoked", lambda: vault.load("binance-main", where=path, token=token))
    damage_a_payload(path)
    with AdminVault.unlock(path, NEW_PASSPHRASE) as admin:
        refused("damaged", lambda: admin.get("binance-main"))
        from vault.ops.verification import verify

        look("verify report", verify(admin))

    check_audit_rows(leaks, path)
    check_files(leaks, tmp_path / "lib", written_by_test=set())
    report(leaks, f"{calls} library calls")
    assert not leaks.found, "\n".join(leaks.found)


# --------------------------------------------------------------------------------------
# A secret pasted where it does not belong must not be echoed back
# --------------------------------------------------------------------------------------

# Two secrets as a user might paste them: a 64-character alphanumeric API secret (as
# binance's), and a 44-character base64 one (as Coinbase's or Kraken's keys) that is
# not a valid name.
PASTED = {
    "alnum64": BINANCE_V3["secret"],
    "base64-44": "q3Jx9+Vb2/Lk8Qw0Zt5Yp1Hn6Rm4Ds7Fa0Gc2Eu9Ki3Q=",
}


def wrong_places(secret: str) -> dict[str, tuple[tuple[str, ...], str | None]]:
    add = ("add", "x", "-e", "binance")
    return {
        "credential name": (("add", secret, "-e", "binance", "--from-json", "-"), "{}"),
        "exchange": (("add", "x", "-e", secret, "--from-json", "-"), "{}"),
        "permissions": ((*add, "-p", secret, "--from-json", "-"), "{}"),
        "ip": ((*add, "--ip", secret, "--from-json", "-"), "{}"),
        "issue date": ((*add, "--issued", secret, "--from-json", "-"), "{}"),
        "json field name": (
            (*add, "--from-json", "-"),
            json.dumps({secret: "v", "api_key": "k", "secret": "s"}),
        ),
        "ask field": ((*add, "--ask", secret), ""),
        "show name": (("show", secret), None),
        "show field": (("show", "binance-main", "--field", secret), None),
        "client name": (("client", "add", secret), None),
        "client max scope": (("client", "add", "bot", "--max-scope", secret), None),
        "client expiry": (("client", "add", "bot", "--expires", secret), None),
        "grant": (("grant", "bot", secret), None),
        "audit since": (("audit", "--since", secret), None),
        "policy max age": (("policy", "set", "binance-main", "--max-age", secret), None),
        "rotate grace": (("rotate", "promote", "binance-main", "--grace", secret), None),
        "run mapping": (("run", "--cred", "binance-main", "--env", secret, "--", "true"), None),
        "run preset": (("run", "--cred", "binance-main", "--preset", secret, "--", "true"), None),
        "run credential": (("run", "--cred", secret, "--env", "K=api_key", "--", "true"), None),
        "check notify url": (("check", "--notify-url", secret), None),
    }


PLACES = list(wrong_places("x"))

# Places whose message quotes the pasted value whole today (see the xfail reason):
# none since error messages quote user input through vault.errors.quoted.
ECHOED: set[tuple[str, str]] = set()

# 64 alphanumerics make a valid client name: `client add` accepts it and, like any
# name it has just created, names it in its output. Not a message about bad input.
VALID_NAME = {("client name", "alnum64")}


@pytest.mark.parametrize(
    ("place", "kind"),
    [
        pytest.param(
            place,
            kind,
            marks=pytest.mark.xfail(
                strict=True,
                reason="BUG: this error message quotes the input whole (NotFound messages "
                "for credential, client, field and preset names at any length; "
                "validate_name up to 80 printable characters; the IP, field-name, expiry "
                "and --env parsers): a secret pasted there is echoed, against SECURITY.md "
                "3.6 ('they cut or omit long ones')",
            ),
        )
        if (place, kind) in ECHOED
        else pytest.param(place, kind)
        for place in PLACES
        for kind in PASTED
        if (place, kind) not in VALID_NAME
    ],
)
def test_secret_pasted_in_the_wrong_place(
    tmp_path: Path, debug_logs: Recorder, place: str, kind: str
) -> None:
    """A secret pasted as an argument is already on the command line (the user's
    mistake); exvault must not repeat it whole in its messages or logs."""
    from tests.conftest import TEST_KDF
    from vault.owner.admin import AdminVault

    secret = PASTED[kind]
    leaks = Leaks(secrets={"pasted secret": secret}, whole=True)
    s = Session(tmp_path, debug_logs, leaks)
    admin, _ = AdminVault.create(s.vault, PASSPHRASE, kdf=TEST_KDF, insecure_test_kdf=True)
    with admin:
        admin.add("binance-main", "binance", {"api_key": BINANCE_API_KEY, "secret": BINANCE_SECRET})
        admin.add_client("bot")
    s.write_secret_file("passphrase", PASSPHRASE)
    args, stdin = wrong_places(secret)[place]
    needs_key = args[0] in ("add", "client", "policy", "rotate", "run", "grant")
    s(*args, stdin=stdin, unlock=needs_key or "--field" in args, expect=range(256))
    assert not leaks.found, "\n".join(leaks.found)


# --------------------------------------------------------------------------------------
# Real processes: argv, and no core dumps
# --------------------------------------------------------------------------------------


def exvault_command() -> list[str]:
    script = Path(sys.executable).parent / "exvault"
    if script.is_file():
        return [str(script)]
    return [sys.executable, "-m", "vault.cli.main"]


def _wait_for(predicate: Callable[[], bool], seconds: float = 30.0) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.02)
    raise AssertionError("timed out")


def _hardened(pid: int) -> bool:
    # The CLI's first act: core dumps off (the soft and hard limit), and, seen by a
    # user other than root, its /proc files owned by root (not dumpable).
    with contextlib.suppress(OSError, StopIteration):
        limits = Path(f"/proc/{pid}/limits").read_text()
        core = next(line for line in limits.splitlines() if line.startswith("Max core file size"))
        if core.split()[4:6] != ["0", "0"]:
            return False
        return os.getuid() == 0 or os.stat(f"/proc/{pid}/mem").st_uid == 0
    return False


@pytest.fixture
def real_vault(tmp_path: Path) -> tuple[Path, Path]:
    from tests.conftest import TEST_KDF
    from vault.owner.admin import AdminVault

    path = tmp_path / "real" / "vault.db"
    admin, _ = AdminVault.create(path, PASSPHRASE, kdf=TEST_KDF, insecure_test_kdf=True)
    admin.close()
    passphrase = tmp_path / "passphrase"
    passphrase.write_text(PASSPHRASE + "\n")
    os.chmod(passphrase, 0o600)
    return path, passphrase


@pytest.mark.skipif(not Path("/proc/self/cmdline").exists(), reason="needs /proc")
def test_real_process_argv_and_core_dumps(real_vault: tuple[Path, Path]) -> None:
    """A real ``exvault add --from-json -`` waiting on stdin (it reads and checks the
    secret fields before it unlocks): its argv holds no secret, and it cannot dump core
    (RLIMIT_CORE 0; not dumpable when we can tell)."""
    path, passphrase = real_vault
    leaks = Leaks()
    env = {k: v for k, v in os.environ.items() if k not in EXVAULT_VARIABLES}
    proc = subprocess.Popen(
        [
            *exvault_command(),
            "add",
            "binance-main",
            "-e",
            "binance",
            "--from-json",
            "-",
            "--vault",
            str(path),
            "--passphrase-file",
            str(passphrase),
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
    )
    try:
        # Hardened at start, and now blocked reading the secrets on stdin.
        _wait_for(lambda: _hardened(proc.pid) or proc.poll() is not None)
        assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
        cmdline = Path(f"/proc/{proc.pid}/cmdline").read_bytes()
        environ = Path(f"/proc/{proc.pid}/environ").read_bytes()
        limits = Path(f"/proc/{proc.pid}/limits").read_text()
        owner = os.stat(f"/proc/{proc.pid}/mem").st_uid
        payload = json.dumps({"api_key": BINANCE_API_KEY, "secret": BINANCE_SECRET})
        out, err = proc.communicate(payload.encode(), timeout=60)
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            proc.wait()
    assert proc.returncode == 0, err
    leaks.check("argv", "exvault add (/proc/PID/cmdline)", cmdline)
    leaks.check("environment", "exvault add (/proc/PID/environ)", environ)
    leaks.check("stdout", "exvault add", out)
    leaks.check("stderr", "exvault add", err)
    assert not leaks.found, leaks.found
    core = next(line for line in limits.splitlines() if line.startswith("Max core file size"))
    assert core.split()[4:6] == ["0", "0"], core  # soft and hard limits
    if os.getuid() != 0:
        # A process that is not dumpable has its /proc files owned by root.
        assert owner == 0, "exvault is dumpable: /proc/PID/mem belongs to its user"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="prctl is Linux-only")
def test_cli_process_is_not_dumpable() -> None:
    """In a fresh process, the CLI's group callback leaves it non-dumpable with no core
    limit, as seen by the process itself (prctl(PR_GET_DUMPABLE), getrlimit)."""
    probe = textwrap.dedent(
        """
        import json, resource, sys
        import click
        from vault.cli.main import cli
        from vault.runtime.hardening import is_dumpable

        before = is_dumpable()

        @cli.command(name="probe-hardening")
        def probe() -> None:
            click.echo(json.dumps({
                "before": before,
                "dumpable": is_dumpable(),
                "core": resource.getrlimit(resource.RLIMIT_CORE),
            }))

        cli(["probe-hardening"], prog_name="exvault")
        """
    )
    env = {k: v for k, v in os.environ.items() if k not in EXVAULT_VARIABLES}
    r = subprocess.run(
        [sys.executable, "-c", probe],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )
    assert r.returncode == 0, r.stderr
    seen = json.loads(r.stdout)
    assert seen["before"] is True  # the probe can tell the difference
    assert seen["dumpable"] is False
    assert seen["core"] == [0, 0]


def test_run_child_argv_holds_no_secret(real_vault: tuple[Path, Path]) -> None:
    """``exvault run`` gives the child its secrets in the environment only: its own
    /proc/self/cmdline (printed, then masked or not) never holds one."""
    from vault.owner.admin import AdminVault

    path, passphrase = real_vault
    with AdminVault.unlock(path, PASSPHRASE) as admin:
        admin.add("binance-main", "binance", {"api_key": BINANCE_API_KEY, "secret": BINANCE_SECRET})
    env = {k: v for k, v in os.environ.items() if k not in EXVAULT_VARIABLES}
    r = subprocess.run(
        [
            *exvault_command(),
            "run",
            "--cred",
            "binance-main",
            "--preset",
            "freqtrade",
            "--no-masking",
            "--vault",
            str(path),
            "--passphrase-file",
            str(passphrase),
            "--",
            sys.executable,
            "-c",
            CHILD,
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )
    assert r.returncode == 0, r.stderr
    assert f"KEY={BINANCE_API_KEY}" in r.stdout  # unmasked, on purpose: it reached the child
    cmdline = next(x for x in r.stdout.splitlines() if x.startswith("CMDLINE="))
    leaks = Leaks()
    leaks.check("argv", "exvault run child", cmdline)
    leaks.check("stderr", "exvault run", r.stderr)
    assert not leaks.found, leaks.found
    shutil.rmtree(path.parent, ignore_errors=True)
