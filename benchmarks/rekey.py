"""Time ``exvault passwd --rekey`` (``AdminVault.rekey``) on a large vault.

``python -m benchmarks.rekey [--count N] [--cache DIR]`` builds (or reuses) the
benchmark vault of N credentials (default 100,000; one version each, each granted to
one client) with :mod:`benchmarks.vaults`, unlocks a working copy with the cheap test
KDF, and times one rekey: every head, version, client and grant verified and re-signed,
every data key unwrapped and wrapped for the new root key and the client's new key,
new keyslots, in one transaction. The Argon2id of the new passphrase slot is the test
KDF (``insecure_test_kdf``), so the figure is the rekey's own work. The result is
checked (an admin read and a client read with the new token) and printed as one
markdown row with the peak RSS of the process.
"""

from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import time
from pathlib import Path

if __package__ in (None, ""):  # run as a script: python benchmarks/rekey.py
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.common import Config, default_cache_dir, fmt_mib, fmt_time
from benchmarks.vaults import PASSPHRASE, credential_name, get_vault

NEW_PASSPHRASE = "the passphrase after the benchmark rekey"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.rekey", description=__doc__)
    parser.add_argument("--count", type=int, default=100_000, help="credentials (100,000)")
    parser.add_argument("--cache", type=Path, default=None, help="where built vaults are kept")
    args = parser.parse_args(argv)
    from vault.owner.admin import AdminVault
    from vault.runtime.client import ClientVault

    with tempfile.TemporaryDirectory(prefix="exvault-rekey-bench-") as work:
        cfg = Config(
            workdir=Path(work),
            cache=args.cache or default_cache_dir(),
            log=lambda msg: print(msg, file=sys.stderr),
        )
        bench = get_vault(cfg, args.count)
        with AdminVault.unlock(bench.path, PASSPHRASE) as admin:
            started = time.perf_counter()
            done = admin.rekey(NEW_PASSPHRASE, insecure_test_kdf=True)
            seconds = time.perf_counter() - started
        peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        last = credential_name(args.count - 1)
        with AdminVault.unlock(bench.path, NEW_PASSPHRASE) as admin:
            admin.get(last)
        [token] = done.tokens.values()
        with ClientVault.open(bench.path, token=token) as client:
            client.get(last)
    print("| Credentials | Rekey | Per credential | Peak RSS |")
    print("|---:|---:|---:|---:|")
    print(
        f"| {args.count:,} | {fmt_time(seconds)} | {fmt_time(seconds / args.count)} "
        f"| {fmt_mib(peak_kib)} |"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
