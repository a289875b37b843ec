"""Figure 3: admin unlock, and what one passphrase guess costs an attacker.

The default Argon2id setting is whatever ``vault.format.passphrase_kdf.calibrate_kdf()`` picks on
this machine (run in a child process). Each measurement runs in a new child process
so that ``resource.getrusage`` reports the peak RSS of that derivation alone:
``derive_passphrase_kek`` with those parameters, and a whole ``AdminVault.unlock``
(open the database, derive, open the keyslot) of a vault made with them.

Attacker cost per guess is memory x passes (MiB·passes), the product a memory-hard
function forces on every guess; PBKDF2 and KeePass's AES-KDF use almost no memory,
so theirs is ~0 however many iterations they run (they cost time on a CPU, and
GPUs/ASICs run them massively in parallel). Rows: exvault's default; what
``keepassxc-cli db-create`` chose (read back with ``keepassxc-cli db-info``); the
KeePassXC application's default (Argon2d, 64 MiB, p = cores, iterations benchmarked
to 1 s: emulated here with argon2-cffi, since keepassxc-cli cannot make such a
database); hummingbot's PBKDF2-SHA256 at 1,000,000 iterations; RFC 9106's first
(t=1, 2 GiB, p=4) and second (t=3, 64 MiB, p=4) recommended profiles.
"""

from __future__ import annotations

import json
import os
import textwrap
import time

from benchmarks.common import (
    Config,
    Results,
    Row,
    fmt_mib,
    fmt_ratio,
    fmt_time,
    median,
    run_checked,
    skip_reason,
    verdict,
    which,
)

FIGURE = "3. admin unlock"
COST = "3. attacker cost/guess"
PASSPHRASE = "admin unlock benchmark passphrase"

_CALIBRATE = textwrap.dedent(
    """
    import json, time
    from vault.format import passphrase_kdf
    start = time.perf_counter()
    p = passphrase_kdf.calibrate_kdf()
    print(json.dumps([p.time_cost, p.memory_kib, p.parallelism, time.perf_counter() - start]))
    """
)

_DERIVE = textwrap.dedent(
    """
    import json, os, resource, sys, time
    from vault.format import kdf_params, passphrase_kdf
    params = kdf_params.KdfParams(*map(int, sys.argv[1:4]))
    salt = os.urandom(16)
    start = time.perf_counter()
    passphrase_kdf.derive_passphrase_kek(sys.argv[4], salt, params)
    seconds = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"seconds": seconds, "peak_kib": peak}))
    """
)

_UNLOCK = textwrap.dedent(
    """
    import json, resource, sys, time
    from vault.owner.admin import AdminVault
    start = time.perf_counter()
    AdminVault.unlock(sys.argv[1], sys.argv[2]).close()
    seconds = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"seconds": seconds, "peak_kib": peak}))
    """
)

_CREATE = textwrap.dedent(
    """
    import sys
    from vault.format.kdf_params import KdfParams
    from vault.owner.admin import AdminVault
    params = KdfParams(*map(int, sys.argv[3:6]))
    AdminVault.create(sys.argv[1], sys.argv[2], kdf=params)[0].close()
    """
)


def _json(cfg: Config, code: str, *args: str) -> object:
    out = run_checked([cfg.python, "-c", code, *args])
    return json.loads(out.strip().splitlines()[-1])


def run(cfg: Config) -> Results:
    from vault.format import kdf_params

    res = Results()
    repeats = cfg.repeats(default=5, quick=1)
    if cfg.quick:
        params = kdf_params.KDF_FLOOR
        res.note(f"Figure 3 (--quick): calibration skipped, {params} used instead.")
    else:
        t, m, p, took = _json(cfg, _CALIBRATE)  # type: ignore[misc]
        params = kdf_params.KdfParams(t, m, p)
        res.note(f"Figure 3: calibrate_kdf() chose {params} in {took:.1f} s.")
    args = (str(params.time_cost), str(params.memory_kib), str(params.parallelism))

    derive = [_json(cfg, _DERIVE, *args, PASSPHRASE) for _ in range(repeats)]
    seconds = median([d["seconds"] for d in derive])  # type: ignore[index]
    peak = median([d["peak_kib"] for d in derive])  # type: ignore[index]

    vault_path = cfg.workdir / "unlock-vault.db"
    for old in cfg.workdir.glob("unlock-vault.db*"):
        old.unlink()
    run_checked([cfg.python, "-c", _CREATE, str(vault_path), PASSPHRASE, *args])
    unlock = [_json(cfg, _UNLOCK, str(vault_path), PASSPHRASE) for _ in range(repeats)]
    unlock_s = median([u["seconds"] for u in unlock])  # type: ignore[index]
    unlock_peak = median([u["peak_kib"] for u in unlock])  # type: ignore[index]

    target_s = kdf_params.KDF_DEFAULT_TARGET_SECONDS
    default_mib = kdf_params.KDF_DEFAULT_MEMORY_KIB // 1024
    res.add(
        Row(
            f"{FIGURE}: derive_passphrase_kek, {params}",
            fmt_time(seconds),
            target=f"≈ {target_s} s (0.5x-2x)",
            met=verdict(target_s / 2 <= seconds <= target_s * 2) if not cfg.quick else "—",
        ),
        Row(
            f"{FIGURE}: peak RSS of that process",
            fmt_mib(peak),
            target=f"m ≥ {default_mib} MiB, really allocated",
            met=verdict(
                params.memory_kib >= kdf_params.KDF_DEFAULT_MEMORY_KIB and peak >= params.memory_kib
            )
            if not cfg.quick
            else "—",
        ),
        Row(
            f"{FIGURE}: whole AdminVault.unlock (time, peak RSS)",
            f"{fmt_time(unlock_s)}, {fmt_mib(unlock_peak)}",
        ),
    )

    # ----------------------------------------------------------- attacker cost per guess
    ours = params.memory_kib / 1024 * params.time_cost
    ours_text = f"{ours:,.0f} MiB·passes"

    def cost_row(
        label: str, theirs: float | None, peer_text: str, target: str = "—", met: str = "—"
    ) -> Row:
        if theirs is None:
            return Row(f"{COST}: vs {label}", ours_text, peer_text, target=target)
        ratio = float("inf") if theirs == 0 else ours / theirs
        return Row(f"{COST}: vs {label}", ours_text, peer_text, fmt_ratio(ratio), target, met)

    skip = skip_reason(cfg, bool(which("keepassxc-cli")))
    if skip is None:
        kdf = _keepassxc_cli_default(cfg)
        memory_hard = "argon2" in kdf.lower()
        res.add(
            cost_row(
                "keepassxc-cli db-create default",
                None if memory_hard else 0.0,
                f"≈0 ({kdf}, not memory-hard)" if not memory_hard else kdf,
            )
        )
        res.note(f"Figure 3: keepassxc-cli db-create (no options) wrote {kdf} (db-info).")
    else:
        res.add(cost_row("keepassxc-cli db-create default", None, skip))

    iterations, one_pass = _keepassxc_app_default()
    kpx = 64 * iterations
    res.add(
        cost_row(
            "KeePassXC app default (emulated)",
            kpx,
            f"{kpx:,} (Argon2d 64 MiB, {iterations} iterations ≈ 1 s, p={os.cpu_count()})",
        )
    )
    res.note(
        f"Figure 3: KeePassXC's app default emulated with argon2-cffi: one Argon2d pass over "
        f"64 MiB took {one_pass * 1000:.0f} ms here, so its 1 s benchmark gives "
        f"{iterations} iterations."
    )
    res.add(
        cost_row("hummingbot PBKDF2-SHA256 1,000,000", 0.0, "≈0 (1,000,000 HMAC-SHA256, ~0 memory)")
    )
    res.add(cost_row("RFC 9106 first profile (t=1, 2 GiB, p=4)", 2048.0, "2,048"))
    res.add(
        cost_row(
            "RFC 9106 second profile (t=3, 64 MiB, p=4)",
            192.0,
            "192",
            target="≥ 1 (never below it)",
            met=verdict(ours >= 192.0),
        )
    )
    return res


def _keepassxc_cli_default(cfg: Config) -> str:
    from benchmarks.cold_start import PASSWORD, keepassxc_kdf

    db = cfg.workdir / "unlock-keepassxc.kdbx"
    if db.exists():
        db.unlink()
    pw = f"{PASSWORD}\n".encode()
    run_checked(["keepassxc-cli", "db-create", "-q", "-p", str(db)], stdin=pw * 2)
    return keepassxc_kdf(db)


def _keepassxc_app_default() -> tuple[int, float]:
    """Iterations of Argon2d (64 MiB, p = cores) that take about 1 s here, as
    KeePassXC's database wizard benchmarks them; and one pass's time."""
    from argon2.low_level import Type, hash_secret_raw

    lanes = os.cpu_count() or 1
    best = float("inf")
    for _ in range(2):
        start = time.perf_counter()
        hash_secret_raw(b"benchmark", b"\0" * 16, 1, 64 * 1024, lanes, 32, Type.D)
        best = min(best, time.perf_counter() - start)
    return max(1, round(1.0 / best)), best
