"""Figure 5: bulk insert: 10,000 credentials through the library in one unlock.

A new vault (the cheap test KDF: the unlock is figure 3's business), then
``admin.add`` in a loop, timed as a whole. When the library offers a batch form
(``with admin.batch():`` holding one write transaction), it is measured too.
"""

from __future__ import annotations

import time

from benchmarks.common import Config, Results, Row, fmt_time, verdict
from benchmarks.vaults import PASSPHRASE, credential_name, sample_metadata, sample_payload

FIGURE = "5. bulk insert"
TARGET_S = 10.0
FULL = 10_000


def run(cfg: Config) -> Results:
    res = Results()
    n = 30 if cfg.quick else FULL
    target = TARGET_S * n / FULL
    seconds = _insert(cfg, n, batch=False)
    res.add(
        Row(
            f"{FIGURE}: {n:,} x admin.add, one unlock",
            f"{fmt_time(seconds)} ({fmt_time(seconds / n)}/add)",
            target=f"≤ {target:g} s",
            met=verdict(seconds <= target),
        )
    )
    from vault.owner.admin import AdminVault

    if hasattr(AdminVault, "batch"):
        seconds = _insert(cfg, n, batch=True)
        res.add(
            Row(
                f"{FIGURE}: {n:,} x admin.add in admin.batch()",
                f"{fmt_time(seconds)} ({fmt_time(seconds / n)}/add)",
                target=f"≤ {target:g} s",
                met=verdict(seconds <= target),
            )
        )
    return res


def _insert(cfg: Config, n: int, *, batch: bool) -> float:
    from contextlib import nullcontext

    from vault.format.kdf_params import KdfParams
    from vault.format.model import utc_now
    from vault.owner.admin import AdminVault

    path = cfg.workdir / f"bulk-{'batch' if batch else 'plain'}.db"
    for old in cfg.workdir.glob(path.name + "*"):
        old.unlink()
    today = utc_now().date()
    specs = [(credential_name(i), *sample_metadata(i, today), sample_payload(i)) for i in range(n)]
    admin, _recovery = AdminVault.create(
        path, PASSPHRASE, kdf=KdfParams(1, 64, 1), insecure_test_kdf=True
    )
    with admin:
        context = admin.batch() if batch else nullcontext()  # type: ignore[attr-defined]
        start = time.perf_counter()
        with context:
            for name, exchange, permissions, ips, issued, payload in specs:
                admin.add(
                    name, exchange, payload, permissions=permissions, ips=ips, issued_on=issued
                )
        seconds = time.perf_counter() - start
        assert len(admin.names()) == n
    return seconds
