"""Runs ``exvault rotate due --auto`` again and again in new processes, each killed
with SIGKILL at a chosen point, for the crash loop of test_rotation_crash.py.

Started once by the test (``python -m tests.reliability.rotation_driver VAULT
PASSFILE``), it imports exvault and ccxt once, then for each line ``KILL_AT DAYS`` read
on stdin forks a child process that runs the real command line
(``vault.cli.main.main``), whose credentials reach the mock exchanges (served by the
test's process) through their own endpoint, with:

* the clock moved ``DAYS`` days ahead (so that keys come due and grace periods end);
* a counter of events: every exchange call of the key management (before and after
  it), every probe of a key, every journal write and every committed rotation step;
  at the ``KILL_AT``-th event, or the first event named ``KILL_AT``
  (``after:create_key``, ``before:delete_key``), the child SIGKILLs itself (0:
  never). Among those points: after a key was created and before it was stored,
  after promote and before the old key's deletion.

It answers each line with the child's exit status (``-9`` for a kill); the child's
output is in ``VAULT.run.log``.
"""

from __future__ import annotations

import functools
import os
import signal
import sys
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any


def instrument(kill_at: str, days: int) -> None:
    """Patch this (child) process as the module docstring says (``kill_at``: the
    number of the event, or a named one, ``after:create_key``, ``before:delete_key``:
    the first event of that name)."""
    from vault.format import model
    from vault.ops import exchange_keys
    from vault.ops.exchange_rotation import ExchangeRotation
    from vault.owner import journal, rotation

    count = 0

    def tick(event: str) -> None:
        nonlocal count
        count += 1
        if kill_at in (str(count), event):
            os.kill(os.getpid(), signal.SIGKILL)

    def around(function: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(function)
        def wrapped(*args: Any, **kwargs: Any) -> Any:
            tick(f"before:{function.__name__}")
            result = function(*args, **kwargs)
            tick(f"after:{function.__name__}")
            return result

        return wrapped

    real_now = model.utc_now

    def now() -> datetime:
        return real_now() + timedelta(days=days)

    # Every module that took the clock by name (dates checked, heads, audit entries).
    for module in list(sys.modules.values()):
        if (
            getattr(module, "__name__", "").startswith("vault")
            and getattr(module, "utc_now", None) is real_now
        ):
            module.utc_now = now  # type: ignore[attr-defined]
    for keys in exchange_keys.SUPPORTED.values():
        for name in ("create_key", "delete_key", "list_keys"):
            setattr(keys, name, around(getattr(keys, name)))
    for name in ("begin", "settle", "claim"):
        setattr(journal.Journal, name, around(getattr(journal.Journal, name)))
    for name in ("start", "promote", "finish"):
        setattr(rotation, name, around(getattr(rotation, name)))
    # The new key's verification: the probe of a key, signed with that key.
    ExchangeRotation.probe = around(ExchangeRotation.probe)  # type: ignore[method-assign]


def main() -> None:
    vault_path, passphrase_file = sys.argv[1:3]
    import ccxt  # type: ignore[import-untyped]  # noqa: F401  (imported once, before forking)

    import vault.cli.main  # noqa: F401

    for line in sys.stdin:
        kill_at, days_text = line.split()
        days = int(days_text)
        pid = os.fork()
        if pid == 0:
            instrument(kill_at, days)
            from vault.cli.main import main as exvault

            sys.argv = [
                "exvault",
                "rotate",
                "due",
                "--auto",
                "--vault",
                vault_path,
                "--passphrase-file",
                passphrase_file,
            ]
            # The run's output, for a failing test to show (the last run's only).
            log = os.open(f"{vault_path}.run.log", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            os.dup2(log, 1)
            os.dup2(log, 2)
            try:
                exvault()
            except SystemExit as exit_:
                os._exit(exit_.code if isinstance(exit_.code, int) else 1)
            os._exit(0)
        _, status = os.waitpid(pid, 0)
        code = -os.WTERMSIG(status) if os.WIFSIGNALED(status) else os.WEXITSTATUS(status)
        print(code, flush=True)


if __name__ == "__main__":
    main()
