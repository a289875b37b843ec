"""Crash consistency: SIGKILL a writing process at random instants, then check the vault.

A child process (``python -m tests.reliability.workload crash``) performs random
add / edit / rotate start, promote, finish, abort / grant / passwd / remove
operations, and batches of them (``admin.batch()``: adds, an edit and a grant in one
transaction, all or nothing), on one vault and journals each one: an ``intent`` line
before it starts and a ``commit`` line once it has returned (append, flush, fsync).
The parent kills it with SIGKILL at a random instant, then checks, with no process
holding the vault:

- the vault opens with exactly one of the two passphrases: the one the journal says
  is current, or either when the kill hit a passwd;
- ``verify`` passes;
- the vault holds exactly the state the committed journal lines describe (names
  present and absent; every stage's version number and secret; the highest version;
  the client's grants; the passphrase), or that state plus the one operation in
  flight when the kill landed (committed before the child could journal it);
- nothing half-written is visible (plain-SQL checks of :func:`workload.half_written`);
- the client reads each credential it was granted, at its current value.

The next child is a fresh process resuming the same vault from the checked state.
Default: 20 kills (well under a minute); ``--long`` or ``EXVAULT_LONG=1``: 200.
``EXVAULT_SEED`` replays the same random choices (the kill instants stay random).
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import select
import signal
import subprocess
import sys
import time
from collections import Counter, deque
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import TEST_KDF
from tests.reliability import workload
from vault.errors import IntegrityError, VaultError
from vault.ops.verification import verify
from vault.owner.admin import AdminVault
from vault.runtime.client import ClientVault

ROOT = Path(__file__).resolve().parents[2]
KILLS = 12
LONG_KILLS = 200
SPARES = 1  # a child kept warm (imports done) while the current one runs
PASSPHRASES = ("first crash-test passphrase", "second crash-test passphrase")
MAX_SLEEP = 0.150
READY_TIMEOUT = 120.0
PROGRESS_TIMEOUT = 60.0


class Child:
    """One crash child: a fresh ``python -m tests.reliability.workload crash`` process."""

    def __init__(self, config: Path, stderr: Path) -> None:
        self.stderr_path = stderr
        with open(stderr, "wb") as err:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "tests.reliability.workload", "crash", str(config)],
                cwd=ROOT,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=err,
            )
        self._buffer = b""

    def readline(self, timeout: float) -> str | None:
        """The next line the child printed; None when it closed stdout (it died)."""
        assert self.proc.stdout is not None
        deadline = time.monotonic() + timeout
        while b"\n" not in self._buffer:
            left = deadline - time.monotonic()
            if left <= 0:
                pytest.fail(f"crash child silent for {timeout} s\n{self.stderr()}")
            ready, _, _ = select.select([self.proc.stdout], [], [], left)
            if ready:
                chunk = os.read(self.proc.stdout.fileno(), 4096)
                if not chunk:
                    return None
                self._buffer += chunk
        line, self._buffer = self._buffer.split(b"\n", 1)
        return line.decode()

    def expect(self, prefix: str, timeout: float) -> str:
        line = self.readline(timeout)
        if line is None or not line.startswith(prefix):
            self.proc.wait(timeout=10)
            pytest.fail(
                f"crash child said {line!r}, expected {prefix!r} "
                f"(exit code {self.proc.returncode})\n{self.stderr()}"
            )
        return line

    def send(self, line: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(line.encode() + b"\n")
        self.proc.stdin.flush()

    def kill(self) -> None:
        """SIGKILL the child, which must still be running."""
        if self.proc.poll() is not None:
            pytest.fail(
                f"crash child exited by itself (code {self.proc.returncode})\n{self.stderr()}"
            )
        os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=30)
        assert self.proc.returncode == -signal.SIGKILL
        self._close_pipes()

    def dismiss(self) -> None:
        """Tell a waiting child to leave (or kill it, if it does not)."""
        try:
            if self.proc.poll() is None:
                self.send("quit")
            self.proc.wait(timeout=30)
        except (OSError, subprocess.TimeoutExpired):
            self.proc.kill()
            self.proc.wait()
        self._close_pipes()

    def _close_pipes(self) -> None:
        for pipe in (self.proc.stdin, self.proc.stdout):
            if pipe is not None:
                with contextlib.suppress(OSError):
                    pipe.close()

    def stderr(self) -> str:
        return self.stderr_path.read_text(errors="replace")[-4000:]


def split_journal(
    records: list[dict[str, Any]], next_seq: int
) -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
    """The operations a round's journal reports committed, and the one left in flight."""
    committed: list[dict[str, Any]] = []
    in_flight: dict[str, Any] | None = None
    for record in records:
        kind = record.pop("t")
        if kind == "intent":
            assert in_flight is None, f"journal: two intents in a row at {record}"
            assert record["seq"] == next_seq, f"journal: expected seq {next_seq}, got {record}"
            in_flight = record
        else:
            assert record == in_flight, f"journal: commit {record} does not match {in_flight}"
            committed.append(record)
            in_flight = None
            next_seq += 1
    return committed, in_flight


def unlock_either(path: Path) -> tuple[AdminVault, int]:
    """Open the vault with whichever passphrase works; exactly one must."""
    opened: list[tuple[AdminVault, int]] = []
    for index, passphrase in enumerate(PASSPHRASES):
        with contextlib.suppress(IntegrityError):
            opened.append((AdminVault.unlock(path, passphrase), index))
    for admin, _index in opened[1:]:
        admin.close()
    assert len(opened) == 1, f"{len(opened)} of the two passphrases open the vault"
    return opened[0]


def describe_states(**states: workload.State | None) -> str:
    return "\n".join(f"{k}: {json.dumps(v, sort_keys=True)}" for k, v in states.items())


def test_sigkill_at_random_instants_loses_nothing_committed(tmp_path: Path, long_run: bool) -> None:
    kills = LONG_KILLS if long_run else KILLS
    seed = int(os.environ.get("EXVAULT_SEED") or random.randrange(2**32))
    rng = random.Random(seed)
    print(f"\ncrash suite: {kills} kills, seed {seed}")

    path = tmp_path / "vaultdir" / "vault.db"
    admin, _recovery = AdminVault.create(path, PASSPHRASES[0], kdf=TEST_KDF, insecure_test_kdf=True)
    with admin:
        _info, token = admin.add_client(workload.CRASH_CLIENT)
    journal = tmp_path / "journal.jsonl"
    journal.touch(mode=0o600)
    config = tmp_path / "crash.json"
    config.touch(mode=0o600)
    config.write_text(
        json.dumps(
            {
                "vault": str(path),
                "journal": str(journal),
                "passphrases": list(PASSPHRASES),
                "client": workload.CRASH_CLIENT,
            }
        )
    )

    model = workload.empty_state()
    seq, offset = 1, 0
    stats: Counter[str] = Counter()
    ops: Counter[str] = Counter()
    in_flight_ops: Counter[str] = Counter()
    spares: deque[Child] = deque()
    spawned = 0
    child: Child | None = None
    started = time.monotonic()

    def spawn() -> None:
        nonlocal spawned
        spares.append(Child(config, tmp_path / f"child-{spawned}.stderr"))
        spawned += 1

    try:
        for _round in range(kills):
            while len(spares) < SPARES + 1:
                spawn()
            child = spares.popleft()
            child.expect("ready", READY_TIMEOUT)
            child.send(json.dumps({"state": model, "seq": seq, "seed": rng.randrange(2**32)}))
            if rng.random() < 0.2:
                stats["killed within 150 ms of go"] += 1
            else:
                child.expect("opened", PROGRESS_TIMEOUT)
                for _ in range(rng.randint(1, 6)):
                    child.expect("c ", PROGRESS_TIMEOUT)
                stats["killed after progress"] += 1
            time.sleep(rng.uniform(0, MAX_SLEEP))
            child.kill()
            child = None

            records, offset = workload.read_new_lines(journal, offset, repair=True)
            committed, in_flight = split_journal(records, seq)
            for entry in committed:
                model = workload.apply_entry(model, entry)
                ops[entry["op"]] += 1
            after = workload.apply_entry(model, in_flight) if in_flight else None

            admin, pp = unlock_either(path)
            with admin:
                report = verify(admin)
                assert report.ok, f"verify after kill {_round + 1}: {report.problems}"
                half = workload.half_written(admin.store)
                assert not half, f"half-written after kill {_round + 1}: {half}"
                actual = workload.observe(admin, workload.CRASH_CLIENT, pp)
            if actual == model:
                if in_flight:
                    stats["in-flight operations rolled back"] += 1
            elif after is not None and actual == after:
                model = after
                stats["in-flight operations found committed"] += 1
                in_flight_ops[in_flight["op"]] += 1  # type: ignore[index]
            else:
                pytest.fail(
                    f"after kill {_round + 1} the vault is not what the journal says\n"
                    + describe_states(
                        committed=model, committed_plus_in_flight=after, actual=actual
                    )
                    + f"\nin flight: {in_flight}"
                )
            if in_flight and in_flight["op"] == "passwd":
                stats["kills during passwd"] += 1
            with ClientVault.open(path, token=token) as client:
                for name in model["granted"]:
                    cred = client.get(name)
                    current = model["creds"][name]["cur"]
                    assert [cred.version, workload.credential_hash(cred)] == current
                    stats["client reads checked"] += 1
            stats["stages checked"] += sum(
                1 for c in model["creds"].values() for k in ("cur", "pend", "prev") if c[k]
            )
            seq = in_flight["seq"] + 1 if in_flight else seq + len(committed)
            stats["kills survived"] += 1
    finally:
        if child is not None and child.proc.poll() is None:
            child.proc.kill()
            child.proc.wait()
        for spare in spares:
            spare.dismiss()

    elapsed = time.monotonic() - started
    checked = sum(ops.values())
    print(
        f"crash suite: {stats['kills survived']} kills survived, {checked} committed "
        f"operations checked ({', '.join(f'{k} {v}' for k, v in sorted(ops.items()))}); "
        f"in flight at the kill: {stats['in-flight operations found committed']} found "
        f"committed ({', '.join(f'{k} {v}' for k, v in sorted(in_flight_ops.items()))}), "
        f"{stats['in-flight operations rolled back']} rolled back; "
        f"{stats['kills during passwd']} kills during passwd; "
        f"{stats['stages checked']} stage values and {stats['client reads checked']} client "
        f"reads checked; {stats['killed within 150 ms of go']} kills soon after start, "
        f"{stats['killed after progress']} after progress; {elapsed:.1f} s"
    )
    assert stats["kills survived"] == kills
    assert checked >= kills, "the children committed almost nothing: the suite proves little"


@pytest.mark.parametrize("moment", ["in-transaction", "before-link"])
def test_sigkill_during_init_leaves_a_vault_that_opens_or_can_be_made_again(
    tmp_path: Path, moment: str
) -> None:
    path = tmp_path / "vaultdir" / "vault.db"
    config = tmp_path / "init.json"
    config.write_text(
        json.dumps(
            {
                "vault": str(path),
                "passphrase": PASSPHRASES[0],
                "kdf": [TEST_KDF.time_cost, TEST_KDF.memory_kib, TEST_KDF.parallelism],
                "moment": moment,
            }
        )
    )
    child = subprocess.run(
        [sys.executable, "-m", "tests.reliability.workload", "init-kill", str(config)],
        cwd=ROOT,
        capture_output=True,
        timeout=120,
    )
    assert child.returncode == -signal.SIGKILL, child.stderr.decode()[-4000:]
    assert not path.exists()  # the vault's own path never names a half-made file
    # Either the interrupted init left nothing that stands in the way of a new one...
    try:
        admin, _recovery = AdminVault.create(
            path, PASSPHRASES[0], kdf=TEST_KDF, insecure_test_kdf=True
        )
    except VaultError:
        # ... or what it left is a whole vault that opens and verifies.
        admin = AdminVault.unlock(path, PASSPHRASES[0])
    with admin:
        assert verify(admin).ok
