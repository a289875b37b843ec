"""The crash loop of automated rotation: a real ``exvault rotate due --auto`` process,
SIGKILLed at random points again and again (tests/reliability/rotation_driver.py), with
the clock moving so that keys come due and grace periods end; after each kill the next
run goes on. Throughout: no credential is ever without a working key at the exchange,
and every key at the exchange is either in the vault or announced by an open journal
entry. At the end, after one run left alone: no key the vault does not know, every
journal entry settled."""

from __future__ import annotations

import os
import random
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import PASSPHRASE, TEST_KDF, write_secret_file
from tests.mock_exchange.fixtures import mock_exchanges
from tests.mock_exchange.server import MockExchanges
from tests.ops.exchange_setup import SUB, make_setup
from vault.format import journal
from vault.ops.exchange_keys.model import rotation_id_of
from vault.owner.admin import AdminVault
from vault.owner.journal import Journal

__all__ = ["mock_exchanges"]

EXCHANGES = ("okx", "kucoin")  # without and with a passphrase the deletion needs
DAYS_PER_RUN = 40
"""Each run is this much later than the last: every other run finds keys due (76
days), the runs between find grace periods over."""
MOST_EVENTS = 48
"""Kill points are drawn from the first this many events of a run (a run that starts,
verifies and promotes both credentials has 44, one that finishes both 28): every
event can be hit, and some runs end normally, which moves the state on."""


class Driver:
    """The driver process: one line in, one exit status out."""

    def __init__(self, vault_path: Path, passphrase_file: Path) -> None:
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tests.reliability.rotation_driver",
                str(vault_path),
                str(passphrase_file),
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            cwd=Path(__file__).resolve().parents[2],
        )

    def run(self, kill_at: int | str, days: int) -> int:
        assert self.process.stdin is not None and self.process.stdout is not None
        self.process.stdin.write(f"{kill_at} {days}\n")
        self.process.stdin.flush()
        return int(self.process.stdout.readline())

    def close(self) -> None:
        assert self.process.stdin is not None
        self.process.stdin.close()
        self.process.wait(timeout=30)


@pytest.fixture
def kill_points(long_run: bool) -> int:
    # About 1 s a run on a shared 2-core machine: 100 kills (~110 runs) with --long.
    return 100 if long_run else 20


@pytest.fixture
def world(
    tmp_path: Path, mock_exchanges: MockExchanges
) -> Iterator[tuple[Driver, Path, MockExchanges]]:
    vault_path = tmp_path / "vault.db"
    admin, _ = AdminVault.create(vault_path, PASSPHRASE, kdf=TEST_KDF, insecure_test_kdf=True)
    with admin:
        for exchange in EXCHANGES:
            make_setup(admin, mock_exchanges[exchange])
    passphrase_file = write_secret_file(tmp_path / "passphrase", PASSPHRASE)
    driver = Driver(vault_path, passphrase_file)
    yield driver, vault_path, mock_exchanges
    driver.close()


def check_invariants(vault_path: Path, mocks: MockExchanges, *, final: bool, seed: int) -> None:
    with AdminVault.unlock(vault_path, PASSPHRASE) as admin:
        entries = Journal(admin.writer).entries()
        open_creates = {
            e.rotation_id for e in entries if e.step == journal.CREATE and e.state == journal.INTENT
        }
        for exchange in EXCHANGES:
            state = mocks[exchange].state
            known: set[str] = set()
            for name in (f"{exchange}-grid", f"{exchange}-master"):
                info = admin.describe(name)
                current = admin.get(name).api_key.reveal()
                # No credential without a working key: its current key is at the exchange.
                assert state.key(current) is not None, (name, "current key gone")
                known.add(current)
                for stage, version in (
                    ("pending", info.pending_version),
                    ("previous", info.previous_version),
                ):
                    if version is not None:
                        known.add(admin.get(name, stage).api_key.reveal())
            for key in state.keys_of(SUB.uid):
                if key.api_key in known:
                    continue
                # A key the vault does not hold is announced by an open create entry
                # (killed between create and store), until the next run deletes it.
                assert not final, f"seed {seed}, {exchange}: key {key.api_key} left at the exchange"
                assert rotation_id_of(key.label) in open_creates, (exchange, key.label)
        if final:
            assert [e for e in entries if e.state == journal.INTENT] == [], seed


def test_sigkill_at_random_points_never_loses_a_key(
    world: tuple[Driver, Path, MockExchanges], kill_points: int
) -> None:
    driver, vault_path, mocks = world
    seed = int(os.environ.get("EXVAULT_CRASH_SEED", random.randrange(2**32)))
    rng = random.Random(seed)
    kills = runs = 0
    days = 0
    while kills < kill_points:
        days += DAYS_PER_RUN
        status = driver.run(rng.randint(1, MOST_EVENTS), days)
        runs += 1
        assert status in (-9, 0, 1), (seed, runs, status, Path(f"{vault_path}.run.log").read_text())
        kills += status == -9
        check_invariants(vault_path, mocks, final=False, seed=seed)
    # Left alone, one run settles everything an interrupted one left.
    assert driver.run(0, days) in (0, 1)
    assert driver.run(0, days) == 0, (seed, Path(f"{vault_path}.run.log").read_text())
    check_invariants(vault_path, mocks, final=True, seed=seed)
    with AdminVault.unlock(vault_path, PASSPHRASE) as admin:
        rotated = [admin.describe(f"{e}-grid").version for e in EXCHANGES]
    assert all(version > 2 for version in rotated), (seed, rotated)  # it did rotate


def test_sigkill_at_each_named_point_is_recovered(
    world: tuple[Driver, Path, MockExchanges],
) -> None:
    driver, vault_path, mocks = world
    # Day 40: both keys are due. Killed once the new key exists at the exchange and
    # before the vault holds it; day 80: grace periods over, killed after promote and
    # before the old key's deletion. Each time the next runs settle everything.
    for kill_at, day in (("after:create_key", 40), ("before:delete_key", 80)):
        assert driver.run(kill_at, day) == -9
        check_invariants(vault_path, mocks, final=False, seed=0)
        assert driver.run(0, day) in (0, 1)
        assert driver.run(0, day) == 0, Path(f"{vault_path}.run.log").read_text()
        check_invariants(vault_path, mocks, final=True, seed=0)
    with AdminVault.unlock(vault_path, PASSPHRASE) as admin:
        assert all(admin.describe(f"{e}-grid").previous_version is None for e in EXCHANGES)
