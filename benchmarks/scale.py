"""Figure 4: a vault of 100,000 credentials (one version each, one client grant each).

Timed as new processes, stdout to /dev/null, each process's own peak RSS from
``wait4``: ``exvault check --json``, ``exvault list --json``, and opening + loading
one credential (``vault.load`` with a client token, as in figure 2). Also the
database size per credential, and the plain ``admin.add`` path into the big vault
(per credential), since the vault itself is built by a faster path (see
:mod:`benchmarks.vaults`).

Clients: one per 1,000 credentials (a firm's bots), each granted its share.
"""

from __future__ import annotations

import time

from benchmarks.common import (
    Config,
    Results,
    Row,
    clean_env,
    exvault_argv,
    fmt_mib,
    fmt_time,
    median,
    run_measured,
    verdict,
)
from benchmarks.vaults import (
    PASSPHRASE,
    credential_name,
    get_vault,
    sample_metadata,
    sample_payload,
)

FIGURE = "4. scale"
RSS_LIMIT_BYTES = 300 * 1000 * 1000  # 300 MB
SNIPPET = "import vault; c = vault.load({name!r}); c.api_key.reveal(); c.secret.reveal()"


def run(cfg: Config) -> Results:
    res = Results()
    n = min(cfg.scale, 50) if cfg.quick else cfg.scale
    clients = max(1, n // 1000)
    repeats = cfg.repeats(default=5, quick=1)

    started = time.perf_counter()
    bench = get_vault(cfg, n, clients)
    prepared = time.perf_counter() - started
    res.note(
        f"Figure 4: vault of {n:,} credentials, {clients} client(s); "
        + (
            f"built now in {bench.build_seconds:.0f} s "
            f"({bench.build_seconds / n * 1000:.2f} ms/credential, benchmark's bulk path)"
            if bench.built_now
            else f"taken from the cache (built in {bench.build_seconds:.0f} s, "
            f"{bench.build_seconds / n * 1000:.2f} ms/credential); copied in {prepared:.1f} s"
        )
        + "."
    )
    db_bytes = sum(
        p.stat().st_size for p in bench.path.parent.glob(bench.path.name + "*") if p.is_file()
    )

    index = n // 2
    token_file = bench.token_file(index, cfg.workdir)
    env = clean_env({"EXVAULT_PATH": str(bench.path), "EXVAULT_TOKEN_FILE": str(token_file)})
    exvault = exvault_argv(cfg.python)
    commands = {
        "check": ([*exvault, "check", "--json"], (0, 1, 2), 3.0),
        "list": ([*exvault, "list", "--json"], (0,), 2.0),
        "load": ([cfg.python, "-c", SNIPPET.format(name=credential_name(index))], (0,), 0.3),
    }
    seconds: dict[str, list[float]] = {k: [] for k in commands}
    rss: dict[str, list[int]] = {k: [] for k in commands}
    cpu: dict[str, list[float]] = {k: [] for k in commands}
    for argv, ok, _limit in commands.values():  # warm-up: page cache, .pyc files
        if not cfg.quick:
            run_measured(argv, env=env, ok_codes=ok)
    for _ in range(repeats):
        for k, (argv, ok, _limit) in commands.items():
            m = run_measured(argv, env=env, ok_codes=ok)
            seconds[k].append(m.seconds)
            rss[k].append(m.maxrss_kib)
            cpu[k].append(m.cpu_seconds)

    labels = {
        "check": "exvault check --json",
        "list": "exvault list --json",
        "load": "open + load one (new process)",
    }
    for k, (_argv, _ok, limit) in commands.items():
        t, peak = median(seconds[k]), max(rss[k])
        res.add(
            Row(
                f"{FIGURE} {n:,}: {labels[k]} (wall, CPU, peak RSS)",
                f"{fmt_time(t)}, {fmt_time(median(cpu[k]))} CPU, {fmt_mib(peak)}",
                target=f"≤ {limit:g} s, ≤ 300 MB",
                met=verdict(t <= limit and peak * 1024 <= RSS_LIMIT_BYTES),
            )
        )
    per = db_bytes / n
    res.add(
        Row(
            f"{FIGURE} {n:,}: database size per credential",
            f"{per / 1024:.2f} KiB ({db_bytes / 2**20:.0f} MiB total)",
            target="≤ 2 KiB",
            met=verdict(per <= 2048),
        )
    )

    # The plain admin.add path, into the big vault (after the timings above).
    sample = 10 if cfg.quick else 200
    per_add = _admin_add(bench.path, n, sample)
    res.add(
        Row(
            f"{FIGURE} {n:,}: admin.add into this vault, per credential",
            fmt_time(per_add),
            target="≤ 1 ms (fig. 5: 10,000 in 10 s)",
            met=verdict(per_add <= 1e-3),
        )
    )
    return res


def _admin_add(path: object, n: int, sample: int) -> float:
    from vault.format.model import utc_now
    from vault.owner.admin import AdminVault

    today = utc_now().date()
    with AdminVault.unlock(path, PASSPHRASE) as admin:  # type: ignore[arg-type]
        start = time.perf_counter()
        for i in range(n, n + sample):
            exchange, permissions, ips, issued = sample_metadata(i, today)
            admin.add(
                credential_name(i),
                exchange,
                sample_payload(i),
                permissions=permissions,
                ips=ips,
                issued_on=issued,
            )
        return (time.perf_counter() - start) / sample
