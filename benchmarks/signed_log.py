"""The cost of the signed audit log to the owner's writes and to ``exvault check``.

Two measurements, run on their own (they are not among the figures of
``python -m benchmarks``)::

    python -m benchmarks.signed_log owner --entries 1000,20000,100000 --batch 1000
    python -m benchmarks.signed_log check --credentials 10000,100000

``owner``: before the owner wraps a data key for a grantee (``edit`` of a granted
credential, ``grant``), the signed log must back the grant
(:class:`vault.db.access_history.VerifiedLog`). A vault is made with the test KDF, one
granted credential and 1,000 others, and its audit log padded to each size with
signed client reads; then ``edit`` and ``grant`` are timed on a fresh handle
(one-shot: with no checkpoint of the verified prefix, the whole log is walked;
resumed: a former handle's checkpoint is there, :mod:`vault.db.log_checkpoint`), again
on the same handle (repeated), and ``--batch`` grants in one
:meth:`~vault.owner.admin.AdminVault.batch`. The state directory is a fresh one.

``check``: ``exvault check`` verifies the signature of each credential's newest read
(:mod:`vault.ops.verified_reads`). The vault of :mod:`benchmarks.vaults` gets one signed
read per credential, then ``check`` runs twice, in this process, against a fresh state
directory (first run: nothing remembered; second run: every read remembered).

Only the public API and the library's own pieces are used, so the same script times
an older checkout of the library (put it first on ``PYTHONPATH``).
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path

from vault.db import audit, queries
from vault.format.audit_entry import client_actor, new_entry
from vault.format.kdf_params import KdfParams
from vault.ops import checks
from vault.owner.admin import AdminVault
from vault.runtime.token import parse_token

PASSPHRASE = "correct horse battery staple (benchmark vault)"
TEST_KDF = KdfParams(time_cost=1, memory_kib=64, parallelism=1)
PAYLOAD = {"api_key": "k" * 64, "secret": "s" * 64}
CHUNK = 5_000
# A declarative class's __table__ is a Table (typed as its base, FromClause).


def _timed(call: Callable[[], object]) -> float:
    start = time.perf_counter()
    call()
    return time.perf_counter() - start


def pad_log(admin: AdminVault, entries: int, token: str, client: str, credential: str) -> None:
    """Append signed client reads until the log holds ``entries`` entries."""
    keys = parse_token(token)
    signer = (keys.client_id, keys.keys[1].sign)
    with admin.store.write() as session:
        last = audit.last_entry(session)
        missing = entries - (last[0] if last else 0)
        while missing > 0:
            rows = []
            for _ in range(min(CHUNK, missing)):
                row = new_entry(
                    admin.vault_id,
                    last,
                    actor=client_actor(client),
                    action="read",
                    credential=credential,
                    version=1,
                    detail="current",
                    signer=signer,
                )
                rows.append(row.values())
                last = (row.seq, row.entry_hash)
            session.execute_many(queries.INSERT_AUDIT_SQL, rows)
            missing -= len(rows)


def owner(entries: int, batch: int, repeats: int, workdir: Path) -> dict[str, float]:
    """Seconds per operation of the owner's writes on a log of ``entries`` entries (at
    least: the vault's own making takes ``batch`` + 5)."""
    path = workdir / f"signed-log-{entries}.db"
    for old in workdir.glob(path.name + "*"):
        old.unlink()
    state = Path(tempfile.mkdtemp(prefix="exvault-state-", dir=workdir))
    os.environ["XDG_STATE_HOME"] = str(state)
    admin, _recovery = AdminVault.create(
        str(path), PASSPHRASE, kdf=TEST_KDF, insecure_test_kdf=True
    )
    with admin:
        admin.add("granted", "binance", PAYLOAD, permissions=["read"])
        _, token = admin.add_client("bot")
        admin.grant("bot", ["granted"])
        admin.add_client("bulk")
        with admin.batch():
            for i in range(batch):
                admin.add(f"other-{i:05d}", "binance", PAYLOAD, permissions=["read"])
        pad_log(admin, entries, token, "bot", "granted")
        with admin.store.read() as session:
            size = audit.count(session)
    ips = iter(f"203.0.113.{i % 250 + 1}" for i in range(10**6))
    out: dict[str, float] = {"audit entries": size}

    # Named here, not imported: an older checkout has no checkpoint.
    checkpoint = (
        audit.witness_path(admin.vault_id).parent / f"signed-log-{admin.vault_id.hex()}.bin"
    )

    def fresh(operation: Callable[[AdminVault], object], *, resumed: bool = False) -> float:
        times = []
        for _ in range(repeats):
            with AdminVault.unlock(str(path), PASSPHRASE) as handle:
                if resumed:
                    operation(handle)  # a former process, which leaves its checkpoint
                else:
                    checkpoint.unlink(missing_ok=True)
            with AdminVault.unlock(str(path), PASSPHRASE) as handle:
                times.append(_timed(lambda: operation(handle)))
        return statistics.median(times)

    def repeated(operation: Callable[[AdminVault], object]) -> float:
        with AdminVault.unlock(str(path), PASSPHRASE) as handle:
            operation(handle)
            return statistics.median(_timed(lambda: operation(handle)) for _ in range(repeats))

    def edit(handle: AdminVault) -> object:
        return handle.edit("granted", ips=[next(ips)])

    def grant(handle: AdminVault) -> object:
        handle.grant("bot", ["granted"])
        return None

    out["edit one-shot"] = fresh(edit)
    out["edit one-shot, resumed"] = fresh(edit, resumed=True)
    out["edit repeated"] = repeated(edit)
    out["grant one-shot"] = fresh(grant)
    out["grant one-shot, resumed"] = fresh(grant, resumed=True)
    out["grant repeated"] = repeated(grant)
    with AdminVault.unlock(str(path), PASSPHRASE) as handle:
        start = time.perf_counter()
        with handle.batch():
            for i in range(batch):
                handle.grant("bulk", [f"other-{i:05d}"])
        out[f"batch of {batch} grants, per grant"] = (time.perf_counter() - start) / batch
    return out


def check_runs(n: int, workdir: Path, cache: Path | None = None) -> dict[str, float]:
    """Seconds of ``check`` on the benchmark vault of ``n`` credentials, each read once
    by its client: first run, then second run."""
    from benchmarks.common import Config
    from benchmarks.vaults import client_name, credential_name, get_vault

    cfg = Config(workdir=workdir) if cache is None else Config(workdir=workdir, cache=cache)
    bench = get_vault(cfg, n)
    token = bench.token_for(0)
    keys = parse_token(token)
    with AdminVault.unlock(str(bench.path), PASSPHRASE) as admin:
        client = client_name(0)
        with admin.store.write() as session:
            last = audit.last_entry(session)
            for start in range(0, n, CHUNK):
                rows = []
                for i in range(start, min(n, start + CHUNK)):
                    row = new_entry(
                        admin.vault_id,
                        last,
                        actor=client_actor(client),
                        action="read",
                        credential=credential_name(i),
                        version=1,
                        detail="current",
                        signer=(keys.client_id, keys.keys[1].sign),
                    )
                    rows.append(row.values())
                    last = (row.seq, row.entry_hash)
                session.execute_many(queries.INSERT_AUDIT_SQL, rows)
    state = Path(tempfile.mkdtemp(prefix="exvault-state-", dir=workdir))
    os.environ["XDG_STATE_HOME"] = str(state)
    now = datetime.now(timezone.utc)
    out = {}
    with AdminVault.unlock(str(bench.path), PASSPHRASE) as admin:
        for run in ("first run", "second run"):
            out[run] = _timed(lambda: checks.check(admin, now))
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.signed_log")
    parser.add_argument("what", choices=("owner", "check"))
    parser.add_argument("--entries", default="1000,20000,100000")
    parser.add_argument("--batch", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--credentials", default="10000,100000")
    parser.add_argument("--workdir", type=Path, default=Path(tempfile.gettempdir()))
    parser.add_argument("--cache", type=Path, help="where benchmarks.vaults keeps built vaults")
    args = parser.parse_args(argv)
    if args.what == "owner":
        for entries in (int(x) for x in args.entries.split(",")):
            figures = owner(entries, args.batch, args.repeats, args.workdir)
            size = int(figures.pop("audit entries"))
            for label, seconds in figures.items():
                print(f"{size:>7} entries  {label:<32} {seconds * 1000:9.1f} ms", flush=True)
    else:
        for n in (int(x) for x in args.credentials.split(",")):
            for label, seconds in check_runs(n, args.workdir, args.cache).items():
                print(f"{n:>7} credentials  check {label:<12} {seconds:7.2f} s", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
