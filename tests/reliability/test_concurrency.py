"""Concurrency: writers, a granter and readers on one vault at once, for a fixed time.

Five processes (``python -m tests.reliability.workload MODE``) start together:

- two writers, each adding and editing credentials of its own and rotating the
  shared credential (start -> promote -> finish; the writers take turns on whole
  cycles, since two rotations of one credential at once are refused by design);
- a granter, granting every credential it finds to the readers' clients, and now
  and then creating an extra client and granting it everything;
- two readers, each reading through one long-lived client handle
  (``vault.open(where, token=...)``) and through fresh ``vault.load`` calls.

Every write is logged by its worker after it commits; every read records the
version and a digest of the value. At the end:

- no worker met any exception (a "database is locked" among them would be a bug:
  the store begins writes IMMEDIATE and waits up to 30 s for the lock);
- no lost write: each writer's credentials hold the last value it logged, their
  history holds exactly the versions it logged, the shared credential's stages match
  the rotation log, every logged grant is there, and ``verify`` passes;
- no torn read: every (credential, version, value) a reader saw was committed by a
  writer with that very version number, and the version a reader sees never goes
  backwards, within one handle nor across successive ``vault.load`` calls.

Default: 8 s; ``--long`` or ``EXVAULT_LONG=1``: 60 s.
"""

from __future__ import annotations

import json
import os
import random
import select
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import TEST_KDF
from tests.reliability import workload
from vault.ops.verification import verify
from vault.owner.admin import AdminVault
from vault.runtime.client import ClientVault

BACKENDS = ("sqlite", "postgresql")

ROOT = Path(__file__).resolve().parents[2]
DURATION = 5.0
LONG_DURATION = 60.0
WRITERS = ("writer-0", "writer-1")
READERS = ("reader-0", "reader-1")
PASSPHRASE = "concurrency-test passphrase"
READY_TIMEOUT = 120.0
EXIT_GRACE = 120.0


def start_worker(mode: str, worker: str, config: Path, workdir: Path) -> subprocess.Popen[bytes]:
    with open(workdir / f"{worker}.stderr", "wb") as err:
        return subprocess.Popen(
            [sys.executable, "-m", "tests.reliability.workload", mode, str(config), worker],
            cwd=ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=err,
        )


def expect_line(proc: subprocess.Popen[bytes], word: str, timeout: float, stderr: Path) -> None:
    assert proc.stdout is not None
    ready, _, _ = select.select([proc.stdout], [], [], timeout)
    line = proc.stdout.readline().decode().strip() if ready else "(nothing)"
    if line != word:
        pytest.fail(f"worker said {line!r}, expected {word!r}\n{stderr.read_text()[-4000:]}")


def shared_expectation(
    log: list[dict[str, Any]], initial: tuple[int, str]
) -> tuple[dict[int, str], dict[str, int | None]]:
    """Every committed version of the shared credential, and its expected stages.

    Rotation cycles never overlap (the writers take turns), so the version numbers
    order them: a start writes version N, its promote makes N current with the
    version promoted before it (or 1) as previous, its finish drops that previous.
    """
    values = {initial[0]: initial[1]}
    starts = sorted(r["v"] for r in log if r["op"] == "start")
    for r in log:
        if r["op"] == "start":
            values[r["v"]] = r["h"]
    promoted = sorted(r["v"] for r in log if r["op"] == "promote")
    finished = {r["v"] for r in log if r["op"] == "finish"}
    assert set(promoted) <= set(starts), "a promote names a version never started"
    assert starts == list(range(2, 2 + len(starts))), f"start versions not consecutive: {starts}"
    current = promoted[-1] if promoted else initial[0]
    chain = [initial[0], *promoted]
    previous = chain[-2] if len(chain) > 1 and current not in finished else None
    pending = starts[-1] if starts and starts[-1] > current else None
    return values, {"current": current, "pending": pending, "previous": previous}


def test_writers_granter_and_readers_at_once(
    tmp_path: Path, long_run: bool, vault_location: str, backend: str
) -> None:
    duration = LONG_DURATION if long_run else DURATION
    seed = int(os.environ.get("EXVAULT_SEED") or random.randrange(2**32))
    print(f"\nconcurrency suite ({backend}): {duration:.0f} s, seed {seed}")

    path = vault_location
    workdir = tmp_path / "work"
    workdir.mkdir(mode=0o700)
    admin, _recovery = AdminVault.create(path, PASSPHRASE, kdf=TEST_KDF, insecure_test_kdf=True)
    tokens: dict[str, str] = {}
    with admin:
        payload, shared_hash = workload.new_payload()
        shared = admin.add(
            workload.SHARED, workload.EXCHANGE, payload, permissions=workload.PERMISSIONS
        )
        for client in READERS:
            tokens[client] = admin.add_client(client)[1]
            admin.grant(client, [workload.SHARED])
    config = workdir / "config.json"
    config.touch(mode=0o600)
    config.write_text(
        json.dumps(
            {
                "vault": str(path),
                "passphrase": PASSPHRASE,
                "dir": str(workdir),
                "readers": list(READERS),
                "tokens": tokens,
            }
        )
    )

    roles = [*(("writer", w) for w in WRITERS), ("granter", "granter")]
    roles += [("reader", r) for r in READERS]
    procs: dict[str, subprocess.Popen[bytes]] = {}
    try:
        for mode, worker in roles:
            procs[worker] = start_worker(mode, worker, config, workdir)
        for worker, proc in procs.items():
            expect_line(proc, "ready", READY_TIMEOUT, workdir / f"{worker}.stderr")
        started = time.time()
        go = json.dumps({"deadline": started + duration, "seed": seed}).encode() + b"\n"
        for proc in procs.values():
            assert proc.stdin is not None
            proc.stdin.write(go)
            proc.stdin.flush()
        for worker, proc in procs.items():
            try:
                code = proc.wait(timeout=max(0.0, started + duration - time.time()) + EXIT_GRACE)
            except subprocess.TimeoutExpired:
                pytest.fail(f"{worker} still running {EXIT_GRACE:.0f} s after the deadline")
            stderr = (workdir / f"{worker}.stderr").read_text()[-4000:]
            assert code == 0, f"{worker} exited with code {code}\n{stderr}"
        elapsed = time.time() - started
    finally:
        for proc in procs.values():
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            for pipe in (proc.stdin, proc.stdout):
                if pipe is not None:
                    pipe.close()

    results = {
        worker: json.loads((workdir / f"{worker}.result.json").read_text()) for worker in procs
    }
    logs = {worker: list(workload.iter_log(workdir / f"{worker}.log")) for worker in procs}

    # No exception of any kind reached a worker ("database is locked" included).
    failures = [
        f"--- {worker}: {e['doing']}: {e['type']}: {e['message']}\n{e['traceback']}"
        for worker, result in results.items()
        for e in result["exceptions"]
    ]
    exception_count = sum(r["exception_count"] for r in results.values())
    locked = sum("locked" in e["message"] for r in results.values() for e in r["exceptions"])
    assert exception_count == 0, (
        f"{exception_count} exceptions reached the workers ({locked} of those shown say "
        f'"locked"):\n' + "\n".join(failures)
    )

    # No torn read: each value seen is a committed one, at its own version number.
    committed: dict[tuple[str, int], str] = {}
    writes: Counter[str] = Counter()
    shared_log: list[dict[str, Any]] = []
    for worker in WRITERS:
        for r in logs[worker]:
            writes[r["op"]] += 1
            if r["name"] == workload.SHARED:
                shared_log.append(r)
            elif "h" in r:
                committed[(r["name"], r["v"])] = r["h"]
    shared_values, shared_stages = shared_expectation(shared_log, (shared.version, shared_hash))
    committed.update({(workload.SHARED, v): h for v, h in shared_values.items()})
    reads: Counter[str] = Counter()
    seen_versions = 0
    for worker in READERS:
        result = results[worker]
        assert not result["mismatched"], result["mismatched"]
        assert not result["backwards"], f"{worker} saw versions go backwards: {result['backwards']}"
        for name, version, digest in result["seen"]:
            assert committed.get((name, version)) == digest, (
                f"{worker} read {name} version {version} with a value no writer committed "
                "at that version (a torn or mixed read)"
            )
            seen_versions += 1
        reads["handle"] += result["counts"].get("read-handle", 0)
        reads["load"] += result["counts"].get("read-load", 0)

    # No lost write.
    grants = [r for r in logs["granter"] if r["op"] == "grant"]
    admin = AdminVault.unlock(path, PASSPHRASE)
    with admin:
        report = verify(admin)
        assert report.ok, f"verify after the run: {report.problems}"
        for worker in WRITERS:
            last: dict[str, tuple[int, str]] = {}
            versions: dict[str, set[int]] = {}
            for r in logs[worker]:
                if r["name"] != workload.SHARED:
                    last[r["name"]] = (r["v"], r["h"])
                    versions.setdefault(r["name"], set()).add(r["v"])
            for name, (version, digest) in last.items():
                cred = admin.get(name)
                assert (cred.version, workload.credential_hash(cred)) == (version, digest), (
                    f"{name}: the last write {worker} committed is lost"
                )
                history = {v.version for v in admin.history(name)}
                assert history == versions[name], f"{name}: versions {history} != logged"
        info = admin.describe(workload.SHARED)
        assert {
            "current": info.version,
            "pending": info.pending_version,
            "previous": info.previous_version,
        } == shared_stages, "the shared credential's stages differ from the rotation log"
        for stage, version in shared_stages.items():
            if version is not None:
                cred = admin.get(workload.SHARED, stage)
                assert workload.credential_hash(cred) == shared_values[version], stage
        for client in READERS:
            granted = set(admin.client(client).grants)
            logged = {r["name"] for r in grants if r["client"] == client}
            assert logged <= granted, f"{client}: grants lost: {logged - granted}"
        names = admin.names()
        final_reads = 0
        for client in READERS:
            with ClientVault.open(path, token=tokens[client]) as handle:
                for name in admin.client(client).grants:
                    cred = handle.get(name)
                    current = admin.describe(name).version
                    assert cred.version == current
                    assert workload.credential_hash(cred) == committed[(name, current)]
                    final_reads += 1

    latency: dict[str, list[float]] = {}
    for result in results.values():
        for what, (count, total, worst) in result["latency"].items():
            n, t, m = latency.get(what, [0, 0.0, 0.0])
            latency[what] = [n + count, t + total, max(m, worst)]
    print(
        "concurrency suite latency (mean / worst ms): "
        + ", ".join(
            f"{what} {1000 * t / n:.0f} / {1000 * m:.0f}"
            for what, (n, t, m) in sorted(latency.items())
        )
    )
    assert all(logs[w] for w in WRITERS), "a writer committed nothing"
    assert reads["handle"] and reads["load"], "the readers read nothing"
    print(
        f"concurrency suite: {len(procs)} processes for {elapsed:.1f} s; "
        f"{sum(writes.values())} writes committed and checked "
        f"({', '.join(f'{k} {v}' for k, v in sorted(writes.items()))}), "
        f"{len(grants)} grants logged, "
        f"{results['granter']['counts'].get('client-add', 0)} extra clients; "
        f"{reads['handle'] + reads['load']} reads checked ({reads['handle']} through a "
        f"long-lived handle, {reads['load']} fresh vault.load), {seen_versions} distinct "
        f"versions seen; {final_reads} final client reads; {len(names)} credentials, "
        f"{report.versions} versions, {report.audit_entries} audit entries verified; "
        f"0 exceptions"
    )
